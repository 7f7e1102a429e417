//! The HTTP/2 client: requests sent as streams on the `h2` crate's connection
//! directly, from the task that forwards them.
//!
//! hyper's HTTP/2 client handed each request through a channel to the
//! connection's task, which opened the stream and spawned one more task per
//! request to wait for the response head and hand it back through a oneshot:
//! per request a task spawned, three channels and four wake-ups across tasks.
//! Here the connection's task ([`handshake`]) only moves frames; [`send`]
//! opens the stream, sends the body and waits for the response head in the
//! caller's task, and [`RespBody`] is read there too (it gives flow-control
//! capacity back as data is passed on).
//!
//! A request body is sent by the same future that waits for the head. When
//! the head comes before the body has been sent in full (a streaming gRPC
//! call, an early answer), the rest of the body is sent by a task of its own
//! ([`Pipe`]), so the response is passed on while the client still sends.
//! Connection-specific fields are removed before the head goes out (RFC 9113
//! §8.2.2; `te` is kept only as `trailers`), as hyper did.

use std::error::Error as StdError;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use h2::{RecvStream, SendStream};
use http::header::{CONNECTION, TE, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite};

use super::http1::ConnectError;

/// An HTTP/2 connection's request sender (cheap to clone: a handle).
pub type Sender = SendRequest<Bytes>;

/// How much of one response the backend may send before drover has passed it
/// on (the stream's flow-control window, RFC 9113 §6.9). 256 KiB: a response up
/// to that size comes without a WINDOW_UPDATE round trip, and a slow client holds
/// at most that much of its response in drover. (hyper's adaptive window, used
/// at first, started at 64 KiB − 1, one byte short of a 64 KiB response.)
pub const STREAM_WINDOW: u32 = 256 * 1024;
/// The connection's flow-control window: 16 MiB, so that 64 streams whose
/// clients read slowly still leave the connection room for the others.
pub const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;
/// The largest response head (field section, decoded) taken from a backend:
/// 64 KiB (hyper's client allowed 16 KiB; gRPC metadata can be larger).
pub const MAX_HEADER_LIST: u32 = 64 * 1024;
/// Body bytes buffered per connection for sending before a stream waits for
/// the backend's window: 1 MiB (hyper's default).
pub const MAX_SEND_BUFFER: usize = 1024 * 1024;

/// Why an exchange failed.
#[derive(Debug)]
pub enum Error {
    /// The connection or the stream: reset, GOAWAY, a protocol error, I/O.
    H2(h2::Error),
    /// Reading the request body failed (the client's fault: the error is the
    /// body's own, e.g. [`super::body::BodyError`]).
    Body(Box<dyn StdError + Send + Sync>),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::H2(e) => write!(f, "http2 error: {e}"),
            Error::Body(e) => e.fmt(f),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::H2(e) => Some(e),
            Error::Body(e) => Some(&**e),
        }
    }
}

impl Error {
    /// Whether the backend certainly did not process the request: its
    /// stream refused by GOAWAY (above the last stream id the backend
    /// accepted, RFC 9113 §6.8) or reset with REFUSED_STREAM (§8.7).
    pub fn unprocessed(&self) -> bool {
        match self {
            Error::H2(e) => unprocessed(e),
            Error::Body(_) => false,
        }
    }
}

/// [`Error::unprocessed`] of an `h2` error.
pub fn unprocessed(e: &h2::Error) -> bool {
    let reason = e.reason();
    reason == Some(h2::Reason::REFUSED_STREAM)
        || (e.is_go_away() && e.is_remote() && reason == Some(h2::Reason::NO_ERROR))
}

/// A failed [`send`].
pub struct Failed<B> {
    pub error: Error,
    /// Whether the request's head went out (a stream was opened).
    pub sent: bool,
    /// The request, when nothing of it was sent (the connection was closed
    /// or going away before the stream opened).
    pub request: Option<Request<B>>,
}

impl<B> std::fmt::Debug for Failed<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Failed")
            .field("error", &self.error)
            .field("sent", &self.sent)
            .finish()
    }
}

/// Opens the HTTP/2 connection on a connected transport (plain TCP, or TLS
/// that negotiated `h2`) and spawns its driver task, which calls `on_close`
/// when the connection has ended.
pub async fn handshake<IO>(
    io: IO,
    addr: SocketAddr,
    on_close: impl FnOnce() + Send + 'static,
) -> Result<Sender, ConnectError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(ConnectError::H2)?;
    // Unconstrained by tokio's cooperative budget: the driver of one connection
    // carries up to `max_streams_per_connection` requests' frames, and with the
    // budget it yielded after ~128 socket operations to the back of a run queue
    // holding every request's task: at c=64 (h2load -m 10) a member's requests
    // ran at the pace of one connection poll per scheduler round (bench/RESULTS.md,
    // h2 section). What one poll can read is bounded by the flow-control windows.
    tokio::spawn(tokio::task::unconstrained(async move {
        if let Err(e) = conn.await {
            tracing::debug!(backend = %addr, error = %e, "upstream h2 connection ended");
        }
        on_close();
    }));
    Ok(sender)
}

