//! What the driver does with the frames a backend sends (RFC 9113 §5, §6):
//! every byte may be crafted, so each frame is checked against the
//! connection's state before it changes anything; a fault is a stream error
//! (RST_STREAM, that stream fails) or a connection error ([`Fatal`]: GOAWAY,
//! every stream fails).

use bytes::{Bytes, BytesMut};
use http::StatusCode;

use super::conn::{wake, Conn};
use super::head::Fields;
use super::{MAX_BLOCK, MAX_BLOCK_FRAMES, MAX_HEADER_LIST};
use crate::h2wire::frame::{self, Frame, FrameError, Head, Reason, HEAD_LEN, MAX_WINDOW};
use crate::upstream::native::head::offset;

/// The largest frame payload drover takes: 16,384 bytes (the initial
/// SETTINGS_MAX_FRAME_SIZE, which drover does not raise).
pub(super) const MAX_FRAME: u32 = frame::DEFAULT_MAX_FRAME;

/// A connection error of drover's finding: the code for GOAWAY, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fatal(pub Reason, pub &'static str);

/// `part` of `whole` shared (no copy) when it is a slice of it, else copied.
fn sub(whole: &Bytes, part: &[u8]) -> Bytes {
    match offset(whole, part) {
        Some((at, len)) => whole.slice(at..at + len),
        None => Bytes::copy_from_slice(part),
    }
}

fn protocol(why: &'static str) -> Fatal {
    Fatal(Reason::PROTOCOL_ERROR, why)
}

impl Conn {
    /// Handles every whole frame at the start of `rbuf` (taking them off it);
    /// a partial frame stays, with room reserved for the rest.
    pub fn on_bytes(&mut self, rbuf: &mut BytesMut) -> Result<(), Fatal> {
        while self.closed.is_none() {
            let Some(head) = Head::parse(rbuf) else {
                return Ok(());
            };
            if head.len > MAX_FRAME {
                return Err(Fatal(
                    Reason::FRAME_SIZE_ERROR,
                    "frame above MAX_FRAME_SIZE",
                ));
            }
            let total = HEAD_LEN + head.len as usize;
            if rbuf.len() < total {
                rbuf.reserve(total - rbuf.len());
                return Ok(());
            }
            let whole = rbuf.split_to(total).freeze();
            let payload = whole.slice(HEAD_LEN..);
            self.on_frame(head, &payload)?;
        }
        Ok(())
    }

