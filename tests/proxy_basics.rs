//! End to end: the proxy in front of real `drover backend` processes.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{client, one_pool, Backend, Drover};
use sha2::{Digest, Sha256};

fn three() -> (Vec<Backend>, Drover) {
    let bs: Vec<Backend> = (1..=3).map(|i| Backend::start(&format!("b{i}"))).collect();
    let addrs: Vec<_> = bs.iter().map(|b| b.addr).collect();
    let d = Drover::start(&one_pool(&addrs, ""));
    (bs, d)
}

/// Sends raw bytes, returns everything read until the server closes or `timeout`.
fn raw(addr: std::net::SocketAddr, req: &[u8], timeout: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn round_robin_rotates_exactly_over_three_members() {
    let (_bs, d) = three();
    let c = client();
    let mut counts: HashMap<String, u32> = HashMap::new();
    for _ in 0..30 {
        let v: serde_json::Value = c
            .get(d.url("/anything"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        *counts
            .entry(v["name"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.values().all(|n| *n == 10), "{counts:?}");
}

#[tokio::test]
async fn passes_extension_method_raw_path_query_headers_and_body_byte_for_byte() {
    let (_bs, d) = three();
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let want = hex::encode(Sha256::digest(&body));
    let resp = client()
        .request(
            reqwest::Method::from_bytes(b"PURGE").unwrap(),
            d.url("/a%2Fb/c%20d?x=1&x=2&e=&z"),
        )
        .header("x-custom", "v1")
        .header("host", "app.example.com:8080")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["method"], "PURGE");
    assert_eq!(v["path"], "/a%2Fb/c%20d");
    assert_eq!(v["query"], "x=1&x=2&e=&z");
    assert_eq!(v["body_bytes"], 3_000_000);
    assert_eq!(v["body_sha256"], want);
    assert_eq!(v["headers"]["x-custom"], "v1");
    assert_eq!(v["headers"]["host"], "app.example.com:8080");
}

#[tokio::test]
async fn strips_hop_by_hop_headers_and_adds_forwarding_headers() {
    let (_bs, d) = three();
    let req = "GET /h HTTP/1.1\r\nHost: shop.test\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n\
               Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: h2c\r\n\
               X-Forwarded-For: 10.1.1.1\r\nVia: 1.0 edge\r\nX-Kept: yes\r\nConnection: close\r\n\r\n";
    let out = raw(d.proxy, req.as_bytes(), Duration::from_secs(5));
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_else(|_| {
        // chunked body: take the JSON object inside
        let start = body.find('{').unwrap();
        let end = body.rfind('}').unwrap();
        serde_json::from_str(&body[start..=end]).unwrap()
    });
    let h = &v["headers"];
    for gone in [
        "x-secret",
        "keep-alive",
        "proxy-connection",
        "upgrade",
        "connection",
    ] {
        assert!(h.get(gone).is_none(), "{gone} was forwarded: {h}");
    }
    assert_eq!(h["te"], "trailers");
    assert_eq!(h["x-kept"], "yes");
    assert_eq!(h["host"], "shop.test");
    assert_eq!(h["x-forwarded-for"], "10.1.1.1, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "shop.test");
    assert_eq!(h["via"], "1.0 edge, 1.1 drover");
    let id = h["x-request-id"].as_str().unwrap();
    assert!(!id.is_empty());
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("x-request-id: {id}")),
        "{head}"
    );
}

#[tokio::test]
async fn keeps_a_client_request_id_and_echoes_it() {
    let (_bs, d) = three();
    let r = client()
        .get(d.url("/"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-request-id"], "abc-123");
}

#[tokio::test]
async fn content_length_is_kept_and_chunked_stays_chunked() {
    let (_bs, d) = three();
    let cl = raw(
        d.proxy,
        b"POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        Duration::from_secs(5),
    );
    assert!(cl.contains("\"content-length\":\"5\""), "{cl}");
    assert!(!cl.contains("\"transfer-encoding\""), "{cl}");
    assert!(cl.contains("\"body_bytes\":5"), "{cl}");
    let ch = raw(
        d.proxy,
        b"POST /ch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(ch.contains("\"transfer-encoding\":\"chunked\""), "{ch}");
    assert!(!ch.contains("\"content-length\""), "{ch}");
    assert!(ch.contains("\"body_bytes\":11"), "{ch}");
}

#[tokio::test]
async fn expect_100_continue_gets_a_continue_then_the_response() {
    let (_bs, d) = three();
    let mut s = TcpStream::connect(d.proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    let first = String::from_utf8_lossy(&buf[..n]);
    assert!(first.starts_with("HTTP/1.1 100 Continue"), "{first}");
    s.write_all(b"data").unwrap();
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    assert!(
        rest.contains("200 OK") && rest.contains("\"body_bytes\":4"),
        "{rest}"
    );
}

#[tokio::test]
async fn serves_http_1_0_clients() {
    let (_bs, d) = three();
    let out = raw(
        d.proxy,
        b"GET /old HTTP/1.0\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(out.starts_with("HTTP/1.0 200"), "{out}");
    assert!(out.contains("\"path\":\"/old\""), "{out}");
}

#[tokio::test]
async fn accepts_h2c_with_prior_knowledge() {
    let (_bs, d) = three();
    let c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    let r = c.post(d.url("/h2?q=1")).body("abc").send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/h2");
    assert_eq!(v["query"], "q=1");
    assert_eq!(v["body_bytes"], 3);
    assert_eq!(v["headers"]["via"], "2 drover");
    assert!(v["headers"]["host"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
}

#[tokio::test]
async fn backend_statuses_cookies_encoding_and_redirects_pass_unchanged() {
    let (_bs, d) = three();
    let c = client();
    for code in [200u16, 204, 304, 404, 500, 503] {
        let r = c
            .get(d.url(&format!("/status/{code}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), code);
    }
    let r = c.get(d.url("/cookies")).send().await.unwrap();
    let cookies: Vec<_> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(cookies, vec!["a=1; Path=/", "b=2; Path=/"]);
    let r = c.get(d.url("/gzip")).send().await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let direct = client()
        .get(format!("http://{}/gzip", _bs[0].addr))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), direct);
    let r = c.get(d.url("/redirect")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/target");
}

#[tokio::test]
async fn streams_responses_as_they_come() {
    let (_bs, d) = three();
    let mut r = client().get(d.url("/stream/3/400")).send().await.unwrap();
    let t0 = std::time::Instant::now();
    let first = r.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("chunk 0"));
    assert!(
        t0.elapsed() < Duration::from_millis(350),
        "first chunk was held back"
    );
    let mut n = 1;
    while let Some(c) = r.chunk().await.unwrap() {
        n += String::from_utf8_lossy(&c).matches("chunk").count();
    }
    assert_eq!(n, 3);
}

#[tokio::test]
async fn websocket_is_tunnelled_both_ways() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (_bs, d) = three();
    let (mut ws, resp) = tokio_tungstenite::connect_async(format!("ws://{}/ws", d.proxy))
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    for i in 0..5 {
        ws.send(Message::Text(format!("hello {i}").into()))
            .await
            .unwrap();
        let m = ws.next().await.unwrap().unwrap();
        assert_eq!(m, Message::Text(format!("hello {i}").into()));
    }
    ws.send(Message::Binary(vec![0u8, 1, 2, 255].into()))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Binary(vec![0u8, 1, 2, 255].into())
    );
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn raw_upgrade_is_tunnelled() {
    let (_bs, d) = three();
    let mut s = TcpStream::connect(d.proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"GET /upgrade/echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"ping through the tunnel").unwrap();
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping through the tunnel");
}
