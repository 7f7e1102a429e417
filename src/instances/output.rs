//! A managed instance's output line in drover's log.
//!
//! With JSON logs (`--log-format json`, or stderr not a terminal), a line that
//! is itself a JSON object is embedded as an object — its fields kept — under
//! `output`, in a record shaped like drover's other log records:
//! `{"timestamp","level":"INFO","message":"instance output","pool","instance","stream","output":{...},"target"}`.
//! Any other line (and every line with pretty logs) is logged as before: the
//! line is the event's `message`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use serde_json::{Map, Value};

static JSON: AtomicBool = AtomicBool::new(false);

/// The log target of instance output records.
pub const TARGET: &str = "drover::instances::output";

/// Whether drover's log is JSON lines (set once at start by `main`).
pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

/// The JSON log record for `line` when it is a JSON object; `None` otherwise.
pub fn json_record(
    ts: SystemTime,
    pool: &str,
    instance: &str,
    stream: &str,
    line: &str,
) -> Option<String> {
    let trimmed = line.trim();
    if !trimmed.starts_with('{') {
        return None;
    }
    let Ok(Value::Object(output)) = serde_json::from_str::<Value>(trimmed) else {
        return None;
    };
    let mut rec = Map::new();
    rec.insert("timestamp".into(), crate::access_log::rfc3339(ts).into());
    rec.insert("level".into(), "INFO".into());
    rec.insert("message".into(), "instance output".into());
    rec.insert("pool".into(), pool.into());
    rec.insert("instance".into(), instance.into());
    rec.insert("stream".into(), stream.into());
    rec.insert("output".into(), Value::Object(output));
    rec.insert("target".into(), TARGET.into());
    serde_json::to_string(&rec).ok()
}

/// Logs one output line of an instance (see the module documentation).
pub fn log_line(pool: &str, instance: &str, stream: &'static str, line: &str) {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    if JSON.load(Ordering::Relaxed) {
        if let Some(mut rec) = json_record(SystemTime::now(), pool, instance, stream, line) {
            rec.push('\n');
            // One write of the whole line: records of other threads do not split it.
            let _ = std::io::stderr().lock().write_all(rec.as_bytes());
            return;
        }
    }
    tracing::info!(target: TARGET, pool = %pool, instance = %instance, stream, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_object_line_is_embedded_with_its_fields() {
        let line = r#"{"level":"warn","msg":"slow \"db\"","n":3,"nested":{"a":[1,2]}}"#;
        let rec = json_record(SystemTime::UNIX_EPOCH, "api", "api-1", "stdout", line).unwrap();
        let v: Value = serde_json::from_str(&rec).unwrap();
        assert_eq!(v["output"], serde_json::from_str::<Value>(line).unwrap());
        assert_eq!(v["pool"], "api");
        assert_eq!(v["instance"], "api-1");
        assert_eq!(v["stream"], "stdout");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["timestamp"], "1970-01-01T00:00:00.000Z");
        assert!(!rec.contains('\n'));
    }

    #[test]
    fn other_lines_stay_strings() {
        for line in [
            "plain text",
            "[1,2]",
            "\"s\"",
            "{not json",
            "{} trailing",
            "42",
            "",
        ] {
            assert_eq!(
                json_record(SystemTime::UNIX_EPOCH, "p", "i", "stderr", line),
                None,
                "{line:?}"
            );
        }
    }
}
