//! Heads on the wire: the request head encoded straight from the request's
//! parts (stateless HPACK, [`crate::h2wire::hpack::encode_field`]), and the
//! response head or trailers checked field by field as the decoder hands
//! them out (RFC 9113 §8.1.1, §8.2, §8.3.2), into a recycled `HeaderMap`.

use bytes::{Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::h2wire::hpack::encode_field;
use crate::upstream::native::head::{content_length, offset};
use crate::upstream::{maps, names};

/// Appends the request head's field block: `:method`, `:scheme` (the URI's,
/// else `http`), `:authority` (when the URI has one), `:path` (`/` when
/// empty), then the fields; a sensitive value goes never-indexed. CONNECT
/// sends `:method` and `:authority` only (RFC 9113 §8.5).
pub(super) fn encode_request(dst: &mut BytesMut, parts: &http::request::Parts) {
    let uri = &parts.uri;
    encode_field(dst, b":method", parts.method.as_str().as_bytes(), false);
    if parts.method == Method::CONNECT {
        if let Some(a) = uri.authority() {
            encode_field(dst, b":authority", a.as_str().as_bytes(), false);
        }
    } else {
        let scheme = uri.scheme_str().unwrap_or("http");
        encode_field(dst, b":scheme", scheme.as_bytes(), false);
        if let Some(a) = uri.authority() {
            encode_field(dst, b":authority", a.as_str().as_bytes(), false);
        }
        let path = uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        encode_field(dst, b":path", path.as_bytes(), false);
    }
    encode_fields(dst, &parts.headers);
}

/// Appends `headers` (regular fields: names are lowercase in a `HeaderMap`).
pub(super) fn encode_fields(dst: &mut BytesMut, headers: &HeaderMap) {
    for (name, value) in headers {
        encode_field(
            dst,
            name.as_str().as_bytes(),
            value.as_bytes(),
            value.is_sensitive(),
        );
    }
}

/// The buffer for a head's copied values: 512 bytes (more for a larger value).
const COPIES_SIZE: usize = 512;

/// Fields forbidden in HTTP/2 (RFC 9113 §8.2.2); `te` is checked apart.
fn connection_specific(name: &[u8]) -> bool {
    matches!(
        name,
        b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade"
    )
}

/// A response head or trailers being decoded: the fields checked as they
/// come; the first fault found is kept (the rest of the block is still
/// decoded, for the HPACK table).
pub(super) struct Fields<'b> {
    /// The field block, so that values sent as literals are shared, not copied.
    block: &'b Bytes,
    trailers: bool,
    pub status: Option<StatusCode>,
    pub headers: HeaderMap,
    /// A regular field came (pseudo-headers must come first).
    regular: bool,
    /// `content-length`, when given (equal values if repeated).
    pub length: Option<u64>,
    /// The first fault: the block is malformed (a stream PROTOCOL_ERROR).
    pub bad: Option<&'static str>,
    /// Values that are not slices of the block (Huffman-coded, or from the
    /// HPACK table), copied into one buffer and split off it: one allocation
    /// per head, not one per value.
    copies: BytesMut,
}

impl<'b> Fields<'b> {
    /// Fields of a response head, or of trailers (no pseudo-header then).
    pub fn new(block: &'b Bytes, trailers: bool) -> Fields<'b> {
        Fields {
            block,
            trailers,
            status: None,
            headers: maps::take(8),
            regular: false,
            length: None,
            bad: None,
            copies: BytesMut::new(),
        }
    }

    /// `value` as shared bytes: a slice of the block when it is one, else a
    /// copy split off [`Self::copies`].
    fn share(&mut self, value: &[u8]) -> Bytes {
        if let Some((at, len)) = offset(self.block, value) {
            return self.block.slice(at..at + len);
        }
        if self.copies.capacity() - self.copies.len() < value.len() {
            self.copies = BytesMut::with_capacity(value.len().max(COPIES_SIZE));
        }
        self.copies.extend_from_slice(value);
        self.copies.split().freeze()
    }

    /// One decoded field.
    pub fn field(&mut self, name: &[u8], value: &[u8], never_indexed: bool) {
        if self.bad.is_some() {
            return;
        }
        if let Err(why) = self.check(name, value, never_indexed) {
            self.bad = Some(why);
        }
    }

    fn check(
        &mut self,
        name: &[u8],
        value: &[u8],
        never_indexed: bool,
    ) -> Result<(), &'static str> {
        if name.first() == Some(&b':') {
            if self.trailers {
                return Err("pseudo-header in trailers");
            }
            if self.regular {
                return Err("pseudo-header after a regular field");
            }
            if name != b":status" {
                return Err("request or unknown pseudo-header in a response");
            }
            if self.status.is_some() {
                return Err("two :status");
            }
            let status = StatusCode::from_bytes(value).map_err(|_| "invalid :status")?;
            self.status = Some(status);
            return Ok(());
        }
        self.regular = true;
        if name.iter().any(u8::is_ascii_uppercase) {
            return Err("uppercase field name");
        }
        if connection_specific(name) || (name == b"te" && value != b"trailers") {
            return Err("connection-specific field");
        }
        let name = names::parse(name).map_err(|_| "invalid field name")?;
        let bytes = self.share(value);
        let mut value = HeaderValue::from_maybe_shared(bytes).map_err(|_| "invalid field value")?;
        if never_indexed {
            value.set_sensitive(true);
        }
        if name == CONTENT_LENGTH {
            let n = content_length(value.as_bytes()).ok_or("invalid content-length")?;
            if self.length.is_some_and(|l| l != n) {
                return Err("two different content-lengths");
            }
            self.length = Some(n);
        }
        self.headers.append(name, value);
        Ok(())
    }

