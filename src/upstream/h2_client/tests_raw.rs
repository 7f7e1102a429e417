//! The client against hand-written backends that write raw frames (made
//! with `h2wire`'s writers and an HPACK encoder that uses the dynamic table
//! and Huffman) on real sockets: GOAWAY mid-flight, content-length,
//! informational heads, malformed heads and trailers, CONTINUATION, windows
//! that shrink below zero, a backend overrunning drover's window, batched
//! WINDOW_UPDATEs, MAX_CONCURRENT_STREAMS. Connection-level garbage:
//! `tests_garbage.rs`; support in `tests_peer.rs`.

use super::tests_peer::*;
use super::*;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty, Full};

use crate::h2wire::frame::{kind, setting, Reason};

/// GOAWAY with a last stream id below some open streams: those fail
/// unprocessed (safe to send again), the one below finishes its response,
/// and no new stream goes to the connection (the request comes back unsent).
#[tokio::test]
async fn goaway_mid_flight_refuses_only_the_streams_above_its_last_id() {
    let (sender, mut peer, ended) = pair(&[]).await;
    let calls: Vec<_> = (0..3)
        .map(|i| tokio::spawn(get(sender.clone(), format!("/{i}"))))
        .collect();
    for id in [1, 3, 5] {
        assert_eq!(peer.next(kind::HEADERS).await.0.stream, id);
    }
    peer.head(1, &[(":status", "200")], false).await;
    peer.data(1, b"a", false).await;
    peer.goaway(1, Reason::NO_ERROR).await;
    peer.data(1, b"b", true).await;
    let mut results = Vec::new();
    for c in calls {
        results.push(tokio::time::timeout(WAIT, c).await.unwrap().unwrap());
    }
    let body = results
        .remove(0)
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"ab");
    for r in results {
        let f = r.unwrap_err();
        assert!(f.sent && f.error.unprocessed(), "{:?}", f.error);
    }
    let mut s = sender.clone();
    let f = send(
        &mut s,
        Request::get("http://t/")
            .body(Empty::<Bytes>::new())
            .unwrap(),
    )
    .await
    .unwrap_err();
    assert!(!f.sent && f.request.is_some(), "{f:?}");
    assert!(s.is_closed());
    // No stream left: the connection closes.
    peer.expect_eof().await;
    assert!(wait_for(|| ended.load(Ordering::SeqCst)).await);
}

/// A connection that closes after GOAWAY(NO_ERROR) cuts the response it
/// was sending (an error, not a shorter body) and fails a stream it accepted
/// but did not answer without calling it unprocessed.
#[tokio::test]
async fn a_close_after_goaway_cuts_what_it_accepted() {
    let (sender, mut peer, _) = pair(&[]).await;
    let first = tokio::spawn(get(sender.clone(), "/1".into()));
    let second = tokio::spawn(get(sender.clone(), "/3".into()));
    peer.next(kind::HEADERS).await;
    peer.next(kind::HEADERS).await;
    peer.head(1, &[(":status", "200"), ("content-length", "10")], false)
        .await;
    peer.data(1, b"half", false).await;
    peer.goaway(3, Reason::NO_ERROR).await;
    let resp = tokio::time::timeout(WAIT, first)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    drop(peer);
    let e = resp.into_body().collect().await.unwrap_err();
    assert!(matches!(e, RespError::Cut), "{e:?}");
    let f = tokio::time::timeout(WAIT, second)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(f.sent && !f.error.unprocessed(), "{:?}", f.error);
}

