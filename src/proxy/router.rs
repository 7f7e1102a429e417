//! Route matching: first `[[routes]]` entry whose host, path prefix, methods
//! and headers match.

use std::collections::HashMap;
use std::sync::Arc;

use std::time::Duration;

use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Uri};

use super::rate_limiter::RouteLimiter;
use crate::config::{Config, HeaderRules, HostMatch, Route};
use crate::pool::Pool;

/// The routes and pools in force; swapped whole on reload.
pub struct Router {
    pub routes: Vec<Route>,
    /// What each route (same index) holds at run time.
    pub states: Vec<RouteState>,
    pub pools: HashMap<String, Arc<Pool>>,
    /// `server.body_read_timeout` (applied to requests arriving after a reload).
    pub body_read_timeout: std::time::Duration,
}

/// A route's run-time parts.
pub struct RouteState {
    /// `name`, or the route's index.
    pub label: String,
    pub limiter: Option<Arc<RouteLimiter>>,
    /// Shared with the requests in flight (applied when their response comes).
    pub response_headers: Option<Arc<HeaderRules>>,
}

/// A matched route.
pub struct Matched<'a> {
    pub route: &'a Route,
    pub state: &'a RouteState,
    /// `None` for a redirect route.
    pub pool: Option<&'a Arc<Pool>>,
}

impl Router {
    /// Builds a router for `config`, reusing the pools in `old` that the new
    /// config still names (they are reconfigured in place, keeping member state).
    pub fn build(config: &Config, old: Option<&Router>) -> Router {
        let pools = config
            .pools
            .iter()
            .map(|(name, pc)| {
                let pc = Arc::new(pc.clone());
                let pool = match old.and_then(|o| o.pools.get(name)) {
                    Some(p) => {
                        let _ = p.apply(crate::pool::PoolCommand::Configure(pc));
                        p.clone()
                    }
                    None => Arc::new(Pool::new(pc)),
                };
                (name.clone(), pool)
            })
            .collect();
        let states = config
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let label = r.label(i);
                // A limiter whose route and settings did not change keeps its state.
                let kept = old
                    .and_then(|o| o.states.iter().find(|s| s.label == label))
                    .and_then(|s| s.limiter.clone())
                    .filter(|l| r.rules.rate_limit.as_ref() == Some(&l.config));
                let limiter = r
                    .rules
                    .rate_limit
                    .as_ref()
                    .map(|rl| kept.unwrap_or_else(|| Arc::new(RouteLimiter::new(rl, &label))));
                RouteState {
                    label,
                    limiter,
                    response_headers: r.rules.response_headers.clone().map(Arc::new),
                }
            })
            .collect();
        Router {
            routes: config.routes.clone(),
            states,
            pools,
            body_read_timeout: config.server.body_read_timeout,
        }
    }

    /// The first route matching `host` (without port, any case), `path`,
    /// `method` and `headers`.
    pub fn find(
        &self,
        host: Option<&str>,
        path: &str,
        method: &Method,
        headers: &HeaderMap,
    ) -> Option<Matched<'_>> {
        let host = host.map(strip_port);
        let i = self.routes.iter().position(|r| {
            host_matches(r.host.as_ref(), host)
                && path_matches(r.path_prefix.as_deref(), path)
                && super::route_rules::extra_match(&r.rules, method, headers)
        })?;
        let route = self.routes.get(i)?;
        let state = self.states.get(i)?;
        let pool = match &route.pool {
            Some(p) => Some(self.pools.get(p)?),
            None => None,
        };
        Some(Matched { route, state, pool })
    }
}

/// What a matched route changes in forwarding.
pub struct RouteOpts<'a> {
    /// `path_prefix` and its replacement (`None` = `strip_prefix`).
    pub rewrite: Option<(&'a str, Option<&'a str>)>,
    pub request_headers: Option<&'a HeaderRules>,
    pub response_headers: Option<Arc<HeaderRules>>,
    pub request_timeout: Option<Duration>,
    pub retries: Option<u32>,
}

