//! The native HTTP/1 codec (`proxy::h1`) under hostile bytes: the head
//! parser, the response head writer and a whole client connection.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::proxy::body::ProxyBody;
use crate::proxy::conn_activity::ConnActivity;
use crate::proxy::h1::conn::{self, Limits};
use crate::proxy::h1::parse::{self, Head};
use crate::proxy::h1::write::{self, Framing};

/// Feeds `bytes` to the request head parser (at two size limits) and, split
/// at its first byte, to the response head writer. Invariants: a head the
/// native path takes is complete within the bytes and the limit, every
/// shorter prefix of it is still partial, and it carries none of the fields
/// that must go to hyper; a written response head parses back with
/// `httparse` and says what its framing is.
pub fn h1_head(bytes: &[u8]) {
    for max in [64, 65536] {
        request_head(bytes, max);
    }
    let Some((&selector, rest)) = bytes.split_first() else {
        return;
    };
    response_head(selector, rest);
}

fn request_head(bytes: &[u8], max: usize) {
    let Head::Ready(p) = parse::request(bytes, max) else {
        return;
    };
    let n = p.head_len;
    assert!(n <= bytes.len() && n <= max, "head of {n} bytes");
    if let Some(shorter) = bytes.get(..n - 1) {
        assert!(
            matches!(parse::request(shorter, max), Head::Partial),
            "a prefix of a complete head is complete"
        );
    }
    for name in [TRANSFER_ENCODING, EXPECT, UPGRADE] {
        assert!(!p.headers.contains_key(&name), "{name} is hyper's");
    }
    assert!(p.headers.get_all(CONTENT_LENGTH).iter().count() <= 1);
    assert!(p.uri.path().starts_with('/'));
}

fn response_head(selector: u8, rest: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in rest.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    let status = StatusCode::from_u16(100 + u16::from(selector) * 2).unwrap_or(StatusCode::OK);
    let exact = (selector & 1 == 1).then_some(rest.len() as u64);
    let mut out = bytes::BytesMut::new();
    let framing = write::head(
        &mut out,
        status,
        None,
        &mut headers,
        selector & 2 == 2,
        exact,
        selector & 4 == 4,
    );
    let mut fields = vec![httparse::EMPTY_HEADER; headers.len() + 4];
    let mut resp = httparse::Response::new(&mut fields);
    let parsed = resp.parse(&out);
    assert!(
        matches!(parsed, Ok(httparse::Status::Complete(n)) if n == out.len()),
        "the written head does not parse back: {parsed:?} {:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(resp.code, Some(status.as_u16()));
    let has = |name: &str| {
        resp.headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case(name))
    };
    match framing {
        Framing::Chunked => assert!(has("transfer-encoding") && !has("content-length")),
        Framing::Length(_) => assert!(has("content-length") && !has("transfer-encoding")),
        Framing::None => {}
    }
}

/// Plays `bytes` as everything a client sends on one connection, to the
/// native codec in front of a handler that answers each request with its
/// path. Invariants: no panic, the connection ends (closed or handed to
/// hyper), and what was written parses as whole responses, at most one per
/// request parsed.
pub fn h1_connection(bytes: &[u8]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(connection(bytes));
}

async fn connection(bytes: &[u8]) {
    let (server, mut client) = tokio::io::duplex(1 << 20);
    let limits = Limits {
        max_head: 8192,
        idle: Duration::from_secs(60),
        head: Duration::from_secs(10),
    };
    let activity = Arc::new(ConnActivity::new(Instant::now()));
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    // Whether each request parsed was a HEAD (its response has no body).
    let mut requests: Vec<bool> = Vec::new();
    let act = activity.clone();
    let serving = conn::serve(server, limits, activity, shutdown, |req| {
        requests.push(req.method() == http::Method::HEAD);
        act.begin();
        let path = req.uri().path().to_string();
        let len = http_body::Body::size_hint(req.body()).lower();
        let mut resp = Response::new(ProxyBody::full(format!("{path} {len}"), None));
        resp.body_mut().on_end(act.clone());
        std::future::ready(Ok::<_, Infallible>(resp))
    });
    client.write_all(bytes).await.expect("write");
    client.shutdown().await.expect("shutdown");
    let ended = tokio::time::timeout(Duration::from_secs(120), serving)
        .await
        .expect("the connection ends");
    // Handed to hyper: the rest of the bytes were hyper's to answer.
    drop(ended);
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.expect("read");
    let mut at = 0;
    let mut responses = 0;
    while at < out.len() {
        let mut fields = [httparse::EMPTY_HEADER; 16];
        let mut r = httparse::Response::new(&mut fields);
        let Ok(httparse::Status::Complete(n)) = r.parse(&out[at..]) else {
            panic!("not a response: {:?}", String::from_utf8_lossy(&out[at..]));
        };
        let len = r
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| parse::content_length(h.value))
            .expect("a content-length");
        // After HEAD: the length of the body not sent.
        let head = requests.get(responses).copied().unwrap_or(false);
        at += n + if head { 0 } else { len as usize };
        responses += 1;
    }
    assert_eq!(at, out.len(), "a response is cut short");
    assert!(
        responses <= requests.len(),
        "{responses} responses to {} requests",
        requests.len()
    );
}
