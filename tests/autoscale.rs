//! End to end: managed process instances and autoscaling, with real processes.

mod common;

use std::time::{Duration, Instant};

use common::managed::{backends_with, marked_pool};
use common::{
    all_events as events, client, get_text, healthy_count, pool_json, wait_until, Drover, Load, BIN,
};

/// Pids of live `drover backend` processes whose command line contains `marker`.
fn pids_with(marker: &str) -> Vec<i32> {
    backends_with(marker)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect()
}

fn config(marker: &str, instances_extra: &str, autoscale: &str) -> String {
    marked_pool(
        marker,
        "balance = \"least_conn\"\nretries = 2",
        &format!("drain_timeout = \"5s\"\n{instances_extra}"),
        autoscale,
    )
}

async fn pool(d: &Drover) -> serde_json::Value {
    pool_json(d, "app").await
}

async fn healthy(d: &Drover) -> usize {
    healthy_count(d, "app").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_load_scales_up_within_max_and_back_down_with_no_failed_requests() {
    let marker = format!("as{}", std::process::id());
    let d = Drover::start(&config(
        &marker,
        "",
        r#"[pools.app.autoscale]
min = 1
max = 4
interval = "500ms"
target_inflight = 2
scale_up_cooldown = "500ms"
scale_down_cooldown = "2s""#,
    ));
    wait_until("first instance", 20, async || healthy(&d).await == 1).await;

    let stop_at = Instant::now() + Duration::from_secs(8);
    let load = Load::start(&d.url("/delay/300"), 8, 200);
    let mut peak = 0;
    while Instant::now() < stop_at {
        let p = pool(&d).await;
        let desired = p["desired"].as_u64().unwrap();
        assert!(desired <= 4, "desired {desired} above max");
        peak = peak.max(healthy(&d).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok, failed) = load.stop().await;
    assert!(peak >= 3, "only {peak} healthy instances at peak");
    assert!(pids_with(&marker).len() <= 4);
    // Load gone: back to min.
    wait_until("scale down to 1", 30, async || {
        let p = pool(&d).await;
        p["desired"] == 1 && p["backends"].as_array().unwrap().len() == 1
    })
    .await;
    assert_eq!(failed, 0, "failed requests across up and down");
    assert!(ok > 50);
    let ev = events(&d).await;
    let reasons: Vec<String> = ev
        .iter()
        .filter(|e| e["kind"] == "scale_up")
        .map(|e| e["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("scale 1 -> ")),
        "{reasons:?}"
    );
    assert!(ev.iter().any(|e| e["kind"] == "scale_down"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_instance_is_replaced() {
    let marker = format!("kr{}", std::process::id());
    let d = Drover::start(&config(&marker, "count = 2", ""));
    wait_until("two instances", 20, async || healthy(&d).await == 2).await;
    let before = pids_with(&marker);
    assert_eq!(before.len(), 2, "{before:?}");
    let victim = before[0];
    assert!(std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap()
        .success());
    wait_until("replacement", 20, async || {
        let now = pids_with(&marker);
        now.len() == 2 && !now.contains(&victim)
    })
    .await;
    wait_until("two healthy again", 20, async || healthy(&d).await == 2).await;
    let ev = events(&d).await;
    assert!(
        ev.iter()
            .any(|e| e["kind"] == "instance_failed"
                && e["reason"].as_str().unwrap().contains("exited")),
        "{ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_to_zero_when_idle_and_holds_a_request_for_the_cold_start() {
    let marker = format!("sz{}", std::process::id());
    let d = Drover::start(&config(
        &marker,
        "",
        r#"[pools.app.autoscale]
min = 0
max = 2
interval = "300ms"
target_inflight = 5
scale_down_cooldown = "0s"
idle_timeout = "1s"
hold_timeout = "20s""#,
    ));
    wait_until("scaled to zero", 30, async || {
        let p = pool(&d).await;
        p["desired"] == 0 && p["backends"].as_array().unwrap().is_empty()
    })
    .await;
    wait_until("no process left", 10, async || {
        pids_with(&marker).is_empty()
    })
    .await;
    let t0 = Instant::now();
    let r = client().get(d.url("/cold")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cold: f64 = r.headers()["x-drover-cold-start"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(cold > 0.0 && cold <= t0.elapsed().as_secs_f64() + 0.01);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/cold");
    let metrics = get_text(&d.admin_url("/metrics")).await;
    assert!(
        metrics.contains("drover_cold_start_seconds_count{pool=\"app\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigkill_of_drover_leave_no_instance_behind() {
    for sig in ["TERM", "KILL"] {
        let marker = format!("nl{}{sig}", std::process::id());
        let mut d = Drover::start(&config(&marker, "count = 2", ""));
        wait_until("two instances", 20, async || healthy(&d).await == 2).await;
        assert_eq!(pids_with(&marker).len(), 2);
        d.proc.signal(sig);
        let _ = d.proc.wait_exit(Duration::from_secs(10));
        wait_until(&format!("instances gone after SIG{sig}"), 10, async || {
            pids_with(&marker).is_empty()
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_cannot_start_backs_off_with_events() {
    let cfg = config("bad", "count = 1", "").replace(
        &format!("\"{BIN}\", \"backend\""),
        "\"/nonexistent/drover-test-cmd\", \"backend\"",
    );
    let d = Drover::start(&cfg);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let failed: Vec<serde_json::Value> = events(&d)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "instance_failed")
        .collect();
    // 1 s, 2 s back-off: two or three failures in 3.5 s, not a tight loop.
    assert!((1..=4).contains(&failed.len()), "{failed:?}");
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("replacing it in 1s"),
        "{failed:?}"
    );
    // drover itself keeps serving its admin API.
    assert_eq!(
        client()
            .get(d.admin_url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_scale_sets_the_instance_count_and_refuses_outside_min_max() {
    let marker = format!("ps{}", std::process::id());
    let d = Drover::start(&config(
        &marker,
        "",
        r#"[pools.app.autoscale]
min = 1
max = 3
interval = "500ms"
target_inflight = 50
scale_down_cooldown = "30s""#,
    ));
    wait_until("first instance", 20, async || healthy(&d).await == 1).await;
    let url = d.admin_url("/api/v1/pools/app/scale");
    let r = client()
        .put(&url)
        .json(&serde_json::json!({"instances": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client()
        .put(&url)
        .json(&serde_json::json!({"instances": 3}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    wait_until("three instances", 30, async || healthy(&d).await == 3).await;
    assert_eq!(pids_with(&marker).len(), 3);
    // The autoscaler sees no load, but keeps the manual count within scale_down_cooldown.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pool(&d).await["desired"], 3);
    // One accepted PUT, one `scale_set` event (the refused one records none).
    let set: Vec<String> = events(&d)
        .await
        .iter()
        .filter(|e| {
            e["kind"] == "scale_set" && e["reason"].as_str().unwrap_or("").contains("admin API")
        })
        .map(|e| e["reason"].to_string())
        .collect();
    assert_eq!(set.len(), 1, "{set:?}");
}
