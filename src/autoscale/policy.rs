//! The autoscaling decision as a pure state machine:
//! [`decide`]`(window, state, config, now) -> Decision { desired, reason }`.
//!
//! - Target tracking (Kubernetes HPA): `desired = ceil(ready × metric / target)`,
//!   unchanged while `metric / target` is within [`TOLERANCE`] of 1.
//! - Explicit rules: a rule fires once its condition held for `for`; `add` /
//!   `factor` rules recommend more, `remove` rules fewer. Up: the largest
//!   recommendation wins. Down: only when every remove rule fires and the
//!   target (if any) also recommends fewer; the least aggressive of them wins.
//! - Stabilisation: no scale-down while any recommendation within
//!   `scale_down_cooldown` was higher; `scale_up_cooldown` between scale-ups;
//!   up at most `max(4, 100%)` and down at most `max(1, 50%)` per evaluation;
//!   no scale-down while an instance is still starting; clamped to `[min, max]`.
//! - Burst guard (Knative's panic mode): when the short-window demand is at
//!   least 2× capacity, scale up at once (ignoring the up cooldown) and never
//!   down while it holds.
//! - Scale to zero (`min = 0`): the pool keeps one instance until it has had no
//!   request for `idle_timeout`.
//! - Predictive (`predictive = true`, [`decide_with`]): the forecast of the
//!   target metric ([`crate::autoscale::forecast`]) recommends
//!   `ceil(forecast / target)`; like every recommendation it wins only when
//!   it is the highest, so it scales up ahead and never scales down.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::forecast::Forecast;
use crate::config::{AutoscaleConfig, Metric, ScaleAction, Threshold};

/// Relative band around the target in which target tracking does nothing. 0.1 = 10%.
pub const TOLERANCE: f64 = 0.1;
/// Short-window demand at or above this multiple of capacity triggers the burst guard.
pub const BURST_FACTOR: f64 = 2.0;

/// What drover measured over the last evaluation window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    /// Instances that passed their health check (their metrics are the ones below).
    pub ready: u32,
    /// Instances started but not ready yet (count as capacity).
    pub starting: u32,
    /// In-flight requests over all ready instances, time-averaged over the window.
    pub inflight: f64,
    /// In-flight requests (including ones held for a cold start) over the last ~1 s.
    pub inflight_short: f64,
    /// Requests per second over all instances.
    pub rps: f64,
    /// 95th percentile latency in ms, if there were requests.
    pub p95_ms: Option<f64>,
    /// Share of 5xx answers (0..1).
    pub error_rate: f64,
    /// Mean CPU use of an instance in percent of one core, if known.
    pub cpu_percent: Option<f64>,
    /// Time since the pool's last request.
    pub idle_for: Duration,
}

/// What the policy remembers between evaluations.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// The desired count in force.
    pub current: u32,
    last_up: Option<Instant>,
    /// Recent recommendations (for the scale-down stabilisation window).
    history: VecDeque<(Instant, u32)>,
    /// Since when each rule's condition has held.
    since: Vec<Option<Instant>>,
    /// A count that holds against scale-down for `scale_down_cooldown` from
    /// when it was set: one set by hand (API), or the one found running after
    /// a restart.
    hold: Option<Hold>,
}

/// A count the autoscaler may not go below for `scale_down_cooldown` from `since`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Hold {
    since: Instant,
    count: u32,
    why: HoldWhy,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum HoldWhy {
    /// Set through the admin API.
    Manual,
    /// Found running when drover (re)started.
    Resumed,
}

impl State {
    /// Starts at `current` instances.
    pub fn new(current: u32) -> State {
        State {
            current,
            ..State::default()
        }
    }

    /// Records a count set by hand: the autoscaler may lower it again only
    /// after `scale_down_cooldown`, or raise it when its rules call for more.
    pub fn set_manual(&mut self, n: u32, now: Instant) {
        self.current = n;
        self.hold = Some(Hold {
            since: now,
            count: n,
            why: HoldWhy::Manual,
        });
        self.history.clear();
    }

