//! `health.kind = "grpc"`: the standard gRPC health check
//! (`grpc.health.v1.Health/Check`, grpc/doc/health-checking.md) over h2c,
//! or over TLS with ALPN `h2` in a TLS pool.
//!
//! The two messages are tiny, so they are encoded by hand:
//! `HealthCheckRequest { string service = 1; }` and
//! `HealthCheckResponse { ServingStatus status = 1; }` with SERVING = 1. Each
//! travels in one gRPC length-prefixed frame (a compression flag byte, a
//! 4-byte big-endian length, the message). The response comes from the
//! member, so its decoder ([`decode_response`]) takes any bytes without
//! panicking (a fuzz target and a proptest twin check that).

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, TE, USER_AGENT};
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};

use super::local;
use super::probe::{ProbeResult, PROBE_USER_AGENT};
use crate::config::HealthConfig;
use crate::upstream::http1::ConnectError;
use crate::upstream::tls::UpstreamTls;
use crate::upstream::{h2_client, http2};
use crate::upstream::{GRPC_MESSAGE, GRPC_STATUS};

/// The method path of the check.
pub const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
/// Largest response body read: 64 KiB (the real one is 7 bytes).
pub const MAX_RESPONSE: usize = 64 * 1024;

/// `HealthCheckResponse.status` values.
pub const SERVING: u64 = 1;

/// The name of a `ServingStatus` value.
pub fn status_name(s: u64) -> String {
    match s {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        n => format!("status {n}"),
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The request body: one uncompressed frame holding `HealthCheckRequest`.
pub fn encode_request(service: &str) -> Vec<u8> {
    let mut msg = Vec::new();
    if !service.is_empty() {
        msg.push(0x0a); // field 1, length-delimited
        put_varint(&mut msg, service.len() as u64);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut out = Vec::with_capacity(5 + msg.len());
    out.push(0);
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(&msg);
    out
}

/// Reads a varint at the start of `b`: its value and length.
fn varint(b: &[u8]) -> Result<(u64, usize), String> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err("bad varint".into())
}

/// The `status` field of a `HealthCheckResponse` message (0 when absent, as
/// protobuf's default); other fields are skipped.
pub fn decode_message(mut b: &[u8]) -> Result<u64, String> {
    let mut status = 0;
    while !b.is_empty() {
        let (key, n) = varint(b)?;
        b = b.get(n..).unwrap_or_default();
        let skip = match key & 7 {
            0 => {
                let (v, n) = varint(b)?;
                if key >> 3 == 1 {
                    status = v;
                }
                n
            }
            1 => 8,
            5 => 4,
            2 => {
                let (len, n) = varint(b)?;
                usize::try_from(len)
                    .ok()
                    .and_then(|l| l.checked_add(n))
                    .ok_or("field too long")?
            }
            w => return Err(format!("unsupported wire type {w}")),
        };
        b = b.get(skip..).ok_or("message cut short")?;
    }
    Ok(status)
}

/// The serving status in a response body: exactly one uncompressed frame.
pub fn decode_response(body: &[u8]) -> Result<u64, String> {
    let (head, rest) = body
        .split_at_checked(5)
        .ok_or("response shorter than a frame")?;
    let [flag, l0, l1, l2, l3]: [u8; 5] = head.try_into().map_err(|_| "bad frame head")?;
    if flag != 0 {
        return Err("compressed response (drover sends no grpc-accept-encoding)".into());
    }
    let len = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
    if rest.len() != len {
        return Err(format!("frame says {len} bytes, body has {}", rest.len()));
    }
    decode_message(rest)
}

fn request(addr: SocketAddr, cfg: &HealthConfig, tls: bool) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(Bytes::from(encode_request(&cfg.service))));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = http::Uri::from_static(CHECK_PATH);
    let h = req.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert(TE, HeaderValue::from_static("trailers"));
    h.insert(USER_AGENT, HeaderValue::from_static(PROBE_USER_AGENT));
    if let Ok(host) = HeaderValue::from_str(&addr.to_string()) {
        h.insert(http::header::HOST, host);
    }
    http2::to_h2(&mut req, addr, tls);
    req
}

