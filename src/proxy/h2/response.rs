//! Response heads and trailers as HEADERS frames: `:status`, then the
//! fields less the connection-specific ones (RFC 9113 §8.2.2), encoded
//! without the dynamic table (`h2wire::hpack::encode_field`).

use bytes::BytesMut;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, StatusCode};

use crate::h2wire::{frame, hpack};

fn connection_specific(name: &str) -> bool {
    matches!(
        name,
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade"
    )
}

fn fields(dst: &mut BytesMut, headers: &HeaderMap) {
    for (name, value) in headers {
        let n = name.as_str();
        if connection_specific(n) {
            continue;
        }
        hpack::encode_field(dst, n.as_bytes(), value.as_bytes(), value.is_sensitive());
    }
}

/// Appends the response head for `stream`; `length` is added as
/// `content-length` when the head has none (the body's exact size).
pub fn head(
    dst: &mut BytesMut,
    stream: u32,
    status: StatusCode,
    headers: &HeaderMap,
    length: Option<u64>,
    end_stream: bool,
    max_frame: u32,
) {
    let at = frame::begin_headers(dst);
    hpack::encode_status(dst, status.as_u16());
    fields(dst, headers);
    if let Some(n) = length {
        if !headers.contains_key(CONTENT_LENGTH) {
            let mut b = itoa::Buffer::new();
            hpack::encode_field(dst, b"content-length", b.format(n).as_bytes(), false);
        }
    }
    frame::finish_headers(dst, at, stream, end_stream, max_frame);
}

/// Appends a head with only a status (`100 Continue`, drover's own 431).
pub fn status_only(dst: &mut BytesMut, stream: u32, status: u16, end_stream: bool, max_frame: u32) {
    let at = frame::begin_headers(dst);
    hpack::encode_status(dst, status);
    frame::finish_headers(dst, at, stream, end_stream, max_frame);
}

/// Appends trailers (they end the stream).
pub fn trailers(dst: &mut BytesMut, stream: u32, headers: &HeaderMap, max_frame: u32) {
    let at = frame::begin_headers(dst);
    fields(dst, headers);
    frame::finish_headers(dst, at, stream, true, max_frame);
}
