//! gRPC through the proxy: which requests are gRPC calls, their deadline
//! (`grpc-timeout`), drover's own failures told as gRPC statuses, and which
//! calls may be retried.
//!
//! A gRPC client reads the call's outcome from `grpc-status` and
//! `grpc-message`, not from the HTTP status: an HTML or plain-text 502 is
//! seen as a protocol error ("Bad Gateway" with code UNKNOWN or INTERNAL).
//! So a failure drover makes itself, for a request whose `content-type` is
//! `application/grpc*`, is a "trailers-only" response (gRPC over HTTP/2
//! protocol, "Responses"): HTTP 200, `content-type: application/grpc`,
//! `grpc-status` and a percent-encoded `grpc-message`, no body.

use std::time::{Duration, Instant};

use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};

use super::body::{Completion, ProxyBody};
use super::errors::{Cause, ClientFault, ProxyError, X_DROVER_ERROR};
use super::headers::X_REQUEST_ID;
pub use crate::upstream::{GRPC_MESSAGE, GRPC_STATUS};

pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// gRPC status codes drover answers with (grpc/doc/statuscodes.md).
pub mod code {
    pub const CANCELLED: u32 = 1;
    pub const INVALID_ARGUMENT: u32 = 3;
    pub const DEADLINE_EXCEEDED: u32 = 4;
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    pub const UNIMPLEMENTED: u32 = 12;
    pub const INTERNAL: u32 = 13;
    pub const UNAVAILABLE: u32 = 14;
}

/// Whether a request (or response) is gRPC: `content-type` is
/// `application/grpc`, optionally followed by `+format` or `;params`.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE) else {
        return false;
    };
    let ct = ct.as_bytes();
    let prefix = b"application/grpc";
    ct.len() >= prefix.len()
        && ct
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        && matches!(ct.get(prefix.len()), None | Some(b'+') | Some(b';'))
}

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits and a unit, `H` hours,
/// `M` minutes, `S` seconds, `m` milliseconds, `u` microseconds, `n`
/// nanoseconds. `None` for anything else (the header is then ignored, as
/// gRPC servers do).
pub fn parse_timeout(v: &[u8]) -> Option<Duration> {
    let (unit, digits) = v.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The call's deadline: `started` (when the request arrived) plus its
/// `grpc-timeout`; `None` without a valid one.
pub fn client_deadline(headers: &HeaderMap, started: Instant) -> Option<Instant> {
    let t = parse_timeout(headers.get(GRPC_TIMEOUT)?.as_bytes())?;
    started.checked_add(t)
}

/// What is left of the call's deadline at `now`, capped by `request_timeout`
/// (how long an attempt waits for the response head, and the `grpc-timeout`
/// sent upstream); `None` once the deadline has passed.
pub fn remaining(deadline: Instant, now: Instant, request_timeout: Duration) -> Option<Duration> {
    let left = deadline.saturating_duration_since(now);
    (!left.is_zero()).then(|| left.min(request_timeout))
}

/// A `grpc-timeout` value for `d`: at most 8 digits in the finest unit that
/// holds it, rounded down (a backend never gets more time than is left); at
/// least `1n`.
pub fn format_timeout(d: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = d.as_nanos().max(1);
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    let (n, unit) = units
        .iter()
        .map(|&(per, u)| (nanos / per, u))
        .find(|&(n, _)| n <= MAX)
        .unwrap_or((MAX, 'H'));
    let mut buf = itoa::Buffer::new();
    let mut v = String::with_capacity(9);
    v.push_str(buf.format(n.max(1)));
    v.push(unit);
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("1n"))
}

/// The failure of a call whose deadline passed before an attempt could start
/// (queued, held, or after `retries` failed attempts): DEADLINE_EXCEEDED.
pub fn deadline_passed(retries: u32) -> ProxyError {
    ProxyError::new(
        Cause::Timeout,
        format!("the call's grpc-timeout passed before it could be sent ({retries} retries)"),
    )
}

