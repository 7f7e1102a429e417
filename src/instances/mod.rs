//! Managed instances: the [`Provider`] trait (start / stop / list) and the
//! per-pool [`controller`] that keeps the desired number running: it starts,
//! replaces (with back-off), drains and stops instances. Its decisions are
//! the pure [`reconcile`]; the controller observes and executes them.

mod ahead;
pub mod controller;
pub mod controllers;
pub mod output;
pub mod process;
pub mod reconcile;
pub mod scale;
pub mod supervise;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_controller;
#[cfg(test)]
mod tests_reconcile;
pub mod warm;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::oneshot;

/// One running instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Provider-specific id (process: `p<pid>`; docker: the container id).
    pub id: String,
    /// Where drover dials it.
    pub address: SocketAddr,
}

/// A started instance and the signal that it ended (with a reason).
pub struct Started {
    pub instance: Instance,
    /// Resolves when the instance exits or disappears, with why.
    pub exited: oneshot::Receiver<String>,
}

/// Starts and stops the instances of one pool.
pub trait Provider: Send + Sync {
    /// Starts one instance.
    fn start(&self) -> BoxFuture<'_, Result<Started, String>>;
    /// Stops one instance: graceful first, forced after `timeout`.
    fn stop(&self, id: &str, timeout: Duration) -> BoxFuture<'_, ()>;
    /// The instances this provider started that still run.
    fn list(&self) -> Vec<Instance>;
    /// Process groups of running instances (for `cpu_percent`). Default: none.
    fn process_groups(&self) -> Vec<i32> {
        Vec::new()
    }
    /// Instances a previous drover left running, taken over (and leftovers
    /// that stopped, removed). Default: none (processes die with drover).
    fn adopt(&self) -> BoxFuture<'_, Vec<Started>> {
        Box::pin(async { Vec::new() })
    }
    /// The instance count the provider itself keeps, when it has one (a Swarm
    /// service's `replicas`); read once after adoption. Default: none (the
    /// adopted count is used).
    fn scale(&self) -> BoxFuture<'_, Option<u32>> {
        Box::pin(async { None })
    }
    /// Freezes a warm instance while it waits (process: SIGSTOP; docker:
    /// pause). Default: not supported.
    fn freeze(&self, id: &str) -> BoxFuture<'_, Result<(), String>> {
        let _ = id;
        Box::pin(async { Err("this provider cannot freeze instances".to_string()) })
    }
    /// Thaws a frozen instance (process: SIGCONT; docker: unpause). Default: nothing to do.
    fn thaw(&self, id: &str) -> BoxFuture<'_, Result<(), String>> {
        let _ = id;
        Box::pin(async { Ok(()) })
    }
}
