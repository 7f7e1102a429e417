//! The sticky-session cookie parser (`fuzz/fuzz_targets/sticky_cookie.rs`).

use http::header::{HeaderMap, HeaderValue, COOKIE};

use crate::proxy::sticky;

/// `Cookie` header values from raw bytes: one per line, as a client may send
/// several (values `http` would refuse are skipped, as hyper would refuse them).
/// Invariants: the parser never panics; an id it returns is written in the
/// input exactly as drover formats it; a formatted id appended as a cookie of
/// the looked-up name is found when nothing before it parses.
pub fn sticky_cookie(bytes: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in bytes.split(|&b| b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, v);
        }
    }
    let name = "drover_sticky";
    let found = sticky::from_request(&headers, name);
    if let Some(id) = found {
        let text = sticky::format_id(id);
        assert!(
            bytes.windows(text.len()).any(|w| w == text.as_bytes()),
            "id {text} is not in the input"
        );
    }
    let planted = 0x0123_4567_89ab_cdef_u64;
    let mut with = headers.clone();
    let pair = format!("{name}={}", sticky::format_id(planted));
    with.append(COOKIE, HeaderValue::from_str(&pair).expect("ascii"));
    let again = sticky::from_request(&with, name);
    assert_eq!(again, found.or(Some(planted)), "planted cookie lost");
}
