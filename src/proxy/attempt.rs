//! One attempt on one member: connect (or reuse), send, wait for the response
//! head; every failure classified into a [`ProxyError`].
//!
//! `request_timeout` counts from the moment the request has been sent in full
//! (Envoy's route timeout): a request without a body is sent at once, an
//! upload when its last byte has been handed to the connection. While an
//! upload is going, the client is bounded by `server.body_read_timeout`
//! (see [`crate::upstream::body`]) and the backend by `request_timeout` without
//! taking any of it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use futures_util::FutureExt;
use http::{Request, Response};
use hyper::body::Incoming;

use super::body::RequestBody;
use super::errors::{Cause, ProxyError};
use crate::config::{Http1Codec, PoolConfig, Protocol};
use crate::pool::Member;
use crate::upstream::body::{client_fault, Upload};
use crate::upstream::h2_client;
use crate::upstream::http1::{self, Conn};
use crate::upstream::http2::{self, Checkout};
use crate::upstream::native::{self, Exchanged};
use crate::upstream::response::UpBody;
use crate::upstream::tls::UpstreamTls;

/// How one attempt ended.
#[allow(clippy::large_enum_variant)] // Once per attempt: boxing would allocate.
pub enum Attempt {
    /// The response head; the hyper connection it came on (a native
    /// exchange's body holds its connection and gives it back itself); the
    /// request, when the attempt gives it back ([`gives_back`]): kept for a
    /// retry on the response's status, else its header map is recycled.
    Response(Response<UpBody>, Option<Conn>, Option<Request<RequestBody>>),
    /// Failed; the request comes back when it was not sent.
    Failed(ProxyError, Option<Request<RequestBody>>),
}

