//! The HTTP/2 client against the `h2` crate's server (a conformant peer) on
//! real sockets: bodies sent while and after the head comes back, early
//! answers, resets, a body that fails, a connection that closes before the
//! stream opens, flow control with small windows both ways, many streams on
//! one connection, cancellation. Hostile peers: `tests_raw.rs`.

use super::*;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;

use http_body_util::{BodyExt, Empty, StreamBody};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

type Chunk = Result<Frame<Bytes>, std::io::Error>;
type ChannelBody = StreamBody<Pin<Box<dyn futures_util::Stream<Item = Chunk> + Send>>>;

/// A request body fed by the test, chunk by chunk; it ends when `tx` is dropped.
fn channel_body() -> (mpsc::Sender<Chunk>, ChannelBody) {
    let (tx, rx) = mpsc::channel(8);
    let chunks = futures_util::stream::unfold(rx, |mut rx: mpsc::Receiver<Chunk>| async move {
        rx.recv().await.map(|c| (c, rx))
    });
    (tx, StreamBody::new(Box::pin(chunks)))
}

fn data(s: &'static str) -> Chunk {
    Ok(Frame::data(Bytes::from_static(s.as_bytes())))
}

/// Reads a request body to its end on the server side (or to its reset).
async fn read_all(mut body: h2::RecvStream) -> Result<Vec<u8>, h2::Error> {
    let mut got = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        got.extend_from_slice(&chunk);
    }
    Ok(got)
}

/// An h2c server on 127.0.0.1 running `serve` for its first request; the
/// client's sender, and whether the client saw the connection end.
async fn with_server<F, Fut>(serve: F) -> (Sender, Arc<AtomicBool>)
where
    F: FnOnce(Request<h2::RecvStream>, h2::server::SendResponse<Bytes>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (sock, _) = l.accept().await.unwrap();
        let mut conn = h2::server::handshake(sock).await.unwrap();
        let (req, respond) = conn.accept().await.unwrap().unwrap();
        let served = tokio::spawn(serve(req, respond));
        // Drive the connection until the client goes.
        while let Some(next) = conn.accept().await {
            if next.is_err() {
                break;
            }
        }
        let _ = served.await;
    });
    connect(addr).await
}

/// The client side: its sender, and whether it saw the connection end.
async fn connect(addr: std::net::SocketAddr) -> (Sender, Arc<AtomicBool>) {
    let ended = Arc::new(AtomicBool::new(false));
    let flag = ended.clone();
    let sock = TcpStream::connect(addr).await.unwrap();
    let sender = handshake(sock, addr, move || flag.store(true, Ordering::Relaxed))
        .await
        .unwrap();
    (sender, ended)
}

/// A POST whose body has sent `abc` and goes on: the feed for the rest of
/// the body, and the response (its head).
async fn upload_under_way(sender: &mut Sender) -> (mpsc::Sender<Chunk>, Response<RespBody>) {
    let (tx, body) = channel_body();
    tx.send(data("abc")).await.unwrap();
    let resp = tokio::time::timeout(WAIT, send(sender, post(body)))
        .await
        .unwrap()
        .unwrap();
    (tx, resp)
}

fn post<B>(body: B) -> Request<B> {
    Request::post("http://test.local/upload")
        .body(body)
        .unwrap()
}

const WAIT: Duration = Duration::from_secs(5);

/// The backend answers after the first chunk; the rest of the body is still
/// sent (by the pipe's own task) and arrives whole, after the head.
#[tokio::test]
async fn the_body_keeps_going_after_an_early_answer() {
    let (got_tx, got_rx) = oneshot::channel();
    let (mut sender, _) = with_server(|req, mut respond| async move {
        let mut body = req.into_body();
        let first = body.data().await.unwrap().unwrap();
        let _ = body.flow_control().release_capacity(first.len());
        let mut tx = respond.send_response(Response::new(()), false).unwrap();
        tx.send_data(Bytes::from_static(b"early"), true).unwrap();
        let mut all = first.to_vec();
        all.extend(read_all(body).await.unwrap());
        let _ = got_tx.send(all);
    })
    .await;
    let (tx, resp) = upload_under_way(&mut sender).await;
    assert_eq!(resp.status(), 200);
    let answer = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&answer[..], b"early");
    tx.send(data("def")).await.unwrap();
    tx.send(data("ghi")).await.unwrap();
    drop(tx);
    let all = tokio::time::timeout(WAIT, got_rx).await.unwrap().unwrap();
    assert_eq!(all, b"abcdefghi");
}

