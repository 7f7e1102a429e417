//! A route's rules at request time: matching on methods and headers, header
//! rules with their placeholders, redirects (`redirect`, `server.https_redirect`)
//! and the 429 of a rate limit. Pure functions over request parts; every input
//! byte may be hostile (Host and path come from the client), so nothing here
//! slices or unwraps request data, and a value that would not make a valid
//! header is refused, never sent.

use std::net::IpAddr;

use bytes::BytesMut;
use http::header::{HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use http::{Method, Response, StatusCode, Uri};

use super::body::{Completion, ProxyBody};
use super::rate_limiter::Limited;
use crate::config::{HeaderRules, Piece, RedirectPiece, RedirectTarget, RouteRules, Template};

/// `RateLimit-Limit` (draft-ietf-httpapi-ratelimit-headers).
pub static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`.
pub static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`.
pub static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Whether the request's method and headers satisfy the route's `methods` and `headers`.
pub fn extra_match(rules: &RouteRules, method: &Method, headers: &HeaderMap) -> bool {
    (rules.methods.is_empty() || rules.methods.iter().any(|m| m == method.as_str()))
        && rules.headers.iter().all(|(name, want)| {
            headers
                .get_all(name.as_str())
                .iter()
                .any(|v| v.as_bytes() == want.as_bytes())
        })
}

/// What a header rule's placeholders are filled with.
#[derive(Debug, Clone, Copy)]
pub struct Fill<'a> {
    pub client_ip: IpAddr,
    pub request_id: &'a HeaderValue,
    /// The request's Host (or `:authority`), as sent.
    pub host: Option<&'a HeaderValue>,
}

/// `template` with its placeholders filled; `None` if that is not a valid
/// header value (it always is: each part is one; checked anyway). A missing
/// host fills in as nothing.
pub fn render(template: &Template, fill: &Fill<'_>) -> Option<HeaderValue> {
    if let [Piece::Lit(s)] = template.0.as_slice() {
        return HeaderValue::from_str(s).ok();
    }
    let len: usize = template
        .0
        .iter()
        .map(|p| match p {
            Piece::Lit(s) => s.len(),
            Piece::ClientIp => 45,
            Piece::RequestId => fill.request_id.len(),
            Piece::Host => fill.host.map_or(0, HeaderValue::len),
        })
        .sum();
    if len <= super::value_arena::MAX_VALUE {
        // Short values (the usual case) are cut from the per-thread chunk: no allocation.
        let v = super::value_arena::header_value(|b| write_template(b, template, fill));
        return (!v.is_empty() || len == 0).then_some(v);
    }
    let mut out = BytesMut::with_capacity(len);
    write_template(&mut out, template, fill);
    HeaderValue::from_maybe_shared(out.freeze()).ok()
}

fn write_template(out: &mut BytesMut, template: &Template, fill: &Fill<'_>) {
    for p in &template.0 {
        match p {
            Piece::Lit(s) => out.extend_from_slice(s.as_bytes()),
            Piece::ClientIp => crate::access_log::write_ip(&mut *out, fill.client_ip),
            Piece::RequestId => out.extend_from_slice(fill.request_id.as_bytes()),
            Piece::Host => {
                if let Some(h) = fill.host {
                    out.extend_from_slice(h.as_bytes())
                }
            }
        }
    }
}

/// Applies `rules` to `headers`: remove, then set (replacing), then add (appending).
pub fn apply(rules: &HeaderRules, headers: &mut HeaderMap, fill: &Fill<'_>) {
    for name in &rules.remove {
        headers.remove(name);
    }
    for (name, t) in &rules.set {
        if let Some(v) = render(t, fill) {
            headers.insert(name, v);
        }
    }
    for (name, t) in &rules.add {
        if let Some(v) = render(t, fill) {
            headers.append(name, v);
        }
    }
}

