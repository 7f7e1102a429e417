//! End to end: drover does not answer 503 because it has not looked yet (the
//! first round of health checks, at start and for pools a reload adds), and a
//! probe that fails for a local reason (out of file descriptors) is "unknown",
//! never a backend failure.

mod common;
mod health_support;

use std::time::{Duration, Instant};

use common::{client, reload, wait_until, Backend, Drover, HEADER};
use health_support::*;

/// A config with pool `app` over `backends`, checked on `path` every 30 s
/// with `rise = 2` (members start unhealthy: the default `initial_state`).
fn slow_checked(backends: &[&Backend], path: &str, timeout: &str) -> String {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{}\"", b.addr)).collect();
    format!(
        r#"
{HEADER}[pools.app]
backends = [{}]
[pools.app.health]
path = "{path}"
interval = "30s"
timeout = "{timeout}"
rise = 2
fall = 2
"#,
        list.join(", ")
    )
}

/// `n` concurrent GETs of `url`; their statuses.
async fn burst(url: String, n: usize) -> Vec<u16> {
    let c = client();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { c.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn readyz(d: &Drover) -> u16 {
    client()
        .get(d.admin_url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn requests_right_after_start_are_not_answered_503() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    // Both healthy, but drover checks only every 30 s and wants 2 passes:
    // without a first round at once, the first minute would be 503s.
    let d = Drover::start(&slow_checked(&[&a, &b], "/health", "2s"));
    let statuses = burst(d.url("/x"), 20).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(states(&d).await, vec!["healthy", "healthy"]);
    let ev = events(&d).await;
    for m in [&a, &b] {
        assert!(
            ev.iter().any(|(kind, backend, reason)| kind == "healthy"
                && *backend == m.addr.to_string()
                && reason == "1 passed checks: status 200"),
            "{ev:?}"
        );
    }
}

#[tokio::test]
async fn readyz_is_503_until_the_first_round_is_done_and_requests_wait_for_it() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    // The check takes 3 s to answer: the first round ends about 3 s after start.
    let d = Drover::start(&slow_checked(&[&a, &b], "/delay/3000", "10s"));
    let t0 = Instant::now();
    let early = tokio::spawn(burst(d.url("/x"), 8));
    assert_eq!(readyz(&d).await, 503, "ready before any check finished");
    let mut ready_at = None;
    while ready_at.is_none() {
        assert!(t0.elapsed() < Duration::from_secs(20), "never ready");
        if readyz(&d).await == 200 {
            ready_at = Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let statuses = early.await.unwrap();
    let answered = t0.elapsed();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(states(&d).await, vec!["healthy", "healthy"]);
    // Ready stays ready.
    for _ in 0..5 {
        assert_eq!(readyz(&d).await, 200);
    }
    eprintln!("ready after {ready_at:?}; early requests answered by {answered:?}");
}

#[tokio::test]
async fn a_pool_added_by_reload_answers_its_first_requests() {
    let (a, b, c) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    );
    let base = slow_checked(&[&a], "/health", "2s");
    let d = Drover::start(&base);
    wait_until("app ready", 20, async || readyz(&d).await == 200).await;
    // Add pool `new` (checks take 1 s to answer, every 30 s, rise 2).
    let new_pool = format!(
        "{base}\n[[routes]]\npath_prefix = \"/new\"\npool = \"new\"\n[[routes]]\npool = \"app\"\n\
         [pools.new]\nbackends = [\"{}\", \"{}\"]\n[pools.new.health]\npath = \"/delay/1000\"\n\
         interval = \"30s\"\ntimeout = \"10s\"\nrise = 2\n",
        b.addr, c.addr
    );
    std::fs::write(&d.config_path, &new_pool).unwrap();
    let r = reload(&d).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let statuses = burst(d.url("/new/x"), 8).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(readyz(&d).await, 200);
}

/// drover with 2 backends under `ulimit -n 40`, 200 silent connections
/// exhausting its descriptors for 3 s while it checks every 200 ms with
/// `fall = 2`: its probes fail with EMFILE, which says nothing about the
/// backends. They must not be marked down, and requests succeed after the flood.
#[tokio::test]
async fn probes_failing_for_lack_of_descriptors_leave_members_healthy() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let config = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
threads = 1
# Above what 40 descriptors allow, so the flood really exhausts them.
max_connections = 1000
[admin]
listen = "127.0.0.1:0"
[log]
access = false
[pools.app]
backends = ["{}", "{}"]
[pools.app.health]
path = "/health"
interval = "200ms"
timeout = "1s"
rise = 2
fall = 2
initial_state = "healthy"
"#,
        a.addr, b.addr
    );
    let d = Drover::start_under(&["prlimit", "--nofile=40:40"], &config, &[], &[]);
    wait_until("first checks", 20, async || readyz(&d).await == 200).await;
    assert_eq!(states(&d).await, vec!["healthy", "healthy"]);

    let mut silent = Vec::new();
    for _ in 0..200 {
        match tokio::net::TcpStream::connect(d.proxy).await {
            Ok(s) => silent.push(s),
            Err(_) => break,
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(silent);

    // The admin API answers again once the descriptors are back.
    wait_until(
        "admin reachable after the flood",
        30,
        async || match client().get(d.admin_url("/readyz")).send().await {
            Ok(r) => r.status() == 200,
            Err(_) => false,
        },
    )
    .await;
    let ev = events(&d).await;
    assert!(
        !ev.iter().any(|(kind, _, _)| kind == "unhealthy"),
        "healthy backends were marked down: {ev:?}"
    );
    assert_eq!(states(&d).await, vec!["healthy", "healthy"]);
    let statuses = burst(d.url("/x"), 10).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    // The unknown checks are counted and the warning is rate-limited
    // (one per pool per 10 s: at most 2 during this test's few seconds).
    let unknown = metric(
        &d,
        &format!(
            "drover_health_checks_total{{pool=\"app\",backend=\"{}\",result=\"unknown\"}}",
            a.addr
        ),
    )
    .await;
    let warnings = d
        .proc
        .stderr
        .all()
        .iter()
        .filter(|l| l.contains("health check could not run for a local reason"))
        .count();
    eprintln!(
        "unknown checks of {}: {unknown}; warnings: {warnings}",
        a.addr
    );
    assert!(warnings <= 2, "{warnings} warnings: not rate-limited");
    assert!(unknown > 0.0, "the flood never made a probe fail locally");
}
