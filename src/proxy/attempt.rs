//! One attempt on one member: connect (or reuse), send, wait for the response
//! head; every failure classified into a [`ProxyError`].
//!
//! `request_timeout` counts from the moment the request has been sent in full
//! (Envoy's route timeout): a request without a body is sent at once, an
//! upload when its last byte has been handed to the connection. While an
//! upload is going, the client is bounded by `server.body_read_timeout`
//! (see [`super::upload`]) and the backend by `request_timeout` without
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
use super::upload::{client_fault, Upload};
use super::upstream::{self, Sender};
use crate::config::PoolConfig;
use crate::pool::Member;

/// How one attempt ended.
pub enum Attempt {
    Response(Response<Incoming>, Sender),
    /// Failed; the request comes back when it was not sent.
    Failed(ProxyError, Option<Request<RequestBody>>),
}

/// The cause of a failed exchange with `addr`: the client's when reading its
/// body failed, else the connection's (`sent` = the request went out).
pub fn classify(e: &hyper::Error, sent: bool, addr: SocketAddr) -> ProxyError {
    match client_fault(e) {
        Some((fault, why)) => ProxyError::new(Cause::Client(fault), why),
        None if sent => ProxyError::new(Cause::Upstream, format!("backend {addr}: {e}")),
        None => ProxyError::new(Cause::Connect, format!("backend {addr}: {e}")),
    }
}

fn timed_out(addr: SocketAddr, timeout: Duration, what: &str) -> Attempt {
    Attempt::Failed(
        ProxyError::new(
            Cause::Timeout,
            format!("backend {addr} {what} within {timeout:?}"),
        ),
        None,
    )
}

/// One attempt on `member`: connect (or reuse), send, wait for the response head
/// (up to `request_timeout`: the route's, else the pool's).
/// A free function, so the request's state is not borrowed while it waits.
pub async fn attempt(
    member: &Member,
    request: Request<RequestBody>,
    cfg: &PoolConfig,
    request_timeout: Duration,
) -> Attempt {
    let (addr, connect_timeout) = (member.address, cfg.connect_timeout);
    let (sender, reused) = match upstream::checkout(addr, connect_timeout).await {
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
            Box::pin(send_fresh(addr, r, connect_timeout, request_timeout)).await
        }
        a => a,
    }
}

/// The outcome of `try_send_request`.
fn outcome(
    r: Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<RequestBody>>>,
    sender: Sender,
    addr: SocketAddr,
) -> Attempt {
    match r {
        Ok(resp) => Attempt::Response(resp, sender),
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
/// request with a body takes the boxed [`send_upload`] path.
fn send(
    mut sender: Sender,
    request: Request<RequestBody>,
    timeout: Duration,
    addr: SocketAddr,
) -> impl Future<Output = Attempt> {
    if let Some(upload) = request.body().upload() {
        return Either::Right(Box::pin(send_upload(
            sender, request, upload, timeout, addr,
        )));
    }
    // `map`, not `async move { response.await }`: awaiting a captured future
    // would give it a second slot in the state machine.
    let response = tokio::time::timeout(timeout, sender.try_send_request(request));
    Either::Left(response.map(move |r| match r {
        Err(_) => timed_out(addr, timeout, "did not answer"),
        Ok(r) => outcome(r, sender, addr),
    }))
}

/// [`send`] for a request with a body: `timeout` starts once the body has been
/// sent; until then the backend fails only by taking none of it for `timeout`
/// while the client has more (a client that stalls is the body's read timeout).
async fn send_upload(
    mut sender: Sender,
    request: Request<RequestBody>,
    upload: Arc<Upload>,
    timeout: Duration,
    addr: SocketAddr,
) -> Attempt {
    let response = sender.try_send_request(request);
    tokio::pin!(response);
    let mut seen = upload.progress().0;
    loop {
        tokio::select! {
            biased;
            r = &mut response => return outcome(r, sender, addr),
            _ = upload.sent() => break,
            _ = tokio::time::sleep(timeout) => {
                let (frames, waiting_on_client) = upload.progress();
                if frames == seen && !waiting_on_client {
                    return timed_out(addr, timeout, "took none of the request body");
                }
                seen = frames;
            }
        }
    }
    match tokio::time::timeout(timeout, response).await {
        Err(_) => timed_out(addr, timeout, "did not answer"),
        Ok(r) => outcome(r, sender, addr),
    }
}

/// [`send`] on a new connection to `addr`.
async fn send_fresh(
    addr: SocketAddr,
    request: Request<RequestBody>,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Attempt {
    match upstream::connect(addr, connect_timeout).await {
        Ok(s) => send(s, request, request_timeout, addr).await,
        Err(ce) => Attempt::Failed(
            ProxyError::new(Cause::Connect, format!("backend {addr}: {ce}")),
            Some(request),
        ),
    }
}
