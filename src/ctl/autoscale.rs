//! `drover ctl autoscale POOL`: the autoscaler's explanation as text.

use std::fmt::Write;

use serde_json::Value;

use super::table::Table;
use super::text;

/// Renders `GET /api/v1/pools/{pool}/autoscale`.
pub fn render(v: &Value) -> String {
    let mut out = String::new();
    let i = &v["inputs"];
    let _ = writeln!(
        out,
        "pool {}: desired {} in [{}, {}]; last evaluated {}",
        text(&v["pool"]),
        text(&v["desired"]),
        text(&v["min"]),
        text(&v["max"]),
        text(&v["evaluated"])
    );
    let _ = writeln!(
        out,
        "inputs: {} ready, {} starting, in-flight {} (now {}), rps {}, p95 {} ms, errors {}, cpu {}%",
        text(&i["ready"]),
        text(&i["starting"]),
        text(&i["inflight"]),
        text(&i["inflight_short"]),
        text(&i["rps"]),
        text(&i["p95_ms"]),
        text(&i["error_rate"]),
        text(&i["cpu_percent"]),
    );
    match (&v["predictive"], &v["forecast"]) {
        (Value::Bool(true), Value::Object(f)) => {
            let _ = writeln!(
                out,
                "forecast: {} in {}s (trend {} per interval; instance start time {}s)",
                text(&f["value"].clone()),
                text(&f["ahead_s"].clone()),
                text(&f["trend"].clone()),
                text(&v["start_time_s"])
            );
        }
        (Value::Bool(true), _) => {
            let _ = writeln!(out, "forecast: not enough history yet");
        }
        _ => {
            let _ = writeln!(out, "forecast: off (predictive = false)");
        }
    }
    let windows = v["schedule"].as_array().cloned().unwrap_or_default();
    if windows.is_empty() {
        let _ = writeln!(out, "schedule: no window open");
    }
    for w in &windows {
        let _ = writeln!(
            out,
            "schedule: window \"{}\" open since {} until {}",
            text(&w["cron"]),
            text(&w["opened"]),
            text(&w["closes"])
        );
    }
    let warm = &v["warm"];
    let _ = writeln!(
        out,
        "warm: {} ready, {} starting, {} wanted (warm = {}, frozen {})",
        text(&warm["ready"]),
        text(&warm["starting"]),
        text(&warm["wanted"]),
        text(&warm["configured"]),
        text(&warm["frozen"])
    );
    let mut t = Table::new(&["SOURCE", "INSTANCES", "WHY"]);
    for r in v["recommendations"].as_array().into_iter().flatten() {
        t.row(vec![
            text(&r["source"]),
            text(&r["instances"]),
            text(&r["why"]),
        ]);
    }
    let _ = write!(out, "{t}");
    let _ = writeln!(out, "held back by: {}", text(&v["limit"]));
    let mut t = Table::new(&["TIME", "FROM", "TO", "TIMES", "LIMIT", "REASON"]);
    for d in v["decisions"].as_array().into_iter().flatten() {
        t.row(vec![
            text(&d["ts"]),
            text(&d["from"]),
            text(&d["to"]),
            text(&d["times"]),
            text(&d["limit"]),
            text(&d["reason"]),
        ]);
    }
    let _ = write!(out, "{t}");
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
        let s = render(&v);
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
        let off = render(&json!({"predictive": false}));
        assert!(off.contains("forecast: off"), "{off}");
        assert!(off.contains("schedule: no window open"), "{off}");
    }
}
