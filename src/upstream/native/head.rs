//! Message heads for the native HTTP/1.1 client: the request head written
//! from a `Request`'s parts, and the backend's response head parsed with
//! `httparse` (the parser hyper uses) under the same rules as hyper's client
//! (pinned by `tests/conformance_http1.rs`): two different `Content-Length`s,
//! a bad one, NUL or obs-fold in a field, a status that is not 3 digits → a
//! malformed head (502); `Transfer-Encoding` wins over `Content-Length`
//! (RFC 9112 §6.3), and such a connection is not used again; 1xx interim
//! responses are skipped.
//!
//! Field values are slices of the bytes read (no copy per field); only the
//! names that are not standard are allocated, as in hyper.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, StatusCode, Version};

/// Most fields in a response head: 100 (hyper's limit as well).
pub const MAX_HEADERS: usize = 100;
/// Largest response head: 400 KiB (about hyper's largest read buffer).
pub const MAX_HEAD: usize = 400 * 1024;

/// Why a response head was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// Not a valid HTTP/1.x response head (httparse's reason).
    Parse(&'static str),
    /// Over [`MAX_HEAD`] bytes or [`MAX_HEADERS`] fields.
    TooLarge,
    /// `Content-Length` not a number, or two different ones.
    ContentLength,
    /// `101 Switching Protocols` to a request that asked for no upgrade.
    UnexpectedUpgrade,
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Parse(why) => write!(f, "malformed response head: {why}"),
            HeadError::TooLarge => write!(
                f,
                "response head over {MAX_HEAD} bytes or {MAX_HEADERS} fields"
            ),
            HeadError::ContentLength => f.write_str("invalid or conflicting Content-Length"),
            HeadError::UnexpectedUpgrade => {
                f.write_str("101 Switching Protocols to a request without an upgrade")
            }
        }
    }
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (a HEAD request, 204, 304, or `Content-Length: 0`).
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the backend closes.
    Close,
}

/// A final response head.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    /// The reason phrase when it is not the status's canonical one.
    pub reason: Option<Bytes>,
    pub framing: Framing,
    /// The connection can carry another request once the body is read.
    pub reusable: bool,
}

/// What the bytes read so far hold.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // Once per response: boxing would allocate.
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A 1xx interim head, taken off the buffer: skip it and read on.
    Interim,
    /// The final head, taken off the buffer (the body follows in it).
    Final(Response),
}

