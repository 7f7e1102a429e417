//! The controller's executor with time paused, against an in-memory provider
//! whose instances start, crash and stop on the test's word: crash loops,
//! failed starts, drains and scaling during a drain. (Real processes and
//! containers are tested end to end in tests/instance_*.rs and tests/docker_*.rs.)

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{controller, Instance, Provider, Started};
use crate::pool::{MemberState, Pool, PoolCommand};

/// Instances that exist only in memory.
#[derive(Default)]
struct Fake {
    /// Start results to come, first first (then every start succeeds).
    script: Mutex<Vec<Result<(), String>>>,
    /// When each start was asked.
    starts: Mutex<Vec<Instant>>,
    running: Mutex<Vec<(Instance, oneshot::Sender<String>)>>,
    /// (id, when) of each stop.
    stopped: Mutex<Vec<(String, Instant)>>,
    /// The most instances running at once.
    peak: Mutex<usize>,
}

impl Fake {
    fn failing(n: usize) -> Fake {
        let f = Fake::default();
        *f.script.lock().unwrap() = vec![Err("no capacity".to_string()); n];
        f
    }

    /// The instance ends on its own.
    fn crash(&self, id: &str) {
        let mut r = self.running.lock().unwrap();
        if let Some(i) = r.iter().position(|(inst, _)| inst.id == id) {
            let (_, tx) = r.remove(i);
            let _ = tx.send("exit status 1".to_string());
        }
    }

    fn starts(&self) -> Vec<Instant> {
        self.starts.lock().unwrap().clone()
    }

    fn stopped(&self) -> Vec<(String, Instant)> {
        self.stopped.lock().unwrap().clone()
    }
}

impl Provider for Fake {
    fn start(&self) -> BoxFuture<'_, Result<Started, String>> {
        let mut starts = self.starts.lock().unwrap();
        starts.push(Instant::now());
        let mut script = self.script.lock().unwrap();
        let result = if script.is_empty() {
            Ok(())
        } else {
            script.remove(0)
        };
        let n = starts.len() as u16;
        let out = result.map(|()| {
            let (tx, exited) = oneshot::channel();
            let instance = Instance {
                id: format!("f{n}"),
                address: SocketAddr::from(([127, 0, 0, 1], 20_000 + n)),
            };
            let mut running = self.running.lock().unwrap();
            running.push((instance.clone(), tx));
            let mut peak = self.peak.lock().unwrap();
            *peak = (*peak).max(running.len());
            Started { instance, exited }
        });
        Box::pin(async move { out })
    }

    fn stop(&self, id: &str, _: Duration) -> BoxFuture<'_, ()> {
        let when = Instant::now();
        self.stopped.lock().unwrap().push((id.to_string(), when));
        let mut running = self.running.lock().unwrap();
        if let Some(i) = running.iter().position(|(inst, _)| inst.id == id) {
            let (_, tx) = running.remove(i);
            let _ = tx.send("stopped".to_string());
        }
        Box::pin(async {})
    }

    fn list(&self) -> Vec<Instance> {
        let r = self.running.lock().unwrap();
        r.iter().map(|(i, _)| i.clone()).collect()
    }
}

/// A managed pool `name` of `count` instances, with a health check (done by
/// hand here: no health task runs) and a 5 s drain timeout.
fn pool(name: &str, count: u32) -> Arc<Pool> {
    let cfg = crate::config::load_str(
        &format!(
            r#"
[pools.{name}.instances]
provider = "process"
command = ["app"]
count = {count}
start_timeout = "30s"
drain_timeout = "5s"
[pools.{name}.health]
path = "/"
"#
        ),
        None,
    )
    .unwrap();
    Arc::new(Pool::new(Arc::new(cfg.pools[name].clone())))
}

/// A pool, its provider and its controller, started.
fn managed(
    name: &str,
    count: u32,
    fake: Fake,
) -> (Arc<Pool>, Arc<Fake>, Arc<controller::Controller>) {
    let pool = pool(name, count);
    let fake = Arc::new(fake);
    let ctl = controller::spawn(&pool, fake.clone());
    (pool, fake, ctl)
}

fn healthy(pool: &Pool, address: SocketAddr) {
    let _ = pool.apply(PoolCommand::Transition {
        address,
        from: vec![MemberState::Starting, MemberState::Unhealthy],
        to: MemberState::Healthy,
        reason: "test".to_string(),
    });
}

/// Events of `pool` of `kind`.
fn events(pool: &str, kind: &str) -> Vec<String> {
    let all = crate::events::log().since(0, crate::events::CAPACITY);
    let mine = all.into_iter().filter(|e| e.pool == pool && e.kind.as_str() == kind);
    mine.map(|e| e.reason).collect()
}

/// Sleeps in controller ticks until `done` or `limit` passes.
async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

/// Gaps between consecutive starts, in whole seconds (rounded down).
fn gaps(starts: &[Instant]) -> Vec<u64> {
    starts.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect()
}

