//! HTTP/2 frames (RFC 9113 §4, §6): the 9-byte frame head, each frame type's
//! payload read into a [`Frame`] that borrows the payload, the checks §6
//! makes on lengths, stream ids and flags, SETTINGS, and the writers.
//!
//! Reading never panics: every length comes from the peer and is checked
//! before it is used ([`parse`] is fuzzed by `h2_frames`).

use bytes::{BufMut, BytesMut};

/// The client connection preface (RFC 9113 §3.4), 24 bytes.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A frame head: 9 bytes.
pub const HEAD_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE's initial value and least allowed: 16,384 bytes.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
/// SETTINGS_MAX_FRAME_SIZE's largest allowed value: 2^24 − 1 bytes.
pub const MAX_FRAME_LIMIT: u32 = (1 << 24) - 1;
/// The initial flow-control window of a stream and a connection: 65,535 bytes.
pub const DEFAULT_WINDOW: u32 = 65_535;
/// The largest flow-control window: 2^31 − 1 bytes.
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

/// Frame flags (§6): which apply depends on the type.
pub mod flag {
    /// DATA, HEADERS: the last frame of the stream's side.
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: an acknowledgement.
    pub const ACK: u8 = 0x1;
    /// HEADERS, PUSH_PROMISE, CONTINUATION: the field block ends here.
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS, PUSH_PROMISE: a pad length byte and padding.
    pub const PADDED: u8 = 0x8;
    /// HEADERS: a priority block (5 bytes) precedes the field block.
    pub const PRIORITY: u8 = 0x20;
}

/// Frame types (§6, §11.2).
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// SETTINGS identifiers (§6.5.2, RFC 8441 §3).
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    pub const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;
}

/// An error code (§7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reason(pub u32);

impl Reason {
    pub const NO_ERROR: Reason = Reason(0x0);
    pub const PROTOCOL_ERROR: Reason = Reason(0x1);
    pub const INTERNAL_ERROR: Reason = Reason(0x2);
    pub const FLOW_CONTROL_ERROR: Reason = Reason(0x3);
    pub const SETTINGS_TIMEOUT: Reason = Reason(0x4);
    pub const STREAM_CLOSED: Reason = Reason(0x5);
    pub const FRAME_SIZE_ERROR: Reason = Reason(0x6);
    pub const REFUSED_STREAM: Reason = Reason(0x7);
    pub const CANCEL: Reason = Reason(0x8);
    pub const COMPRESSION_ERROR: Reason = Reason(0x9);
    pub const CONNECT_ERROR: Reason = Reason(0xa);
    pub const ENHANCE_YOUR_CALM: Reason = Reason(0xb);
    pub const INADEQUATE_SECURITY: Reason = Reason(0xc);
    pub const HTTP_1_1_REQUIRED: Reason = Reason(0xd);

    /// The code's name (§7), or "UNKNOWN" for one this side does not know.
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 14] = [
            "NO_ERROR",
            "PROTOCOL_ERROR",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "SETTINGS_TIMEOUT",
            "STREAM_CLOSED",
            "FRAME_SIZE_ERROR",
            "REFUSED_STREAM",
            "CANCEL",
            "COMPRESSION_ERROR",
            "CONNECT_ERROR",
            "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY",
            "HTTP_1_1_REQUIRED",
        ];
        usize::try_from(self.0)
            .ok()
            .and_then(|i| NAMES.get(i))
            .copied()
            .unwrap_or("UNKNOWN")
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:#x})", self.name(), self.0)
    }
}

