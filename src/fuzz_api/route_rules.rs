//! Route rules at request time with hostile input: the redirect targets and
//! header templates expanded with any Host, path and query.

use std::net::IpAddr;

use http::header::HeaderValue;
use http::Uri;

use crate::config::{RedirectTarget, Template};
use crate::proxy::route_rules::{clean_host, https_location, redirect_location, render, Fill};

/// Redirect targets of every shape: host from the request or fixed, path
/// first (a relative redirect), scheme and query placeholders.
const TARGETS: [&str; 5] = [
    "https://{host}{uri}",
    "{scheme}://{host}:8443{path}{query}",
    "{path}",
    "https://fixed.example{uri}",
    "/moved{query}",
];

/// Splits `data` at the first two newlines into Host, request target and a
/// header-rule template, and checks [`expansions`] on them.
pub fn route_rules(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let host = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let template = parts.next().unwrap_or_default();
    let (Ok(host), Ok(target), Ok(template)) = (
        std::str::from_utf8(host),
        std::str::from_utf8(target),
        std::str::from_utf8(template),
    ) else {
        return;
    };
    expansions(host, target, template);
}

/// Expands every target of [`TARGETS`] and `template` for a request with
/// `host` (as the Host header) and `target` (its request target; ignored when
/// hyper would refuse it). A redirect either fails (the client gets 400) or
/// yields a `Location` that parses as a URI whose authority, when it came
/// from the Host, is exactly the cleaned host, and a path that does not start
/// with `//` (no open redirect through the path); a template always renders.
pub fn expansions(host: &str, target: &str, template: &str) {
    let Ok(uri) = Uri::try_from(target) else {
        return;
    };
    let host_value = HeaderValue::from_str(host).ok();
    // hyper hands drover only Host values that are valid header values.
    let host = host_value.as_ref().and_then(|h| h.to_str().ok());
    for t in TARGETS {
        let to = RedirectTarget::parse(t).expect("the fixed targets parse");
        match redirect_location(&to, "http", host, &uri) {
            Ok(loc) => {
                let s = loc.to_str().expect("a Location is visible ASCII");
                let parsed: Uri = s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"));
                if t.contains("{host}") {
                    let clean = host.and_then(clean_host).expect("a used Host is clean");
                    let got = parsed.host().map(|h| h.trim_matches(['[', ']']));
                    assert_eq!(got, Some(clean.trim_matches(['[', ']'])), "{s:?}");
                }
                if t.starts_with("{path}") {
                    assert!(!s.starts_with("//") && s.starts_with('/'), "{s:?}");
                }
            }
            Err(why) => {
                assert!(
                    t.contains("{host}"),
                    "only the Host can fail a redirect: {why}"
                );
                assert!(host.and_then(clean_host).is_none(), "{host:?}: {why}");
            }
        }
    }
    if let Ok(loc) = https_location(host, 8443, &uri) {
        let s = loc.to_str().expect("visible ASCII");
        let parsed: Uri = s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(parsed.scheme_str(), Some("https"));
        assert_eq!(parsed.port_u16(), Some(8443));
    }
    if let Ok(t) = Template::parse(template) {
        let id = HeaderValue::from_static("0123456789abcdef");
        let fill = Fill {
            client_ip: IpAddr::from([10, 0, 0, 1]),
            request_id: &id,
            host: host_value.as_ref(),
        };
        let v = render(&t, &fill).expect("a parsed template always renders");
        assert!(!v.as_bytes().iter().any(|b| matches!(b, b'\r' | b'\n' | 0)));
    }
}