/// Parses the response head at the start of `buf`; a whole head is taken
/// off `buf`. `head_request`: the request was `HEAD` (no body follows).
pub fn response(buf: &mut BytesMut, head_request: bool) -> Result<Parsed, HeadError> {
    // Not zeroed: 3.2 KiB per head (callgrind: 9% of a proxied request's instructions).
    let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let len = match config.parse_response_with_uninit_headers(&mut resp, buf, &mut fields) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Parse(describe(e))),
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let code = resp.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| HeadError::Parse("invalid status"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(HeadError::UnexpectedUpgrade);
    }
    if status.is_informational() {
        let _ = buf.split_to(len);
        return Ok(Parsed::Interim);
    }
    let version = match resp.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let mut spots = Spots::take();
    for f in resp.headers.iter() {
        let (Some((name_at, name_len)), Some((value_at, value_len))) =
            (offset(buf, f.name.as_bytes()), offset(buf, f.value))
        else {
            return Err(HeadError::Parse("field outside the head"));
        };
        spots.push((name_at, name_len, value_at, value_len));
    }
    let n = spots.len();
    // httparse gives a reason that is not UTF-8 as a static "": not in `buf`.
    let reason = resp
        .reason
        .filter(|r| Some(*r) != status.canonical_reason())
        .and_then(|r| offset(buf, r.as_bytes()));
    let head = buf.split_to(len).freeze();
    let mut headers = crate::upstream::maps::take(n + 4);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut te = false;
    let mut close = false;
    for &(name_at, name_len, at, vlen) in spots.iter() {
        let name = head
            .get(name_at..name_at + name_len)
            .ok_or(HeadError::Parse("field name"))?;
        let name =
            crate::upstream::names::parse(name).map_err(|_| HeadError::Parse("field name"))?;
        let value = head
            .get(at..at + vlen)
            .map(|v| head.slice_ref(v))
            .ok_or(HeadError::Parse("field value"))?;
        let value =
            HeaderValue::from_maybe_shared(value).map_err(|_| HeadError::Parse("field value"))?;
        if name == CONTENT_LENGTH {
            let v = list_length(value.as_bytes()).ok_or(HeadError::ContentLength)?;
            if length.is_some_and(|l| l != v) {
                return Err(HeadError::ContentLength);
            }
            length = Some(v);
        } else if name == TRANSFER_ENCODING {
            te = true;
            // Only the last coding decides (RFC 9112 §6.3).
            chunked = last_token_is(value.as_bytes(), b"chunked");
        } else if name == CONNECTION {
            close |= has_token(value.as_bytes(), b"close");
        }
        headers.append(name, value);
    }
    let reason = reason.and_then(|(at, l)| head.get(at..at + l).map(|r| head.slice_ref(r)));
    let no_body =
        head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body {
        Framing::Empty
    } else if te {
        if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else {
        match length {
            Some(0) => Framing::Empty,
            Some(l) => Framing::Length(l),
            None => Framing::Close,
        }
    };
    // A message with both lengths may be a smuggling attempt: its connection
    // is not trusted with another request.
    let reusable = version == Version::HTTP_11
        && !close
        && framing != Framing::Close
        && !(te && length.is_some());
    Ok(Parsed::Final(Response {
        status,
        version,
        headers,
        reason,
        framing,
        reusable,
    }))
}

/// Where one field sits in a head: name at, name length, value at, value length.
pub type Spot = (usize, usize, usize, usize);

thread_local! {
    static SPOTS: RefCell<Vec<Spot>> = const { RefCell::new(Vec::new()) };
}

/// Where the fields of the head being parsed sit, so that their values can
/// be cut from it once it is frozen (the parse borrows the buffer). This
/// thread's list, emptied, given back when dropped: no array to zero per head.
pub struct Spots(Vec<Spot>);

impl Spots {
    pub fn take() -> Spots {
        let mut v = SPOTS.try_with(|s| s.take()).unwrap_or_default();
        v.clear();
        Spots(v)
    }
}

impl Drop for Spots {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        let _ = SPOTS.try_with(|s| s.replace(v));
    }
}

impl std::ops::Deref for Spots {
    type Target = Vec<Spot>;
    fn deref(&self) -> &Vec<Spot> {
        &self.0
    }
}

impl std::ops::DerefMut for Spots {
    fn deref_mut(&mut self) -> &mut Vec<Spot> {
        &mut self.0
    }
}

/// Where `part` sits in `whole` (start, length), if it is a slice of it.
pub fn offset(whole: &[u8], part: &[u8]) -> Option<(usize, usize)> {
    let at = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (at.checked_add(part.len())? <= whole.len()).then_some((at, part.len()))
}

fn describe(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid field name",
        httparse::Error::HeaderValue => "invalid field value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many fields",
        httparse::Error::Version => "not HTTP/1.x",
    }
}

/// A `Content-Length` value: 1 to 19 ASCII digits (no sign, no list, no
/// spaces; 19 nines fit a `u64`). The native server's requests use it as is.
pub fn content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// A `Content-Length` value, also as a list of equal values (`5, 5`).
fn list_length(v: &[u8]) -> Option<u64> {
    let mut out = None;
    for part in v.split(|&b| b == b',') {
        let n = content_length(part.trim_ascii())?;
        if out.is_some_and(|o| o != n) {
            return None;
        }
        out = Some(n);
    }
    out
}

