//! The response body drover sends downstream, and the per-request completion
//! bookkeeping that runs when it ends.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::errors::{BodyState, Cause, ClientFault};
use super::server::ConnActivity;
use crate::access_log::AccessRecord;
use crate::pool::{Inflight, Pool};
use crate::upstream::http1::Pooled;
use crate::upstream::response::UpBody;

pub use crate::upstream::body::RequestBody;

/// Body error type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs when a request is finished (its response body ended or was dropped):
/// gives the member's verdict on the exchange, ends its in-flight count,
/// records the duration, writes the access log.
/// Dropped before any response was made (the request future was cancelled:
/// the client went away), it books the request as `client` / 499. A backend
/// response is judged when its body ends, not at its head: read to the end,
/// the member's `consecutive_failures` is reset; broken on the backend's side
/// (reset, incomplete), it is the member's failure (`upstream`, fed to passive
/// ejection); dropped before its end (the client went away), it is the
/// client's (`client`), not the member's. The logged status stays the one sent.
pub struct Completion {
    pub started: Instant,
    pub pool: Option<Arc<Pool>>,
    /// The member's in-flight token; dropped with the completion.
    pub inflight: Option<Inflight>,
    /// A response was made for the request (by a backend or by drover).
    pub answered: bool,
    /// Boxed: present only when the access log is on, and it would triple this struct.
    pub log: Option<Box<AccessRecord>>,
    pub bytes: u64,
    /// The client connection's activity (for `idle_timeout`).
    pub conn: Option<Arc<ConnActivity>>,
    /// How the backend's response body went (set by [`ProxyBody`]).
    pub body: BodyState,
    /// The member's verdict is given at the body's end (false when the head
    /// already blamed it, a 502–504).
    pub judge: bool,
    /// The request is a gRPC call (`content-type: application/grpc*`): drover's
    /// own failures are told as gRPC statuses (see [`super::grpc`]).
    pub grpc: bool,
    /// The W3C trace context of this hop (set before routing).
    pub trace: Option<super::trace_context::Hop>,
}

impl Completion {
    pub fn new(started: Instant) -> Completion {
        Completion {
            started,
            pool: None,
            inflight: None,
            answered: false,
            log: None,
            bytes: 0,
            conn: None,
            body: BodyState::None,
            judge: false,
            grpc: false,
            trace: None,
        }
    }