    fn on_frame(&mut self, head: Head, payload: &Bytes) -> Result<(), Fatal> {
        let frame = match frame::parse(head, payload) {
            Ok(f) => f,
            Err(FrameError::Connection(r, why)) => return Err(Fatal(r, why)),
            Err(FrameError::Stream(id, r, why)) => {
                if self.partial.is_some() {
                    return Err(protocol("frame inside a field block"));
                }
                self.check_opened(id)?;
                self.stream_error(id, r, why);
                return Ok(());
            }
        };
        if !self.got_settings && !matches!(frame, Frame::Settings { ack: false, .. }) {
            return Err(protocol("the backend's first frame is not SETTINGS"));
        }
        if let Some(p) = &self.partial {
            if !matches!(frame, Frame::Continuation { stream, .. } if stream == p.stream) {
                return Err(protocol("frame inside a field block"));
            }
        }
        match frame {
            Frame::Data {
                stream,
                end_stream,
                data,
                flow_len,
            } => self.on_data(stream, end_stream, sub(payload, data), flow_len),
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                block,
                ..
            } => {
                self.check_opened(stream)?;
                if end_headers {
                    self.on_block(stream, end_stream, sub(payload, block))
                } else {
                    if block.len() > MAX_BLOCK {
                        return Err(Fatal(Reason::ENHANCE_YOUR_CALM, "field block too large"));
                    }
                    self.partial = Some(super::conn::Partial {
                        stream,
                        end_stream,
                        block: BytesMut::from(block),
                        frames: 1,
                    });
                    Ok(())
                }
            }
            Frame::Continuation {
                end_headers, block, ..
            } => self.on_continuation(end_headers, block),
            Frame::Priority { .. } | Frame::Unknown { .. } => Ok(()),
            Frame::RstStream { stream, reason } => {
                self.check_opened(stream)?;
                let err = super::error::H2Error::new(super::error::Kind::Reset(reason), "");
                self.fail_stream(stream, err, None);
                Ok(())
            }
            Frame::Settings { ack, payload } => self.on_settings(ack, payload),
            Frame::PushPromise { .. } => Err(protocol("PUSH_PROMISE with push disabled")),
            Frame::Ping { ack, payload } => {
                if !ack {
                    frame::write_ping(&mut self.out, true, payload);
                }
                Ok(())
            }
            Frame::GoAway {
                last_stream,
                reason,
                debug,
            } => {
                self.on_goaway(last_stream, reason, debug);
                Ok(())
            }
            Frame::WindowUpdate { stream, increment } => self.on_window_update(stream, increment),
        }
    }

    /// A frame for stream `id` must be on a stream drover opened (odd, below
    /// the next id): else PROTOCOL_ERROR (§5.1.1; no push).
    fn check_opened(&self, id: u32) -> Result<(), Fatal> {
        if id.is_multiple_of(2) || id >= self.next_id {
            return Err(protocol("frame on a stream drover did not open"));
        }
        Ok(())
    }

    fn on_data(
        &mut self,
        id: u32,
        end_stream: bool,
        data: Bytes,
        flow_len: u32,
    ) -> Result<(), Fatal> {
        self.check_opened(id)?;
        let flow = i64::from(flow_len);
        if flow > self.recv_window {
            return Err(Fatal(
                Reason::FLOW_CONTROL_ERROR,
                "DATA beyond the connection window",
            ));
        }
        self.recv_window -= flow;
        let fault = match self.streams.get(&id) {
            None => {
                // A stream drover reset and forgot: its late frames only count.
                self.release_conn(u64::from(flow_len));
                return Ok(());
            }
            Some(s) if s.error.is_some() => {
                self.release_conn(u64::from(flow_len));
                return Ok(());
            }
            Some(s) if s.recv_end => Some((Reason::STREAM_CLOSED, "DATA after END_STREAM")),
            Some(s) if !s.got_head => {
                Some((Reason::PROTOCOL_ERROR, "DATA before the response head"))
            }
            Some(s) if flow > s.recv_window => {
                Some((Reason::FLOW_CONTROL_ERROR, "DATA beyond the stream window"))
            }
            Some(s) => {
                let received = s.received.saturating_add(data.len() as u64);
                match s.length {
                    Some(l) if received > l => {
                        Some((Reason::PROTOCOL_ERROR, "more DATA than content-length"))
                    }
                    Some(l) if end_stream && received != l => {
                        Some((Reason::PROTOCOL_ERROR, "less DATA than content-length"))
                    }
                    _ => None,
                }
            }
        };
        if let Some((reason, why)) = fault {
            self.release_conn(u64::from(flow_len));
            self.stream_error(id, reason, why);
            return Ok(());
        }
        let Some(slot) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        slot.recv_window -= flow;
        let len = data.len();
        slot.received = slot.received.saturating_add(len as u64);
        if len > 0 {
            slot.queued = slot.queued.saturating_add(len as u64);
            slot.data.push_back(data);
        }
        if end_stream {
            slot.recv_end = true;
        }
        if len > 0 || end_stream {
            wake(&mut slot.recv_waker);
        }
        // Padding is no one's to pass on: its window goes back now.
        let padding = flow_len.saturating_sub(len as u32);
        if padding > 0 {
            self.release(id, padding as usize);
        }
        if end_stream {
            self.maybe_close(id);
        }
        Ok(())
    }

    fn on_continuation(&mut self, end_headers: bool, block: &[u8]) -> Result<(), Fatal> {
        let Some(p) = &mut self.partial else {
            return Err(protocol("CONTINUATION without a field block"));
        };
        p.frames += 1;
        if p.block.len() + block.len() > MAX_BLOCK || p.frames > MAX_BLOCK_FRAMES {
            return Err(Fatal(Reason::ENHANCE_YOUR_CALM, "field block too large"));
        }
        p.block.extend_from_slice(block);
        if !end_headers {
            return Ok(());
        }
        match self.partial.take() {
            Some(p) => self.on_block(p.stream, p.end_stream, p.block.freeze()),
            None => Ok(()),
        }
    }

    /// A whole field block on stream `id`: the response head (1xx ones
    /// skipped), or the trailers; decoded in any case (the HPACK table must
    /// follow the backend's), dropped for a stream that has ended.
    fn on_block(&mut self, id: u32, end_stream: bool, block: Bytes) -> Result<(), Fatal> {
        enum Want {
            Nothing,
            Head,
            Trailers,
            Closed,
        }
        let want = match self.streams.get(&id) {
            None => Want::Nothing,
            Some(s) if s.error.is_some() => Want::Nothing,
            Some(s) if s.recv_end => Want::Closed,
            Some(s) if s.got_head => Want::Trailers,
            Some(_) => Want::Head,
        };
        let keep = matches!(want, Want::Head | Want::Trailers);
        let mut fields = Fields::new(&block, matches!(want, Want::Trailers));
        let decoded = self
            .decoder
            .decode(&block, MAX_HEADER_LIST as usize, |n, v, s| {
                if keep {
                    fields.field(n, v, s)
                }
            });
        let too_large = match decoded {
            Ok(()) => false,
            Err(e) if e.list_too_large() => true,
            Err(_) => return Err(Fatal(Reason::COMPRESSION_ERROR, "undecodable field block")),
        };
        let fault = match want {
            Want::Nothing => None,
            Want::Closed => Some("HEADERS after END_STREAM"),
            _ if too_large => Some("response head above 64 KiB"),
            _ => fields.bad,
        };
        if !keep || fault.is_some() {
            fields.discard();
            if let Some(why) = fault {
                let reason = match want {
                    Want::Closed => Reason::STREAM_CLOSED,
                    _ => Reason::PROTOCOL_ERROR,
                };
                self.stream_error(id, reason, why);
            }
            return Ok(());
        }
        if let Want::Trailers = want {
            self.on_trailers(id, end_stream, fields);
            return Ok(());
        }
        let Some(status) = fields.status else {
            fields.discard();
            self.stream_error(id, Reason::PROTOCOL_ERROR, "response head without :status");
            return Ok(());
        };
        if status.is_informational() {
            fields.discard();
            if status == StatusCode::SWITCHING_PROTOCOLS {
                self.stream_error(id, Reason::PROTOCOL_ERROR, "101 in HTTP/2");
            } else if end_stream {
                self.stream_error(
                    id,
                    Reason::PROTOCOL_ERROR,
                    "informational head ends the stream",
                );
            }
            return Ok(());
        }
        let Some(slot) = self.streams.get_mut(&id) else {
            fields.discard();
            return Ok(());
        };
        let checked = !slot.head_request
            && status != StatusCode::NO_CONTENT
            && status != StatusCode::NOT_MODIFIED;
        let length = fields.length.filter(|_| checked);
        if end_stream && length.is_some_and(|l| l > 0) {
            fields.discard();
            self.stream_error(id, Reason::PROTOCOL_ERROR, "content-length but no DATA");
            return Ok(());
        }
        slot.length = length;
        slot.got_head = true;
        slot.head = Some((status, fields.headers));
        slot.recv_end = end_stream;
        wake(&mut slot.recv_waker);
        if end_stream {
            self.maybe_close(id);
        }
        Ok(())
    }

    fn on_trailers(&mut self, id: u32, end_stream: bool, fields: Fields<'_>) {
        let Some(slot) = self.streams.get_mut(&id) else {
            return fields.discard();
        };
        let fault = if !end_stream {
            Some("trailers without END_STREAM")
        } else if slot.length.is_some_and(|l| l != slot.received) {
            Some("less DATA than content-length")
        } else {
            None
        };
        if let Some(why) = fault {
            fields.discard();
            return self.stream_error(id, Reason::PROTOCOL_ERROR, why);
        }
        slot.trailers = Some(fields.headers);
        slot.recv_end = true;
        wake(&mut slot.recv_waker);
        self.maybe_close(id);
    }

    fn on_settings(&mut self, ack: bool, payload: &[u8]) -> Result<(), Fatal> {
        if ack {
            return Ok(());
        }
        let before = self.peer;
        self.peer.apply(payload).map_err(|e| match e {
            FrameError::Connection(r, why) | FrameError::Stream(_, r, why) => Fatal(r, why),
        })?;
        self.got_settings = true;
        frame::write_settings_ack(&mut self.out);
        let delta =
            i64::from(self.peer.initial_window_size) - i64::from(before.initial_window_size);
        if delta != 0 {
            for slot in self.streams.values_mut().filter(|s| !s.closed) {
                slot.send_window += delta;
                if slot.send_window > i64::from(MAX_WINDOW) {
                    return Err(Fatal(
                        Reason::FLOW_CONTROL_ERROR,
                        "INITIAL_WINDOW_SIZE overflows a window",
                    ));
                }
                if delta > 0 && slot.blocked {
                    slot.blocked = false;
                    wake(&mut slot.send_waker);
                }
            }
        }
        // More streams may open now (or the first 100 were all that waited).
        for w in self.open_waiters.drain(..) {
            w.wake();
        }
        Ok(())
    }

    fn on_goaway(&mut self, last: u32, reason: Reason, detail: &[u8]) {
        let last = match self.goaway {
            Some((before, _)) => before.min(last),
            None => last,
        };
        self.goaway = Some((last, reason));
        tracing::debug!(
            last_stream = last,
            reason = %reason,
            detail = %String::from_utf8_lossy(detail.get(..128).unwrap_or(detail)),
            "upstream h2 GOAWAY"
        );
        let refused: Vec<u32> = self
            .streams
            .iter()
            .filter(|(&id, s)| id > last && !s.closed)
            .map(|(&id, _)| id)
            .collect();
        for id in refused {
            let kind = super::error::Kind::GoAway {
                reason,
                refused: true,
            };
            self.fail_stream(id, super::error::H2Error::new(kind, ""), None);
        }
        for w in self.open_waiters.drain(..) {
            w.wake();
        }
    }

    fn on_window_update(&mut self, id: u32, increment: u32) -> Result<(), Fatal> {
        if id == 0 {
            self.send_window += i64::from(increment);
            if self.send_window > i64::from(MAX_WINDOW) {
                return Err(Fatal(
                    Reason::FLOW_CONTROL_ERROR,
                    "connection window above 2^31-1",
                ));
            }
            for slot in self.streams.values_mut().filter(|s| s.blocked) {
                slot.blocked = false;
                wake(&mut slot.send_waker);
            }
            return Ok(());
        }
        self.check_opened(id)?;
        let Some(slot) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if slot.closed {
            return Ok(());
        }
        slot.send_window += i64::from(increment);
        if slot.send_window > i64::from(MAX_WINDOW) {
            self.stream_error(id, Reason::FLOW_CONTROL_ERROR, "stream window above 2^31-1");
            return Ok(());
        }
        if slot.blocked {
            slot.blocked = false;
            wake(&mut slot.send_waker);
        }
        Ok(())
    }
}