/// What a frame that breaks §6 is (§5.4): an error of the whole connection
/// (answered with GOAWAY) or of one stream (answered with RST_STREAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    Connection(Reason, &'static str),
    Stream(u32, Reason, &'static str),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Connection(r, why) => write!(f, "connection error {r}: {why}"),
            FrameError::Stream(s, r, why) => write!(f, "stream {s} error {r}: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

fn conn(r: Reason, why: &'static str) -> FrameError {
    FrameError::Connection(r, why)
}

/// A frame head (§4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Payload length, bytes (24 bits).
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    /// Stream id (31 bits; the reserved bit is dropped).
    pub stream: u32,
}

impl Head {
    /// The head at the start of `b`, or `None` while fewer than 9 bytes are there.
    pub fn parse(b: &[u8]) -> Option<Head> {
        let h: &[u8; HEAD_LEN] = b.get(..HEAD_LEN)?.try_into().ok()?;
        Some(Head {
            len: u32::from_be_bytes([0, h[0], h[1], h[2]]),
            kind: h[3],
            flags: h[4],
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & MAX_WINDOW,
        })
    }

    /// Appends the 9 bytes (the length is cut to 24 bits, the id to 31).
    pub fn write(self, dst: &mut BytesMut) {
        dst.put_slice(&self.to_bytes());
    }

    /// The 9 bytes (the length cut to 24 bits, the id to 31).
    pub fn to_bytes(self) -> [u8; HEAD_LEN] {
        let [_, l0, l1, l2] = (self.len & MAX_FRAME_LIMIT).to_be_bytes();
        let [s0, s1, s2, s3] = (self.stream & MAX_WINDOW).to_be_bytes();
        [l0, l1, l2, self.kind, self.flags, s0, s1, s2, s3]
    }

    fn has(self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// A HEADERS frame's priority block, or a PRIORITY frame (§5.3.2: read and
/// ignored, except for the self-dependency check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    pub exclusive: bool,
    pub depends_on: u32,
    pub weight: u8,
}

/// One frame, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    Data {
        stream: u32,
        end_stream: bool,
        data: &'a [u8],
        /// What the frame counts against flow control: the whole payload, padding included (§6.9.1).
        flow_len: u32,
    },
    Headers {
        stream: u32,
        end_stream: bool,
        end_headers: bool,
        priority: Option<Priority>,
        block: &'a [u8],
    },
    Priority {
        stream: u32,
        priority: Priority,
    },
    RstStream {
        stream: u32,
        reason: Reason,
    },
    Settings {
        ack: bool,
        /// Six bytes per setting (checked).
        payload: &'a [u8],
    },
    PushPromise {
        stream: u32,
        promised: u32,
        end_headers: bool,
        block: &'a [u8],
    },
    Ping {
        ack: bool,
        payload: [u8; 8],
    },
    GoAway {
        last_stream: u32,
        reason: Reason,
        debug: &'a [u8],
    },
    WindowUpdate {
        stream: u32,
        /// 1 to 2^31 − 1.
        increment: u32,
    },
    Continuation {
        stream: u32,
        end_headers: bool,
        block: &'a [u8],
    },
    /// A type this side does not know: ignored (§4.1, §5.5).
    Unknown {
        kind: u8,
        stream: u32,
    },
}

/// `payload` without its padding (§6.1): the pad length byte comes first.
fn unpad(head: Head, payload: &[u8]) -> Result<&[u8], FrameError> {
    if !head.has(flag::PADDED) {
        return Ok(payload);
    }
    let (&pad, rest) = payload.split_first().ok_or(conn(
        Reason::FRAME_SIZE_ERROR,
        "padded frame without a pad length",
    ))?;
    let keep = rest.len().checked_sub(usize::from(pad)).ok_or(conn(
        Reason::PROTOCOL_ERROR,
        "padding longer than the payload",
    ))?;
    Ok(rest.get(..keep).unwrap_or_default())
}

fn priority(stream: u32, b: &[u8]) -> Result<Priority, FrameError> {
    let b: &[u8; 5] = b.try_into().map_err(|_| {
        FrameError::Stream(
            stream,
            Reason::FRAME_SIZE_ERROR,
            "priority block of the wrong size",
        )
    })?;
    let dep = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let p = Priority {
        exclusive: dep & !MAX_WINDOW != 0,
        depends_on: dep & MAX_WINDOW,
        weight: b[4],
    };
    if p.depends_on == stream {
        return Err(FrameError::Stream(
            stream,
            Reason::PROTOCOL_ERROR,
            "stream depends on itself",
        ));
    }
    Ok(p)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_be_bytes(w)
}

