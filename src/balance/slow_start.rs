//! Slow start: the weight ramp of a member that just became healthy.
//!
//! Envoy's formula (`slow_start_config`): over the window the weight factor is
//! `max(MIN_FACTOR, (elapsed / window) ^ (1 / aggression))`, then 1. A pure
//! function of the time since the member became healthy; the request path
//! calls it only while some member of the pool is inside its window.

use std::time::{Duration, Instant};

/// The clock of slow start: tokio's (paused in tests), as a std `Instant`.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Weight factor at the start of the window: 10% (Envoy's `min_weight_percent` default).
pub const MIN_FACTOR: f64 = 0.1;

/// Effective weights are integers in thousandths of a configured weight unit.
pub const WEIGHT_SCALE: u64 = 1000;

/// The weight factor, in `[MIN_FACTOR, 1]`, of a member healthy for `elapsed`
/// with a slow-start `window` of this `aggression` (> 0; 1 = linear).
pub fn ramp(elapsed: Duration, window: Duration, aggression: f64) -> f64 {
    if elapsed >= window {
        return 1.0;
    }
    let t = elapsed.as_secs_f64() / window.as_secs_f64();
    let f = t.powf(1.0 / aggression);
    // NaN (a non-positive aggression slipped through) counts as the floor.
    if f.is_nan() {
        MIN_FACTOR
    } else {
        f.clamp(MIN_FACTOR, 1.0)
    }
}

/// `weight` (>= 1) in thousandths, scaled by `factor` (in `[0, 1]`); never below 1.
pub fn scaled(weight: u32, factor: f64) -> u64 {
    let full = u64::from(weight.max(1)) * WEIGHT_SCALE;
    if factor >= 1.0 {
        return full;
    }
    ((full as f64 * factor).round() as u64).clamp(1, full)
}

/// The slow start of one pool, as selection reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    pub window: Duration,
    pub aggression: f64,
}

impl Ramp {
    /// Effective weight (thousandths) of a member of `weight` healthy `since`, at `now`.
    pub fn weight(&self, weight: u32, since: Option<Instant>, now: Instant) -> u64 {
        match since {
            Some(s) => scaled(
                weight,
                ramp(
                    now.saturating_duration_since(s),
                    self.window,
                    self.aggression,
                ),
            ),
            None => scaled(weight, 1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const W: Duration = Duration::from_secs(30);

    #[test]
    fn ramp_starts_at_the_floor_and_ends_at_full_weight() {
        assert_eq!(ramp(Duration::ZERO, W, 1.0), MIN_FACTOR);
        assert_eq!(ramp(Duration::from_secs(1), W, 1.0), MIN_FACTOR);
        assert!((ramp(Duration::from_secs(15), W, 1.0) - 0.5).abs() < 1e-9);
        assert_eq!(ramp(W, W, 1.0), 1.0);
        assert_eq!(ramp(Duration::from_secs(3600), W, 1.0), 1.0);
        // aggression 2: sqrt, faster at first; 0.5: square, slower.
        assert!((ramp(Duration::from_secs(15), W, 2.0) - 0.5f64.sqrt()).abs() < 1e-9);
        assert!((ramp(Duration::from_secs(15), W, 0.5) - 0.25).abs() < 1e-9);
    }

    #[test]
    fn scaled_weights_are_thousandths_never_zero() {
        assert_eq!(scaled(1, 1.0), 1000);
        assert_eq!(scaled(3, 0.5), 1500);
        assert_eq!(scaled(0, 1.0), 1000);
        assert_eq!(scaled(1, 0.0), 1);
        assert_eq!(scaled(1, f64::NAN), 1);
    }

    #[test]
    fn a_member_without_a_healthy_since_has_full_weight() {
        let r = Ramp {
            window: W,
            aggression: 1.0,
        };
        let now = Instant::now();
        assert_eq!(r.weight(2, None, now), 2000);
        assert_eq!(r.weight(2, Some(now), now), 200);
        assert_eq!(r.weight(2, Some(now), now + W), 2000);
    }

    proptest! {
        #[test]
        fn ramp_is_bounded_and_monotonic(
            a_ms in 0u64..120_000,
            b_ms in 0u64..120_000,
            window_ms in 1u64..100_000,
            aggression in 0.05f64..20.0,
        ) {
            let (lo, hi) = (a_ms.min(b_ms), a_ms.max(b_ms));
            let w = Duration::from_millis(window_ms);
            let f_lo = ramp(Duration::from_millis(lo), w, aggression);
            let f_hi = ramp(Duration::from_millis(hi), w, aggression);
            prop_assert!((MIN_FACTOR..=1.0).contains(&f_lo));
            prop_assert!((MIN_FACTOR..=1.0).contains(&f_hi));
            prop_assert!(f_lo <= f_hi);
            if hi >= window_ms {
                prop_assert_eq!(f_hi, 1.0);
            }
        }

        #[test]
        fn scaled_stays_within_one_and_full(weight in 0u32..10_000, factor in -1.0f64..2.0) {
            let s = scaled(weight, factor);
            prop_assert!(s >= 1);
            prop_assert!(s <= u64::from(weight.max(1)) * WEIGHT_SCALE);
        }
    }
}
