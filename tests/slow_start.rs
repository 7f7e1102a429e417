//! End to end: slow start. A member that becomes healthy again, is added by
//! the admin API or is a scaled-up instance takes a share that rises over the window, as counted by the
//! backends themselves; the admin API shows its effective weight. Also the
//! numbers of a 1 → 3 scale-up onto backends that are slow while they warm up,
//! with and without slow start (an ignored test that prints them).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::managed::{managed_pool, scale};
use common::STATIC_HEALTH as HEALTH;
use common::{client, get_json, one_pool, pool_json, wait_until, Backend, Drover};
use serde_json::{json, Value};

/// Requests served by the backend at `addr` so far (its own counter).
async fn served(addr: SocketAddr) -> u64 {
    let v: Value = get_json(&format!("http://{addr}/admin/stats")).await;
    v["requests"].as_u64().unwrap()
}

/// The member with this address in the admin API's pool JSON.
async fn member(d: &Drover, addr: std::net::SocketAddr) -> Value {
    let p = pool_json(d, "app").await;
    p["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["address"] == addr.to_string())
        .cloned()
        .unwrap_or(Value::Null)
}

/// Sends `n` requests one after another; returns the share of them the backend at `addr` counted.
async fn share_of(d: &Drover, addr: SocketAddr, n: u64) -> f64 {
    let before = served(addr).await;
    let c = client();
    for _ in 0..n {
        let r = c.get(d.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    (served(addr).await - before) as f64 / n as f64
}

#[tokio::test]
async fn a_member_back_from_unhealthy_ramps_its_share_up_over_the_window() {
    let (a, b, c) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    );
    let extra = format!("balance = \"weighted_round_robin\"\nslow_start = \"8s\"\n{HEALTH}");
    let d = Drover::start(&one_pool(&[a.addr, b.addr, c.addr], &extra));
    // Members healthy at start take their full weight at once.
    assert_eq!(member(&d, c.addr).await["effective_weight"], 1.0);

    let admin = |path: &str| format!("http://{}/admin/{path}", c.addr);
    client().post(admin("fail")).send().await.unwrap();
    wait_until("c unhealthy", 20, async || {
        member(&d, c.addr).await["state"] == "unhealthy"
    })
    .await;
    assert_eq!(member(&d, c.addr).await["effective_weight"], 0.0);
    client().post(admin("recover")).send().await.unwrap();
    wait_until("c healthy", 20, async || {
        member(&d, c.addr).await["state"] == "healthy"
    })
    .await;
    let back = Instant::now();

    // Early in the window: a small share (10% weight at first: 0.1 / 2.1 = 5%).
    let w_early = member(&d, c.addr).await["effective_weight"]
        .as_f64()
        .unwrap();
    let early = share_of(&d, c.addr, 40).await;
    let early_took = back.elapsed();
    assert!(
        w_early < 0.6,
        "effective weight {w_early} early in the window"
    );
    // Up to 8 s of the window may have passed on a slow machine: 0.5 / 2.5 at
    // 4 s; the full share is 1/3.
    if early_took < Duration::from_secs(4) {
        assert!(early < 0.22, "early share {early} after {early_took:?}");
    }

    // After the window: the full share (exactly a third by weighted round robin).
    wait_until("c at full weight", 30, async || {
        member(&d, c.addr).await["effective_weight"] == 1.0
    })
    .await;
    let late = share_of(&d, c.addr, 60).await;
    assert!(
        (late - 1.0 / 3.0).abs() < 0.02,
        "share {late} after the window (early {early})"
    );
    assert!(late > early + 0.1, "early {early}, late {late}");
}

#[tokio::test]
async fn a_member_added_by_the_api_starts_slow_and_reaches_its_weight() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let d = Drover::start(&one_pool(
        &[a.addr],
        "balance = \"random\"\nslow_start = \"3s\"\nslow_start_aggression = 2.0",
    ));
    let r = client()
        .post(d.admin_url("/api/v1/pools/app/backends"))
        .json(&json!({"address": b.addr.to_string(), "weight": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let m = member(&d, b.addr).await;
    let w = m["effective_weight"].as_f64().unwrap();
    assert_eq!(m["weight"], 4);
    assert!(
        (0.4..4.0).contains(&w),
        "effective weight {w} just after adding"
    );
    wait_until("b at full weight", 30, async || {
        member(&d, b.addr).await["effective_weight"] == 4.0
    })
    .await;
    // 4 : 1 by weight.
    let share = share_of(&d, b.addr, 200).await;
    assert!(share > 0.65 && share < 0.92, "share {share}");
}

#[tokio::test]
async fn a_scaled_up_instance_takes_a_rising_share() {
    let config = managed_pool(
        "balance = \"weighted_round_robin\"\nslow_start = \"4s\"",
        "",
        "count = 1",
    );
    let d = Drover::start(&config);
    // The first instance ramps too (it is new): wait until it is at full weight.
    wait_until("one instance at full weight", 30, async || {
        let p = pool_json(&d, "app").await;
        p["backends"][0]["state"] == "healthy" && p["backends"][0]["effective_weight"] == 1.0
    })
    .await;
    let first = pool_json(&d, "app").await["backends"][0]["address"]
        .as_str()
        .unwrap()
        .to_string();
    scale(&d, 2).await;
    wait_until("two instances", 30, async || {
        common::healthy_count(&d, "app").await == 2
    })
    .await;
    let up = Instant::now();
    let p = pool_json(&d, "app").await;
    let new: SocketAddr = p["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["address"] != first.as_str())
        .unwrap()["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let early = share_of(&d, new, 40).await;
    let early_took = up.elapsed();
    if early_took < Duration::from_secs(2) {
        // Weight 0.1 to 0.5 against 1: a share of 9% to 33%, not a half.
        assert!(early < 0.36, "early share {early} after {early_took:?}");
    }
    wait_until("the window over", 30, async || {
        pool_json(&d, "app").await["backends"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["effective_weight"] == 1.0)
    })
    .await;
    let late = share_of(&d, new, 40).await;
    assert!(
        (late - 0.5).abs() < 0.03,
        "late share {late} (early {early})"
    );
    assert!(late > early + 0.1, "early {early}, late {late}");
}

/// Latency percentiles of one run.
#[derive(Debug)]
struct Run {
    requests: usize,
    failed: usize,
    p50: Duration,
    p95: Duration,
    p99: Duration,
    max: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// One 1 → 3 scale-up of managed backends that are slow for their first 3 s
/// (`--warmup 3000`) under 12 closed-loop clients of `/delay/20`, balanced
/// round robin; latencies of the requests started in the 6 s after the scale command.
async fn scale_up_run(slow_start: Option<&str>) -> Run {
    let policy = slow_start.map_or(String::new(), |s| format!("slow_start = \"{s}\""));
    let config = managed_pool(
        &policy,
        "\"--warmup\", \"3000\"",
        "count = 1\nstart_timeout = \"20s\"\ndrain_timeout = \"2s\"",
    );
    let d = Drover::start(&config);
    wait_until("one instance", 30, async || {
        common::healthy_count(&d, "app").await == 1
    })
    .await;
    // Past the first instance's own warm-up, and its own slow start (it is new too).
    tokio::time::sleep(Duration::from_secs(4)).await;
    wait_until("the first instance at full weight", 30, async || {
        pool_json(&d, "app").await["backends"][0]["effective_weight"] == 1.0
    })
    .await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = Instant::now() + Duration::from_secs(9);
    let measure_from = Instant::now() + Duration::from_secs(2);
    let measure_to = measure_from + Duration::from_secs(6);
    let clients: Vec<_> = (0..12)
        .map(|_| {
            let (url, tx) = (d.url("/delay/20"), tx.clone());
            tokio::spawn(async move {
                let c = client();
                while Instant::now() < stop {
                    let t0 = Instant::now();
                    let ok = matches!(c.get(&url).send().await, Ok(r) if r.status() == 200);
                    if t0 >= measure_from && t0 < measure_to {
                        let _ = tx.send((t0.elapsed(), ok));
                    }
                }
            })
        })
        .collect();
    drop(tx);
    tokio::time::sleep_until((measure_from).into()).await;
    scale(&d, 3).await;
    for c in clients {
        c.await.unwrap();
    }
    let mut lat = Vec::new();
    let mut failed = 0;
    while let Some((l, ok)) = rx.recv().await {
        lat.push(l);
        failed += usize::from(!ok);
    }
    lat.sort();
    assert!(!lat.is_empty());
    Run {
        requests: lat.len(),
        failed,
        p50: percentile(&lat, 0.50),
        p95: percentile(&lat, 0.95),
        p99: percentile(&lat, 0.99),
        max: lat[lat.len() - 1],
    }
}

/// `cargo test --test slow_start -- --ignored --nocapture`: prints the latency
/// of a 1 → 3 scale-up onto cold backends without and with `slow_start = "10s"`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement that prints numbers (bench/RESULTS.md), not a check"]
async fn scale_up_latency_with_and_without_slow_start() {
    for round in 0..3 {
        for ss in [None, Some("10s")] {
            let r = scale_up_run(ss).await;
            println!(
                "round {round} slow_start={:<5} requests={} failed={} p50={:?} p95={:?} p99={:?} max={:?}",
                ss.unwrap_or("off"),
                r.requests,
                r.failed,
                r.p50,
                r.p95,
                r.p99,
                r.max
            );
        }
    }
}
