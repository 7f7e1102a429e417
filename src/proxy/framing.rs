//! Request framing checks hyper's HTTP/1 parser leaves to us.
//!
//! hyper refuses most malformed framing itself (two Content-Lengths, a
//! Transfer-Encoding whose last coding is not chunked, TE on HTTP/1.0); it
//! decodes `Transfer-Encoding: chunked, chunked` (or the same split over two
//! header lines) as chunked once. RFC 9112 §6.1 forbids applying chunked more
//! than once, and a peer that decodes it twice sees another body: a smuggling
//! vector, refused here with 400 before the request is routed.
//! Pinned by `tests/conformance_http1.rs`.

use http::header::TRANSFER_ENCODING;
use http::HeaderMap;

/// Why the request's framing is refused, if it is.
pub fn refused(headers: &HeaderMap) -> Option<&'static str> {
    let chunked = headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .filter(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
        .count();
    (chunked > 1).then_some("transfer coding chunked applied more than once")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn te(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(TRANSFER_ENCODING, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn chunked_twice_is_refused_in_one_line_or_two() {
        assert!(refused(&te(&["chunked"])).is_none());
        assert!(refused(&te(&["gzip, chunked"])).is_none());
        assert!(refused(&HeaderMap::new()).is_none());
        assert!(refused(&te(&["chunked, chunked"])).is_some());
        assert!(refused(&te(&["chunked", "Chunked"])).is_some());
        assert!(refused(&te(&["chunked ,  CHUNKED"])).is_some());
    }

    proptest::proptest! {
        /// Any header bytes: no panic, and the verdict counts chunked tokens.
        #[test]
        fn any_values_never_panic(values in proptest::collection::vec(".{0,40}", 0..4)) {
            let mut h = HeaderMap::new();
            let mut n = 0;
            for v in &values {
                if let Ok(hv) = HeaderValue::from_str(v) {
                    n += v.split(',').filter(|c| c.trim().eq_ignore_ascii_case("chunked")).count();
                    h.append(TRANSFER_ENCODING, hv);
                }
            }
            proptest::prop_assert_eq!(refused(&h).is_some(), n > 1);
        }
    }
}
