//! The state a connection's driver and its requests share ([`Conn`], behind
//! one `std::sync::Mutex`: uncontended, as a worker's connections are used
//! only by that worker's tasks), and the bookkeeping both sides do on it:
//! the stream table, flow-control windows, the frames waiting to be written.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};

use super::error::{H2Error, Kind};
use super::{CONNECTION_WINDOW, MAX_HEADER_LIST, STREAM_WINDOW};
use crate::h2wire::frame::{self, setting, Reason, Settings, DEFAULT_WINDOW, MAX_WINDOW};
use crate::h2wire::hpack::{Decoder, DEFAULT_TABLE_SIZE};
use crate::h2wire::stream_map::StreamMap;

/// The shared state of one connection.
pub(super) type Shared = Arc<Mutex<Conn>>;

/// Locks `shared` (a panic while it was held leaves consistent-enough state:
/// every change is a few field writes).
pub(super) fn lock(shared: &Shared) -> MutexGuard<'_, Conn> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Streams allowed before the backend's first SETTINGS says how many: 100
/// (the `h2` crate's initial value).
const FIRST_STREAM_LIMIT: u32 = 100;

/// Which holder of a stream: the response side (the `send` future, then the
/// response body) or the request body being sent ([`super::Pipe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Recv,
    Send,
}

/// One stream's state.
#[derive(Debug)]
pub(super) struct Slot {
    /// The request was HEAD: its response's `content-length` is no body length.
    pub head_request: bool,
    /// The final response head, from its arrival until `send` takes it.
    pub head: Option<(StatusCode, HeaderMap)>,
    /// A final head came (taken or not): a later HEADERS is the trailers.
    pub got_head: bool,
    /// DATA received and not yet passed on (slices of the read buffer).
    pub data: Chunks,
    /// Bytes in `data`.
    pub queued: u64,
    pub trailers: Option<HeaderMap>,
    /// END_STREAM received.
    pub recv_end: bool,
    /// Why the stream failed (reset by either side, or its connection).
    pub error: Option<H2Error>,
    /// The body's length by `content-length` (checked: not for HEAD, 204, 304).
    pub length: Option<u64>,
    /// DATA bytes received (without padding).
    pub received: u64,
    /// How much more the backend may send on the stream (bytes).
    pub recv_window: i64,
    /// Bytes passed on and not yet given back in a WINDOW_UPDATE.
    pub unreleased: u32,
    /// How much more drover may send (bytes; below zero after a SETTINGS
    /// that shrank the initial window, RFC 9113 §6.9.2).
    pub send_window: i64,
    /// END_STREAM sent (queued).
    pub send_end: bool,
    /// No longer counted as open (both sides ended, or reset).
    pub closed: bool,
    pub recv_held: bool,
    pub send_held: bool,
    pub recv_waker: Option<Waker>,
    pub send_waker: Option<Waker>,
    /// The request body waits for send window.
    pub blocked: bool,
}

/// A field block arriving in CONTINUATION frames.
#[derive(Debug)]
pub(super) struct Partial {
    pub stream: u32,
    pub end_stream: bool,
    pub block: BytesMut,
    /// Frames of it so far.
    pub frames: u32,
}

/// One connection's state.
pub(super) struct Conn {
    pub streams: StreamMap<Slot>,
    /// Streams open (not closed), counted against the backend's MAX_CONCURRENT_STREAMS.
    pub active: u32,
    /// The id the next stream gets (odd).
    pub next_id: u32,
    pub peer: Settings,
    /// The backend's first SETTINGS came.
    pub got_settings: bool,
    /// How much more drover may send on the connection (bytes).
    pub send_window: i64,
    /// How much more the backend may send on the connection (bytes).
    pub recv_window: i64,
    /// Connection-level bytes passed on or dropped, not yet given back.
    pub unreleased: u32,
    /// Frames to write, in order.
    pub out: BytesMut,
    pub decoder: Decoder,
    pub partial: Option<Partial>,
    /// The backend's GOAWAY: the last stream id it may process, its reason.
    pub goaway: Option<(u32, Reason)>,
    /// The connection ended or is ending: why; no new stream once set.
    pub closed: Option<H2Error>,
    /// Live [`super::Sender`]s: at 0 with no stream open, the connection closes.
    pub senders: usize,
    /// The driver task, to wake when frames were queued.
    pub driver: Option<Waker>,
    /// `send`s waiting for a stream slot (MAX_CONCURRENT_STREAMS).
    pub open_waiters: Vec<Waker>,
    /// Request bodies waiting for `out` to drain below [`super::MAX_SEND_BUFFER`].
    pub buffer_waiters: Vec<Waker>,
}

