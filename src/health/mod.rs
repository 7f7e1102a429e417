//! Fault tolerance: active health checks and the pure rise/fall counter.
//! Passive ejection (outlier detection from live traffic) is pool
//! bookkeeping, in [`crate::pool::ejection`]; this module's health task
//! returns ejected members to rotation.
//!
//! Health state is the member's state in the pool snapshot — changed only
//! through [`crate::pool::Pool::apply`], swapped together with membership.
//! One task per pool ([`checker::run`]) probes the members and returns
//! ejected ones to rotation; the [`Supervisor`] starts and stops those tasks
//! as reloads add and remove pools.

pub mod checker;
pub mod counter;
pub mod first_round;
pub mod grpc;
pub mod local;
pub mod probe;

pub use counter::{Flip, RiseFall, Verdict};
pub use probe::{probe, ProbeResult};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use crate::pool::Pool;

/// Owns the per-pool health tasks (on the runtime it was created in).
pub struct Supervisor {
    runtime: Handle,
    tasks: Mutex<Vec<(Arc<Pool>, AbortHandle)>>,
}

impl Supervisor {
    /// A supervisor spawning its tasks on `runtime`.
    pub fn new(runtime: Handle) -> Supervisor {
        Supervisor {
            runtime,
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Starts a health task for every pool of `pools` (the router's, by
    /// name) that has none, and stops the tasks of pools that are gone (call
    /// after every router swap).
    pub fn sync(&self, pools: &HashMap<String, Arc<Pool>>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|(pool, task)| {
            let kept = pools.values().any(|p| Arc::ptr_eq(p, pool));
            if !kept {
                task.abort();
            }
            kept
        });
        for pool in pools.values() {
            if !tasks.iter().any(|(p, _)| Arc::ptr_eq(p, pool)) {
                let task = self.runtime.spawn(checker::run(pool.clone()));
                tasks.push((pool.clone(), task.abort_handle()));
            }
        }
    }

    /// Pools with a running health task.
    pub fn pools(&self) -> Vec<String> {
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.iter().map(|(p, _)| p.name.clone()).collect()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let tasks = self.tasks.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, t) in tasks.drain(..) {
            t.abort();
        }
    }
}
