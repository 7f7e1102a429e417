//! Request heads for the native codec: parsed with `httparse` (the parser
//! hyper uses) and accepted only in the common, unambiguous form. Anything
//! else is a [`HandOff`]: hyper's path then decides (and answers 400, 431,
//! 100-continue, an upgrade, …), so every framing decision pinned by
//! `tests/conformance_http1.rs` stays hyper's unless the native path accepts
//! the request exactly as hyper would.

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, TRANSFER_ENCODING,
    UPGRADE,
};
use http::{HeaderMap, Method, Uri};

use super::HandOff;

/// Most fields in a request head: 100 (hyper's limit as well).
pub const MAX_HEADERS: usize = 100;

/// Fields forwarding may add to a request head (room reserved up front): 8.
const FORWARD_ADDS: usize = 8;

/// A request head the native path serves.
#[derive(Debug)]
pub struct Parsed {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    /// Bytes of the head (request line to the empty line).
    pub head_len: usize,
    /// The body's `Content-Length` (0 without one).
    pub body_len: u64,
    /// `Connection: close`: the connection ends after this response.
    pub close: bool,
}

/// What the bytes read so far hold.
#[derive(Debug)]
pub enum Head {
    /// Not a whole head yet (and still under the size limit).
    Partial,
    Ready(Box<Parsed>),
    /// For hyper's path.
    HandOff(HandOff),
}

/// Parses the head at the start of `buf`; heads over `max_head` bytes are
/// handed off (hyper answers 431).
pub fn request(buf: &[u8], max_head: usize) -> Head {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= max_head => {
            return Head::HandOff(HandOff::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(httparse::Error::TooManyHeaders) => return Head::HandOff(HandOff::TooLarge),
        Err(_) => return Head::HandOff(HandOff::Malformed),
    };
    if head_len > max_head {
        return Head::HandOff(HandOff::TooLarge);
    }
    match build(&req) {
        Ok((method, uri, headers, body_len, close)) => Head::Ready(Box::new(Parsed {
            method,
            uri,
            headers,
            head_len,
            body_len,
            close,
        })),
        Err(why) => Head::HandOff(why),
    }
}

type Built = (Method, Uri, HeaderMap, u64, bool);

fn build(req: &httparse::Request<'_, '_>) -> Result<Built, HandOff> {
    if req.version != Some(1) {
        return Err(HandOff::Version);
    }
    let method =
        Method::from_bytes(req.method.unwrap_or("").as_bytes()).map_err(|_| HandOff::Malformed)?;
    if method == Method::CONNECT {
        return Err(HandOff::Feature);
    }
    let path = req.path.unwrap_or("");
    if !path.starts_with('/') {
        // Absolute form, `*`: hyper's.
        return Err(HandOff::Feature);
    }
    let uri = Uri::from_maybe_shared(Bytes::copy_from_slice(path.as_bytes()))
        .map_err(|_| HandOff::Malformed)?;
    // Room for what forwarding adds (X-Forwarded-*, Via, X-Request-Id,
    // traceparent, …): the map is not grown (rehashed) per request.
    let mut headers = HeaderMap::with_capacity(req.headers.len() + FORWARD_ADDS);
    let mut body_len = None;
    let mut close = false;
    for f in req.headers.iter() {
        let name = HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| HandOff::Malformed)?;
        let value = HeaderValue::from_bytes(f.value).map_err(|_| HandOff::Malformed)?;
        if name == TRANSFER_ENCODING || name == EXPECT || name == UPGRADE {
            return Err(HandOff::Feature);
        }
        if name == CONTENT_LENGTH {
            if body_len.is_some() {
                return Err(HandOff::Malformed);
            }
            body_len = Some(content_length(f.value).ok_or(HandOff::Malformed)?);
        } else if name == CONNECTION {
            for token in f.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    return Err(HandOff::Feature);
                }
            }
        } else if name == CONTENT_TYPE && f.value.starts_with(b"application/grpc") {
            return Err(HandOff::Feature);
        }
        headers.append(name, value);
    }
    Ok((method, uri, headers, body_len.unwrap_or(0), close))
}

/// A `Content-Length` value: 1 to 19 ASCII digits (no sign, no list).
pub fn content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(raw: &[u8]) -> Parsed {
        match request(raw, 65536) {
            Head::Ready(p) => *p,
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(raw)),
        }
    }

    fn handed(raw: &[u8]) -> HandOff {
        match request(raw, 65536) {
            Head::HandOff(h) => h,
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(raw)),
        }
    }

    #[test]
    fn the_common_request_is_native() {
        let p = ready(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\n\r\nrest");
        assert_eq!(p.method, Method::GET);
        assert_eq!(p.uri.path(), "/a");
        assert_eq!(p.uri.query(), Some("b=1"));
        assert_eq!(p.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(p.head_len, 48);
        assert_eq!(p.body_len, 0);
        assert!(!p.close);
        let p =
            ready(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nConnection: keep-alive, Close\r\n\r\n");
        assert_eq!(p.body_len, 3);
        assert!(p.close);
        // Bare LF (as hyper accepts it).
        assert_eq!(ready(b"GET /lf HTTP/1.1\nHost: x\n\n").uri.path(), "/lf");
    }

    #[test]
    fn partial_heads_wait_until_the_limit() {
        assert!(matches!(
            request(b"GET / HTTP/1.1\r\nHost:", 65536),
            Head::Partial
        ));
        assert!(matches!(
            request(b"GET / HTTP/1.1\r\nHost:", 10),
            Head::HandOff(HandOff::TooLarge)
        ));
    }

    #[test]
    fn everything_uncommon_goes_to_hyper() {
        assert_eq!(handed(b"GET / HTTP/1.0\r\n\r\n"), HandOff::Version);
        assert_eq!(
            handed(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            HandOff::Malformed
        );
        let feature: &[&[u8]] = &[
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"CONNECT a:443 HTTP/1.1\r\n\r\n",
            b"GET http://a/ HTTP/1.1\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Type: application/grpc\r\n\r\n",
        ];
        let malformed: &[&[u8]] = &[
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n",
            b"G\x01T / HTTP/1.1\r\n\r\n",
            b"GET /\r\n\r\n",
        ];
        for (raws, why) in [(feature, HandOff::Feature), (malformed, HandOff::Malformed)] {
            for raw in raws {
                let got = handed(raw);
                assert_eq!(got, why, "{:?}", String::from_utf8_lossy(raw));
            }
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(handed(raw.as_bytes()), HandOff::TooLarge);
    }

    #[test]
    fn content_length_is_digits_only() {
        assert_eq!(content_length(b"0"), Some(0));
        assert_eq!(content_length(b"0012"), Some(12));
        assert_eq!(
            content_length(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        // Empty, signed, padded, a list, too long, hex.
        for bad in "|+1|-1| 1|1 |1,1|99999999999999999999|0x10".split('|') {
            assert_eq!(content_length(bad.as_bytes()), None, "{bad:?}");
        }
    }
}
