//! Load-balancing: one small [`Selector`] trait, one file per algorithm.
//!
//! Load (in-flight requests, latency EWMA) is measured apart from selection in
//! [`LoadStats`]; a selector is built from an immutable member set off the request
//! path ([`build`]) and swapped in whole with the pool snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::Balance;

mod hash;
mod least_conn;
mod p2c_ewma;
mod random;
mod round_robin;
pub mod slow_start;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_policy;
mod weighted_round_robin;

pub use hash::{bounded_capacity, hash_key_bytes, HashSelector};
pub use least_conn::LeastConn;
pub use p2c_ewma::P2cEwma;
pub use random::Random;
pub use round_robin::RoundRobin;
pub use weighted_round_robin::WeightedRoundRobin;

/// Per-member load, shared between every worker thread (atomics only).
#[derive(Debug, Default)]
pub struct LoadStats {
    inflight: AtomicU64,
    /// Latency EWMA in microseconds, stored as `f64` bits. 0 = no sample yet.
    ewma_us: AtomicU64,
}

/// Weight of the newest latency sample in the EWMA (0..1).
pub const EWMA_ALPHA: f64 = 0.3;

impl LoadStats {
    /// Requests currently in flight to this member.
    pub fn inflight(&self) -> u64 {
        self.inflight.load(Ordering::Relaxed)
    }

    /// Latency EWMA in milliseconds (0 before the first sample).
    pub fn ewma_ms(&self) -> f64 {
        f64::from_bits(self.ewma_us.load(Ordering::Relaxed)) / 1000.0
    }

    /// Adds one latency sample to the EWMA.
    pub fn observe(&self, latency: Duration) {
        let sample = latency.as_secs_f64() * 1e6;
        let _ = self
            .ewma_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let old = f64::from_bits(bits);
                let new = if old == 0.0 {
                    sample
                } else {
                    old + EWMA_ALPHA * (sample - old)
                };
                Some(new.to_bits())
            });
    }

    /// Increments in-flight without a token (tests and benchmarks; requests
    /// use `MemberStats::try_begin`, whose token ends them).
    pub fn begin_raw(&self) {
        self.inflight.fetch_add(1, Ordering::Relaxed);
    }

    /// Increments in-flight only while it is below `limit` (0 = no limit);
    /// `false` = the member is at its limit. Only `MemberStats::try_begin`
    /// calls it, and its token calls [`LoadStats::end`].
    pub(crate) fn try_begin_raw(&self, limit: u64) -> bool {
        if limit == 0 {
            self.begin_raw();
            return true;
        }
        self.inflight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Decrements in-flight (only the in-flight token calls it).
    pub(crate) fn end(&self) {
        self.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The member set a selector chooses from (implemented by the pool snapshot).
pub trait MemberSet {
    /// Number of members (eligible or not).
    fn len(&self) -> usize;
    /// Whether there are no members.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Configured weight of member `i` (>= 1).
    fn weight(&self, i: usize) -> u32;
    /// Live load of member `i`.
    fn load(&self, i: usize) -> &LoadStats;
    /// Effective weight of member `i` in thousandths ([`slow_start::WEIGHT_SCALE`]):
    /// its weight, scaled down while it is in its slow-start window. `now` is
    /// `None` when no window is active (then: the configured weight).
    fn effective_weight(&self, i: usize, now: Option<Instant>) -> u64 {
        let _ = now;
        slow_start::scaled(self.weight(i), 1.0)
    }
}

/// Per-request input to selection.
#[derive(Debug, Default, Clone, Copy)]
pub struct SelectContext {
    /// Hash of the request's `hash_key` (only for `balance = "hash"`).
    pub hash: Option<u64>,
    /// The time, only while some member is in its slow-start window
    /// (selection then reads effective weights; `None` = all at full weight).
    pub now: Option<Instant>,
}

/// One load-balancing algorithm.
///
/// `eligible(i)` says whether member `i` may take this request (healthy, not
/// draining, not already tried, below its connection limit). A selector returns
/// `None` only when no member is eligible.
pub trait Selector: Send + Sync {
    fn select(
        &self,
        members: &dyn MemberSet,
        ctx: &SelectContext,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize>;
}

/// Builds the selector for `balance` over members with these `weights`;
/// `seeds[i]` is a stable identity of member `i` (for `hash`: a hash of its
/// address); `bounded_load` is the hash's load factor (`None` = unbounded).
pub fn build(
    balance: Balance,
    weights: &[u32],
    seeds: &[u64],
    bounded_load: Option<f64>,
) -> Box<dyn Selector> {
    match balance {
        Balance::RoundRobin => Box::new(RoundRobin::default()),
        Balance::WeightedRoundRobin => Box::new(WeightedRoundRobin::new(weights.len())),
        Balance::LeastConn => Box::new(LeastConn::default()),
        Balance::Random => Box::new(Random),
        Balance::P2cEwma => Box::new(P2cEwma),
        Balance::Hash => Box::new(HashSelector::new(seeds.to_vec()).bounded(bounded_load)),
    }
}

/// A plain member set (weights and loads), for tests and benchmarks.
#[derive(Debug, Default)]
pub struct StaticMembers {
    pub weights: Vec<u32>,
    pub loads: Vec<LoadStats>,
    /// Slow-start factor per member, applied when selection has a `now`
    /// (empty = every member at full weight).
    pub factors: Vec<f64>,
}

impl StaticMembers {
    /// `n` members with these weights and no load.
    pub fn with_weights(weights: Vec<u32>) -> Self {
        let loads = weights.iter().map(|_| LoadStats::default()).collect();
        StaticMembers {
            weights,
            loads,
            factors: Vec::new(),
        }
    }
}

impl MemberSet for StaticMembers {
    fn len(&self) -> usize {
        self.weights.len()
    }
    fn weight(&self, i: usize) -> u32 {
        self.weights[i]
    }
    fn load(&self, i: usize) -> &LoadStats {
        &self.loads[i]
    }
    fn effective_weight(&self, i: usize, now: Option<Instant>) -> u64 {
        let f = now
            .and_then(|_| self.factors.get(i).copied())
            .unwrap_or(1.0);
        slow_start::scaled(self.weights[i], f)
    }
}