/// A server that resets the stream once its answer is read; whether the
/// answer ended (END_STREAM) before the reset. The request body is still open.
async fn reset_after_answer(whole: bool) -> (Result<Bytes, RespError>, mpsc::Sender<Chunk>) {
    let (read_tx, read_rx) = oneshot::channel::<()>();
    let (mut sender, _) = with_server(move |_req, mut respond| async move {
        let mut tx = respond.send_response(Response::new(()), false).unwrap();
        tx.send_data(Bytes::from_static(b"done"), whole).unwrap();
        // Reset once the data is out (a reset drops frames still queued).
        let _ = read_rx.await;
        respond.send_reset(h2::Reason::NO_ERROR);
    })
    .await;
    let (tx, resp) = upload_under_way(&mut sender).await;
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"done");
    read_tx.send(()).unwrap();
    let rest = tokio::time::timeout(WAIT, body.collect()).await.unwrap();
    (rest.map(|c| c.to_bytes()), tx)
}

/// A reset with NO_ERROR after a complete answer (RFC 9113 §8.1: the server
/// needs no more of the request) is not a failure; it stops the request body.
#[tokio::test]
async fn a_no_error_reset_after_a_whole_answer_is_not_a_failure() {
    let (rest, tx) = reset_after_answer(true).await;
    assert!(rest.expect("a whole answer").is_empty());
    // The pipe saw the reset and dropped the request body (its channel closes).
    tokio::time::timeout(WAIT, tx.closed()).await.unwrap();
}

/// The same reset before the answer's END_STREAM cut the answer short: an
/// error, not a shorter body passed on as complete.
#[tokio::test]
async fn a_no_error_reset_before_the_end_of_the_answer_is_a_failure() {
    let (rest, _tx) = reset_after_answer(false).await;
    let e = rest.expect_err("a cut answer");
    assert!(matches!(e, RespError::Cut), "{e:?}");
    // No h2 reason in its chain: the client's stream is not reset with NO_ERROR.
    assert!(std::error::Error::source(&e).is_none());
}

/// The client's body fails before the head: the exchange fails with the
/// body's own error (the client's fault) and the backend sees the stream
/// reset with CANCEL.
#[tokio::test]
async fn a_failing_body_is_the_clients_fault_and_cancels_the_stream() {
    let (seen_tx, seen_rx) = oneshot::channel();
    let (mut sender, _) = with_server(|req, _respond| async move {
        let _ = seen_tx.send(read_all(req.into_body()).await);
    })
    .await;
    let (tx, body) = channel_body();
    tx.send(data("abc")).await.unwrap();
    tx.send(Err(std::io::Error::other("client went away")))
        .await
        .unwrap();
    let failed = tokio::time::timeout(WAIT, send(&mut sender, post(body)))
        .await
        .unwrap()
        .expect_err("the body failed");
    assert!(failed.sent && failed.request.is_none());
    let Error::Body(e) = &failed.error else {
        panic!("not the body's error: {:?}", failed.error);
    };
    assert!(e.downcast_ref::<std::io::Error>().is_some(), "{e}");
    assert!(!failed.error.unprocessed());
    let seen = tokio::time::timeout(WAIT, seen_rx).await.unwrap().unwrap();
    let reset = seen.expect_err("the stream was reset");
    assert_eq!(reset.reason(), Some(h2::Reason::CANCEL));
}