    /// The member's verdict and the cause of a body that did not end well.
    /// Runs once per backend response, at its end: no per-frame cost.
    fn judge_body(&mut self) {
        let state = std::mem::take(&mut self.body);
        let (Some(pool), Some(token)) = (&self.pool, &self.inflight) else {
            return;
        };
        let stats = token.stats();
        let Some(cause) = state.cause() else {
            if self.judge
                && state == BodyState::Ended
                && stats.consecutive_failures.load(Ordering::Relaxed) != 0
            {
                stats.consecutive_failures.store(0, Ordering::Relaxed);
            }
            return;
        };
        pool.metrics.count_error(cause);
        if let Some(rec) = self.log.as_mut() {
            rec.error = Some(cause.label());
        }
        if !(self.judge && cause.blames_backend()) {
            return;
        }
        let n = stats.count_failure();
        let address = {
            let snap = pool.snapshot();
            snap.members
                .iter()
                .find(|m| token.is_for(&m.stats))
                .map(|m| m.address)
        };
        if let Some(address) = address {
            tracing::warn!(pool = %pool.name, backend = %address, cause = cause.label(), "backend failed in the response body");
            crate::pool::ejection::on_failure(
                pool,
                address,
                stats,
                n,
                "response body broken by the backend",
            );
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if self.body != BodyState::None {
            self.judge_body();
        }
        drop(self.inflight.take());
        if !self.answered && (self.pool.is_some() || self.log.is_some()) {
            let gone = Cause::Client(ClientFault::Gone);
            if let Some(p) = &self.pool {
                p.metrics.count_error(gone);
            }
            if let Some(rec) = self.log.as_mut() {
                rec.status = gone.status().as_u16();
                rec.error = Some(gone.label());
            }
        }
        if let Some(c) = self.conn.take() {
            c.end();
        }
        // Nothing to record (an empty completion left behind by a move): skip the clock.
        if self.pool.is_none() && self.log.is_none() {
            return;
        }
        let elapsed = self.started.elapsed();
        if let Some(p) = &self.pool {
            p.metrics.duration.observe(elapsed);
        }
        if let Some(mut rec) = self.log.take() {
            rec.bytes = self.bytes;
            rec.duration = elapsed;
            (*rec).send();
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body: streamed from a backend, or made by drover.
    pub struct ProxyBody {
        #[pin]
        inner: Inner,
        done: Option<Completion>,
    }
}

pin_project_lite::pin_project! {
    #[project = InnerProj]
    enum Inner {
        Upstream {
            #[pin]
            body: UpBody,
            // Returned to the pool when the body ends.
            conn: Option<Pooled>,
        },
        Full { data: Option<Bytes> },
    }
}

impl ProxyBody {
    /// A body streamed from a backend; `conn` goes back to the pool at its end.
    pub fn upstream(body: UpBody, conn: Option<Pooled>, mut done: Completion) -> ProxyBody {
        done.body = BodyState::Streaming;
        let mut b = ProxyBody {
            inner: Inner::Upstream { body, conn },
            done: Some(done),
        };
        b.release_if_ended();
        b
    }

    /// A complete body made by drover.
    pub fn full(data: impl Into<Bytes>, done: Option<Completion>) -> ProxyBody {
        let data: Bytes = data.into();
        let mut done = done;
        if let Some(d) = done.as_mut() {
            d.bytes = data.len() as u64;
        }
        ProxyBody {
            inner: Inner::Full {
                data: (!data.is_empty()).then_some(data),
            },
            done,
        }
    }

    /// Marks the end of this response on the client connection's activity
    /// (when the completion runs; at once if there is none).
    pub fn on_end(&mut self, conn: Arc<ConnActivity>) {
        match self.done.as_mut() {
            Some(d) => d.conn = Some(conn),
            None => conn.end(),
        }
    }

    /// An empty body.
    pub fn empty() -> ProxyBody {
        ProxyBody::full(Bytes::new(), None)
    }

    fn release_if_ended(&mut self) {
        if let Inner::Upstream { body, conn } = &mut self.inner {
            if body.is_end_stream() {
                ended(conn, &mut self.done);
            }
        }
    }
}

/// The backend's body was read to its end: its connection goes back to the
/// pool and the exchange is marked clean (the server may drop the body
/// without polling again once it has seen the end).
fn ended(conn: &mut Option<Pooled>, done: &mut Option<Completion>) {
    if let Some(c) = conn.take() {
        c.release();
    }
    if let Some(d) = done.as_mut() {
        d.body = BodyState::Ended;
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let mut end_with = None;
        let polled = match this.inner.as_mut().project() {
            InnerProj::Upstream { mut body, conn } => match body.as_mut().poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    if let (Some(d), Some(data)) = (this.done.as_mut(), frame.data_ref()) {
                        d.bytes += data.len() as u64;
                    }
                    // The server may not poll again once it sees the end (Content-Length
                    // reached): hand the connection back now.
                    if body.is_end_stream() {
                        ended(conn, this.done);
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(e))) => {
                    // The backend's side failed (reset, incomplete body): its
                    // failure, judged now.
                    conn.take();
                    let mut grpc = false;
                    if let Some(mut d) = this.done.take() {
                        d.body = BodyState::Broken;
                        grpc = d.grpc;
                    }
                    if grpc {
                        // A gRPC client is told UNAVAILABLE in trailers (a reset
                        // stream would read as INTERNAL), and the body ends there.
                        end_with = Some(super::grpc::broken_trailers(&e));
                        Poll::Pending
                    } else {
                        Poll::Ready(Some(Err(e.into())))
                    }
                }
                Poll::Ready(None) => {
                    ended(conn, this.done);
                    this.done.take();
                    Poll::Ready(None)
                }
            },
            InnerProj::Full { data } => match data.take() {
                Some(d) => Poll::Ready(Some(Ok(Frame::data(d)))),
                None => {
                    this.done.take();
                    Poll::Ready(None)
                }
            },
        };
        if let Some(trailers) = end_with {
            this.inner.set(Inner::Full { data: None });
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Upstream { body, .. } => body.is_end_stream(),
            Inner::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Upstream { body, .. } => body.size_hint(),
            Inner::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}