/// The gRPC status for a failure drover made itself.
pub fn status_of(cause: Cause) -> u32 {
    match cause {
        Cause::Client(ClientFault::Gone) => code::CANCELLED,
        Cause::Client(ClientFault::Stalled) => code::DEADLINE_EXCEEDED,
        Cause::Client(ClientFault::Malformed) => code::INVALID_ARGUMENT,
        Cause::Connect | Cause::Upstream | Cause::NoMember | Cause::ColdStart => code::UNAVAILABLE,
        Cause::Timeout => code::DEADLINE_EXCEEDED,
        Cause::Limit | Cause::RateLimited => code::RESOURCE_EXHAUSTED,
        Cause::NoRoute => code::UNIMPLEMENTED,
        Cause::Internal => code::INTERNAL,
    }
}

/// `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX`.
pub fn encode_message(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A trailers-only gRPC response for a failure drover made itself.
pub fn local(
    cause: Cause,
    why: &str,
    request_id: &HeaderValue,
    done: Option<Completion>,
) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(bytes::Bytes::new(), done));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert(GRPC_STATUS, HeaderValue::from(status_of(cause)));
    let msg = format!(
        "drover: {why} (request id {})",
        request_id.to_str().unwrap_or("-")
    );
    if let Ok(v) = HeaderValue::from_str(&encode_message(&msg)) {
        h.insert(GRPC_MESSAGE, v);
    }
    h.insert(&X_REQUEST_ID, request_id.clone());
    h.insert(X_DROVER_ERROR, HeaderValue::from_static(cause.label()));
    resp
}

/// The trailers that end a gRPC response whose body the backend broke
/// (reset, connection lost): UNAVAILABLE with the reason.
pub fn broken_trailers(e: &impl std::fmt::Display) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(GRPC_STATUS, HeaderValue::from(code::UNAVAILABLE));
    let msg = encode_message(&format!("drover: the backend broke the response: {e}"));
    if let Ok(v) = HeaderValue::from_str(&msg) {
        h.insert(GRPC_MESSAGE, v);
    }
    h
}

/// Whether a backend's response head says UNAVAILABLE (a trailers-only
/// response with `grpc-status: 14`).
pub fn head_unavailable(headers: &HeaderMap) -> bool {
    headers
        .get(GRPC_STATUS)
        .is_some_and(|v| v.as_bytes() == b"14")
}