impl Conn {
    /// A new connection's state, the preface queued: SETTINGS (no push, our
    /// stream window, our field section limit) and the connection window.
    pub fn new() -> Conn {
        let mut out = BytesMut::with_capacity(16 * 1024);
        out.extend_from_slice(frame::PREFACE);
        frame::write_settings(
            &mut out,
            &[
                (setting::ENABLE_PUSH, 0),
                (setting::INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                (setting::MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST),
            ],
        );
        frame::write_window_update(&mut out, 0, CONNECTION_WINDOW - DEFAULT_WINDOW);
        // A backend resends its response fields as the same Huffman
        // literals: decoded once per slot (h2wire::hpack::recent).
        let mut decoder = Decoder::new(DEFAULT_TABLE_SIZE);
        decoder.remember_strings();
        Conn {
            streams: StreamMap::default(),
            active: 0,
            next_id: 1,
            peer: Settings::default(),
            got_settings: false,
            send_window: i64::from(DEFAULT_WINDOW),
            recv_window: i64::from(CONNECTION_WINDOW),
            unreleased: 0,
            out,
            decoder,
            partial: None,
            goaway: None,
            closed: None,
            senders: 1,
            driver: None,
            open_waiters: Vec::new(),
            buffer_waiters: Vec::new(),
        }
    }

    /// Wakes the driver (frames were queued); cheap when it is awake already.
    pub fn wake_driver(&mut self) {
        if let Some(w) = self.driver.take() {
            w.wake();
        }
    }

    /// How many streams the backend takes at once.
    pub fn stream_limit(&self) -> u32 {
        if self.got_settings {
            self.peer.max_concurrent_streams.unwrap_or(u32::MAX)
        } else {
            FIRST_STREAM_LIMIT
        }
    }

    /// Why no new stream may open here (closed, going away, out of ids).
    pub fn refuses_streams(&self) -> Option<H2Error> {
        if let Some(e) = &self.closed {
            return Some(e.clone());
        }
        if let Some((_, reason)) = self.goaway {
            let kind = Kind::GoAway {
                reason,
                refused: true,
            };
            return Some(H2Error::new(kind, "going away"));
        }
        if self.next_id > MAX_WINDOW {
            return Some(H2Error::new(Kind::Closed, "stream ids used up"));
        }
        None
    }

    /// A new stream's slot (its head is the caller's to queue): its id.
    pub fn open(&mut self, head_request: bool, eos: bool) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        self.active += 1;
        self.streams.insert(
            id,
            Slot {
                head_request,
                head: None,
                got_head: false,
                data: Chunks::default(),
                queued: 0,
                trailers: None,
                recv_end: false,
                error: None,
                length: None,
                received: 0,
                recv_window: i64::from(STREAM_WINDOW),
                unreleased: 0,
                send_window: i64::from(self.peer.initial_window_size),
                send_end: eos,
                closed: false,
                recv_held: true,
                send_held: !eos,
                recv_waker: None,
                send_waker: None,
                blocked: false,
            },
        );
        id
    }

    /// The stream no longer counts as open: a `send` waiting for a slot may go.
    pub fn close_stream(&mut self, id: u32) {
        if let Some(slot) = self.streams.get_mut(&id) {
            if !slot.closed {
                slot.closed = true;
                self.active = self.active.saturating_sub(1);
                // All of them: one may have been dropped meanwhile.
                for w in self.open_waiters.drain(..) {
                    w.wake();
                }
                if self.active == 0 && self.senders == 0 {
                    // Nothing uses the connection any more: it closes.
                    self.wake_driver();
                }
            }
        }
        self.tidy(id);
    }

    /// Closes the stream if both sides have ended.
    pub fn maybe_close(&mut self, id: u32) {
        if self
            .streams
            .get(&id)
            .is_some_and(|s| s.recv_end && s.send_end)
        {
            self.close_stream(id);
        }
    }

    /// Forgets a closed stream nobody holds; what it still had queued goes
    /// back to the connection window.
    fn tidy(&mut self, id: u32) {
        let gone = self
            .streams
            .get(&id)
            .is_some_and(|s| s.closed && !s.recv_held && !s.send_held);
        if gone {
            if let Some(slot) = self.streams.remove(&id) {
                self.release_conn(slot.queued);
            }
        }
    }

    /// Ends the stream with an error: `err` for its holders, and RST_STREAM
    /// with `reset` to the backend unless it ended the stream itself.
    pub fn fail_stream(&mut self, id: u32, err: H2Error, reset: Option<Reason>) {
        let Some(slot) = self.streams.get_mut(&id) else {
            return;
        };
        if let Some(reason) = reset {
            if !slot.closed {
                frame::write_rst(&mut self.out, id, reason);
            }
        }
        if slot.error.is_none() {
            slot.error = Some(err);
        }
        wake(&mut slot.recv_waker);
        wake(&mut slot.send_waker);
        self.close_stream(id);
    }

    /// A stream error of drover's finding (RFC 9113 §5.4.2): RST_STREAM.
    pub fn stream_error(&mut self, id: u32, reason: Reason, why: &'static str) {
        let kind = Kind::Protocol {
            reason,
            connection: false,
        };
        self.fail_stream(id, H2Error::new(kind, why), Some(reason));
    }