/// Reads one frame's payload (`payload.len()` must be `head.len`; the caller
/// checked it against its SETTINGS_MAX_FRAME_SIZE). Applies §6's checks that
/// need no connection state.
pub fn parse(head: Head, payload: &[u8]) -> Result<Frame<'_>, FrameError> {
    let stream = head.stream;
    let on_stream = |why| {
        if stream == 0 {
            Err(conn(Reason::PROTOCOL_ERROR, why))
        } else {
            Ok(())
        }
    };
    let on_connection = |why| {
        if stream != 0 {
            Err(conn(Reason::PROTOCOL_ERROR, why))
        } else {
            Ok(())
        }
    };
    Ok(match head.kind {
        kind::DATA => {
            on_stream("DATA on stream 0")?;
            Frame::Data {
                stream,
                end_stream: head.has(flag::END_STREAM),
                data: unpad(head, payload)?,
                flow_len: head.len,
            }
        }
        kind::HEADERS => {
            on_stream("HEADERS on stream 0")?;
            let mut block = unpad(head, payload)?;
            let mut prio = None;
            if head.has(flag::PRIORITY) {
                let (p, rest) = block.split_at_checked(5).ok_or(conn(
                    Reason::FRAME_SIZE_ERROR,
                    "HEADERS too short for its priority",
                ))?;
                prio = Some(priority(stream, p)?);
                block = rest;
            }
            Frame::Headers {
                stream,
                end_stream: head.has(flag::END_STREAM),
                end_headers: head.has(flag::END_HEADERS),
                priority: prio,
                block,
            }
        }
        kind::PRIORITY => {
            on_stream("PRIORITY on stream 0")?;
            Frame::Priority {
                stream,
                priority: priority(stream, payload)?,
            }
        }
        kind::RST_STREAM => {
            on_stream("RST_STREAM on stream 0")?;
            if payload.len() != 4 {
                return Err(conn(Reason::FRAME_SIZE_ERROR, "RST_STREAM not 4 bytes"));
            }
            Frame::RstStream {
                stream,
                reason: Reason(u32_at(payload, 0)),
            }
        }
        kind::SETTINGS => {
            on_connection("SETTINGS on a stream")?;
            let ack = head.has(flag::ACK);
            if ack && !payload.is_empty() {
                return Err(conn(
                    Reason::FRAME_SIZE_ERROR,
                    "SETTINGS ack with a payload",
                ));
            }
            if !payload.len().is_multiple_of(6) {
                return Err(conn(
                    Reason::FRAME_SIZE_ERROR,
                    "SETTINGS not a multiple of 6 bytes",
                ));
            }
            Frame::Settings { ack, payload }
        }
        kind::PUSH_PROMISE => {
            on_stream("PUSH_PROMISE on stream 0")?;
            let rest = unpad(head, payload)?;
            if rest.len() < 4 {
                return Err(conn(Reason::FRAME_SIZE_ERROR, "PUSH_PROMISE too short"));
            }
            Frame::PushPromise {
                stream,
                promised: u32_at(rest, 0) & MAX_WINDOW,
                end_headers: head.has(flag::END_HEADERS),
                block: rest.get(4..).unwrap_or_default(),
            }
        }
        kind::PING => {
            on_connection("PING on a stream")?;
            let payload: [u8; 8] = payload
                .try_into()
                .map_err(|_| conn(Reason::FRAME_SIZE_ERROR, "PING not 8 bytes"))?;
            Frame::Ping {
                ack: head.has(flag::ACK),
                payload,
            }
        }
        kind::GOAWAY => {
            on_connection("GOAWAY on a stream")?;
            if payload.len() < 8 {
                return Err(conn(
                    Reason::FRAME_SIZE_ERROR,
                    "GOAWAY shorter than 8 bytes",
                ));
            }
            Frame::GoAway {
                last_stream: u32_at(payload, 0) & MAX_WINDOW,
                reason: Reason(u32_at(payload, 4)),
                debug: payload.get(8..).unwrap_or_default(),
            }
        }
        kind::WINDOW_UPDATE => {
            if payload.len() != 4 {
                return Err(conn(Reason::FRAME_SIZE_ERROR, "WINDOW_UPDATE not 4 bytes"));
            }
            let increment = u32_at(payload, 0) & MAX_WINDOW;
            if increment == 0 {
                let why = "WINDOW_UPDATE of 0";
                return Err(if stream == 0 {
                    conn(Reason::PROTOCOL_ERROR, why)
                } else {
                    FrameError::Stream(stream, Reason::PROTOCOL_ERROR, why)
                });
            }
            Frame::WindowUpdate { stream, increment }
        }
        kind::CONTINUATION => {
            on_stream("CONTINUATION on stream 0")?;
            Frame::Continuation {
                stream,
                end_headers: head.has(flag::END_HEADERS),
                block: payload,
            }
        }
        kind => Frame::Unknown { kind, stream },
    })
}