/// Whether the call to `path` may be retried after UNAVAILABLE: its method is
/// listed in the pool's `grpc_retry_methods`.
pub fn retry_allowed(path: &str, methods: &[String]) -> bool {
    methods.iter().any(|m| m == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_grpc(&h));
        for (ct, yes) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/grpc;charset=utf-8", true),
            ("Application/GRPC", true),
            ("application/grpc-web", false),
            ("application/grpcx", false),
            ("application/json", false),
            ("application/grp", false),
        ] {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(is_grpc(&h), yes, "{ct}");
        }
    }

    #[test]
    fn timeouts() {
        let ms = Duration::from_millis;
        assert_eq!(parse_timeout(b"100m"), Some(ms(100)));
        assert_eq!(parse_timeout(b"1S"), Some(ms(1000)));
        assert_eq!(parse_timeout(b"2M"), Some(ms(120_000)));
        assert_eq!(parse_timeout(b"1H"), Some(ms(3_600_000)));
        assert_eq!(parse_timeout(b"5000u"), Some(ms(5)));
        assert_eq!(
            parse_timeout(b"99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in [
            &b""[..],
            b"m",
            b"100",
            b"123456789m",
            b"-1m",
            b"1x",
            b" 1m",
            b"1.5S",
        ] {
            assert_eq!(
                parse_timeout(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn the_deadline_counts_from_arrival_and_is_capped_by_request_timeout() {
        let mut h = HeaderMap::new();
        let t0 = Instant::now();
        let pool = Duration::from_secs(60);
        let ms = Duration::from_millis;
        assert_eq!(client_deadline(&h, t0), None);
        h.insert(GRPC_TIMEOUT, HeaderValue::from_static("soon"));
        assert_eq!(client_deadline(&h, t0), None);
        h.insert(GRPC_TIMEOUT, HeaderValue::from_static("250m"));
        let at = client_deadline(&h, t0).unwrap();
        assert_eq!(at, t0 + ms(250));
        // 100 ms spent (queued, a failed attempt): 150 ms left.
        assert_eq!(remaining(at, t0 + ms(100), pool), Some(ms(150)));
        assert_eq!(remaining(at, t0 + ms(100), ms(20)), Some(ms(20)));
        assert_eq!(remaining(at, t0 + ms(250), pool), None);
        assert_eq!(remaining(at, t0 + ms(900), pool), None);
        h.insert(GRPC_TIMEOUT, HeaderValue::from_static("2H"));
        let at = client_deadline(&h, t0).unwrap();
        assert_eq!(remaining(at, t0 + ms(5), pool), Some(pool));
    }

    #[test]
    fn timeouts_sent_upstream_fit_8_digits_and_round_down() {
        let f = |d: Duration| format_timeout(d).to_str().unwrap().to_string();
        assert_eq!(f(Duration::from_nanos(0)), "1n");
        assert_eq!(f(Duration::from_nanos(99_999_999)), "99999999n");
        assert_eq!(f(Duration::from_millis(150)), "150000u");
        assert_eq!(f(Duration::from_micros(149_999_999)), "149999m");
        assert_eq!(f(Duration::from_secs(60)), "60000000u");
        assert_eq!(f(Duration::from_secs(3600)), "3600000m");
        assert_eq!(f(Duration::from_secs(200_000)), "200000S");
        assert_eq!(f(Duration::from_secs(u64::MAX / 2)), "99999999H");
        for d in [1u64, 999, 1_000_001, 123_456_789_012, 9_999_999_999_999] {
            let d = Duration::from_nanos(d);
            let back = parse_timeout(format_timeout(d).as_bytes()).unwrap();
            assert!(back <= d && back >= d.mul_f64(0.9999), "{d:?} -> {back:?}");
        }
    }

    #[test]
    fn statuses_for_drovers_failures() {
        assert_eq!(status_of(Cause::NoRoute), 12);
        assert_eq!(status_of(Cause::Connect), 14);
        assert_eq!(status_of(Cause::NoMember), 14);
        assert_eq!(status_of(Cause::Timeout), 4);
        assert_eq!(status_of(Cause::Limit), 8);
    }

    #[test]
    fn local_errors_are_trailers_only_grpc_responses() {
        let id = HeaderValue::from_static("r1");
        let r = local(
            Cause::Timeout,
            "backend 1.2.3.4:5 did not answer within 1s; 100%",
            &id,
            None,
        );
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/grpc");
        assert_eq!(r.headers()[GRPC_STATUS], "4");
        let m = r.headers()[GRPC_MESSAGE].to_str().unwrap();
        assert!(m.ends_with("100%25 (request id r1)"), "{m}");
        assert!(http_body::Body::is_end_stream(r.body()));
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(encode_message("a b%c\n\u{e9}"), "a b%25c%0A%C3%A9");
    }

    #[test]
    fn unavailable_heads_and_listed_methods() {
        let mut h = HeaderMap::new();
        assert!(!head_unavailable(&h));
        h.insert(GRPC_STATUS, HeaderValue::from_static("14"));
        assert!(head_unavailable(&h));
        h.insert(GRPC_STATUS, HeaderValue::from_static("0"));
        assert!(!head_unavailable(&h));
        let listed = vec!["/pkg.Svc/Get".to_string()];
        assert!(retry_allowed("/pkg.Svc/Get", &listed));
        assert!(!retry_allowed("/pkg.Svc/Put", &listed));
    }
}
