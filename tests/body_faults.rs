//! End to end: a backend response is judged when its body ends, not at its
//! head (issue 12, finding 2). A backend that breaks its body mid-way is
//! blamed (`upstream`, passive ejection); a client that goes away mid-body is
//! not the backend's failure. Real drover and backend processes, raw sockets.

mod common;
mod health_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{client, one_pool, wait_until, Backend, Drover};
use health_support::member;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Passive ejection after this many consecutive failures.
const N: usize = 2;

/// `one_pool` with passive ejection after [`N`] consecutive failures, retries
/// on and the access log on (JSON on stdout).
fn config(backends: &[SocketAddr]) -> String {
    let pool = format!(
        "retries = 2\n[pools.app.passive]\nconsecutive_failures = {N}\neject_for = \"30s\"\n"
    );
    one_pool(backends, &pool).replace("access = false", "access = true")
}

/// A sample of `drover_proxy_errors_total` for pool `app` and this cause.
async fn proxy_errors(d: &Drover, cause: &str) -> f64 {
    let series = format!("drover_proxy_errors_total{{pool=\"app\",cause=\"{cause}\"}} ");
    health_support::metric(d, &series).await
}

/// Access-log records (JSON lines on stdout) with this `error` field.
fn logged_with_error(d: &Drover, error: &str) -> Vec<serde_json::Value> {
    d.proc
        .stdout
        .all()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["error"] == error && v.get("request_id").is_some())
        .collect()
}

/// A backend that answers every request with a full head announcing 100
/// bytes, sends 50, then resets the connection; counts its resets.
struct BodyResetter {
    addr: SocketAddr,
    resets: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl BodyResetter {
    async fn start() -> BodyResetter {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let resets = Arc::new(AtomicU64::new(0));
        let r = resets.clone();
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let r = r.clone();
                tokio::spawn(async move {
                    let _ = reset_mid_body(s, &r).await;
                });
            }
        });
        BodyResetter { addr, resets, task }
    }
}

impl Drop for BodyResetter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn reset_mid_body(mut s: TcpStream, resets: &AtomicU64) -> std::io::Result<()> {
    let mut buf = Vec::new();
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        .await?;
    s.write_all(&[b'x'; 50]).await?;
    s.flush().await?;
    // Let the partial answer leave before the reset discards the send queue.
    tokio::time::sleep(Duration::from_millis(20)).await;
    s.set_zero_linger()?;
    resets.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_resetting_mid_body_n_times_is_ejected() {
    let a = Backend::start("a");
    let bad = BodyResetter::start().await;
    let d = Drover::start(&config(&[a.addr, bad.addr]));
    // Round robin over two members: the resetter gets every other request
    // until it is ejected. A GET whose head was forwarded cannot be replayed.
    let mut truncated = 0;
    for _ in 0..(4 * N) {
        let r = client().get(d.url("/x")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        if r.bytes().await.is_err() {
            truncated += 1;
        }
        if member(&d, bad.addr).await["state"] == "ejected" {
            break;
        }
    }
    let m = member(&d, bad.addr).await;
    assert_eq!(m["state"], "ejected", "{m:#}");
    assert_eq!(m["ejections"], 1, "{m:#}");
    assert_eq!(m["failures"], N as u64, "{m:#}");
    assert_eq!(truncated, N, "one truncated answer per failure");
    assert_eq!(bad.resets.load(Ordering::Relaxed), N as u64);
    assert_eq!(proxy_errors(&d, "upstream").await, N as f64);
    assert_eq!(proxy_errors(&d, "client").await, 0.0);
    // Logged with the status the client got (the head was sent) and the cause.
    let mut recs = Vec::new();
    wait_until("N upstream lines in the access log", 10, async || {
        recs = logged_with_error(&d, "upstream");
        recs.len() == N
    })
    .await;
    for r in &recs {
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["backend"], bad.addr.to_string(), "{r}");
    }
    // The healthy member was never blamed, and now takes everything.
    let ok = member(&d, a.addr).await;
    assert_eq!(ok["failures"], 0, "{ok:#}");
    for _ in 0..4 {
        let r = client().get(d.url("/x")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes()
            .await
            .expect("a whole body from the healthy member");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_body_n_times_never_ejects_a_healthy_member() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let d = Drover::start(&config(&[a.addr, b.addr]));
    // 2N aborted responses: N per member with round robin. Each streams 100
    // lines, one every 100 ms; the client reads the head and goes away.
    let aborts = 2 * N;
    for _ in 0..aborts {
        let mut s = TcpStream::connect(d.proxy).await.unwrap();
        s.write_all(b"GET /stream/100/100 HTTP/1.1\r\nHost: app\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
                .await
                .expect("the head arrives")
                .unwrap();
            assert!(n > 0, "drover closed before the head");
            got.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
        s.set_zero_linger().unwrap();
        drop(s);
    }
    wait_until("every abort counted as the client's", 20, async || {
        proxy_errors(&d, "client").await == aborts as f64
    })
    .await;
    // Logged with the status sent (nginx logs 499 only before the head).
    let mut recs = Vec::new();
    wait_until("every abort in the access log", 10, async || {
        recs = logged_with_error(&d, "client");
        recs.len() == aborts
    })
    .await;
    assert!(recs.iter().all(|r| r["status"] == 200), "{recs:#?}");
    assert_eq!(proxy_errors(&d, "upstream").await, 0.0);
    health_support::wait_no_inflight(&d).await;
    for addr in [a.addr, b.addr] {
        let m = member(&d, addr).await;
        assert_eq!(m["state"], "healthy", "{m:#}");
        assert_eq!(m["failures"], 0, "{m:#}");
        assert_eq!(m["consecutive_failures"], 0, "{m:#}");
        assert_eq!(m["ejections"], 0, "{m:#}");
    }
}
