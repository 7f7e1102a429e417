//! Slow start and sticky sessions on the pool's state machine (paused time).

use std::sync::Arc;
use std::time::Duration;

use super::*;

fn pool(extra: &str) -> Pool {
    let src = format!("[pools.p]\nbackends = [\"127.0.0.1:9001\", \"127.0.0.1:9002\"]\n{extra}\n");
    let cfg = crate::config::load_str(&src, None).expect("valid config");
    Pool::new(Arc::new(cfg.pools["p"].clone()))
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn set(p: &Pool, port: u16, state: MemberState) {
    p.apply(PoolCommand::SetState {
        address: addr(port),
        state,
        reason: "test".into(),
    })
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_member_that_becomes_healthy_again_ramps_over_the_window() {
    let p = pool("slow_start = \"10s\"");
    // Members healthy when the pool is created take their full weight.
    assert_eq!(p.snapshot().effective_weight_now(1), 1.0);
    assert_eq!(p.snapshot().slow_start_now(), None);
    set(&p, 9002, MemberState::Unhealthy);
    assert_eq!(p.snapshot().effective_weight_now(1), 0.0);
    set(&p, 9002, MemberState::Healthy);
    let snap = p.snapshot_arc();
    assert_eq!(snap.effective_weight_now(1), 0.1);
    assert!(snap.slow_start_now().is_some());
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(snap.effective_weight_now(1), 0.5);
    assert_eq!(
        snap.effective_weight_now(0),
        1.0,
        "the other member is untouched"
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(snap.effective_weight_now(1), 1.0);
    assert_eq!(
        snap.slow_start_now(),
        None,
        "no clock read once the window is over"
    );
}

#[tokio::test(start_paused = true)]
async fn added_members_ramp_and_ejected_ones_ramp_on_return() {
    let p = pool("slow_start = \"10s\"\n[pools.p.passive]\nconsecutive_failures = 1");
    p.apply(PoolCommand::Add {
        address: addr(9003),
        weight: 2,
        managed: true,
        state: MemberState::Healthy,
    })
    .unwrap();
    assert_eq!(p.snapshot().effective_weight_now(2), 0.2);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(p.snapshot().effective_weight_now(2), 2.0);
    p.apply(PoolCommand::Eject {
        address: addr(9001),
        eject_for: Duration::from_secs(1),
        reason: "test".into(),
    })
    .unwrap();
    set(&p, 9001, MemberState::Healthy);
    assert_eq!(p.snapshot().effective_weight_now(0), 0.1);
}

#[tokio::test(start_paused = true)]
async fn without_slow_start_every_healthy_member_has_its_weight() {
    let p = pool("");
    set(&p, 9002, MemberState::Unhealthy);
    set(&p, 9002, MemberState::Healthy);
    assert_eq!(p.snapshot().effective_weight_now(1), 1.0);
    assert_eq!(p.snapshot().slow_start_now(), None);
}

#[tokio::test(start_paused = true)]
async fn sticky_sessions_follow_a_draining_member_until_the_drain_timeout() {
    let p = pool("sticky = true\n[pools.p.instances]\nprovider = \"process\"\ncommand = [\"x\"]\ncount = 0\ndrain_timeout = \"4s\"");
    let snap = p.snapshot_arc();
    let id = snap.sticky_ids[1];
    assert_eq!(crate::proxy::sticky::preferred(&snap, id), Some(1));
    assert_eq!(
        crate::proxy::sticky::preferred(&snap, id ^ 1),
        None,
        "unknown id"
    );
    set(&p, 9002, MemberState::Draining);
    let snap = p.snapshot_arc();
    assert_eq!(snap.sticky_ids[1], id, "ids are stable across snapshots");
    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(crate::proxy::sticky::preferred(&snap, id), Some(1));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(crate::proxy::sticky::preferred(&snap, id), None);
    set(&p, 9002, MemberState::Unhealthy);
    assert_eq!(crate::proxy::sticky::preferred(&p.snapshot(), id), None);
}
