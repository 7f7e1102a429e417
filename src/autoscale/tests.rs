//! Policy tests: units for each behaviour, properties for the invariants.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::policy::{decide, State, Window};
use crate::config::{AutoscaleConfig, Metric, ScaleAction, ScaleRule, Threshold};

fn cfg(min: u32, max: u32) -> AutoscaleConfig {
    AutoscaleConfig {
        min,
        max,
        interval: Duration::from_secs(5),
        target_inflight: Some(10.0),
        target_rps: None,
        scale_up_cooldown: Duration::from_secs(10),
        scale_down_cooldown: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(300),
        hold_timeout: Duration::from_secs(30),
        rules: vec![],
        warm: 0,
        warm_freeze: true,
        warm_at_zero: true,
        predictive: false,
        schedule: vec![],
    }
}

fn window(ready: u32, inflight: f64) -> Window {
    Window {
        ready,
        inflight,
        inflight_short: inflight,
        ..Window::default()
    }
}

#[test]
fn target_tracking_follows_the_hpa_formula() {
    let c = cfg(1, 10);
    let mut st = State::new(2);
    // 2 ready, 30 in flight, target 10 -> ceil(30/10) = 3.
    let d = decide(&window(2, 30.0), &mut st, &c, Instant::now());
    assert_eq!(d.desired, 3, "{}", d.reason);
    assert!(d.reason.contains("in-flight 15.0/instance"), "{}", d.reason);
}

#[test]
fn within_tolerance_nothing_changes() {
    let c = cfg(1, 10);
    let mut st = State::new(4);
    let d = decide(&window(4, 43.0), &mut st, &c, Instant::now());
    assert_eq!(d.desired, 4);
    let d = decide(&window(4, 37.0), &mut st, &c, Instant::now());
    assert_eq!(d.desired, 4);
}

#[test]
fn scale_up_waits_for_cooldown_unless_burst() {
    let c = cfg(1, 20);
    let t0 = Instant::now();
    let mut st = State::new(2);
    assert_eq!(decide(&window(2, 30.0), &mut st, &c, t0).desired, 3);
    // Moderate growth 5 s later: the up cooldown (10 s) holds it.
    let d = decide(&window(3, 45.0), &mut st, &c, t0 + Duration::from_secs(5));
    assert_eq!(d.desired, 3, "{}", d.reason);
    assert!(d.reason.contains("scale_up_cooldown"));
    // A burst (>= 2x capacity) goes through at once.
    let d = decide(&window(3, 90.0), &mut st, &c, t0 + Duration::from_secs(6));
    assert_eq!(d.desired, 7, "{}", d.reason);
}

#[test]
fn scale_up_is_rate_limited_to_max_of_4_or_double() {
    let c = cfg(1, 100);
    let mut st = State::new(2);
    let d = decide(&window(2, 500.0), &mut st, &c, Instant::now());
    assert_eq!(d.desired, 6, "{}", d.reason);
}

#[test]
fn scale_down_waits_for_the_stabilisation_window_and_is_rate_limited() {
    let c = cfg(1, 10);
    let t0 = Instant::now();
    let mut st = State::new(8);
    assert_eq!(decide(&window(8, 80.0), &mut st, &c, t0).desired, 8);
    // Load drops: a higher recommendation (8) is within the 60 s window.
    let d = decide(&window(8, 10.0), &mut st, &c, t0 + Duration::from_secs(5));
    assert_eq!(d.desired, 8, "{}", d.reason);
    // After the window: down, but at most by half per evaluation.
    let d = decide(&window(8, 10.0), &mut st, &c, t0 + Duration::from_secs(70));
    assert_eq!(d.desired, 4, "{}", d.reason);
}

#[test]
fn no_scale_down_while_an_instance_starts() {
    let c = cfg(1, 10);
    let mut st = State::new(4);
    let mut w = window(3, 0.0);
    w.starting = 1;
    let d = decide(&w, &mut st, &c, Instant::now());
    assert_eq!(d.desired, 4, "{}", d.reason);
}

#[test]
fn rules_add_after_for_and_remove_only_when_all_agree() {
    let mut c = cfg(1, 10);
    c.target_inflight = None;
    c.rules = vec![
        ScaleRule {
            metric: Metric::P95LatencyMs,
            threshold: Threshold::Above(250.0),
            for_: Duration::from_secs(30),
            action: ScaleAction::Add(2),
        },
        ScaleRule {
            metric: Metric::P95LatencyMs,
            threshold: Threshold::Below(50.0),
            for_: Duration::from_secs(10),
            action: ScaleAction::Remove(1),
        },
    ];
    let t0 = Instant::now();
    let mut st = State::new(2);
    let slow = Window {
        ready: 2,
        p95_ms: Some(400.0),
        ..Window::default()
    };
    assert_eq!(
        decide(&slow, &mut st, &c, t0).desired,
        2,
        "not for 30 s yet"
    );
    let d = decide(&slow, &mut st, &c, t0 + Duration::from_secs(31));
    assert_eq!(d.desired, 4, "{}", d.reason);
    let fast = Window {
        ready: 4,
        p95_ms: Some(10.0),
        ..Window::default()
    };
    let t1 = t0 + Duration::from_secs(200);
    assert_eq!(
        decide(&fast, &mut st, &c, t1).desired,
        4,
        "remove rule must hold 10 s"
    );
    // The rule holds now, but 4 was recommended within scale_down_cooldown (60 s).
    let d = decide(&fast, &mut st, &c, t1 + Duration::from_secs(11));
    assert_eq!(d.desired, 4, "{}", d.reason);
    assert!(
        d.reason.contains("held by a higher recommendation"),
        "{}",
        d.reason
    );
    let d = decide(&fast, &mut st, &c, t1 + Duration::from_secs(75));
    assert_eq!(d.desired, 3, "{}", d.reason);
}