fn has_token(v: &[u8], token: &[u8]) -> bool {
    v.split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn last_token_is(v: &[u8], token: &[u8]) -> bool {
    v.rsplit(|&b| b == b',')
        .next()
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Appends the request head (`METHOD target HTTP/1.1`, the fields as they
/// are, the empty line) to `out`. The target is the path and query (origin
/// form); `*` for `OPTIONS *`.
pub fn write_request(out: &mut Vec<u8>, method: &Method, uri: &http::Uri, headers: &HeaderMap) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8], head_request: bool) -> Result<Parsed, HeadError> {
        let mut b = BytesMut::from(raw);
        response(&mut b, head_request)
    }

    fn fin(raw: &[u8]) -> Response {
        match parse(raw, false) {
            Ok(Parsed::Final(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_plain_response_keeps_its_fields_and_the_body_in_the_buffer() {
        let mut b = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: a b\r\nx-a: c\r\n\r\nhello"[..],
        );
        let Ok(Parsed::Final(r)) = response(&mut b, false) else {
            panic!()
        };
        assert_eq!(&b[..], b"hello");
        assert_eq!(r.status, 200);
        assert_eq!(r.framing, Framing::Length(5));
        assert!(r.reusable);
        assert!(r.reason.is_none());
        let a: Vec<_> = r.headers.get_all("x-a").iter().collect();
        assert_eq!(a, ["a b", "c"]);
    }

    #[test]
    fn framing_follows_rfc_9112() {
        assert_eq!(
            fin(b"HTTP/1.1 204 No Content\r\n\r\n").framing,
            Framing::Empty
        );
        let r = fin(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n");
        assert_eq!(r.framing, Framing::Empty);
        let Ok(Parsed::Final(r)) = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true)
        else {
            panic!()
        };
        assert_eq!(r.framing, Framing::Empty);
        let r = fin(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(r.framing, Framing::Chunked);
        assert!(r.reusable);
        let r = fin(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
        assert_eq!(r.framing, Framing::Close);
        assert!(!r.reusable);
        let r = fin(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(r.framing, Framing::Chunked);
        assert!(!r.reusable, "both lengths: not trusted again");
        let r = fin(b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(r.framing, Framing::Close);
        let r =
            fin(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive, close\r\n\r\n");
        assert!(!r.reusable);
        let r = fin(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(r.version, Version::HTTP_10);
        assert!(!r.reusable);
        let r = fin(b"HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\ncontent-length: 4\r\n\r\n");
        assert_eq!(r.framing, Framing::Length(4));
        // Found by the upstream_response fuzz target: a reason that is not
        // UTF-8 (httparse gives it as a static "").
        let r = fin(b"HTTP/1.0 200 \xb8K\r\n\r\nuntil the end");
        assert!(r.reason.is_none());
        let r = fin(b"HTTP/1.1 404 Gone Fishing\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.reason.as_deref(), Some(&b"Gone Fishing"[..]));
        assert_eq!(r.framing, Framing::Empty);
    }

    #[test]
    fn malformed_heads_are_refused() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n",
            b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 099 Low\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        ] {
            assert!(
                parse(raw, false).is_err(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn interim_heads_are_skipped_and_partial_heads_wait() {
        let mut b =
            BytesMut::from(&b"HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\n"[..]);
        assert!(matches!(response(&mut b, false), Ok(Parsed::Interim)));
        assert!(matches!(response(&mut b, false), Ok(Parsed::Partial)));
        b.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        assert!(matches!(response(&mut b, false), Ok(Parsed::Final(_))));
        assert!(b.is_empty());
        let mut big = BytesMut::from(&b"HTTP/1.1 200 OK\r\n"[..]);
        big.extend_from_slice(&vec![b'a'; MAX_HEAD + 1]);
        assert_eq!(response(&mut big, false).unwrap_err(), HeadError::TooLarge);
    }

    #[test]
    fn the_request_head_is_written_in_origin_form() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("example"));
        h.append("x-a", HeaderValue::from_static("1"));
        let mut out = Vec::new();
        let uri: http::Uri = "/p?q=1".parse().unwrap();
        write_request(&mut out, &Method::GET, &uri, &h);
        assert_eq!(
            out,
            b"GET /p?q=1 HTTP/1.1\r\nhost: example\r\nx-a: 1\r\n\r\n"
        );
    }
}
