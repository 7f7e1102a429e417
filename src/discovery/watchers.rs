//! [`Watchers`]: one discovery task per pool, kept in step with the router.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::{Discovery, Sink};
use crate::config::{PoolConfig, ResolverConfig};
use crate::pool::Pool;

/// Picks a pool's discovery, if it has one (the caller knows the providers).
pub type Factory = fn(&PoolConfig, &ResolverConfig) -> Option<Arc<dyn Discovery>>;

/// A running watch: the pool it serves, what it depends on, its task, and
/// whether it has answered once.
struct Watch {
    pool: Weak<Pool>,
    identity: String,
    task: tokio::task::JoinHandle<()>,
    answered: tokio::sync::watch::Receiver<bool>,
}

/// Starts and stops the discovery tasks as pools come and go.
pub struct Watchers {
    factory: Factory,
    tasks: Mutex<HashMap<String, Watch>>,
}

impl Watchers {
    pub fn new(factory: Factory) -> Watchers {
        Watchers {
            factory,
            tasks: Mutex::new(HashMap::new()),
        }
    }

    /// Aligns the running tasks with the router's pools (call at start and
    /// after each reload): a pool that is gone, replaced, or whose discovery
    /// changed (kind, name servers) has its task stopped; new ones start.
    pub fn sync(&self, pools: &HashMap<String, Arc<Pool>>, resolver: &ResolverConfig) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        let wanted: HashMap<&String, (&Arc<Pool>, Arc<dyn Discovery>)> = pools
            .iter()
            .filter_map(|(name, p)| {
                (self.factory)(&p.snapshot().config, resolver).map(|d| (name, (p, d)))
            })
            .collect();
        tasks.retain(|name, w| {
            let keep = wanted.get(name).is_some_and(|(p, d)| {
                Weak::ptr_eq(&w.pool, &Arc::downgrade(p)) && d.identity() == w.identity
            });
            if !keep {
                w.task.abort();
            }
            keep
        });
        for (name, (pool, discovery)) in wanted {
            if tasks.contains_key(name) {
                continue;
            }
            let (tx, rx) = tokio::sync::watch::channel(false);
            let sink = Sink::new(pool, discovery.kind(), tx);
            let identity = discovery.identity();
            let task = tokio::spawn(discovery.watch(sink));
            tasks.insert(
                name.clone(),
                Watch {
                    pool: Arc::downgrade(pool),
                    identity,
                    task,
                    answered: rx,
                },
            );
        }
    }

    /// Waits until every watch has answered once (a member set or a failure),
    /// at most `limit`: at start, so the proxy does not open on empty pools.
    pub async fn first_round(&self, limit: Duration) {
        let mut waiting: Vec<tokio::sync::watch::Receiver<bool>> = {
            let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
            tasks.values().map(|w| w.answered.clone()).collect()
        };
        let all = async {
            for rx in &mut waiting {
                let _ = rx.wait_for(|answered| *answered).await;
            }
        };
        let _ = tokio::time::timeout(limit, all).await;
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        let tasks = self.tasks.get_mut().unwrap_or_else(|e| e.into_inner());
        for w in tasks.values() {
            w.task.abort();
        }
    }
}