/// Trailers after the data are passed on as trailers, and a body-less
/// request's fields that HTTP/2 forbids are not sent.
#[tokio::test]
async fn trailers_come_through_and_connection_fields_stay_behind() {
    let (head_tx, head_rx) = oneshot::channel();
    let (mut sender, _) = with_server(|req, mut respond| async move {
        let _ = head_tx.send(req.headers().clone());
        let mut tx = respond.send_response(Response::new(()), false).unwrap();
        tx.send_data(Bytes::from_static(b"x"), false).unwrap();
        let mut t = HeaderMap::new();
        t.insert("grpc-status", "0".parse().unwrap());
        tx.send_trailers(t).unwrap();
    })
    .await;
    let mut req = Request::get("http://test.local/")
        .header("connection", "x-hop")
        .header("x-hop", "1")
        .header("keep-alive", "5")
        .header("te", "gzip")
        .header("x-kept", "1")
        .body(Empty::<Bytes>::new())
        .unwrap();
    req.headers_mut()
        .insert("upgrade", "websocket".parse().unwrap());
    let resp = tokio::time::timeout(WAIT, send(&mut sender, req))
        .await
        .unwrap()
        .unwrap();
    let collected = resp.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
    assert_eq!(&collected.to_bytes()[..], b"x");
    let head = head_rx.await.unwrap();
    assert_eq!(head["x-kept"], "1");
    for gone in ["connection", "x-hop", "keep-alive", "te", "upgrade"] {
        assert!(head.get(gone).is_none(), "{gone} was sent");
    }
}

/// A connection that ends before the stream opens gives the request back
/// (not sent) and reports its end.
#[tokio::test]
async fn a_closed_connection_gives_the_request_back() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (sock, _) = l.accept().await.unwrap();
        // The HTTP/2 handshake, then the server goes away.
        let conn = h2::server::handshake(sock).await.unwrap();
        drop(conn);
    });
    let (mut sender, ended) = connect(addr).await;
    for _ in 0..250 {
        if ended.load(Ordering::Relaxed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ended.load(Ordering::Relaxed), "the connection never ended");
    let failed = send(&mut sender, post(Empty::<Bytes>::new()))
        .await
        .expect_err("the connection is gone");
    assert!(!failed.sent);
    assert!(failed.request.is_some());
}

#[test]
fn te_trailers_is_kept() {
    let mut h = HeaderMap::new();
    h.insert(TE, "trailers".parse().unwrap());
    h.insert("proxy-connection", "keep-alive".parse().unwrap());
    h.insert(TRANSFER_ENCODING, "chunked".parse().unwrap());
    strip_connection_fields(&mut h);
    assert_eq!(h.len(), 1);
    assert_eq!(h[TE], "trailers");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn field() -> impl Strategy<Value = (String, String)> {
        (
            prop_oneof![
                Just("connection".to_string()),
                Just("te".to_string()),
                Just("transfer-encoding".to_string()),
                Just("upgrade".to_string()),
                Just("keep-alive".to_string()),
                Just("proxy-connection".to_string()),
                "x-[a-c]{1,2}",
            ],
            prop_oneof![
                Just("trailers".to_string()),
                Just("x-a, x-b".to_string()),
                Just("close".to_string()),
                "[a-z ,-]{0,8}",
            ],
        )
    }

    proptest! {
        /// Nothing HTTP/2 forbids is left (te only as `trailers`); every other
        /// field stays unless `Connection` named it.
        #[test]
        fn only_what_http2_forbids_is_removed(fields in prop::collection::vec(field(), 0..8)) {
            let mut h = HeaderMap::new();
            for (n, v) in &fields {
                h.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), v.parse().unwrap());
            }
            let named: Vec<String> = h
                .get_all(CONNECTION)
                .iter()
                .take(1)
                .flat_map(|v| v.to_str().unwrap_or("").split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>())
                .collect();
            let before = h.clone();
            strip_connection_fields(&mut h);
            for n in ["connection", "transfer-encoding", "upgrade", "keep-alive", "proxy-connection"] {
                prop_assert!(h.get(n).is_none(), "{} left", n);
            }
            prop_assert!(h.get_all(TE).iter().all(|v| v == "trailers"));
            for (n, v) in &before {
                let special = ["connection", "te", "transfer-encoding", "upgrade", "keep-alive", "proxy-connection"]
                    .contains(&n.as_str());
                if !special && !named.iter().any(|m| m.eq_ignore_ascii_case(n.as_str())) {
                    prop_assert!(h.get_all(n).iter().any(|x| x == v), "{} lost", n);
                }
            }
        }
    }
}
