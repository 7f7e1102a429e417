//! The client against raw backends that misbehave at the connection level:
//! PING floods not read back, garbage and forbidden frames, a first frame
//! that is not SETTINGS. Support in `tests_peer.rs`.

use super::tests_peer::*;
use super::*;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::h2wire::frame::{kind, Reason};

/// PINGs are answered with their payload; a backend flooding PINGs without
/// reading the answers is not read past a bounded output.
#[tokio::test]
async fn pings_are_answered_and_a_flood_stays_bounded() {
    let (sender, mut peer, _) = pair(&[]).await;
    peer.raw(frame_bytes(kind::PING, 0, 0, b"12345678")).await;
    let (h, p) = peer.next(kind::PING).await;
    assert_eq!((h.flags, &p[..]), (1, &b"12345678"[..]));
    let mut flood = Vec::new();
    for _ in 0..4096 {
        flood.extend_from_slice(&frame_bytes(kind::PING, 0, 0, b"abcdefgh"));
    }
    let (_r, mut w) = peer.sock.into_split();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        // Up to 64 MiB of PINGs, never reading the answers.
        for _ in 0..(64 << 20) / flood.len() {
            if w.write_all(&flood).await.is_err() {
                return;
            }
        }
    });
    let mut most = 0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        most = most.max(conn::lock(&sender.shared).out.len());
    }
    assert!(most < driver::READ_PAUSE + 64 * 1024, "{most} bytes queued");
    writer.abort();
}

/// Garbage and forbidden frames end the connection with the right GOAWAY,
/// fail what was in flight, and report the end.
#[tokio::test]
async fn garbage_ends_the_connection() {
    let cases: [(Vec<u8>, Reason); 6] = [
        (
            frame_bytes(kind::DATA, 0, 1, &vec![0; 16_385]),
            Reason::FRAME_SIZE_ERROR,
        ),
        (
            frame_bytes(kind::PUSH_PROMISE, 4, 1, &[0, 0, 0, 2, 0x88]),
            Reason::PROTOCOL_ERROR,
        ),
        (frame_bytes(kind::DATA, 1, 2, b"x"), Reason::PROTOCOL_ERROR),
        (
            frame_bytes(kind::HEADERS, 5, 1, &[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            Reason::COMPRESSION_ERROR,
        ),
        (
            frame_bytes(kind::RST_STREAM, 0, 9, &[0, 0, 0, 0]),
            Reason::PROTOCOL_ERROR,
        ),
        (
            b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
            Reason::FRAME_SIZE_ERROR,
        ),
    ];
    for (bytes, reason) in cases {
        let (sender, mut peer, ended) = pair(&[]).await;
        let call = tokio::spawn(get(sender.clone(), "/".into()));
        peer.next(kind::HEADERS).await;
        peer.raw(bytes.clone()).await;
        let f = tokio::time::timeout(WAIT, call)
            .await
            .unwrap()
            .unwrap()
            .unwrap_err();
        assert!(f.sent, "{f:?}");
        assert_eq!(peer.goaway_reason().await, reason, "{bytes:?}");
        assert!(wait_for(|| ended.load(Ordering::SeqCst)).await);
        assert!(sender.is_closed());
    }
}

/// The first frame must be SETTINGS.
#[tokio::test]
async fn a_backend_that_does_not_start_with_settings_is_refused() {
    let (sender, mut peer) = pair_raw().await;
    peer.raw(frame_bytes(kind::PING, 0, 0, &[0; 8])).await;
    assert_eq!(peer.goaway_reason().await, Reason::PROTOCOL_ERROR);
    assert!(wait_for(|| sender.is_closed()).await);
}
