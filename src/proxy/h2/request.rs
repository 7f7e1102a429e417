//! A client's HTTP/2 request head (RFC 9113 §8.3.1) from its decoded field
//! block: pseudo-fields first, each once; names lowercase; no
//! connection-specific fields; `te` only as `trailers`; values a
//! `HeaderValue` can hold. A head that breaks a rule is malformed (a stream
//! error, PROTOCOL_ERROR, §8.1.1). Values are copied once into one buffer per
//! head and sliced from it (one allocation for all of them).

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, EXPECT};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::h2wire::hpack::{Decoder, HpackError};
use crate::upstream::{maps, names};

/// A request head as it came, checked.
#[derive(Debug)]
pub struct Head {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    /// `content-length`, when given.
    pub content_length: Option<u64>,
    /// `expect: 100-continue`.
    pub expects_continue: bool,
}

/// What a field block gave.
#[derive(Debug)]
pub enum Decoded<T> {
    Ok(T),
    /// Malformed (RST_STREAM with PROTOCOL_ERROR): why.
    Malformed(&'static str),
    /// Larger than the list size we allow (answered 431).
    TooLarge,
}

#[derive(Default)]
struct Pseudo {
    method: Option<(usize, usize)>,
    scheme: Option<(usize, usize)>,
    authority: Option<(usize, usize)>,
    path: Option<(usize, usize)>,
}

/// A connection's decoder of request heads: the HPACK state, and the
/// buffers a head's values and fields are gathered in (reused: a head's
/// values are split off one buffer, allocated once per 16 KiB of heads).
pub struct HeadDecoder {
    hpack: Decoder,
    vals: BytesMut,
    fields: Vec<(HeaderName, usize, usize, bool)>,
}

/// Room for values the buffer is renewed below: 1 KiB (renewed at 16 KiB).
const VALS_LOW: usize = 1024;
const VALS_SIZE: usize = 16 * 1024;

impl HeadDecoder {
    /// A decoder with an HPACK table of `table_size` bytes.
    pub fn new(table_size: usize) -> HeadDecoder {
        HeadDecoder {
            hpack: Decoder::new(table_size),
            vals: BytesMut::new(),
            fields: Vec::new(),
        }
    }

    /// The HPACK decoder, and a gatherer on the reused buffers.
    fn parts(&mut self, trailers: bool) -> (&mut Decoder, Gather<'_>) {
        if self.vals.capacity() - self.vals.len() < VALS_LOW {
            self.vals = BytesMut::with_capacity(VALS_SIZE);
        }
        self.fields.clear();
        let g = Gather {
            vals: &mut self.vals,
            fields: &mut self.fields,
            pseudo: Pseudo::default(),
            bad: None,
            regular_seen: false,
            trailers,
        };
        (&mut self.hpack, g)
    }

    /// Decodes a request head. `Err` is a connection error (COMPRESSION_ERROR).
    pub fn decode(&mut self, block: &[u8], max_list: usize) -> Result<Decoded<Head>, HpackError> {
        let (hpack, mut g) = self.parts(false);
        match decode_into(hpack, block, max_list, &mut g) {
            Ok(true) => Ok(match build(g) {
                Ok(h) => Decoded::Ok(h),
                Err(why) => Decoded::Malformed(why),
            }),
            Ok(false) => {
                g.vals.clear();
                Ok(Decoded::TooLarge)
            }
            Err(e) => Err(e),
        }
    }

    /// Decodes trailers (no pseudo-fields).
    pub fn decode_trailers(
        &mut self,
        block: &[u8],
        max_list: usize,
    ) -> Result<Decoded<HeaderMap>, HpackError> {
        let (hpack, mut g) = self.parts(true);
        match decode_into(hpack, block, max_list, &mut g) {
            Ok(true) => Ok(match g.into_map() {
                Ok((map, _, _)) => Decoded::Ok(map),
                Err(why) => Decoded::Malformed(why),
            }),
            Ok(false) => {
                g.vals.clear();
                Ok(Decoded::TooLarge)
            }
            Err(e) => Err(e),
        }
    }
}

/// Gathers fields: names parsed, values appended to one buffer.
struct Gather<'a> {
    vals: &'a mut BytesMut,
    fields: &'a mut Vec<(HeaderName, usize, usize, bool)>,
    pseudo: Pseudo,
    bad: Option<&'static str>,
    regular_seen: bool,
    trailers: bool,
}

fn connection_specific(name: &[u8]) -> bool {
    matches!(
        name,
        b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade"
    )
}

