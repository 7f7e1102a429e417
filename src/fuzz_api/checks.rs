//! The config reader, the duration parser and the admin API's path and query parsing.

use std::time::Duration;

use http::StatusCode;

use super::Head;
use crate::admin::routes::{self, Match, ROUTES};
use crate::config::{parse_duration, parse_size, HostMatch};
use crate::proxy::router::Router;

/// Reads `src` as a config file (environment: only `FUZZ_SET=x` is set; host
/// names are not resolved). Errors must carry a position inside `src`; a
/// valid config builds a router on which every route's own host and prefix route.
pub fn config(src: &str) {
    let lookup = |name: &str| (name == "FUZZ_SET").then(|| "x".to_string());
    let result =
        crate::config::without_resolver(|| crate::config::load_with_env(src, None, &lookup));
    match result {
        Err(errs) => {
            assert!(!errs.errors.is_empty(), "an error list is never empty");
            let lines = src.split('\n').count();
            for e in &errs.errors {
                let (Some(line), Some(col)) = (e.line, e.column) else {
                    panic!("error without a position: {e}");
                };
                assert!(
                    line >= 1 && line <= lines && col >= 1,
                    "{line}:{col} outside the file"
                );
                assert!(!e.message.is_empty());
            }
            let _ = errs.to_string();
        }
        Ok(cfg) => {
            let _ = crate::config::summary_lines(&cfg);
            let router = Router::build(&cfg, None);
            for r in &cfg.routes {
                let host = match &r.host {
                    None => None,
                    Some(HostMatch::Exact(h)) => Some(h.clone()),
                    Some(HostMatch::Wildcard(w)) => Some(format!("x{w}")),
                };
                let path = r.path_prefix.as_deref().unwrap_or("/");
                let method = r
                    .rules
                    .methods
                    .first()
                    .and_then(|m| http::Method::from_bytes(m.as_bytes()).ok())
                    .unwrap_or(http::Method::GET);
                let mut headers = http::HeaderMap::new();
                for (k, v) in &r.rules.headers {
                    if let (Ok(k), Ok(v)) = (
                        http::HeaderName::from_bytes(k.as_bytes()),
                        http::HeaderValue::from_str(v),
                    ) {
                        headers.append(k, v);
                    }
                }
                assert!(
                    router
                        .find(host.as_deref(), path, &method, &headers)
                        .is_some(),
                    "route {r:?} does not route its own host and prefix"
                );
            }
        }
    }
}

/// Parses `s` as a duration and as a size. A duration that parses re-parses
/// the same with a `0ms` term added and from its own seconds; a size re-parses
/// from its byte count; errors say what was expected.
pub fn duration(s: &str) {
    match parse_duration(s) {
        Ok(d) => {
            assert!(
                d <= Duration::from_secs(1_000_000_000_000),
                "{d:?} over the cap"
            );
            let t = s.trim();
            if t != "0" {
                assert_eq!(parse_duration(&format!("{t}0ms")), Ok(d), "{t:?} + 0ms");
            }
            let again = parse_duration(&format!("{}s", d.as_secs_f64()))
                .unwrap_or_else(|e| panic!("{d:?} printed as seconds does not re-parse: {e}"));
            let diff = again.abs_diff(d);
            assert!(
                diff <= Duration::from_nanos(1).max(d / 1_000_000_000),
                "{d:?} re-parsed as {again:?}"
            );
        }
        Err(e) => assert!(e.starts_with("expected a duration like \"2s\""), "{e}"),
    }
    match parse_size(s) {
        Ok(n) => assert_eq!(parse_size(&n.to_string()), Ok(n), "{s:?} as bytes"),
        Err(e) => assert!(e.starts_with("expected a size like"), "{e}"),
    }
}

/// What `%HH` decoding must give: only two hex digits after `%`; valid UTF-8 after.
pub fn percent_decode_strict(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hi = b.get(i + 1).and_then(|&h| (h as char).to_digit(16))?;
            let lo = b.get(i + 2).and_then(|&l| (l as char).to_digit(16))?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Matches `head` against the admin route table and reads its query the way the
/// handlers do.
pub fn admin_request(head: &Head) {
    let path = head.uri.path();
    let query = head.uri.query();
    let method = head.method.as_str();
    match routes::find(method, path) {
        Match::Found(id, params) => {
            let want = if method == "HEAD" { "GET" } else { method };
            let route = ROUTES
                .iter()
                .find(|r| r.id == id)
                .expect("a found route is in the table");
            assert_eq!(route.method, want);
            assert_eq!(params.len(), route.path.matches('{').count());
            let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            let pat: Vec<&str> = route.path.split('/').filter(|s| !s.is_empty()).collect();
            let mut decoded = params.iter();
            for (p, s) in pat.iter().zip(&segs) {
                if p.starts_with('{') {
                    assert_eq!(decoded.next(), percent_decode_strict(s).as_ref(), "{s:?}");
                }
            }
        }
        Match::MethodNotAllowed(allowed) => {
            let want = if method == "HEAD" { "GET" } else { method };
            assert!(!allowed.is_empty() && !allowed.contains(&want));
        }
        Match::NotFound => {}
    }
    for seg in path.split('/') {
        assert_eq!(
            routes::percent_decode(seg),
            percent_decode_strict(seg),
            "{seg:?}"
        );
    }
    for key in ["token", "since", "limit"] {
        if let Some(v) = routes::query_param(query, key) {
            assert!(v.len() <= query.map_or(0, str::len));
        }
    }
    let status = match crate::admin::handlers::events(query) {
        Ok(r) => r.status(),
        Err(r) => r.status(),
    };
    assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST);
}
