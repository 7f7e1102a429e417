//! Counters fed by the instance controller (off the request path, so a mutex
//! is fine): `drover_scale_events_total` and `drover_cold_start_seconds`.
//! (`drover_health_checks_total` lives on the members: see `metrics.rs`.)

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::metrics::{esc, header};
use crate::pool::Histogram;

#[derive(Default)]
struct Registry {
    /// (pool, direction) -> count.
    scale: BTreeMap<(String, &'static str), u64>,
    /// pool -> seconds from start to first passing health check.
    cold: BTreeMap<String, Histogram>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Mutex::default)
}

fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    f(&mut registry().lock().unwrap_or_else(|e| e.into_inner()))
}

/// Counts one scaling decision applied (`direction` is `up` or `down`).
pub fn count_scale_event(pool: &str, up: bool) {
    let direction = if up { "up" } else { "down" };
    with(|r| *r.scale.entry((pool.into(), direction)).or_default() += 1);
}

/// Records how long a new instance took from start to its first passing check.
pub fn observe_cold_start(pool: &str, took: Duration) {
    with(|r| r.cold.entry(pool.into()).or_default().observe(took));
}

/// Appends the three families (HELP and TYPE always, samples once counted).
pub fn render(out: &mut String, pools: &[&str]) {
    with(|r| {
        header(
            out,
            "drover_scale_events_total",
            "counter",
            "Scaling changes applied, by pool and direction (up, down).",
        );
        for pool in pools {
            for dir in ["up", "down"] {
                let n = r.scale.get(&(pool.to_string(), dir)).copied().unwrap_or(0);
                let _ = writeln!(
                    out,
                    "drover_scale_events_total{{pool=\"{}\",direction=\"{dir}\"}} {n}",
                    esc(pool)
                );
            }
        }
        header(
            out,
            "drover_cold_start_seconds",
            "histogram",
            "Time from starting an instance to its first passing health check, by pool.",
        );
        for (pool, h) in &r.cold {
            let pn = esc(pool);
            let (buckets, count, sum) = h.read();
            for (le, n) in buckets {
                let _ = writeln!(
                    out,
                    "drover_cold_start_seconds_bucket{{pool=\"{pn}\",le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "drover_cold_start_seconds_bucket{{pool=\"{pn}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(out, "drover_cold_start_seconds_sum{{pool=\"{pn}\"}} {sum}");
            let _ = writeln!(
                out,
                "drover_cold_start_seconds_count{{pool=\"{pn}\"}} {count}"
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_labels() {
        count_scale_event("ops-test", true);
        observe_cold_start("ops-test", Duration::from_millis(700));
        let mut out = String::new();
        render(&mut out, &["ops-test"]);
        assert!(out.contains("drover_scale_events_total{pool=\"ops-test\",direction=\"up\"} 1"));
        assert!(out.contains("drover_scale_events_total{pool=\"ops-test\",direction=\"down\"} 0"));
        assert!(out.contains("drover_cold_start_seconds_bucket{pool=\"ops-test\",le=\"1\"} 1"));
        assert!(out.contains("drover_cold_start_seconds_count{pool=\"ops-test\"} 1"));
    }
}
