//! `drover ctl autoscale POOL`: the autoscaler's explanation as text.

use std::fmt::Write;

use serde::Serialize;

use super::table::Table;
use super::text;
use crate::admin::types::AutoscaleView;

/// A field as table text, formatted as its JSON (`30.0`, `null` -> `-`).
fn t<T: Serialize>(v: &T) -> String {
    text(&serde_json::to_value(v).unwrap_or_default())
}

/// Renders `GET /api/v1/pools/{pool}/autoscale`.
pub fn render(v: &AutoscaleView) -> String {
    let mut out = String::new();
    let x = &v.explain;
    let i = &x.inputs;
    let _ = writeln!(
        out,
        "pool {}: desired {} in [{}, {}]; last evaluated {}",
        t(&v.pool),
        x.desired,
        x.min,
        x.max,
        t(&x.evaluated)
    );
    let _ = writeln!(
        out,
        "inputs: {} ready, {} starting, in-flight {} (now {}), rps {}, p95 {} ms, errors {}, cpu {}%",
        i.ready,
        i.starting,
        t(&i.inflight),
        t(&i.inflight_short),
        t(&i.rps),
        t(&i.p95_ms),
        t(&i.error_rate),
        t(&i.cpu_percent),
    );
    match (x.predictive, &x.forecast) {
        (true, Some(f)) => {
            let _ = writeln!(
                out,
                "forecast: {} in {}s (trend {} per interval; instance start time {}s)",
                t(&f.value),
                t(&f.ahead_s),
                t(&f.trend),
                t(&x.start_time_s)
            );
        }
        (true, None) => {
            let _ = writeln!(out, "forecast: not enough history yet");
        }
        (false, _) => {
            let _ = writeln!(out, "forecast: off (predictive = false)");
        }
    }
    if x.schedule.is_empty() {
        let _ = writeln!(out, "schedule: no window open");
    }
    for w in &x.schedule {
        let _ = writeln!(
            out,
            "schedule: window \"{}\" open since {} until {}",
            t(&w.cron),
            t(&w.opened),
            t(&w.closes)
        );
    }
    let warm = &x.warm;
    let _ = writeln!(
        out,
        "warm: {} ready, {} starting, {} wanted (warm = {}, frozen {})",
        warm.ready, warm.starting, warm.wanted, warm.configured, warm.frozen
    );
    let mut table = Table::new(&["SOURCE", "INSTANCES", "WHY"]);
    for r in &x.recommendations {
        table.row(vec![t(&r.source), r.instances.to_string(), t(&r.why)]);
    }
    let _ = write!(out, "{table}");
    let _ = writeln!(out, "held back by: {}", t(&x.limit));
    let mut table = Table::new(&["TIME", "FROM", "TO", "TIMES", "LIMIT", "REASON"]);
    for d in &x.decisions {
        table.row(vec![
            t(&d.ts),
            d.from.to_string(),
            d.to.to_string(),
            d.times.to_string(),
            t(&d.limit),
            t(&d.reason),
        ]);
    }
    let _ = write!(out, "{table}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_inputs_forecast_rules_limit_and_decisions() {
        let v = json!({
            "pool": "api", "desired": 3, "min": 1, "max": 8, "evaluated": "2026-11-30T07:00:00Z",
            "inputs": {"ready": 2, "starting": 1, "inflight": 25.5, "inflight_short": 30.0, "rps": 100.0,
                       "p95_ms": 120.0, "error_rate": 0.0, "cpu_percent": null},
            "predictive": true, "forecast": {"value": 41.0, "ahead_s": 7.5, "trend": 4.1}, "start_time_s": 2.5,
            "schedule": [{"index": 0, "cron": "0 9 * * 1-5", "opened": "2026-11-30T09:00:00Z", "closes": "2026-11-30T18:00:00Z"}],
            "warm": {"configured": 1, "wanted": 1, "ready": 1, "starting": 0, "frozen": true},
            "recommendations": [{"source": "target", "instances": 3, "why": "in-flight 12.8/instance, target 10"},
                                {"source": "forecast", "instances": 5, "why": "forecast: in-flight 41.0 in 7.5s (Holt)"}],
            "limit": "scale_up_cooldown",
            "decisions": [{"ts": "2026-11-30T07:00:00Z", "from": 2, "to": 3, "times": 1, "limit": null, "reason": "in-flight 12.8/instance"}]
        });
        let s = render(&serde_json::from_value(v).unwrap());
        for want in [
            "pool api: desired 3 in [1, 8]",
            "in-flight 25.5",
            "forecast: 41.0 in 7.5s",
            "window \"0 9 * * 1-5\"",
            "warm: 1 ready",
            "forecast: in-flight 41.0",
            "held back by: scale_up_cooldown",
            "in-flight 12.8/instance",
        ] {
            assert!(s.contains(want), "{want:?} missing in:\n{s}");
        }
        let off = render(&AutoscaleView {
            pool: "api".into(),
            explain: Default::default(),
        });
        assert!(off.contains("forecast: off"), "{off}");
        assert!(off.contains("schedule: no window open"), "{off}");
    }
}
