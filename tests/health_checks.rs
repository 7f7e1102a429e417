//! End to end: active health checks against real `drover backend` processes,
//! killed for real.

mod common;
mod health_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client, get_json, one_pool, Backend, Drover};
use health_support::*;

const INTERVAL_MS: u64 = 200;
/// Slack for a loaded 2-core machine on top of every bound the checks promise.
const MARGIN: Duration = Duration::from_secs(3);

fn interval() -> Duration {
    Duration::from_millis(INTERVAL_MS)
}

/// Three backends behind drover with 200 ms checks, rise 2, fall 2; all healthy.
async fn three_checked() -> (Vec<Backend>, Drover) {
    let bs: Vec<Backend> = (1..=3).map(|i| Backend::start(&format!("b{i}"))).collect();
    let addrs: Vec<_> = bs.iter().map(|b| b.addr).collect();
    let d = Drover::start(&one_pool(&addrs, &fast_health(INTERVAL_MS, 2, 2)));
    for b in &bs {
        wait_state(&d, b.addr, "healthy", Duration::from_secs(10)).await;
    }
    (bs, d)
}

/// 8 clients sending GETs until stopped; counts successes and keeps every failure.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(url: String) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..8)
            .map(|_| {
                let (stop, ok, failures, url) =
                    (stop.clone(), ok.clone(), failures.clone(), url.clone());
                tokio::spawn(async move {
                    let c = client();
                    // Bounded: at most 100,000 requests per client.
                    for _ in 0..100_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        match c.get(&url).send().await {
                            Ok(r) if r.status() == 200 => {
                                let _ = r.bytes().await;
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) => {
                                let s = r.status();
                                let body = r.text().await.unwrap_or_default();
                                failures.lock().unwrap().push(format!("{s}: {body}"));
                            }
                            Err(e) => failures.lock().unwrap().push(e.to_string()),
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failures,
            tasks,
        }
    }

    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.ok.load(Ordering::Relaxed), failures)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_no_get_and_the_member_returns_on_the_same_port() {
    let (bs, d) = three_checked().await;
    let victim = bs[1].addr;
    let load = Load::start(d.url("/anything"));
    tokio::time::sleep(Duration::from_secs(1)).await;

    bs[1].proc.signal("KILL");
    let killed = Instant::now();
    // fall × interval + one interval, plus slack for a loaded machine.
    let bound = interval() * 2 + interval() + MARGIN;
    let out = wait_state(&d, victim, "unhealthy", bound).await;
    assert!(killed.elapsed() <= bound, "took {out:?}");
    // From now on drover sends it nothing: its failure count stays put.
    let m = member(&d, victim).await;
    let failures_then = m["failures"].as_u64().unwrap();
    assert!(
        m["reason"]
            .as_str()
            .unwrap()
            .starts_with("2 failed checks: "),
        "{m}"
    );
    assert_eq!(m["last_check"]["result"], "fail", "{m}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let m = member(&d, victim).await;
    assert_eq!(m["failures"].as_u64().unwrap(), failures_then, "{m}");
    assert_eq!(m["state"], "unhealthy");

    // Back on the same port: in rotation within rise × interval + one interval.
    let again = Backend::start_on(&victim.to_string(), "b2-again");
    let started = Instant::now();
    let bound = interval() * 2 + interval() + MARGIN;
    wait_state(&d, victim, "healthy", bound).await;
    assert!(started.elapsed() <= bound);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, failures) = load.finish().await;
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(ok > 100, "only {ok} requests went through");
    assert!(
        served(again.addr).await > 0,
        "the restarted member got no traffic"
    );

    let ev = events(&d).await;
    let mine: Vec<&str> = ev
        .iter()
        .filter(|e| e.1 == victim.to_string())
        .map(|e| e.0.as_str())
        .collect();
    assert!(mine.ends_with(&["unhealthy", "healthy"]), "{ev:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_whose_health_turns_503_is_taken_out_and_returns_after_recover() {
    let (bs, d) = three_checked().await;
    let c = client();
    let sick = &bs[0];
    let r = c
        .post(format!("http://{}/admin/fail", sick.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_state(&d, sick.addr, "unhealthy", interval() * 3 + MARGIN).await;
    let m = member(&d, sick.addr).await;
    assert_eq!(
        m["reason"], "2 failed checks: status 503 (expected 200-399)",
        "{m}"
    );

    let before = served(sick.addr).await;
    for _ in 0..30 {
        let v: serde_json::Value = c
            .get(d.url("/x"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_ne!(v["name"], "b1");
    }
    assert_eq!(
        served(sick.addr).await,
        before,
        "its other paths work, but it got traffic"
    );

    c.post(format!("http://{}/admin/recover", sick.addr))
        .send()
        .await
        .unwrap();
    wait_state(&d, sick.addr, "healthy", interval() * 3 + MARGIN).await;
    let mut names = std::collections::HashSet::new();
    for _ in 0..30 {
        let v: serde_json::Value = c
            .get(d.url("/x"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        names.insert(v["name"].as_str().unwrap().to_string());
    }
    assert!(names.contains("b1"), "{names:?}");

    let text = c
        .get(d.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let fail = format!(
        "drover_health_checks_total{{pool=\"app\",backend=\"{}\",result=\"fail\"}} ",
        sick.addr
    );
    let n: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(&fail))
        .unwrap_or_else(|| panic!("{text}"))
        .parse()
        .unwrap();
    assert!(n >= 2, "{text}");
}

#[tokio::test]
async fn with_every_member_unhealthy_a_503_comes_at_once() {
    // Members start unhealthy until they pass `rise` checks; these never will.
    let d = Drover::start(&one_pool(
        &[dead_addr(), dead_addr()],
        &fast_health(INTERVAL_MS, 2, 2),
    ));
    let c = client();
    for _ in 0..5 {
        let t0 = Instant::now();
        let r = c.get(d.url("/x")).send().await.unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("no healthy member available in pool app"),
            "{body}"
        );
        assert!(
            t0.elapsed() < Duration::from_millis(900),
            "{:?}",
            t0.elapsed()
        );
    }
    tokio::time::sleep(interval() * 3).await;
    assert_eq!(states(&d).await, vec!["unhealthy", "unhealthy"]);
    let m = member(&d, d_first(&d).await).await;
    assert_eq!(m["last_check"]["detail"], "connection refused", "{m}");
}

async fn d_first(d: &Drover) -> std::net::SocketAddr {
    let v: serde_json::Value = get_json(&d.admin_url("/api/v1/pools/app")).await;
    v["backends"][0]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}
