//! End to end, scaling ahead of the load: the warm pool (process and
//! docker), predictive scaling under a bounded load ramp, a schedule window,
//! and their explanation (API and `drover ctl autoscale`), over real
//! processes and containers.

mod common;

use std::time::Duration;

use common::docker::{available, docker, image, ImageCleanup};
use common::managed::{backends_with, marked_pool};
use common::{
    all_events as events, client, get_json, get_text, pool_json, reload, wait_until, Drover, Load,
    BIN, HEADER,
};

fn config(marker: &str, autoscale: &str) -> String {
    marked_pool(
        marker,
        "balance = \"least_conn\"",
        "drain_timeout = \"2s\"",
        &format!("[pools.app.autoscale]\n{autoscale}"),
    )
}

async fn explain(d: &Drover) -> serde_json::Value {
    get_json(&d.admin_url("/api/v1/pools/app/autoscale")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_at_zero_is_served_by_a_frozen_warm_instance_without_a_start() {
    let marker = format!("wz{}", std::process::id());
    let mut d = Drover::start(&config(
        &marker,
        r#"min = 0
max = 2
interval = "300ms"
target_inflight = 5
scale_down_cooldown = "0s"
idle_timeout = "1s"
hold_timeout = "20s"
warm = 1"#,
    ));
    wait_until("at zero with one warm instance ready", 40, async || {
        let p = pool_json(&d, "app").await;
        p["desired"] == 0 && p["backends"].as_array().unwrap().is_empty() && p["warm"]["ready"] == 1
    })
    .await;
    wait_until("the warm process frozen (T)", 20, async || {
        let b = backends_with(&marker);
        b.len() == 1 && b[0].1 == 'T'
    })
    .await;
    let metrics = get_text(&d.admin_url("/metrics")).await;
    assert!(
        metrics.contains("drover_pool_warm_instances{pool=\"app\"} 1"),
        "{metrics}"
    );
    let warm_pid = backends_with(&marker)[0].0;
    let last_id = events(&d)
        .await
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .max()
        .unwrap_or(0);

    let r = client().get(d.url("/at-zero")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let header = r.headers()["x-drover-cold-start"]
        .to_str()
        .unwrap()
        .to_string();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/at-zero");
    let (secs, warm) = header.split_once("; ").expect("names the warm start");
    assert!(secs.parse::<f64>().unwrap() >= 0.0, "{header}");
    assert!(warm.starts_with("warm start p"), "{header}");
    // The request's path: a warm instance joined; no instance was started for it.
    let on_path: Vec<serde_json::Value> = events(&d)
        .await
        .into_iter()
        .filter(|e| e["id"].as_u64().unwrap() > last_id)
        .collect();
    let joined = on_path
        .iter()
        .position(|e| e["kind"] == "warm_joined")
        .expect("warm_joined");
    assert!(
        !on_path[..joined]
            .iter()
            .any(|e| e["kind"] == "instance_started"),
        "{on_path:?}"
    );
    // The thawed process serves; the pool refills with a new frozen one.
    wait_until("refilled: one serving, one frozen", 30, async || {
        let b = backends_with(&marker);
        b.len() == 2
            && b.iter().any(|(p, s)| *p == warm_pid && *s != 'T')
            && b.iter().any(|(p, s)| *p != warm_pid && *s == 'T')
    })
    .await;
    let x = explain(&d).await;
    assert_eq!(x["pool"], "app");
    assert_eq!(x["warm"]["configured"], 1);
    assert!(!x["decisions"].as_array().unwrap().is_empty(), "{x}");
    // Shutdown stops the frozen warm instance too.
    d.proc.signal("TERM");
    let _ = d.proc.wait_exit(Duration::from_secs(10));
    wait_until("no instance left after shutdown", 15, async || {
        backends_with(&marker).is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_ramp_scales_ahead_on_the_forecast() {
    let marker = format!("pr{}", std::process::id());
    let d = Drover::start(&config(
        &marker,
        r#"min = 1
max = 8
interval = "500ms"
target_inflight = 2
scale_up_cooldown = "0s"
scale_down_cooldown = "30s"
predictive = true"#,
    ));
    wait_until("one instance", 30, async || {
        common::healthy_count(&d, "app").await == 1
    })
    .await;
    // A bounded ramp: one more client every 400 ms, up to 12, each at most
    // 150 requests of 200 ms (and at most 60 s).
    let url = d.url("/delay/200");
    let mut loads = Vec::new();
    let mut found = false;
    for _ in 0..12 {
        loads.push(Load::start(&url, 1, 150));
        tokio::time::sleep(Duration::from_millis(400)).await;
        if events(&d).await.iter().any(|e| {
            e["kind"] == "scale_up" && e["reason"].as_str().unwrap_or("").contains(": forecast: ")
        }) {
            found = true;
            break;
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !found && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        found = events(&d).await.iter().any(|e| {
            e["kind"] == "scale_up" && e["reason"].as_str().unwrap_or("").contains(": forecast: ")
        });
    }
    let scaling: Vec<String> = events(&d)
        .await
        .iter()
        .filter(|e| e["kind"].as_str().unwrap_or("").starts_with("scale"))
        .map(|e| e["reason"].to_string())
        .collect();
    assert!(
        found,
        "no scale-up led by the forecast: {scaling:#?}\n{}",
        explain(&d).await
    );
    let x = explain(&d).await;
    assert_eq!(x["predictive"], true);
    assert!(x["forecast"]["value"].as_f64().is_some(), "{x}");
    assert!(
        x["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["reason"].as_str().unwrap_or("").contains("forecast")),
        "{x}"
    );
    for l in loads {
        let (_, failed) = l.stop().await;
        assert_eq!(failed, 0);
    }
}

/// Containers labelled for `pool` with their state (`running`, `paused`, ...).
fn containers(pool: &str) -> Vec<(String, String)> {
    let out = docker(&[
        "ps",
        "-a",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.State}}",
        "--filter",
        &format!("label=drover.pool={pool}"),
    ]);
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, s)| (id.to_string(), s.to_string()))
        .collect()
}

struct PoolCleanup(String);

impl Drop for PoolCleanup {
    fn drop(&mut self) {
        for (id, _) in containers(&self.0) {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f", &id])
                .output();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_pool_keeps_a_paused_warm_container_and_unpauses_it_at_zero() {
    if !available("a_docker_pool_keeps_a_paused_warm_container_and_unpauses_it_at_zero") {
        return;
    }
    let _image = ImageCleanup::new();
    let pool = format!("dw{}", std::process::id());
    let _cleanup = PoolCleanup(pool.clone());
    let cfg = format!(
        r#"
{HEADER}[pools.{pool}]
[pools.{pool}.health]
path = "/health"
interval = "200ms"
rise = 1
fall = 2
[pools.{pool}.instances]
provider = "docker"
image = "{image}"
container_port = 8080
start_timeout = "30s"
stop_timeout = "2s"
drain_timeout = "2s"
[pools.{pool}.autoscale]
min = 0
max = 2
interval = "300ms"
target_inflight = 5
scale_down_cooldown = "0s"
idle_timeout = "1s"
hold_timeout = "30s"
warm = 1
"#,
        image = image()
    );
    let mut d = Drover::start(&cfg);
    wait_until("at zero with one paused warm container", 90, async || {
        let c = containers(&pool);
        let p = pool_json(&d, &pool).await;
        p["desired"] == 0 && c.len() == 1 && c[0].1 == "paused"
    })
    .await;
    let r = client().get(d.url("/warm")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let header = r.headers()["x-drover-cold-start"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(header.contains("; warm start "), "{header}");
    wait_until("one running, one paused again", 90, async || {
        let c = containers(&pool);
        c.len() == 2 && c.iter().any(|x| x.1 == "running") && c.iter().any(|x| x.1 == "paused")
    })
    .await;
    d.proc.signal("TERM");
    let _ = d.proc.wait_exit(Duration::from_secs(20));
    wait_until("containers gone after shutdown", 30, async || {
        containers(&pool).is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_window_raises_min_and_ctl_explains_it() {
    use chrono::Timelike;
    let marker = format!("sw{}", std::process::id());
    // Fires every minute, so it is open from the start; closes at the next
    // full hour two hours from now (at least an hour away).
    let until = (chrono::Utc::now().hour() + 2) % 24;
    let d = Drover::start(&config(
        &marker,
        &format!(
            r#"min = 1
max = 3
interval = "300ms"
target_inflight = 50
[[pools.app.autoscale.schedule]]
cron = "* * * * *"
until = "{until:02}:00"
min = 2"#
        ),
    ));
    wait_until("two instances by the schedule", 30, async || {
        common::healthy_count(&d, "app").await == 2
    })
    .await;
    let ev = events(&d).await;
    assert!(
        ev.iter().any(|e| e["kind"] == "schedule_open"
            && e["reason"].as_str().unwrap().contains("bounds [2, 3]")),
        "{ev:?}"
    );
    assert_eq!(
        ev.iter().filter(|e| e["kind"] == "schedule_open").count(),
        1,
        "opened once, not on every evaluation: {ev:?}"
    );
    let x = explain(&d).await;
    assert_eq!(
        (x["min"].as_u64(), x["max"].as_u64()),
        (Some(2), Some(3)),
        "{x}"
    );
    assert_eq!(x["schedule"][0]["cron"], "* * * * *");
    assert_eq!(x["limit"], "min", "{x}");
    let out = std::process::Command::new(BIN)
        .args(["ctl", "--admin", &d.admin_url(""), "autoscale", "app"])
        .env_remove("DROVER_ADMIN")
        .env_remove("DROVER_ADMIN_TOKEN")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "pool app: desired 2 in [2, 3]",
        "schedule: window \"* * * * *\"",
        "held back by: min",
        "forecast: off",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    // An unknown pool: 404.
    let r = client()
        .get(d.admin_url("/api/v1/pools/nope/autoscale"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowering_warm_by_reload_stops_the_frozen_extra_instances() {
    let marker = format!("wr{}", std::process::id());
    let cfg = config(
        &marker,
        "min = 1\nmax = 2\ninterval = \"300ms\"\ntarget_inflight = 5\nwarm = 2",
    );
    let d = Drover::start(&cfg);
    wait_until("one serving, two frozen", 40, async || {
        let b = backends_with(&marker);
        b.len() == 3 && b.iter().filter(|(_, s)| *s == 'T').count() == 2
    })
    .await;
    std::fs::write(&d.config_path, cfg.replace("warm = 2", "warm = 0")).unwrap();
    let r = reload(&d).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    wait_until(
        "the warm ones stopped, the serving one kept",
        30,
        async || {
            let b = backends_with(&marker);
            b.len() == 1 && b[0].1 != 'T'
        },
    )
    .await;
    let ev = events(&d).await;
    assert_eq!(
        ev.iter().filter(|e| e["kind"] == "warm_stopped").count(),
        2,
        "{ev:?}"
    );
    let r = client().get(d.url("/still")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
