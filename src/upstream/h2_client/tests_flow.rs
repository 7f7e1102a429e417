//! The client against the `h2` crate's server on real sockets: flow control
//! with small windows (uploads and downloads larger than every window), many
//! streams on one connection under the server's MAX_CONCURRENT_STREAMS,
//! cancellation (a dropped request or response resets its stream), and the
//! connection closing once nothing uses it.

use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(20);

/// An h2c server built by `builder`, running `serve` for every request on
/// one connection; the client's sender and its ended flag.
async fn serve_with<F, Fut>(builder: h2::server::Builder, serve: F) -> (Sender, Arc<AtomicBool>)
where
    F: Fn(Request<h2::RecvStream>, h2::server::SendResponse<Bytes>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (sock, _) = l.accept().await.unwrap();
        let mut conn = builder.handshake(sock).await.unwrap();
        while let Some(Ok((req, respond))) = conn.accept().await {
            tokio::spawn(serve(req, respond));
        }
    });
    let ended = Arc::new(AtomicBool::new(false));
    let flag = ended.clone();
    let sock = TcpStream::connect(addr).await.unwrap();
    let sender = handshake(sock, addr, move || flag.store(true, Ordering::SeqCst))
        .await
        .unwrap();
    (sender, ended)
}

/// Reads a request body whole, giving the window back as it goes.
async fn read_all(mut body: h2::RecvStream) -> Result<Vec<u8>, h2::Error> {
    let mut got = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        got.extend_from_slice(&chunk);
    }
    Ok(got)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// An upload larger than the server's windows arrives whole and in order,
/// whatever the window: 1 byte (a frame per byte), 100 bytes, 16 KiB, 64 KiB.
#[tokio::test]
async fn uploads_go_through_small_windows() {
    for (window, size) in [
        (1u32, 20_000usize),
        (100, 200_000),
        (16_384, 1 << 20),
        (65_535, 1 << 20),
    ] {
        let mut b = h2::server::Builder::new();
        b.initial_window_size(window);
        let (mut sender, _) = serve_with(b, |req, mut respond| async move {
            let got = read_all(req.into_body()).await.unwrap();
            let resp = Response::builder()
                .header("x-len", got.len())
                .body(())
                .unwrap();
            let mut tx = respond.send_response(resp, false).unwrap();
            tx.send_data(Bytes::from(got), true).unwrap();
        })
        .await;
        let body = pattern(size);
        let req = Request::post("http://t.local/up")
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap();
        let resp = tokio::time::timeout(WAIT, send(&mut sender, req))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            resp.headers()["x-len"],
            size.to_string().as_str(),
            "window {window}"
        );
        let echoed = tokio::time::timeout(WAIT, resp.into_body().collect())
            .await
            .unwrap()
            .unwrap();
        assert!(
            echoed.to_bytes() == body,
            "window {window}: the echo differs"
        );
    }
}

/// A response larger than drover's stream window (256 KiB) and read slowly
/// comes whole: the window is given back as it is passed on.
#[tokio::test]
async fn downloads_larger_than_the_windows_come_whole() {
    let size = 3 << 20;
    let (mut sender, _) = serve_with(
        h2::server::Builder::new(),
        move |_req, mut respond| async move {
            let mut tx = respond.send_response(Response::new(()), false).unwrap();
            let all = Bytes::from(pattern(size));
            let mut at = 0;
            while at < all.len() {
                tx.reserve_capacity(all.len() - at);
                let cap = std::future::poll_fn(|cx| tx.poll_capacity(cx))
                    .await
                    .unwrap()
                    .unwrap();
                let n = cap.min(all.len() - at);
                tx.send_data(all.slice(at..at + n), at + n == all.len())
                    .unwrap();
                at += n;
            }
        },
    )
    .await;
    let req = Request::get("http://t.local/down")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = tokio::time::timeout(WAIT, send(&mut sender, req))
        .await
        .unwrap()
        .unwrap();
    let mut body = resp.into_body();
    let mut got = Vec::new();
    while let Some(f) = tokio::time::timeout(WAIT, body.frame()).await.unwrap() {
        got.extend_from_slice(&f.unwrap().into_data().unwrap());
        if got.len() % (512 * 1024) < 16 * 1024 {
            tokio::task::yield_now().await;
        }
    }
    assert!(got == pattern(size), "{} bytes, not the pattern", got.len());
}

