//! The admin API's route table: the one list the router dispatches on, the
//! OpenAPI test checks and the 405 `Allow` header is built from.

/// What a matched route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    Dashboard,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    Pools,
    Pool,
    AllHistory,
    History,
    AddBackend,
    RemoveBackend,
    DrainBackend,
    Scale,
    Autoscale,
    Events,
    Reload,
    Routes,
}

/// One admin route: method, path pattern (`{name}` matches one segment) and what it does.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub method: &'static str,
    pub path: &'static str,
    pub id: RouteId,
}

const fn r(method: &'static str, path: &'static str, id: RouteId) -> RouteSpec {
    RouteSpec { method, path, id }
}

/// Every route the admin listener serves.
pub const ROUTES: &[RouteSpec] = &[
    r("GET", "/", RouteId::Dashboard),
    r("GET", "/healthz", RouteId::Healthz),
    r("GET", "/readyz", RouteId::Readyz),
    r("GET", "/metrics", RouteId::Metrics),
    r("GET", "/api/v1/openapi.json", RouteId::OpenApi),
    r("GET", "/api/v1/pools", RouteId::Pools),
    r("GET", "/api/v1/pools/{pool}", RouteId::Pool),
    r("GET", "/api/v1/history", RouteId::AllHistory),
    r("GET", "/api/v1/pools/{pool}/history", RouteId::History),
    r("POST", "/api/v1/pools/{pool}/backends", RouteId::AddBackend),
    r(
        "DELETE",
        "/api/v1/pools/{pool}/backends/{address}",
        RouteId::RemoveBackend,
    ),
    r(
        "POST",
        "/api/v1/pools/{pool}/backends/{address}/drain",
        RouteId::DrainBackend,
    ),
    r("PUT", "/api/v1/pools/{pool}/scale", RouteId::Scale),
    r("GET", "/api/v1/pools/{pool}/autoscale", RouteId::Autoscale),
    r("GET", "/api/v1/events", RouteId::Events),
    r("GET", "/api/v1/routes", RouteId::Routes),
    r("POST", "/api/v1/reload", RouteId::Reload),
];

/// The result of matching a request against [`ROUTES`].
#[derive(Debug, PartialEq, Eq)]
pub enum Match {
    /// The route and its path parameters (percent-decoded), in pattern order.
    Found(RouteId, Vec<String>),
    /// The path exists with other methods (for `405` with `Allow`).
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

fn params(pattern: &str, path: &[&str]) -> Option<Vec<String>> {
    let pat = segments(pattern);
    if pat.len() != path.len() {
        return None;
    }
    let mut out = Vec::new();
    for (p, s) in pat.iter().zip(path) {
        if p.starts_with('{') {
            out.push(percent_decode(s)?);
        } else if p != s {
            return None;
        }
    }
    Some(out)
}

/// Matches `method` and `path` (without query; a trailing `/` is ignored; HEAD
/// matches GET routes).
pub fn find(method: &str, path: &str) -> Match {
    let segs = segments(path);
    let method = if method == "HEAD" { "GET" } else { method };
    let mut allowed = Vec::new();
    for route in ROUTES {
        if let Some(ps) = params(route.path, &segs) {
            if route.method == method {
                return Match::Found(route.id, ps);
            }
            allowed.push(route.method);
        }
    }
    if allowed.is_empty() {
        Match::NotFound
    } else {
        Match::MethodNotAllowed(allowed)
    }
}

/// `%5B%3A%3A1%5D%3A80` -> `[::1]:80`; `None` for malformed escapes or non-UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None; // `from_str_radix` alone would take `%+1`
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The value of `key` in a query string (percent-decoded), if present.
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| percent_decode(&v.replace('+', " ")).unwrap_or_default())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_with_params_and_methods() {
        assert_eq!(find("GET", "/"), Match::Found(RouteId::Dashboard, vec![]));
        assert_eq!(
            find("GET", "/api/v1/pools/api/"),
            Match::Found(RouteId::Pool, vec!["api".into()])
        );
        assert_eq!(
            find(
                "POST",
                "/api/v1/pools/api/backends/%5B%3A%3A1%5D%3A80/drain"
            ),
            Match::Found(RouteId::DrainBackend, vec!["api".into(), "[::1]:80".into()])
        );
        assert_eq!(
            find("DELETE", "/api/v1/pools/api/backends/127.0.0.1:8001"),
            Match::Found(
                RouteId::RemoveBackend,
                vec!["api".into(), "127.0.0.1:8001".into()]
            )
        );
        assert_eq!(
            find("GET", "/api/v1/reload"),
            Match::MethodNotAllowed(vec!["POST"])
        );
        assert_eq!(find("GET", "/api/v2/pools"), Match::NotFound);
        assert_eq!(
            find("HEAD", "/healthz"),
            Match::Found(RouteId::Healthz, vec![])
        );
    }

    #[test]
    fn every_route_is_reachable_by_its_own_pattern() {
        for r in ROUTES {
            let path = r
                .path
                .replace("{pool}", "p")
                .replace("{address}", "127.0.0.1:1");
            match find(r.method, &path) {
                Match::Found(id, _) => assert_eq!(id, r.id, "{} {}", r.method, r.path),
                other => panic!("{} {}: {other:?}", r.method, r.path),
            }
        }
    }

    #[test]
    fn query_params_are_decoded() {
        assert_eq!(
            query_param(Some("a=1&token=x%2By"), "token").as_deref(),
            Some("x+y")
        );
        assert_eq!(query_param(Some("since=5"), "token"), None);
        assert_eq!(query_param(None, "since"), None);
        assert_eq!(percent_decode("%+1"), None);
        assert_eq!(percent_decode("%e"), None);
        assert_eq!(percent_decode("%é9"), None);
    }
}
