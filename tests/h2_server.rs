//! drover's own HTTP/2 server (`proxy::h2`, `server.http2_codec = "native"`)
//! against raw frames from a test client on a real socket: requests and
//! bodies, flow control, malformed heads (stream errors), protocol
//! violations (connection errors), the rapid-reset guard, 431, 100-continue,
//! graceful shutdown, and many streams from a real HTTP/2 client (reqwest).

mod common;

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use common::*;
use drover::h2wire::frame::{self, flag, kind, Frame, Head, Reason};
use drover::h2wire::hpack::{self, Decoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back on a stream.
#[derive(Debug, Default)]
struct Answer {
    fields: Vec<(String, String)>,
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
    reset: Option<Reason>,
    ended: bool,
}

impl Answer {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A client writing raw frames.
struct Raw {
    s: TcpStream,
    buf: BytesMut,
    dec: Decoder,
    /// GOAWAY received: last stream, reason.
    goaway: Option<(u32, Reason)>,
    /// Acknowledge SETTINGS and answer WINDOW_UPDATE for DATA automatically.
    auto_window: bool,
}

impl Raw {
    async fn connect(d: &Drover, settings: &[(u16, u32)]) -> Raw {
        let mut s = TcpStream::connect(d.proxy).await.unwrap();
        let mut b = BytesMut::new();
        b.put_slice(frame::PREFACE);
        frame::write_settings(&mut b, settings);
        s.write_all(&b).await.unwrap();
        Raw {
            s,
            buf: BytesMut::new(),
            dec: Decoder::new(4096),
            goaway: None,
            auto_window: true,
        }
    }

    async fn send(&mut self, b: &[u8]) {
        let _ = self.s.write_all(b).await;
    }

    /// The next frame, or `None` at the end of the connection (10 s at most).
    async fn next(&mut self) -> Option<(Head, Vec<u8>)> {
        loop {
            if let Some(h) = Head::parse(&self.buf) {
                let total = frame::HEAD_LEN + h.len as usize;
                if self.buf.len() >= total {
                    let f = self.buf.split_to(total);
                    return Some((h, f[frame::HEAD_LEN..].to_vec()));
                }
            }
            let r = tokio::time::timeout(Duration::from_secs(10), self.s.read_buf(&mut self.buf))
                .await
                .expect("drover answered within 10 s");
            match r {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads until stream `id` ends (or is reset, or the connection ends).
    async fn answer(&mut self, id: u32) -> Answer {
        let mut a = Answer::default();
        while let Some((h, p)) = self.next().await {
            let f = frame::parse(h, &p).unwrap();
            match f {
                Frame::Settings { ack: false, .. } => {
                    let mut b = BytesMut::new();
                    frame::write_settings_ack(&mut b);
                    self.send(&b).await;
                }
                Frame::GoAway {
                    last_stream,
                    reason,
                    ..
                } => self.goaway = Some((last_stream, reason)),
                Frame::Headers {
                    stream,
                    end_stream,
                    block,
                    ..
                } => {
                    let mut fields = Vec::new();
                    self.dec
                        .decode(block, 1 << 20, |n, v, _| {
                            fields.push((
                                String::from_utf8_lossy(n).into_owned(),
                                String::from_utf8_lossy(v).into_owned(),
                            ))
                        })
                        .unwrap();
                    if stream == id {
                        if a.fields.is_empty() || a.field(":status") == Some("100") {
                            a.fields = fields;
                        } else {
                            a.trailers = fields;
                        }
                        if end_stream {
                            a.ended = true;
                            return a;
                        }
                    }
                }
                Frame::Data {
                    stream,
                    end_stream,
                    data,
                    flow_len,
                } => {
                    if self.auto_window && flow_len > 0 {
                        let mut b = BytesMut::new();
                        frame::write_window_update(&mut b, 0, flow_len);
                        frame::write_window_update(&mut b, stream, flow_len);
                        self.send(&b).await;
                    }
                    if stream == id {
                        a.body.extend_from_slice(data);
                        if end_stream {
                            a.ended = true;
                            return a;
                        }
                    }
                }
                Frame::RstStream { stream, reason } if stream == id => {
                    a.reset = Some(reason);
                    return a;
                }
                _ => {}
            }
        }
        a
    }

    /// Reads until the connection ends; returns the GOAWAY seen, if any.
    async fn until_closed(&mut self) -> Option<(u32, Reason)> {
        while let Some((h, p)) = self.next().await {
            if let Ok(Frame::GoAway {
                last_stream,
                reason,
                ..
            }) = frame::parse(h, &p)
            {
                self.goaway = Some((last_stream, reason));
            }
        }
        self.goaway
    }
}

/// A HEADERS frame with these fields (END_HEADERS).
fn headers(stream: u32, fields: &[(&str, &str)], end_stream: bool) -> BytesMut {
    let mut b = BytesMut::new();
    let at = frame::begin_headers(&mut b);
    for (n, v) in fields {
        hpack::encode_field(&mut b, n.as_bytes(), v.as_bytes(), false);
    }
    frame::finish_headers(&mut b, at, stream, end_stream, frame::DEFAULT_MAX_FRAME);
    b
}

fn data(stream: u32, bytes: &[u8], end_stream: bool) -> BytesMut {
    let mut b = BytesMut::new();
    frame::write_data_head(&mut b, stream, bytes.len(), end_stream);
    b.put_slice(bytes);
    b
}

fn get(path: &str) -> Vec<(&str, &str)> {
    vec![
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "example.test"),
        (":path", path),
    ]
}

fn start() -> (Backend, Drover) {
    let b = Backend::start("b1");
    let d = Drover::start(&one_pool(&[b.addr], ""));
    (b, d)
}

#[tokio::test]
async fn requests_with_and_without_bodies_come_back_whole() {
    let (_b, d) = start();
    let mut c = Raw::connect(&d, &[]).await;
    c.send(&headers(1, &get("/bytes/100"), true)).await;
    let a = c.answer(1).await;
    assert_eq!(a.field(":status"), Some("200"), "{a:?}");
    assert_eq!(a.body.len(), 100);
    assert_eq!(a.field("content-length"), Some("100"));

    // A body in three DATA frames, one of them padded, the last one empty.
    let mut post = get("/echo");
    post[0] = (":method", "POST");
    post.push(("content-length", "10"));
    let mut b = headers(3, &post, false);
    b.extend_from_slice(&data(3, b"01234", false));
    // Padded: pad length 3, "567", 3 bytes of padding.
    frame::Head {
        len: 1 + 3 + 3,
        kind: kind::DATA,
        flags: flag::PADDED,
        stream: 3,
    }
    .write(&mut b);
    b.put_slice(b"\x03567\0\0\0");
    c.send(&b).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut b = data(3, b"89", false);
    b.extend_from_slice(&data(3, b"", true));
    c.send(&b).await;
    let a = c.answer(3).await;
    assert_eq!(a.field(":status"), Some("200"), "{a:?}");
    let doc: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(doc["body_bytes"], 10, "{doc}");
    assert_eq!(doc["method"], "POST");
    // The HTTP/1.1 backend got a Host from :authority.
    assert_eq!(doc["headers"]["host"], "example.test", "{doc}");
}

#[tokio::test]
async fn malformed_heads_reset_their_stream_and_the_connection_goes_on() {
    let (_b, d) = start();
    let mut c = Raw::connect(&d, &[]).await;
    let cases: Vec<Vec<(&str, &str)>> = vec![
        [get("/a"), vec![("X-Upper", "1")]].concat(),
        vec![(":method", "GET"), (":scheme", "http"), (":authority", "x")],
        [get("/a"), vec![("connection", "close")]].concat(),
        [get("/a"), vec![("te", "gzip")]].concat(),
        [vec![("accept", "*/*")], get("/a")].concat(),
        [get("/a"), vec![(":custom", "1")]].concat(),
        [get("/a"), vec![(":path", "/again")]].concat(),
        [get("/a"), vec![("content-length", "5")]].concat(),
        [get("/a"), vec![("x-bad", "a\u{1}b")]].concat(),
    ];
    let mut id = 1;
    for fields in &cases {
        c.send(&headers(id, fields, true)).await;
        let a = c.answer(id).await;
        assert_eq!(a.reset, Some(Reason::PROTOCOL_ERROR), "{fields:?}: {a:?}");
        id += 2;
    }
    c.send(&headers(id, &get("/bytes/5"), true)).await;
    let a = c.answer(id).await;
    assert_eq!(a.field(":status"), Some("200"), "{a:?}");
    assert_eq!(a.body.len(), 5);
}

/// Opens a connection, sends `bytes` after the preface and SETTINGS, and
/// returns the GOAWAY reason drover closed it with.
async fn goaway_after(d: &Drover, bytes: &[u8]) -> Option<Reason> {
    let mut c = Raw::connect(d, &[]).await;
    c.send(bytes).await;
    c.until_closed().await.map(|(_, r)| r)
}

#[tokio::test]
async fn protocol_violations_end_the_connection_with_goaway() {
    let (_b, d) = start();
    // An even stream id.
    assert_eq!(
        goaway_after(&d, &headers(2, &get("/"), true)).await,
        Some(Reason::PROTOCOL_ERROR)
    );
    // A field block cut by another frame.
    let mut b = BytesMut::new();
    let at = frame::begin_headers(&mut b);
    hpack::encode_field(&mut b, b":method", b"GET", false);
    frame::finish_headers(&mut b, at, 1, true, frame::DEFAULT_MAX_FRAME);
    b[4] &= !flag::END_HEADERS;
    frame::write_ping(&mut b, false, [0; 8]);
    assert_eq!(goaway_after(&d, &b).await, Some(Reason::PROTOCOL_ERROR));
    // A frame larger than 16 KiB.
    let big = data(1, &[0; 20_000], true);
    assert_eq!(goaway_after(&d, &big).await, Some(Reason::FRAME_SIZE_ERROR));
    // The connection window overflowing.
    let mut b = BytesMut::new();
    frame::write_window_update(&mut b, 0, frame::MAX_WINDOW);
    assert_eq!(goaway_after(&d, &b).await, Some(Reason::FLOW_CONTROL_ERROR));
    // DATA on a stream never opened.
    assert_eq!(
        goaway_after(&d, &data(5, b"x", true)).await,
        Some(Reason::PROTOCOL_ERROR)
    );
    // A field block that is not HPACK.
    let mut b = BytesMut::new();
    frame::Head {
        len: 2,
        kind: kind::HEADERS,
        flags: flag::END_HEADERS | flag::END_STREAM,
        stream: 1,
    }
    .write(&mut b);
    b.put_slice(&[0xff, 0xff]);
    assert_eq!(goaway_after(&d, &b).await, Some(Reason::COMPRESSION_ERROR));
    // The first frame is not SETTINGS.
    let mut s = TcpStream::connect(d.proxy).await.unwrap();
    let mut b = BytesMut::new();
    b.put_slice(frame::PREFACE);
    frame::write_ping(&mut b, false, [0; 8]);
    s.write_all(&b).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
    assert!(
        got.windows(1).count() > 0,
        "drover wrote nothing before closing"
    );
    // Still serving.
    let mut c = Raw::connect(&d, &[]).await;
    c.send(&headers(1, &get("/bytes/3"), true)).await;
    assert_eq!(c.answer(1).await.body.len(), 3);
}

#[tokio::test]
async fn a_body_longer_or_shorter_than_its_content_length_resets_the_stream() {
    let (_b, d) = start();
    let mut c = Raw::connect(&d, &[]).await;
    let mut post = get("/echo");
    post[0] = (":method", "POST");
    post.push(("content-length", "4"));
    let mut b = headers(1, &post, false);
    b.extend_from_slice(&data(1, b"12345", true));
    c.send(&b).await;
    assert_eq!(c.answer(1).await.reset, Some(Reason::PROTOCOL_ERROR));
    let mut b = headers(3, &post, false);
    b.extend_from_slice(&data(3, b"123", true));
    c.send(&b).await;
    assert_eq!(c.answer(3).await.reset, Some(Reason::PROTOCOL_ERROR));
}

#[tokio::test]
async fn a_client_with_a_small_window_gets_a_large_body_under_flow_control() {
    let (_b, d) = start();
    // 1000-byte stream windows and 16 KiB frames from a client that
    // acknowledges each DATA frame as it reads it.
    let mut c = Raw::connect(&d, &[(frame::setting::INITIAL_WINDOW_SIZE, 1000)]).await;
    c.send(&headers(1, &get("/bytes/300000"), true)).await;
    let a = c.answer(1).await;
    assert!(a.ended, "{:?}", a.reset);
    assert_eq!(a.body.len(), 300_000);
    // A window made smaller mid-way (negative) and opened again.
    let mut c = Raw::connect(&d, &[]).await;
    let mut b = BytesMut::new();
    frame::write_settings(&mut b, &[(frame::setting::INITIAL_WINDOW_SIZE, 0)]);
    b.extend_from_slice(&headers(1, &get("/bytes/50000"), true));
    c.send(&b).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut b = BytesMut::new();
    frame::write_settings(&mut b, &[(frame::setting::INITIAL_WINDOW_SIZE, 65_535)]);
    c.send(&b).await;
    let a = c.answer(1).await;
    assert_eq!(a.body.len(), 50_000);
}

#[tokio::test]
async fn rapid_resets_end_the_connection_with_enhance_your_calm() {
    let (b, d) = start();
    let mut c = Raw::connect(&d, &[]).await;
    let mut buf = BytesMut::new();
    for i in 0..400u32 {
        let id = 2 * i + 1;
        buf.extend_from_slice(&headers(id, &get("/delay/2000"), true));
        frame::write_rst(&mut buf, id, Reason::CANCEL);
    }
    c.send(&buf).await;
    assert_eq!(
        c.until_closed().await.map(|g| g.1),
        Some(Reason::ENHANCE_YOUR_CALM)
    );
    // Other clients are served.
    let mut c = Raw::connect(&d, &[]).await;
    c.send(&headers(1, &get("/bytes/1"), true)).await;
    assert_eq!(c.answer(1).await.field(":status"), Some("200"));
    drop(b);
}

#[tokio::test]
async fn a_head_larger_than_max_header_bytes_is_answered_431() {
    let b = Backend::start("b1");
    let cfg = one_pool(&[b.addr], "").replace("[server]\n", "[server]\nmax_header_bytes = 8192\n");
    let d = Drover::start(&cfg);
    let mut c = Raw::connect(&d, &[]).await;
    let long = "v".repeat(6000);
    let fields = [
        get("/"),
        vec![("x-a", long.as_str()), ("x-b", long.as_str())],
    ]
    .concat();
    c.send(&headers(1, &fields, true)).await;
    let a = c.answer(1).await;
    assert_eq!(a.field(":status"), Some("431"), "{a:?}");
    // The HPACK state stayed in step: the next request on the connection works.
    c.send(&headers(3, &get("/bytes/2"), true)).await;
    assert_eq!(c.answer(3).await.field(":status"), Some("200"));
}

#[tokio::test]
async fn expect_100_continue_is_answered_when_the_body_is_wanted() {
    let (_b, d) = start();
    let mut c = Raw::connect(&d, &[]).await;
    let mut post = get("/echo");
    post[0] = (":method", "POST");
    post.push(("content-length", "3"));
    post.push(("expect", "100-continue"));
    c.send(&headers(1, &post, false)).await;
    // The interim head comes before any body was sent.
    let (h, p) = c.next().await.unwrap();
    let mut first = (h, p);
    while first.0.kind != kind::HEADERS {
        first = c.next().await.unwrap();
    }
    let mut fields = Vec::new();
    c.dec
        .decode(&first.1, 1 << 16, |n, v, _| {
            fields.push((n.to_vec(), v.to_vec()))
        })
        .unwrap();
    assert_eq!(fields, vec![(b":status".to_vec(), b"100".to_vec())]);
    c.send(&data(1, b"abc", true)).await;
    let a = c.answer(1).await;
    assert_eq!(a.field(":status"), Some("200"), "{a:?}");
}

#[tokio::test]
async fn shutdown_sends_goaway_and_finishes_open_streams() {
    let (_b, d) = start();
    let mut c = Raw::connect(&d, &[]).await;
    c.send(&headers(1, &get("/delay/1500"), true)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.proc.signal("TERM");
    let a = c.answer(1).await;
    assert_eq!(a.field(":status"), Some("200"), "{a:?}");
    assert!(a.ended);
    assert_eq!(c.goaway.map(|g| g.1), Some(Reason::NO_ERROR));
}

#[tokio::test]
async fn many_streams_from_a_real_client_come_back_intact() {
    let (_b, d) = start();
    let c = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let futs = (0..300usize).map(|i| {
        let (c, url) = (c.clone(), d.url("/echo"));
        async move {
            let body = vec![(i % 251) as u8; i * 997 % 200_000];
            let want = body.len();
            let r = c.post(url).body(body).send().await.unwrap();
            assert_eq!(r.version(), reqwest::Version::HTTP_2);
            let doc: serde_json::Value = r.json().await.unwrap();
            assert_eq!(doc["body_bytes"], want, "{doc}");
        }
    });
    futures_util::future::join_all(futs).await;
    let big = c.get(d.url("/bytes/3000000")).send().await.unwrap();
    assert_eq!(big.bytes().await.unwrap().len(), 3_000_000);
}

#[tokio::test]
async fn the_kill_switch_serves_http2_with_hyper() {
    let b = Backend::start("b1");
    let cfg = one_pool(&[b.addr], "").replace("[server]\n", "[server]\nhttp2_codec = \"hyper\"\n");
    let d = Drover::start(&cfg);
    let mut c = Raw::connect(&d, &[]).await;
    c.send(&headers(
        1,
        &[get("/a"), vec![("connection", "close")]].concat(),
        true,
    ))
    .await;
    // hyper's server (the h2 crate) resets it too; the connection goes on.
    assert!(c.answer(1).await.reset.is_some());
    c.send(&headers(3, &get("/bytes/7"), true)).await;
    assert_eq!(c.answer(3).await.body.len(), 7);
}
