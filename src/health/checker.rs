//! The per-pool health task: active checks of every member, concurrent and
//! jittered, and the return of ejected members when their time is up.
//!
//! A member's first check runs at once (requests that find no healthy member
//! wait for it, see [`super::first_round`]); its second comes after a random
//! half to whole `interval`, so the checks of a large pool spread over the
//! interval instead of running in lock step, and then one every `interval`.
//!
//! Every round reads the pool's current snapshot, so a reload (which reuses
//! the pool) takes effect at once: new members are checked, removed ones are
//! forgotten, a changed `interval` applies from each member's next check.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use super::counter::{Flip, RiseFall, Verdict};
use super::local::WARN_EVERY;
use super::probe::{probe_over, ProbeResult};
use crate::config::HealthConfig;
use crate::pool::{MemberState, Pool, PoolCommand, PoolSnapshot};
use crate::rate_limit::RateLimit;

type ProbeFuture = Pin<Box<dyn Future<Output = (SocketAddr, ProbeResult)> + Send>>;

/// A check that could not run for a local reason is tried again after this
/// (or `interval`, if shorter). 1 s.
pub const UNKNOWN_RETRY: Duration = Duration::from_secs(1);

/// Check schedule and rise/fall streak of one member.
struct Track {
    counter: RiseFall,
    next_due: Instant,
    probing: bool,
    /// No check of this member has been started yet.
    first: bool,
}

