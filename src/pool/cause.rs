//! Why a request failed ([`Cause`]), and what follows from it alone: the
//! status drover answers ([`Cause::status`]), whether another member may be
//! tried ([`Cause::retryable`]), whether the member is blamed for it — counted
//! as its failure and fed to passive ejection ([`Cause::blames_backend`]) —
//! the `error` field of the access log and the `cause` label of
//! `drover_proxy_errors_total` ([`Cause::label`], counted per pool in
//! [`super::PoolMetrics`]). A failure the client caused (it went away,
//! stalled or sent a malformed body) is never the backend's: it is not
//! retried and does not count against the member.
//!
//! Pure data, below the proxy (which builds its `ProxyError` and local
//! responses from it in `proxy/errors.rs`) so that the pool's counters can
//! name it.

use http::StatusCode;

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
}
