//! A hand-written HTTP/2 backend for tests: it accepts one connection from
//! the client, checks the preface, and writes whatever frames a test asks
//! (with `h2wire`'s writers and an HPACK encoder that uses the dynamic
//! table and Huffman coding), reading the client's frames as they come.

use super::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{Request, Response};
use http_body_util::Empty;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::h2wire::frame::{self, kind, Head, Reason, HEAD_LEN, PREFACE};
use crate::h2wire::hpack::IndexingEncoder;

pub(super) const WAIT: Duration = Duration::from_secs(10);

pub(super) struct Peer {
    pub sock: TcpStream,
    buf: BytesMut,
    enc: IndexingEncoder,
}

/// One frame's bytes.
pub(super) fn frame_bytes(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    Head {
        len: payload.len() as u32,
        kind,
        flags,
        stream,
    }
    .write(&mut b);
    b.put_slice(payload);
    b.to_vec()
}

/// A client connected to a raw backend that has read the preface and sent
/// nothing yet.
pub(super) async fn pair_raw() -> (Sender, Peer) {
    let (s, p, _) = connect().await;
    (s, p)
}

async fn connect() -> (Sender, Peer, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let ended = Arc::new(AtomicBool::new(false));
    let flag = ended.clone();
    let sock = TcpStream::connect(addr).await.unwrap();
    let sender = handshake(sock, addr, move || flag.store(true, Ordering::SeqCst))
        .await
        .unwrap();
    let (mut sock, _) = l.accept().await.unwrap();
    let mut preface = [0u8; 24];
    sock.read_exact(&mut preface).await.unwrap();
    assert_eq!(&preface, PREFACE);
    let peer = Peer {
        sock,
        buf: BytesMut::new(),
        enc: IndexingEncoder::new(4096),
    };
    (sender, peer, ended)
}

/// A client connected to a raw backend that sent its SETTINGS (`settings`)
/// and has their acknowledgement (so the client applied them); whether the
/// client saw the connection end.
pub(super) async fn pair(settings: &[(u16, u32)]) -> (Sender, Peer, Arc<AtomicBool>) {
    let (sender, mut peer, ended) = connect().await;
    peer.settings(settings).await;
    loop {
        let (h, _) = peer.next(kind::SETTINGS).await;
        if h.flags & frame::flag::ACK != 0 {
            break;
        }
    }
    (sender, peer, ended)
}

/// A GET of `path` on a clone of `sender`.
pub(super) async fn get(
    sender: Sender,
    path: String,
) -> Result<Response<RespBody>, Failed<Empty<Bytes>>> {
    let mut s = sender;
    let req = Request::get(format!("http://t.local{path}"))
        .body(Empty::new())
        .unwrap();
    send(&mut s, req).await
}

/// Polls `cond` for up to 5 s.
pub(super) async fn wait_for(cond: impl Fn() -> bool) -> bool {
    for _ in 0..250 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

impl Peer {
    pub async fn raw(&mut self, bytes: Vec<u8>) {
        self.sock.write_all(&bytes).await.unwrap();
    }

    pub async fn settings(&mut self, settings: &[(u16, u32)]) {
        let mut b = BytesMut::new();
        frame::write_settings(&mut b, settings);
        self.raw(b.to_vec()).await;
    }

    pub async fn goaway(&mut self, last: u32, reason: Reason) {
        let mut b = BytesMut::new();
        frame::write_goaway(&mut b, last, reason, b"test");
        self.raw(b.to_vec()).await;
    }

    pub async fn window_update(&mut self, stream: u32, inc: u32) {
        let mut b = BytesMut::new();
        frame::write_window_update(&mut b, stream, inc);
        self.raw(b.to_vec()).await;
    }

    pub async fn data(&mut self, stream: u32, data: &[u8], end: bool) {
        let mut b = BytesMut::new();
        frame::write_data_head(&mut b, stream, data.len(), end);
        b.put_slice(data);
        self.raw(b.to_vec()).await;
    }

    fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let fields: Vec<(&[u8], &[u8], bool)> = fields
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes(), false))
            .collect();
        let mut block = Vec::new();
        self.enc.encode(&fields, &mut block);
        block
    }

    /// A head (or trailers) in one HEADERS frame.
    pub async fn head(&mut self, stream: u32, fields: &[(&str, &str)], end: bool) {
        let block = self.block(fields);
        let flags = frame::flag::END_HEADERS | if end { frame::flag::END_STREAM } else { 0 };
        self.raw(frame_bytes(kind::HEADERS, flags, stream, &block))
            .await;
    }

    /// A head (ending the stream) in HEADERS + CONTINUATIONs of `piece` bytes.
    pub async fn head_split(&mut self, stream: u32, fields: &[(&str, &str)], piece: usize) {
        let block = self.block(fields);
        let mut out = Vec::new();
        let pieces: Vec<&[u8]> = block.chunks(piece).collect();
        for (i, p) in pieces.iter().enumerate() {
            let last = i + 1 == pieces.len();
            let mut flags = if last { frame::flag::END_HEADERS } else { 0 };
            let kind = if i == 0 {
                flags |= frame::flag::END_STREAM;
                kind::HEADERS
            } else {
                kind::CONTINUATION
            };
            out.extend_from_slice(&frame_bytes(kind, flags, stream, p));
        }
        self.raw(out).await;
    }

    /// The client's next frame, or `None` at the end of the connection.
    pub async fn read_frame(&mut self) -> Option<(Head, Bytes)> {
        loop {
            if let Some(h) = Head::parse(&self.buf) {
                let total = HEAD_LEN + h.len as usize;
                if self.buf.len() >= total {
                    let f = self.buf.split_to(total).freeze();
                    return Some((h, f.slice(HEAD_LEN..)));
                }
            }
            match tokio::time::timeout(WAIT, self.sock.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => return None,
                Err(_) => panic!("the client wrote nothing for {WAIT:?}"),
            }
        }
    }

    /// The client's next frame of `kind` (others skipped).
    pub async fn next(&mut self, want: u8) -> (Head, Bytes) {
        loop {
            let (h, p) = self.read_frame().await.expect("a frame");
            if h.kind == want {
                return (h, p);
            }
        }
    }

    /// No frame of `kind` from the client for 150 ms.
    pub async fn expect_quiet(&mut self, want: u8) {
        let quiet = tokio::time::timeout(Duration::from_millis(150), async {
            loop {
                let (h, _) = self.read_frame().await.expect("a frame");
                assert_ne!(h.kind, want, "a frame of type {want} came");
            }
        });
        let _ = quiet.await;
    }

    /// The reason of the client's GOAWAY.
    pub async fn goaway_reason(&mut self) -> Reason {
        let (_, p) = self.next(kind::GOAWAY).await;
        Reason(u32::from_be_bytes(p[4..8].try_into().unwrap()))
    }

    /// The client closes the connection (after a GOAWAY or not).
    pub async fn expect_eof(&mut self) {
        while self.read_frame().await.is_some() {}
    }
}
