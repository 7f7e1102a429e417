//! Sending a request: [`send`] opens the stream (its head encoded straight
//! into the connection's output), sends the body as the backend's windows
//! allow and waits for the response head, all in the caller's task; what is
//! left of the body when the head comes is sent by a task of its own
//! ([`Pipe`]), so the response is passed on while the client still sends.

use std::error::Error as StdError;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body;

use super::body::RespBody;
use super::conn::{lock, park, Conn, Handle, Shared, Side};
use super::error::{Error, Failed, H2Error, Kind};
use super::{head, strip_connection_fields, MAX_SEND_BUFFER};
use crate::h2wire::frame::{self, Reason};

/// The largest DATA frame drover sends: 64 KiB, or the backend's
/// SETTINGS_MAX_FRAME_SIZE when smaller.
const MAX_DATA_FRAME: u32 = 64 * 1024;

/// An HTTP/2 connection's request sender (cheap to clone: a handle). The
/// connection closes (GOAWAY) once every sender is dropped and its last
/// stream has ended.
pub struct Sender {
    pub(super) shared: Shared,
}

impl Clone for Sender {
    fn clone(&self) -> Sender {
        lock(&self.shared).senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut conn = lock(&self.shared);
        conn.senders = conn.senders.saturating_sub(1);
        if conn.senders == 0 {
            conn.wake_driver();
        }
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sender")
    }
}

impl Sender {
    /// Whether the connection has ended or is going away (no new stream).
    pub fn is_closed(&self) -> bool {
        lock(&self.shared).refuses_streams().is_some()
    }

    /// Opens a stream for `parts` when the backend takes one more (its head
    /// queued); its id.
    fn poll_open(
        &self,
        cx: &mut Context<'_>,
        parts: &http::request::Parts,
        eos: bool,
    ) -> Poll<Result<u32, H2Error>> {
        let mut conn = lock(&self.shared);
        if let Some(e) = conn.refuses_streams() {
            return Poll::Ready(Err(e));
        }
        if conn.active >= conn.stream_limit() {
            conn.open_waiters.push(cx.waker().clone());
            return Poll::Pending;
        }
        let id = conn.open(parts.method == Method::HEAD, eos);
        let max_frame = conn.peer.max_frame_size;
        let at = frame::begin_headers(&mut conn.out);
        head::encode_request(&mut conn.out, parts);
        frame::finish_headers(&mut conn.out, at, id, eos, max_frame);
        conn.wake_driver();
        Poll::Ready(Ok(id))
    }
}

/// Sends `req` as a new stream on `sender` and waits for the response head
/// (no timeout here: the caller bounds it). The body is sent meanwhile; what
/// is left of it when the head arrives is sent by a task of its own. A
/// connection at the backend's MAX_CONCURRENT_STREAMS makes it wait for a
/// stream to end; a closed or closing one gives the request back unsent.
pub async fn send<B>(sender: &mut Sender, req: Request<B>) -> Result<Response<RespBody>, Failed<B>>
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    send_keeping(sender, req, &mut None).await
}

