//! The forecast as an input of the policy: it names itself, scales up ahead,
//! never lowers a decision, and does nothing without `predictive`.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::forecast::Forecast;
use super::policy::{decide, decide_with, Inputs, State, Window};
use crate::config::AutoscaleConfig;

fn cfg(predictive: bool) -> AutoscaleConfig {
    let src = format!(
        "[pools.p.instances]\nprovider = \"process\"\ncommand = [\"x\"]\n\
         [pools.p.autoscale]\nmin = 1\nmax = 20\ntarget_inflight = 10\npredictive = {predictive}\n"
    );
    crate::config::load_str(&src, None).unwrap().pools["p"]
        .autoscale
        .clone()
        .unwrap()
}

fn window(ready: u32, inflight: f64) -> Window {
    Window {
        ready,
        inflight,
        inflight_short: inflight,
        ..Window::default()
    }
}

fn ahead(value: f64) -> Inputs {
    Inputs {
        forecast: Some(Forecast {
            value,
            ahead: Duration::from_secs(7),
        }),
    }
}

#[test]
fn forecast_scales_up_ahead_and_names_itself() {
    let c = cfg(true);
    let mut st = State::new(2);
    // Now 20 in flight on 2 (on target); forecast 45 -> 5 instances.
    let d = decide_with(&window(2, 20.0), &ahead(45.0), &mut st, &c, Instant::now());
    assert_eq!(d.desired, 5, "{}", d.reason);
    assert!(
        d.reason.starts_with("forecast: in-flight 45.0 in 7.0s"),
        "{}",
        d.reason
    );
    assert!(d
        .recommendations
        .iter()
        .any(|r| r.source == "forecast" && r.instances == 5));
    assert!(d
        .recommendations
        .iter()
        .any(|r| r.source == "target" && r.instances == 2));
}

#[test]
fn forecast_within_the_tolerance_band_or_below_does_nothing() {
    let c = cfg(true);
    let mut st = State::new(2);
    // 21 forecast on 2 instances at target 10: within 10%.
    let d = decide_with(&window(2, 20.0), &ahead(21.0), &mut st, &c, Instant::now());
    assert_eq!(d.desired, 2, "{}", d.reason);
    assert!(!d.reason.contains("forecast"));
}

#[test]
fn without_predictive_the_forecast_is_ignored() {
    let c = cfg(false);
    let mut st = State::new(2);
    let d = decide_with(&window(2, 20.0), &ahead(90.0), &mut st, &c, Instant::now());
    assert_eq!(d.desired, 2, "{}", d.reason);
    assert!(d.recommendations.iter().all(|r| r.source != "forecast"));
}

#[test]
fn scale_up_cooldown_holds_a_forecast_too_and_says_so() {
    let c = cfg(true);
    let t0 = Instant::now();
    let mut st = State::new(2);
    let d = decide_with(&window(2, 40.0), &Inputs::default(), &mut st, &c, t0);
    assert_eq!(d.desired, 4);
    let d = decide_with(
        &window(4, 40.0),
        &ahead(90.0),
        &mut st,
        &c,
        t0 + Duration::from_secs(5),
    );
    assert_eq!(d.desired, 4, "{}", d.reason);
    assert_eq!(d.limit, Some("scale_up_cooldown"));
    assert!(d.reason.starts_with("forecast"), "{}", d.reason);
}

proptest! {
    #[test]
    fn a_forecast_never_lowers_a_decision(
        current in 1u32..20,
        ready in 0u32..20,
        inflight in 0.0f64..400.0,
        forecast in 0.0f64..400.0,
    ) {
        let c = cfg(true);
        let now = Instant::now();
        let mut a = State::new(current);
        let mut b = State::new(current);
        let w = window(ready, inflight);
        let without = decide(&w, &mut a, &c, now);
        let with = decide_with(&w, &ahead(forecast), &mut b, &c, now);
        prop_assert!(with.desired >= without.desired, "{with:?} vs {without:?}");
        prop_assert!(with.desired <= c.max);
    }
}