impl<'a> RouteOpts<'a> {
    pub fn of(m: &Matched<'a>) -> RouteOpts<'a> {
        let r = m.route;
        let rewrite = r.path_prefix.as_deref().and_then(|p| {
            match (r.strip_prefix, r.rules.rewrite_prefix.as_deref()) {
                (_, Some(with)) => Some((p, Some(with))),
                (true, None) => Some((p, None)),
                (false, None) => None,
            }
        });
        RouteOpts {
            rewrite,
            request_headers: r.rules.request_headers.as_ref(),
            response_headers: m.state.response_headers.clone(),
            request_timeout: r.rules.request_timeout,
            retries: r.rules.retries,
        }
    }
}

/// The upstream request target (origin form): path, prefix stripped if asked, and query.
pub(crate) fn upstream_uri(uri: &Uri, strip: Option<&str>) -> Uri {
    upstream_uri_rewritten(uri, strip.map(|p| (p, None)))
}

/// [`upstream_uri`] with the matched prefix replaced: `Some((prefix, Some(with)))`
/// is `rewrite_prefix`, `Some((prefix, None))` is `strip_prefix`.
pub(crate) fn upstream_uri_rewritten(uri: &Uri, rewrite: Option<(&str, Option<&str>)>) -> Uri {
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    match rewrite {
        None => uri
            .path_and_query()
            .cloned()
            .map_or_else(|| Uri::from_static("/"), Uri::from),
        Some((prefix, with)) => {
            let (path, query) = match pq.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (pq, None),
            };
            let path = match with {
                None => strip_prefix(path, prefix),
                Some(w) => std::borrow::Cow::Owned(rewrite_prefix(path, prefix, w)),
            };
            let s = match query {
                Some(q) => format!("{path}?{q}"),
                None => path.into_owned(),
            };
            PathAndQuery::from_maybe_shared(s)
                .map(Uri::from)
                .unwrap_or_else(|_| Uri::from_static("/"))
        }
    }
}

/// `host` without its port: `a.example:8080` -> `a.example`, `[::1]:80` -> `[::1]`.
/// A bracket left open (`[`, `[::1`) is returned as is; it matches no host pattern.
/// Never slices: the Host value comes from the client.
pub(crate) fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // Up to and including the first `]`; all of it when there is none.
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn host_matches(pattern: Option<&HostMatch>, host: Option<&str>) -> bool {
    match (pattern, host) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(HostMatch::Exact(h)), Some(got)) => h.eq_ignore_ascii_case(got),
        (Some(HostMatch::Wildcard(suffix)), Some(got)) => {
            got.len() > suffix.len()
                && got
                    .as_bytes()
                    .get(got.len() - suffix.len()..)
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix.as_bytes()))
        }
    }
}

/// `/api` matches `/api`, `/api/x` and `/api?q`, not `/apix`; a prefix ending in `/` matches anything below it.
fn path_matches(prefix: Option<&str>, path: &str) -> bool {
    match prefix {
        None => true,
        Some(p) => path
            .strip_prefix(p)
            .is_some_and(|rest| p.ends_with('/') || rest.is_empty() || rest.starts_with('/')),
    }
}

/// The path sent upstream when `strip_prefix` is on: `/api/x` -> `/x`, `/api` -> `/`.
pub fn strip_prefix<'a>(path: &'a str, prefix: &str) -> std::borrow::Cow<'a, str> {
    let rest = path
        .strip_prefix(prefix.trim_end_matches('/'))
        .unwrap_or(path);
    if rest.starts_with('/') {
        std::borrow::Cow::Borrowed(rest)
    } else {
        std::borrow::Cow::Owned(format!("/{rest}"))
    }
}