/// `content-length` is held to the DATA: more, or less before END_STREAM,
/// fails the body and resets the stream (PROTOCOL_ERROR); late frames on the
/// reset stream are ignored and the connection goes on. A HEAD response and
/// a 304 keep their length without a body.
#[tokio::test]
async fn content_length_is_held_to_the_data() {
    let (sender, mut peer, _) = pair(&[]).await;
    for (id, data) in [(1, &b"abcd"[..]), (3, b"ab")] {
        let call = tokio::spawn(get(sender.clone(), "/".into()));
        assert_eq!(peer.next(kind::HEADERS).await.0.stream, id);
        peer.head(id, &[(":status", "200"), ("content-length", "3")], false)
            .await;
        peer.data(id, data, true).await;
        let resp = tokio::time::timeout(WAIT, call)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let e = resp.into_body().collect().await.unwrap_err();
        assert_eq!(e.reason(), Some(Reason::PROTOCOL_ERROR), "{e:?}");
        let (h, p) = peer.next(kind::RST_STREAM).await;
        assert_eq!(
            (h.stream, &p[..]),
            (id, &Reason::PROTOCOL_ERROR.0.to_be_bytes()[..])
        );
        // Late DATA on the reset stream: dropped.
        peer.data(id, b"late", true).await;
    }
    // END_STREAM on the head with a length: an error before the body.
    let call = tokio::spawn(get(sender.clone(), "/".into()));
    peer.next(kind::HEADERS).await;
    peer.head(5, &[(":status", "200"), ("content-length", "2")], true)
        .await;
    let f = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        f.sent && f.error.to_string().contains("content-length"),
        "{f:?}"
    );
    // HEAD and 304: the length is not the body's.
    let mut s = sender.clone();
    let head = tokio::spawn(async move {
        send(
            &mut s,
            Request::head("http://t/")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
    });
    peer.next(kind::HEADERS).await;
    peer.head(7, &[(":status", "200"), ("content-length", "10")], true)
        .await;
    let resp = tokio::time::timeout(WAIT, head)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(resp.headers()["content-length"], "10");
    assert!(http_body::Body::is_end_stream(resp.body()));
    let call = tokio::spawn(get(sender.clone(), "/".into()));
    peer.next(kind::HEADERS).await;
    peer.head(9, &[(":status", "304"), ("content-length", "10")], true)
        .await;
    let resp = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 304);
    assert!(resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .is_empty());
}

/// 1xx heads are skipped; 101 is an error in HTTP/2.
#[tokio::test]
async fn informational_heads_are_skipped_and_101_fails() {
    let (sender, mut peer, _) = pair(&[]).await;
    let call = tokio::spawn(get(sender.clone(), "/".into()));
    peer.next(kind::HEADERS).await;
    peer.head(1, &[(":status", "100")], false).await;
    peer.head(
        1,
        &[(":status", "103"), ("link", "</a>; rel=preload")],
        false,
    )
    .await;
    peer.head(1, &[(":status", "201"), ("x-a", "1")], true)
        .await;
    let resp = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(resp.headers().get("link").is_none());
    let call = tokio::spawn(get(sender.clone(), "/".into()));
    peer.next(kind::HEADERS).await;
    peer.head(3, &[(":status", "101")], false).await;
    let f = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    let Error::H2(e) = &f.error else {
        panic!("{f:?}")
    };
    assert_eq!(e.reason(), Some(Reason::PROTOCOL_ERROR));
    assert!(!e.is_remote());
    assert_eq!(peer.next(kind::RST_STREAM).await.0.stream, 3);
}

/// A malformed head or trailers fails its stream only: the next stream on
/// the connection is answered.
#[tokio::test]
async fn malformed_heads_and_trailers_fail_their_stream_only() {
    let (sender, mut peer, _) = pair(&[]).await;
    let mut id = 1;
    for bad in [
        vec![("x-a", "1")],
        vec![(":status", "200"), ("X-Up", "1")],
        vec![(":status", "200"), (":path", "/")],
        vec![(":status", "200"), ("connection", "close")],
    ] {
        let call = tokio::spawn(get(sender.clone(), "/".into()));
        peer.next(kind::HEADERS).await;
        peer.head(id, &bad, true).await;
        let f = tokio::time::timeout(WAIT, call)
            .await
            .unwrap()
            .unwrap()
            .unwrap_err();
        assert!(
            f.error.to_string().contains("PROTOCOL_ERROR"),
            "{bad:?}: {f:?}"
        );
        id += 2;
    }
    for (trailers, end) in [
        (vec![(":status", "200")], true),
        (vec![("grpc-status", "0")], false),
    ] {
        let call = tokio::spawn(get(sender.clone(), "/".into()));
        peer.next(kind::HEADERS).await;
        peer.head(id, &[(":status", "200")], false).await;
        peer.data(id, b"x", false).await;
        peer.head(id, &trailers, end).await;
        let resp = tokio::time::timeout(WAIT, call)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let e = resp.into_body().collect().await.unwrap_err();
        assert_eq!(e.reason(), Some(Reason::PROTOCOL_ERROR), "{trailers:?}");
        id += 2;
    }
    let call = tokio::spawn(get(sender.clone(), "/".into()));
    peer.next(kind::HEADERS).await;
    peer.head(id, &[(":status", "200")], false).await;
    peer.data(id, b"ok", false).await;
    peer.head(id, &[("grpc-status", "0")], true).await;
    let resp = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let all = resp.into_body().collect().await.unwrap();
    assert_eq!(all.trailers().unwrap()["grpc-status"], "0");
    assert_eq!(&all.to_bytes()[..], b"ok");
}

