//! Responses drover makes itself: short text with the reason and the request id.

use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};

use super::body::{Completion, ProxyBody};
use super::headers::X_REQUEST_ID;

/// Seconds suggested in `Retry-After` on a 503. Default 1.
pub const RETRY_AFTER_SECS: &str = "1";

/// A response made by drover: `"<code> <reason phrase>: <why> (request id <id>)\n"`.
pub fn local(
    status: StatusCode,
    why: &str,
    request_id: &HeaderValue,
    done: Option<Completion>,
) -> Response<ProxyBody> {
    let text = format!(
        "{} {}: {} (request id {})\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
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
    if status == StatusCode::SERVICE_UNAVAILABLE {
        h.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    resp
}
