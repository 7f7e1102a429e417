//! A request body read from a client's HTTP/2 stream by drover's own HTTP/2
//! server (`proxy::h2`): the connection's task puts the DATA it receives in a
//! queue shared with the body ([`H2In`]), which the upstream exchange polls.
//! What the body hands on is counted ([`InQueue::take_consumed`]) so the
//! connection gives the client that much flow-control window back: the
//! backend's pace holds the client back, at most a window ahead.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use super::body::BodyError;

/// Consumed bytes that make the body wake the connection (to send a
/// WINDOW_UPDATE) before the queue is empty: 16 KiB.
const WAKE_AT: u32 = 16 * 1024;

/// The state the connection and the body share.
#[derive(Debug, Default)]
pub struct InQueue {
    chunks: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    /// END_STREAM received (after the last chunk and the trailers).
    ended: bool,
    /// The stream failed (the client reset it, sent more or less than its
    /// `content-length`, or the connection ended).
    failed: bool,
    /// Bytes handed on and not yet given back to the client as window.
    consumed: u32,
    /// The body is gone: the connection drops what comes and gives its window back.
    dropped: bool,
    /// The body was polled once (a `100 Continue` is then due, if asked).
    polled: bool,
    reader: Option<Waker>,
    conn: Option<Waker>,
}

impl InQueue {
    /// Queues a chunk the client sent (the connection's side).
    pub fn push(&mut self, data: Bytes) {
        if self.dropped {
            self.consumed = self.consumed.saturating_add(data.len() as u32);
            return;
        }
        self.chunks.push_back(data);
        self.wake_reader();
    }

    /// The stream's end, with its trailers if it had some.
    pub fn end(&mut self, trailers: Option<HeaderMap>) {
        self.trailers = trailers;
        self.ended = true;
        self.wake_reader();
    }

    /// The stream failed: the body ends with [`BodyError::Cut`] after what
    /// was queued.
    pub fn fail(&mut self) {
        self.failed = true;
        self.wake_reader();
    }

    /// Bytes handed on since the last call (the connection gives them back
    /// as window), and registers the connection's waker.
    pub fn take_consumed(&mut self, conn: &Waker) -> u32 {
        if !self.conn.as_ref().is_some_and(|w| w.will_wake(conn)) {
            self.conn = Some(conn.clone());
        }
        std::mem::take(&mut self.consumed)
    }

    /// Whether the body has been polled (so a requested `100 Continue` is due).
    pub fn polled(&self) -> bool {
        self.polled
    }

    /// Whether the body was dropped before its end.
    pub fn dropped(&self) -> bool {
        self.dropped
    }

    /// Nothing more to hand on: ended cleanly, drained, no trailers due.
    fn finished(&self) -> bool {
        self.ended && !self.failed && self.chunks.is_empty() && self.trailers.is_none()
    }

    fn wake_reader(&mut self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }
}

/// The shared queue (the connection keeps one handle, the body the other).
pub type Shared = Arc<Mutex<InQueue>>;

/// Locks the queue (a poisoned lock is taken as is: the state stays consistent
/// field by field).
pub fn lock(q: &Shared) -> MutexGuard<'_, InQueue> {
    q.lock().unwrap_or_else(|p| p.into_inner())
}

/// The body side.
#[derive(Debug)]
pub struct H2In {
    q: Shared,
    /// The client's `content-length` less what was handed on, when it gave one.
    left: Option<u64>,
    done: bool,
}

impl H2In {
    /// A body fed through `q`, of `len` bytes when the client said so.
    pub fn new(q: Shared, len: Option<u64>) -> H2In {
        H2In {
            q,
            left: len,
            done: false,
        }
    }
}

impl Drop for H2In {
    fn drop(&mut self) {
        let mut q = lock(&self.q);
        q.dropped = true;
        let queued: usize = q.chunks.drain(..).map(|c| c.len()).sum();
        q.consumed = q.consumed.saturating_add(queued as u32);
        if let Some(w) = q.conn.take() {
            w.wake();
        }
    }
}

impl Body for H2In {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        let mut q = lock(&this.q);
        if !q.polled {
            q.polled = true;
            if let Some(w) = &q.conn {
                w.wake_by_ref();
            }
        }
        if let Some(c) = q.chunks.pop_front() {
            let before = q.consumed;
            q.consumed = q.consumed.saturating_add(c.len() as u32);
            if (q.chunks.is_empty() || before / WAKE_AT != q.consumed / WAKE_AT) && !q.ended {
                if let Some(w) = &q.conn {
                    w.wake_by_ref();
                }
            }
            if let Some(left) = &mut this.left {
                *left = left.saturating_sub(c.len() as u64);
            }
            this.done = q.finished();
            return Poll::Ready(Some(Ok(Frame::data(c))));
        }
        if q.failed {
            this.done = true;
            return Poll::Ready(Some(Err(BodyError::Cut)));
        }
        if q.ended {
            this.done = true;
            return Poll::Ready(q.trailers.take().map(|t| Ok(Frame::trailers(t))));
        }
        if !q.reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            q.reader = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.done || lock(&self.q).finished()
    }

    fn size_hint(&self) -> SizeHint {
        match self.left {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
