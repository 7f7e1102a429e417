//! Desired-instance control as the admin API sees it: [`ScaleControl`], set
//! and read a managed pool's desired count (`PUT /api/v1/pools/{pool}/scale`),
//! implemented by the instance controller. Here, below the admin API, so that
//! the controller implements it without naming the admin API; the API checks
//! the pool's bounds first (`admin/scale.rs`).

/// Why a desired-count change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    /// 409: the pool is static.
    #[error("pool {0} has no managed instances (add [pools.{0}.instances] to the config)")]
    NotManaged(String),
    /// 400: outside the pool's bounds.
    #[error("{n} instances is outside [{min}, {max}] for pool {pool}{why}")]
    OutOfRange {
        pool: String,
        n: u32,
        min: u32,
        max: u32,
        why: &'static str,
    },
    /// 503: nothing is managing instances in this process.
    #[error("no instance controller is running for pool {0}")]
    NoController(String),
    /// 500: the controller failed to apply it.
    #[error("{0}")]
    Failed(String),
}

/// Sets and reads the desired instance count of managed pools.
pub trait ScaleControl: Send + Sync {
    /// Sets `pool`'s desired instance count now and records the `scale_set`
    /// event; the controller starts or drains and stops instances to reach it. `n` is already within the pool's
    /// bounds (`admin::scale::bounds`).
    fn set_desired(&self, pool: &str, n: u32) -> Result<(), ScaleError>;
    /// What the autoscaler of `pool` saw and decided
    /// ([`crate::autoscale::explain::Explain`]). Default: none.
    fn autoscale(&self, pool: &str) -> Option<crate::autoscale::explain::Explain> {
        let _ = pool;
        None
    }
    /// The warm pool of `pool`. Default: none.
    fn warm(&self, pool: &str) -> Option<crate::autoscale::explain::WarmView> {
        let _ = pool;
        None
    }
}
