//! Per-pool counters that outlive snapshots: request-duration histogram, retries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::proxy::errors::Cause;

/// Status codes of the responses drover makes itself, counted per pool.
pub const LOCAL_CODES: [u16; 6] = [400, 408, 499, 502, 503, 504];

/// Upper bounds (seconds) of the request-duration histogram buckets.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A fixed-bucket histogram of durations, atomics only.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Cumulative bucket counts (Prometheus `le` semantics), total count, sum in seconds.
    pub fn read(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut acc = 0;
        let buckets = BUCKETS
            .iter()
            .zip(&self.counts)
            .map(|(b, c)| {
                acc += c.load(Ordering::Relaxed);
                (*b, acc)
            })
            .collect();
        (
            buckets,
            self.count.load(Ordering::Relaxed),
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}

/// Counters of one pool.
#[derive(Debug, Default)]
pub struct PoolMetrics {
    /// `drover_request_duration_seconds{pool}`: request start to response end.
    pub duration: Histogram,
    /// `drover_retries_total{pool}`.
    pub retries: AtomicU64,
    /// Responses drover made itself for this pool, by code ([`LOCAL_CODES`]).
    pub local: [AtomicU64; LOCAL_CODES.len()],
    /// `drover_proxy_errors_total{pool,cause}`, by [`Cause::index`].
    pub errors: [AtomicU64; Cause::LABELS.len()],
    /// `drover_cold_start_seconds{pool}`: how long requests were held for a starting instance.
    pub cold_start: Histogram,
    /// `drover_scale_events_total{pool,direction="up"}`.
    pub scale_up: AtomicU64,
    /// `drover_scale_events_total{pool,direction="down"}`.
    pub scale_down: AtomicU64,
    /// `drover_pool_warm_instances{pool}`: warm instances ready (started,
    /// checked, out of rotation); set by the instance controller.
    pub warm: AtomicU64,
}

impl PoolMetrics {
    /// Counts a response that drover made itself.
    pub fn count_local(&self, code: u16) {
        if let Some(i) = LOCAL_CODES.iter().position(|c| *c == code) {
            self.local[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a failure by its cause.
    pub fn count_error(&self, cause: Cause) {
        self.errors[cause.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// `(code, count)` of the responses drover made itself.
    pub fn local_counts(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        LOCAL_CODES
            .iter()
            .zip(&self.local)
            .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
    }

    /// `(cause label, count)` of the failures, every cause.
    pub fn error_counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Cause::LABELS
            .iter()
            .zip(&self.errors)
            .map(|(l, n)| (*l, n.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(20));
        h.observe(Duration::from_secs(30));
        let (b, count, sum) = h.read();
        assert_eq!(b[0], (0.001, 1));
        assert_eq!(b[4], (0.025, 2));
        assert_eq!(b.last().unwrap().1, 2);
        assert_eq!(count, 3);
        assert!((sum - 30.0205).abs() < 1e-6);
    }
}
