//! drover's own HTTP/2 server (`proxy::h2`) under hostile bytes from a
//! client: whatever frames a client sends on one connection.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::Response;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::h2wire::frame::{self, kind, setting, Frame, Head};
use crate::h2wire::hpack::{Decoder, DEFAULT_TABLE_SIZE};
use crate::proxy::body::ProxyBody;
use crate::proxy::conn_activity::ConnActivity;
use crate::proxy::h2::{serve, Limits};

/// The largest response body the handler sends: 300,000 bytes.
const MAX_RESPONSE: usize = 300_000;

/// Plays `bytes` (after a selector byte) as everything a client sends on one
/// connection: bit 0 clear puts the preface and an empty SETTINGS first; the
/// other bits pick where the bytes are split in two writes (so request
/// bodies also arrive after their dispatch, through the streamed path). The
/// handler reads each request body and answers with a body whose length
/// follows the path and the body's. Invariants: no panic; the connection
/// ends once the client's bytes do; what drover wrote is whole frames, its
/// SETTINGS first; every field block decodes; HEADERS and DATA go on odd
/// streams the client opened, RST_STREAM on streams it named; DATA frames fit the frame size the client
/// allowed, and all DATA fits the connection window the client gave.
pub fn h2_server(bytes: &[u8]) {
    let Some((&selector, rest)) = bytes.split_first() else {
        return;
    };
    let mut input = Vec::with_capacity(rest.len() + 33);
    if selector & 1 == 0 {
        input.extend_from_slice(frame::PREFACE);
        input.extend_from_slice(&[0, 0, 0, kind::SETTINGS, 0, 0, 0, 0, 0]);
    }
    input.extend_from_slice(rest);
    let split = usize::from(selector >> 1) * input.len() / 128;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let out = rt.block_on(connection(&input, split.min(input.len())));
    check_output(&input, &out);
}

async fn connection(input: &[u8], split: usize) -> Vec<u8> {
    let (server, client) = tokio::io::duplex(1 << 16);
    let limits = Limits {
        max_head: 8192,
        idle: Duration::from_secs(60),
        head: Duration::from_secs(10),
    };
    let activity = Arc::new(ConnActivity::new(Instant::now()));
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let act = activity.clone();
    let serving = serve(server, BytesMut::new(), limits, activity, shutdown, |req| {
        act.begin();
        let act = act.clone();
        async move {
            let (parts, body) = req.into_parts();
            let got = match body.collect().await {
                Ok(b) => b.to_bytes().len(),
                Err(_) => 0,
            };
            let len = (parts.uri.path().len() * 4099 + got) % MAX_RESPONSE;
            let mut resp = Response::new(ProxyBody::full(vec![b'r'; len], None));
            resp.body_mut().on_end(act);
            Ok::<_, Infallible>(resp)
        }
    });
    let (mut rd, mut wr) = tokio::io::split(client);
    let client_side = async move {
        let (first, second) = input.split_at(split);
        let _ = wr.write_all(first).await;
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        let _ = wr.write_all(second).await;
        let _ = wr.shutdown().await;
    };
    let reading = async move {
        let mut out = Vec::new();
        let _ = rd.read_to_end(&mut out).await;
        out
    };
    let all = async { tokio::join!(serving, client_side, reading).2 };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("the connection ends after the client's bytes")
}

/// What the client allowed, read from its frames (an upper bound: frames
/// after one that broke the connection count too).
struct Allowed {
    max_frame: u32,
    conn_window: u64,
    /// Streams the client sent HEADERS on.
    opened: HashSet<u32>,
    /// Streams any client frame named.
    named: HashSet<u32>,
}

fn allowed(input: &[u8]) -> Allowed {
    let mut a = Allowed {
        max_frame: frame::DEFAULT_MAX_FRAME,
        conn_window: u64::from(frame::DEFAULT_WINDOW),
        opened: HashSet::new(),
        named: HashSet::new(),
    };
    let mut rest = input.strip_prefix(&frame::PREFACE[..]).unwrap_or(input);
    while let Some(h) = Head::parse(rest) {
        let end = frame::HEAD_LEN + h.len as usize;
        let Some(payload) = rest.get(frame::HEAD_LEN..end) else {
            break;
        };
        a.named.insert(h.stream);
        match h.kind {
            kind::HEADERS => {
                a.opened.insert(h.stream);
            }
            kind::WINDOW_UPDATE if h.stream == 0 => {
                if let Ok(Frame::WindowUpdate { increment, .. }) = frame::parse(h, payload) {
                    a.conn_window += u64::from(increment);
                }
            }
            kind::SETTINGS => {
                for s in payload.chunks_exact(6) {
                    if u16::from_be_bytes([s[0], s[1]]) == setting::MAX_FRAME_SIZE {
                        let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
                        a.max_frame = a.max_frame.max(v.min(frame::MAX_FRAME_LIMIT));
                    }
                }
            }
            _ => {}
        }
        rest = &rest[end..];
    }
    a
}

fn check_output(input: &[u8], out: &[u8]) {
    let a = allowed(input);
    let mut dec = Decoder::new(DEFAULT_TABLE_SIZE);
    let mut block: Vec<u8> = Vec::new();
    let mut data_sent = 0u64;
    let mut rest = out;
    let mut first = true;
    while !rest.is_empty() {
        let h = Head::parse(rest).expect("a whole frame head");
        let end = frame::HEAD_LEN + h.len as usize;
        let payload = rest.get(frame::HEAD_LEN..end).expect("a whole frame");
        rest = &rest[end..];
        if first {
            assert_eq!(h.kind, kind::SETTINGS, "SETTINGS first");
            first = false;
        }
        let f = frame::parse(h, payload).unwrap_or_else(|e| panic!("drover wrote {h:?}: {e}"));
        let stream = match f {
            Frame::Headers {
                stream,
                end_headers,
                block: b,
                ..
            }
            | Frame::Continuation {
                stream,
                end_headers,
                block: b,
            } => {
                block.extend_from_slice(b);
                if end_headers {
                    dec.decode(&block, usize::MAX, |_, _, _| {})
                        .expect("drover's field block decodes");
                    block.clear();
                }
                stream
            }
            Frame::Data {
                stream, flow_len, ..
            } => {
                assert!(h.len <= a.max_frame, "DATA of {} bytes", h.len);
                data_sent += u64::from(flow_len);
                stream
            }
            Frame::RstStream { stream, .. } => {
                assert!(
                    a.named.contains(&stream),
                    "RST_STREAM on stream {stream} the client never named"
                );
                continue;
            }
            _ => continue,
        };
        assert!(
            stream % 2 == 1 && a.opened.contains(&stream),
            "an answer on stream {stream} the client did not open"
        );
    }
    assert!(
        data_sent <= a.conn_window,
        "{data_sent} bytes of DATA in a window of {}",
        a.conn_window
    );
}
