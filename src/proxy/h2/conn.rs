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

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::future::{abortable, AbortHandle, Abortable};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use http::{HeaderMap, Method, Request, Response, Version};
use tokio::io::{AsyncRead, AsyncWrite};

use super::request::{self, Decoded};
use super::{response, Limits};
use crate::h2wire::frame::{self, Frame, FrameError, Head, Reason, Settings};
use crate::h2wire::stream_map::StreamMap;
use crate::proxy::body::ProxyBody;
use crate::upstream::client_in::ClientIn;
use crate::upstream::client_in_h2::{self as inq, H2In, InQueue};

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

    fn frames(&mut self, read: &mut BytesMut) -> Result<(), End> {
        while let Some(head) = Head::parse(read) {
            if head.len > frame::DEFAULT_MAX_FRAME {
                return Err(End::Error(
                    Reason::FRAME_SIZE_ERROR,
                    "frame larger than 16384 bytes",
                ));
            }
            let total = frame::HEAD_LEN + head.len as usize;
            if read.len() < total {
                read.reserve(total - read.len());
                break;
            }
            if !self.settings_seen {
                if head.kind != frame::kind::SETTINGS || head.flags & frame::flag::ACK != 0 {
                    return Err(End::Error(
                        Reason::PROTOCOL_ERROR,
                        "first frame not SETTINGS",
                    ));
                }
                self.settings_seen = true;
            }
            let r = if head.kind == frame::kind::DATA {
                // DATA is kept as a slice of the read buffer (no copy).
                let payload = read.split_to(total).freeze().slice(frame::HEAD_LEN..);
                match frame::parse(head, &payload) {
                    Ok(Frame::Data {
                        stream,
                        end_stream,
                        data,
                        flow_len,
                    }) => {
                        // `data` follows the pad length byte, if any.
                        let off = usize::from(head.flags & frame::flag::PADDED != 0);
                        let data = payload.slice(off..off + data.len());
                        self.on_data(stream, end_stream, data, flow_len)
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                }
            } else {
                let r = match frame::parse(
                    head,
                    read.get(frame::HEAD_LEN..total).unwrap_or_default(),
                ) {
                    Ok(f) => self.on_frame(f),
                    Err(e) => Err(e),
                };
                read.advance(total);
                r
            };
            if let Err(e) = r {
                self.on_error(e)?;
            }
        }
        Ok(())
    }

    fn on_error(&mut self, e: FrameError) -> Result<(), End> {
        match e {
            FrameError::Connection(r, why) => Err(End::Error(r, why)),
            FrameError::Stream(id, r, why) => {
                tracing::debug!(stream = id, reason = %r, why, "client HTTP/2 stream error");
                self.reset(id, r);
                Ok(())
            }
        }
    }

    /// Resets a stream from this side and forgets it.
    fn reset(&mut self, id: u32, reason: Reason) {
        frame::write_rst(&mut self.out, id, reason);
        self.forget(id);
    }

    /// Forgets a stream: its request is cancelled, its body fails.
    fn forget(&mut self, id: u32) {
        self.fresh.retain(|(f, _)| *f != id);
        if let Some(s) = self.streams.remove(&id) {
            if let Out::Waiting(h) = &s.out {
                h.abort();
            }
            if let In::Queue(q) = &s.body {
                inq::lock(q).fail();
            }
        }
    }

    fn idle_frame(&mut self) -> Result<(), FrameError> {
        self.idle_frames -= 1;
        if self.idle_frames < 0 {
            return Err(FrameError::Connection(
                Reason::ENHANCE_YOUR_CALM,
                "too many frames that do nothing",
            ));
        }
        Ok(())
    }

    fn on_frame(&mut self, f: Frame<'_>) -> Result<(), FrameError> {
        if let Some((id, _, _)) = &self.partial {
            match f {
                Frame::Continuation { stream, .. } if stream == *id => {}
                _ => {
                    return Err(FrameError::Connection(
                        Reason::PROTOCOL_ERROR,
                        "a field block was cut by another frame",
                    ))
                }
            }
        }
        match f {
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                block,
                ..
            } => {
                if end_headers {
                    self.on_headers(stream, end_stream, block)
                } else {
                    self.partial = Some((stream, end_stream, block.to_vec()));
                    Ok(())
                }
            }
            Frame::Continuation {
                end_headers, block, ..
            } => {
                let Some((stream, end_stream, mut buf)) = self.partial.take() else {
                    return Err(FrameError::Connection(
                        Reason::PROTOCOL_ERROR,
                        "CONTINUATION without HEADERS",
                    ));
                };
                buf.extend_from_slice(block);
                if buf.len() > 2 * self.limits.max_head + 16 * 1024 {
                    return Err(FrameError::Connection(
                        Reason::ENHANCE_YOUR_CALM,
                        "field block too large",
                    ));
                }
                if end_headers {
                    self.on_headers(stream, end_stream, &buf)
                } else {
                    self.partial = Some((stream, end_stream, buf));
                    Ok(())
                }
            }
            Frame::Settings { ack, payload } => {
                self.idle_frame()?;
                if ack {
                    return Ok(());
                }
                let before = self.peer.initial_window_size;
                self.peer.apply(payload)?;
                let delta = i64::from(self.peer.initial_window_size) - i64::from(before);
                if delta != 0 {
                    for s in self.streams.values_mut() {
                        s.send_window += delta;
                        if s.send_window > i64::from(frame::MAX_WINDOW) {
                            return Err(FrameError::Connection(
                                Reason::FLOW_CONTROL_ERROR,
                                "window above 2^31-1",
                            ));
                        }
                    }
                }
                frame::write_settings_ack(&mut self.out);
                Ok(())
            }
            Frame::Ping { ack, payload } => {
                self.idle_frame()?;
                if !ack {
                    frame::write_ping(&mut self.out, true, payload);
                }
                Ok(())
            }
            Frame::WindowUpdate {
                stream: 0,
                increment,
            } => {
                self.conn_send += i64::from(increment);
                if self.conn_send > i64::from(frame::MAX_WINDOW) {
                    return Err(FrameError::Connection(
                        Reason::FLOW_CONTROL_ERROR,
                        "connection window above 2^31-1",
                    ));
                }
                Ok(())
            }
            Frame::WindowUpdate { stream, increment } => {
                self.idle_check(stream)?;
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.send_window += i64::from(increment);
                    if s.send_window > i64::from(frame::MAX_WINDOW) {
                        return Err(FrameError::Stream(
                            stream,
                            Reason::FLOW_CONTROL_ERROR,
                            "stream window above 2^31-1",
                        ));
                    }
                }
                Ok(())
            }
            Frame::RstStream { stream, .. } => {
                self.idle_check(stream)?;
                if self.streams.contains_key(&stream) {
                    self.resets -= 1;
                    if self.resets < 0 {
                        return Err(FrameError::Connection(
                            Reason::ENHANCE_YOUR_CALM,
                            "too many streams reset",
                        ));
                    }
                    self.forget(stream);
                }
                Ok(())
            }
            Frame::GoAway { .. } => {
                // The client opens no more streams; the open ones finish.
                self.closing = true;
                Ok(())
            }
            Frame::PushPromise { .. } => Err(FrameError::Connection(
                Reason::PROTOCOL_ERROR,
                "PUSH_PROMISE from a client",
            )),
            Frame::Priority { .. } | Frame::Unknown { .. } => self.idle_frame(),
            Frame::Data { .. } => Ok(()),
        }
    }

    /// A frame for a stream the client never opened (§5.1: idle) is a connection error.
    fn idle_check(&self, stream: u32) -> Result<(), FrameError> {
        // Even ids are ours, and we open none (no push): always idle.
        if stream > self.last_stream || stream.is_multiple_of(2) {
            return Err(FrameError::Connection(
                Reason::PROTOCOL_ERROR,
                "frame on an idle stream",
            ));
        }
        Ok(())
    }

    fn on_headers(&mut self, id: u32, end_stream: bool, block: &[u8]) -> Result<(), FrameError> {
        let max = self.limits.max_head;
        if let Some(s) = self.streams.get_mut(&id) {
            // Trailers.
            let trailers = self.dec.decode_trailers(block, max).map_err(|_| {
                FrameError::Connection(Reason::COMPRESSION_ERROR, "bad field block")
            })?;
            if !s.recv_open || !end_stream {
                return Err(FrameError::Stream(
                    id,
                    Reason::PROTOCOL_ERROR,
                    "HEADERS after the head without END_STREAM",
                ));
            }
            let Decoded::Ok(t) = trailers else {
                return Err(FrameError::Stream(
                    id,
                    Reason::PROTOCOL_ERROR,
                    "bad trailers",
                ));
            };
            s.trailers = Some(t);
            return self.end_of_body(id);
        }
        if id.is_multiple_of(2) {
            return Err(FrameError::Connection(
                Reason::PROTOCOL_ERROR,
                "even stream id from a client",
            ));
        }
        if id <= self.last_stream {
            return Err(FrameError::Connection(
                Reason::STREAM_CLOSED,
                "HEADERS on a closed stream",
            ));
        }
        self.last_stream = id;
        let head = self
            .dec
            .decode(block, max)
            .map_err(|_| FrameError::Connection(Reason::COMPRESSION_ERROR, "bad field block"))?;
        if self.closing {
            frame::write_rst(&mut self.out, id, Reason::REFUSED_STREAM);
            return Ok(());
        }
        if self.streams.len() >= MAX_STREAMS as usize {
            return Err(FrameError::Stream(
                id,
                Reason::REFUSED_STREAM,
                "over MAX_CONCURRENT_STREAMS",
            ));
        }
        let head = match head {
            Decoded::Ok(h) => h,
            Decoded::Malformed(why) => {
                return Err(FrameError::Stream(id, Reason::PROTOCOL_ERROR, why))
            }
            Decoded::TooLarge => {
                response::status_only(&mut self.out, id, 431, true, self.peer.max_frame_size);
                if !end_stream {
                    frame::write_rst(&mut self.out, id, Reason::NO_ERROR);
                }
                return Ok(());
            }
        };
        if end_stream && head.content_length.is_some_and(|n| n != 0) {
            return Err(FrameError::Stream(
                id,
                Reason::PROTOCOL_ERROR,
                "content-length without a body",
            ));
        }
        self.streams.insert(
            id,
            Stream {
                recv_open: !end_stream,
                recv_window: i64::from(STREAM_WINDOW),
                length: head.content_length,
                got: 0,
                body: In::Early(Vec::new()),
                trailers: None,
                out: Out::Done,
                send_window: i64::from(self.peer.initial_window_size),
                head_request: head.method == Method::HEAD,
                expects_continue: head.expects_continue && !end_stream,
            },
        );
        self.fresh.push((id, head));
        Ok(())
    }

    fn on_data(
        &mut self,
        id: u32,
        end_stream: bool,
        data: Bytes,
        flow_len: u32,
    ) -> Result<(), FrameError> {
        self.conn_recv -= i64::from(flow_len);
        if self.conn_recv < 0 {
            return Err(FrameError::Connection(
                Reason::FLOW_CONTROL_ERROR,
                "DATA beyond the connection window",
            ));
        }
        // Padding is given back at once.
        let pad = flow_len.saturating_sub(data.len() as u32);
        self.conn_credit = self.conn_credit.saturating_add(pad);
        self.idle_check(id)?;
        if data.is_empty() && !end_stream {
            self.idle_frame()?;
        }
        let Some(s) = self.streams.get_mut(&id) else {
            // A stream already closed: its bytes are given back.
            self.conn_credit = self.conn_credit.saturating_add(data.len() as u32);
            return Err(FrameError::Stream(
                id,
                Reason::STREAM_CLOSED,
                "DATA on a closed stream",
            ));
        };
        if !s.recv_open {
            self.conn_credit = self.conn_credit.saturating_add(data.len() as u32);
            return Err(FrameError::Stream(
                id,
                Reason::STREAM_CLOSED,
                "DATA after END_STREAM",
            ));
        }
        s.recv_window -= i64::from(flow_len);
        if s.recv_window < 0 {
            return Err(FrameError::Stream(
                id,
                Reason::FLOW_CONTROL_ERROR,
                "DATA beyond the stream window",
            ));
        }
        s.got += data.len() as u64;
        if s.length.is_some_and(|n| s.got > n) {
            return Err(FrameError::Stream(
                id,
                Reason::PROTOCOL_ERROR,
                "more DATA than content-length",
            ));
        }
        match &mut s.body {
            In::Early(chunks) => {
                if !data.is_empty() {
                    chunks.push(data)
                }
            }
            In::Queue(q) => inq::lock(q).push(data),
            In::Whole => {}
        }
        if end_stream {
            return self.end_of_body(id);
        }
        Ok(())
    }

    /// The client's side of the stream ended (END_STREAM).
    fn end_of_body(&mut self, id: u32) -> Result<(), FrameError> {
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        s.recv_open = false;
        if s.length.is_some_and(|n| n != s.got) {
            return Err(FrameError::Stream(
                id,
                Reason::PROTOCOL_ERROR,
                "less DATA than content-length",
            ));
        }
        if let In::Queue(q) = &s.body {
            inq::lock(q).end(s.trailers.take());
        }
        if matches!(s.out, Out::Done) && !matches!(s.body, In::Early(_)) {
            self.streams.remove(&id);
        }
        Ok(())
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
