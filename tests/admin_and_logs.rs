//! End to end: the admin API, /metrics and the access log.

mod common;

use std::time::Duration;

use common::{client, get_json, get_text, one_pool, reload, Backend, Drover};

#[tokio::test]
async fn admin_lists_pools_members_and_counters() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let d = Drover::start(&one_pool(&[a.addr, b.addr], "balance = \"least_conn\""));
    for _ in 0..4 {
        client().get(d.url("/x")).send().await.unwrap();
    }
    let c = client();
    assert_eq!(
        c.get(d.admin_url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(d.admin_url("/readyz")).send().await.unwrap().status(),
        200
    );
    let pools: serde_json::Value = c
        .get(d.admin_url("/api/v1/pools"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let p = &pools[0];
    assert_eq!(p["name"], "app");
    assert_eq!(p["balance"], "least_conn");
    let members = p["backends"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    let total: u64 = members
        .iter()
        .map(|m| m["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 4);
    for m in members {
        assert_eq!(m["state"], "healthy");
        for k in [
            "address", "inflight", "failures", "ewma_ms", "weight", "managed",
        ] {
            assert!(m.get(k).is_some(), "{k} missing");
        }
    }
    let one: serde_json::Value = c
        .get(d.admin_url("/api/v1/pools/app"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["name"], "app");
    let r = c
        .get(d.admin_url("/api/v1/pools/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let e: serde_json::Value = r.json().await.unwrap();
    assert!(e["error"].is_string());
}

#[tokio::test]
async fn metrics_count_requests_by_pool_backend_and_code() {
    let a = Backend::start("a");
    let d = Drover::start(&one_pool(&[a.addr], ""));
    for p in ["/x", "/x", "/status/500"] {
        client().get(d.url(p)).send().await.unwrap();
    }
    let text = get_text(&d.admin_url("/metrics")).await;
    let line = format!(
        "drover_requests_total{{pool=\"app\",backend=\"{}\",code=\"200\"}} 2",
        a.addr
    );
    assert!(text.contains(&line), "{text}");
    assert!(text.contains(&format!(
        "drover_requests_total{{pool=\"app\",backend=\"{}\",code=\"500\"}} 1",
        a.addr
    )));
    assert!(
        text.contains("drover_request_duration_seconds_count{pool=\"app\"} 3"),
        "{text}"
    );
    for name in [
        "drover_backend_inflight",
        "drover_backend_up",
        "drover_pool_instances",
        "drover_pool_desired_instances",
        "drover_retries_total",
    ] {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
    }
}

#[tokio::test]
async fn access_log_writes_one_json_line_per_request() {
    let a = Backend::start("a");
    let d = Drover::start(&one_pool(&[a.addr], "").replace("access = false", "access = true"));
    let r = client()
        .get(d.url("/bytes/1234?q=1"))
        .header("x-request-id", "log-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 1234);
    let line = d
        .proc
        .stdout
        .wait_for("access line", Duration::from_secs(5), |l| {
            l.contains("log-1")
        });
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["request_id"], "log-1");
    assert_eq!(v["client"], "127.0.0.1");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/bytes/1234?q=1");
    assert_eq!(v["status"], 200);
    assert_eq!(v["bytes"], 1234);
    assert_eq!(v["pool"], "app");
    assert_eq!(v["backend"], a.addr.to_string());
    assert_eq!(v["retries"], 0);
    assert!(v["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(v["ts"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn sighup_reload_applies_a_valid_config_and_keeps_the_old_on_errors() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let d = Drover::start(&one_pool(&[a.addr], ""));
    let name = |v: serde_json::Value| v["name"].as_str().unwrap().to_string();
    let v: serde_json::Value = get_json(&d.url("/")).await;
    assert_eq!(name(v), "a");
    std::fs::write(&d.config_path, one_pool(&[b.addr], "")).unwrap();
    d.proc.signal("HUP");
    d.proc
        .stderr
        .wait_for("reload", Duration::from_secs(5), |l| {
            l.contains("config reloaded")
        });
    let v: serde_json::Value = get_json(&d.url("/")).await;
    assert_eq!(name(v), "b");
    // An invalid file is refused through the API with the errors, and b keeps serving.
    std::fs::write(&d.config_path, "[pools.app]\nbackends = [\"nope\"]\n").unwrap();
    let r = reload(&d).await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert!(
        e["detail"].to_string().contains("pools.app.backends[0]"),
        "{e}"
    );
    let v: serde_json::Value = get_json(&d.url("/")).await;
    assert_eq!(name(v), "b");
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits_0() {
    let a = Backend::start("a");
    let mut d = Drover::start(&one_pool(&[a.addr], ""));
    let url = d.url("/delay/1500");
    let inflight =
        tokio::spawn(async move { client().get(url).send().await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.proc.signal("TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // New connections are refused while the old request finishes.
    assert!(std::net::TcpStream::connect(d.proxy).is_err());
    assert_eq!(inflight.await.unwrap().unwrap(), 200);
    assert_eq!(d.proc.wait_exit(Duration::from_secs(10)), Some(0));
}

#[tokio::test]
async fn upstream_connections_are_reused_across_requests() {
    let a = Backend::start("a");
    let d = Drover::start(&one_pool(&[a.addr], ""));
    let c = client();
    for p in [
        "/bytes/100",
        "/x",
        "/bytes/70000",
        "/status/204",
        "/stream/2/1",
    ] {
        for _ in 0..20 {
            let r = c.get(d.url(p)).send().await.unwrap();
            r.bytes().await.unwrap();
        }
    }
    let text = c
        .get(d.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let n: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("drover_upstream_connects_total "))
        .unwrap()
        .parse()
        .unwrap();
    // One client connection lands on one worker: one upstream connection, a few at most.
    assert!(
        n <= 3,
        "100 sequential requests opened {n} upstream connections"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_rebinds_changed_listeners_without_a_gap_for_the_others() {
    let a = Backend::start("a");
    let (p1, p2) = (free_port(), free_port());
    let cfg = |ports: &[u16]| {
        let list: Vec<String> = ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
        one_pool(&[a.addr], "").replace(
            "listen = [\"127.0.0.1:0\"]",
            &format!("listen = [{}]", list.join(", ")),
        )
    };
    let d = Drover::start(&cfg(&[p1]));
    let url = |p: u16| format!("http://127.0.0.1:{p}/x");
    assert_eq!(client().get(url(p1)).send().await.unwrap().status(), 200);
    assert!(client().get(url(p2)).send().await.is_err());

    // Add p2.
    std::fs::write(&d.config_path, cfg(&[p1, p2])).unwrap();
    assert_eq!(reload(&d).await.status(), 200);
    assert_eq!(client().get(url(p2)).send().await.unwrap().status(), 200);

    // Remove p1 while clients hammer p2: p2 never fails, p1 stops accepting.
    let load = common::Load::start(&url(p2), 4, 5000);
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(&d.config_path, cfg(&[p2])).unwrap();
    assert_eq!(reload(&d).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, failed) = load.stop().await;
    assert_eq!(failed, 0);
    assert!(ok > 10);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", p1)).is_err(),
        "p1 still accepts"
    );

    // A listener that cannot be bound refuses the reload and keeps the running config.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    std::fs::write(&d.config_path, cfg(&[p2, busy])).unwrap();
    let r = reload(&d).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("cannot listen on"));
    assert_eq!(client().get(url(p2)).send().await.unwrap().status(), 200);
}
