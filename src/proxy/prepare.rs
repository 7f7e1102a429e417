//! The synchronous first half of a request: framing checks, the HTTPS
//! redirect, routing, rate limits and redirect routes, each answered locally;
//! everything else becomes a [`Forward`] ready to run.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use http::header::{HeaderValue, HOST};
use http::{Request, Response};

use super::body::{Completion, ProxyBody};
use super::errors::{self, local, Cause, ClientFault, ProxyError};
use super::forward::Forward;
use super::framing;
use super::grpc;
use super::h1::ClientIn;
use super::headers::X_REQUEST_ID;
use super::route_rules;
use super::router::{RouteOpts, Router};
use super::trace_context;
use crate::access_log::{self, AccessRecord};

/// What a connection handler knows about its client.
#[derive(Debug, Clone, Copy)]
pub struct Downstream {
    pub client: SocketAddr,
    /// `http` or `https`.
    pub proto: &'static str,
    /// `server.https_redirect` on a plain listener: every request is answered
    /// with a 308 to `https://` on this port (the TLS listener's).
    pub https_port: Option<u16>,
}

/// The host a request is for: `Host`, else the URI authority (HTTP/2).
pub(super) fn request_host(req: &Request<ClientIn>) -> Option<&str> {
    req.headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

/// Handles one downstream request; never fails (errors become responses).
///
/// Routing and the upstream head are done at once, synchronously; the future
/// holds only what forwarding needs across its awaits. hyper copies this
/// future into the connection's slot for every request, so its size is paid
/// per request (4.5 KiB before this split, 1.4 KiB after: `bench/RESULTS.md`).
///
/// `request_id` is the request's id, chosen by the caller
/// ([`super::request_id::choose`]) so that it can also answer for a panic.
pub fn handle(
    router: &Router,
    req: Request<ClientIn>,
    down: Downstream,
    request_id: HeaderValue,
) -> impl Future<Output = Response<ProxyBody>> + Send + 'static {
    let mut prepared = prepare(router, req, down, request_id);
    async move {
        match prepared {
            Prepared::Done(resp) => resp,
            // By reference: binding by value would copy the state into a second slot.
            Prepared::Forward(ref mut fwd) => fwd.run().await,
        }
    }
}

/// A request routed and ready to forward, or the response already made.
/// Not boxed: `Forward` is the common case, and boxing it would add an
/// allocation to every request to save stack on the rare local answer.
#[allow(clippy::large_enum_variant)]
enum Prepared {
    Forward(Forward),
    Done(Response<ProxyBody>),
}

