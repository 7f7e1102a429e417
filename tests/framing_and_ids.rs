//! Issue 12, finding 8: response framing from a backend that sends both
//! `Content-Length` and `Transfer-Encoding`, and `X-Request-Id` handling
//! (client ids checked, generated ids unique across processes and restarts).

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use common::*;

/// A backend on a raw socket that answers every request with `response`
/// (then closes the connection). Serves until the test process ends.
fn raw_backend(response: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().map_while(Result::ok) {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(response.as_bytes());
        }
    });
    addr
}

#[tokio::test]
async fn content_length_is_dropped_when_the_backend_also_sends_transfer_encoding() {
    // Content-Length says 3, the chunked body is 11 bytes: the chunked framing
    // wins (RFC 9112 §6.3), and the client must not be told 3.
    let backend = raw_backend(
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\nb\r\nhello world\r\n0\r\n\r\n",
    );
    let d = Drover::start(&one_pool(&[backend], ""));
    for _ in 0..3 {
        let r = client().get(d.url("/x")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers().get("content-length").is_none(),
            "{:?}",
            r.headers()
        );
        assert_eq!(r.text().await.unwrap(), "hello world");
    }
    // h2c too (no Content-Length; the body is the chunked one).
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    let r = h2.get(d.url("/x")).send().await.unwrap();
    assert!(r.headers().get("content-length").is_none());
    assert_eq!(r.text().await.unwrap(), "hello world");
}

fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn client_request_ids_are_kept_only_when_well_formed() {
    let b = Backend::start("a");
    let d = Drover::start(&one_pool(&[b.addr], ""));
    let longest = "x".repeat(128);
    for ok in ["abc-123", "A.b_c:d-e", "7", longest.as_str()] {
        let r = client()
            .get(d.url("/echo"))
            .header("x-request-id", ok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-request-id"], ok);
        let echo: serde_json::Value = r.json().await.unwrap();
        assert_eq!(echo["headers"]["x-request-id"], ok, "kept upstream");
    }
    let too_long = "x".repeat(129);
    let bad: [&[u8]; 7] = [
        b"has space",
        b"a/b",
        b"<script>",
        b"a,b",
        b"caf\xc3\xa9",
        b"\"quoted\"",
        too_long.as_bytes(),
    ];
    for id in bad {
        let r = client()
            .get(d.url("/echo"))
            .header(
                "x-request-id",
                reqwest::header::HeaderValue::from_bytes(id).unwrap(),
            )
            .send()
            .await
            .unwrap();
        let got = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert!(
            is_generated(&got),
            "{:?} -> {got:?}",
            String::from_utf8_lossy(id)
        );
        let echo: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            echo["headers"]["x-request-id"],
            got.as_str(),
            "the same id upstream"
        );
    }
}

/// `n` ids drover generated (no client id sent).
async fn ids_from(d: &Drover, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = client().get(d.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        out.push(r.headers()["x-request-id"].to_str().unwrap().to_string());
    }
    out
}

#[tokio::test]
async fn generated_ids_are_unique_across_requests_processes_and_restarts() {
    let b = Backend::start("a");
    let cfg = one_pool(&[b.addr], "");
    // Two instances side by side, then the first one restarted.
    let first = Drover::start(&cfg);
    let second = Drover::start(&cfg);
    let mut runs = vec![ids_from(&first, 200).await, ids_from(&second, 200).await];
    drop(first);
    let restarted = Drover::start(&cfg);
    runs.push(ids_from(&restarted, 200).await);
    let mut all = HashSet::new();
    let mut prefixes: Vec<HashSet<String>> = Vec::new();
    for run in &runs {
        for id in run {
            assert!(is_generated(id), "{id:?}");
            assert!(all.insert(id.clone()), "duplicate id {id}");
        }
        // The random part (first 24 hex digits): one per worker thread.
        prefixes.push(run.iter().map(|id| id[..24].to_string()).collect());
    }
    assert_eq!(all.len(), 600);
    for (i, a) in prefixes.iter().enumerate() {
        for b in &prefixes[i + 1..] {
            assert!(a.is_disjoint(b), "two processes drew the same prefix");
        }
    }
}