/// Removes what HTTP/2 forbids in a request head (RFC 9113 §8.2.2): the
/// connection-specific fields, the fields `Connection` names, and `te` unless
/// it is `trailers`. One pass over the names first: a proxied request has
/// had its hop-by-hop fields removed already, so there is mostly nothing to do.
pub fn strip_connection_fields(h: &mut HeaderMap) {
    let forbidden = |(n, v): (&HeaderName, &http::HeaderValue)| {
        n == CONNECTION
            || (n == TE && v != "trailers")
            || n == TRANSFER_ENCODING
            || n == UPGRADE
            || n.as_str() == "keep-alive"
            || n.as_str() == "proxy-connection"
    };
    if !h.iter().any(forbidden) {
        return;
    }
    if let Some(listed) = h.remove(CONNECTION) {
        if let Ok(names) = listed.to_str() {
            for name in names.split(',') {
                if let Ok(n) = HeaderName::from_bytes(name.trim().as_bytes()) {
                    h.remove(n);
                }
            }
        }
    }
    for name in ["keep-alive", "proxy-connection"] {
        h.remove(name);
    }
    h.remove(TRANSFER_ENCODING);
    h.remove(UPGRADE);
    // Every `te` line counts: one that is not `trailers` removes them all,
    // then `trailers` goes back alone if a line said so.
    if h.get_all(TE).iter().any(|te| te != "trailers") {
        let trailers = h.get_all(TE).iter().any(|te| te == "trailers");
        h.remove(TE);
        if trailers {
            h.insert(TE, http::HeaderValue::from_static("trailers"));
        }
    }
}

/// Sends `req` as a new stream on `sender` and waits for the response head
/// (no timeout here: the caller bounds it). The body is sent meanwhile; what
/// is left of it when the head arrives is sent by a task of its own.
pub async fn send<B>(sender: &mut Sender, req: Request<B>) -> Result<Response<RespBody>, Failed<B>>
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    if let Err(e) = poll_fn(|cx| sender.poll_ready(cx)).await {
        return Err(Failed {
            error: Error::H2(e),
            sent: false,
            request: Some(req),
        });
    }
    let (mut head, body) = req.into_parts();
    strip_connection_fields(&mut head.headers);
    let eos = body.is_end_stream();
    let (mut response, tx) = match sender.send_request(Request::from_parts(head, ()), eos) {
        Ok(opened) => opened,
        // Nothing went out: a head the codec refuses (it would fail the same
        // way again), or the connection's GOAWAY ([`Error::unprocessed`] says
        // so, and the caller sends it again elsewhere).
        Err(e) => {
            return Err(Failed {
                error: Error::H2(e),
                sent: true,
                request: None,
            })
        }
    };
    let mut pipe = (!eos).then(|| Pipe::new(tx, body));
    let head = poll_fn(|cx| head_or_pipe(cx, &mut response, &mut pipe)).await;
    match head {
        Ok(resp) => {
            if let Some(rest) = pipe {
                tokio::spawn(rest.finish());
            }
            let (parts, recv) = resp.into_parts();
            let body = RespBody::new(recv, &parts.headers);
            Ok(Response::from_parts(parts, body))
        }
        Err(error) => Err(Failed {
            error,
            sent: true,
            request: None,
        }),
    }
}