/// 60 requests at once on one connection to a server taking 4 streams at a
/// time: all answered, never more than 4 open at once.
#[tokio::test]
async fn many_streams_share_one_connection_within_the_servers_limit() {
    let open = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (o, m) = (open.clone(), most.clone());
    let mut b = h2::server::Builder::new();
    b.max_concurrent_streams(4);
    let (sender, _) = serve_with(b, move |req, mut respond| {
        let (open, most) = (o.clone(), m.clone());
        async move {
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            let path = req.uri().path().to_string();
            open.fetch_sub(1, Ordering::SeqCst);
            let mut tx = respond.send_response(Response::new(()), false).unwrap();
            tx.send_data(Bytes::from(path), true).unwrap();
        }
    })
    .await;
    // The server's SETTINGS first (before them, 100 streams may open, and
    // the server refuses those above its limit: REFUSED_STREAM, unprocessed).
    let mut first = sender.clone();
    let req = Request::get("http://t.local/first")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = tokio::time::timeout(WAIT, send(&mut first, req))
        .await
        .unwrap()
        .unwrap();
    resp.into_body().collect().await.unwrap();
    let calls = (0..60).map(|i| {
        let mut s = sender.clone();
        async move {
            let req = Request::get(format!("http://t.local/{i}"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let resp = send(&mut s, req).await.unwrap();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, format!("/{i}").as_bytes());
        }
    });
    tokio::time::timeout(WAIT, futures_util::future::join_all(calls))
        .await
        .unwrap();
    let most = most.load(Ordering::SeqCst);
    assert!((1..=4).contains(&most), "{most} streams open at once");
}

/// A request dropped while its body is being sent resets its stream
/// (CANCEL), and so does a response body dropped before its end.
#[tokio::test]
async fn dropping_a_request_or_a_response_cancels_its_stream() {
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let (mut sender, _) = serve_with(h2::server::Builder::new(), move |req, mut respond| {
        let seen_tx = seen_tx.clone();
        async move {
            if req.uri().path() == "/upload" {
                let r = read_all(req.into_body()).await;
                let _ = seen_tx.send(r.map(|_| ()).map_err(|e| e.reason()));
            } else {
                let mut tx = respond.send_response(Response::new(()), false).unwrap();
                tx.send_data(Bytes::from_static(b"first"), false).unwrap();
                let r = std::future::poll_fn(|cx| tx.poll_reset(cx)).await;
                let _ = seen_tx.send(Err(r.ok()));
            }
        }
    })
    .await;
    // A body that never ends: the request waits for its head, then is dropped.
    let (_feed, body) =
        tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, std::io::Error>>(1);
    let stream =
        futures_util::stream::unfold(
            body,
            |mut rx| async move { rx.recv().await.map(|c| (c, rx)) },
        );
    let req = Request::post("http://t.local/upload")
        .body(http_body_util::StreamBody::new(Box::pin(stream)))
        .unwrap();
    let pending = tokio::time::timeout(Duration::from_millis(200), send(&mut sender, req)).await;
    assert!(pending.is_err(), "no answer was due");
    let r = tokio::time::timeout(WAIT, seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r, Err(Some(h2::Reason::CANCEL)));
    // A response dropped after its first chunk.
    let req = Request::get("http://t.local/download")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = tokio::time::timeout(WAIT, send(&mut sender, req))
        .await
        .unwrap()
        .unwrap();
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"first");
    drop(body);
    let r = tokio::time::timeout(WAIT, seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r, Err(Some(h2::Reason::CANCEL)));
}

/// REFUSED_STREAM from the server: the request was not processed.
#[tokio::test]
async fn a_refused_stream_is_unprocessed() {
    let (mut sender, _) = serve_with(h2::server::Builder::new(), |_req, mut respond| async move {
        respond.send_reset(h2::Reason::REFUSED_STREAM);
    })
    .await;
    let req = Request::get("http://t.local/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let failed = tokio::time::timeout(WAIT, send(&mut sender, req))
        .await
        .unwrap()
        .unwrap_err();
    assert!(failed.sent && failed.request.is_none());
    assert!(failed.error.unprocessed(), "{:?}", failed.error);
    let Error::H2(e) = &failed.error else {
        panic!("{:?}", failed.error)
    };
    assert!(e.is_remote());
    assert_eq!(
        e.reason(),
        Some(crate::h2wire::frame::Reason::REFUSED_STREAM)
    );
}

/// Once every sender is dropped and the last stream has ended, the
/// connection closes (GOAWAY) and reports its end; not before.
#[tokio::test]
async fn the_connection_closes_when_nothing_uses_it() {
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let go_rx = std::sync::Mutex::new(Some(go_rx));
    let (mut sender, ended) = serve_with(h2::server::Builder::new(), move |_req, mut respond| {
        let go = go_rx.lock().unwrap().take();
        async move {
            let mut tx = respond.send_response(Response::new(()), false).unwrap();
            tx.send_data(Bytes::from_static(b"bo"), false).unwrap();
            let _ = go.unwrap().await;
            tx.send_data(Bytes::from_static(b"dy"), true).unwrap();
        }
    })
    .await;
    let req = Request::get("http://t.local/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = tokio::time::timeout(WAIT, send(&mut sender, req))
        .await
        .unwrap()
        .unwrap();
    drop(sender);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !ended.load(Ordering::SeqCst),
        "closed under a stream still open"
    );
    go_tx.send(()).unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"body");
    for _ in 0..250 {
        if ended.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the connection never closed");
}