fn prepare(
    router: &Router,
    req: Request<ClientIn>,
    down: Downstream,
    request_id: HeaderValue,
) -> Prepared {
    let started = Instant::now();
    let mut done = Completion::new(started);
    let hop = trace_context::hop(req.headers());
    done.trace = Some(hop);
    if access_log::enabled() {
        let combined = access_log::combined();
        let header = |name| combined.then(|| req.headers().get(name).cloned()).flatten();
        done.log = Some(Box::new(AccessRecord {
            ts: SystemTime::now(),
            request_id: request_id.clone(),
            client: down.client.ip(),
            method: req.method().clone(),
            version: req.version(),
            uri: req.uri().clone(),
            status: 0,
            bytes: 0,
            duration: Default::default(),
            pool: String::new(),
            backend: None,
            retries: 0,
            error: None,
            grpc_status: None,
            trace_id: Some(hop.sent.trace_id),
            referer: header(http::header::REFERER),
            user_agent: header(http::header::USER_AGENT),
        }));
    }
    if let Some(why) = framing::refused(req.headers()) {
        let err = ProxyError::new(Cause::Client(ClientFault::Malformed), why);
        let mut resp = local_done(&err, &request_id, done, 0);
        // The body's framing is unknown: the connection cannot be reused.
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        return Prepared::Done(resp);
    }
    let host = request_host(&req);
    if let Some(port) = down.https_port {
        let loc = route_rules::https_location(host, port, req.uri());
        return Prepared::Done(redirect_done(loc, 308, &request_id, done));
    }
    let is_grpc = grpc::is_grpc(req.headers());
    done.grpc = is_grpc;
    let Some(m) = router.find(host, req.uri().path(), req.method(), req.headers()) else {
        let why = format!(
            "no route for host {:?} path {:?}",
            host.unwrap_or(""),
            req.uri().path()
        );
        errors::count_no_pool();
        let err = ProxyError::new(Cause::NoRoute, why);
        return Prepared::Done(local_done(&err, &request_id, done, 0));
    };
    if let Some(pool) = m.pool {
        if let Some(rec) = done.log.as_mut() {
            rec.pool = pool.name.clone();
        }
        done.pool = Some(pool.clone());
    }
    if let Some(limiter) = &m.state.limiter {
        if let Err(l) = limiter.check(down.client.ip(), req.headers()) {
            let err = ProxyError::new(
                Cause::RateLimited,
                format!(
                    "rate limit of route {} exceeded; retry in {} s",
                    m.state.label, l.retry_after
                ),
            );
            let mut resp = local_done(&err, &request_id, done, 0);
            route_rules::add_limit_headers(resp.headers_mut(), &l);
            return Prepared::Done(resp);
        }
    }
    let Some(pool) = m.pool.cloned() else {
        // A redirect route (validation gives every other route a pool).
        let (loc, status) = match &m.route.rules.redirect {
            Some(r) => (
                route_rules::redirect_location(&r.to, down.proto, host, req.uri()),
                r.status,
            ),
            None => (Err("the route has no pool".to_string()), 308),
        };
        return Prepared::Done(redirect_done(loc, status, &request_id, done));
    };
    let opts = RouteOpts::of(&m);
    Prepared::Forward(Forward::new(
        pool,
        req,
        opts,
        down,
        request_id,
        done,
        router.body_read_timeout,
    ))
}

/// The answer of a redirect (`redirect` route or `server.https_redirect`),
/// or a 400 when the request's Host or path cannot make one.
fn redirect_done(
    location: Result<HeaderValue, String>,
    status: u16,
    id: &HeaderValue,
    mut done: Completion,
) -> Response<ProxyBody> {
    match location {
        Ok(loc) => {
            if let Some(rec) = done.log.as_mut() {
                rec.status = status;
            }
            done.answered = true;
            let mut resp = route_rules::redirect_response(status, loc, Some(done));
            resp.headers_mut().insert(&X_REQUEST_ID, id.clone());
            resp
        }
        Err(why) => {
            let err = ProxyError::new(Cause::Client(errors::ClientFault::Malformed), why);
            local_done(&err, id, done, 0)
        }
    }
}

/// The local response for `err`, with the completion attached (logged status,
/// cause and retries; the pool's local-code and cause counters). For a gRPC
/// call ([`Completion::grpc`]) it is a gRPC status ([`grpc::local`]); the
/// access log and the counters keep the HTTP status the cause stands for, and
/// the access log adds the `grpc_status` the client got.
pub(super) fn local_done(
    err: &ProxyError,
    id: &HeaderValue,
    mut done: Completion,
    retries: u32,
) -> Response<ProxyBody> {
    let status = err.cause.status();
    if let Some(p) = &done.pool {
        p.metrics.count_local(status.as_u16());
        p.metrics.count_error(err.cause);
    }
    if let Some(rec) = done.log.as_mut() {
        rec.status = status.as_u16();
        rec.retries = retries;
        rec.error = Some(err.cause.label());
        rec.grpc_status = done.grpc.then(|| grpc::status_of(err.cause));
    }
    done.answered = true;
    if done.grpc {
        return grpc::local(err.cause, &err.detail, id, Some(done));
    }
    local(status, &err.detail, id, Some(done), Some(err.cause))
}
