//! End to end: drover's own HTTP/1.1 client (`upstream::native`, the default
//! codec) against real `drover backend` processes — which requests it
//! carries, keep-alive reuse, a restarted backend, streamed and large
//! bodies — and the kill switch (`server.http1_codec = "hyper"`).

mod common;

use std::time::Duration;

use common::*;

/// The value of an unlabelled counter in `/metrics`.
async fn counter(d: &Drover, name: &str) -> u64 {
    let text = get_text(&d.admin_url("/metrics")).await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

#[tokio::test]
async fn bodiless_requests_go_native_over_reused_connections_uploads_go_to_hyper() {
    let b = Backend::start("a");
    let d = Drover::start(&one_pool(&[b.addr], ""));
    let c = client();
    let connects = counter(&d, "drover_upstream_connects_total").await;
    for i in 0..50 {
        let r = c.get(d.url(&format!("/n/{i}?q=1"))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["path"], format!("/n/{i}"));
        assert_eq!(v["query"], "q=1");
    }
    assert!(counter(&d, "drover_upstream_native_exchanges_total").await >= 50);
    // One client connection, one request at a time: one upstream connection
    // per worker at most.
    let opened = counter(&d, "drover_upstream_connects_total").await - connects;
    assert!(
        opened <= 2,
        "{opened} upstream connections for 50 sequential requests"
    );
    // A request with a body takes hyper's client: the native count stays.
    let before = counter(&d, "drover_upstream_native_exchanges_total").await;
    let r = c
        .post(d.url("/echo"))
        .body(vec![b'x'; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["body_bytes"], 100_000, "{v}");
    assert_eq!(
        counter(&d, "drover_upstream_native_exchanges_total").await,
        before
    );
}

#[tokio::test]
async fn large_streamed_and_head_responses_arrive_whole() {
    let b = Backend::start("a");
    let d = Drover::start(&one_pool(&[b.addr], ""));
    let c = client();
    for n in [0usize, 1, 16_383, 65_536, 4 << 20] {
        let r = c.get(d.url(&format!("/bytes/{n}"))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().len(), n, "/bytes/{n}");
    }
    // Chunks written over time by the backend, passed on as they come.
    let r = c.get(d.url("/stream/5/20")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert_eq!(body.lines().count(), 5, "{body:?}");
    let r = c.head(d.url("/bytes/1000")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "1000");
    assert!(r.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_restarted_backend_costs_no_request() {
    let b = Backend::start("a");
    let addr = b.addr;
    let d = Drover::start(&one_pool(&[addr], ""));
    let c = client();
    for _ in 0..5 {
        assert_eq!(c.get(d.url("/")).send().await.unwrap().status(), 200);
    }
    // The pooled connections now lead to a dead process.
    drop(b);
    let listen = addr.to_string();
    let _b2 = Backend::start_on(&listen, "a2");
    for i in 0..20 {
        let r = c.get(d.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 200, "request {i} after the restart");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_kill_switch_puts_both_sides_on_hyper() {
    let b = Backend::start("a");
    let config =
        one_pool(&[b.addr], "").replace("[server]\n", "[server]\nhttp1_codec = \"hyper\"\n");
    let d = Drover::start(&config);
    let c = client();
    for _ in 0..10 {
        assert_eq!(c.get(d.url("/")).send().await.unwrap().status(), 200);
    }
    assert_eq!(
        counter(&d, "drover_upstream_native_exchanges_total").await,
        0
    );
    assert_eq!(counter(&d, "drover_http1_native_requests_total").await, 0);
}
