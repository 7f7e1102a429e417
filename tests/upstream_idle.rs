//! End to end: idle keep-alive connections to a backend are closed after the
//! pool's `upstream_idle_timeout`, even when no request comes to reuse them
//! (issue 12: after a burst they stayed open until the backend closed them).

mod common;

use std::time::Duration;

use common::{client, one_pool, wait_until, Backend, Drover};

/// Established TCP connections whose remote port is `port` (drover's side of
/// its connections to a backend on 127.0.0.1), from /proc/net/tcp.
fn established_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let remote_port = f
                .get(2)
                .and_then(|r| r.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            remote_port == Some(port) && f.get(3) == Some(&"01")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_upstream_connections_are_closed_after_the_idle_timeout() {
    let b = Backend::start("a");
    let port = b.addr.port();
    let d = Drover::start(&one_pool(&[b.addr], "upstream_idle_timeout = \"2s\""));
    assert_eq!(established_to(port), 0);
    // A burst of concurrent requests, each holding its upstream connection
    // for 300 ms, so drover opens many.
    const BURST: usize = 40;
    let c = client();
    let reqs = (0..BURST).map(|_| {
        let c = c.clone();
        let url = d.url("/delay/300");
        tokio::spawn(async move { c.get(url).send().await.unwrap().status() })
    });
    for r in futures_util::future::join_all(reqs).await {
        assert_eq!(r.unwrap(), 200);
    }
    let after_burst = established_to(port);
    println!("[idle] {after_burst} connections to the backend after the burst");
    assert!(
        after_burst >= BURST / 4,
        "the burst left {after_burst} idle connections"
    );
    // Kept for reuse within the timeout, closed after it (+ the 1 s sweep).
    let start = std::time::Instant::now();
    wait_until("idle upstream connections closed", 15, async || {
        established_to(port) == 0
    })
    .await;
    let took = start.elapsed();
    println!("[idle] all closed {took:?} after the burst");
    assert!(
        took >= Duration::from_millis(1000),
        "closed too early: {took:?}"
    );
    // The pool still serves, over a new connection.
    let r = c.get(d.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
