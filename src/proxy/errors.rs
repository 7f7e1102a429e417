//! Why a request failed, and what follows from it, decided in one place.
//!
//! Every failure on the proxy path is a [`ProxyError`] with a [`Cause`]
//! (defined in `pool/cause.rs`, below the proxy, as the pool's counters name
//! it). The cause alone chooses the status drover answers ([`Cause::status`]), whether
//! another member may be tried ([`Cause::retryable`]), whether the member is
//! blamed for it — counted as its failure and fed to passive ejection
//! ([`Cause::blames_backend`]) — the `error` field of the access log and the
//! `cause` label of `drover_proxy_errors_total` ([`Cause::label`]). A failure
//! the client caused (it went away, stalled or sent a malformed body) is never
//! the backend's: it is not retried and does not count against the member.
//!
//! Responses from the backend itself are judged here too
//! ([`response_blames_backend`], [`response_retryable`]).

use std::sync::atomic::{AtomicU64, Ordering};

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};

use super::body::{Completion, ProxyBody};
use super::headers::X_REQUEST_ID;
pub use crate::pool::{Cause, ClientFault, CLIENT_CLOSED_REQUEST};

/// Seconds suggested in `Retry-After` on a 503. Default 1.
pub const RETRY_AFTER_SECS: &str = "1";

/// Header naming the [`Cause::label`] on every response drover makes itself.
pub const X_DROVER_ERROR: HeaderName = HeaderName::from_static("x-drover-error");

/// Whether a response the backend sent counts as its failure (502/503/504).
pub fn response_blames_backend(code: u16) -> bool {
    matches!(code, 502..=504)
}

/// Whether a response the backend sent may be retried on another member
/// (502/503, for a `replayable` request).
pub fn response_retryable(code: u16, replayable: bool) -> bool {
    replayable && matches!(code, 502 | 503)
}

/// How a backend's response body went, once the exchange is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyState {
    /// No backend body (a response drover made, an upgrade, or no answer yet).
    #[default]
    None,
    /// Streaming: what the body is while in flight, and what is left when it
    /// is dropped before its end (the client went away mid-response).
    Streaming,
    /// Read to its end.
    Ended,
    /// Reading it from the backend failed (reset, incomplete, read error).
    Broken,
}

impl BodyState {
    /// The failure of a response body that ended in this state, if any: the
    /// backend's (`upstream`, blamed like any failure after the request was
    /// sent) or the client's (went away after the head). Either way the
    /// client got the head already, so the logged status stays the one sent
    /// (as nginx logs 499 only when the client left before the head).
    pub fn cause(self) -> Option<Cause> {
        match self {
            BodyState::Streaming => Some(Cause::Client(ClientFault::Gone)),
            BodyState::Broken => Some(Cause::Upstream),
            BodyState::None | BodyState::Ended => None,
        }
    }
}

/// A failure on the proxy path: its cause and the sentence shown to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    pub cause: Cause,
    pub detail: String,
}

impl ProxyError {
    pub fn new(cause: Cause, detail: impl Into<String>) -> ProxyError {
        ProxyError {
            cause,
            detail: detail.into(),
        }
    }
}

/// Failures without a pool (no route matched), for `drover_proxy_errors_total{pool=""}`.
static NO_POOL_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Counts a failure that has no pool (only `no_route`).
pub fn count_no_pool() {
    NO_POOL_ERRORS.fetch_add(1, Ordering::Relaxed);
}

/// Failures without a pool so far.
pub fn no_pool_errors() -> u64 {
    NO_POOL_ERRORS.load(Ordering::Relaxed)
}

/// A response made by drover: `"<code> <reason phrase>: <why> (request id <id>)\n"`,
/// with `X-Drover-Error: <cause>` when it reports a failure.
pub fn local(
    status: StatusCode,
    why: &str,
    request_id: &HeaderValue,
    done: Option<Completion>,
    cause: Option<Cause>,
) -> Response<ProxyBody> {
    let text = format!(
        "{} {}: {} (request id {})\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Client Closed Request"),
        why,
        request_id.to_str().unwrap_or("-")
    );
    let mut resp = Response::new(ProxyBody::full(text, done));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(&X_REQUEST_ID, request_id.clone());
    if let Some(c) = cause {
        h.insert(X_DROVER_ERROR, HeaderValue::from_static(c.label()));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        h.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_responses() {
        for code in [200, 404, 500, 501, 505] {
            assert!(!response_blames_backend(code) && !response_retryable(code, true));
        }
        for code in [502, 503] {
            assert!(response_blames_backend(code));
            assert!(response_retryable(code, true) && !response_retryable(code, false));
        }
        assert!(response_blames_backend(504) && !response_retryable(504, true));
    }

    #[test]
    fn a_body_is_judged_at_its_end() {
        assert_eq!(BodyState::Broken.cause(), Some(Cause::Upstream));
        assert!(BodyState::Broken.cause().is_some_and(Cause::blames_backend));
        let gone = BodyState::Streaming.cause();
        assert_eq!(gone, Some(Cause::Client(ClientFault::Gone)));
        assert!(!gone.is_some_and(Cause::blames_backend));
        assert_eq!(BodyState::Ended.cause(), None);
        assert_eq!(BodyState::None.cause(), None);
    }

    #[test]
    fn local_responses_carry_the_cause() {
        let id = HeaderValue::from_static("r1");
        let c = Cause::Client(ClientFault::Gone);
        let r = local(c.status(), "gone", &id, None, Some(c));
        assert_eq!(r.status().as_u16(), 499);
        assert_eq!(r.headers()[X_DROVER_ERROR], "client");
        let r = local(StatusCode::NOT_FOUND, "x", &id, None, None);
        assert!(r.headers().get(X_DROVER_ERROR).is_none());
    }
}
