//! The request body sent upstream, and what the proxy learns from it.
//!
//! A client's body is read under `server.body_read_timeout` (the longest
//! wait between two reads, as nginx's `client_body_timeout`); a client that
//! stalls longer, resets or sends a malformed body fails with a [`BodyError`],
//! which marks the failure as the client's, not the backend's. The shared
//! [`Upload`] tells the forwarding side when the body has been sent in full
//! — `request_timeout` counts from then — and whether the backend is still
//! taking it.

use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::client_in::ClientIn;
use crate::pool::ClientFault;

/// Why reading the client's body failed.
#[derive(Debug)]
pub enum BodyError {
    /// The client's connection or stream failed (gone, reset, bad framing).
    Client(hyper::Error),
    /// No body data arrived for this long (`server.body_read_timeout`).
    Stalled(Duration),
    /// The client's connection ended before its body did (native codec).
    Cut,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Client(e) => write!(f, "reading the request body from the client: {e}"),
            BodyError::Stalled(t) => write!(
                f,
                "the client sent no request body data for {t:?} (server.body_read_timeout)"
            ),
            BodyError::Cut => write!(
                f,
                "reading the request body from the client: the connection ended before the body"
            ),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::Client(e) => Some(e),
            BodyError::Stalled(_) | BodyError::Cut => None,
        }
    }
}

impl BodyError {
    /// What the client did: a body that does not parse is `Malformed`, a
    /// stall `Stalled`, anything else (EOF, reset, closed stream) `Gone`.
    pub fn fault(&self) -> ClientFault {
        match self {
            BodyError::Stalled(_) => ClientFault::Stalled,
            BodyError::Cut => ClientFault::Gone,
            BodyError::Client(e) => {
                let mut src = std::error::Error::source(e);
                while let Some(s) = src {
                    if let Some(io) = s.downcast_ref::<std::io::Error>() {
                        return match io.kind() {
                            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                                ClientFault::Malformed
                            }
                            _ => ClientFault::Gone,
                        };
                    }
                    src = s.source();
                }
                if e.is_parse() {
                    ClientFault::Malformed
                } else {
                    ClientFault::Gone
                }
            }
        }
    }
}

/// The client's fault behind an error of the upstream exchange, if the error
/// came from reading the client's body; with the sentence to report.
pub fn client_fault(e: &(dyn std::error::Error + 'static)) -> Option<(ClientFault, String)> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(b) = err.downcast_ref::<BodyError>() {
            return Some((b.fault(), b.to_string()));
        }
        cur = err.source();
    }
    None
}

/// How an upload is going, shared between the body (polled by the upstream
/// connection) and the request waiting for the response.
#[derive(Debug, Default)]
pub struct Upload {
    sent: AtomicBool,
    /// The body is waiting for the client (not for the backend to take more).
    waiting: AtomicBool,
    frames: AtomicU64,
    waker: AtomicWaker,
}