/// `host` when it is a plain host name, IPv4 or bracketed IPv6 address
/// (port removed); anything else (`evil.com/x`, `a@b`, spaces) is `None`.
pub fn clean_host(host: &str) -> Option<&str> {
    let h = super::router::strip_port(host);
    let name = !h.is_empty()
        && h.len() <= 253
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    let v6 = h
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
    (name || v6).then_some(h)
}

/// The path for a redirect: leading `/` and `\` collapsed to one `/`, so a
/// path like `//evil.example` cannot make the target another host; bytes
/// that are not visible ASCII are percent-encoded ([`push_encoded`]).
fn clean_path(path: &str) -> String {
    let mut out = String::from("/");
    push_encoded(&mut out, path.trim_start_matches(['/', '\\']));
    out
}

/// Appends `s` with every byte outside visible ASCII (controls, space, and
/// the UTF-8 bytes hyper lets through in a request target) as `%XX`: a
/// `Location` must be a URI reference (RFC 9110 §10.2.2).
fn push_encoded(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_graphic() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// The `Location` for a redirect to `to`, for a request for `uri` with
/// `host` (Host header or authority) that came in over `scheme`. Errors say
/// what in the request made it impossible (a 400 for the client).
pub fn redirect_location(
    to: &RedirectTarget,
    scheme: &str,
    host: Option<&str>,
    uri: &Uri,
) -> Result<HeaderValue, String> {
    let mut out = String::new();
    for p in &to.0 {
        match p {
            RedirectPiece::Lit(s) => out.push_str(s),
            RedirectPiece::Scheme => out.push_str(scheme),
            RedirectPiece::Host => {
                let h = host.ok_or("the redirect needs the request's Host, and it has none")?;
                let h = clean_host(h).ok_or_else(|| {
                    format!(
                        "Host {:?} is not a host name or address",
                        h.escape_default().to_string()
                    )
                })?;
                out.push_str(h);
            }
            RedirectPiece::Path => out.push_str(&clean_path(uri.path())),
            RedirectPiece::Query => push_query(&mut out, uri),
            RedirectPiece::Uri => {
                out.push_str(&clean_path(uri.path()));
                push_query(&mut out, uri);
            }
        }
    }
    HeaderValue::from_str(&out).map_err(|_| "the redirect target is not a valid URL".to_string())
}

fn push_query(out: &mut String, uri: &Uri) {
    if let Some(q) = uri.query() {
        out.push('?');
        push_encoded(out, q);
    }
}

/// `server.https_redirect`: `https://HOST[:port]PATH?QUERY` (the port left out when it is 443).
pub fn https_location(host: Option<&str>, port: u16, uri: &Uri) -> Result<HeaderValue, String> {
    let h = host.ok_or("the redirect to https needs the request's Host, and it has none")?;
    let h = clean_host(h).ok_or_else(|| format!("Host {:?} is not a host name or address", h))?;
    let mut out = format!("https://{h}");
    if port != 443 {
        out.push(':');
        out.push_str(&port.to_string());
    }
    out.push_str(&clean_path(uri.path()));
    push_query(&mut out, uri);
    HeaderValue::from_str(&out).map_err(|_| "the redirect target is not a valid URL".to_string())
}

/// A redirect drover answers itself (empty body; `done` runs when it is sent).
pub fn redirect_response(
    status: u16,
    location: HeaderValue,
    done: Option<Completion>,
) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(bytes::Bytes::new(), done));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::PERMANENT_REDIRECT);
    resp.headers_mut().insert(LOCATION, location);
    resp
}

