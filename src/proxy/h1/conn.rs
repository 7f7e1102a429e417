//! One client connection on the native codec: read a head, dispatch it to
//! the proxy (the same routing and forwarding as hyper's path), write the
//! response, repeat; hand the connection to hyper at the first request the
//! native path does not handle.
//!
//! Timeouts are those of hyper's path, kept by the same
//! [`ConnActivity`]: `header_read_timeout` for the first head from accept and
//! for each later one from its first byte, `idle_timeout` between requests.
//! A client that closes while its request is forwarded cancels it (booked as
//! `client` / 499), as on hyper's path.

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http::header::CONNECTION;
use http::{Method, Request, Response, Version};
use http_body::Body;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::parse::{self, Head};
use super::rewind::Rewind;
use super::write::{self, Framing};
use super::{body, buf, count_handoff, count_native_request, ClientIn, HandOff};
use crate::proxy::body::ProxyBody;
use crate::proxy::conn_activity::ConnActivity;
use crate::proxy::server::stopped;

/// Response bytes gathered before a write: 32 KiB (the buffer stays within
/// what the per-thread pool keeps).
const WRITE_BATCH: usize = 32 * 1024;
/// A body chunk at least this large is written from its own buffer, not copied: 16 KiB.
const NO_COPY: usize = 16 * 1024;

pub use crate::proxy::conn_activity::Limits;

/// How the native path left a connection.
pub enum Ended<S> {
    /// Closed (by either side, a timeout, shutdown or an error).
    Closed,
    /// For hyper, with the bytes read so far replayed first.
    HandOff(Rewind<S>),
}

/// Serves `io` until it closes or is handed off. `dispatch` turns a request
/// into its response (marking the request begun on `activity`, and ended
/// when the response body is dropped).
pub async fn serve<S, F, Fut>(
    mut io: S,
    limits: Limits,
    activity: Arc<ConnActivity>,
    mut shutdown: watch::Receiver<bool>,
    mut dispatch: F,
) -> Ended<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(Request<ClientIn>) -> Fut,
    Fut: Future<Output = Result<Response<ProxyBody>, Infallible>>,
{
    let mut buf = buf::take();
    let mut closing = false;
    // One timer for the connection's life, re-armed only when it fires (no
    // timer work per request): it looks at the deadlines as hyper's path does.
    let next = |a: &ConnActivity| Instant::now() + a.next_check(limits.idle, limits.head);
    let mut check = pin!(tokio::time::sleep_until(next(&activity)));
    loop {
        // 1. A whole head (and body) in `buf`.
        let parsed = loop {
            if !buf.is_empty() {
                match parse::request_from(&mut buf, limits.max_head) {
                    Head::Ready(p) => break p,
                    Head::HandOff(why) => return hand_off(io, buf, why),
                    Head::Partial => {}
                }
            }
            if closing && buf.is_empty() {
                return closed(buf);
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(buf::BUF_SIZE);
            }
            tokio::select! {
                r = io.read_buf(&mut buf) => match r {
                    Ok(0) | Err(_) => return closed(buf),
                    Ok(_) => {}
                },
                _ = check.as_mut() => {
                    if activity.head_time_left(limits.head) == Some(Duration::ZERO) {
                        tracing::debug!("no request head within header_read_timeout; closing");
                        return closed(buf);
                    }
                    if buf.is_empty() && activity.idle_for() >= limits.idle {
                        return closed(buf);
                    }
                    check.as_mut().reset(next(&activity));
                }
                _ = stopped(&mut shutdown), if !closing => closing = true,
            }
        };
        // The head is off `buf` (its fields are slices of it).
        let (body, mut feed) = if parsed.body_len == 0 {
            // No split: splitting a buffer makes it shared (an allocation).
            (ClientIn::Full(Bytes::new()), None)
        } else if buf.len() as u64 >= parsed.body_len {
            // Within `buf.len()`, so it fits a usize.
            let whole = buf.split_to(parsed.body_len as usize).freeze();
            (ClientIn::Full(whole), None)
        } else {
            let (tx, rx) = body::channel(parsed.body_len);
            let feed = Feed {
                tx,
                left: parsed.body_len,
                dropped: false,
            };
            (ClientIn::Stream(rx), Some(feed))
        };
        let parse::Parsed {
            method,
            uri,
            headers,
            close,
            ..
        } = parsed;
        let head_request = method == Method::HEAD;
        let mut req = Request::new(body);
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = headers;
        count_native_request();

        // 2. The response, while feeding the body and watching the client
        //    (it may close, or pipeline the next request).
        let mut fut = pin!(dispatch(req));
        let mut permit = None;
        let resp = loop {
            if let Some(f) = feed.as_mut() {
                if f.left > 0 && !buf.is_empty() {
                    if let Some(p) = permit.take() {
                        f.send(p, &mut buf);
                    }
                }
            }
            let body_left = feed.as_ref().is_some_and(|f| f.left > 0);
            let want_room = feed
                .as_ref()
                .is_some_and(|f| f.left > 0 && !f.dropped && permit.is_none());
            // Body bytes one read at a time (handed on before the next read);
            // after the body, what the client pipelines, up to a head's worth.
            let read = if body_left {
                buf.is_empty()
            } else {
                buf.len() < limits.max_head
            };
            if read && buf.capacity() - buf.len() < 1024 {
                buf.reserve(buf::BUF_SIZE);
            }
            tokio::select! {
                biased;
                r = &mut fut => break r,
                p = room(feed.as_ref()), if want_room => match p {
                    Some(p) => permit = Some(p),
                    // The exchange let go of the body (it failed, or answered early).
                    None => {
                        if let Some(f) = feed.as_mut() {
                            f.dropped = true;
                        }
                    }
                },
                r = io.read_buf(&mut buf), if read => match r {
                    // Drops the request: booked as the client's (499).
                    Ok(0) | Err(_) => return closed(buf),
                    Ok(_) => {}
                },
            }
        };
        drop(permit);
        // A body not read to its end leaves no next request to find.
        closing |= feed.take().is_some_and(|f| f.left > 0);
        let Ok(mut resp) = resp;

        // 3. The response.
        closing |= close || *shutdown.borrow();
        if resp
            .headers()
            .get(CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
        {
            closing = true;
        }
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| r.as_bytes().to_vec());
        let exact = resp.body().size_hint().exact();
        // The write buffer comes from the pool only while a response is written:
        // an idle connection holds just its read buffer.
        let mut out = buf::take();
        let status = resp.status();
        let framing = write::head(
            &mut out,
            status,
            reason.as_deref(),
            resp.headers_mut(),
            head_request,
            exact,
            closing,
        );
        let (parts, body) = resp.into_parts();
        // Written: the map serves another head.
        crate::upstream::maps::give(parts.headers);
        let sent = send_body(&mut io, &mut out, body, framing).await;
        buf::give(out);
        if !sent {
            return closed(buf);
        }
        if closing {
            let _ = io.shutdown().await;
            return closed(buf);
        }
    }
}

