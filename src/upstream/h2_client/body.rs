//! The response body: the DATA the driver queued on the stream, passed on
//! as it is (slices of the read buffer), its flow-control window given back
//! as it goes; then the trailers.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use super::conn::{park, Handle};
use super::error::{H2Error, Kind, RespError};

/// A response body from an HTTP/2 backend: data as it arrives (its
/// flow-control window given back as it is passed on), then the trailers.
///
/// A reset ends it with an error, NO_ERROR too: the end of a response that
/// came whole (END_STREAM) before the reset is kept, which is the only place
/// RFC 9113 §8.1 gives NO_ERROR (the server needs no more of the request),
/// so a reset seen here cut the response short: [`RespError::Cut`].
/// Dropped before its end, it resets the stream (CANCEL).
#[derive(Debug)]
pub struct RespBody {
    /// The stream, until the body has ended.
    recv: Option<Handle>,
    /// Bytes still to come by `content-length`, when it gave one.
    left: Option<u64>,
}

/// What one poll found, acted on once the lock is let go.
enum Next {
    Frame(Frame<Bytes>),
    End,
    Failed(H2Error),
    Wait,
}

impl RespBody {
    /// The body of the stream `recv` whose response had these `headers`;
    /// `ended`: nothing follows the head.
    pub(super) fn new(recv: Handle, headers: &HeaderMap, ended: bool) -> RespBody {
        let left = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| crate::upstream::native::head::content_length(v.as_bytes()));
        RespBody {
            recv: (!ended).then_some(recv),
            left,
        }
    }

    fn next(&mut self, cx: &mut Context<'_>) -> Next {
        let Some(h) = &self.recv else {
            return Next::End;
        };
        let id = h.id;
        let mut conn = h.lock();
        let Some(slot) = conn.streams.get_mut(&id) else {
            return Next::Failed(H2Error::new(Kind::Closed, "stream gone"));
        };
        if let Some(chunk) = slot.data.pop_front() {
            slot.queued = slot.queued.saturating_sub(chunk.len() as u64);
            conn.release(id, chunk.len());
            if !conn.out.is_empty() {
                conn.wake_driver();
            }
            if let Some(left) = &mut self.left {
                *left = left.saturating_sub(chunk.len() as u64);
            }
            return Next::Frame(Frame::data(chunk));
        }
        if let Some(t) = slot.trailers.take() {
            return Next::Frame(Frame::trailers(t));
        }
        if slot.recv_end {
            return Next::End;
        }
        if let Some(e) = &slot.error {
            return Next::Failed(e.clone());
        }
        park(&mut slot.recv_waker, cx.waker());
        Next::Wait
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = RespError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RespError>>> {
        match self.next(cx) {
            Next::Frame(f) => Poll::Ready(Some(Ok(f))),
            Next::End => {
                // The stream's slot is freed as soon as it is read whole.
                self.recv = None;
                Poll::Ready(None)
            }
            Next::Failed(e) => Poll::Ready(Some(Err(e.into()))),
            Next::Wait => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        let Some(h) = &self.recv else {
            return true;
        };
        // Bytes still due by content-length: not at its end, without the lock.
        if self.left.is_some_and(|n| n > 0) {
            return false;
        }
        let conn = h.lock();
        conn.streams
            .get(&h.id)
            .is_some_and(|s| s.recv_end && s.data.is_empty() && s.trailers.is_none())
    }

    fn size_hint(&self) -> SizeHint {
        if self.is_end_stream() {
            return SizeHint::with_exact(0);
        }
        match self.left {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
