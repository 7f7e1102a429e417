//! End to end: the access log in a file (reopened on SIGUSR1, combined
//! format read by a real parser), W3C trace context through the proxy,
//! instance output lines that are JSON, and the Grafana dashboard's metrics.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{client, get_json, get_text, one_pool, Backend, Drover, BIN, HEADER};

fn lines_of(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A config with the access log written to `log` (set after the start, so the
/// path is inside drover's temp dir).
fn with_access(backend: &Backend, access: &str) -> String {
    one_pool(&[backend.addr], "").replace("access = false", access)
}

/// Drover whose access log goes to `access.log` in a fresh directory.
fn drover_logging_to_file(b: &Backend, format: &str) -> (Drover, tempfile::TempDir, PathBuf) {
    let logs = tempfile::tempdir().unwrap();
    let file = logs.path().join("access.log");
    let cfg = with_access(
        b,
        &format!(
            "access = \"{}\"\naccess_format = \"{format}\"",
            file.display()
        ),
    );
    (Drover::start(&cfg), logs, file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_log_file_reopened_on_sigusr1_loses_and_splits_no_line() {
    let b = Backend::start("a");
    let (d, logs, file) = drover_logging_to_file(&b, "json");
    const CLIENTS: usize = 8;
    const PER_CLIENT: usize = 250;
    let url = d.url("/x");
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let url = url.clone();
            tokio::spawn(async move {
                let http = client();
                let mut ok = 0;
                for i in 0..PER_CLIENT {
                    let r = http.get(format!("{url}?c={c}&i={i}")).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    r.bytes().await.unwrap();
                    ok += 1;
                }
                ok
            })
        })
        .collect();
    // Rotate three times while the load runs: rename, then SIGUSR1 (logrotate's way).
    let mut rotated = Vec::new();
    for n in 1..=3 {
        let deadline = Instant::now() + Duration::from_secs(30);
        while lines_of(&file).len() < 50 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let old = logs.path().join(format!("access.log.{n}"));
        std::fs::rename(&file, &old).unwrap();
        d.proc.signal("USR1");
        rotated.push(old);
        // The new file appears once drover reopened it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !file.exists() {
            assert!(Instant::now() < deadline, "no new access.log after SIGUSR1");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await.unwrap();
    }
    assert_eq!(sent, CLIENTS * PER_CLIENT);
    let mut files = rotated.clone();
    files.push(file.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    let all = loop {
        let all: Vec<String> = files.iter().flat_map(|f| lines_of(f)).collect();
        if all.len() >= sent || Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        all.len(),
        sent,
        "one line per request across the rotated files"
    );
    let mut seen = BTreeSet::new();
    for l in &all {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("split line {l:?}: {e}"));
        assert_eq!(v["status"], 200);
        assert_eq!(v["trace_id"].as_str().map(str::len), Some(32));
        seen.insert(v["path"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.len(), sent, "every request logged once");
    for f in &files {
        assert!(!lines_of(f).is_empty(), "{} got no lines", f.display());
    }
}

/// A Python that can `import apachelogs`: `$DROVER_TEST_PYTHON`, the venv
/// `.ci/run` makes (`target/py-venv`), or `python3`; `None` (loud skip) outside CI.
fn python_with_apachelogs() -> Option<String> {
    let candidates = [
        std::env::var("DROVER_TEST_PYTHON").ok(),
        Some(concat!(env!("CARGO_MANIFEST_DIR"), "/target/py-venv/bin/python").to_string()),
        Some("python3".to_string()),
    ];
    for py in candidates.into_iter().flatten() {
        let ok = Command::new(&py)
            .args(["-c", "import apachelogs"])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(py);
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "Python's apachelogs is required under CI (.ci/run makes target/py-venv)"
    );
    eprintln!(
        "SKIPPED: no Python with apachelogs; python3 -m venv target/py-venv && target/py-venv/bin/pip install apachelogs"
    );
    None
}

#[tokio::test]
async fn combined_access_line_is_read_by_apachelogs() {
    let Some(py) = python_with_apachelogs() else {
        return;
    };
    let b = Backend::start("a");
    let (d, _logs, file) = drover_logging_to_file(&b, "combined");
    let r = client()
        .get(d.url("/caf%C3%A9?q=1&x=%22y%22"))
        .header("referer", "http://example.com/from \"here\"")
        .header("user-agent", "curl/8.5 (test \\ agent)")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    let r404 = client()
        .head(d.url("/"))
        .header("host", "x")
        .send()
        .await
        .unwrap();
    let status_404 = r404.status().as_u16();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines_of(&file).len() < 2 {
        assert!(Instant::now() < deadline, "no combined lines");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let script = r#"
import json, sys, apachelogs
p = apachelogs.LogParser(apachelogs.COMBINED)
out = []
for line in open(sys.argv[1]):
    e = p.parse(line.rstrip("\n"))
    out.append({
        "host": e.remote_host, "request": e.request_line, "status": e.final_status,
        "bytes": e.bytes_sent, "referer": e.headers_in["Referer"],
        "agent": e.headers_in["User-Agent"], "year": e.request_time.year,
    })
print(json.dumps(out))
"#;
    let out = Command::new(&py)
        .args(["-c", script, file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "apachelogs could not parse:\n{}\n{}",
        std::fs::read_to_string(&file).unwrap(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &v[0];
    assert_eq!(first["host"], "127.0.0.1");
    assert_eq!(first["request"], "GET /caf%C3%A9?q=1&x=%22y%22 HTTP/1.1");
    assert_eq!(first["status"], 200);
    assert_eq!(first["bytes"], body.len());
    assert_eq!(first["referer"], "http://example.com/from \"here\"");
    assert_eq!(first["agent"], "curl/8.5 (test \\ agent)");
    assert!(first["year"].as_i64().unwrap() >= 2024);
    let second = &v[1];
    assert_eq!(second["request"], "HEAD / HTTP/1.1");
    assert_eq!(second["status"], status_404);
    assert_eq!(second["referer"], Value::Null, "no Referer is \"-\"");
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test]
async fn trace_context_is_continued_or_started_and_logged() {
    let b = Backend::start("a");
    let d = Drover::start(&with_access(&b, "access = true"));
    // A valid parent: same trace id and flags, a new parent id, tracestate kept.
    let echo: Value = client()
        .get(d.url("/continued"))
        .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
        .header("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tp = echo["headers"]["traceparent"].as_str().unwrap();
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", TRACE, "01"));
    assert_eq!(parts[2].len(), 16);
    assert_ne!(
        parts[2], "00f067aa0ba902b7",
        "drover is a hop: a new parent id"
    );
    assert_eq!(
        echo["headers"]["tracestate"],
        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    );
    // Invalid (uppercase hex): a new trace, tracestate dropped.
    let echo: Value = client()
        .get(d.url("/invalid"))
        .header(
            "traceparent",
            format!("00-{}-00f067aa0ba902b7-01", TRACE.to_uppercase()),
        )
        .header("tracestate", "congo=t61rcWkgMzE")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_tp = echo["headers"]["traceparent"].as_str().unwrap().to_string();
    assert!(!new_tp.contains(TRACE) && new_tp.starts_with("00-") && new_tp.ends_with("-01"));
    assert!(echo["headers"].get("tracestate").is_none());
    // Absent: created.
    let echo: Value = get_json(&d.url("/absent")).await;
    let created = echo["headers"]["traceparent"].as_str().unwrap().to_string();
    assert_eq!(created.len(), 55);
    // The access log carries the trace id sent upstream.
    for (path, trace) in [
        ("/continued", TRACE.to_string()),
        ("/invalid", new_tp[3..35].to_string()),
        ("/absent", created[3..35].to_string()),
    ] {
        let line = d.proc.stdout.wait_for(path, Duration::from_secs(10), |l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| v["path"] == path)
        });
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["trace_id"], trace.as_str(), "{line}");
    }
}

#[tokio::test]
async fn instance_json_output_is_embedded_as_an_object_plain_lines_stay_strings() {
    let script = format!(
        "echo '{{\"msg\":\"hello from app\",\"n\":7,\"nested\":{{\"ok\":true}}}}'; \
         echo 'plain \"quoted\" line'; exec {BIN} backend --listen 127.0.0.1:$PORT"
    );
    let cfg = format!(
        r#"
{HEADER}[[routes]]
pool = "app"
[pools.app]
[pools.app.health]
path = "/health"
interval = "200ms"
[pools.app.instances]
provider = "process"
count = 1
command = ["sh", "-c", {}]
"#,
        serde_json::to_string(&script).unwrap()
    );
    let d = Drover::start(&cfg);
    let obj = d
        .proc
        .stderr
        .wait_for("embedded JSON output", Duration::from_secs(30), |l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| v["output"]["msg"] == "hello from app")
        });
    let v: Value = serde_json::from_str(&obj).unwrap();
    assert_eq!(v["output"]["n"], 7);
    assert_eq!(v["output"]["nested"]["ok"], true);
    assert_eq!(v["pool"], "app");
    assert_eq!(v["stream"], "stdout");
    assert!(v["instance"].as_str().is_some_and(|s| !s.is_empty()));
    let plain = d
        .proc
        .stderr
        .wait_for("plain output line", Duration::from_secs(30), |l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| v["message"] == "plain \"quoted\" line")
        });
    let v: Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(v["pool"], "app");
    assert!(v.get("output").is_none());
}

/// Metric names a PromQL expression uses (`drover_...`), histogram series
/// mapped to their family.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("drover_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[tokio::test]
async fn grafana_dashboard_queries_only_metrics_drover_exports() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/grafana/drover.json");
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queried = BTreeSet::new();
    let mut titles = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        titles.push(p["title"].as_str().unwrap().to_lowercase());
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{expr}");
            queried.extend(names);
        }
    }
    for want in ["requests", "errors", "latency", "desired", "ejections"] {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "no panel on {want}: {titles:?}"
        );
    }
    // A running drover with a managed pool, after some traffic.
    let b = Backend::start("a");
    let d = Drover::start(&with_access(&b, "access = false"));
    for _ in 0..3 {
        client().get(d.url("/")).send().await.unwrap();
    }
    let text = get_text(&d.admin_url("/metrics")).await;
    let exported: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    let missing: Vec<_> = queried.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "examples/grafana/drover.json queries metrics drover does not export: {missing:?}"
    );
}