/// Adds `Retry-After` and the `RateLimit-*` headers of a 429.
pub fn add_limit_headers(headers: &mut HeaderMap, l: &Limited) {
    headers.insert(RETRY_AFTER, HeaderValue::from(l.retry_after));
    headers.insert(&RATELIMIT_LIMIT, HeaderValue::from(l.limit));
    headers.insert(&RATELIMIT_REMAINING, HeaderValue::from_static("0"));
    headers.insert(&RATELIMIT_RESET, HeaderValue::from(l.reset));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn redirect_paths_with_non_ascii_bytes_are_percent_encoded() {
        let to = RedirectTarget::parse("https://{host}{uri}").unwrap();
        let uri: Uri = "/Xeil.com\u{296}9-//9?q=\u{e9}".parse().unwrap();
        let loc = redirect_location(&to, "http", Some("h.example"), &uri).unwrap();
        assert_eq!(
            loc.to_str().unwrap(),
            "https://h.example/Xeil.com%CA%969-//9?q=%C3%A9"
        );
    }

    #[test]
    fn redirects_fill_host_path_and_query() {
        let to = RedirectTarget::parse("https://{host}{uri}").unwrap();
        let loc = redirect_location(&to, "http", Some("Example.com:8080"), &uri("/a/b?x=1"));
        assert_eq!(loc.unwrap(), "https://Example.com/a/b?x=1");
        let to = RedirectTarget::parse("{scheme}://new.example{path}{query}").unwrap();
        let loc = redirect_location(&to, "http", None, &uri("//evil.example/x"));
        assert_eq!(loc.unwrap(), "http://new.example/evil.example/x");
        let to = RedirectTarget::parse("https://{host}/").unwrap();
        for bad in ["evil.com/x", "a b", "a@b", "", "[::1", "x\\y"] {
            assert!(
                redirect_location(&to, "http", Some(bad), &uri("/")).is_err(),
                "{bad:?}"
            );
        }
        assert!(redirect_location(&to, "http", None, &uri("/")).is_err());
        assert_eq!(
            redirect_location(&to, "http", Some("[::1]:80"), &uri("/")).unwrap(),
            "https://[::1]/"
        );
    }

    #[test]
    fn https_redirect_keeps_a_non_default_port() {
        let u = uri("/p?q");
        assert_eq!(
            https_location(Some("a.example:80"), 443, &u).unwrap(),
            "https://a.example/p?q"
        );
        assert_eq!(
            https_location(Some("a.example"), 8443, &u).unwrap(),
            "https://a.example:8443/p?q"
        );
        assert!(https_location(Some("a/b"), 443, &u).is_err());
    }

    #[test]
    fn header_rules_remove_set_then_add_with_placeholders() {
        let rules = HeaderRules {
            remove: vec![HeaderName::from_static("x-secret")],
            set: vec![(
                HeaderName::from_static("x-client"),
                Template::parse("${client_ip} via ${host} (${request_id})").unwrap(),
            )],
            add: vec![(
                HeaderName::from_static("x-tag"),
                Template::parse("b").unwrap(),
            )],
        };
        let mut h = HeaderMap::new();
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("x-client", "spoofed".parse().unwrap());
        h.insert("x-tag", "a".parse().unwrap());
        let id = HeaderValue::from_static("rid");
        let host = HeaderValue::from_static("h.example");
        let fill = Fill {
            client_ip: "10.1.2.3".parse().unwrap(),
            request_id: &id,
            host: Some(&host),
        };
        apply(&rules, &mut h, &fill);
        assert!(h.get("x-secret").is_none());
        assert_eq!(h["x-client"], "10.1.2.3 via h.example (rid)");
        let tags: Vec<_> = h.get_all("x-tag").iter().collect();
        assert_eq!(tags, ["a", "b"]);
    }

    #[test]
    fn methods_and_headers_match_exactly() {
        let rules = RouteRules {
            methods: vec!["POST".into()],
            headers: vec![("x-env".into(), "canary".into())],
            ..RouteRules::default()
        };
        let mut h = HeaderMap::new();
        h.append("x-env", "prod".parse().unwrap());
        assert!(!extra_match(&rules, &Method::POST, &h));
        h.append("x-env", "canary".parse().unwrap());
        assert!(extra_match(&rules, &Method::POST, &h));
        assert!(!extra_match(&rules, &Method::GET, &h));
        assert!(extra_match(
            &RouteRules::default(),
            &Method::GET,
            &HeaderMap::new()
        ));
    }
}
