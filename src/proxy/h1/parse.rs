//! Request heads for the native codec: parsed with `httparse` (the parser
//! hyper uses) and accepted only in the common, unambiguous form. Anything
//! else is a [`HandOff`]: hyper's path then decides (and answers 400, 431,
//! 100-continue, an upgrade, …), so every framing decision pinned by
//! `tests/conformance_http1.rs` stays hyper's unless the native path accepts
//! the request exactly as hyper would.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::HeaderValue;
use http::{HeaderMap, Method, Uri};

use super::HandOff;
pub use crate::upstream::native::head::content_length;
use crate::upstream::native::head::{offset, Spot, Spots};

/// Most fields in a request head: 100 (hyper's limit as well).
pub const MAX_HEADERS: usize = 100;

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
#[allow(clippy::large_enum_variant)] // Returned once per request: boxing it would allocate.
pub enum Head {
    /// Not a whole head yet (and still under the size limit).
    Partial,
    Ready(Parsed),
    /// For hyper's path.
    HandOff(HandOff),
}

/// Parses the head at the start of `buf`; heads over `max_head` bytes are
/// handed off (hyper answers 431). A copy of `buf` goes to [`request_from`].
pub fn request(buf: &[u8], max_head: usize) -> Head {
    request_from(&mut BytesMut::from(buf), max_head)
}

/// [`request`] on the connection's read buffer: a head the native path
/// serves is taken off `buf`, and its target and field values are slices of
/// it (no copy per field; the buffer is shared until the request is
/// dropped). On `Partial` and `HandOff`, `buf` holds all it held.
pub fn request_from(buf: &mut BytesMut, max_head: usize) -> Head {
    // Not zeroed: 3.2 KiB per head (callgrind: 9% of a proxied request's instructions).
    let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut fields) {
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
    let checked = match check(&req) {
        Ok(c) => c,
        Err(why) => return Head::HandOff(why),
    };
    let at = |part: &[u8]| offset(buf, part).ok_or(HandOff::Malformed);
    let path = match at(req.path.unwrap_or("").as_bytes()) {
        Ok(p) => p,
        Err(why) => return Head::HandOff(why),
    };
    let mut spots = Spots::take();
    for f in req.headers.iter() {
        match (at(f.name.as_bytes()), at(f.value)) {
            (Ok((name_at, name_len)), Ok((value_at, value_len))) => {
                spots.push((name_at, name_len, value_at, value_len))
            }
            _ => return Head::HandOff(HandOff::Malformed),
        }
    }
    let head = buf.split_to(head_len).freeze();
    match build(&head, path, &spots) {
        Ok((uri, headers)) => Head::Ready(Parsed {
            method: checked.method,
            uri,
            headers,
            head_len,
            body_len: checked.body_len,
            close: checked.close,
        }),
        Err(why) => {
            // Rare: the bytes go back for hyper's path.
            let mut all = BytesMut::with_capacity(head.len() + buf.len());
            all.extend_from_slice(&head);
            all.extend_from_slice(buf);
            *buf = all;
            Head::HandOff(why)
        }
    }
}

/// What the head says beyond its fields.
struct Checked {
    method: Method,
    body_len: u64,
    close: bool,
}

/// The rules of the native path, on the parsed head: HTTP/1.1, a method,
/// origin form, and none of the fields that go to hyper.
fn check(req: &httparse::Request<'_, '_>) -> Result<Checked, HandOff> {
    if req.version != Some(1) {
        return Err(HandOff::Version);
    }
    let method =
        Method::from_bytes(req.method.unwrap_or("").as_bytes()).map_err(|_| HandOff::Malformed)?;
    if method == Method::CONNECT {
        return Err(HandOff::Feature);
    }
    if !req.path.unwrap_or("").starts_with('/') {
        // Absolute form, `*`: hyper's.
        return Err(HandOff::Feature);
    }
    let mut body_len = None;
    let mut close = false;
    for f in req.headers.iter() {
        let name = f.name.as_bytes();
        if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"expect")
            || name.eq_ignore_ascii_case(b"upgrade")
        {
            return Err(HandOff::Feature);
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            if body_len.is_some() {
                return Err(HandOff::Malformed);
            }
            body_len = Some(content_length(f.value).ok_or(HandOff::Malformed)?);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in f.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    return Err(HandOff::Feature);
                }
            }
        } else if name.eq_ignore_ascii_case(b"content-type")
            && f.value.starts_with(b"application/grpc")
        {
            return Err(HandOff::Feature);
        }
    }
    Ok(Checked {
        method,
        body_len: body_len.unwrap_or(0),
        close,
    })
}

/// The target and the fields, cut from the frozen `head`.
fn build(head: &Bytes, path: (usize, usize), spots: &[Spot]) -> Result<(Uri, HeaderMap), HandOff> {
    let cut = |at: usize, len: usize| head.get(at..at + len).map(|s| head.slice_ref(s));
    let target = cut(path.0, path.1).ok_or(HandOff::Malformed)?;
    let uri = Uri::from_maybe_shared(target).map_err(|_| HandOff::Malformed)?;
    // Room for what forwarding adds (X-Forwarded-*, Via, X-Request-Id,
    // traceparent, …): the map is not grown (rehashed) per request.
    let mut headers =
        crate::upstream::maps::take(spots.len() + crate::upstream::maps::FORWARD_ADDS);
    for &(name_at, name_len, value_at, value_len) in spots {
        let name = head
            .get(name_at..name_at + name_len)
            .and_then(|n| crate::upstream::names::parse(n).ok())
            .ok_or(HandOff::Malformed)?;
        let value = cut(value_at, value_len)
            .and_then(|v| HeaderValue::from_maybe_shared(v).ok())
            .ok_or(HandOff::Malformed)?;
        headers.append(name, value);
    }
    Ok((uri, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(raw: &[u8]) -> Parsed {
        match request(raw, 65536) {
            Head::Ready(p) => p,
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
