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

use crate::access_log::write_ip;

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

/// Which hop-by-hop fields a message carries (one bit per field).
const HOP_CONNECTION: u8 = 1;
const HOP_KEEP_ALIVE: u8 = 2;
const HOP_PROXY_CONNECTION: u8 = 4;
const HOP_TRANSFER_ENCODING: u8 = 8;
const HOP_TE: u8 = 16;
const HOP_UPGRADE: u8 = 32;

/// One pass over the field names: which hop-by-hop fields are present.
/// Standard names compare as enum values, so this is cheap; most messages
/// carry at most `Connection`.
fn hop_fields(headers: &HeaderMap) -> u8 {
    let mut found = 0;
    for name in headers.keys() {
        found |= if name == header::CONNECTION {
            HOP_CONNECTION
        } else if name == header::TRANSFER_ENCODING {
            HOP_TRANSFER_ENCODING
        } else if name == header::TE {
            HOP_TE
        } else if name == header::UPGRADE {
            HOP_UPGRADE
        } else if name == KEEP_ALIVE {
            HOP_KEEP_ALIVE
        } else if name == PROXY_CONNECTION {
            HOP_PROXY_CONNECTION
        } else {
            0
        };
    }
    found
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1). With `upgrade`, keeps
/// `Upgrade` and sets `Connection: upgrade`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    strip_found(headers, upgrade);
}

/// [`strip_hop_by_hop`], returning which hop-by-hop fields were there.
fn strip_found(headers: &mut HeaderMap, upgrade: bool) -> u8 {
    let found = hop_fields(headers);
    if found & HOP_CONNECTION != 0 {
        // Fields named by `Connection`. `keep-alive` is removed below anyway;
        // `close` is usually only an option, so its name is parsed only when a
        // field of that name is there (a crafted `close:` field named by
        // `Connection` is hop-by-hop like any other).
        let close_field = headers.contains_key("close");
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| {
                !t.eq_ignore_ascii_case("keep-alive")
                    && (close_field || !t.eq_ignore_ascii_case("close"))
            })
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
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
    if found & HOP_KEEP_ALIVE != 0 {
        headers.remove(&KEEP_ALIVE);
    }
    if found & HOP_PROXY_CONNECTION != 0 {
        headers.remove(&PROXY_CONNECTION);
    }
    if found & HOP_TRANSFER_ENCODING != 0 {
        headers.remove(header::TRANSFER_ENCODING);
    }
    if found & HOP_TE != 0 {
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
    } else if found & HOP_UPGRADE != 0 {
        headers.remove(header::UPGRADE);
    }
    found
}

/// What the forwarding headers need to know about the downstream request.
pub struct ForwardInfo<'a> {
    pub client_ip: IpAddr,
    /// `http` or `https`.
    pub proto: &'static str,
    /// The downstream request's host (Host header or `:authority`).
    pub host: Option<&'a HeaderValue>,
    pub version: Version,
    pub request_id: &'a HeaderValue,
}

/// Adds `X-Forwarded-*`, `Via` and `X-Request-Id` to an upstream request.
pub fn add_forwarded(headers: &mut HeaderMap, info: &ForwardInfo<'_>) {
    append_list(headers, &X_FORWARDED_FOR, ip_value(info.client_ip));
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(info.proto));
    if let Some(host) = info.host {
        headers.insert(&X_FORWARDED_HOST, host.clone());
    }
    add_via(headers, info.version);
    headers.insert(&X_REQUEST_ID, info.request_id.clone());
}

/// Appends drover to `Via` (RFC 9110 §7.6.3) for a message received with
/// `version`: on requests sent upstream and on responses sent back.
pub fn add_via(headers: &mut HeaderMap, version: Version) {
    let via = match version {
        Version::HTTP_10 => "1.0 drover",
        Version::HTTP_2 => "2 drover",
        Version::HTTP_3 => "3 drover",
        _ => "1.1 drover",
    };
    append_list(headers, &header::VIA, HeaderValue::from_static(via));
}

/// An IP address as a header value; IPv4 written without the formatting machinery.
fn ip_value(ip: IpAddr) -> HeaderValue {
    super::value_arena::header_value(|b| write_ip(b, ip))
}

/// Appends `item` to a comma-separated list header, folding repeated fields
/// into one. One lookup of `name` (the entry) whether it is there or not.
fn append_list(headers: &mut HeaderMap, name: &HeaderName, item: HeaderValue) {
    let mut existing = match headers.entry(name) {
        header::Entry::Vacant(v) => {
            v.insert(item);
            return;
        }
        header::Entry::Occupied(o) => o,
    };
    let mut joined = String::new();
    for v in existing.iter() {
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
    joined.push_str(item.to_str().unwrap_or(""));
    if let Ok(v) = HeaderValue::from_str(&joined) {
        existing.insert(v);
    }
}

/// Removes hop-by-hop headers from a backend response (keeping `Upgrade` /
/// `Connection: upgrade` on a `101`). A response with `Transfer-Encoding`
/// loses its `Content-Length` too: the transfer coding framed the body
/// (RFC 9112 §6.3), and drover re-frames it for the client.
pub fn clean_response(headers: &mut HeaderMap, switching: bool) {
    if strip_found(headers, switching) & HOP_TRANSFER_ENCODING != 0 {
        headers.remove(header::CONTENT_LENGTH);
    }
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

    /// Found by the request_head fuzz target: a field named `close`, listed
    /// in `Connection` next to the `close` option, was forwarded.
    #[test]
    fn a_field_named_close_listed_in_connection_is_removed() {
        let mut h = map(&[
            ("connection", "keep-alive, Foo, close"),
            ("close", "te"),
            ("foo", "1"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-kept"]);
        let mut h = map(&[("connection", "close"), ("x-kept", "yes")]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-kept"]);
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
    fn ip_values_match_the_standard_formatting() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "1.2.3.100",
            "::1",
            "2001:db8::7",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_value(ip).to_str().unwrap(), ip.to_string());
        }
    }

    #[test]
    fn a_response_with_transfer_encoding_loses_content_length() {
        let mut h = map(&[
            ("content-length", "3"),
            ("transfer-encoding", "chunked"),
            ("x-kept", "1"),
        ]);
        clean_response(&mut h, false);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-kept"]);
        let mut h = map(&[("content-length", "3")]);
        clean_response(&mut h, false);
        assert_eq!(h.get("content-length").unwrap(), "3");
    }

    #[test]
    fn a_message_without_hop_by_hop_fields_is_left_alone() {
        let mut h = map(&[("host", "a"), ("accept", "*/*"), ("x-other", "1")]);
        let before = h.clone();
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h, before);
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
                host: Some(&HeaderValue::from_static("example.com")),
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

    #[test]
    fn via_is_appended_to_responses_by_their_version() {
        let mut h = map(&[("via", "1.1 cdn"), ("via", "1.0 app")]);
        add_via(&mut h, Version::HTTP_11);
        assert_eq!(h.get_all("via").iter().count(), 1);
        assert_eq!(h.get("via").unwrap(), "1.1 cdn, 1.0 app, 1.1 drover");
        let mut h = HeaderMap::new();
        add_via(&mut h, Version::HTTP_2);
        assert_eq!(h.get("via").unwrap(), "2 drover");
    }
}