/// One gRPC health check of `addr`, over TLS when `tls` (the caller bounds
/// it by `cfg.timeout`).
pub async fn check(addr: SocketAddr, cfg: &HealthConfig, tls: Option<&UpstreamTls>) -> ProbeResult {
    let connected = http2::connect_h2(addr, tls, cfg.timeout).await;
    let mut sender = match connected {
        Ok(s) => s,
        Err(e) => {
            let local = matches!(&e, ConnectError::Io(io) if local::is_local(io));
            return ProbeResult::failed(local, e.to_string());
        }
    };
    let resp = match h2_client::send(&mut sender, request(addr, cfg, tls.is_some())).await {
        Ok(r) => r,
        Err(failed) => return super::probe::request_failed(&failed.error),
    };
    if resp.status() != http::StatusCode::OK {
        return ProbeResult::fail(format!(
            "HTTP status {} (not a gRPC server?)",
            resp.status()
        ));
    }
    let head_status = resp.headers().get(GRPC_STATUS).cloned();
    let head_message = resp.headers().get(GRPC_MESSAGE).cloned();
    let collected = match Limited::new(resp.into_body(), MAX_RESPONSE).collect().await {
        Ok(c) => c,
        Err(e) => return ProbeResult::fail(format!("reading the response failed: {e}")),
    };
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status = trailers.get(GRPC_STATUS).cloned().or(head_status);
    let message = trailers.get(GRPC_MESSAGE).cloned().or(head_message);
    match status.as_ref().map(HeaderValue::as_bytes) {
        Some(b"0") => {}
        Some(code) => {
            let msg = message
                .as_ref()
                .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
                .unwrap_or_default();
            return ProbeResult::fail(format!(
                "grpc-status {} {msg}",
                String::from_utf8_lossy(code)
            ));
        }
        None => return ProbeResult::fail("no grpc-status in the response"),
    }
    match decode_response(&collected.to_bytes()) {
        Ok(SERVING) => ProbeResult::pass("SERVING"),
        Ok(s) => ProbeResult::fail(status_name(s)),
        Err(e) => ProbeResult::fail(format!("bad HealthCheckResponse: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_encoding() {
        assert_eq!(encode_request(""), [0, 0, 0, 0, 0]);
        assert_eq!(encode_request("ab"), [0, 0, 0, 0, 4, 0x0a, 2, b'a', b'b']);
        let long = "x".repeat(200);
        let r = encode_request(&long);
        assert_eq!(&r[..8], &[0, 0, 0, 0, 203, 0x0a, 0xc8, 0x01]);
    }

    #[test]
    fn response_decoding() {
        assert_eq!(decode_response(&[0, 0, 0, 0, 2, 0x08, 1]), Ok(SERVING));
        assert_eq!(decode_response(&[0, 0, 0, 0, 2, 0x08, 2]), Ok(2));
        assert_eq!(decode_response(&[0, 0, 0, 0, 0]), Ok(0));
        // Unknown fields of every wire type are skipped.
        let msg = [
            0x10, 5, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x22, 1, 9, 0x2d, 1, 2, 3, 4, 0x08, 1,
        ];
        let mut body = vec![0, 0, 0, 0, msg.len() as u8];
        body.extend_from_slice(&msg);
        assert_eq!(decode_response(&body), Ok(SERVING));
        assert!(decode_response(&[0, 0, 0]).is_err());
        assert!(decode_response(&[1, 0, 0, 0, 0]).is_err());
        assert!(decode_response(&[0, 0, 0, 0, 3, 0x08, 1]).is_err());
        assert!(decode_response(&[0, 0, 0, 0, 2, 0x0a, 5]).is_err());
        assert!(decode_response(&[0, 0, 0, 0, 1, 0x08]).is_err());
        assert!(decode_response(&[0, 0, 0, 0, 1, 0x0b]).is_err());
    }
}