    /// The state of a drover that found `running` instances at start (adopted
    /// after a restart): the desired count starts there, clamped to
    /// `[min, max]`, and the scale-down stabilisation window starts full, so
    /// nothing is scaled down before `scale_down_cooldown` from `now` (a
    /// restarted HPA does not scale down at once either). Scale-up is not held.
    pub fn resumed(running: u32, cfg: &AutoscaleConfig, now: Instant) -> State {
        let count = running.clamp(cfg.min, cfg.max);
        State {
            current: count,
            history: VecDeque::from([(now, count)]),
            hold: Some(Hold {
                since: now,
                count,
                why: HoldWhy::Resumed,
            }),
            ..State::default()
        }
    }
}

/// Inputs of an evaluation that drover does not measure itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    /// The forecast of the target metric's total (with `predictive = true`).
    pub forecast: Option<Forecast>,
}

/// What one source (target tracking, a rule, the burst guard, the forecast) recommended.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Recommendation {
    /// `target`, `rule N`, `burst`, `forecast`, `idle`.
    pub source: String,
    pub instances: u32,
    pub why: String,
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub desired: u32,
    /// Why, in words; shown in events and the dashboard.
    pub reason: String,
    /// Every recommendation made (the winner's words start `reason`).
    pub recommendations: Vec<Recommendation>,
    /// What held the result back from the winning recommendation, if anything:
    /// `scale_up_cooldown`, `rate_limit`, `stabilization`, `starting`,
    /// `hold`, `min`, `max`.
    pub limit: Option<&'static str>,
}

fn metric_value(m: Metric, w: &Window) -> Option<f64> {
    let per = |total: f64| (w.ready > 0).then(|| total / f64::from(w.ready));
    match m {
        Metric::InflightPerInstance => per(w.inflight),
        Metric::RpsPerInstance => per(w.rps),
        Metric::P95LatencyMs => w.p95_ms,
        Metric::ErrorRate => Some(w.error_rate),
        Metric::CpuPercent => w.cpu_percent,
    }
}

/// Target tracking: `(recommendation, explanation)`, or None without a target.
fn target_tracking(w: &Window, cfg: &AutoscaleConfig, current: u32) -> Option<(u32, String)> {
    let (total, target, what) = match (cfg.target_inflight, cfg.target_rps) {
        (Some(t), _) => (w.inflight, t, "in-flight"),
        (None, Some(t)) => (w.rps, t, "rps"),
        (None, None) => return None,
    };
    let ready = w.ready.max(1);
    let per = total / f64::from(ready);
    let ratio = per / target;
    let rec = if w.ready > 0 && (ratio - 1.0).abs() <= TOLERANCE {
        current
    } else {
        (total / target).ceil() as u32
    };
    Some((rec, format!("{what} {per:.1}/instance, target {target}")))
}

/// Evaluates once without a forecast. `state.current` becomes the returned `desired`.
pub fn decide(w: &Window, st: &mut State, cfg: &AutoscaleConfig, now: Instant) -> Decision {
    decide_with(w, &Inputs::default(), st, cfg, now)
}

/// The forecast's recommendation, when `predictive` is on and there is a target.
fn forecast_rec(f: &Forecast, cfg: &AutoscaleConfig) -> Option<(u32, String)> {
    if !cfg.predictive {
        return None;
    }
    let (target, what) = match (cfg.target_inflight, cfg.target_rps) {
        (Some(t), _) => (t, "in-flight"),
        (None, Some(t)) => (t, "rps"),
        (None, None) => return None,
    };
    let rec = (f.value / target).ceil().min(f64::from(u32::MAX)) as u32;
    Some((
        rec,
        format!(
            "forecast: {what} {:.1} in {:.1}s (Holt), target {target}/instance",
            f.value,
            f.ahead.as_secs_f64()
        ),
    ))
}

