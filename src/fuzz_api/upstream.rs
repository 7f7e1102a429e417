//! The native HTTP/1.1 client's parsers (`upstream::native`) under hostile
//! bytes from a backend: the response head parser and the body decoder.

use bytes::BytesMut;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::Version;

use crate::upstream::native::decode::{Decoder, Step};
use crate::upstream::native::head::{self, Framing, Parsed};

/// Feeds `bytes` (after a selector byte: HEAD request or not, and the size
/// of the pieces the bytes arrive in) to the response head parser and then,
/// under the framing it found, to the body decoder. Invariants: whole heads
/// are found however the bytes are split, interim heads are skipped, the
/// framing agrees with the fields, a reusable connection is HTTP/1.1 with a
/// delimited body, and the decoder never hands on more than it was given,
/// nor a Content-Length body of another length.
pub fn upstream_response(bytes: &[u8]) {
    let Some((&selector, rest)) = bytes.split_first() else {
        return;
    };
    let head_request = selector & 1 == 1;
    let piece = usize::from(selector >> 1).max(1);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let resp = loop {
        match head::response(&mut buf, head_request) {
            Err(_) => return,
            Ok(Parsed::Final(r)) => break r,
            Ok(Parsed::Interim) => continue,
            Ok(Parsed::Partial) => {
                if fed >= rest.len() {
                    return;
                }
                let end = (fed + piece).min(rest.len());
                buf.extend_from_slice(&rest[fed..end]);
                fed = end;
            }
        }
    };
    let te = resp.headers.get(TRANSFER_ENCODING).is_some();
    match resp.framing {
        Framing::Chunked => assert!(te, "chunked without Transfer-Encoding"),
        Framing::Length(n) => {
            assert!(!te && n > 0);
            let cl = resp
                .headers
                .get(CONTENT_LENGTH)
                .expect("a length has its field");
            assert!(cl.to_str().is_ok_and(|v| v.contains(&n.to_string())));
        }
        Framing::Empty | Framing::Close => {}
    }
    if resp.reusable {
        assert_eq!(resp.version, Version::HTTP_11);
        assert_ne!(resp.framing, Framing::Close);
    }
    if head_request {
        assert_eq!(resp.framing, Framing::Empty);
    }
    let mut body = BytesMut::new();
    body.extend_from_slice(&buf);
    body.extend_from_slice(&rest[fed..]);
    let given = body.len();
    decode(resp.framing, body, piece, given);
}

/// Decodes `wire` fed in pieces of `piece` bytes, then the end.
fn decode(framing: Framing, wire: BytesMut, piece: usize, given: usize) {
    let mut d = Decoder::new(framing);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut out = 0usize;
    loop {
        let eof = fed >= wire.len();
        match d.step(&mut buf, eof) {
            Err(_) => return,
            Ok(Step::Data(b)) => {
                assert!(!b.is_empty(), "empty data frame");
                out += b.len();
                assert!(out <= given, "more data than bytes");
            }
            Ok(Step::Trailers(_)) => assert!(d.is_done()),
            Ok(Step::End) => {
                if let Framing::Length(n) = framing {
                    assert_eq!(out as u64, n, "a length body of another length");
                }
                return;
            }
            Ok(Step::More) => {
                assert!(!eof, "more wanted after the end");
                let end = (fed + piece).min(wire.len());
                buf.extend_from_slice(&wire[fed..end]);
                fed = end;
            }
        }
    }
}
