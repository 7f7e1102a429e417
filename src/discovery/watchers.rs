//! [`Watchers`]: one discovery task per pool, kept in step with the router.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{Discovery, Sink};
use crate::config::{PoolConfig, ResolverConfig};
use crate::pool::tasks::{Aborting, PoolTasks, Want};
use crate::pool::Pool;

/// Picks a pool's discovery, if it has one (the caller knows the providers).
pub type Factory = fn(&PoolConfig, &ResolverConfig) -> Option<Arc<dyn Discovery>>;

/// A running watch: its task (aborted when dropped), and whether it has answered once.
struct Watch {
    _task: Aborting,
    answered: tokio::sync::watch::Receiver<bool>,
}

/// Starts and stops the discovery tasks as pools come and go.
pub struct Watchers {
    factory: Factory,
    tasks: PoolTasks<Watch>,
}

impl Watchers {
    pub fn new(factory: Factory) -> Watchers {
        Watchers {
            factory,
            tasks: PoolTasks::default(),
        }
    }

    /// Aligns the running tasks with the router's pools (call at start and
    /// after each reload): a pool that is gone, replaced, or whose discovery
    /// changed (kind, name servers: [`Discovery::identity`]) has its task
    /// stopped; new ones start.
    pub fn sync(&self, pools: &HashMap<String, Arc<Pool>>, resolver: &ResolverConfig) {
        let wanted = pools.iter().filter_map(|(name, p)| {
            let d = (self.factory)(&p.snapshot().config, resolver)?;
            Some(Want {
                name: name.clone(),
                pool: p.clone(),
                identity: d.identity(),
                with: d,
            })
        });
        self.tasks.sync(
            wanted,
            |_, pool, discovery| {
                let (tx, answered) = tokio::sync::watch::channel(false);
                let sink = Sink::new(pool, discovery.kind(), tx);
                let task = tokio::spawn(discovery.watch(sink));
                let _task = Aborting(task.abort_handle());
                Some(Watch { _task, answered })
            },
            |_, watch| drop(watch),
        );
    }

    /// Waits until every watch has answered once (a member set or a failure),
    /// at most `limit`: at start, so the proxy does not open on empty pools.
    pub async fn first_round(&self, limit: Duration) {
        let mut waiting = self.tasks.collect(|_, _, w| w.answered.clone());
        let all = async {
            for rx in &mut waiting {
                let _ = rx.wait_for(|answered| *answered).await;
            }
        };
        let _ = tokio::time::timeout(limit, all).await;
    }
}
