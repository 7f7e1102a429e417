//! End to end: reloads under load lose no request; `--watch`; a second signal
//! during a graceful shutdown exits at once.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client, get_json, one_pool, reload, Backend, Drover};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reloads_under_8_concurrent_clients_fail_no_request() {
    let (a, b, c) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    );
    let d = Drover::start(&one_pool(&[a.addr, b.addr], ""));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let seen_c = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for i in 0..8 {
        let (url, stop, ok, failed, seen_c) = (
            d.url(&format!("/delay/{}", 5 + i * 3)),
            stop.clone(),
            ok.clone(),
            failed.clone(),
            seen_c.clone(),
        );
        clients.push(tokio::spawn(async move {
            let http = client();
            while !stop.load(Ordering::Relaxed) {
                match http.get(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        let v: serde_json::Value = r.json().await.unwrap_or_default();
                        if v["name"] == "c" {
                            seen_c.fetch_add(1, Ordering::Relaxed);
                        }
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => {
                        eprintln!("failed: status {}", r.status());
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("failed: {e}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    let at = |s: f64| started + Duration::from_secs_f64(s);
    let sleep_until = |t: Instant| tokio::time::sleep_until(t.into());

    // 1. Members a,b -> b,c and round_robin -> least_conn, by SIGHUP.
    sleep_until(at(1.5)).await;
    std::fs::write(
        &d.config_path,
        one_pool(&[b.addr, c.addr], "balance = \"least_conn\""),
    )
    .unwrap();
    d.proc.signal("HUP");
    // 2. An invalid file is refused; the running config stays.
    sleep_until(at(3.0)).await;
    std::fs::write(&d.config_path, "[pools.app]\nbalance = \"fastest\"\n").unwrap();
    d.proc.signal("HUP");
    // 3. Back to a valid one with another algorithm, through the API.
    sleep_until(at(4.5)).await;
    std::fs::write(
        &d.config_path,
        one_pool(&[a.addr, c.addr], "balance = \"p2c_ewma\""),
    )
    .unwrap();
    let r = reload(&d).await;
    assert_eq!(r.status(), 200);
    sleep_until(at(6.5)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let reloads = d
        .proc
        .stderr
        .all()
        .iter()
        .filter(|l| l.contains("\"message\":\"config reloaded\""))
        .count();
    let refused = d
        .proc
        .stderr
        .all()
        .iter()
        .any(|l| l.contains("reload refused"));
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("{ok} ok, {failed} failed, {reloads} reloads");
    assert_eq!(failed, 0, "requests failed during reloads");
    assert!(ok > 200, "too little traffic to prove anything: {ok}");
    assert_eq!(reloads, 2);
    assert!(refused, "the invalid file was not reported");
    assert!(
        seen_c.load(Ordering::Relaxed) > 0,
        "the new member never served"
    );
    let pool: serde_json::Value = get_json(&d.admin_url("/api/v1/pools/app")).await;
    assert_eq!(pool["balance"], "p2c_ewma");
}

#[tokio::test]
async fn watch_reloads_when_the_file_changes() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let d = Drover::start_with(&one_pool(&[a.addr], ""), &["--watch"]);
    d.proc
        .stderr
        .wait_for("watching", Duration::from_secs(5), |l| {
            l.contains("watching the config file")
        });
    tokio::time::sleep(Duration::from_millis(1100)).await; // a distinct mtime
    std::fs::write(&d.config_path, one_pool(&[b.addr], "")).unwrap();
    d.proc
        .stderr
        .wait_for("reload", Duration::from_secs(6), |l| {
            l.contains("config reloaded")
        });
    let v: serde_json::Value = get_json(&d.url("/")).await;
    assert_eq!(v["name"], "b");
}

#[tokio::test]
async fn a_second_signal_during_shutdown_exits_at_once() {
    let a = Backend::start("a");
    let mut d = Drover::start(&one_pool(&[a.addr], "").replace(
        "listen = [\"127.0.0.1:0\"]",
        "listen = [\"127.0.0.1:0\"]\nshutdown_timeout = \"30s\"",
    ));
    let url = d.url("/delay/20000");
    let _inflight = tokio::spawn(async move { client().get(url).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.proc.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        d.proc.wait_exit(Duration::from_millis(10)),
        None,
        "still draining"
    );
    let t = Instant::now();
    d.proc.signal("INT");
    let code = d.proc.wait_exit(Duration::from_secs(3));
    assert_eq!(code, Some(1), "a cut-short shutdown is not a clean exit");
    assert!(t.elapsed() < Duration::from_secs(3));
}
