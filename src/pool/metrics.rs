//! Per-pool counters that outlive snapshots: request-duration histogram, retries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::Cause;

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

/// The `q` quantile (0..1) from per-bucket counts (not cumulative) over
/// [`BUCKETS`], interpolated linearly inside the bucket that holds it (a
/// bucket's observations are taken as spread evenly between its bounds, the
/// first bucket's from 0); `total` includes observations above the last
/// bucket, reported as the last bound. Seconds; `None` without observations.
pub fn quantile(per_bucket: &[u64], total: u64, q: f64) -> Option<f64> {
    if total == 0 {
        return None;
    }
    let target = q.clamp(0.0, 1.0) * total as f64;
    let mut acc = 0u64;
    let mut lower = 0.0;
    for (n, upper) in per_bucket.iter().zip(BUCKETS) {
        if *n > 0 && (acc + n) as f64 >= target {
            let frac = ((target - acc as f64) / *n as f64).clamp(0.0, 1.0);
            return Some(lower + (upper - lower) * frac);
        }
        acc += n;
        lower = upper;
    }
    Some(BUCKETS[BUCKETS.len() - 1])
}

/// Per-bucket counts from cumulative ones (as [`Histogram::read`] gives them).
pub fn per_bucket(cumulative: &[u64]) -> Vec<u64> {
    let mut prev = 0;
    cumulative
        .iter()
        .map(|c| {
            let d = c.saturating_sub(prev);
            prev = prev.max(*c);
            d
        })
        .collect()
}

/// Counters of one pool.
#[derive(Debug, Default)]
pub struct PoolMetrics {
    /// `drover_request_duration_seconds{pool}`: request start to response end.
    pub duration: Histogram,
    /// `drover_upstream_response_seconds{pool}`: request start to the backend's
    /// response head (queueing and retries included; the body, an upgrade
    /// tunnel or a long stream after the head are not). The autoscaler's p95.
    pub response: Histogram,
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
    use proptest::prelude::*;

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let mut per = vec![0u64; BUCKETS.len()];
        assert_eq!(quantile(&per, 0, 0.5), None);
        // 10 requests in (0.005, 0.01], 10 in (0.05, 0.1].
        per[3] = 10;
        per[6] = 10;
        let p50 = quantile(&per, 20, 0.5).unwrap();
        assert!((p50 - 0.01).abs() < 1e-9, "{p50}");
        let p95 = quantile(&per, 20, 0.95).unwrap();
        assert!((p95 - 0.095).abs() < 1e-9, "{p95}");
        // 100 requests all in (0.1, 0.25]: p95 is 95% of the way, not the edge.
        let mut one = vec![0u64; BUCKETS.len()];
        one[7] = 100;
        let p95 = quantile(&one, 100, 0.95).unwrap();
        assert!((p95 - (0.1 + 0.15 * 0.95)).abs() < 1e-9, "{p95}");
        // Everything above the last bucket reports the last bound.
        assert_eq!(quantile(&vec![0; BUCKETS.len()], 3, 0.5), Some(10.0));
    }

    #[test]
    fn per_bucket_undoes_the_cumulative_sum() {
        assert_eq!(per_bucket(&[1, 1, 4, 9]), vec![1, 0, 3, 5]);
        assert_eq!(per_bucket(&[]), Vec::<u64>::new());
    }

    proptest! {
        /// The quantile lies inside the bucket that holds the q-th observation
        /// and grows with q.
        #[test]
        fn quantile_is_inside_its_bucket_and_monotone(
            counts in proptest::collection::vec(0u64..50, BUCKETS.len()),
            above in 0u64..5,
            q1 in 0.0f64..=1.0,
            q2 in 0.0f64..=1.0,
        ) {
            let total = counts.iter().sum::<u64>() + above;
            let (lo_q, hi_q) = if q1 <= q2 { (q1, q2) } else { (q2, q1) };
            match (quantile(&counts, total, lo_q), quantile(&counts, total, hi_q)) {
                (None, None) => prop_assert_eq!(total, 0),
                (Some(a), Some(b)) => {
                    prop_assert!(a <= b + 1e-12, "{} > {}", a, b);
                    prop_assert!((0.0..=BUCKETS[BUCKETS.len() - 1]).contains(&b));
                    // The bucket holding rank ceil(q * total) bounds the answer.
                    let rank = ((hi_q * total as f64).ceil() as u64).max(1);
                    let mut acc = 0;
                    let bucket = counts.iter().position(|n| { acc += n; acc >= rank });
                    if let Some(i) = bucket {
                        let lower = if i == 0 { 0.0 } else { BUCKETS[i - 1] };
                        prop_assert!(b >= lower - 1e-12 && b <= BUCKETS[i] + 1e-12,
                            "q {} -> {} outside bucket {} ({}..{})", hi_q, b, i, lower, BUCKETS[i]);
                    }
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }

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