impl Gather<'_> {
    fn keep(&mut self, v: &[u8]) -> (usize, usize) {
        let at = self.vals.len();
        self.vals.extend_from_slice(v);
        (at, self.vals.len())
    }

    fn field(&mut self, name: &[u8], value: &[u8], never_indexed: bool) {
        if self.bad.is_some() {
            return;
        }
        if let Some(p) = name.strip_prefix(b":") {
            if self.regular_seen || self.trailers {
                self.bad = Some("pseudo-header field after a regular field, or in trailers");
                return;
            }
            let r = self.keep(value);
            let slot = match p {
                b"method" => &mut self.pseudo.method,
                b"scheme" => &mut self.pseudo.scheme,
                b"authority" => &mut self.pseudo.authority,
                b"path" => &mut self.pseudo.path,
                _ => {
                    self.bad = Some("unknown pseudo-header field");
                    return;
                }
            };
            if slot.replace(r).is_some() {
                self.bad = Some("repeated pseudo-header field");
            }
            return;
        }
        self.regular_seen = true;
        if name.iter().any(u8::is_ascii_uppercase) {
            self.bad = Some("uppercase field name");
            return;
        }
        if connection_specific(name) || (name == b"te" && value != b"trailers") {
            self.bad = Some("connection-specific field");
            return;
        }
        let Ok(n) = names::parse(name) else {
            self.bad = Some("invalid field name");
            return;
        };
        let (s, e) = self.keep(value);
        self.fields.push((n, s, e, never_indexed));
    }

    /// The fields as a map (values sliced from one frozen buffer).
    fn into_map(self) -> Result<(HeaderMap, Bytes, Pseudo), &'static str> {
        let vals = self.vals.split().freeze();
        if let Some(why) = self.bad {
            return Err(why);
        }
        let mut map = maps::take(self.fields.len() + maps::FORWARD_ADDS);
        for (name, s, e, sensitive) in self.fields.drain(..) {
            let mut v = HeaderValue::from_maybe_shared(vals.slice(s..e))
                .map_err(|_| "invalid field value")?;
            v.set_sensitive(sensitive);
            map.append(name, v);
        }
        Ok((map, vals, self.pseudo))
    }
}

fn decode_into(
    dec: &mut Decoder,
    block: &[u8],
    max_list: usize,
    g: &mut Gather<'_>,
) -> Result<bool, HpackError> {
    match dec.decode(block, max_list, |n, v, s| g.field(n, v, s)) {
        Ok(()) => Ok(true),
        Err(e) if e.list_too_large() => Ok(false),
        Err(e) => Err(e),
    }
}

fn build(g: Gather<'_>) -> Result<Head, &'static str> {
    let (headers, vals, p) = g.into_map()?;
    let part = |r: Option<(usize, usize)>| r.map(|(s, e)| vals.slice(s..e));
    let method = part(p.method).ok_or("no :method")?;
    let method = Method::from_bytes(&method).map_err(|_| "invalid :method")?;
    let authority = part(p.authority)
        .map(|a| Authority::from_maybe_shared(a).map_err(|_| "invalid :authority"))
        .transpose()?;
    let mut parts = http::uri::Parts::default();
    if method == Method::CONNECT {
        // §8.5: :authority only (extended CONNECT is not offered).
        if p.scheme.is_some() || p.path.is_some() {
            return Err("CONNECT with :scheme or :path");
        }
        parts.authority = Some(authority.ok_or("CONNECT without :authority")?);
    } else {
        let scheme = part(p.scheme).ok_or("no :scheme")?;
        let path = part(p.path).ok_or("no :path")?;
        if path.is_empty() {
            return Err("empty :path");
        }
        let scheme = match &scheme[..] {
            b"http" => Scheme::HTTP,
            b"https" => Scheme::HTTPS,
            other => Scheme::try_from(other).map_err(|_| "invalid :scheme")?,
        };
        parts.path_and_query =
            Some(PathAndQuery::from_maybe_shared(path).map_err(|_| "invalid :path")?);
        // A URI cannot hold a scheme without an authority: without
        // :authority the target is the path alone (as the `h2` crate made it;
        // routing then reads `host`).
        if let Some(a) = authority {
            parts.authority = Some(a);
            parts.scheme = Some(scheme);
        }
    }
    let uri = Uri::from_parts(parts).map_err(|_| "invalid request target")?;
    let mut content_length = None;
    for v in headers.get_all(CONTENT_LENGTH) {
        let n = crate::upstream::native::head::content_length(v.as_bytes())
            .ok_or("invalid content-length")?;
        if content_length.is_some_and(|m| m != n) {
            return Err("conflicting content-length");
        }
        content_length = Some(n);
    }
    let expects_continue = headers
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    Ok(Head {
        method,
        uri,
        headers,
        content_length,
        expects_continue,
    })
}
