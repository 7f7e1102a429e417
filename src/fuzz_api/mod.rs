//! Entry points for the fuzz targets (`fuzz/`) and their proptest twins
//! (`tests/fuzz_twins.rs`): each feeds one input through drover's own code
//! and asserts the invariants that must hold for any input. A broken invariant
//! or a panic anywhere below is a finding. Not a stable API.
//!
//! - [`request_head`]: routing by host and path, `strip_prefix`, the
//!   hop-by-hop / forwarding header rewrite, the request id, the W3C trace
//!   context ([`traceparent`]) and the access-log lines (JSON and combined);
//! - [`config`]: TOML text -> validated config or positioned errors;
//! - [`duration`]: the duration and size parsers;
//! - [`admin_request`]: the admin API's route table, path parameters and query;
//! - [`grpc`]: `grpc-timeout` and the gRPC health check response decoder;
//! - [`sticky_cookie`]: the sticky-session cookie parser;
//! - [`h1_head`], [`h1_connection`]: the native HTTP/1 codec (request head
//!   parser, response head writer, a whole client connection);
//! - [`upstream_response`]: the native HTTP/1.1 client's response head parser
//!   and body decoder (bytes from a backend);
//! - [`upstream_h2`]: the HTTP/2 client (`h2_client`) under any frames a
//!   backend sends back to one request;
//! - [`hpack`]: the HPACK decoder and encoders (`h2wire::hpack`);
//! - [`h2_server`]: drover's own HTTP/2 server (`proxy::h2`) under any
//!   frames a client sends on one connection;
//! - [`route_rules`]: redirect targets and header-rule templates expanded with
//!   a hostile Host, path and query.

mod checks;
mod grpc;
mod h1;
mod h2_server;
mod head;
pub mod hpack;
mod route_rules;
mod sticky;
mod upstream;
mod upstream_h2;

pub use checks::{admin_request, config, duration, percent_decode_strict};
pub use grpc::grpc;
pub use h1::{h1_connection, h1_head};
pub use h2_server::h2_server;
pub use head::{request_head, route_with_prefix, traceparent};
pub use route_rules::{expansions, route_rules};
pub use sticky::sticky_cookie;
pub use upstream::upstream_response;
pub use upstream_h2::upstream_h2;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri, Version};

/// A request head as hyper hands it to drover: only values `http` accepts.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub client: IpAddr,
}

/// Reads a request head from raw bytes: a request line (`GET /x HTTP/1.1`; the
/// method and version may be missing or odd, the target must be a valid URI) and
/// `name: value` lines. Lines `http` would refuse are skipped, as if the client
/// had not sent them. `None` when the request target is not a URI (hyper answers
/// 400 then, drover never sees it).
pub fn parse_head(bytes: &[u8]) -> Option<Head> {
    let mut lines = bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next()?;
    let mut parts = request_line.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let (method, target, version) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), v) => (Method::from_bytes(m).unwrap_or(Method::GET), t, v),
        (Some(t), None, _) => (Method::GET, t, None),
        _ => return None,
    };
    let uri = Uri::try_from(target).ok()?;
    let version = match version {
        Some(b"HTTP/1.0") => Version::HTTP_10,
        Some(b"HTTP/2") | Some(b"HTTP/2.0") => Version::HTTP_2,
        _ => Version::HTTP_11,
    };
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (line.get(..colon), line.get(colon + 1..));
        let (Some(name), Some(value)) = (name, value) else {
            continue;
        };
        let value = value.trim_ascii();
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    // Both address families, picked by the input so the fuzzer reaches each.
    let client = if bytes.len().is_multiple_of(2) {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))
    } else {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7))
    };
    Some(Head {
        method,
        uri,
        version,
        headers,
        client,
    })
}