/// Evaluates once with `inputs`. `state.current` becomes the returned `desired`.
pub fn decide_with(
    w: &Window,
    inputs: &Inputs,
    st: &mut State,
    cfg: &AutoscaleConfig,
    now: Instant,
) -> Decision {
    let mut hold_limit: Option<&'static str> = None;
    let mut recs: Vec<Recommendation> = Vec::new();
    let mut note = |source: String, instances: u32, why: &str| {
        recs.push(Recommendation {
            source,
            instances,
            why: why.to_string(),
        })
    };
    let current = st.current;
    let capacity = w.ready + w.starting;
    let mut ups: Vec<(u32, String)> = Vec::new();
    let mut downs: Vec<(u32, String)> = Vec::new();
    let mut down_blocked: Option<String> = None;

    if let Some((rec, why)) = target_tracking(w, cfg, current) {
        note("target".to_string(), rec, &why);
        if rec > current {
            ups.push((rec, why));
        } else if rec < current {
            downs.push((rec, why));
        } else {
            down_blocked = Some(format!("{why}: within {:.0}%", TOLERANCE * 100.0));
        }
    }

    st.since.resize(cfg.rules.len(), None);
    let mut remove_rules = 0;
    for (i, rule) in cfg.rules.iter().enumerate() {
        let value = metric_value(rule.metric, w);
        let holds = match (value, rule.threshold) {
            (Some(v), Threshold::Above(t)) => v > t,
            (Some(v), Threshold::Below(t)) => v < t,
            (None, _) => false,
        };
        st.since[i] = if holds {
            st.since[i].or(Some(now))
        } else {
            None
        };
        let fired = st.since[i].is_some_and(|s| now.duration_since(s) >= rule.for_);
        let desc = |v: Option<f64>| {
            let (op, t) = match rule.threshold {
                Threshold::Above(t) => (">", t),
                Threshold::Below(t) => ("<", t),
            };
            format!(
                "{} {:.1} {op} {t} for {:?}",
                rule.metric.as_str(),
                v.unwrap_or(0.0),
                rule.for_
            )
        };
        if fired {
            let n = match rule.action {
                ScaleAction::Add(n) => current + n,
                ScaleAction::Remove(n) => current.saturating_sub(n),
                ScaleAction::Factor(f) if f > 1.0 => (f64::from(current.max(1)) * f).ceil() as u32,
                ScaleAction::Factor(f) => (f64::from(current) * f).floor() as u32,
            };
            note(format!("rule {i}"), n, &desc(value));
        }
        match rule.action {
            ScaleAction::Add(n) if fired => ups.push((current + n, desc(value))),
            ScaleAction::Factor(f) if fired && f > 1.0 => {
                ups.push(((f64::from(current.max(1)) * f).ceil() as u32, desc(value)))
            }
            ScaleAction::Factor(f) if fired && f < 1.0 => {
                remove_rules += 1;
                downs.push(((f64::from(current) * f).floor() as u32, desc(value)));
            }
            ScaleAction::Remove(n) => {
                remove_rules += 1;
                if fired {
                    downs.push((current.saturating_sub(n), desc(value)));
                } else {
                    down_blocked.get_or_insert_with(|| {
                        format!("rule {} does not hold", rule.metric.as_str())
                    });
                }
            }
            _ => {}
        }
    }

    // Burst guard: short-window demand far above capacity.
    let burst_target = cfg.target_inflight.unwrap_or(1.0);
    let burst = cfg.target_inflight.is_some()
        && w.inflight_short >= BURST_FACTOR * f64::from(capacity.max(1)) * burst_target;
    if burst {
        let rec = (w.inflight_short / burst_target).ceil() as u32;
        let why = format!(
            "burst: {:.1} in flight now, capacity {capacity}",
            w.inflight_short
        );
        note("burst".to_string(), rec, &why);
        ups.push((rec, why));
    }
    if let Some((rec, why)) = inputs.forecast.as_ref().and_then(|f| forecast_rec(f, cfg)) {
        note("forecast".to_string(), rec, &why);
        // Only when higher than every reactive recommendation (ties stay
        // reactive) and beyond the tolerance band over the current capacity
        // (noise does not add instances).
        let target = cfg.target_inflight.or(cfg.target_rps).unwrap_or(1.0);
        let beyond = inputs
            .forecast
            .is_some_and(|f| f.value > f64::from(current) * target * (1.0 + TOLERANCE));
        if rec > current && beyond && ups.iter().all(|(r, _)| *r < rec) {
            ups.push((rec, why));
        }
    }

    // Idle pool with min = 0.
    let idle_zero = cfg.min == 0 && w.idle_for >= cfg.idle_timeout && w.inflight_short == 0.0;

    let (mut desired, mut reason) =
        if let Some((rec, why)) = ups.iter().max_by_key(|(r, _)| *r).cloned() {
            (rec, why)
        } else if idle_zero {
            (0, format!("no request for {:?}", w.idle_for))
        } else if !downs.is_empty()
            && down_blocked.is_none()
            && (remove_rules == 0 || downs.len() >= remove_rules)
        {
            downs
                .iter()
                .max_by_key(|(r, _)| *r)
                .cloned()
                .expect("non-empty")
        } else {
            (
                current,
                down_blocked.unwrap_or_else(|| "steady".to_string()),
            )
        };

    // With min = 0 keep one instance until the idle timeout.
    if cfg.min == 0 && desired == 0 && !idle_zero {
        desired = 1;
    }
    // The stabilisation window keeps recommendations, not what a hold made of them.
    st.history.push_back((now, desired));
    while st
        .history
        .front()
        .is_some_and(|(t, _)| now.duration_since(*t) > cfg.scale_down_cooldown)
    {
        st.history.pop_front();
    }
    // A manual or resumed count holds against scale-down for scale_down_cooldown.
    if let Some(h) = st.hold {
        if now.duration_since(h.since) < cfg.scale_down_cooldown && desired < h.count {
            let n = h.count;
            desired = n;
            hold_limit = Some("hold");
            reason = match h.why {
                HoldWhy::Manual => {
                    format!("set by hand to {n}; kept for {:?}", cfg.scale_down_cooldown)
                }
                HoldWhy::Resumed => format!(
                    "{n} running at start; kept for {:?}",
                    cfg.scale_down_cooldown
                ),
            };
        }
    }

    let mut held: Option<&'static str> = None;
    if desired > current {
        let limit = current + current.max(4);
        if !burst
            && st
                .last_up
                .is_some_and(|t| now.duration_since(t) < cfg.scale_up_cooldown)
        {
            desired = current;
            held = Some("scale_up_cooldown");
            reason = format!(
                "{reason}; waiting for scale_up_cooldown {:?}",
                cfg.scale_up_cooldown
            );
        } else if desired > limit {
            desired = limit;
            reason = format!("{reason}; limited to +{} per interval", current.max(4));
            held = Some("rate_limit");
        }
    } else if desired < current {
        let highest = st.history.iter().map(|(_, r)| *r).max().unwrap_or(desired);
        if burst {
            desired = current;
            held = Some("burst");
        } else if w.starting > 0 {
            desired = current;
            held = Some("starting");
            reason = format!(
                "{reason}; not scaling down while {} instance(s) start",
                w.starting
            );
        } else if highest > desired && !idle_zero {
            desired = highest.min(current);
            held = Some("stabilization");
            reason = format!(
                "{reason}; held by a higher recommendation within {:?}",
                cfg.scale_down_cooldown
            );
        }
        let floor = current - (current / 2).max(1).min(current);
        if desired < floor && !idle_zero {
            desired = floor;
            held = Some("rate_limit");
            reason = format!("{reason}; limited to -{} per interval", current - floor);
        }
    }
    if desired < cfg.min {
        held = Some("min");
        reason = format!("{reason}; raised to min {}", cfg.min);
    } else if desired > cfg.max {
        held = Some("max");
        reason = format!("{reason}; held at max {}", cfg.max);
    }
    desired = desired.clamp(cfg.min, cfg.max);
    if desired > current {
        st.last_up = Some(now);
    }
    st.current = desired;
    Decision {
        desired,
        reason,
        recommendations: recs,
        limit: held.or(hold_limit),
    }
}