#[tokio::test(start_paused = true)]
async fn failed_starts_are_retried_with_a_growing_backoff_and_recorded() {
    let (pool, fake, ctl) = managed("failing_starts", 1, Fake::failing(4));
    assert!(until(Duration::from_secs(60), || fake.starts().len() == 5).await);
    // 1 s, 2 s, 4 s, 8 s: each within a tick of its back-off.
    let starts = fake.starts();
    let want = [1u64, 2, 4, 8];
    for (gap, w) in starts.windows(2).map(|w| w[1] - w[0]).zip(want) {
        let w = Duration::from_secs(w);
        assert!(
            gap >= w && gap <= w + controller::TICK * 2,
            "{gap:?} vs {w:?}"
        );
    }
    let failed = events("failing_starts", "instance_failed");
    assert_eq!(failed.len(), 4, "{failed:?}");
    assert!(
        failed[0].contains("no capacity; retrying in 1s"),
        "{failed:?}"
    );
    assert!(failed[3].contains("retrying in 8s"), "{failed:?}");
    assert_eq!(events("failing_starts", "instance_started").len(), 1);
    // Then it holds: the one that started is kept.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(fake.starts().len(), 5);
    assert_eq!(pool.snapshot().members.len(), 1);
    ctl.close();
}

#[tokio::test(start_paused = true)]
async fn a_crash_loop_backs_off_to_a_minute_and_a_healthy_instance_ends_it() {
    let (pool, fake, ctl) = managed("crash_loop", 1, Fake::default());
    // Every instance crashes as soon as it runs.
    let mut crashed = 0;
    while crashed < 9 {
        let n = fake.starts().len();
        if n > crashed {
            crashed = n;
            fake.crash(&format!("f{n}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gaps(&fake.starts()), vec![1, 2, 4, 8, 16, 32, 60, 60]);
    let failed = events("crash_loop", "instance_failed");
    assert!(
        failed.iter().all(|r| r.contains("instance exited")),
        "{failed:?}"
    );
    assert!(
        failed.last().unwrap().contains("replacing it in 60s"),
        "{failed:?}"
    );
    // The 10th one becomes healthy, then crashes: back to 1 s.
    assert!(until(Duration::from_secs(61), || fake.starts().len() == 10).await);
    let addr = fake.list()[0].address;
    tokio::time::sleep(Duration::from_millis(300)).await;
    healthy(&pool, addr);
    tokio::time::sleep(Duration::from_millis(500)).await;
    fake.crash("f10");
    assert!(until(Duration::from_secs(5), || fake.starts().len() == 11).await);
    let failed = events("crash_loop", "instance_failed");
    assert!(
        failed
            .last()
            .unwrap()
            .contains("f10: instance exited: exit status 1; replacing it in 1s"),
        "reset by the healthy one: {failed:?}"
    );
    // Nothing of a crashed instance stays in the pool.
    assert_eq!(pool.snapshot().members.len(), 1);
    ctl.close();
}

/// Starts `n` instances in `pool` and makes them healthy.
async fn running(pool: &Arc<Pool>, fake: &Fake, n: usize) -> Vec<SocketAddr> {
    assert!(until(Duration::from_secs(10), || fake.list().len() == n).await);
    let addrs: Vec<SocketAddr> = fake.list().iter().map(|i| i.address).collect();
    for a in &addrs {
        healthy(pool, *a);
    }
    addrs
}

fn set_desired(pool: &Pool, n: u32) {
    pool.desired.store(n, Ordering::Relaxed);
    pool.demand.notify_one();
}

fn begin(pool: &Pool, addr: SocketAddr) -> crate::pool::Inflight {
    let snap = pool.snapshot();
    let i = snap.position(addr).unwrap();
    snap.members[i].stats.try_begin(0).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_drain_waits_for_requests_in_flight_until_its_timeout() {
    let (pool, fake, ctl) = managed("drain_timeout", 3, Fake::default());
    let addrs = running(&pool, &fake, 3).await;
    // Every member has a request in flight; one of them never ends.
    let tokens: Vec<_> = addrs.iter().map(|a| begin(&pool, *a)).collect();
    let t0 = Instant::now();
    set_desired(&pool, 2);
    assert!(until(Duration::from_secs(10), || !fake.stopped().is_empty()).await);
    let (_, at) = fake.stopped()[0].clone();
    let waited = at - t0;
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "stopped after {waited:?}: not before the 5 s drain timeout"
    );
    assert_eq!(events("drain_timeout", "draining").len(), 1);
    assert_eq!(pool.snapshot().members.len(), 2, "removed after the stop");

    // The next scale-down: the request ends after 1 s, the stop follows it.
    let t1 = Instant::now();
    set_desired(&pool, 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.stopped().len(), 1, "still draining");
    drop(tokens);
    assert!(until(Duration::from_secs(10), || fake.stopped().len() == 2).await);
    let waited = fake.stopped()[1].1 - t1;
    assert!(waited < Duration::from_millis(1500), "{waited:?}");
    assert_eq!(*fake.peak.lock().unwrap(), 3, "nothing started");
    ctl.close();
}

#[tokio::test(start_paused = true)]
async fn a_scale_up_during_a_drain_starts_a_new_instance_beside_the_draining_one() {
    let (pool, fake, ctl) = managed("drain_scale", 2, Fake::default());
    let addrs = running(&pool, &fake, 2).await;
    let _busy: Vec<_> = addrs.iter().map(|a| begin(&pool, *a)).collect();
    set_desired(&pool, 1);
    assert!(
        until(Duration::from_secs(2), || events("drain_scale", "draining")
            .len()
            == 1)
        .await
    );
    set_desired(&pool, 2);
    assert!(until(Duration::from_secs(2), || fake.starts().len() == 3).await);
    assert!(fake.stopped().is_empty(), "the draining one still runs");
    // Desired 2 plus the one draining: never more.
    assert_eq!(fake.list().len(), 3);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        fake.stopped().len(),
        1,
        "the draining one stopped at its timeout"
    );
    assert_eq!(fake.list().len(), 2);
    assert_eq!(*fake.peak.lock().unwrap(), 3);
    assert_eq!(fake.starts().len(), 3);
    ctl.close();
}