/// Heads in HEADERS + CONTINUATION frames, indexed, Huffman-coded, across
/// responses (the dynamic table kept in step, also past a head too large to
/// take, which fails only its stream); a frame inside a block ends the
/// connection (PROTOCOL_ERROR).
#[tokio::test]
async fn continuations_and_the_dynamic_table() {
    let (sender, mut peer, ended) = pair(&[]).await;
    let big = "v".repeat(1000);
    let fields = [
        (":status", "200"),
        ("x-custom", "some value"),
        ("x-big", big.as_str()),
    ];
    for id in [1, 3] {
        let call = tokio::spawn(get(sender.clone(), "/".into()));
        peer.next(kind::HEADERS).await;
        peer.head_split(id, &fields, 100).await;
        let resp = tokio::time::timeout(WAIT, call)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(resp.headers()["x-custom"], "some value");
        assert_eq!(resp.headers()["x-big"], big.as_str());
    }
    // 70 fields of 1000 bytes: above 64 KiB decoded.
    let call = tokio::spawn(get(sender.clone(), "/".into()));
    peer.next(kind::HEADERS).await;
    let names: Vec<String> = (0..70).map(|i| format!("x-f{i}")).collect();
    let mut huge: Vec<(&str, &str)> = vec![(":status", "200")];
    huge.extend(names.iter().map(|n| (n.as_str(), big.as_str())));
    peer.head_split(5, &huge, 16_000).await;
    let f = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(f.error.to_string().contains("64 KiB"), "{f:?}");
    let call = tokio::spawn(get(sender.clone(), "/".into()));
    peer.next(kind::HEADERS).await;
    peer.head_split(7, &fields, 100).await;
    let resp = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(resp.headers()["x-big"], big.as_str());
    // A PING between HEADERS and its CONTINUATION.
    let call = tokio::spawn(get(sender.clone(), "/".into()));
    peer.next(kind::HEADERS).await;
    peer.raw(frame_bytes(kind::HEADERS, 0, 9, &[0x88])).await;
    peer.raw(frame_bytes(kind::PING, 0, 0, &[0; 8])).await;
    let f = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(f.error.to_string().contains("PROTOCOL_ERROR"), "{f:?}");
    assert_eq!(peer.goaway_reason().await, Reason::PROTOCOL_ERROR);
    assert!(wait_for(|| ended.load(Ordering::SeqCst)).await);
}

/// The backend's windows, also below zero after a SETTINGS that shrinks the
/// initial window (RFC 9113 §6.9.2): not a byte beyond them is sent.
#[tokio::test]
async fn sends_follow_the_windows_even_below_zero() {
    let (sender, mut peer, _) = pair(&[(setting::INITIAL_WINDOW_SIZE, 5)]).await;
    let mut s = sender.clone();
    let body = Bytes::from_static(b"0123456789abcdefghij");
    let call = tokio::spawn(async move {
        send(
            &mut s,
            Request::post("http://t/").body(Full::new(body)).unwrap(),
        )
        .await
    });
    peer.next(kind::HEADERS).await;
    assert_eq!(&peer.next(kind::DATA).await.1[..], b"01234");
    peer.settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]).await; // window −5
    peer.window_update(1, 5).await; // 0
    peer.expect_quiet(kind::DATA).await;
    peer.window_update(1, 7).await;
    assert_eq!(&peer.next(kind::DATA).await.1[..], b"56789ab");
    peer.settings(&[(setting::INITIAL_WINDOW_SIZE, 100)]).await; // +100
    let (h, rest) = peer.next(kind::DATA).await;
    assert_eq!(&rest[..], b"cdefghij");
    assert_eq!(h.flags & 1, 1, "END_STREAM");
    peer.head(1, &[(":status", "204")], true).await;
    let resp = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 204);
}

