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
use std::sync::Arc;

use tokio::runtime::Handle;

use crate::pool::tasks::{Aborting, PoolTasks, Want};
use crate::pool::Pool;

/// Owns the per-pool health tasks (on the runtime it was created in); a
/// task ends when its pool leaves the router or the supervisor is dropped.
pub struct Supervisor {
    runtime: Handle,
    tasks: PoolTasks<Aborting>,
}

impl Supervisor {
    /// A supervisor spawning its tasks on `runtime`.
    pub fn new(runtime: Handle) -> Supervisor {
        Supervisor {
            runtime,
            tasks: PoolTasks::default(),
        }
    }

    /// Starts a health task for every pool of `pools` (the router's, by
    /// name) that has none, and stops the tasks of pools that are gone (call
    /// after every router swap).
    pub fn sync(&self, pools: &HashMap<String, Arc<Pool>>) {
        let wanted = pools.iter().map(|(n, p)| Want::pool(n, p, ()));
        self.tasks.sync(
            wanted,
            |_, pool, ()| {
                let task = self.runtime.spawn(checker::run(pool.clone()));
                Some(Aborting(task.abort_handle()))
            },
            |_, task| drop(task),
        );
    }

    /// Pools with a running health task.
    pub fn pools(&self) -> Vec<String> {
        self.tasks.collect(|name, _, _| name.to_string())
    }
}
