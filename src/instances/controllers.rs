//! [`Controllers`]: the instance controller of every managed pool, kept in
//! step with the router ([`crate::pool::tasks::PoolTasks`]), and the admin
//! API's handle on them ([`super::scale::ScaleControl`]). The providers are
//! built by a [`ProviderFactory`] the application passes in (it knows the
//! docker providers; this layer does not).

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::controller::{spawn, Controller};
use super::Provider;
use crate::config::InstancesConfig;
use crate::pool::tasks::{PoolTasks, Want};
use crate::pool::Pool;

/// A managed pool and its controller.
type Managed = (Weak<Pool>, Arc<Controller>);

/// Builds the provider of a pool's `[instances]` (pool name, its instances
/// settings, drover's owner id); `None` for members drover does not run
/// (`docker_labels`, `dns`: [`crate::discovery`] watches them).
pub type ProviderFactory = fn(&str, InstancesConfig, &str) -> Option<Arc<dyn Provider>>;

/// The controllers of every managed pool, kept in step with the router.
pub struct Controllers {
    factory: ProviderFactory,
    set: PoolTasks<Arc<Controller>>,
}

impl Controllers {
    /// No controller yet; `factory` builds each managed pool's provider.
    pub fn new(factory: ProviderFactory) -> Controllers {
        Controllers {
            factory,
            set: PoolTasks::default(),
        }
    }

    /// Starts controllers for new managed pools; stops the instances of pools
    /// that are gone. A pool keeps its controller as long as it stays in the
    /// router (identity: the pool alone).
    pub fn sync(&self, router: &crate::proxy::router::Router, owner: &str) {
        let wanted = router.pools.iter().map(|(n, p)| Want::pool(n, p, ()));
        self.set.sync(
            wanted,
            |name, pool, ()| {
                let inst = pool.snapshot().config.instances.clone()?;
                let provider = (self.factory)(name, inst, owner)?;
                Some(spawn(pool, provider))
            },
            |_, ctl| {
                ctl.close();
                tokio::spawn(async move { ctl.stop_all(Duration::from_secs(10)).await });
            },
        );
    }

    /// The controller of `pool`, if it has managed instances.
    pub fn get(&self, pool: &str) -> Option<Arc<Controller>> {
        self.set.get(pool, Arc::clone)
    }

    /// Shutdown has begun: no controller starts or replaces an instance any more.
    pub fn close_all(&self) {
        for (_, ctl) in self.all() {
            ctl.close();
        }
    }

    fn all(&self) -> Vec<Managed> {
        self.set.collect(|_, pool, ctl| (pool.clone(), ctl.clone()))
    }

    /// Stops the instances of every pool whose `on_shutdown` is `stop` (drover
    /// exiting), and the warm instances of every pool (they serve nothing).
    pub async fn shutdown(&self) {
        self.close_all();
        let mut stops = Vec::new();
        for (weak, ctl) in self.all() {
            let Some(pool) = weak.upgrade() else { continue };
            let Some(inst) = pool.snapshot().config.instances.clone() else {
                continue;
            };
            if inst.on_shutdown == crate::config::OnShutdown::Stop {
                stops.push(
                    Box::pin(async move { ctl.stop_all(inst.stop_timeout).await })
                        as futures_util::future::BoxFuture<'static, ()>,
                );
            } else {
                stops.push(Box::pin(
                    async move { ctl.stop_warm(inst.stop_timeout).await },
                ));
            }
        }
        futures_util::future::join_all(stops).await;
    }
}

impl super::scale::ScaleControl for Controllers {
    fn set_desired(&self, pool: &str, n: u32) -> Result<(), super::scale::ScaleError> {
        use super::scale::ScaleError;
        let ctl = self
            .get(pool)
            .ok_or_else(|| ScaleError::NoController(pool.to_string()))?;
        ctl.set_desired(n).map_err(ScaleError::Failed)
    }

    fn autoscale(&self, pool: &str) -> Option<crate::autoscale::explain::Explain> {
        Some(self.get(pool)?.explain())
    }

    fn warm(&self, pool: &str) -> Option<crate::autoscale::explain::WarmView> {
        Some(self.get(pool)?.warm_view())
    }
}