/// The path sent upstream with `rewrite_prefix = with`: the matched `prefix`
/// replaced, `/api/x` -> `/v2/x`, `/api` -> `/v2` (`with` as written, when
/// nothing follows the prefix). A path the prefix does not start is kept.
pub fn rewrite_prefix(path: &str, prefix: &str, with: &str) -> String {
    let Some(rest) = path.strip_prefix(prefix.trim_end_matches('/')) else {
        return path.to_string();
    };
    if rest.is_empty() {
        return with.to_string();
    }
    let rest = rest.trim_start_matches('/');
    format!("{}/{rest}", with.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_prefix_matches_on_segment_boundaries() {
        assert!(path_matches(Some("/api"), "/api"));
        assert!(path_matches(Some("/api"), "/api/v1"));
        assert!(!path_matches(Some("/api"), "/apix"));
        assert!(path_matches(Some("/api/"), "/api/x"));
        assert!(path_matches(Some("/"), "/anything"));
        assert!(path_matches(None, "/x"));
    }

    #[test]
    fn hosts_match_exact_and_wildcard_without_port() {
        let exact = HostMatch::Exact("api.example.com".into());
        let wild = HostMatch::Wildcard(".example.com".into());
        assert!(host_matches(
            Some(&exact),
            Some(strip_port("API.example.com:8080"))
        ));
        assert!(!host_matches(Some(&exact), Some("www.example.com")));
        assert!(host_matches(Some(&wild), Some("a.example.com")));
        assert!(host_matches(Some(&wild), Some("a.b.example.com")));
        assert!(!host_matches(Some(&wild), Some("example.com")));
        assert!(!host_matches(Some(&wild), None));
        assert_eq!(strip_port("[::1]:80"), "[::1]");
    }

    #[test]
    fn malformed_hosts_do_not_panic_and_match_no_host_pattern() {
        let exact = HostMatch::Exact("[::1]".into());
        for h in ["[", "[::1", "[[", "[:", "[é", "é", "", ":", "]:80", "[]:"] {
            let s = strip_port(h);
            assert!(h.starts_with(s), "{h:?} -> {s:?}");
        }
        assert_eq!(strip_port("["), "[");
        assert_eq!(strip_port("[::1"), "[::1");
        assert_eq!(strip_port("[::1]junk"), "[::1]");
        assert!(!host_matches(Some(&exact), Some(strip_port("[::1"))));
        assert!(host_matches(Some(&exact), Some(strip_port("[::1]:8080"))));
        assert_eq!(strip_prefix("/other", "/api"), "/other");
    }

    proptest::proptest! {
        #[test]
        fn host_and_path_matching_never_panic(host in "\\[?[\\[\\]:0-9a-fé.]{0,10}", path in "\\PC{0,12}", prefix in "/\\PC{0,6}") {
            let stripped = strip_port(&host);
            proptest::prop_assert!(host.starts_with(stripped));
            let wild = HostMatch::Wildcard(format!(".{prefix}"));
            let _ = host_matches(Some(&wild), Some(stripped));
            if path_matches(Some(&prefix), &path) {
                let _ = strip_prefix(&path, &prefix);
                let with = format!("/v{}", host.len());
                let out = rewrite_prefix(&path, &prefix, &with);
                proptest::prop_assert!(out.starts_with(&with), "{out:?}");
            }
        }
    }

    #[test]
    fn rewrite_prefix_replaces_the_matched_prefix() {
        assert_eq!(rewrite_prefix("/api/x", "/api", "/v2"), "/v2/x");
        assert_eq!(rewrite_prefix("/api", "/api", "/v2"), "/v2");
        assert_eq!(rewrite_prefix("/api/", "/api", "/v2/"), "/v2/");
        assert_eq!(rewrite_prefix("/api/x/y", "/api/", "/"), "/x/y");
        assert_eq!(rewrite_prefix("/other", "/api", "/v2"), "/other");
    }

    #[test]
    fn strip_prefix_keeps_a_leading_slash() {
        assert_eq!(strip_prefix("/api/x", "/api"), "/x");
        assert_eq!(strip_prefix("/api", "/api"), "/");
        assert_eq!(strip_prefix("/api/x", "/api/"), "/x");
    }
}
