//! End to end: the time to the response head is its own histogram
//! (`drover_upstream_response_seconds`), which an upgrade tunnel's lifetime
//! does not inflate; the request duration histogram still counts it.

mod common;
mod health_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{one_pool, Backend, Drover};
use health_support::metric;

#[tokio::test]
async fn a_long_tunnel_is_one_quick_response_head() {
    let b = Backend::start("b");
    let d = Drover::start(&one_pool(&[b.addr], ""));
    let mut s = TcpStream::connect(d.proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET /upgrade/echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("via: 1.1 drover\r\n"), "{head}");
    // Keep the tunnel open (and used) for 2 s.
    let opened = Instant::now();
    while opened.elapsed() < Duration::from_secs(2) {
        s.write_all(b"ping").unwrap();
        let n = s.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(s);
    let series = |name: &str| format!("{name}{{pool=\"app\"}} ");
    common::wait_until("the tunnel to be counted", 10, async || {
        metric(&d, &series("drover_request_duration_seconds_count")).await >= 1.0
    })
    .await;
    let heads = metric(&d, &series("drover_upstream_response_seconds_count")).await;
    let head_secs = metric(&d, &series("drover_upstream_response_seconds_sum")).await;
    let full_secs = metric(&d, &series("drover_request_duration_seconds_sum")).await;
    assert_eq!(heads, 1.0);
    assert!(head_secs < 1.0, "time to the 101: {head_secs}s");
    assert!(full_secs >= 2.0, "the tunnel's lifetime: {full_secs}s");
}
