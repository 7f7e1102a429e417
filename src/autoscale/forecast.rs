//! Predictive scaling: Holt's linear trend (double exponential smoothing)
//! over the target metric's total, one value per autoscale interval, and
//! the forecast `1 + start_time / interval` intervals ahead — when an
//! instance started now would be ready.
//!
//! `level = α·x + (1-α)·(level + trend)`,
//! `trend = β·(level - level_prev) + (1-β)·trend`,
//! `forecast(h) = level + h·trend` (never below 0).
//!
//! Pure: the controller feeds it one observation per evaluation and passes
//! the forecast to [`crate::autoscale::policy::decide_with`].

use std::time::Duration;

/// Smoothing of the level. Default 0.5.
pub const ALPHA: f64 = 0.5;
/// Smoothing of the trend. Default 0.2.
pub const BETA: f64 = 0.2;
/// Longest horizon, in intervals (a slow start time must not extrapolate a
/// trend for ever). Default 12.
pub const MAX_STEPS: f64 = 12.0;

/// Holt's linear trend over one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Holt {
    alpha: f64,
    beta: f64,
    level: Option<f64>,
    trend: f64,
    observed: u32,
}

impl Default for Holt {
    fn default() -> Holt {
        Holt::new(ALPHA, BETA)
    }
}

impl Holt {
    /// With smoothing factors `alpha` (level) and `beta` (trend), both in (0, 1].
    pub fn new(alpha: f64, beta: f64) -> Holt {
        Holt {
            alpha: alpha.clamp(f64::EPSILON, 1.0),
            beta: beta.clamp(f64::EPSILON, 1.0),
            level: None,
            trend: 0.0,
            observed: 0,
        }
    }

    /// Takes the next observation (non-finite values are ignored).
    pub fn observe(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.observed = self.observed.saturating_add(1);
        match self.level {
            None => self.level = Some(x),
            Some(prev) => {
                if self.observed == 2 {
                    self.trend = x - prev;
                }
                let level = self.alpha * x + (1.0 - self.alpha) * (prev + self.trend);
                self.trend = self.beta * (level - prev) + (1.0 - self.beta) * self.trend;
                self.level = Some(level);
            }
        }
    }

    /// The value `steps` observations ahead; None before two observations.
    pub fn forecast(&self, steps: f64) -> Option<f64> {
        let level = self.level?;
        if self.observed < 2 {
            return None;
        }
        let steps = steps.clamp(0.0, MAX_STEPS);
        Some((level + steps * self.trend).max(0.0))
    }

    /// The current trend per observation.
    pub fn trend(&self) -> f64 {
        self.trend
    }
}

/// Intervals ahead to forecast: one interval plus the instances' observed
/// start time (capped at [`MAX_STEPS`]).
pub fn horizon(interval: Duration, start_time: Duration) -> f64 {
    let i = interval.as_secs_f64().max(1e-3);
    (1.0 + start_time.as_secs_f64() / i).min(MAX_STEPS)
}

/// The forecast handed to the policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// The target metric's total (in-flight requests, or requests per second) expected.
    pub value: f64,
    /// How far ahead.
    pub ahead: Duration,
}

/// The running average of observed instance start times (start → first
/// passing health check), weighted 0.3 to the newest.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StartTime(Option<Duration>);

impl StartTime {
    /// Records one start that took `took`.
    pub fn record(&mut self, took: Duration) {
        self.0 = Some(match self.0 {
            None => took,
            Some(prev) => prev.mul_f64(0.7) + took.mul_f64(0.3),
        });
    }

    /// The average, or zero before any start was seen.
    pub fn get(&self) -> Duration {
        self.0.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn needs_two_observations() {
        let mut h = Holt::default();
        assert_eq!(h.forecast(1.0), None);
        h.observe(10.0);
        assert_eq!(h.forecast(1.0), None);
        h.observe(12.0);
        assert!(h.forecast(1.0).is_some());
    }

    #[test]
    fn a_steady_ramp_is_forecast_ahead_exactly() {
        let mut h = Holt::default();
        for i in 0..20 {
            h.observe(10.0 + 5.0 * f64::from(i));
        }
        // last = 105; 3 steps ahead = 120.
        let f = h.forecast(3.0).unwrap();
        assert!((f - 120.0).abs() < 1e-6, "{f}");
    }

    #[test]
    fn a_flat_series_forecasts_itself() {
        let mut h = Holt::default();
        for _ in 0..10 {
            h.observe(42.0);
        }
        assert!((h.forecast(5.0).unwrap() - 42.0).abs() < 1e-9);
    }

    #[test]
    fn never_below_zero_and_horizon_capped() {
        let mut h = Holt::default();
        for i in 0..10 {
            h.observe(100.0 - 10.0 * f64::from(i));
        }
        assert_eq!(h.forecast(50.0), Some(0.0));
        assert_eq!(
            horizon(Duration::from_secs(5), Duration::from_secs(10)),
            3.0
        );
        assert_eq!(
            horizon(Duration::from_millis(100), Duration::from_secs(60)),
            MAX_STEPS
        );
    }

    #[test]
    fn start_time_averages_towards_the_newest() {
        let mut s = StartTime::default();
        assert_eq!(s.get(), Duration::ZERO);
        s.record(Duration::from_secs(10));
        assert_eq!(s.get(), Duration::from_secs(10));
        s.record(Duration::from_secs(0));
        assert_eq!(s.get(), Duration::from_secs(7));
    }

    proptest! {
        #[test]
        fn forecast_is_finite_and_bounded_by_the_series(xs in prop::collection::vec(0.0f64..1e6, 2..60), steps in 0.0f64..20.0) {
            let mut h = Holt::default();
            for x in &xs { h.observe(*x); }
            let f = h.forecast(steps).unwrap();
            prop_assert!(f.is_finite() && f >= 0.0);
            // Level within the series' range; trend at most the range per step.
            let range = xs.iter().cloned().fold(f64::MIN, f64::max) - xs.iter().cloned().fold(f64::MAX, f64::min);
            let hi = xs.iter().cloned().fold(f64::MIN, f64::max);
            prop_assert!(f <= hi + (MAX_STEPS + 1.0) * range * 2.0 + 1e-6);
        }
    }
}