/// A backend that sends beyond drover's stream window (nothing was read, no
/// WINDOW_UPDATE) has its stream reset with FLOW_CONTROL_ERROR; one that
/// grows drover's send window past 2^31 − 1 loses the connection.
#[tokio::test]
async fn overrunning_a_window_is_a_flow_control_error() {
    let (sender, mut peer, ended) = pair(&[]).await;
    let call = tokio::spawn(get(sender.clone(), "/".into()));
    peer.next(kind::HEADERS).await;
    peer.head(1, &[(":status", "200")], false).await;
    let chunk = vec![b'x'; 16 * 1024];
    for _ in 0..16 {
        peer.data(1, &chunk, false).await;
    }
    peer.data(1, b"!", false).await;
    let (h, p) = peer.next(kind::RST_STREAM).await;
    assert_eq!(
        (h.stream, &p[..]),
        (1, &Reason::FLOW_CONTROL_ERROR.0.to_be_bytes()[..])
    );
    let resp = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let e = resp.into_body().collect().await.unwrap_err();
    assert_eq!(e.reason(), Some(Reason::FLOW_CONTROL_ERROR));
    peer.window_update(0, (1 << 31) - 1).await;
    assert_eq!(peer.goaway_reason().await, Reason::FLOW_CONTROL_ERROR);
    assert!(wait_for(|| ended.load(Ordering::SeqCst)).await);
}

/// A response passed on gives its stream window back in one WINDOW_UPDATE
/// per half window (200 KiB in 10 KiB frames: one, at 130 KiB); none once
/// the stream has ended.
#[tokio::test]
async fn window_updates_are_batched() {
    let (sender, mut peer, _) = pair(&[]).await;
    let call = tokio::spawn(get(sender.clone(), "/".into()));
    peer.next(kind::HEADERS).await;
    peer.head(1, &[(":status", "200")], false).await;
    let resp = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let reader = tokio::spawn(resp.into_body().collect());
    let chunk = vec![b'x'; 10 * 1024];
    for _ in 0..20 {
        peer.data(1, &chunk, false).await;
    }
    let (h, p) = peer.next(kind::WINDOW_UPDATE).await;
    assert_eq!((h.stream, &p[..]), (1, &(130u32 * 1024).to_be_bytes()[..]));
    peer.data(1, b"", true).await;
    let body = tokio::time::timeout(WAIT, reader)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(body.to_bytes().len(), 200 * 1024);
    drop(sender);
    while let Some((h, _)) = peer.read_frame().await {
        assert!(
            h.kind != kind::WINDOW_UPDATE || h.stream != 1,
            "a second WINDOW_UPDATE"
        );
    }
}

/// At the backend's MAX_CONCURRENT_STREAMS a request waits for a stream to end.
#[tokio::test]
async fn a_request_waits_for_a_free_stream() {
    let (sender, mut peer, _) = pair(&[(setting::MAX_CONCURRENT_STREAMS, 1)]).await;
    let first = tokio::spawn(get(sender.clone(), "/1".into()));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = tokio::spawn(get(sender.clone(), "/2".into()));
    assert_eq!(peer.next(kind::HEADERS).await.0.stream, 1);
    peer.expect_quiet(kind::HEADERS).await;
    peer.head(1, &[(":status", "200")], true).await;
    assert_eq!(peer.next(kind::HEADERS).await.0.stream, 3);
    peer.head(3, &[(":status", "200")], true).await;
    for c in [first, second] {
        let r = tokio::time::timeout(WAIT, c).await.unwrap().unwrap();
        assert_eq!(r.unwrap().status(), 200);
    }
}