/// Writes the head in `out` and the body under `framing`; `false` when the
/// connection cannot go on (write failed, body broken or not its length).
async fn send_body<S: AsyncWrite + Unpin>(
    io: &mut S,
    out: &mut BytesMut,
    body: ProxyBody,
    framing: Framing,
) -> bool {
    let mut body = pin!(body);
    let mut left = match framing {
        Framing::Length(n) => n,
        _ => u64::MAX,
    };
    if framing != Framing::None {
        loop {
            // Write what is gathered before waiting for the backend.
            let next = poll_fn(|cx| body.as_mut().poll_frame(cx));
            let frame = match next.now_or_never() {
                Some(f) => f,
                None => {
                    if !out.is_empty() && io.write_all(out).await.is_err() {
                        return false;
                    }
                    out.clear();
                    poll_fn(|cx| body.as_mut().poll_frame(cx)).await
                }
            };
            let data = match frame {
                None => break,
                Some(Err(_)) => {
                    // The backend's side broke: the client must not see an end.
                    let _ = io.write_all(out).await;
                    return false;
                }
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) => d,
                    // Trailers: not sent on HTTP/1.
                    Err(_) => continue,
                },
            };
            if data.is_empty() {
                continue;
            }
            if framing == Framing::Chunked {
                write::chunk_start(out, data.len());
            } else {
                let n = data.len() as u64;
                if n > left {
                    // More than announced: send what was, then end the connection.
                    out.extend_from_slice(&data[..left as usize]);
                    let _ = io.write_all(out).await;
                    return false;
                }
                left -= n;
            }
            if data.len() >= NO_COPY {
                if io.write_all(out).await.is_err() || io.write_all(&data).await.is_err() {
                    return false;
                }
                out.clear();
            } else {
                out.extend_from_slice(&data);
            }
            if framing == Framing::Chunked {
                out.extend_from_slice(write::CHUNK_END);
            }
            if out.len() >= WRITE_BATCH {
                if io.write_all(out).await.is_err() {
                    return false;
                }
                out.clear();
            }
        }
        match framing {
            Framing::Chunked => out.extend_from_slice(write::LAST_CHUNK),
            Framing::Length(_) if left != 0 => {
                let _ = io.write_all(out).await;
                return false;
            }
            _ => {}
        }
    }
    // The completion (access log, activity end) runs as the body is dropped, on return.
    out.is_empty() || io.write_all(out).await.is_ok()
}

/// The sending side of a streamed request body.
struct Feed {
    tx: mpsc::Sender<Bytes>,
    /// Body bytes not yet handed on.
    left: u64,
    /// The exchange dropped the body: nothing more is handed on.
    dropped: bool,
}

impl Feed {
    /// Hands on the body bytes at the start of `buf` (at most what is left).
    fn send(&mut self, permit: mpsc::OwnedPermit<Bytes>, buf: &mut BytesMut) {
        // At most `buf.len()`, so it fits a usize.
        let n = (buf.len() as u64).min(self.left) as usize;
        self.left -= n as u64;
        permit.send(buf.split_to(n).freeze());
    }
}

/// Room in the body channel (`None`: the receiver is gone; pending forever without a feed).
async fn room(feed: Option<&Feed>) -> Option<mpsc::OwnedPermit<Bytes>> {
    match feed {
        Some(f) => f.tx.clone().reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}

fn closed<S>(buf: BytesMut) -> Ended<S> {
    buf::give(buf);
    Ended::Closed
}

fn hand_off<S>(io: S, buf: BytesMut, why: HandOff) -> Ended<S> {
    count_handoff(why);
    tracing::trace!(reason = why.label(), "HTTP/1 connection handed to hyper");
    Ended::HandOff(Rewind::new(buf.freeze(), io))
}
