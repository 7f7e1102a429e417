//! Response heads and body framing for the native codec, as hyper's server
//! frames them: the backend's `Content-Length` when it has one, else the
//! body's exact size, else chunked; no body after `HEAD`, 1xx, 204 or 304;
//! `connection: close` when the connection ends after the response; a
//! `date` field when there is none.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};

use super::parse::content_length;

/// How the response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    /// `Content-Length`: this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Decides the framing (editing the framing fields of `headers`) and
/// appends the head to `out`. `exact`: the body's exact size, if known.
pub fn head(
    out: &mut BytesMut,
    status: StatusCode,
    reason: Option<&[u8]>,
    headers: &mut HeaderMap,
    head_request: bool,
    exact: Option<u64>,
    close: bool,
) -> Framing {
    let no_body = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body {
        // As hyper: a HEAD answer made with a body tells that body's length.
        if let Some(n) = exact.filter(|&n| head_request && n > 0) {
            if !headers.contains_key(CONTENT_LENGTH) {
                headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
            }
        }
        Framing::None
    } else {
        // The framing is drover's to decide (the backend's transfer coding was
        // undone by its client): a stale `Transfer-Encoding` never passes.
        headers.remove(TRANSFER_ENCODING);
        length_framing(headers, exact)
    };
    if close && !headers.contains_key(CONNECTION) {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.extend_from_slice(b" ");
    let reason = reason.unwrap_or_else(|| status.canonical_reason().unwrap_or("<none>").as_bytes());
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers.iter() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !headers.contains_key(DATE) {
        out.extend_from_slice(b"date: ");
        date(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    framing
}

/// A body's framing: its single valid `Content-Length`, else its exact
/// size (written as `Content-Length`), else chunked.
fn length_framing(headers: &mut HeaderMap, exact: Option<u64>) -> Framing {
    let single = headers.get_all(CONTENT_LENGTH).iter().count() == 1;
    if let Some(n) = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| content_length(v.as_bytes()))
        .filter(|_| single)
    {
        return Framing::Length(n);
    }
    headers.remove(CONTENT_LENGTH);
    match exact {
        Some(n) => {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
            Framing::Length(n)
        }
        None => {
            headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            Framing::Chunked
        }
    }
}

thread_local! {
    /// The `date` value of the current second, formatted once per second.
    static DATE_CACHE: RefCell<(u64, [u8; 29])> = const { RefCell::new((0, [0; 29])) };
}

/// Appends the IMF-fixdate of now (29 bytes).
fn date(out: &mut BytesMut) {
    let now = SystemTime::now();
    let secs = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    DATE_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs || c.1[0] == 0 {
            let s = httpdate::fmt_http_date(now);
            let b = s.as_bytes();
            if b.len() == 29 {
                c.1.copy_from_slice(b);
                c.0 = secs;
            } else {
                out.extend_from_slice(b);
                return;
            }
        }
        out.extend_from_slice(&c.1);
    });
}

/// Appends a chunk's size line.
pub fn chunk_start(out: &mut BytesMut, len: usize) {
    use std::fmt::Write;
    let _ = write!(out, "{len:x}\r\n");
}

/// The end of a chunk.
pub const CHUNK_END: &[u8] = b"\r\n";
/// The last chunk of a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn written(
        status: u16,
        pairs: &[(&'static str, &'static str)],
        head_request: bool,
        exact: Option<u64>,
        close: bool,
    ) -> (String, Framing) {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        let mut out = BytesMut::new();
        let f = head(
            &mut out,
            StatusCode::from_u16(status).unwrap(),
            None,
            &mut h,
            head_request,
            exact,
            close,
        );
        (String::from_utf8(out.to_vec()).unwrap(), f)
    }

    #[test]
    fn frames_as_hyper_does() {
        let (s, f) = written(200, &[("content-length", "5")], false, None, false);
        assert_eq!(f, Framing::Length(5));
        assert!(
            s.starts_with("HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: "),
            "{s}"
        );
        assert!(s.ends_with(" GMT\r\n\r\n"), "{s}");
        let (s, f) = written(200, &[], false, Some(3), true);
        assert_eq!(f, Framing::Length(3));
        assert!(
            s.contains("content-length: 3\r\n") && s.contains("connection: close\r\n"),
            "{s}"
        );
        let (s, f) = written(200, &[], false, None, false);
        assert_eq!(f, Framing::Chunked);
        assert!(s.contains("transfer-encoding: chunked\r\n"), "{s}");
        // Two values, or a bad one: the body's own size decides.
        let (_, f) = written(
            200,
            &[("content-length", "1"), ("content-length", "2")],
            false,
            None,
            false,
        );
        assert_eq!(f, Framing::Chunked);
        for (status, head_request) in [(204, false), (304, false), (200, true), (103, false)] {
            let (s, f) = written(
                status,
                &[("content-length", "9")],
                head_request,
                Some(0),
                false,
            );
            assert_eq!(f, Framing::None);
            assert!(!s.contains("transfer-encoding"), "{s}");
        }
        // A stale transfer coding never passes with a length.
        let (s, f) = written(
            200,
            &[("transfer-encoding", "chunked"), ("content-length", "5")],
            false,
            None,
            false,
        );
        assert_eq!(f, Framing::Length(5));
        assert!(!s.contains("transfer-encoding"), "{s}");
        let (s, _) = written(599, &[("date", "x")], false, Some(0), false);
        assert!(
            s.starts_with("HTTP/1.1 599 <none>\r\n") && !s.contains("GMT"),
            "{s}"
        );
    }

    #[test]
    fn chunks_are_hex_sized() {
        let mut out = BytesMut::new();
        chunk_start(&mut out, 255);
        out.extend_from_slice(CHUNK_END);
        out.extend_from_slice(LAST_CHUNK);
        assert_eq!(&out[..], b"ff\r\n\r\n0\r\n\r\n");
    }
}
