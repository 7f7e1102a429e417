//! End to end: what a client does is never a backend's failure (issue 12,
//! finding 2), and requests held for a cold start count against `max_queue`
//! (finding 4). Real drover and backend processes, raw client sockets.

mod common;
mod health_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{client, one_pool, pool_json, wait_until, Backend, Drover};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `one_pool` with passive ejection after 2 consecutive failures, retries on,
/// the access log on (JSON on stdout), and these extra `[server]` keys.
fn config(backends: &[SocketAddr], server_extra: &str, pool_extra: &str) -> String {
    let pool = format!(
        "retries = 2\n{pool_extra}\n[pools.app.passive]\nconsecutive_failures = 2\neject_for = \"30s\"\n"
    );
    one_pool(backends, &pool)
        .replace("access = false", "access = true")
        .replace("[server]\n", &format!("[server]\n{server_extra}\n"))
}

/// Access-log records (JSON lines on stdout) with this status.
fn logged(d: &Drover, status: u64) -> Vec<serde_json::Value> {
    d.proc
        .stdout
        .all()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["status"] == status && v.get("request_id").is_some())
        .collect()
}

/// A sample of `drover_proxy_errors_total` for this pool and cause.
async fn proxy_errors(d: &Drover, pool: &str, cause: &str) -> f64 {
    let series = format!("drover_proxy_errors_total{{pool=\"{pool}\",cause=\"{cause}\"}} ");
    health_support::metric(d, &series).await
}

/// Every member healthy and not blamed for anything; the pool retried nothing.
async fn nothing_blamed(d: &Drover) {
    let p = pool_json(d, "app").await;
    for m in p["backends"].as_array().unwrap() {
        assert_eq!(m["state"], "healthy", "{p:#}");
        assert_eq!(m["failures"], 0, "{p:#}");
        assert_eq!(m["consecutive_failures"], 0, "{p:#}");
        assert_eq!(m["ejections"], 0, "{p:#}");
        assert_eq!(m["inflight"], 0, "{p:#}");
    }
    assert_eq!(p["retries"], 0, "{p:#}");
}

/// A client connection to `proxy` that has sent `bytes`.
async fn send_raw(proxy: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(bytes).await.unwrap();
    s
}

/// Sends a request head announcing `len` body bytes and `sent` of them.
async fn start_upload(proxy: SocketAddr, len: usize, sent: usize) -> TcpStream {
    let head = format!("POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: {len}\r\n\r\n");
    let mut s = send_raw(proxy, head.as_bytes()).await;
    s.write_all(&vec![b'x'; sent]).await.unwrap();
    s
}

