//! End-to-end tests of the built-in backend over real sockets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// The repeating content of `/bytes/N` (documented in `backend_app`).
const PATTERN: &[u8; 64] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-\n";

/// Starts a backend named `name` on an ephemeral loopback port.
async fn start(name: &str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(drover::backend_app::serve(listener, name.to_string()));
    addr
}

/// A client that never follows redirects.
fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get_json(url: String) -> Value {
    let resp = client().get(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn echo_reports_raw_path_query_method_headers_and_version() {
    let addr = start("b1").await;
    let resp = client()
        .post(format!("http://{addr}/a%2Fb?x=1&x=2&e="))
        .header("x-multi", "one")
        .header("x-multi", "two")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["x-backend-name"], "b1");
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(echo["name"], "b1");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/a%2Fb");
    assert_eq!(echo["query"], "x=1&x=2&e=");
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["headers"]["x-multi"], "one, two");
    assert_eq!(echo["headers"]["host"], addr.to_string());
    assert_eq!(echo["body_bytes"], 5);
    assert_eq!(echo["body_sha256"], hex::encode(Sha256::digest(b"hello")));
}

#[tokio::test]
async fn echo_without_query_or_body() {
    let addr = start("b1").await;
    let echo = get_json(format!("http://{addr}/plain")).await;
    assert_eq!(echo["query"], "");
    assert_eq!(echo["body_bytes"], 0);
    assert_eq!(echo["body_sha256"], hex::encode(Sha256::digest(b"")));
}