/// A random delay in `[interval / 2, interval)` between a member's first and
/// second check, so the checks of a large pool spread over the interval.
fn jitter(interval: Duration) -> Duration {
    interval.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

/// Applies a state change if the member is still in one of `from`, and records
/// the event when the state changed; whether it did.
fn transition(
    pool: &Pool,
    address: SocketAddr,
    from: &[MemberState],
    to: MemberState,
    kind: crate::events::EventKind,
    reason: String,
) -> bool {
    let cmd = PoolCommand::Transition {
        address,
        from: from.to_vec(),
        to,
        reason: reason.clone(),
    };
    match pool.apply(cmd) {
        Ok(change) => change.record(&pool.name, kind, reason).is_some(),
        Err(e) => {
            tracing::debug!(pool = %pool.name, backend = %address, error = %e, "state change skipped");
            false
        }
    }
}

/// Returns ejected members whose time is up; gives the earliest pending return.
fn return_ejected(pool: &Pool, snap: &PoolSnapshot, now: Instant) -> Option<Instant> {
    let mut next: Option<Instant> = None;
    for m in &snap.members {
        let Some(until) = m.ejection.until.filter(|_| m.state == MemberState::Ejected) else {
            continue;
        };
        if until > now {
            next = Some(next.map_or(until, |n| n.min(until)));
            continue;
        }
        let reason = format!(
            "ejection of {:?} ended; back in rotation",
            m.ejection.last_for
        );
        if transition(
            pool,
            m.address,
            &[MemberState::Ejected],
            MemberState::Healthy,
            crate::events::EventKind::Uneject,
            reason,
        ) {
            m.stats.consecutive_failures.store(0, Ordering::Relaxed);
        }
    }
    next
}

/// Without a health check (removed by a reload), nothing would bring
/// `unhealthy` members back: they return to rotation.
fn release_unchecked(pool: &Pool, snap: &PoolSnapshot) {
    for m in snap
        .members
        .iter()
        .filter(|m| m.state == MemberState::Unhealthy)
    {
        let reason = "no health check configured".to_string();
        transition(
            pool,
            m.address,
            &[MemberState::Unhealthy],
            MemberState::Healthy,
            crate::events::EventKind::Healthy,
            reason,
        );
    }
}

/// Records one check result and applies the transition it calls for.
fn on_result(pool: &Pool, addr: SocketAddr, r: ProbeResult, counter: &mut RiseFall) {
    let snap = pool.snapshot_arc();
    let (Some(i), Some(h)) = (snap.position(addr), snap.config.health.as_ref()) else {
        return;
    };
    let m = &snap.members[i];
    let up = match m.state {
        MemberState::Healthy | MemberState::Ejected => true,
        MemberState::Unhealthy | MemberState::Starting => false,
        MemberState::Draining => {
            m.stats.record_check(r.verdict, r.detail);
            return;
        }
    };
    match counter.observe(up, r.verdict, h.rise, h.fall) {
        Some(Flip::Up) => {
            let reason = format!("{} passed checks: {}", counter.passes, r.detail);
            let from = [MemberState::Unhealthy, MemberState::Starting];
            if transition(
                pool,
                addr,
                &from,
                MemberState::Healthy,
                crate::events::EventKind::Healthy,
                reason,
            ) {
                m.stats.consecutive_failures.store(0, Ordering::Relaxed);
            }
        }
        Some(Flip::Down) => {
            let reason = format!("{} failed checks: {}", counter.fails, r.detail);
            let from = [MemberState::Healthy, MemberState::Ejected];
            transition(
                pool,
                addr,
                &from,
                MemberState::Unhealthy,
                crate::events::EventKind::Unhealthy,
                reason,
            );
        }
        None => {}
    }
    // Counted after the transition: a request waiting for the first round
    // must see the member healthy by the time it sees it checked.
    m.stats.record_check(r.verdict, r.detail);
    pool.swapped.notify_waiters();
}

/// A check of `addr` finished. One that could not run for a local reason is
/// logged (rate-limited per pool) and tried again after [`UNKNOWN_RETRY`].
fn finished(pool: &Pool, addr: SocketAddr, r: ProbeResult, t: &mut Track, limit: &RateLimit) {
    t.probing = false;
    if r.verdict == Verdict::Unknown {
        let now = Instant::now();
        let interval = pool.snapshot().config.health.as_ref().map(|h| h.interval);
        let retry = interval.map_or(UNKNOWN_RETRY, |i| i.min(UNKNOWN_RETRY));
        t.next_due = t.next_due.min(now + retry);
        warn_unknown(pool, addr, &r, limit);
    }
    on_result(pool, addr, r, &mut t.counter);
}

/// Logs a check that could not run for a local reason (rate-limited per pool).
fn warn_unknown(pool: &Pool, addr: SocketAddr, r: &ProbeResult, limit: &RateLimit) {
    if let Some(suppressed) = limit.allow() {
        tracing::warn!(
            pool = %pool.name,
            backend = %addr,
            error = %r.detail,
            suppressed,
            "health check could not run for a local reason; result unknown, member state unchanged"
        );
    }
}

/// Starts due checks; returns the earliest next due time of members not being checked.
fn schedule(
    snap: &PoolSnapshot,
    h: &HealthConfig,
    tracks: &mut HashMap<SocketAddr, Track>,
    probes: &mut FuturesUnordered<ProbeFuture>,
    now: Instant,
) -> Option<Instant> {
    tracks.retain(|a, _| snap.position(*a).is_some());
    let mut next: Option<Instant> = None;
    for m in snap
        .members
        .iter()
        .filter(|m| m.state != MemberState::Draining)
    {
        let t = tracks.entry(m.address).or_insert_with(|| Track {
            // Never checked and waiting for it: the first pass decides.
            counter: if m.state == MemberState::Unhealthy && !m.stats.checked() {
                RiseFall::first_decides()
            } else {
                RiseFall::default()
            },
            next_due: now,
            probing: false,
            first: true,
        });
        if t.probing {
            continue;
        }
        if t.next_due <= now {
            t.probing = true;
            if std::mem::take(&mut t.first) {
                t.next_due = now + jitter(h.interval);
            } else {
                // Keep each member's phase; after a stall, start from now.
                t.next_due += h.interval;
                if t.next_due <= now {
                    t.next_due = now + h.interval;
                }
            }
            let (addr, cfg) = (m.address, snap.config.clone());
            probes.push(Box::pin(async move {
                let h = cfg.health.as_ref().expect("checked above");
                (
                    addr,
                    probe_over(addr, h, cfg.protocol.kind, cfg.tls.as_deref()).await,
                )
            }));
        }
        next = Some(next.map_or(t.next_due, |n| n.min(t.next_due)));
    }
    next
}

/// Runs the health task of one pool until aborted.
pub async fn run(pool: Arc<Pool>) {
    let mut tracks: HashMap<SocketAddr, Track> = HashMap::new();
    let mut probes: FuturesUnordered<ProbeFuture> = FuturesUnordered::new();
    let local_errors = RateLimit::new(WARN_EVERY);
    loop {
        let snap = pool.snapshot_arc();
        let now = Instant::now();
        let mut wake = return_ejected(&pool, &snap, now);
        match &snap.config.health {
            None => {
                tracks.clear();
                release_unchecked(&pool, &snap);
            }
            Some(h) => {
                if let Some(due) = schedule(&snap, h, &mut tracks, &mut probes, now) {
                    wake = Some(wake.map_or(due, |w| w.min(due)));
                }
            }
        }
        drop(snap);
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = pool.changed.notified() => {}
            _ = sleep => {}
            Some((addr, r)) = probes.next(), if !probes.is_empty() => {
                if let Some(t) = tracks.get_mut(&addr) {
                    finished(&pool, addr, r, t, &local_errors);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn pool(extra: &str) -> Arc<Pool> {
        let cfg = load_str(
            &format!(
                "[pools.p]\nbackends = [\"127.0.0.1:1\", \"127.0.0.1:2\", \"127.0.0.1:3\"]\n{extra}"
            ),
            None,
        )
        .unwrap();
        Arc::new(Pool::new(Arc::new(cfg.pools["p"].clone())))
    }

    fn state(pool: &Pool, i: usize) -> MemberState {
        pool.snapshot().members[i].state
    }

    fn eject(pool: &Pool, i: usize) -> Result<crate::pool::Change, crate::pool::PoolError> {
        let snap = pool.snapshot_arc();
        let p = snap.config.passive.clone().unwrap();
        pool.apply(PoolCommand::Eject {
            address: snap.members[i].address,
            eject_for: p.eject_for,
            reason: "test".into(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn ejected_members_return_after_eject_for_and_a_relapse_doubles_it() {
        let pool = pool("[pools.p.passive]\neject_for = \"10s\"\n");
        let task = tokio::spawn(run(pool.clone()));
        eject(&pool, 0).unwrap();
        assert!(
            eject(&pool, 1).is_err(),
            "a second of three would be more than half"
        );
        tokio::time::sleep(Duration::from_millis(9_900)).await;
        assert_eq!(state(&pool, 0), MemberState::Ejected);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(state(&pool, 0), MemberState::Healthy);

        // Fails again at once: 20 s this time.
        eject(&pool, 0).unwrap();
        assert_eq!(
            pool.snapshot().members[0].ejection.last_for,
            Duration::from_secs(20)
        );
        tokio::time::sleep(Duration::from_millis(19_900)).await;
        assert_eq!(state(&pool, 0), MemberState::Ejected);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(state(&pool, 0), MemberState::Healthy);

        // Served well for longer than that: back to 10 s.
        tokio::time::sleep(Duration::from_secs(30)).await;
        eject(&pool, 0).unwrap();
        assert_eq!(
            pool.snapshot().members[0].ejection.last_for,
            Duration::from_secs(10)
        );
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn failing_checks_take_members_out_after_fall() {
        // Nothing listens on ports 1-3: every TCP check fails at once.
        let pool = pool(
            "[pools.p.health]\ninterval = \"1s\"\nrise = 2\nfall = 3\ninitial_state = \"healthy\"\n",
        );
        let task = tokio::spawn(run(pool.clone()));
        // First checks at once, the second within [0.5 s, 1 s), then one per interval: 3 failures by 2 s.
        tokio::time::sleep(Duration::from_millis(1_400)).await;
        assert_eq!(
            state(&pool, 0),
            MemberState::Healthy,
            "one failure is not enough"
        );
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        for i in 0..3 {
            assert_eq!(state(&pool, i), MemberState::Unhealthy);
            let m = &pool.snapshot().members[i];
            assert!(
                m.reason.starts_with("3 failed checks: connection refused"),
                "{}",
                m.reason
            );
            assert!(m.stats.check_failures.load(Ordering::Relaxed) >= 3);
        }
        task.abort();
    }

    #[tokio::test]
    async fn a_never_checked_member_is_healthy_after_its_first_pass_without_waiting_for_interval() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cfg = load_str(
            &format!(
                "[pools.p]\nbackends = [\"{}\"]\n[pools.p.health]\ninterval = \"30s\"\nrise = 3\n",
                l.local_addr().unwrap()
            ),
            None,
        )
        .unwrap();
        let pool = Arc::new(Pool::new(Arc::new(cfg.pools["p"].clone())));
        assert_eq!(state(&pool, 0), MemberState::Unhealthy);
        assert!(pool.first_checks_pending());
        let task = tokio::spawn(run(pool.clone()));
        let t0 = std::time::Instant::now();
        while state(&pool, 0) != MemberState::Healthy {
            assert!(t0.elapsed() < Duration::from_secs(10), "never healthy");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!pool.first_checks_pending());
        assert_eq!(
            pool.snapshot().members[0].reason,
            "1 passed checks: connected"
        );
        task.abort();
    }
}
