//! One client HTTP/2 connection, served in one task: frames are read and
//! answered, each request's future (routing and forwarding, as on every
//! path) is polled from a `FuturesUnordered` in this task — no task per
//! stream — and response bodies are polled here and written as DATA under
//! the client's flow-control windows. Writes are gathered in one buffer and
//! written once per round.
//!
//! A request whose body has come whole with its head (in the same read) is
//! dispatched with that body (replayable, as on the native HTTP/1 path);
//! otherwise its body streams through [`H2In`], and the client gets window
//! back as the backend takes the bytes.
//!
//! Frames are read and checked in `recv.rs`, answers written in `send.rs`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::future::{abortable, AbortHandle, Abortable};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use http::{HeaderMap, Request, Response, Version};
use tokio::io::{AsyncRead, AsyncWrite};

use super::request;
use super::{response, Limits};
use crate::h2wire::frame::{self, Reason, Settings};
use crate::h2wire::stream_map::StreamMap;
use crate::proxy::body::ProxyBody;
use crate::upstream::client_in::ClientIn;
use crate::upstream::client_in_h2::{self as inq, H2In, InQueue};

mod recv;
mod send;

/// Concurrent streams a client may open (SETTINGS_MAX_CONCURRENT_STREAMS): 200.
pub const MAX_STREAMS: u32 = 200;
/// Request body bytes a client may send on a stream ahead of the backend: 1 MiB.
pub const STREAM_WINDOW: u32 = 1 << 20;
/// Request body bytes a client may send on the connection ahead of the backends: 2 MiB.
pub const CONN_WINDOW: u32 = 2 << 20;
/// Written bytes waiting for the socket above which no more is read or
/// produced until they are written: 256 KiB.
const OUT_HIGH: usize = 256 * 1024;
/// Streams a client may reset while they are being answered, beyond one per
/// completed stream (the "rapid reset" attack, CVE-2023-44487): 100.
const RESET_BUDGET: i64 = 100;
/// Frames that do nothing (empty DATA, PRIORITY, unknown types, PINGs,
/// SETTINGS) a client may send per completed stream, plus this many: 10,000.
const IDLE_FRAME_BUDGET: i64 = 10_000;

/// A request's future, tagged with its stream and cancellable.
type Dispatch<Fut> = Abortable<Tagged<Fut>>;

/// A request's future, boxed where it is made (it is large: moving it into
/// the `FuturesUnordered` unboxed copied it several times), with its stream.
struct Tagged<Fut> {
    id: u32,
    fut: Pin<Box<Fut>>,
}

impl<Fut: Future> Future for Tagged<Fut> {
    type Output = (u32, Fut::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.fut.as_mut().poll(cx).map(|out| (this.id, out))
    }
}

enum In {
    /// Not dispatched yet: DATA so far, and whether the stream ended.
    Early(Vec<Bytes>),
    /// Dispatched with a streamed body.
    Queue(inq::Shared),
    /// Dispatched with its whole body, or none.
    Whole,
}

enum Out {
    /// The request's future runs.
    Waiting(AbortHandle),
    /// Sending the body: a chunk taken but not yet sent (window).
    Body {
        body: Pin<Box<ProxyBody>>,
        held: Option<Bytes>,
        /// The held chunk is the body's last.
        last: bool,
    },
    Done,
}

struct Stream {
    /// The client may still send on it.
    recv_open: bool,
    /// What the client may still send before we give window back.
    recv_window: i64,
    /// `content-length`, and body bytes received.
    length: Option<u64>,
    got: u64,
    body: In,
    trailers: Option<HeaderMap>,
    out: Out,
    send_window: i64,
    head_request: bool,
    expects_continue: bool,
}

