//! The HTTP/2 client (`upstream::h2_client`) under hostile bytes from a
//! backend: whatever frames an h2 backend sends back to one request.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::upstream::h2_client;

/// The most request body bytes a fuzz input asks to send (64 KiB).
const MAX_UPLOAD: usize = 64 * 1024;

/// Plays `bytes` (after a selector byte: a GET, or a POST whose body is
/// `selector * 257` bytes, sent under the backend's windows) as everything an
/// h2 backend writes on the connection, its SETTINGS first, before it closes
/// its side. Invariants: no panic; the exchange ends (within 30 s; the end of
/// the backend's bytes ends the connection); a body read to its end holds no more than the
/// backend sent, and exactly its `content-length` when it gave one (but
/// for 204 and 304).
pub fn upstream_h2(bytes: &[u8]) {
    let Some((&selector, backend)) = bytes.split_first() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(exchange(selector, backend));
}

async fn exchange(selector: u8, backend: &[u8]) {
    let (client, mut server) = tokio::io::duplex(1 << 20);
    let addr = "127.0.0.1:9".parse().expect("an address");
    // The handshake only sends the preface: it never waits on the backend.
    let Ok(mut sender) = h2_client::handshake(client, addr, || {}).await else {
        return;
    };
    server.write_all(backend).await.expect("write");
    // Then the backend says no more (drover reads to the end of what it
    // wrote, then EOF); whatever drover writes is read and dropped.
    server.shutdown().await.expect("shutdown");
    let mut from_drover = server;
    tokio::spawn(async move {
        let mut sink = vec![0u8; 16 * 1024];
        while matches!(from_drover.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    let upload = usize::from(selector) * 257 % (MAX_UPLOAD + 1);
    let req = if selector == 0 {
        Request::get("http://backend.test/x").body(Full::new(Bytes::new()))
    } else {
        Request::post("http://backend.test/x").body(Full::new(Bytes::from(vec![b'u'; upload])))
    }
    .expect("a request");
    let within = Duration::from_secs(30);
    let sent = tokio::time::timeout(within, h2_client::send(&mut sender, req)).await;
    let Ok(Ok(resp)) = sent.map_err(|_| panic!("no end to the exchange")) else {
        return;
    };
    // 204 and 304 may state a length they do not carry (RFC 9110 §8.6).
    let bodiless = matches!(resp.status().as_u16(), 204 | 304);
    let length = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| crate::upstream::native::head::content_length(v.as_bytes()))
        .filter(|_| !bodiless);
    let read = tokio::time::timeout(within, resp.into_body().collect()).await;
    let Ok(body) = read.expect("the body ends") else {
        return;
    };
    let got = body.to_bytes().len();
    assert!(got <= backend.len(), "more body than the backend sent");
    if let Some(n) = length {
        assert_eq!(
            got as u64, n,
            "a whole body of another length than content-length"
        );
    }
}
