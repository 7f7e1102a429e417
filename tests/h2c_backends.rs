//! `protocol = "h2c"` pools against the built-in backend (which serves
//! HTTP/1.1 and h2c on one port): multiplexing over few connections, GOAWAY
//! from the backend, draining, health checks over HTTP/2, cold start from
//! zero, and drover's own failures told to gRPC clients as gRPC statuses.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use futures_util::future::join_all;

/// A `drover backend` with extra environment variables.
fn backend_env(name: &str, env: &[(&str, &str)]) -> Backend {
    let args = [
        "--log-format",
        "json",
        "backend",
        "--listen",
        "127.0.0.1:0",
        "--name",
        name,
    ];
    let proc = Proc::spawn_env(&args, None, env);
    let addr = proc.stderr.addr_of("backend listening");
    Backend {
        proc,
        addr,
        name: name.to_string(),
    }
}

/// The backend's `/admin/stats`, read on a connection of its own (counted in
/// `connections` and `open_connections`).
async fn stats(b: SocketAddr) -> serde_json::Value {
    let c = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    c.get(format!("http://{b}/admin/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A client speaking h2c (prior knowledge) to drover.
fn h2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// `n` requests of `method` on `path`, at most `concurrency` at once, over
/// HTTP/1.1 connections to drover; returns every status and the backend's
/// `version` field seen.
async fn run_load(
    d: &Drover,
    method: reqwest::Method,
    path: &str,
    n: usize,
    concurrency: usize,
) -> Vec<(u16, String)> {
    let c = client();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency));
    let futs = (0..n).map(|_| {
        let (c, sem, url, m) = (c.clone(), sem.clone(), d.url(path), method.clone());
        async move {
            let _p = sem.acquire().await.unwrap();
            match c.request(m, url).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    (status, body["version"].as_str().unwrap_or("").to_string())
                }
                Err(e) => (0, e.to_string()),
            }
        }
    });
    join_all(futs).await
}

/// drover's worker threads in the tests that count connections: each worker
/// keeps its own HTTP/2 connections (src/proxy/upstream_h2.rs).
const WORKERS: u64 = 2;