#[tokio::test]
async fn extension_methods_are_echoed() {
    let addr = start("b1").await;
    let purge = Method::from_bytes(b"PURGE").unwrap();
    let resp = client()
        .request(purge, format!("http://{addr}/cache/item"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(echo["method"], "PURGE");
    assert_eq!(echo["path"], "/cache/item");
}

#[tokio::test]
async fn streamed_upload_hash_matches_real_sha256() {
    let addr = start("b1").await;
    let chunks: Vec<Bytes> = (0..128u32)
        .map(|i| Bytes::from(vec![(i % 251) as u8; 64 * 1024]))
        .collect();
    let mut hasher = Sha256::new();
    chunks.iter().for_each(|c| hasher.update(c));
    let expected = hex::encode(hasher.finalize());
    let stream = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    let resp = client()
        .put(format!("http://{addr}/upload"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(echo["body_bytes"], 128 * 64 * 1024);
    assert_eq!(echo["body_sha256"], expected);
    assert_eq!(echo["headers"]["transfer-encoding"], "chunked");
}

#[tokio::test]
async fn speaks_h2c_with_prior_knowledge() {
    let addr = start("b1").await;
    let h2 = Client::builder().http2_prior_knowledge().build().unwrap();
    let resp = h2
        .get(format!("http://{addr}/h2?q=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.headers()["x-backend-name"], "b1");
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(echo["path"], "/h2");
    assert_eq!(echo["query"], "q=1");
}

#[tokio::test]
async fn health_fails_and_recovers_on_admin_calls() {
    let addr = start("b1").await;
    let c = client();
    let health = || c.get(format!("http://{addr}/health")).send();
    let resp = health().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-backend-name"], "b1");
    assert_eq!(resp.text().await.unwrap(), "ok");

    let fail = c.post(format!("http://{addr}/admin/fail")).send();
    assert_eq!(fail.await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        health().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    let recover = c.post(format!("http://{addr}/admin/recover")).send();
    assert_eq!(recover.await.unwrap().status(), StatusCode::OK);
    assert_eq!(health().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn admin_endpoints_check_the_method() {
    let addr = start("b1").await;
    let resp = client()
        .get(format!("http://{addr}/admin/fail"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "POST");
    let health = client().get(format!("http://{addr}/health")).send();
    assert_eq!(health.await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn delay_answers_after_the_given_milliseconds() {
    let addr = start("b1").await;
    let started = Instant::now();
    let echo = get_json(format!("http://{addr}/delay/300")).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(echo["path"], "/delay/300");
    let bad = client().get(format!("http://{addr}/delay/soon")).send();
    assert_eq!(bad.await.unwrap().status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn status_returns_the_requested_code() {
    let addr = start("b1").await;
    let c = client();
    for (code, body) in [
        (200, "200 OK\n"),
        (418, "418 I'm a teapot\n"),
        (503, "503 Service Unavailable\n"),
        (204, ""),
        (304, ""),
    ] {
        let resp = c
            .get(format!("http://{addr}/status/{code}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), code);
        assert_eq!(resp.headers()["x-backend-name"], "b1");
        assert_eq!(resp.text().await.unwrap(), body, "status {code}");
    }
    for bad in ["100", "101", "600", "x"] {
        let resp = c
            .get(format!("http://{addr}/status/{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "status {bad}");
    }
}

#[tokio::test]
async fn bytes_streams_exact_length_with_content_length() {
    let addr = start("b1").await;
    let n = 200_000usize;
    let resp = client()
        .get(format!("http://{addr}/bytes/{n}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-length"], n.to_string());
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), n);
    assert!(body.iter().enumerate().all(|(i, b)| *b == PATTERN[i % 64]));
}

#[tokio::test]
async fn bytes_chunked_has_no_content_length() {
    let addr = start("b1").await;
    let n = 200_001usize;
    let resp = client()
        .get(format!("http://{addr}/bytes/{n}?chunked=1"))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("content-length").is_none());
    assert_eq!(resp.headers()["transfer-encoding"], "chunked");
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), n);
    assert!(body.iter().enumerate().all(|(i, b)| *b == PATTERN[i % 64]));
}

#[tokio::test]
async fn cookies_sets_two_separate_headers() {
    let addr = start("b1").await;
    let resp = client()
        .get(format!("http://{addr}/cookies"))
        .send()
        .await
        .unwrap();
    let cookies: Vec<_> = resp.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2; Path=/"]);
}

#[tokio::test]
async fn gzip_serves_a_valid_gzip_stream() {
    let addr = start("b1").await;
    let resp = client()
        .get(format!("http://{addr}/gzip"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let body = resp.bytes().await.unwrap();
    let plain = b"hello drover\n";
    // Magic, deflate method, then the trailer: CRC-32 and size of the plain text.
    assert_eq!(&body[..3], &[0x1f, 0x8b, 0x08]);
    let trailer = &body[body.len() - 8..];
    assert_eq!(trailer[..4], crc32(plain).to_le_bytes());
    assert_eq!(trailer[4..], (plain.len() as u32).to_le_bytes());
}

/// Bitwise CRC-32 (IEEE), enough to check a gzip trailer.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test]
async fn redirect_is_a_302_to_target() {
    let addr = start("b1").await;
    let resp = client()
        .get(format!("http://{addr}/redirect"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(resp.headers()["location"], "/target");
}

#[tokio::test]
async fn websocket_echoes_text_and_binary() {
    let addr = start("b1").await;
    let (mut ws, resp) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-backend-name"], "b1");
    ws.send(Message::text("hi there")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hi there"));
    let binary = Message::binary(vec![0u8, 1, 2, 255]);
    ws.send(binary.clone()).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), binary);
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn ws_without_upgrade_is_426() {
    let addr = start("b1").await;
    let resp = client()
        .get(format!("http://{addr}/ws"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UPGRADE_REQUIRED);
}

#[tokio::test]
async fn upgrade_echo_switches_protocols_and_echoes_bytes() {
    let addr = start("b1").await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /upgrade/echo HTTP/1.1\r\nHost: {addr}\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: echo"),
        "{head}"
    );
    for payload in [&b"ping\n"[..], &[0u8, 255, 10, 13][..]] {
        tcp.write_all(payload).await.unwrap();
        let mut got = vec![0u8; payload.len()];
        tcp.read_exact(&mut got).await.unwrap();
        assert_eq!(got, payload);
    }
}

/// Reads a response head byte by byte, up to and including the blank line.
async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test]
async fn stats_counts_requests_except_health_and_admin() {
    let addr = start("b1").await;
    let c = client();
    for path in ["/a", "/b", "/status/404", "/health", "/health"] {
        c.get(format!("http://{addr}{path}")).send().await.unwrap();
    }
    c.post(format!("http://{addr}/admin/fail"))
        .send()
        .await
        .unwrap();
    let stats = get_json(format!("http://{addr}/admin/stats")).await;
    assert_eq!(stats["requests"], 3, "{stats}");
    // The client's connection(s) and the one reading the stats.
    assert!(stats["connections"].as_u64().unwrap() >= 1, "{stats}");
    assert!(stats["open_connections"].as_u64().unwrap() >= 1, "{stats}");
}

#[tokio::test]
async fn stream_sends_lines_over_time() {
    let addr = start("b1").await;
    let started = Instant::now();
    let resp = client()
        .get(format!("http://{addr}/stream/4/150"))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("content-length").is_none());
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let mut first_chunk_at = None;
    while let Some(chunk) = body.next().await {
        first_chunk_at.get_or_insert_with(|| started.elapsed());
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    assert_eq!(text, "chunk 0\nchunk 1\nchunk 2\nchunk 3\n");
    assert!(first_chunk_at.unwrap() < Duration::from_millis(300));
    assert!(started.elapsed() >= Duration::from_millis(450));
}

#[tokio::test]
async fn serves_many_concurrent_keep_alive_requests() {
    let addr = start("b1").await;
    let c = client();
    let requests = (0..64).map(|i| {
        let c = c.clone();
        async move {
            let url = format!("http://{addr}/n/{i}");
            let echo: Value = c.get(url).send().await.unwrap().json().await.unwrap();
            assert_eq!(echo["path"], format!("/n/{i}"));
        }
    });
    futures_util::future::join_all(requests).await;
}

#[tokio::test]
async fn broken_connection_does_not_stop_the_server() {
    let addr = start("b1").await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"NOT HTTP AT ALL\r\n\r\n").await.unwrap();
    let mut sink = Vec::new();
    let _ = tcp.read_to_end(&mut sink).await;
    drop(tcp);
    let half = TcpStream::connect(addr).await.unwrap();
    drop(half);
    let echo = get_json(format!("http://{addr}/still-up")).await;
    assert_eq!(echo["path"], "/still-up");
}
