//! What the autoscaler saw and decided, for `GET /api/v1/pools/{pool}/autoscale`,
//! `drover ctl autoscale POOL` and the dashboard: the inputs of the last
//! evaluation, each recommendation, the limit that held the result back,
//! and the last [`KEEP`] decisions.

use std::collections::VecDeque;
use std::time::SystemTime;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::forecast::Forecast;
use super::policy::{Decision, Recommendation, Window};
use super::schedule::Bounds;

/// Decisions kept. Default 20.
pub const KEEP: usize = 20;

/// The measured inputs of one evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Measured {
    pub ready: u32,
    pub starting: u32,
    pub inflight: f64,
    pub inflight_short: f64,
    pub rps: f64,
    pub p95_ms: Option<f64>,
    pub error_rate: f64,
    pub cpu_percent: Option<f64>,
    /// Seconds since the pool's last request (null: none yet).
    pub idle_for_s: Option<f64>,
}

impl From<&Window> for Measured {
    fn from(w: &Window) -> Measured {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        Measured {
            ready: w.ready,
            starting: w.starting,
            inflight: r(w.inflight),
            inflight_short: r(w.inflight_short),
            rps: r(w.rps),
            p95_ms: w.p95_ms,
            error_rate: r(w.error_rate),
            cpu_percent: w.cpu_percent.map(r),
            idle_for_s: (w.idle_for != std::time::Duration::MAX)
                .then(|| r(w.idle_for.as_secs_f64())),
        }
    }
}

/// The forecast shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ForecastView {
    /// The target metric's total expected `ahead_s` from now.
    pub value: f64,
    pub ahead_s: f64,
    /// Change per interval.
    pub trend: f64,
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DecisionView {
    pub ts: String,
    pub from: u32,
    pub to: u32,
    pub reason: String,
    pub limit: Option<Cow<'static, str>>,
    /// Evaluations in a row that decided the same (the last one's `ts`).
    pub times: u32,
}

/// The warm pool's counts.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct WarmView {
    /// `warm = N`.
    pub configured: u32,
    /// Wanted now (0 at zero with `warm_at_zero = false`, or while closing).
    pub wanted: u32,
    /// Started, checked and waiting (frozen with `warm_freeze`).
    pub ready: u32,
    /// Started, not checked yet.
    pub starting: u32,
    pub frozen: bool,
}

/// Everything `GET /api/v1/pools/{pool}/autoscale` returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Explain {
    pub desired: u32,
    /// Time of the last evaluation (null: none yet).
    pub evaluated: Option<String>,
    pub inputs: Measured,
    pub predictive: bool,
    pub forecast: Option<ForecastView>,
    /// Average observed instance start time (start → first passing check), seconds.
    pub start_time_s: f64,
    /// Bounds in force (the schedule's window, if one is open).
    pub min: u32,
    pub max: u32,
    pub schedule: Vec<super::schedule::OpenWindow>,
    pub recommendations: Vec<Recommendation>,
    /// What held the result back: `scale_up_cooldown`, `rate_limit`,
    /// `stabilization`, `starting`, `burst`, `hold`, `min`, `max` (null: nothing).
    pub limit: Option<Cow<'static, str>>,
    pub warm: WarmView,
    /// Newest last.
    #[schema(value_type = Vec<DecisionView>)]
    pub decisions: VecDeque<DecisionView>,
}

/// One evaluation, as [`Explain::record`] takes it.
pub struct Evaluation<'a> {
    pub window: &'a Window,
    pub forecast: Option<(Forecast, f64)>,
    pub predictive: bool,
    pub start_time: std::time::Duration,
    pub bounds: &'a Bounds,
    pub from: u32,
    pub decision: &'a Decision,
}

impl Explain {
    /// Records an evaluation made at `at`.
    pub fn record(&mut self, e: Evaluation<'_>, at: SystemTime) {
        let ts = crate::access_log::rfc3339(at);
        let d = e.decision;
        self.desired = d.desired;
        self.evaluated = Some(ts.clone());
        self.inputs = Measured::from(e.window);
        self.predictive = e.predictive;
        self.forecast = e.forecast.map(|(f, trend)| ForecastView {
            value: (f.value * 1000.0).round() / 1000.0,
            ahead_s: (f.ahead.as_secs_f64() * 1000.0).round() / 1000.0,
            trend: (trend * 1000.0).round() / 1000.0,
        });
        self.start_time_s = (e.start_time.as_secs_f64() * 1000.0).round() / 1000.0;
        self.min = e.bounds.min;
        self.max = e.bounds.max;
        self.schedule = e.bounds.open.clone();
        self.recommendations = d.recommendations.clone();
        self.limit = d.limit.map(Cow::Borrowed);
        if let Some(last) = self.decisions.back_mut() {
            if last.from == e.from && last.to == d.desired && last.reason == d.reason {
                last.times = last.times.saturating_add(1);
                last.ts = ts;
                return;
            }
        }
        self.decisions.push_back(DecisionView {
            ts,
            from: e.from,
            to: d.desired,
            reason: d.reason.clone(),
            limit: d.limit.map(Cow::Borrowed),
            times: 1,
        });
        while self.decisions.len() > KEEP {
            self.decisions.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn decision(to: u32, reason: &str) -> Decision {
        Decision {
            desired: to,
            reason: reason.to_string(),
            recommendations: vec![],
            limit: None,
        }
    }

    #[test]
    fn keeps_the_last_twenty_and_folds_repeats() {
        let mut x = Explain::default();
        let w = Window::default();
        let b = Bounds {
            min: 1,
            max: 4,
            open: vec![],
        };
        for i in 0..30u32 {
            let d = decision(i, &format!("r{i}"));
            x.record(
                Evaluation {
                    window: &w,
                    forecast: None,
                    predictive: false,
                    start_time: Duration::ZERO,
                    bounds: &b,
                    from: i,
                    decision: &d,
                },
                SystemTime::now(),
            );
        }
        assert_eq!(x.decisions.len(), KEEP);
        assert_eq!(x.decisions.front().unwrap().to, 10);
        let d = decision(29, "r29");
        x.record(
            Evaluation {
                window: &w,
                forecast: None,
                predictive: false,
                start_time: Duration::ZERO,
                bounds: &b,
                from: 29,
                decision: &d,
            },
            SystemTime::now(),
        );
        assert_eq!(x.decisions.len(), KEEP);
        assert_eq!(x.decisions.back().unwrap().times, 2);
        assert_eq!((x.min, x.max), (1, 4));
    }
}
