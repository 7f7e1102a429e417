//! The autoscaler's inputs beyond what the sampler measures: the schedule's
//! bounds (with `schedule_open` / `schedule_close` events) and the forecast
//! of the target metric, kept between evaluations; and the explanation of
//! each evaluation.

use std::time::{Duration, SystemTime};

use std::sync::atomic::Ordering;

use super::controller::Controller;
use super::warm::WarmPool;
use crate::autoscale::explain::{Evaluation, Explain};
use crate::autoscale::forecast::{horizon, Forecast, Holt};
use crate::autoscale::policy::{Decision, Inputs, Window};
use crate::autoscale::schedule::{self, Bounds, OpenWindow};
use crate::config::AutoscaleConfig;
use crate::events;

/// Between evaluations: the forecaster and the windows open last time.
#[derive(Debug, Default)]
pub(super) struct Ahead {
    holt: Holt,
    open: Vec<OpenWindow>,
    bounds: Option<Bounds>,
}

/// The target metric's total in a window: in-flight (with `target_inflight`)
/// or requests per second (with `target_rps`).
fn target_total(cfg: &AutoscaleConfig, w: &Window) -> Option<f64> {
    match (cfg.target_inflight, cfg.target_rps) {
        (Some(_), _) => Some(w.inflight),
        (None, Some(_)) => Some(w.rps),
        (None, None) => None,
    }
}

impl Ahead {
    /// The config to decide with (bounds from an open schedule window) and
    /// the inputs (the forecast with `predictive`).
    pub(super) fn prepare(
        &mut self,
        pool: &str,
        cfg: &AutoscaleConfig,
        w: &Window,
        start_time: Duration,
    ) -> (AutoscaleConfig, Inputs) {
        let bounds = schedule::bounds_at(&cfg.schedule, cfg.min, cfg.max, chrono::Utc::now());
        let (opened, closed) = schedule::changes(&self.open, &bounds.open);
        for i in closed {
            if let Some(e) = cfg.schedule.get(i) {
                events::record(
                    pool,
                    events::EventKind::ScheduleClose,
                    None,
                    format!(
                        "schedule window \"{}\" closed; bounds [{}, {}]",
                        e.cron.text, bounds.min, bounds.max
                    ),
                );
            }
        }
        for i in opened {
            if let Some(e) = cfg.schedule.get(i) {
                events::record(
                    pool,
                    events::EventKind::ScheduleOpen,
                    None,
                    format!(
                        "schedule window \"{}\" open until {:02}:{:02} {}; bounds [{}, {}]",
                        e.cron.text, e.until.0, e.until.1, e.tz, bounds.min, bounds.max
                    ),
                );
            }
        }
        self.open = bounds.open.clone();
        let mut eff = cfg.clone();
        eff.min = bounds.min;
        eff.max = bounds.max;
        self.bounds = Some(bounds);

        let mut inputs = Inputs::default();
        if let Some(x) = target_total(cfg, w) {
            self.holt.observe(x);
            if cfg.predictive {
                let steps = horizon(cfg.interval, start_time);
                inputs.forecast = self.holt.forecast(steps).map(|value| Forecast {
                    value,
                    ahead: cfg.interval.mul_f64(steps),
                });
            }
        }
        (eff, inputs)
    }

    /// Records the evaluation in `x`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record(
        &self,
        x: &mut Explain,
        cfg: &AutoscaleConfig,
        w: &Window,
        inputs: &Inputs,
        start_time: Duration,
        from: u32,
        d: &Decision,
    ) {
        let bounds = self.bounds.clone().unwrap_or(Bounds {
            min: cfg.min,
            max: cfg.max,
            open: Vec::new(),
        });
        x.record(
            Evaluation {
                window: w,
                forecast: inputs.forecast.map(|f| (f, self.holt.trend())),
                predictive: cfg.predictive,
                start_time,
                bounds: &bounds,
                from,
                decision: d,
            },
            SystemTime::now(),
        );
    }
}

impl Controller {
    /// What the autoscaler saw and decided last, with the warm pool's counts.
    pub fn explain(&self) -> Explain {
        let mut x = self.explain.lock().clone();
        x.warm = self.warm_view();
        x
    }

    /// The warm pool's counts.
    pub fn warm_view(&self) -> crate::autoscale::explain::WarmView {
        let (ready, starting) = self.warm.lock().counts();
        let pool = self.pool.upgrade();
        let auto = pool
            .as_ref()
            .and_then(|p| p.snapshot().config.autoscale.clone());
        let desired = pool
            .as_ref()
            .map_or(0, |p| p.desired.load(Ordering::Relaxed));
        crate::autoscale::explain::WarmView {
            configured: auto.as_ref().map_or(0, |a| a.warm),
            wanted: super::warm::wanted(auto.as_ref(), desired, self.is_closing()),
            ready,
            starting,
            frozen: auto.as_ref().is_some_and(|a| a.warm_freeze),
        }
    }
}

impl Controller {
    /// Stops the warm instances (drover exiting with `on_shutdown = "leave"`:
    /// the instances in rotation stay, the warm ones go).
    pub async fn stop_warm(&self, timeout: Duration) {
        self.close();
        let _no_start_under_way = self.starting.lock().await;
        let ids: Vec<String> = {
            let mut w = self.warm.lock();
            let ids = w.members().iter().map(|m| m.id.clone()).collect();
            *w = WarmPool::default();
            ids
        };
        let stops = ids.iter().map(|id| self.provider.stop(id, timeout));
        futures_util::future::join_all(stops).await;
    }
}