/// The cause of a failed exchange with `addr`: the client's when reading its
/// body failed, else the connection's (`sent` = the request went out).
pub fn classify(e: &(dyn std::error::Error + 'static), sent: bool, addr: SocketAddr) -> ProxyError {
    let why = || match crate::upstream::tls::tls_cause(e) {
        Some(tls) => format!("backend {addr}: {e} (TLS: {tls})"),
        None => format!("backend {addr}: {e}"),
    };
    match client_fault(e) {
        Some((fault, why)) => ProxyError::new(Cause::Client(fault), why),
        None if sent => ProxyError::new(Cause::Upstream, why()),
        None => ProxyError::new(Cause::Connect, why()),
    }
}

fn timed_out(addr: SocketAddr, timeout: Duration, what: &str) -> Attempt {
    Attempt::Failed(timeout_error(addr, timeout, what), None)
}

fn timeout_error(addr: SocketAddr, timeout: Duration, what: &str) -> ProxyError {
    ProxyError::new(
        Cause::Timeout,
        format!("backend {addr} {what} within {timeout:?}"),
    )
}

/// One attempt on `member`: connect (or reuse), send, wait for the response
/// head up to `request_timeout` (the route's, else the pool's; less for a gRPC deadline).
/// A free function, so the request's state is not borrowed while it waits.
pub async fn attempt(
    member: &Member,
    request: Request<RequestBody>,
    cfg: &PoolConfig,
    request_timeout: Duration,
) -> Attempt {
    let addr = member.address;
    let tls = cfg.tls.as_deref();
    let kind = cfg.protocol.kind;
    let auto_h2 = kind == Protocol::Auto && tls.is_some() && !http2::speaks_http1(addr, tls);
    if kind.always_h2() || auto_h2 {
        // Boxed: keeps the HTTP/1.1 path's future as small as it was.
        return Box::pin(attempt_h2(addr, request, cfg, request_timeout)).await;
    }
    if native_takes(cfg, request.method(), request.headers(), request.body()) {
        return attempt_native(addr, request, cfg, request_timeout).await;
    }
    attempt_h1(addr, tls, request, cfg.connect_timeout, request_timeout).await
}

/// Whether [`attempt`] gives this request back from every outcome (in the
/// response or the failure), so that the caller keeps no copy for a retry:
/// the native HTTP/1.1 client only borrows it ([`native_takes`]); an HTTP/2
/// attempt keeps a copy of a body-less request's head anyway, to send it again
/// when the backend refuses its stream ([`attempt_h2`]). (Not said of `auto`
/// pools: a member known to speak HTTP/1.1 takes hyper's HTTP/1.1 client.)
pub fn gives_back(
    cfg: &PoolConfig,
    method: &http::Method,
    headers: &http::HeaderMap,
    body: &RequestBody,
) -> bool {
    let h2 = cfg.protocol.kind.always_h2() && matches!(body, RequestBody::Empty);
    h2 || native_takes(cfg, method, headers, body)
}

/// Whether [`attempt`] sends this request over the native HTTP/1.1 client:
/// `server.http1_codec = "native"`, a plain HTTP/1.1 pool, no body, no
/// upgrade, not CONNECT. Such a request comes back from any failed attempt
/// (`Attempt::Failed(_, Some(request))`), so nothing needs keeping for a retry.
pub fn native_takes(
    cfg: &PoolConfig,
    method: &http::Method,
    headers: &http::HeaderMap,
    body: &RequestBody,
) -> bool {
    cfg.http1_client == Http1Codec::Native
        && cfg.tls.is_none()
        && !cfg.protocol.kind.always_h2()
        && matches!(body, RequestBody::Empty)
        && method != http::Method::CONNECT
        && !headers.contains_key(http::header::UPGRADE)
}

/// [`attempt`] over the native HTTP/1.1 client ([`native::exchange`]): the
/// request goes back to the caller however the attempt failed (the client
/// only borrows it); whether it was sent is in the error's cause.
async fn attempt_native(
    addr: SocketAddr,
    request: Request<RequestBody>,
    cfg: &PoolConfig,
    request_timeout: Duration,
) -> Attempt {
    let idle_for = cfg.upstream_idle_timeout;
    let ct = cfg.connect_timeout;
    let (cause, why) = match native::exchange(addr, &request, ct, request_timeout, idle_for).await {
        Exchanged::Response(resp) => {
            return Attempt::Response(resp.map(UpBody::Native), None, Some(request))
        }
        Exchanged::TimedOut => (
            Cause::Timeout,
            format!("backend {addr} did not answer within {request_timeout:?}"),
        ),
        Exchanged::NoConnection(e) => (Cause::Connect, format!("backend {addr}: {e}")),
        Exchanged::Failed(e) if !e.sent => (Cause::Connect, format!("backend {addr}: {e}")),
        Exchanged::Failed(e) => (Cause::Upstream, format!("backend {addr}: {e}")),
    };
    Attempt::Failed(ProxyError::new(cause, why), Some(request))
}

/// [`attempt`] over HTTP/1.1: a pooled connection, or a new one.
async fn attempt_h1(
    addr: SocketAddr,
    tls: Option<&UpstreamTls>,
    request: Request<RequestBody>,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Attempt {
    let (sender, reused) = match http1::checkout(addr, tls, connect_timeout).await {
        Ok(s) => s,
        Err(e) => {
            let err = ProxyError::new(Cause::Connect, format!("backend {addr}: {e}"));
            return Attempt::Failed(err, Some(request));
        }
    };
    match send(sender, request, request_timeout, addr).await {
        // A pooled connection closed under us before the request went out:
        // try a fresh connection to the same member (not a retry). Boxed:
        // rare, and it would double this future's size.
        Attempt::Failed(e, Some(r)) if reused && e.cause == Cause::Connect => {
            Box::pin(send_fresh(addr, tls, r, connect_timeout, request_timeout)).await
        }
        a => a,
    }
}

type Sent = Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<RequestBody>>>;

/// The outcome of hyper's `try_send_request` on an HTTP/1.1 connection.
fn outcome(r: Sent, sender: http1::Sender, addr: SocketAddr) -> Attempt {
    match r {
        Ok(resp) => Attempt::Response(resp.map(UpBody::Hyper), Some(Conn::H1(sender)), None),
        Err(mut e) => {
            let returned = e.take_message();
            let err = classify(e.error(), returned.is_none(), addr);
            Attempt::Failed(err, returned)
        }
    }
}

/// Sends `request` on `sender` and waits for the response head, up to
/// `timeout` after the request is sent. Not an `async fn`: the request is
/// handed over at once, so the future does not also keep a slot for it; a
/// request with a body takes the boxed [`upload_then`] path.
fn send(
    mut sender: http1::Sender,
    request: Request<RequestBody>,
    timeout: Duration,
    addr: SocketAddr,
) -> impl Future<Output = Attempt> {
    let upload = request.body().upload();
    let response = sender.try_send_request(request);
    if let Some(upload) = upload {
        return Either::Right(Box::pin(async move {
            match upload_then(response, upload, timeout, addr).await {
                Ok(r) => outcome(r, sender, addr),
                Err(timed_out) => timed_out,
            }
        }));
    }
    // `map`, not `async move { response.await }`: awaiting a captured future
    // would give it a second slot in the state machine.
    let response = tokio::time::timeout(timeout, response);
    Either::Left(response.map(move |r| match r {
        Err(_) => timed_out(addr, timeout, "did not answer"),
        Ok(r) => outcome(r, sender, addr),
    }))
}

/// Waits for `response` to an exchange whose request has a body: `timeout`
/// starts once the body has been sent; until then the backend fails only by
/// taking none of it for `timeout` while the client has more (a client that
/// stalls is the body's read timeout). `Err` is the timed-out attempt.
async fn upload_then<F: Future>(
    response: F,
    upload: Arc<Upload>,
    timeout: Duration,
    addr: SocketAddr,
) -> Result<F::Output, Attempt> {
    tokio::pin!(response);
    let mut seen = upload.progress().0;
    loop {
        tokio::select! {
            biased;
            r = &mut response => return Ok(r),
            _ = upload.sent() => break,
            _ = tokio::time::sleep(timeout) => {
                let (frames, waiting_on_client) = upload.progress();
                if frames == seen && !waiting_on_client {
                    return Err(timed_out(addr, timeout, "took none of the request body"));
                }
                seen = frames;
            }
        }
    }
    match tokio::time::timeout(timeout, response).await {
        Err(_) => Err(timed_out(addr, timeout, "did not answer")),
        Ok(r) => Ok(r),
    }
}

/// Sends `request` as a stream on `stream`'s HTTP/2 connection and waits for
/// the response head, as [`send`]. A stream the backend refused unprocessed
/// (GOAWAY, REFUSED_STREAM), or a connection that closed before the stream
/// opened, marks the connection dead and is a `connect` failure: the first
/// without the request ([`attempt_h2`] rebuilds it when it can), the second
/// with it.
async fn send_h2(
    mut stream: http2::Stream,
    request: Request<RequestBody>,
    timeout: Duration,
    addr: SocketAddr,
) -> Attempt {
    let upload = request.body().upload();
    // A request without a body comes back here once its head went out.
    let mut kept = None;
    let exchange = h2_client::send_keeping(&mut stream.sender, request, &mut kept);
    let r = match upload {
        // Boxed: a streamed upload is the rarer case, and its state would
        // double the size of every HTTP/2 attempt's future.
        Some(upload) => match Box::pin(upload_then(exchange, upload, timeout, addr)).await {
            Ok(r) => r,
            Err(timed_out) => return timed_out,
        },
        None => match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => {
                let e = timeout_error(addr, timeout, "did not answer");
                return Attempt::Failed(e, kept);
            }
        },
    };
    match r {
        Ok(resp) => Attempt::Response(resp.map(UpBody::H2), Some(Conn::H2(stream)), kept),
        Err(f) => {
            if f.request.is_some() {
                // The connection closed (or is closing) before the stream opened.
                stream.mark_dead();
            } else if f.error.unprocessed() {
                stream.mark_dead();
                let why = format!("backend {addr} refused the stream unprocessed: {}", f.error);
                return Attempt::Failed(ProxyError::new(Cause::Connect, why), kept);
            }
            Attempt::Failed(classify(&f.error, f.sent, addr), f.request.or(kept))
        }
    }
}

/// [`send`] on a new connection to `addr`.
async fn send_fresh(
    addr: SocketAddr,
    tls: Option<&UpstreamTls>,
    request: Request<RequestBody>,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Attempt {
    match http1::connect(addr, tls, connect_timeout).await {
        Ok(s) => send(s, request, request_timeout, addr).await,
        Err(ce) => Attempt::Failed(
            ProxyError::new(Cause::Connect, format!("backend {addr}: {ce}")),
            Some(request),
        ),
    }
}

/// How many times an HTTP/2 request that did not go out is sent again to the
/// same member (each time on another connection). 3.
pub const H2_RESENDS: u32 = 3;

/// The request line and headers of a request without a body, kept to give
/// it back after hyper's HTTP/1.1 client (an `auto` member that chose
/// HTTP/1.1) consumed it.
struct Unsent {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: http::HeaderMap,
}

impl Unsent {
    fn of(r: &Request<RequestBody>) -> Option<Unsent> {
        matches!(r.body(), RequestBody::Empty).then(|| Unsent {
            method: r.method().clone(),
            uri: r.uri().clone(),
            version: r.version(),
            headers: r.headers().clone(),
        })
    }

    fn into_request(self) -> Request<RequestBody> {
        let mut r = Request::new(RequestBody::Empty);
        *r.method_mut() = self.method;
        *r.uri_mut() = self.uri;
        *r.version_mut() = self.version;
        *r.headers_mut() = self.headers;
        r
    }
}

/// [`attempt`] over HTTP/2: a stream slot on a connection to `addr`. A request
/// that did not go out (the connection closed first, or the backend refused
/// the stream with GOAWAY) is sent again on another connection to the same
/// member (not a retry; the one that failed takes no new stream), up to
/// [`H2_RESENDS`] times; after that it goes back to the caller as a `connect`
/// failure (another member may take it). A refused request whose body was
/// streamed already cannot be sent again: an `upstream` failure.
///
/// In an `auto` pool over TLS, a member that selects HTTP/1.1 by ALPN gets
/// the request over HTTP/1.1 (on the connection just opened, or a pooled one).
///
/// A request without a body comes back from every outcome (the HTTP/2
/// client gives it back; after hyper's HTTP/1.1 client, rebuilt from a
/// copy): see [`gives_back`].
async fn attempt_h2(
    addr: SocketAddr,
    mut request: Request<RequestBody>,
    cfg: &PoolConfig,
    request_timeout: Duration,
) -> Attempt {
    let tls = cfg.tls.as_deref();
    let auto = cfg.protocol.kind == Protocol::Auto;
    let lost = |e: ProxyError| {
        ProxyError::new(
            Cause::Upstream,
            format!(
                "{}; its body was streamed already, so it is not sent again",
                e.detail
            ),
        )
    };
    let mut resends = 0;
    loop {
        let max = cfg.protocol.max_streams_per_connection;
        // A connection with room: no await, no connecting state in this future.
        let checkout = match http2::checkout_ready(addr, tls, max) {
            Some(c) => Ok(c),
            None => {
                let (ct, idle) = (cfg.connect_timeout, cfg.upstream_idle_timeout);
                Box::pin(http2::checkout(addr, tls, auto, max, ct, idle)).await
            }
        };
        let stream = match checkout {
            Ok(Checkout::H2(s, _reused)) => s,
            Ok(Checkout::Http1(opened)) => {
                // hyper's HTTP/1.1 client consumes the request: a copy to give back.
                let unsent = Unsent::of(&request);
                http2::to_h1(&mut request);
                let a = match opened {
                    Some(s) => send(s, request, request_timeout, addr).await,
                    None => {
                        let ct = cfg.connect_timeout;
                        Box::pin(attempt_h1(addr, tls, request, ct, request_timeout)).await
                    }
                };
                return give_back(a, unsent);
            }
            Err(e) => {
                let err = ProxyError::new(Cause::Connect, format!("backend {addr}: {e}"));
                return Attempt::Failed(err, Some(request));
            }
        };
        http2::to_h2(&mut request, addr, tls.is_some());
        match send_h2(stream, request, request_timeout, addr).await {
            Attempt::Failed(e, returned) if e.cause == Cause::Connect => match returned {
                None => return Attempt::Failed(lost(e), None),
                Some(r) if resends >= H2_RESENDS => return Attempt::Failed(e, Some(r)),
                Some(r) => {
                    resends += 1;
                    request = r;
                }
            },
            a => return a,
        }
    }
}

/// `a` with the request rebuilt from `unsent` where the attempt consumed it:
/// a request without a body comes back from every outcome ([`gives_back`]).
fn give_back(a: Attempt, unsent: Option<Unsent>) -> Attempt {
    match a {
        Attempt::Failed(e, None) => Attempt::Failed(e, unsent.map(Unsent::into_request)),
        Attempt::Response(resp, conn, None) => {
            Attempt::Response(resp, conn, unsent.map(Unsent::into_request))
        }
        a => a,
    }
}