impl Upload {
    fn frame(&self, last: bool) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.waiting.store(false, Ordering::Relaxed);
        if last {
            self.finish();
        }
    }

    fn finish(&self) {
        self.sent.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Frames handed to the backend so far, and whether the body is waiting
    /// for the client right now.
    pub fn progress(&self) -> (u64, bool) {
        (
            self.frames.load(Ordering::Relaxed),
            self.waiting.load(Ordering::Relaxed),
        )
    }

    /// Resolves once the whole body has been handed to the backend connection.
    pub fn sent(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.sent.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            if self.sent.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// The client's body with its read timeout and progress.
    pub struct ClientBody {
        #[pin]
        body: ClientIn,
        #[pin]
        timer: Sleep,
        waiting: bool,
        read_timeout: Duration,
        upload: Arc<Upload>,
        // A copy of what was sent, to send it again (gRPC retries).
        capture: Option<Arc<Mutex<Capture>>>,
    }
}

/// Largest request body kept to be sent again: 64 KiB. A larger one is not retried.
pub const MAX_CAPTURE: usize = 64 * 1024;

/// The copy of a request body as it went out (shared `Bytes`, no copying):
/// usable once the body has ended, if it stayed within [`MAX_CAPTURE`] and
/// had no trailers.
#[derive(Debug, Default)]
pub struct Capture {
    chunks: Vec<Bytes>,
    size: usize,
    complete: bool,
    overflow: bool,
}

impl Capture {
    /// The copy of a body that came whole with its head.
    pub fn whole(body: Bytes) -> Capture {
        let mut c = Capture::default();
        c.frame(&Frame::data(body));
        c.complete = true;
        c
    }

    fn frame(&mut self, frame: &Frame<Bytes>) {
        if self.overflow {
            return;
        }
        match frame.data_ref() {
            Some(d) if self.size + d.len() <= MAX_CAPTURE => {
                self.size += d.len();
                self.chunks.push(d.clone());
            }
            _ => {
                self.overflow = true;
                self.chunks = Vec::new();
            }
        }
    }

    /// The whole body again, if it can be had.
    pub fn replay(&self) -> Option<RequestBody> {
        (self.complete && !self.overflow)
            .then(|| RequestBody::Replay(self.chunks.iter().cloned().collect()))
    }
}

impl ClientBody {
    /// The next frame from the client, or why there is none.
    fn poll_client(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let mut this = self.project();
        match this.body.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                *this.waiting = false;
                if let Some(c) = this.capture.as_ref() {
                    let mut c = c.lock();
                    c.frame(&frame);
                    c.complete = this.body.is_end_stream();
                }
                this.upload.frame(this.body.is_end_stream());
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => {
                if let Some(c) = this.capture.as_ref() {
                    c.lock().complete = true;
                }
                this.upload.finish();
                Poll::Ready(None)
            }
            Poll::Pending => {
                if !*this.waiting {
                    *this.waiting = true;
                    this.upload.waiting.store(true, Ordering::Relaxed);
                    this.timer
                        .as_mut()
                        .reset(Instant::now() + *this.read_timeout);
                }
                match this.timer.poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Some(Err(BodyError::Stalled(*this.read_timeout))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

/// A request body sent upstream: the client's stream, or empty (no body, or a replay).
pub enum RequestBody {
    /// Boxed: only requests with a body pay for the timer and the progress.
    Stream(Pin<Box<ClientBody>>),
    Empty,
    /// A body sent before, sent again from memory ([`Capture::replay`]).
    Replay(std::collections::VecDeque<Bytes>),
}

impl RequestBody {
    /// The client's body, read with at most `read_timeout` between two reads.
    pub fn client(body: ClientIn, read_timeout: Duration) -> RequestBody {
        RequestBody::Stream(Box::pin(ClientBody {
            body,
            timer: tokio::time::sleep(read_timeout),
            waiting: false,
            read_timeout,
            upload: Arc::default(),
            capture: None,
        }))
    }

    /// [`RequestBody::client`], keeping a copy of what is sent to send it again.
    pub fn client_captured(
        body: ClientIn,
        read_timeout: Duration,
    ) -> (RequestBody, Arc<Mutex<Capture>>) {
        let capture = Arc::new(Mutex::new(Capture::default()));
        let mut b = RequestBody::client(body, read_timeout);
        if let RequestBody::Stream(s) = &mut b {
            s.as_mut().project().capture.replace(capture.clone());
        }
        (b, capture)
    }

    /// The progress of a client body (`None` for an empty one).
    pub fn upload(&self) -> Option<Arc<Upload>> {
        match self {
            RequestBody::Stream(b) => Some(b.upload.clone()),
            RequestBody::Empty | RequestBody::Replay(_) => None,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            RequestBody::Stream(b) => b.as_mut().poll_client(cx),
            RequestBody::Empty => Poll::Ready(None),
            RequestBody::Replay(chunks) => {
                Poll::Ready(chunks.pop_front().map(|d| Ok(Frame::data(d))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Stream(b) => b.body.is_end_stream(),
            RequestBody::Empty => true,
            RequestBody::Replay(chunks) => chunks.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Stream(b) => b.body.size_hint(),
            RequestBody::Empty => SizeHint::with_exact(0),
            RequestBody::Replay(chunks) => {
                SizeHint::with_exact(chunks.iter().map(|c| c.len() as u64).sum())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalled_bodies_are_the_clients_fault_through_any_wrapping() {
        let e = BodyError::Stalled(Duration::from_secs(60));
        assert_eq!(e.fault(), ClientFault::Stalled);
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
        let (fault, why) = client_fault(boxed.as_ref()).unwrap();
        assert_eq!(fault, ClientFault::Stalled);
        assert!(why.contains("body_read_timeout"), "{why}");
        let other = std::io::Error::other("connection reset by peer");
        assert!(client_fault(&other).is_none());
    }

    #[tokio::test]
    async fn sent_resolves_after_finish() {
        let u = Arc::new(Upload::default());
        let u2 = u.clone();
        let waiter = tokio::spawn(async move { u2.sent().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        u.frame(false);
        assert_eq!(u.progress(), (1, false));
        u.frame(true);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
