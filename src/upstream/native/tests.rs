//! The native client against real sockets: a raw TCP backend on 127.0.0.1
//! answering each request head with fixed bytes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

const T: Duration = Duration::from_secs(5);

/// A backend that answers every request head with `response`; after
/// `per_conn` answers on a connection it closes it (without saying so) —
/// with `swallow`, only once the next request head has come in (the
/// keep-alive race: the client cannot see the close before it sends).
struct Raw {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    heads: Arc<AtomicUsize>,
}

async fn raw(response: &'static [u8], per_conn: usize) -> Raw {
    raw_with(response, per_conn, false).await
}

async fn raw_with(response: &'static [u8], per_conn: usize, swallow: bool) -> Raw {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(AtomicUsize::new(0));
    let (a, h) = (accepts.clone(), heads.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            a.fetch_add(1, Ordering::SeqCst);
            let h = h.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut served = 0;
                let mut b = [0u8; 4096];
                let last = if swallow { per_conn + 1 } else { per_conn };
                while served < last {
                    let Ok(n) = s.read(&mut b).await else { return };
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&b[..n]);
                    while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        got.drain(..end + 4);
                        h.fetch_add(1, Ordering::SeqCst);
                        if served == per_conn {
                            return;
                        }
                        if s.write_all(response).await.is_err() {
                            return;
                        }
                        served += 1;
                    }
                }
            });
        }
    });
    Raw {
        addr,
        accepts,
        heads,
    }
}

fn get(method: Method) -> Request<()> {
    let mut r = Request::new(());
    *r.method_mut() = method;
    *r.uri_mut() = "/x?y=1".parse().unwrap();
    r.headers_mut()
        .insert("host", http::HeaderValue::from_static("b"));
    r
}

/// One exchange; the status and the whole body (or the error's text).
async fn one(addr: SocketAddr, method: Method) -> Result<(u16, Vec<u8>), String> {
    match exchange(addr, &get(method), T, T, T).await {
        Exchanged::Response(r) => {
            let status = r.status().as_u16();
            let body = r.into_body().collect().await.map_err(|e| e.to_string())?;
            Ok((status, body.to_bytes().to_vec()))
        }
        Exchanged::Failed(e) => Err(e.to_string()),
        Exchanged::NoConnection(e) => Err(e.to_string()),
        Exchanged::TimedOut => Err("timed out".into()),
    }
}

#[tokio::test]
async fn keep_alive_connections_are_reused() {
    let b = raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        usize::MAX,
    )
    .await;
    for _ in 0..20 {
        assert_eq!(
            one(b.addr, Method::GET).await.unwrap(),
            (200, b"ok".to_vec())
        );
    }
    assert_eq!(b.accepts.load(Ordering::SeqCst), 1);
    // Chunked and with trailers, too.
    let b = raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
        usize::MAX,
    )
    .await;
    for _ in 0..5 {
        assert_eq!(
            one(b.addr, Method::GET).await.unwrap(),
            (200, b"abc".to_vec())
        );
    }
    assert_eq!(b.accepts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_pooled_connection_the_backend_closed_is_replaced() {
    // One answer per connection, closed after it without `Connection: close`.
    let b = raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1).await;
    for _ in 0..5 {
        assert_eq!(
            one(b.addr, Method::GET).await.unwrap(),
            (200, b"ok".to_vec())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(b.accepts.load(Ordering::SeqCst), 5);
    assert_eq!(
        b.heads.load(Ordering::SeqCst),
        5,
        "each request reached it once"
    );
}

#[tokio::test]
async fn the_keep_alive_race_resends_only_idempotent_requests() {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    // Each connection answers one request, then takes the next and closes.
    let b = raw_with(ok, 1, true).await;
    assert_eq!(one(b.addr, Method::GET).await.unwrap().0, 200);
    // On the pooled connection: read, not answered; sent again on a new one.
    assert_eq!(one(b.addr, Method::GET).await.unwrap().0, 200);
    assert_eq!(b.accepts.load(Ordering::SeqCst), 2);
    assert_eq!(b.heads.load(Ordering::SeqCst), 3);
    // A POST may have been processed: reported, not sent again.
    let b = raw_with(ok, 1, true).await;
    assert_eq!(one(b.addr, Method::POST).await.unwrap().0, 200);
    let e = one(b.addr, Method::POST).await.unwrap_err();
    assert!(e.contains("closed before a response"), "{e}");
    assert_eq!(b.accepts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_backend_that_reads_and_closes_fails_a_post_but_not_a_get() {
    // Accepts, reads the head, closes: nothing is ever answered.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let a = accepts.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b).await;
        }
    });
    let e = one(addr, Method::POST).await.unwrap_err();
    assert!(e.contains("closed before a response"), "{e}");
    assert_eq!(
        accepts.load(Ordering::SeqCst),
        1,
        "a fresh connection is not retried"
    );
    let e = one(addr, Method::GET).await.unwrap_err();
    assert!(e.contains("closed before a response"), "{e}");
}

#[tokio::test]
async fn large_bodies_arrive_whole_and_the_connection_is_reused_after() {
    static BIG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let body: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    let mut wire =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    wire.extend_from_slice(&body);
    let wire: &'static [u8] = BIG.get_or_init(|| wire);
    let b = raw(wire, usize::MAX).await;
    for _ in 0..3 {
        let (status, got) = one(b.addr, Method::GET).await.unwrap();
        assert_eq!(status, 200);
        assert!(got == body, "body differs ({} bytes)", got.len());
    }
    assert_eq!(b.accepts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_body_dropped_early_or_a_close_response_ends_the_connection() {
    let b = raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234",
        usize::MAX,
    )
    .await;
    let Exchanged::Response(r) = exchange(b.addr, &get(Method::GET), T, T, T).await else {
        panic!()
    };
    drop(r);
    let b2 = raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        usize::MAX,
    )
    .await;
    for _ in 0..3 {
        assert_eq!(one(b2.addr, Method::GET).await.unwrap().0, 200);
    }
    assert_eq!(b2.accepts.load(Ordering::SeqCst), 3);
    // The half-read connection was not pooled: a new one is opened.
    let _ = exchange(b.addr, &get(Method::GET), T, T, T).await;
    assert_eq!(b.accepts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn head_responses_have_no_body_and_keep_the_connection() {
    let b = raw(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", usize::MAX).await;
    for _ in 0..3 {
        assert_eq!(one(b.addr, Method::HEAD).await.unwrap(), (200, Vec::new()));
    }
    assert_eq!(b.accepts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_silent_backend_times_out_and_a_closed_port_does_not_connect() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let short = Duration::from_millis(200);
    assert!(matches!(
        exchange(addr, &get(Method::GET), T, short, T).await,
        Exchanged::TimedOut
    ));
    hold.abort();
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = free.local_addr().unwrap();
    drop(free);
    assert!(matches!(
        exchange(closed, &get(Method::GET), T, T, T).await,
        Exchanged::NoConnection(_)
    ));
}