    /// The map back to this thread's list (the head is not used).
    pub fn discard(self) {
        maps::give(self.headers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2wire::hpack::Decoder;

    fn decode(
        block: &[u8],
        trailers: bool,
    ) -> (Option<StatusCode>, HeaderMap, Option<&'static str>) {
        let block = Bytes::copy_from_slice(block);
        let mut f = Fields::new(&block, trailers);
        Decoder::new(4096)
            .decode(&block, 1 << 16, |n, v, s| f.field(n, v, s))
            .unwrap();
        (f.status, f.headers, f.bad)
    }

    fn block(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut b = BytesMut::new();
        for (n, v) in fields {
            encode_field(&mut b, n.as_bytes(), v.as_bytes(), false);
        }
        b.to_vec()
    }

    #[test]
    fn a_good_head_comes_through_and_literals_are_shared() {
        let b = block(&[
            (":status", "200"),
            ("x-long", "a value long enough"),
            ("content-length", "5"),
        ]);
        let (status, h, bad) = decode(&b, false);
        assert_eq!(bad, None);
        assert_eq!(status, Some(StatusCode::OK));
        assert_eq!(h["x-long"], "a value long enough");
        assert_eq!(h["content-length"], "5");
    }

    #[test]
    fn malformed_heads_are_found() {
        for (fields, why) in [
            (
                vec![("x-a", "1"), (":status", "200")],
                "pseudo-header after a regular field",
            ),
            (vec![(":status", "200"), (":status", "204")], "two :status"),
            (vec![(":status", "20")], "invalid :status"),
            (vec![(":status", "2000")], "invalid :status"),
            (vec![(":status", "abc")], "invalid :status"),
            (
                vec![(":path", "/"), (":status", "200")],
                "request or unknown pseudo-header in a response",
            ),
            (
                vec![(":status", "200"), ("X-Up", "1")],
                "uppercase field name",
            ),
            (
                vec![(":status", "200"), ("connection", "close")],
                "connection-specific field",
            ),
            (
                vec![(":status", "200"), ("transfer-encoding", "chunked")],
                "connection-specific field",
            ),
            (
                vec![(":status", "200"), ("te", "gzip")],
                "connection-specific field",
            ),
            (
                vec![
                    (":status", "200"),
                    ("content-length", "1"),
                    ("content-length", "2"),
                ],
                "two different content-lengths",
            ),
            (
                vec![(":status", "200"), ("content-length", "-1")],
                "invalid content-length",
            ),
            (
                vec![(":status", "200"), ("x-a", "a\nb")],
                "invalid field value",
            ),
            (
                vec![(":status", "200"), ("bad name", "1")],
                "invalid field name",
            ),
        ] {
            let (_, _, bad) = decode(&block(&fields), false);
            assert_eq!(bad, Some(why), "{fields:?}");
        }
        let (_, h, bad) = decode(&block(&[(":status", "200"), ("te", "trailers")]), false);
        assert_eq!(bad, None);
        assert_eq!(h["te"], "trailers");
        let (_, _, bad) = decode(&block(&[(":status", "200")]), true);
        assert_eq!(bad, Some("pseudo-header in trailers"));
    }

    #[test]
    fn the_request_head_has_its_pseudo_headers() {
        let (parts, ()) = http::Request::post("https://api.example:8443/a?b=1")
            .header("x-secret", "s")
            .body(())
            .unwrap()
            .into_parts();
        let mut parts = parts;
        parts
            .headers
            .get_mut("x-secret")
            .unwrap()
            .set_sensitive(true);
        let mut out = BytesMut::new();
        encode_request(&mut out, &parts);
        let mut got = Vec::new();
        Decoder::new(4096)
            .decode(&out, 1 << 16, |n, v, s| {
                got.push((
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                    s,
                ))
            })
            .unwrap();
        let want = [
            (":method", "POST", false),
            (":scheme", "https", false),
            (":authority", "api.example:8443", false),
            (":path", "/a?b=1", false),
            ("x-secret", "s", true),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(n, v, s)| (n.to_string(), v.to_string(), *s))
            .collect();
        assert_eq!(got, want);
        // No authority, no scheme: `http`, and `/` for an empty path.
        let (parts, ()) = http::Request::get("/").body(()).unwrap().into_parts();
        let mut out = BytesMut::new();
        encode_request(&mut out, &parts);
        let mut names = Vec::new();
        Decoder::new(4096)
            .decode(&out, 1 << 16, |n, v, _| {
                names.push(format!(
                    "{}={}",
                    String::from_utf8_lossy(n),
                    String::from_utf8_lossy(v)
                ))
            })
            .unwrap();
        assert_eq!(names, [":method=GET", ":scheme=http", ":path=/"]);
    }
}
