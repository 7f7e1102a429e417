//! Issue 12, finding 1: a malformed `Host` must not take drover down, and a
//! panic while handling one request ends that request only (500 with the
//! request id, logged), never the worker, the admin API or the process.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;

/// Sends `head` (a full request head) on a new connection and returns what
/// drover answered until it closed the connection (or 10 s passed).
fn raw_exchange(addr: SocketAddr, head: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw HTTP/1.1 response, if it has a status line.
fn status_of(resp: &str) -> Option<u16> {
    resp.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// drover answers normally on a new connection, and its admin API too.
async fn still_serving(d: &mut Drover) {
    assert_eq!(d.proc.child.try_wait().unwrap(), None, "drover exited");
    for _ in 0..5 {
        let r = client().get(d.url("/after")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = client().get(d.admin_url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let pools = get_json(&d.admin_url("/api/v1/pools")).await;
    assert_eq!(pools[0]["name"], "app");
}

/// `curl --http2-prior-knowledge` (h2c) with these extra args; returns `(status, stdout)`.
fn curl_h2c(url: &str, args: &[&str]) -> (u16, String) {
    let mut all = vec![
        "--http2-prior-knowledge",
        "-m",
        "10",
        "-w",
        "\n%{http_code}",
    ];
    all.extend_from_slice(args);
    all.push(url);
    let out = curl(&all);
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[tokio::test]
async fn malformed_host_is_answered_over_http1_and_h2c_and_drover_keeps_serving() {
    let b = Backend::start("a");
    let mut d = Drover::start(&one_pool(&[b.addr], ""));
    for host in ["[", "[::1", "[::1:8080", "[é"] {
        let resp = raw_exchange(
            d.proxy,
            &format!("GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        // The route has no host pattern: the request is forwarded like any other
        // (a panic used to close the connection without an answer, or end the process).
        assert_eq!(status_of(&resp), Some(200), "Host: {host}: {resp:?}");
    }
    // h2c: a valid `:authority` with a malformed `host` field (curl maps Host
    // to `:authority`, which the h2 codec itself refuses when malformed).
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for host in ["[", "[::1"] {
        let r = h2.get(d.url("/x")).header("host", host).send().await;
        let r = r.unwrap_or_else(|e| panic!("h2c host: {host}: {e:?}"));
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.status(), 200, "h2c host: {host}");
    }
    let (code, _) = curl_h2c(&d.url("/x"), &["-H", "Host: ["]);
    assert_eq!(code, 0, "curl: the h2 codec refuses a malformed :authority");
    still_serving(&mut d).await;
}

#[tokio::test]
async fn a_request_that_panics_gets_500_with_its_id_and_drover_keeps_serving() {
    let b = Backend::start("a");
    let mut d = Drover::start_env(
        &one_pool(&[b.addr], ""),
        &[],
        &[("DROVER_TEST_PANIC_HEADER", "x-drover-test-panic")],
    );
    // Both places: while routing (synchronous) and while forwarding (a poll).
    for (n, place) in ["route", "forward"].into_iter().enumerate() {
        let id = format!("panic-{place}-{n}");
        let resp = raw_exchange(
            d.proxy,
            &format!(
                "GET /boom HTTP/1.1\r\nHost: x\r\nX-Request-Id: {id}\r\n\
                 x-drover-test-panic: {place}\r\n\r\n"
            ),
        );
        // HTTP/1: 500 and the connection closed (read_to_end returned without a timeout).
        assert_eq!(status_of(&resp), Some(500), "{place}: {resp:?}");
        let lower = resp.to_ascii_lowercase();
        assert!(lower.contains(&format!("x-request-id: {id}")), "{resp}");
        assert!(lower.contains("connection: close"), "{resp}");
        assert!(resp.contains(&format!("(request id {id})")), "{resp}");
        let line = d
            .proc
            .stderr
            .wait_for("the panic logged", Duration::from_secs(10), |l| {
                serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| {
                    v["message"] == "request handler panicked; answered 500"
                        && v["request_id"] == id
                })
            });
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(
            v["panic"].as_str().unwrap().contains(&format!(
                "test panic (DROVER_TEST_PANIC_HEADER) while {}",
                if place == "route" {
                    "routing"
                } else {
                    "forwarding"
                }
            )),
            "{line}"
        );
        assert!(v["location"].as_str().unwrap().contains(".rs:"), "{line}");
        still_serving(&mut d).await;
    }
    // h2c: the stream gets the 500, the connection and the process stay.
    let (code, body) = curl_h2c(
        &d.url("/boom"),
        &[
            "-H",
            "x-drover-test-panic: forward",
            "-H",
            "x-request-id: h2-panic",
        ],
    );
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("(request id h2-panic)"), "{body}");
    still_serving(&mut d).await;
    // Many in a row: nothing leaks that would stop the workers (open
    // connections, in-flight counts).
    for _ in 0..50 {
        let r = client()
            .get(d.url("/boom"))
            .header("x-drover-test-panic", "forward")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 500);
    }
    still_serving(&mut d).await;
    let pool = pool_json(&d, "app").await;
    assert_eq!(pool["backends"][0]["inflight"], 0, "{pool}");
}

#[tokio::test]
async fn the_test_panic_header_does_nothing_unless_drover_was_started_with_it() {
    let b = Backend::start("a");
    let d = Drover::start(&one_pool(&[b.addr], ""));
    for place in ["route", "forward"] {
        let r = client()
            .get(d.url("/x"))
            .header("x-drover-test-panic", place)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}
