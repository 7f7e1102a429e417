//! The controller with time paused: what it does with instances a previous
//! drover left running. The provider is an in-memory stand-in for one that
//! adopts (the real Docker path is tested end to end in tests/docker_provider.rs).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::oneshot;

use super::{controller, Instance, Provider, Started};
use crate::pool::{MemberState, Pool, PoolCommand};

/// Three instances already running at start; records what the controller stops.
#[derive(Default)]
struct Leftovers {
    running: Mutex<Vec<(Instance, oneshot::Sender<String>)>>,
    stopped: Mutex<Vec<String>>,
    starts: Mutex<u32>,
}

impl Provider for Leftovers {
    fn start(&self) -> BoxFuture<'_, Result<Started, String>> {
        *self.starts.lock().unwrap() += 1;
        Box::pin(async { Err("no new instances in this test".to_string()) })
    }

    fn stop(&self, id: &str, _: Duration) -> BoxFuture<'_, ()> {
        self.stopped.lock().unwrap().push(id.to_string());
        // Dropping the sender ends the instance.
        self.running.lock().unwrap().retain(|(i, _)| i.id != id);
        Box::pin(async {})
    }

    fn list(&self) -> Vec<Instance> {
        let r = self.running.lock().unwrap();
        r.iter().map(|(i, _)| i.clone()).collect()
    }

    fn adopt(&self) -> BoxFuture<'_, Vec<Started>> {
        let mut out = Vec::new();
        let mut running = self.running.lock().unwrap();
        for port in 1..=3u16 {
            let (tx, exited) = oneshot::channel();
            let instance = Instance {
                id: format!("c{port}"),
                address: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            running.push((instance.clone(), tx));
            out.push(Started { instance, exited });
        }
        Box::pin(async move { out })
    }
}

fn pool() -> Arc<Pool> {
    let cfg = crate::config::load_str(
        r#"
[pools.p.instances]
provider = "process"
command = ["app"]
[pools.p.autoscale]
min = 1
max = 5
interval = "1s"
target_inflight = 10
scale_down_cooldown = "60s"
"#,
        None,
    )
    .unwrap();
    Arc::new(Pool::new(Arc::new(cfg.pools["p"].clone())))
}

#[tokio::test(start_paused = true)]
async fn adopted_instances_are_kept_for_the_scale_down_cooldown_then_scaled_down() {
    let pool = pool();
    assert_eq!(
        pool.desired.load(Ordering::Relaxed),
        1,
        "min before adoption"
    );
    let provider = Arc::new(Leftovers::default());
    let _ctl = controller::spawn(&pool, provider.clone());
    for _ in 0..100 {
        if pool.snapshot().members.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pool.desired.load(Ordering::Relaxed), 3, "the adopted count");
    let started = tokio::time::Instant::now();
    // Their health checks pass (no health task in this test: done by hand).
    for port in 1..=3u16 {
        let _ = pool.apply(PoolCommand::Transition {
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            from: vec![MemberState::Starting],
            to: MemberState::Healthy,
            reason: "test".to_string(),
        });
    }

    // Idle for the whole cooldown: the policy alone would say 1; three are kept.
    while started.elapsed() < Duration::from_secs(59) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            pool.desired.load(Ordering::Relaxed),
            3,
            "at {:?}",
            started.elapsed()
        );
        assert!(provider.stopped.lock().unwrap().is_empty());
    }
    // Then the autoscaler scales down as usual.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(pool.desired.load(Ordering::Relaxed) < 3);
    assert!(!provider.stopped.lock().unwrap().is_empty());
    assert_eq!(*provider.starts.lock().unwrap(), 0, "nothing was started");
}