#[test]
fn min_zero_keeps_one_until_idle_timeout_then_zero() {
    let c = cfg(0, 5);
    let mut st = State::new(1);
    let mut w = window(1, 0.0);
    w.idle_for = Duration::from_secs(10);
    assert_eq!(decide(&w, &mut st, &c, Instant::now()).desired, 1);
    w.idle_for = Duration::from_secs(301);
    let d = decide(&w, &mut st, &c, Instant::now());
    assert_eq!(d.desired, 0, "{}", d.reason);
    // A held request at zero asks for one instance at once.
    let w = Window {
        ready: 0,
        inflight: 1.0,
        inflight_short: 1.0,
        ..Window::default()
    };
    assert_eq!(decide(&w, &mut st, &c, Instant::now()).desired, 1);
}

#[test]
fn a_manual_count_holds_against_scale_down_for_the_cooldown() {
    let c = cfg(1, 10);
    let t0 = Instant::now();
    let mut st = State::new(2);
    st.set_manual(6, t0);
    let d = decide(&window(6, 0.0), &mut st, &c, t0 + Duration::from_secs(5));
    assert_eq!(d.desired, 6, "{}", d.reason);
}

#[test]
fn a_restart_resumes_at_the_running_count_clamped_to_min_max() {
    let c = cfg(1, 5);
    let now = Instant::now();
    assert_eq!(State::resumed(3, &c, now).current, 3);
    assert_eq!(State::resumed(0, &c, now).current, 1, "raised to min");
    assert_eq!(State::resumed(9, &c, now).current, 5, "lowered to max");
}

#[test]
fn after_a_restart_nothing_is_scaled_down_within_the_cooldown() {
    // 3 adopted, idle: a fresh state would go 3 -> 2 at once; a resumed one
    // holds 3 for the whole scale_down_cooldown (60 s), then scales down.
    let c = cfg(1, 10);
    let t0 = Instant::now();
    let fresh = decide(&window(3, 0.0), &mut State::new(3), &c, t0);
    assert!(fresh.desired < 3, "control: {}", fresh.reason);

    let mut st = State::resumed(3, &c, t0);
    for k in 0..12u64 {
        let at = t0 + Duration::from_secs(k * 5);
        let d = decide(&window(3, 0.0), &mut st, &c, at);
        assert_eq!(d.desired, 3, "at +{}s: {}", k * 5, d.reason);
        assert!(d.reason.contains("3 running at start"), "{}", d.reason);
    }
    let d = decide(&window(3, 0.0), &mut st, &c, t0 + Duration::from_secs(61));
    assert_eq!(d.desired, 2, "after the cooldown: {}", d.reason);
}

#[test]
fn after_a_restart_scale_up_is_not_held() {
    let c = cfg(1, 10);
    let t0 = Instant::now();
    let mut st = State::resumed(3, &c, t0);
    let d = decide(&window(3, 60.0), &mut st, &c, t0 + Duration::from_secs(1));
    assert_eq!(d.desired, 6, "{}", d.reason);
}

proptest! {
    #[test]
    fn a_resumed_count_never_drops_within_the_cooldown(running in 0u32..12, min in 0u32..4, span in 1u32..8, ready in 0u32..12, load in 0.0f64..200.0, idle in 0u64..1000, at in 0u64..60) {
        let c = cfg(min, min + span);
        let t0 = Instant::now();
        let mut st = State::resumed(running, &c, t0);
        let start = st.current;
        let w = Window { ready, inflight: load, inflight_short: load, idle_for: Duration::from_secs(idle), ..Window::default() };
        let d = decide(&w, &mut st, &c, t0 + Duration::from_secs(at));
        prop_assert!(d.desired >= start, "{} < {start}: {}", d.desired, d.reason);
    }

    #[test]
    fn never_outside_min_max(min in 0u32..5, span in 0u32..10, cur in 0u32..20, ready in 0u32..20, load in 0.0f64..1000.0, starting in 0u32..3, idle in 0u64..1000) {
        let c = cfg(min, min + span.max(1));
        let mut st = State::new(cur);
        let w = Window { ready, starting, inflight: load, inflight_short: load, idle_for: Duration::from_secs(idle), ..Window::default() };
        let d = decide(&w, &mut st, &c, Instant::now());
        prop_assert!(d.desired >= c.min && d.desired <= c.max, "{} not in [{}, {}]", d.desired, c.min, c.max);
    }

    #[test]
    fn a_steady_signal_settles_and_does_not_flap(per_instance in 1.0f64..50.0, start in 1u32..10) {
        let c = cfg(1, 50);
        let t0 = Instant::now();
        let mut st = State::new(start);
        let total = per_instance * 3.0; // demand fixed in absolute terms
        let mut seen = Vec::new();
        for k in 0..40u64 {
            let ready = st.current;
            let d = decide(&window(ready, total), &mut st, &c, t0 + Duration::from_secs(k * 5));
            seen.push(d.desired);
        }
        // The last 10 evaluations are all the same (settled, no oscillation).
        let tail = &seen[30..];
        prop_assert!(tail.iter().all(|d| *d == tail[0]), "{:?}", seen);
    }
}
