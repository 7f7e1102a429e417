//! End to end: routes, and the responses drover makes itself.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{client, one_pool, Backend, Drover, HEADER};

fn routed(a: &Backend, b: &Backend, c: &Backend) -> String {
    format!(
        r#"
{HEADER}[[routes]]
host = "api.example.com"
path_prefix = "/api"
pool = "api"
strip_prefix = true
[[routes]]
host = "*.example.com"
pool = "web"
[[routes]]
path_prefix = "/static"
pool = "static"
[pools.api]
backends = ["{}"]
[pools.web]
backends = ["{}"]
[pools.static]
backends = ["{}"]
"#,
        a.addr, b.addr, c.addr
    )
}

async fn get(
    d: &Drover,
    host: &str,
    path: &str,
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let r = client()
        .get(d.url(path))
        .header("host", host)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        headers,
    )
}

#[tokio::test]
async fn routes_by_exact_and_wildcard_host_and_path_prefix_first_match_wins() {
    let (a, b, c) = (
        Backend::start("api"),
        Backend::start("web"),
        Backend::start("static"),
    );
    let d = Drover::start(&routed(&a, &b, &c));
    let (s, v, _) = get(&d, "api.example.com", "/api/users?id=7").await;
    assert_eq!((s, v["name"].as_str()), (200, Some("api")));
    assert_eq!(v["path"], "/users", "strip_prefix");
    assert_eq!(v["query"], "id=7");
    let (_, v, _) = get(&d, "API.Example.com:8080", "/api").await;
    assert_eq!(
        (v["name"].as_str(), v["path"].as_str()),
        (Some("api"), Some("/"))
    );
    // Same host, other path: falls to the wildcard route, path untouched.
    let (_, v, _) = get(&d, "api.example.com", "/apix").await;
    assert_eq!(
        (v["name"].as_str(), v["path"].as_str()),
        (Some("web"), Some("/apix"))
    );
    let (_, v, _) = get(&d, "shop.example.com", "/static/x").await;
    assert_eq!(v["name"], "web", "first match wins");
    let (_, v, _) = get(&d, "other.test", "/static/app.js").await;
    assert_eq!(
        (v["name"].as_str(), v["path"].as_str()),
        (Some("static"), Some("/static/app.js"))
    );
}

#[tokio::test]
async fn no_matching_route_is_404_with_reason_and_request_id() {
    let (a, b, c) = (
        Backend::start("api"),
        Backend::start("web"),
        Backend::start("static"),
    );
    let d = Drover::start(&routed(&a, &b, &c));
    let (s, v, h) = get(&d, "nothing.test", "/x").await;
    assert_eq!(s, 404);
    let text = v.as_str().unwrap();
    let id = h["x-request-id"].to_str().unwrap();
    assert!(text.contains("no route") && text.contains(id), "{text}");
}

#[tokio::test]
async fn refused_backend_is_502_with_reason() {
    // A port with nothing listening: bind, note, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let d = Drover::start(&one_pool(&[dead], "retries = 0"));
    let t0 = Instant::now();
    let r = client().get(d.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    assert!(
        text.contains("connection refused") && text.contains(&id),
        "{text}"
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn connect_failure_is_retried_on_another_member_for_any_method() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let b = Backend::start("alive");
    let d = Drover::start(&one_pool(&[dead, b.addr], "retries = 1"));
    for _ in 0..6 {
        assert_eq!(common::post_ok(&d.url("/p")).await["body_bytes"], 7);
    }
}

#[tokio::test]
async fn slow_backend_is_504_after_request_timeout() {
    let b = Backend::start("slow");
    let d = Drover::start(&one_pool(&[b.addr], "request_timeout = \"300ms\""));
    let t0 = Instant::now();
    let r = client().get(d.url("/delay/3000")).send().await.unwrap();
    assert_eq!(r.status(), 504);
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(r.text().await.unwrap().contains("did not answer within"));
}

#[tokio::test]
async fn oversized_request_head_is_431_and_garbage_is_400() {
    let b = Backend::start("b");
    let d = Drover::start(&one_pool(&[b.addr], ""));
    let mut s = TcpStream::connect(d.proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let big = "a".repeat(100_000);
    let _ = s.write_all(format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(
        out.starts_with("HTTP/1.1 431"),
        "{}",
        &out[..out.len().min(200)]
    );

    let mut s = TcpStream::connect(d.proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"THIS IS NOT HTTP\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
}

#[tokio::test]
async fn a_client_too_slow_to_send_its_head_is_cut_off() {
    let b = Backend::start("b");
    let cfg = one_pool(&[b.addr], "").replace(
        "listen = [\"127.0.0.1:0\"]",
        "listen = [\"127.0.0.1:0\"]\nheader_read_timeout = \"500ms\"",
    );
    let d = Drover::start(&cfg);
    let mut s = TcpStream::connect(d.proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap_or(0);
    let got = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || got.starts_with("HTTP/1.1 408"), "{got}");
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(3), "cut off after {took:?}");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_idle_timeout() {
    let b = Backend::start("b");
    let cfg = one_pool(&[b.addr], "").replace(
        "listen = [\"127.0.0.1:0\"]",
        "listen = [\"127.0.0.1:0\"]\nidle_timeout = \"700ms\"\nheader_read_timeout = \"30s\"",
    );
    let d = Drover::start(&cfg);
    let mut s = TcpStream::connect(d.proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 65536];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let t0 = Instant::now();
    // Next read returns 0 (closed) once the idle timeout passes.
    let n = loop {
        match s.read(&mut buf) {
            Ok(n) if n > 0 => continue,
            Ok(n) => break n,
            Err(e) => panic!("connection not closed: {e}"),
        }
    };
    assert_eq!(n, 0);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "{took:?}"
    );
}