/// [`send`], putting a request without a body in `kept` once its head went
/// out: whatever the outcome (a response, a failure, the caller's timeout
/// dropping this future), the caller has it back (to send it again, retry
/// it, or reuse its map) and keeps no copy of it.
pub async fn send_keeping<B>(
    sender: &mut Sender,
    req: Request<B>,
    kept: &mut Option<Request<B>>,
) -> Result<Response<RespBody>, Failed<B>>
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let (mut parts, body) = req.into_parts();
    strip_connection_fields(&mut parts.headers);
    let eos = body.is_end_stream();
    let id = match poll_fn(|cx| sender.poll_open(cx, &parts, eos)).await {
        Ok(id) => id,
        Err(e) => {
            return Err(Failed {
                error: Error::H2(e),
                sent: false,
                request: Some(Request::from_parts(parts, body)),
            })
        }
    };
    let recv = Handle::new(sender.shared.clone(), id, Side::Recv);
    let mut pipe = if eos {
        *kept = Some(Request::from_parts(parts, body));
        None
    } else {
        Some(Pipe {
            handle: Handle::new(sender.shared.clone(), id, Side::Send),
            body,
            held: None,
        })
    };
    let head = poll_fn(|cx| {
        if let Some(p) = &mut pipe {
            match p.poll_send(cx) {
                Poll::Ready(Ok(())) => pipe = None,
                // The stream was reset or the connection failed: the head's
                // side says why (or has the early answer).
                Poll::Ready(Err(Error::H2(_))) => pipe = None,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        poll_head(&recv, cx).map_err(Error::H2)
    })
    .await;
    match head {
        Ok((status, headers, ended)) => {
            if let Some(rest) = pipe {
                tokio::spawn(rest.finish());
            }
            let body = RespBody::new(recv, &headers, ended);
            let mut resp = Response::new(body);
            *resp.status_mut() = status;
            *resp.version_mut() = http::Version::HTTP_2;
            *resp.headers_mut() = headers;
            Ok(resp)
        }
        Err(error) => Err(Failed {
            error,
            sent: true,
            request: None,
        }),
    }
}

/// The response head, once it came; whether the stream's receiving side
/// has ended with it (nothing left to read).
fn poll_head(
    recv: &Handle,
    cx: &mut Context<'_>,
) -> Poll<Result<(StatusCode, HeaderMap, bool), H2Error>> {
    let mut conn = recv.lock();
    let Some(slot) = conn.streams.get_mut(&recv.id) else {
        return Poll::Ready(Err(H2Error::new(Kind::Closed, "stream gone")));
    };
    if let Some((status, headers)) = slot.head.take() {
        let ended = slot.recv_end && slot.data.is_empty() && slot.trailers.is_none();
        return Poll::Ready(Ok((status, headers, ended)));
    }
    if let Some(e) = &slot.error {
        return Poll::Ready(Err(e.clone()));
    }
    park(&mut slot.recv_waker, cx.waker());
    Poll::Pending
}

/// A request body being sent on its stream.
pub struct Pipe<B> {
    handle: Handle,
    body: B,
    /// A chunk taken from the body, waiting for send window; whether it is the last.
    held: Option<(Bytes, bool)>,
}

impl<B> Pipe<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    /// Sends what is left, then ends (a task's future; failures reset the stream).
    async fn finish(mut self) {
        if let Err(e) = poll_fn(|cx| self.poll_send(cx)).await {
            tracing::debug!(error = %e, "sending a request body upstream over HTTP/2 stopped");
        }
    }

    /// Sends body frames as the backend's windows allow, until the body has
    /// ended (`Ready(Ok)`), the stream was reset, or the body failed (the
    /// stream is then reset with CANCEL).
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            if let Some((mut chunk, last)) = self.held.take() {
                let mut conn = self.handle.lock();
                let sent = conn.send_data(self.handle.id, &mut chunk, last, cx);
                drop(conn);
                match sent {
                    Poll::Ready(Ok(())) if last => return Poll::Ready(Ok(())),
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::H2(e))),
                    Poll::Pending => {
                        self.held = Some((chunk, last));
                        return Poll::Pending;
                    }
                }
            }
            // Woken by a reset while the body has nothing to give.
            {
                let mut conn = self.handle.lock();
                let Some(slot) = conn.streams.get_mut(&self.handle.id) else {
                    return Poll::Ready(Err(Error::H2(H2Error::new(Kind::Closed, "stream gone"))));
                };
                if let Some(e) = &slot.error {
                    return Poll::Ready(Err(Error::H2(e.clone())));
                }
                park(&mut slot.send_waker, cx.waker());
            }
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(chunk) => {
                        let last = self.body.is_end_stream();
                        if !chunk.is_empty() || last {
                            self.held = Some((chunk, last));
                        }
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            let mut conn = self.handle.lock();
                            return Poll::Ready(
                                conn.send_trailers(self.handle.id, &trailers)
                                    .map_err(Error::H2),
                            );
                        }
                    }
                },
                Some(Err(e)) => {
                    let mut conn = self.handle.lock();
                    let err = H2Error::new(Kind::Cancelled, "the request body failed");
                    conn.fail_stream(self.handle.id, err, Some(Reason::CANCEL));
                    conn.wake_driver();
                    return Poll::Ready(Err(Error::Body(e.into())));
                }
                None => self.held = Some((Bytes::new(), true)),
            }
        }
    }
}

impl Conn {
    /// Queues as much of `chunk` as the windows and the output buffer take
    /// (DATA frames; END_STREAM with the end of the `last` chunk); `Ready`
    /// once all of it is queued, `Pending` (woken when there is room) else.
    fn send_data(
        &mut self,
        id: u32,
        chunk: &mut Bytes,
        last: bool,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), H2Error>> {
        let max_frame = self.peer.max_frame_size.min(MAX_DATA_FRAME) as usize;
        let mut queued = false;
        let r = loop {
            let Some(slot) = self.streams.get_mut(&id) else {
                break Poll::Ready(Err(H2Error::new(Kind::Closed, "stream gone")));
            };
            if let Some(e) = &slot.error {
                break Poll::Ready(Err(e.clone()));
            }
            if chunk.is_empty() {
                if last {
                    frame::write_data_head(&mut self.out, id, 0, true);
                    slot.send_end = true;
                    queued = true;
                    self.maybe_close(id);
                }
                break Poll::Ready(Ok(()));
            }
            if self.out.len() >= MAX_SEND_BUFFER {
                self.buffer_waiters.push(cx.waker().clone());
                break Poll::Pending;
            }
            let window = slot.send_window.min(self.send_window).max(0);
            let n = chunk.len().min(max_frame).min(window as usize);
            if n == 0 {
                slot.blocked = true;
                park(&mut slot.send_waker, cx.waker());
                break Poll::Pending;
            }
            let piece = chunk.split_to(n);
            let end = last && chunk.is_empty();
            frame::write_data_head(&mut self.out, id, n, end);
            self.out.extend_from_slice(&piece);
            slot.send_window -= n as i64;
            self.send_window -= n as i64;
            queued = true;
            if end {
                slot.send_end = true;
                self.maybe_close(id);
                break Poll::Ready(Ok(()));
            }
        };
        if queued {
            self.wake_driver();
        }
        r
    }

    /// Queues the request's trailers (HEADERS with END_STREAM).
    fn send_trailers(&mut self, id: u32, trailers: &HeaderMap) -> Result<(), H2Error> {
        let Some(slot) = self.streams.get_mut(&id) else {
            return Err(H2Error::new(Kind::Closed, "stream gone"));
        };
        if let Some(e) = &slot.error {
            return Err(e.clone());
        }
        slot.send_end = true;
        let max_frame = self.peer.max_frame_size;
        let at = frame::begin_headers(&mut self.out);
        head::encode_fields(&mut self.out, trailers);
        frame::finish_headers(&mut self.out, at, id, true, max_frame);
        self.maybe_close(id);
        self.wake_driver();
        Ok(())
    }
}
