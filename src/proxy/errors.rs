//! Why a request failed, and what follows from it, decided in one place.
//!
//! Every failure on the proxy path is a [`ProxyError`] with a [`Cause`]. The
//! cause alone chooses the status drover answers ([`Cause::status`]), whether
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

/// Seconds suggested in `Retry-After` on a 503. Default 1.
pub const RETRY_AFTER_SECS: &str = "1";

/// Header naming the [`Cause::label`] on every response drover makes itself.
pub const X_DROVER_ERROR: HeaderName = HeaderName::from_static("x-drover-error");

/// nginx's "client closed request": the client went away before the answer.
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// What the client did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientFault {
    /// Closed or reset its connection (or stream) before the answer: 499.
    Gone,
    /// Sent no request body data for `server.body_read_timeout`: 408, as
    /// nginx's `client_body_timeout` (the client is still there and can be told).
    Stalled,
    /// Sent a body that does not parse (bad chunked framing): 400.
    Malformed,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The client's fault; never the backend's.
    Client(ClientFault),
    /// Could not connect to the member (or the connection closed before the
    /// request went out): 502; the request was not sent, so it may go to another member.
    Connect,
    /// The member failed after the request was sent (reset, bad response): 502.
    Upstream,
    /// The member sent no response head within `request_timeout` after the
    /// request was sent (or stopped reading its body that long): 504.
    Timeout,
    /// A local limit: the pool's queue is full or `queue_timeout` passed: 503.
    Limit,
    /// The route's `rate_limit` refused the request: 429 (label `limit`, like
    /// [`Cause::Limit`]; never the backend's, never retried).
    RateLimited,
    /// No route matches the request: 404.
    NoRoute,
    /// No member of the pool is routable: 503.
    NoMember,
    /// Held for a cold start, and no instance became healthy in time: 503.
    ColdStart,
    /// drover itself failed (a panic while handling the request): 500.
    Internal,
}

impl Cause {
    /// Every label, in counter order ([`Cause::index`]).
    pub const LABELS: [&'static str; 9] = [
        "client",
        "connect",
        "upstream",
        "timeout",
        "limit",
        "no_route",
        "no_member",
        "cold_start",
        "internal",
    ];

    /// Position of the label in [`Cause::LABELS`].
    pub fn index(self) -> usize {
        match self {
            Cause::Client(_) => 0,
            Cause::Connect => 1,
            Cause::Upstream => 2,
            Cause::Timeout => 3,
            Cause::Limit | Cause::RateLimited => 4,
            Cause::NoRoute => 5,
            Cause::NoMember => 6,
            Cause::ColdStart => 7,
            Cause::Internal => 8,
        }
    }

    /// The access log's `error` field and the metric's `cause` label.
    pub fn label(self) -> &'static str {
        Self::LABELS[self.index()]
    }

    /// The status drover answers (and logs) for this cause.
    pub fn status(self) -> StatusCode {
        let code = match self {
            Cause::Client(ClientFault::Gone) => CLIENT_CLOSED_REQUEST,
            Cause::Client(ClientFault::Stalled) => 408,
            Cause::Client(ClientFault::Malformed) => 400,
            Cause::Connect | Cause::Upstream => 502,
            Cause::Timeout => 504,
            Cause::Limit | Cause::NoMember | Cause::ColdStart => 503,
            Cause::RateLimited => 429,
            Cause::NoRoute => 404,
            Cause::Internal => 500,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY)
    }

    /// Whether another member may be tried (still subject to `retries` and
    /// the retry budget). A request that was not sent may always go elsewhere;
    /// one that was sent only when it is `replayable` (idempotent, no body).
    /// Timeouts are not retried: the member may still be working on it.
    pub fn retryable(self, replayable: bool) -> bool {
        match self {
            Cause::Connect => true,
            Cause::Upstream => replayable,
            _ => false,
        }
    }

    /// Whether the member is blamed: the failure counts as its own
    /// (`failures`, `consecutive_failures`) and feeds passive ejection.
    pub fn blames_backend(self) -> bool {
        matches!(self, Cause::Connect | Cause::Upstream | Cause::Timeout)
    }
}

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

    const ALL: [Cause; 12] = [
        Cause::Client(ClientFault::Gone),
        Cause::Client(ClientFault::Stalled),
        Cause::Client(ClientFault::Malformed),
        Cause::Connect,
        Cause::Upstream,
        Cause::Timeout,
        Cause::Limit,
        Cause::RateLimited,
        Cause::NoRoute,
        Cause::NoMember,
        Cause::ColdStart,
        Cause::Internal,
    ];

    /// The whole table: cause -> (status, retry if replayable, retry if not, blames the backend, label).
    #[test]
    fn the_cause_table() {
        let table: Vec<(u16, bool, bool, bool, &str)> = ALL
            .iter()
            .map(|c| {
                (
                    c.status().as_u16(),
                    c.retryable(true),
                    c.retryable(false),
                    c.blames_backend(),
                    c.label(),
                )
            })
            .collect();
        assert_eq!(
            table,
            [
                (499, false, false, false, "client"),
                (408, false, false, false, "client"),
                (400, false, false, false, "client"),
                (502, true, true, true, "connect"),
                (502, true, false, true, "upstream"),
                (504, false, false, true, "timeout"),
                (503, false, false, false, "limit"),
                (429, false, false, false, "limit"),
                (404, false, false, false, "no_route"),
                (503, false, false, false, "no_member"),
                (503, false, false, false, "cold_start"),
                (500, false, false, false, "internal"),
            ]
        );
    }

    #[test]
    fn client_faults_are_never_the_backends_nor_retried() {
        for c in ALL {
            if let Cause::Client(_) = c {
                assert!(!c.blames_backend() && !c.retryable(true), "{c:?}");
                assert!(c.status().is_client_error(), "{c:?}");
            }
        }
    }

    #[test]
    fn labels_and_indexes_agree() {
        for c in ALL {
            assert_eq!(Cause::LABELS[c.index()], c.label());
        }
        let mut seen: Vec<usize> = ALL.iter().map(|c| c.index()).collect();
        seen.dedup();
        assert_eq!(seen.len(), Cause::LABELS.len());
    }

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
