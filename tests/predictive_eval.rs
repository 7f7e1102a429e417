//! Predictive scaling evaluated on synthetic load traces (a steady ramp, a
//! step, a daily-shaped sine, flat noise): the same pure policy
//! (`decide_with`) run with and without the Holt forecast over a simulated
//! pool whose instances take `START` to become ready. Prints the table kept
//! in bench/RESULTS.md (`cargo test --test predictive_eval -- --nocapture`)
//! and checks the goals: fewer request-seconds over target on a ramp,
//! no more than 5% extra instance-seconds on flat noise.

use std::time::{Duration, Instant};

use drover::autoscale::forecast::{horizon, Forecast, Holt};
use drover::autoscale::policy::{decide_with, Inputs, State, Window};
use drover::config::AutoscaleConfig;

/// Autoscale interval (one trace step).
const STEP: Duration = Duration::from_secs(5);
/// Time from start to ready of an instance (two steps).
const START: Duration = Duration::from_secs(10);
const TARGET: f64 = 10.0;

fn config(predictive: bool) -> AutoscaleConfig {
    let src = format!(
        "[pools.p.instances]\nprovider = \"process\"\ncommand = [\"x\"]\n\
         [pools.p.autoscale]\nmin = 1\nmax = 60\ninterval = \"5s\"\ntarget_inflight = {TARGET}\n\
         scale_up_cooldown = \"10s\"\nscale_down_cooldown = \"60s\"\npredictive = {predictive}\n"
    );
    drover::config::load_str(&src, None).unwrap().pools["p"]
        .autoscale
        .clone()
        .unwrap()
}

/// A deterministic pseudo-random number in [0, 1).
fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

fn traces() -> Vec<(&'static str, Vec<f64>)> {
    let n = 240;
    let ramp = (0..n).map(|t| (10.0 + 3.0 * t as f64).min(300.0)).collect();
    let step = (0..n).map(|t| if t < 60 { 30.0 } else { 200.0 }).collect();
    let sine = (0..n)
        .map(|t| 110.0 - 90.0 * (2.0 * std::f64::consts::PI * t as f64 / 120.0).cos())
        .collect();
    let mut seed = 7u64;
    let noise = (0..n)
        .map(|_| 80.0 + 30.0 * (lcg(&mut seed) - 0.5))
        .collect();
    vec![
        ("ramp", ramp),
        ("step", step),
        ("daily sine", sine),
        ("noise", noise),
    ]
}

#[derive(Debug, Default, Clone, Copy)]
struct Outcome {
    /// Demand above what the ready instances serve at target, times time.
    over_target: f64,
    instance_seconds: f64,
    /// Evaluations whose decision followed the forecast.
    forecast_led: u32,
}

fn simulate(demand: &[f64], predictive: bool) -> Outcome {
    let cfg = config(predictive);
    let t0 = Instant::now();
    let start_steps = (START.as_secs_f64() / STEP.as_secs_f64()).ceil() as usize;
    let mut st = State::new(1);
    let mut holt = Holt::default();
    // Ready-at step of every running instance.
    let mut instances: Vec<usize> = vec![0];
    let mut out = Outcome::default();
    for (t, &d) in demand.iter().enumerate() {
        let ready = instances.iter().filter(|r| **r <= t).count() as u32;
        let starting = instances.len() as u32 - ready;
        out.over_target += (d - f64::from(ready) * TARGET).max(0.0) * STEP.as_secs_f64();
        out.instance_seconds += instances.len() as f64 * STEP.as_secs_f64();
        holt.observe(d);
        let steps = horizon(STEP, START);
        let inputs = Inputs {
            forecast: holt.forecast(steps).map(|value| Forecast {
                value,
                ahead: STEP.mul_f64(steps),
            }),
        };
        let w = Window {
            ready,
            starting,
            inflight: d,
            inflight_short: d,
            rps: d,
            idle_for: Duration::ZERO,
            ..Window::default()
        };
        let now = t0 + STEP * t as u32;
        st.current = instances.len() as u32;
        let dec = decide_with(&w, &inputs, &mut st, &cfg, now);
        if dec.reason.starts_with("forecast") {
            out.forecast_led += 1;
        }
        let n = dec.desired as usize;
        while instances.len() < n {
            instances.push(t + start_steps);
        }
        while instances.len() > n {
            // Scale down: the newest (still starting first) go.
            instances.sort_unstable();
            instances.pop();
        }
    }
    out
}

#[test]
fn predictive_scaling_meets_ramps_ahead_without_waste_on_noise() {
    let mut rows = Vec::new();
    println!(
        "| trace | request-s over target: reactive | predictive | change | instance-s: reactive | predictive | change |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, demand) in traces() {
        let r = simulate(&demand, false);
        let p = simulate(&demand, true);
        let pct = |a: f64, b: f64| if a > 0.0 { (b - a) / a * 100.0 } else { 0.0 };
        println!(
            "| {name} | {:.0} | {:.0} | {:+.0}% | {:.0} | {:.0} | {:+.1}% |",
            r.over_target,
            p.over_target,
            pct(r.over_target, p.over_target),
            r.instance_seconds,
            p.instance_seconds,
            pct(r.instance_seconds, p.instance_seconds),
        );
        assert_eq!(
            r.forecast_led, 0,
            "{name}: reactive never follows a forecast"
        );
        rows.push((name, r, p));
    }
    let get = |n: &str| rows.iter().find(|(x, _, _)| *x == n).unwrap();
    let (_, r, p) = get("ramp");
    assert!(p.forecast_led > 0, "the forecast led decisions on the ramp");
    assert!(
        p.over_target < r.over_target * 0.8,
        "ramp: predictive {p:?} vs reactive {r:?}"
    );
    let (_, r, p) = get("step");
    assert!(p.over_target <= r.over_target, "step: {p:?} vs {r:?}");
    let (_, r, p) = get("daily sine");
    assert!(p.over_target < r.over_target, "sine: {p:?} vs {r:?}");
    let (_, r, p) = get("noise");
    assert!(
        p.instance_seconds <= r.instance_seconds * 1.05,
        "noise: predictive {p:?} vs reactive {r:?}"
    );
}
