//! A log line allowed at most once per interval, counting what it held back
//! (the proxy's accept warnings, the health checks' local failures).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A warning allowed at most once per interval, counting what it suppressed.
#[derive(Debug)]
pub struct RateLimit {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last allowed event, plus one (0 = never).
    last_ms: AtomicU64,
    suppressed: AtomicU64,
    interval: Duration,
}

impl RateLimit {
    pub fn new(interval: Duration) -> RateLimit {
        RateLimit {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
            interval,
        }
    }

    /// `Some(suppressed since the last allowed one)` when an event at `now` may be logged.
    pub fn allow_at(&self, now: Instant) -> Option<u64> {
        let now_ms = now.saturating_duration_since(self.epoch).as_millis() as u64 + 1;
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == 0 || now_ms.saturating_sub(last) >= self.interval.as_millis() as u64;
        if due
            && self
                .last_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// [`RateLimit::allow_at`] now.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_allows_one_per_interval_and_counts_the_rest() {
        let r = RateLimit::new(Duration::from_secs(30));
        let t0 = r.epoch;
        assert_eq!(r.allow_at(t0), Some(0));
        for i in 1..=20 {
            assert_eq!(r.allow_at(t0 + Duration::from_millis(i * 50)), None);
        }
        assert_eq!(r.allow_at(t0 + Duration::from_secs(29)), None);
        assert_eq!(r.allow_at(t0 + Duration::from_secs(30)), Some(21));
        assert_eq!(r.allow_at(t0 + Duration::from_secs(31)), None);
        assert_eq!(r.allow_at(t0 + Duration::from_secs(61)), Some(1));
    }
}
