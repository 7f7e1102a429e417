//! Fault tolerance: active health checks, the pure rise/fall counter, and
//! passive ejection (outlier detection from live traffic).
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
pub mod passive;
pub mod probe;

pub use counter::{Flip, RiseFall, Verdict};
pub use passive::Ejection;
pub use probe::{probe, ProbeResult};

use tokio::runtime::Handle;

use crate::pool::tasks::{Aborting, PoolTasks, Want};
use crate::proxy::router::Router;

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

    /// Starts a health task for every pool of `router` that has none, and
    /// stops the tasks of pools that are gone (call after every router swap).
    pub fn sync(&self, router: &Router) {
        let wanted = router.pools.iter().map(|(n, p)| Want::pool(n, p, ()));
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