    /// Fails every stream still open with `err`, except that a stream above a
    /// GOAWAY's last id is refused (not processed) and one below it learns
    /// that the connection ended after the GOAWAY.
    pub fn fail_all(&mut self, err: &H2Error) {
        let ids: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| !s.closed)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            let e = match self.goaway {
                Some((last, reason)) if err.is_io() || matches!(err.kind(), Kind::Closed) => {
                    H2Error::new(
                        Kind::GoAway {
                            reason,
                            refused: id > last,
                        },
                        "",
                    )
                }
                _ => err.clone(),
            };
            self.fail_stream(id, e, None);
        }
        for w in self
            .open_waiters
            .drain(..)
            .chain(self.buffer_waiters.drain(..))
        {
            w.wake();
        }
    }

    /// Ends the connection: `err` for everyone, no new stream.
    pub fn close(&mut self, err: H2Error) {
        if self.closed.is_none() {
            self.closed = Some(err.clone());
        }
        self.fail_all(&err);
    }

    /// A connection error of drover's finding (§5.4.1): GOAWAY, then close.
    pub fn connection_error(&mut self, reason: Reason, why: &'static str) {
        if self.closed.is_some() {
            return;
        }
        frame::write_goaway(&mut self.out, 0, reason, why.as_bytes());
        let kind = Kind::Protocol {
            reason,
            connection: true,
        };
        self.close(H2Error::new(kind, why));
    }

    /// Gives `n` bytes of connection window back (data passed on or
    /// dropped): a WINDOW_UPDATE once half the window was used.
    pub fn release_conn(&mut self, n: u64) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.unreleased = self.unreleased.saturating_add(n);
        if self.unreleased >= CONNECTION_WINDOW / 2 && self.closed.is_none() {
            let inc = self.unreleased.min(MAX_WINDOW);
            frame::write_window_update(&mut self.out, 0, inc);
            self.recv_window += i64::from(inc);
            self.unreleased -= inc;
        }
    }

    /// `n` bytes of stream `id` were passed on (or were padding): its window
    /// and the connection's are given back (in batches of half a window).
    pub fn release(&mut self, id: u32, n: usize) {
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        if let Some(slot) = self.streams.get_mut(&id) {
            slot.unreleased = slot.unreleased.saturating_add(n32);
            let open = !slot.recv_end && slot.error.is_none();
            if open && slot.unreleased >= STREAM_WINDOW / 2 {
                frame::write_window_update(&mut self.out, id, slot.unreleased);
                slot.recv_window += i64::from(slot.unreleased);
                slot.unreleased = 0;
            }
        }
        self.release_conn(n as u64);
    }

    /// A holder of stream `id` let go. Before its side's end, the stream is
    /// reset (CANCEL); a response dropped unread gives its data's window back.
    pub fn drop_handle(&mut self, id: u32, side: Side) {
        let Some(slot) = self.streams.get_mut(&id) else {
            return;
        };
        let ended = match side {
            Side::Recv => {
                slot.recv_held = false;
                slot.recv_waker = None;
                slot.head = None;
                slot.trailers = None;
                slot.data.clear();
                let queued = std::mem::take(&mut slot.queued);
                let ended = slot.recv_end;
                self.release_conn(queued);
                ended
            }
            Side::Send => {
                slot.send_held = false;
                slot.send_waker = None;
                slot.send_end
            }
        };
        let failed = self.streams.get(&id).is_some_and(|s| s.error.is_some());
        if !ended && !failed {
            let why = match side {
                Side::Recv => "the response was dropped",
                Side::Send => "the request body was dropped",
            };
            self.fail_stream(id, H2Error::new(Kind::Cancelled, why), Some(Reason::CANCEL));
        }
        self.tidy(id);
        if !self.out.is_empty() {
            self.wake_driver();
        }
    }
}

/// The DATA of a response not yet taken, in order. Most responses are one
/// chunk: it is held inline, a queue is allocated only from the second.
#[derive(Debug, Default)]
pub struct Chunks {
    first: Option<Bytes>,
    rest: VecDeque<Bytes>,
}

impl Chunks {
    pub fn push_back(&mut self, b: Bytes) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(b);
        } else {
            self.rest.push_back(b);
        }
    }

    pub fn pop_front(&mut self) -> Option<Bytes> {
        self.first.take().or_else(|| self.rest.pop_front())
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }

    pub fn clear(&mut self) {
        self.first = None;
        self.rest.clear();
    }
}

/// Wakes and forgets a task's waker.
pub(super) fn wake(w: &mut Option<Waker>) {
    if let Some(w) = w.take() {
        w.wake();
    }
}

/// Stores `cx`'s waker in `slot` unless it holds the same one.
pub(super) fn park(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// One holder of a stream: dropped, [`Conn::drop_handle`].
pub(super) struct Handle {
    pub shared: Shared,
    pub id: u32,
    side: Side,
}

impl Handle {
    pub fn new(shared: Shared, id: u32, side: Side) -> Handle {
        Handle { shared, id, side }
    }

    pub fn lock(&self) -> MutexGuard<'_, Conn> {
        lock(&self.shared)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        lock(&self.shared).drop_handle(self.id, self.side);
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("id", &self.id)
            .field("side", &self.side)
            .finish()
    }
}