/// Why the connection ends.
enum End {
    /// The client went away, or writing failed: nothing more to send.
    Gone,
    /// A connection error: GOAWAY with this reason, then close.
    Error(Reason, &'static str),
}

pub(super) struct Conn<S, F, Fut: Future> {
    io: S,
    read: BytesMut,
    out: BytesMut,
    limits: Limits,
    dispatch: F,
    running: FuturesUnordered<Dispatch<Fut>>,
    streams: StreamMap<Stream>,
    /// Streams opened in this read, to dispatch once it has been processed.
    fresh: Vec<(u32, request::Head)>,
    dec: request::HeadDecoder,
    peer: Settings,
    preface_seen: bool,
    settings_seen: bool,
    /// A field block in CONTINUATION frames: stream, END_STREAM, bytes so far.
    partial: Option<(u32, bool, Vec<u8>)>,
    last_stream: u32,
    conn_recv: i64,
    /// Received bytes to give back on the connection.
    conn_credit: u32,
    conn_send: i64,
    /// GOAWAY sent (graceful): no new streams.
    closing: bool,
    resets: i64,
    idle_frames: i64,
    /// The connection is over: what is left in `out` is written, then it closes.
    finishing: bool,
}

impl<S, F, Fut> Conn<S, F, Fut>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(Request<ClientIn>) -> Fut,
    Fut: Future<Output = Result<Response<ProxyBody>, Infallible>>,
{
    pub(super) fn new(io: S, read: BytesMut, limits: Limits, dispatch: F) -> Self {
        let mut out = BytesMut::with_capacity(16 * 1024);
        frame::write_settings(
            &mut out,
            &[
                (frame::setting::MAX_CONCURRENT_STREAMS, MAX_STREAMS),
                (frame::setting::INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                (frame::setting::MAX_HEADER_LIST_SIZE, limits.max_head as u32),
            ],
        );
        frame::write_window_update(&mut out, 0, CONN_WINDOW - frame::DEFAULT_WINDOW);
        Conn {
            io,
            read,
            out,
            limits,
            dispatch,
            running: FuturesUnordered::new(),
            streams: StreamMap::default(),
            fresh: Vec::new(),
            dec: request::HeadDecoder::new(crate::h2wire::hpack::DEFAULT_TABLE_SIZE),
            peer: Settings::default(),
            preface_seen: false,
            settings_seen: false,
            partial: None,
            last_stream: 0,
            conn_recv: i64::from(CONN_WINDOW),
            conn_credit: 0,
            conn_send: i64::from(frame::DEFAULT_WINDOW),
            closing: false,
            resets: RESET_BUDGET,
            idle_frames: IDLE_FRAME_BUDGET,
            finishing: false,
        }
    }

    /// Whether the connection is over and only writes what it has left
    /// (the caller bounds how long that may take).
    pub(super) fn finishing(&self) -> bool {
        self.finishing
    }

    /// Whether no stream is open.
    pub(super) fn quiet(&self) -> bool {
        self.streams.is_empty() && self.fresh.is_empty()
    }

    /// Starts a graceful close: GOAWAY(NO_ERROR); open streams finish.
    pub(super) fn close_gracefully(&mut self) {
        if !self.closing {
            self.closing = true;
            frame::write_goaway(&mut self.out, self.last_stream, Reason::NO_ERROR, b"");
        }
    }

    /// Serves until the connection ends.
    pub(super) fn poll_serve(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.finishing {
            match self.poll_inner(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(End::Gone) => {}
                Poll::Ready(End::Error(reason, why)) => {
                    tracing::debug!(%reason, why, "closing a client HTTP/2 connection");
                    frame::write_goaway(&mut self.out, self.last_stream, reason, why.as_bytes());
                    self.abandon();
                }
            }
            self.finishing = true;
        }
        // What was answered (and the GOAWAY) goes out whole before the close.
        match self.poll_flush_out(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => {
                let _ = Pin::new(&mut self.io).poll_shutdown(cx);
                Poll::Ready(())
            }
        }
    }

    /// Drops every stream (their requests are cancelled: the client's).
    fn abandon(&mut self) {
        for (_, s) in self.streams.drain() {
            if let In::Queue(q) = &s.body {
                inq::lock(q).fail();
            }
        }
        self.running = FuturesUnordered::new();
        self.fresh.clear();
    }

    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        if !self.preface_seen && !self.read.is_empty() {
            // The bytes read before the hand-off (the preface, maybe more).
            if let Err(e) = self.on_bytes() {
                return Poll::Ready(e);
            }
        }
        loop {
            let mut again = false;
            if self.out.len() < OUT_HIGH {
                if self.read.capacity() - self.read.len() < 4096 {
                    self.read.reserve(16 * 1024);
                }
                match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        self.abandon();
                        return Poll::Ready(End::Gone);
                    }
                    Poll::Ready(Ok(_)) => {
                        if let Err(e) = self.on_bytes() {
                            return Poll::Ready(e);
                        }
                        again = true;
                    }
                    Poll::Pending => {}
                }
            }
            self.dispatch_fresh();
            while let Poll::Ready(Some(r)) = self.running.poll_next_unpin(cx) {
                if let Ok((id, Ok(resp))) = r {
                    self.respond(id, resp);
                }
            }
            self.give_back(cx);
            let blocked = self.pump(cx);
            match self.poll_flush_out(cx) {
                Poll::Ready(Err(())) => {
                    self.abandon();
                    self.out.clear();
                    return Poll::Ready(End::Gone);
                }
                Poll::Ready(Ok(())) if blocked => again = true,
                _ => {}
            }
            if self.closing && self.quiet() && self.out.is_empty() {
                let _ = Pin::new(&mut self.io).poll_shutdown(cx);
                return Poll::Ready(End::Gone);
            }
            if !again {
                return Poll::Pending;
            }
        }
    }

    fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        while !self.out.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.out) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Err(())),
                Poll::Ready(Ok(n)) => self.out.advance(n),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.out.capacity() > 4 * OUT_HIGH {
            self.out = BytesMut::with_capacity(16 * 1024);
        }
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(Err(_)) => Poll::Ready(Err(())),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Processes every whole frame in the read buffer.
    fn on_bytes(&mut self) -> Result<(), End> {
        if !self.preface_seen {
            let n = self.read.len().min(frame::PREFACE.len());
            if self.read.get(..n) != frame::PREFACE.get(..n) {
                return Err(End::Error(Reason::PROTOCOL_ERROR, "no HTTP/2 preface"));
            }
            if n < frame::PREFACE.len() {
                return Ok(());
            }
            self.read.advance(n);
            self.preface_seen = true;
        }
        // Taken out while frames borrow it (no copy: a BytesMut moves).
        let mut read = std::mem::take(&mut self.read);
        let r = self.frames(&mut read);
        self.read = read;
        r
    }

    /// Dispatches the streams opened by the frames just read.
    fn dispatch_fresh(&mut self) {
        for (id, head) in std::mem::take(&mut self.fresh) {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            let In::Early(chunks) = std::mem::replace(&mut s.body, In::Whole) else {
                continue;
            };
            let body = if !s.recv_open && s.trailers.is_none() {
                // Whole: given back to the client at once.
                let n: usize = chunks.iter().map(Bytes::len).sum();
                self.conn_credit = self.conn_credit.saturating_add(n as u32);
                ClientIn::Full(concat(chunks))
            } else {
                let mut q = InQueue::default();
                for c in chunks {
                    q.push(c);
                }
                if !s.recv_open {
                    q.end(s.trailers.take());
                }
                let q = Arc::new(Mutex::new(q));
                s.body = In::Queue(q.clone());
                ClientIn::H2(H2In::new(q, s.length))
            };
            let mut req = Request::new(body);
            *req.method_mut() = head.method;
            *req.uri_mut() = head.uri;
            *req.version_mut() = Version::HTTP_2;
            *req.headers_mut() = head.headers;
            let fut = Box::pin((self.dispatch)(req));
            let (fut, handle) = abortable(Tagged { id, fut });
            s.out = Out::Waiting(handle);
            self.running.push(fut);
        }
    }
}

/// One buffer of the chunks (no copy for one).
fn concat(mut chunks: Vec<Bytes>) -> Bytes {
    match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut b = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
            for c in chunks {
                b.extend_from_slice(&c);
            }
            b.freeze()
        }
    }
}
