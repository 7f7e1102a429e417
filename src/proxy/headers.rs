//! Request and response header rewriting for a proxy.
//!
//! - Hop-by-hop headers removed as RFC 9110 §7.6.1 says: `Connection` and every
//!   header it names, `Keep-Alive`, `Proxy-Connection`, `TE` (except
//!   `trailers`), `Transfer-Encoding`, `Upgrade` (kept on an upgrade request,
//!   together with `Connection: upgrade`).
//! - `Expect` is answered by drover itself (hyper sends `100 Continue` when the
//!   body is first read), so it is not forwarded (RFC 9110 §10.1.1 lets a proxy
//!   do that).
//! - Added: `X-Forwarded-For` (appended), `X-Forwarded-Proto`,
//!   `X-Forwarded-Host`, `Via`, `X-Request-Id` (kept if present).
//!   `Host` is passed through unchanged.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Version;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Whether the request asks for a protocol upgrade (`Connection: upgrade` + `Upgrade`).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_has(headers, "upgrade")
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1). With `upgrade`, keeps
/// `Upgrade` and sets `Connection: upgrade`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in named {
            if upgrade && name == header::UPGRADE {
                continue;
            }
            if name == header::TE {
                // Handled below: `TE: trailers` survives even when listed.
                continue;
            }
            headers.remove(&name);
        }
        headers.remove(header::CONNECTION);
    }
    headers.remove(&KEEP_ALIVE);
    headers.remove(&PROXY_CONNECTION);
    headers.remove(header::TRANSFER_ENCODING);
    if headers.contains_key(header::TE) {
        let trailers = headers
            .get_all(header::TE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
        headers.remove(header::TE);
        if trailers {
            headers.insert(header::TE, HeaderValue::from_static("trailers"));
        }
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// What the forwarding headers need to know about the downstream request.
pub struct ForwardInfo<'a> {
    pub client_ip: IpAddr,
    /// `http` or `https`.
    pub proto: &'static str,
    /// The downstream request's host (Host header or `:authority`).
    pub host: Option<&'a str>,
    pub version: Version,
    pub request_id: &'a HeaderValue,
}

/// Adds `X-Forwarded-*`, `Via` and `X-Request-Id` to an upstream request.
pub fn add_forwarded(headers: &mut HeaderMap, info: &ForwardInfo<'_>) {
    append_list(headers, &X_FORWARDED_FOR, &info.client_ip.to_string());
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(info.proto));
    if let Some(host) = info.host.and_then(|h| HeaderValue::from_str(h).ok()) {
        headers.insert(&X_FORWARDED_HOST, host);
    }
    let via = match info.version {
        Version::HTTP_10 => "1.0 drover",
        Version::HTTP_2 => "2 drover",
        Version::HTTP_3 => "3 drover",
        _ => "1.1 drover",
    };
    append_list(headers, &header::VIA, via);
    headers.insert(&X_REQUEST_ID, info.request_id.clone());
}

/// Appends `item` to a comma-separated list header, folding repeated fields into one.
fn append_list(headers: &mut HeaderMap, name: &HeaderName, item: &str) {
    let mut joined = String::new();
    for v in headers.get_all(name).iter() {
        if let Ok(s) = v.to_str() {
            if !joined.is_empty() {
                joined.push_str(", ");
            }
            joined.push_str(s);
        }
    }
    if !joined.is_empty() {
        joined.push_str(", ");
    }
    joined.push_str(item);
    if let Ok(v) = HeaderValue::from_str(&joined) {
        headers.insert(name, v);
    }
}

/// Removes hop-by-hop headers from a backend response (keeping `Upgrade` /
/// `Connection: upgrade` on a `101`).
pub fn clean_response(headers: &mut HeaderMap, switching: bool) {
    strip_hop_by_hop(headers, switching);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn removes_connection_and_every_header_it_names() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("connection", "Foo"),
            ("x-secret", "1"),
            ("foo", "2"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-kept"]);
    }

    #[test]
    fn te_trailers_survives_other_te_values_do_not() {
        let mut h = map(&[("te", "gzip, trailers")]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.get("te").unwrap(), "trailers");
        let mut h = map(&[("te", "gzip")]);
        strip_hop_by_hop(&mut h, false);
        assert!(h.get("te").is_none());
        let mut h = map(&[("te", "trailers"), ("connection", "te")]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.get("te").unwrap(), "trailers");
    }

    #[test]
    fn upgrade_keeps_upgrade_and_connection_upgrade() {
        let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        assert_eq!(h.get("connection").unwrap(), "upgrade");
    }

    #[test]
    fn forwarded_headers_append_and_set() {
        let mut h = map(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-for", "10.0.0.2"),
            ("via", "1.0 edge"),
        ]);
        let id = HeaderValue::from_static("abc");
        add_forwarded(
            &mut h,
            &ForwardInfo {
                client_ip: "127.0.0.1".parse().unwrap(),
                proto: "http",
                host: Some("example.com"),
                version: Version::HTTP_11,
                request_id: &id,
            },
        );
        assert_eq!(
            h.get("x-forwarded-for").unwrap(),
            "10.0.0.1, 10.0.0.2, 127.0.0.1"
        );
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "http");
        assert_eq!(h.get("x-forwarded-host").unwrap(), "example.com");
        assert_eq!(h.get("via").unwrap(), "1.0 edge, 1.1 drover");
        assert_eq!(h.get("x-request-id").unwrap(), "abc");
    }
}
