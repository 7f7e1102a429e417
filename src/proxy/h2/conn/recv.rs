//! The receiving half of a client HTTP/2 connection: frames read and
//! checked against the connection's state (RFC 9113 §5, §6), request heads
//! opening streams, request bodies under our windows, resets and the budgets
//! against frames that do nothing.

use std::convert::Infallible;
use std::future::Future;

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, Request, Response};
use tokio::io::{AsyncRead, AsyncWrite};

use super::request::Decoded;
use super::{inq, response, Conn, End, In, Out, Stream, MAX_STREAMS, STREAM_WINDOW};
use crate::h2wire::frame::{self, Frame, FrameError, Head, Reason};
use crate::proxy::body::ProxyBody;
use crate::upstream::client_in::ClientIn;

impl<S, F, Fut> Conn<S, F, Fut>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(Request<ClientIn>) -> Fut,
    Fut: Future<Output = Result<Response<ProxyBody>, Infallible>>,
{
    pub(super) fn frames(&mut self, read: &mut BytesMut) -> Result<(), End> {
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

    pub(super) fn on_error(&mut self, e: FrameError) -> Result<(), End> {
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
    pub(super) fn reset(&mut self, id: u32, reason: Reason) {
        frame::write_rst(&mut self.out, id, reason);
        self.forget(id);
    }

    /// Forgets a stream: its request is cancelled, its body fails.
    pub(super) fn forget(&mut self, id: u32) {
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

    pub(super) fn idle_frame(&mut self) -> Result<(), FrameError> {
        self.idle_frames -= 1;
        if self.idle_frames < 0 {
            return Err(FrameError::Connection(
                Reason::ENHANCE_YOUR_CALM,
                "too many frames that do nothing",
            ));
        }
        Ok(())
    }

    pub(super) fn on_frame(&mut self, f: Frame<'_>) -> Result<(), FrameError> {
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
    pub(super) fn idle_check(&self, stream: u32) -> Result<(), FrameError> {
        // Even ids are ours, and we open none (no push): always idle.
        if stream > self.last_stream || stream.is_multiple_of(2) {
            return Err(FrameError::Connection(
                Reason::PROTOCOL_ERROR,
                "frame on an idle stream",
            ));
        }
        Ok(())
    }

    pub(super) fn on_headers(
        &mut self,
        id: u32,
        end_stream: bool,
        block: &[u8],
    ) -> Result<(), FrameError> {
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

    pub(super) fn on_data(
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
    pub(super) fn end_of_body(&mut self, id: u32) -> Result<(), FrameError> {
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
}
