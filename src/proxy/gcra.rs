//! The arithmetic of a rate limit: GCRA (the generic cell rate algorithm,
//! ATM Forum TM 4.0; the "virtual scheduling" form), pure and in integer
//! nanoseconds, so one `u64` per key is the whole state.
//!
//! A key's state is its theoretical arrival time `tat`: when its allowance
//! would be back to full if nothing else came. A request at `now` is allowed
//! when `max(tat, now) + interval - now <= tolerance`, and then moves `tat`
//! there. With `interval = ceil(per / requests)` and `tolerance = burst *
//! interval`, a key that was idle may send `burst` requests at once, and in any
//! window of length `t` at most `burst + t / interval <= burst + rate * t` pass.

use std::time::Duration;

/// One rate limit's constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Nanoseconds between two requests at the sustained rate (>= 1).
    pub interval: u64,
    /// `burst * interval`: how far ahead of `now` a key's `tat` may run.
    pub tolerance: u64,
    /// Requests allowed at once (>= 1).
    pub burst: u32,
}

/// What [`Gcra::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed; store `tat`.
    Allow { tat: u64 },
    /// Refused; a request `wait` nanoseconds from now would be allowed (if no
    /// other request of the key is allowed meanwhile). The state is unchanged.
    Deny { wait: u64 },
}

impl Gcra {
    /// `requests` per `per`, `burst` at once. Zeros are raised to the smallest
    /// meaningful value (validation refuses them anyway).
    pub fn new(requests: u32, per: Duration, burst: u32) -> Gcra {
        let per = u64::try_from(per.as_nanos()).unwrap_or(u64::MAX);
        let interval = per.div_ceil(u64::from(requests.max(1))).max(1);
        let burst = burst.max(1);
        Gcra {
            interval,
            tolerance: interval.saturating_mul(u64::from(burst)),
            burst,
        }
    }

    /// Decides for a request at `now` of a key whose state is `tat` (0 for a key never seen).
    pub fn check(&self, tat: u64, now: u64) -> Verdict {
        let new_tat = tat.max(now).saturating_add(self.interval);
        let ahead = new_tat - now;
        if ahead <= self.tolerance {
            Verdict::Allow { tat: new_tat }
        } else {
            Verdict::Deny {
                wait: ahead - self.tolerance,
            }
        }
    }

    /// Requests the key could still send at once at `now`, its state being `tat`.
    pub fn remaining(&self, tat: u64, now: u64) -> u32 {
        let ahead = tat.saturating_sub(now);
        let left = self.tolerance.saturating_sub(ahead) / self.interval;
        u32::try_from(left).unwrap_or(u32::MAX).min(self.burst)
    }

    /// Nanoseconds from `now` until the key's allowance is full again.
    pub fn reset(&self, tat: u64, now: u64) -> u64 {
        tat.saturating_sub(now)
    }
}

/// Whole seconds for `Retry-After` / `RateLimit-Reset`: rounded up, so that a
/// client waiting that long is not refused again for having come too early.
pub fn ceil_secs(nanos: u64) -> u64 {
    nanos.div_ceil(1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn an_idle_key_gets_its_burst_then_the_rate() {
        let g = Gcra::new(10, Duration::from_secs(1), 3);
        assert_eq!(g.interval, SEC / 10);
        let mut tat = 0;
        let now = 5 * SEC;
        for left in [2, 1, 0] {
            match g.check(tat, now) {
                Verdict::Allow { tat: t } => tat = t,
                d => panic!("{d:?}"),
            }
            assert_eq!(g.remaining(tat, now), left);
        }
        assert_eq!(g.check(tat, now), Verdict::Deny { wait: SEC / 10 });
        assert_eq!(g.reset(tat, now), 3 * SEC / 10);
        // One interval later exactly one more passes.
        let later = now + SEC / 10;
        assert!(matches!(g.check(tat, later), Verdict::Allow { .. }));
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_secs(0), 0);
        assert_eq!(ceil_secs(1), 1);
        assert_eq!(ceil_secs(SEC), 1);
        assert_eq!(ceil_secs(SEC + 1), 2);
    }

    proptest! {
        /// In every window [a, a + t] of a random request sequence, no more than
        /// `burst + rate * t` requests are allowed; a refused request is
        /// allowed after its `wait` (Retry-After is right) and not a nanosecond
        /// before it.
        #[test]
        fn never_more_than_burst_plus_rate_times_t(
            requests in 1u32..50,
            per_ms in 1u64..3000,
            burst in 1u32..20,
            gaps in proptest::collection::vec(0u64..200_000_000, 1..200),
        ) {
            let per = Duration::from_millis(per_ms);
            let g = Gcra::new(requests, per, burst);
            let mut tat = 0u64;
            let mut now = SEC;
            let mut allowed: Vec<u64> = Vec::new();
            for gap in gaps {
                now += gap;
                match g.check(tat, now) {
                    Verdict::Allow { tat: t } => {
                        prop_assert!(t > tat);
                        tat = t;
                        allowed.push(now);
                    }
                    Verdict::Deny { wait } => {
                        prop_assert!(wait > 0);
                        let at = now + wait;
                        prop_assert!(matches!(g.check(tat, at), Verdict::Allow { .. }), "allowed after its wait");
                        prop_assert!(matches!(g.check(tat, at - 1), Verdict::Deny { .. }), "not before it");
                        prop_assert!(ceil_secs(wait) * SEC >= wait);
                    }
                }
            }
            let per_ns = per.as_nanos() as f64;
            for (i, &a) in allowed.iter().enumerate() {
                for (j, &b) in allowed.iter().enumerate().skip(i) {
                    let t = (b - a) as f64;
                    let n = (j - i + 1) as f64;
                    let bound = f64::from(burst) + f64::from(requests) * t / per_ns;
                    prop_assert!(n <= bound + 1e-9, "{n} requests in {t} ns > {bound}");
                }
            }
        }

        /// `remaining` never exceeds the burst and is 0 exactly when the next request is refused.
        #[test]
        fn remaining_agrees_with_check(
            requests in 1u32..100, burst in 1u32..50, tat in 0u64..10 * SEC, now in 0u64..10 * SEC,
        ) {
            let g = Gcra::new(requests, Duration::from_secs(1), burst);
            let left = g.remaining(tat, now);
            prop_assert!(left <= burst);
            let next_allowed = matches!(g.check(tat, now), Verdict::Allow { .. });
            prop_assert_eq!(left > 0, next_allowed);
        }
    }
}