/// A peer's SETTINGS (§6.5.2), at their initial values until changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Bytes (initial 4,096).
    pub header_table_size: u32,
    pub enable_push: bool,
    /// Unlimited (`None`) until set.
    pub max_concurrent_streams: Option<u32>,
    /// Bytes (initial 65,535).
    pub initial_window_size: u32,
    /// Bytes (initial 16,384).
    pub max_frame_size: u32,
    /// Bytes; unlimited (`None`) until set.
    pub max_header_list_size: Option<u32>,
    /// RFC 8441's extended CONNECT.
    pub enable_connect_protocol: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            header_table_size: 4096,
            enable_push: true,
            max_concurrent_streams: None,
            initial_window_size: DEFAULT_WINDOW,
            max_frame_size: DEFAULT_MAX_FRAME,
            max_header_list_size: None,
            enable_connect_protocol: false,
        }
    }
}

impl Settings {
    /// Applies a SETTINGS payload (six bytes per setting, checked by
    /// [`parse`]); unknown ids are ignored (§6.5.2).
    pub fn apply(&mut self, payload: &[u8]) -> Result<(), FrameError> {
        for s in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let v = u32_at(s, 2);
            match id {
                setting::HEADER_TABLE_SIZE => self.header_table_size = v,
                setting::ENABLE_PUSH => {
                    self.enable_push = match v {
                        0 => false,
                        1 => true,
                        _ => return Err(conn(Reason::PROTOCOL_ERROR, "ENABLE_PUSH not 0 or 1")),
                    }
                }
                setting::MAX_CONCURRENT_STREAMS => self.max_concurrent_streams = Some(v),
                setting::INITIAL_WINDOW_SIZE => {
                    if v > MAX_WINDOW {
                        return Err(conn(
                            Reason::FLOW_CONTROL_ERROR,
                            "INITIAL_WINDOW_SIZE above 2^31-1",
                        ));
                    }
                    self.initial_window_size = v;
                }
                setting::MAX_FRAME_SIZE => {
                    if !(DEFAULT_MAX_FRAME..=MAX_FRAME_LIMIT).contains(&v) {
                        return Err(conn(Reason::PROTOCOL_ERROR, "MAX_FRAME_SIZE out of range"));
                    }
                    self.max_frame_size = v;
                }
                setting::MAX_HEADER_LIST_SIZE => self.max_header_list_size = Some(v),
                setting::ENABLE_CONNECT_PROTOCOL => {
                    self.enable_connect_protocol = match v {
                        0 => false,
                        1 => true,
                        _ => {
                            return Err(conn(
                                Reason::PROTOCOL_ERROR,
                                "ENABLE_CONNECT_PROTOCOL not 0 or 1",
                            ))
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Appends a SETTINGS frame with these `(id, value)` pairs.
pub fn write_settings(dst: &mut BytesMut, settings: &[(u16, u32)]) {
    Head {
        len: (settings.len() * 6) as u32,
        kind: kind::SETTINGS,
        flags: 0,
        stream: 0,
    }
    .write(dst);
    for &(id, v) in settings {
        dst.put_u16(id);
        dst.put_u32(v);
    }
}

/// Appends a SETTINGS acknowledgement.
pub fn write_settings_ack(dst: &mut BytesMut) {
    Head {
        len: 0,
        kind: kind::SETTINGS,
        flags: flag::ACK,
        stream: 0,
    }
    .write(dst);
}

/// Appends a PING (or its acknowledgement, echoing `payload`).
pub fn write_ping(dst: &mut BytesMut, ack: bool, payload: [u8; 8]) {
    Head {
        len: 8,
        kind: kind::PING,
        flags: if ack { flag::ACK } else { 0 },
        stream: 0,
    }
    .write(dst);
    dst.put_slice(&payload);
}

/// Appends a GOAWAY.
pub fn write_goaway(dst: &mut BytesMut, last_stream: u32, reason: Reason, debug: &[u8]) {
    let debug = debug.get(..256).unwrap_or(debug);
    Head {
        len: 8 + debug.len() as u32,
        kind: kind::GOAWAY,
        flags: 0,
        stream: 0,
    }
    .write(dst);
    dst.put_u32(last_stream & MAX_WINDOW);
    dst.put_u32(reason.0);
    dst.put_slice(debug);
}

/// Appends an RST_STREAM.
pub fn write_rst(dst: &mut BytesMut, stream: u32, reason: Reason) {
    Head {
        len: 4,
        kind: kind::RST_STREAM,
        flags: 0,
        stream,
    }
    .write(dst);
    dst.put_u32(reason.0);
}

/// Appends a WINDOW_UPDATE (`increment` 1 to 2^31 − 1).
pub fn write_window_update(dst: &mut BytesMut, stream: u32, increment: u32) {
    Head {
        len: 4,
        kind: kind::WINDOW_UPDATE,
        flags: 0,
        stream,
    }
    .write(dst);
    dst.put_u32(increment & MAX_WINDOW);
}

/// Appends the head of a DATA frame of `len` bytes (the caller writes or
/// sends the bytes right after it).
pub fn write_data_head(dst: &mut BytesMut, stream: u32, len: usize, end_stream: bool) {
    Head {
        len: len as u32,
        kind: kind::DATA,
        flags: if end_stream { flag::END_STREAM } else { 0 },
        stream,
    }
    .write(dst);
}

/// Starts a HEADERS frame: reserves its head and returns where it starts;
/// the caller appends the field block, then calls [`finish_headers`].
pub fn begin_headers(dst: &mut BytesMut) -> usize {
    let at = dst.len();
    dst.put_slice(&[0u8; HEAD_LEN]);
    at
}

/// Ends the HEADERS frame begun at `at`: writes its head and, when the
/// block is longer than `max_frame` (the peer's SETTINGS_MAX_FRAME_SIZE),
/// cuts it into HEADERS + CONTINUATION frames (§6.10).
pub fn finish_headers(
    dst: &mut BytesMut,
    at: usize,
    stream: u32,
    end_stream: bool,
    max_frame: u32,
) {
    let max = (max_frame.clamp(DEFAULT_MAX_FRAME, MAX_FRAME_LIMIT)) as usize;
    let block_len = dst.len().saturating_sub(at + HEAD_LEN);
    let end = if end_stream { flag::END_STREAM } else { 0 };
    if block_len <= max {
        let h = Head {
            len: block_len as u32,
            kind: kind::HEADERS,
            flags: end | flag::END_HEADERS,
            stream,
        }
        .to_bytes();
        if let Some(slot) = dst.get_mut(at..at + HEAD_LEN) {
            slot.copy_from_slice(&h);
        }
        return;
    }
    // Rare: rebuild the tail as HEADERS + CONTINUATIONs.
    let block = dst.split_off(at + HEAD_LEN).freeze();
    dst.truncate(at);
    let mut chunks = block.chunks(max).peekable();
    let mut first = true;
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let mut flags = if last { flag::END_HEADERS } else { 0 };
        if first {
            flags |= end;
        }
        Head {
            len: chunk.len() as u32,
            kind: if first {
                kind::HEADERS
            } else {
                kind::CONTINUATION
            },
            flags,
            stream,
        }
        .write(dst);
        dst.put_slice(chunk);
        first = false;
    }
}

#[cfg(test)]
mod tests;