/// 1000 requests at 100 streams per connection: ceil(n_w / 100) connections
/// per worker for the n_w requests it serves, so at most 10 + (workers - 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_requests_share_at_most_ten_h2c_connections_per_worker() {
    let b = Backend::start("h2c-many");
    let d = Drover::start_with(
        &one_pool(
            &[b.addr],
            "protocol = \"h2c\"\nmax_streams_per_connection = 100",
        ),
        &["--threads", "2"],
    );
    let before = stats(b.addr).await["connections"].as_u64().unwrap();
    let t0 = Instant::now();
    let results = run_load(&d, reqwest::Method::GET, "/delay/400", 1000, 1000).await;
    let bad: Vec<_> = results
        .iter()
        .filter(|(s, v)| *s != 200 || v != "HTTP/2.0")
        .collect();
    assert!(
        bad.is_empty(),
        "{} of 1000 failed or not over HTTP/2, e.g. {:?}",
        bad.len(),
        bad.first()
    );
    let s = stats(b.addr).await;
    // Connections opened for the load: this stats read and the one before are not.
    let opened = s["connections"].as_u64().unwrap() - before - 1;
    assert!(
        (1..=10 + WORKERS - 1).contains(&opened),
        "1000 requests took {opened} connections (max 10 at 100 streams each, plus one per other worker); {s}"
    );
    assert_eq!(s["requests"], 1000);
    eprintln!(
        "1000 requests over {opened} h2c connections in {:?}",
        t0.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn goaway_from_the_backend_loses_no_request() {
    // Every backend connection is shut down (GOAWAY) after 25 requests; no
    // retries, so a request refused by GOAWAY must go to a fresh connection.
    let b = backend_env("h2c-goaway", &[("DROVER_BACKEND_GOAWAY_AFTER", "25")]);
    let d = Drover::start(&one_pool(
        &[b.addr],
        "protocol = \"h2c\"\nmax_streams_per_connection = 40\nretries = 0",
    ));
    let mut results = run_load(&d, reqwest::Method::GET, "/delay/20", 600, 80).await;
    // Not idempotent: never retried, but a refused stream was not processed.
    results.extend(run_load(&d, reqwest::Method::POST, "/delay/20", 400, 80).await);
    let bad: Vec<_> = results.iter().filter(|(s, _)| *s != 200).collect();
    if !bad.is_empty() {
        for l in d
            .proc
            .stderr
            .all()
            .iter()
            .filter(|l| !l.contains("INFO"))
            .take(30)
        {
            eprintln!("{l}");
        }
    }
    assert!(
        bad.is_empty(),
        "{} of 1000 lost across GOAWAYs, e.g. {:?}",
        bad.len(),
        bad.first()
    );
    let s = stats(b.addr).await;
    assert_eq!(s["requests"], 1000, "each request processed once: {s}");
    // Without GOAWAYs, 80 at a time fit on 2 connections; each connection here
    // takes its 25 requests and those already on their way when it said GOAWAY.
    assert!(
        s["connections"].as_u64().unwrap() >= 10,
        "the backend rotated its connections: {s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_goaway_mid_load_loses_no_request() {
    let b = Backend::start("h2c-admin-goaway");
    let d = Drover::start(&one_pool(&[b.addr], "protocol = \"h2c\"\nretries = 0"));
    let load = run_load(&d, reqwest::Method::POST, "/delay/300", 300, 100);
    let goaways = async {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let r = client()
                .post(format!("http://{}/admin/goaway", b.addr))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    let (results, ()) = tokio::join!(load, goaways);
    let bad: Vec<_> = results.iter().filter(|(s, _)| *s != 200).collect();
    assert!(bad.is_empty(), "{} lost, e.g. {:?}", bad.len(), bad.first());
    assert_eq!(stats(b.addr).await["requests"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_h2_member_closes_its_connection_once_its_streams_end() {
    let b = Backend::start("h2c-drain");
    let d = Drover::start_with(
        &one_pool(&[b.addr], "protocol = \"h2c\""),
        &["--threads", "2"],
    );
    // Warm a connection, then keep one slow stream on it.
    assert_eq!(
        client().get(d.url("/warm")).send().await.unwrap().status(),
        200
    );
    let slow = tokio::spawn({
        let url = d.url("/delay/1500");
        async move { client().get(url).send().await.unwrap().status() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = client()
        .post(d.admin_url(&format!("/api/v1/pools/app/backends/{}/drain", b.addr)))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // Still open: its stream is in flight (this stats read is another one;
    // the warm-up's connection, on the other worker if it went there, closes).
    let open = stats(b.addr).await["open_connections"].as_u64().unwrap();
    assert!((2..=1 + WORKERS).contains(&open), "{open} open");
    assert_eq!(slow.await.unwrap(), 200, "the stream in flight finished");
    // Without the drain it would idle for upstream_idle_timeout (50 s).
    wait_until("drover's connection closed", 10, async || {
        stats(b.addr).await["open_connections"] == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_per_backend_counts_requests_in_flight_on_h2() {
    let b = Backend::start("h2c-limit");
    let d = Drover::start_with(
        &one_pool(
            &[b.addr],
            "protocol = \"h2c\"\nmax_connections_per_backend = 5\nqueue_timeout = \"20s\"",
        ),
        &["--threads", "2"],
    );
    let load = run_load(&d, reqwest::Method::GET, "/delay/200", 40, 40);
    let watch = async {
        let mut most = 0;
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let p = pool_json(&d, "app").await;
            most = most.max(p["backends"][0]["inflight"].as_u64().unwrap());
        }
        most
    };
    let (results, most) = tokio::join!(load, watch);
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    assert_eq!(
        most, 5,
        "in flight at the member, over one multiplexed connection"
    );
    let s = stats(b.addr).await;
    let conns = s["connections"].as_u64().unwrap();
    assert!(
        (2..=1 + WORKERS).contains(&conns),
        "one h2c connection per worker (and this stats read): {s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_health_checks_go_over_h2c() {
    let b = Backend::start("h2c-health");
    let d = Drover::start(&one_pool(
        &[b.addr],
        "protocol = \"h2c\"\n[pools.app.health]\npath = \"/health\"\ninterval = \"200ms\"\nrise = 1\nfall = 1",
    ));
    wait_until("healthy", 10, async || healthy_count(&d, "app").await == 1).await;
    client()
        .post(format!("http://{}/admin/fail", b.addr))
        .send()
        .await
        .unwrap();
    wait_until("unhealthy", 10, async || {
        healthy_count(&d, "app").await == 0
    })
    .await;
    let p = pool_json(&d, "app").await;
    let reason = p["backends"][0]["reason"].to_string();
    assert!(reason.contains("503"), "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_pool_starts_from_zero_for_a_held_request() {
    let config = common::managed::marked_pool(
        "h2c-cold",
        r#"protocol = "h2c""#,
        "",
        r#"[pools.app.autoscale]
min = 0
max = 1
interval = "300ms"
target_inflight = 5
hold_timeout = "20s""#,
    );
    let d = Drover::start(&config);
    let r = h2_client().get(d.url("/cold")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-drover-cold-start"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["version"], "HTTP/2.0", "{body}");
}

/// A gRPC-shaped request (the backend echoes it; drover only sees the headers).
fn grpc_call(c: &reqwest::Client, url: String) -> reqwest::RequestBuilder {
    c.post(url)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(vec![0u8, 0, 0, 0, 0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drovers_own_failures_reach_grpc_clients_as_grpc_statuses() {
    let b = Backend::start("grpc-errors");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let config = format!(
        r#"
{HEADER}[[routes]]
path_prefix = "/live"
strip_prefix = true
pool = "live"
[[routes]]
path_prefix = "/dead"
pool = "dead"
[pools.live]
protocol = "h2c"
backends = ["{}"]
request_timeout = "10s"
[pools.dead]
protocol = "h2c"
backends = ["{dead_addr}"]
retries = 0
"#,
        b.addr
    );
    let d = Drover::start(&config);
    let c = h2_client();

    // grpc-timeout shorter than request_timeout: DEADLINE_EXCEEDED in time.
    let t0 = Instant::now();
    let r = grpc_call(&c, d.url("/live/delay/5000"))
        .header("grpc-timeout", "300m")
        .send()
        .await
        .unwrap();
    let waited = t0.elapsed();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/grpc");
    assert_eq!(r.headers()["grpc-status"], "4", "{:?}", r.headers());
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    let msg = r.headers()["grpc-message"].to_str().unwrap().to_string();
    assert!(msg.contains("did not answer"), "{msg}");
    assert!(r.bytes().await.unwrap().is_empty(), "trailers-only");

    // A backend that refuses: UNAVAILABLE.
    let r = grpc_call(&c, d.url("/dead/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["grpc-status"], "14", "{:?}", r.headers());

    // No route: UNIMPLEMENTED (the catch-all is missing on purpose).
    let r = grpc_call(&c, d.url("/nowhere/Svc/M")).send().await.unwrap();
    assert_eq!(r.headers()["grpc-status"], "12", "{:?}", r.headers());

    // Not gRPC: the plain-text errors stay.
    let r = c.get(d.url("/dead/x")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.headers().get("grpc-status").is_none());

    // A gRPC request that succeeds passes through untouched, over HTTP/2.
    let r = grpc_call(&c, d.url("/live/echo")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["version"], "HTTP/2.0");
    assert_eq!(body["headers"]["te"], "trailers");
    assert_eq!(body["body_bytes"], 5);
}

/// An h2c backend that answers every request 503 (the `h2` crate's server);
/// its address and how many requests it answered.
async fn failing_h2c() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(sock).await else {
                    return;
                };
                while let Some(Ok((_req, mut respond))) = conn.accept().await {
                    count.fetch_add(1, Ordering::Relaxed);
                    let resp = http::Response::builder().status(503).body(()).unwrap();
                    let _ = respond.send_response(resp, true);
                }
            });
        }
    });
    (addr, seen)
}

/// A 503 from an h2c member is retried on the other member with the same
/// request head (the h2 attempt gives back the copy it keeps for a resend,
/// so the retry has it though nothing else kept one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_from_an_h2c_member_is_retried_on_the_other_with_the_same_head() {
    let (bad, seen) = failing_h2c().await;
    let good = Backend::start("h2c-good");
    let d = Drover::start(&one_pool(
        &[bad, good.addr],
        "protocol = \"h2c\"\nbalance = \"round_robin\"\nretries = 1",
    ));
    let c = client();
    for i in 0..20 {
        let r = c
            .get(d.url(&format!("/echo/{i}?q=1")))
            .header("x-test", format!("v{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "request {i}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["name"], "h2c-good", "{body}");
        assert_eq!(body["path"], format!("/echo/{i}"), "{body}");
        assert_eq!(body["headers"]["x-test"], format!("v{i}"), "{body}");
    }
    let failed = seen.load(std::sync::atomic::Ordering::Relaxed);
    // Passive health may take the failing member out after a few 503s.
    assert!(
        failed >= 1,
        "the failing member took none of the first tries"
    );
}

/// An h2c member that answers `content-length: 10`, sends 4 bytes, then resets
/// the stream with NO_ERROR: the client's response fails (the connection is
/// cut), never a shorter body passed on as complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_cut_by_a_no_error_reset_fails_at_the_client() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(sock).await else {
                    return;
                };
                while let Some(Ok((_req, mut respond))) = conn.accept().await {
                    tokio::spawn(async move {
                        let resp = http::Response::builder()
                            .header("content-length", "10")
                            .body(())
                            .unwrap();
                        let mut tx = respond.send_response(resp, false).unwrap();
                        tx.send_data(bytes::Bytes::from_static(b"half"), false)
                            .unwrap();
                        // Let the data go out first (a reset drops queued frames).
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        respond.send_reset(h2::Reason::NO_ERROR);
                    });
                }
            });
        }
    });
    let d = Drover::start(&one_pool(&[addr], "protocol = \"h2c\"\nretries = 0"));
    for c in [client(), h2_client()] {
        let r = c.get(d.url("/cut")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body = r.bytes().await;
        assert!(body.is_err(), "a cut response read as complete: {body:?}");
    }
}