/// Everything drover sends back until it closes (at most 20 s).
async fn answer(mut s: TcpStream) -> String {
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut resp))
        .await
        .expect("drover answers")
        .ok();
    String::from_utf8_lossy(&resp).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_uploads_are_the_clients_and_never_eject_a_healthy_member() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let d = Drover::start(&config(&[a.addr, b.addr], "", ""));
    // Six aborted uploads: three per member with round robin, more than
    // consecutive_failures = 2 on each.
    for _ in 0..6 {
        let s = start_upload(d.proxy, 1_000_000, 16 * 1024).await;
        // Let drover start forwarding it, then go away mid-body.
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(s);
    }
    wait_until("six client errors counted", 20, async || {
        proxy_errors(&d, "app", "client").await == 6.0
    })
    .await;
    nothing_blamed(&d).await;
    for cause in ["connect", "upstream", "timeout"] {
        assert_eq!(proxy_errors(&d, "app", cause).await, 0.0, "{cause}");
    }
    // Logged with nginx's 499 and the cause.
    let mut recs = Vec::new();
    wait_until("six 499 lines in the access log", 10, async || {
        recs = logged(&d, 499);
        recs.len() == 6
    })
    .await;
    for r in &recs {
        assert_eq!(r["error"], "client", "{r}");
        assert_eq!(r["method"], "POST", "{r}");
        assert_eq!(r["retries"], 0, "{r}");
    }
    // Both members still serve.
    for _ in 0..4 {
        let r = client().get(d.url("/ok")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_while_waiting_for_the_answer_is_logged_499_and_not_blamed() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let d = Drover::start(&config(&[a.addr, b.addr], "", ""));
    for _ in 0..3 {
        let s = send_raw(d.proxy, b"GET /delay/2000 HTTP/1.1\r\nHost: app\r\n\r\n").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(s);
    }
    wait_until("three 499 lines in the access log", 20, async || {
        logged(&d, 499).len() == 3
    })
    .await;
    assert!(logged(&d, 499).iter().all(|r| r["error"] == "client"));
    // The backends finish their delays; nothing is blamed, no slot is left taken.
    health_support::wait_no_inflight(&d).await;
    nothing_blamed(&d).await;
    assert_eq!(proxy_errors(&d, "app", "client").await, 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_gets_408_after_body_read_timeout_and_the_backend_is_not_blamed() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    // request_timeout is shorter than the stall: it must not run during the upload.
    let d = Drover::start(&config(
        &[a.addr, b.addr],
        "body_read_timeout = \"2s\"",
        "request_timeout = \"1s\"",
    ));
    for _ in 0..3 {
        let t0 = Instant::now();
        let text = answer(start_upload(d.proxy, 100_000, 1000).await).await;
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("x-drover-error: client"), "{text}");
        assert!(text.contains("body_read_timeout"), "{text}");
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(15),
            "{took:?}"
        );
    }
    nothing_blamed(&d).await;
    assert_eq!(proxy_errors(&d, "app", "client").await, 3.0);
    assert_eq!(proxy_errors(&d, "app", "timeout").await, 0.0);
    wait_until("three 408 lines in the access log", 10, async || {
        logged(&d, 408).len() == 3
    })
    .await;
    assert!(logged(&d, 408).iter().all(|r| r["error"] == "client"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_body_gets_400_and_the_backend_is_not_blamed() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let d = Drover::start(&config(&[a.addr, b.addr], "", ""));
    for _ in 0..3 {
        let bad = b"POST /upload HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\nzz\r\n";
        let text = answer(send_raw(d.proxy, bad).await).await;
        assert!(text.starts_with("HTTP/1.1 400"), "{text}");
        assert!(text.contains("x-drover-error: client"), "{text}");
    }
    nothing_blamed(&d).await;
    assert_eq!(proxy_errors(&d, "app", "client").await, 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_starts_when_the_body_has_been_sent() {
    let a = Backend::start("a");
    let d = Drover::start(&config(&[a.addr], "", "request_timeout = \"1s\""));
    // A slow but steady upload: 3 s in all, a chunk every 150 ms.
    let chunks = 20usize;
    let stream = futures_util::stream::unfold(0usize, move |i| async move {
        if i == chunks {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        Some((Ok::<_, std::io::Error>(vec![b'u'; 1024]), i + 1))
    });
    let t0 = Instant::now();
    let r = client()
        .post(d.url("/upload"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert!(t0.elapsed() > Duration::from_secs(2));
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["body_bytes"], chunks * 1024);
    // A backend slower than request_timeout once the body is sent still times out.
    let r = client().get(d.url("/delay/3000")).send().await.unwrap();
    assert_eq!(r.status(), 504);
    assert_eq!(r.headers()["x-drover-error"], "timeout");
    // So does one that takes none of the body for request_timeout while the
    // client has more (`/delay` sleeps before reading; 32 MiB outgrow the socket buffers).
    let t0 = Instant::now();
    let r = client()
        .post(d.url("/delay/15000"))
        .body(vec![b'b'; 32 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert_eq!(r.headers()["x-drover-error"], "timeout");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("took none of the request body"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_held_for_a_cold_start_beyond_max_queue_get_503_at_once() {
    // An instance that never becomes healthy (nothing listens on its port):
    // every request is held for the cold start, up to start_timeout.
    let cfg = one_pool(
        &[],
        r#"max_queue = 2
[pools.app.health]
path = "/health"
interval = "200ms"
[pools.app.instances]
provider = "process"
command = ["sh", "-c", "exec sleep 15 # {port}"]
start_timeout = "10s"
drain_timeout = "1s"
"#,
    );
    let mut d = Drover::start(&cfg);
    let url = d.url("/held");
    let held: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { client().get(url).send().await.map(|r| r.status()) })
        })
        .collect();
    wait_until("two requests held in the queue", 10, async || {
        pool_json(&d, "app").await["queued"] == 2
    })
    .await;
    let t0 = Instant::now();
    let r = client().get(d.url("/third")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["x-drover-error"], "limit");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(r.text().await.unwrap().contains("max_queue"));
    assert_eq!(proxy_errors(&d, "app", "limit").await, 1.0);
    // The held ones end with the cold start's own cause when start_timeout passes.
    for h in held {
        let status = h.await.unwrap().unwrap();
        assert_eq!(status, 503);
    }
    assert_eq!(proxy_errors(&d, "app", "cold_start").await, 2.0);
    assert_eq!(pool_json(&d, "app").await["queued"], 0);
    d.proc.signal("TERM");
    let _ = d.proc.wait_exit(Duration::from_secs(10));
}