/// Polls the response head, and the body being sent until it has been sent.
fn head_or_pipe<B>(
    cx: &mut Context<'_>,
    response: &mut ResponseFuture,
    pipe: &mut Option<Pipe<B>>,
) -> Poll<Result<Response<RecvStream>, Error>>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    if let Some(p) = pipe {
        match p.poll_send(cx) {
            Poll::Ready(Ok(())) => *pipe = None,
            Poll::Ready(Err(Error::H2(_))) => {
                // The stream was reset or the connection failed: the response
                // future says why (or has the early answer).
                *pipe = None;
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
    }
    Pin::new(response).poll(cx).map_err(Error::H2)
}

/// A request body being sent on its stream.
pub struct Pipe<B> {
    tx: SendStream<Bytes>,
    body: B,
    /// A chunk taken from the body, waiting for send capacity; whether it is the last.
    held: Option<(Bytes, bool)>,
}

impl<B> Pipe<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    fn new(tx: SendStream<Bytes>, body: B) -> Self {
        Pipe {
            tx,
            body,
            held: None,
        }
    }

    /// Sends what is left, then ends (a task's future; failures reset the stream).
    async fn finish(mut self) {
        if let Err(e) = poll_fn(|cx| self.poll_send(cx)).await {
            tracing::debug!(error = %e, "sending a request body upstream over HTTP/2 stopped");
        }
    }

    /// Sends body frames as the backend's window allows, until the body has
    /// ended (`Ready(Ok)`), the stream was reset, or the body failed (the
    /// stream is reset with CANCEL).
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            // Wakes this task when the backend resets the stream.
            if let Poll::Ready(r) = self.tx.poll_reset(cx) {
                let e = r.map_or_else(|e| e, h2::Error::from);
                return Poll::Ready(Err(Error::H2(e)));
            }
            if let Some((chunk, last)) = self.held.take() {
                while self.tx.capacity() == 0 {
                    match self.tx.poll_capacity(cx) {
                        Poll::Pending => {
                            self.held = Some((chunk, last));
                            return Poll::Pending;
                        }
                        Poll::Ready(Some(Ok(_))) => {}
                        Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(Error::H2(e))),
                        Poll::Ready(None) => {
                            return Poll::Ready(Err(Error::H2(h2::Reason::STREAM_CLOSED.into())))
                        }
                    }
                }
                self.tx.send_data(chunk, last).map_err(Error::H2)?;
                if last {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            // The body first, capacity after: reserving capacity for a body
            // that has nothing yet would pin the connection's window.
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(chunk) => {
                        let last = self.body.is_end_stream();
                        if chunk.is_empty() {
                            self.tx.send_data(chunk, last).map_err(Error::H2)?;
                            if last {
                                return Poll::Ready(Ok(()));
                            }
                        } else {
                            self.tx.reserve_capacity(1);
                            self.held = Some((chunk, last));
                        }
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            self.tx.reserve_capacity(0);
                            self.tx.send_trailers(trailers).map_err(Error::H2)?;
                            return Poll::Ready(Ok(()));
                        }
                    }
                },
                Some(Err(e)) => {
                    self.tx.send_reset(h2::Reason::CANCEL);
                    return Poll::Ready(Err(Error::Body(e.into())));
                }
                None => {
                    self.tx.send_data(Bytes::new(), true).map_err(Error::H2)?;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

/// A response body from an HTTP/2 backend: data as it arrives (its
/// flow-control capacity given back as it is passed on), then the trailers.
///
/// A reset ends it with an error, NO_ERROR too: `h2` keeps the end of a
/// response that came whole (END_STREAM) before the reset, which is the only
/// place RFC 9113 §8.1 gives NO_ERROR (the server needs no more of the
/// request), so a reset seen here cut the response short. (hyper's client
/// passed such a response on as complete.) That reset is [`RespError::Cut`],
/// which carries no `h2` reason: hyper's server resets the client's stream
/// with the reason it finds in a body error, and NO_ERROR there would tell
/// an HTTP/2 client that the shorter response was whole.
#[derive(Debug)]
pub struct RespBody {
    recv: RecvStream,
    data_done: bool,
    /// Bytes still to come by `content-length`, when it gave one.
    left: Option<u64>,
}

impl RespBody {
    /// The body of a response with these `headers`: its length by
    /// `content-length` (which `h2` checks against the data received) is
    /// the size hint.
    fn new(recv: RecvStream, headers: &HeaderMap) -> Self {
        let left = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| super::native::head::content_length(v.as_bytes()));
        RespBody {
            recv,
            data_done: false,
            left,
        }
    }
}

/// Why an HTTP/2 response body failed.
#[derive(Debug)]
pub enum RespError {
    /// The stream or the connection failed (a reset, GOAWAY, I/O).
    H2(h2::Error),
    /// The backend ended the stream with NO_ERROR (a reset, or GOAWAY and
    /// close) before the response's end.
    Cut,
}

impl std::fmt::Display for RespError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RespError::H2(e) => write!(f, "http2 error: {e}"),
            RespError::Cut => f.write_str(
                "the backend ended the stream (NO_ERROR) before the end of its response",
            ),
        }
    }
}

impl StdError for RespError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            RespError::H2(e) => Some(e),
            RespError::Cut => None,
        }
    }
}

impl From<h2::Error> for RespError {
    fn from(e: h2::Error) -> Self {
        // A reset or a GOAWAY: either way the response did not come whole.
        if e.reason() == Some(h2::Reason::NO_ERROR) {
            RespError::Cut
        } else {
            RespError::H2(e)
        }
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = RespError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RespError>>> {
        if !self.data_done {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    if let Some(left) = &mut self.left {
                        *left = left.saturating_sub(data.len() as u64);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                None => self.data_done = true,
            }
        }
        match ready!(self.recv.poll_trailers(cx)) {
            Ok(t) => Poll::Ready(t.map(|t| Ok(Frame::trailers(t)))),
            Err(e) => Poll::Ready(Some(Err(e.into()))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.recv.is_end_stream() {
            return SizeHint::with_exact(0);
        }
        match self.left {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests;
