//! Request-head handling: routing, prefix stripping, header rewrite, request id, access log.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri, Version};
use std::net::IpAddr;

use super::Head;
use crate::access_log::AccessRecord;
use crate::config::{HostMatch, Route};
use crate::proxy::headers::{self, ForwardInfo, X_REQUEST_ID};
use crate::proxy::request_id;
use crate::proxy::router::upstream_uri;
use crate::proxy::router::{strip_port, Router};
use crate::proxy::trace_context::{self, Hop, TRACEPARENT, TRACESTATE};

/// Every shape of route: exact host, wildcard host with a `/`-ended prefix,
/// an IPv6 literal, prefixes with and without `strip_prefix`, a catch-all.
const ROUTES: &str = r#"
[[routes]]
host = "api.example.com"
pool = "api"

[[routes]]
host = "*.example.com"
path_prefix = "/static/"
strip_prefix = true
pool = "api"

[[routes]]
host = "[::1]:8080"
path_prefix = "/v6"
pool = "api"

[[routes]]
path_prefix = "/api"
strip_prefix = true
pool = "api"

[[routes]]
path_prefix = "/a//"
strip_prefix = true
pool = "api"

[[routes]]
path_prefix = "/"
strip_prefix = true
pool = "web"

[pools.api]
backends = ["127.0.0.1:9"]

[pools.web]
backends = ["[::1]:9"]
"#;

static ROUTER: LazyLock<Router> = LazyLock::new(|| {
    let config = crate::config::load_str(ROUTES, None).expect("the fuzz routes are valid");
    Router::build(&config, None)
});

/// Fields that drover itself sets after removing hop-by-hop ones: a client may
/// name them in `Connection`, and they are back with drover's value.
const SET_BY_DROVER: &[&str] = &[
    "host",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "via",
    "x-request-id",
    "traceparent",
];

/// Runs `head` through what drover does before forwarding it and checks the result.
pub fn request_head(head: &Head) {
    // The request id: the client's when it looks like an id, else a new one.
    let id = request_id::choose(&head.headers);
    assert!(request_id::valid(id.as_bytes()), "request id {id:?}");
    match head.headers.get(&X_REQUEST_ID) {
        Some(v) if request_id::valid(v.as_bytes()) => assert_eq!(&id, v, "a valid id is kept"),
        _ => assert_eq!(id.len(), request_id::GENERATED_LEN),
    }

    let host = head
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| head.uri.authority().map(|a| a.as_str()));
    if let Some(h) = host {
        assert!(h.starts_with(strip_port(h)), "strip_port({h:?})");
    }
    check_route(&ROUTER, host, head);
    for v in head.headers.get_all(&TRACEPARENT) {
        traceparent(v.as_bytes());
    }
    let trace = trace_context::hop(&head.headers);
    check_rewrite(head, &id, &trace);
    check_access_log(head, &id, &trace);
}

/// The `traceparent` parser on any bytes: what it accepts is version-00
/// shaped (lowercase hex, non-zero ids) and survives a round trip; the value
/// drover sends for it keeps its trace id.
pub fn traceparent(data: &[u8]) {
    let Some(tp) = trace_context::parse(data) else {
        return;
    };
    assert_ne!(tp.trace_id, [0; 16]);
    assert_ne!(tp.parent_id, [0; 8]);
    let sent = tp.to_header();
    assert_eq!(sent.len(), 55);
    let again = trace_context::parse(sent.as_bytes()).expect("drover's traceparent parses");
    assert_eq!(again, tp, "round trip");
    let trimmed = data.trim_ascii();
    assert_eq!(
        trimmed.get(3..35),
        sent.as_bytes().get(3..35),
        "the trace id is the one written"
    );
    let next = trace_context::next_hop(Some(tp));
    assert_eq!(next.trace_id, tp.trace_id);
    assert_eq!(
        next.flags,
        tp.flags & 0x01,
        "only the sampled flag is passed on"
    );
    let next_sent = trace_context::parse(next.to_header().as_bytes());
    assert_eq!(next_sent, Some(next), "what is sent is what is logged");
}

/// Routes `path` on a router with one route, `path_prefix = prefix` and
/// `strip_prefix = true` (`prefix` must start with `/`, as validation requires).
pub fn route_with_prefix(prefix: &str, path_and_query: &str) {
    assert!(prefix.starts_with('/'));
    let Ok(uri) = Uri::try_from(path_and_query) else {
        return;
    };
    let mut config =
        crate::config::load_str("[pools.p]\nbackends = [\"127.0.0.1:9\"]\n", None).expect("valid");
    config.routes = vec![Route {
        path_prefix: Some(prefix.to_string()),
        strip_prefix: true,
        ..Route::to_pool("p")
    }];
    let router = Router::build(&config, None);
    let head = Head {
        method: Method::GET,
        uri,
        version: Version::HTTP_11,
        headers: HeaderMap::new(),
        client: IpAddr::from([127, 0, 0, 1]),
    };
    check_route(&router, None, &head);
}

fn check_route(router: &Router, host: Option<&str>, head: &Head) {
    let uri = &head.uri;
    let path = uri.path();
    let Some(m) = router.find(host, path, &head.method, &head.headers) else {
        return;
    };
    if let Some(p) = &m.route.path_prefix {
        assert!(path.starts_with(p.as_str()), "{path:?} matched {p:?}");
    }
    match (&m.route.host, host.map(strip_port)) {
        (None, _) => {}
        (Some(HostMatch::Exact(e)), Some(h)) => assert!(e.eq_ignore_ascii_case(h)),
        (Some(HostMatch::Wildcard(w)), Some(h)) => {
            assert!(h.len() > w.len() && h.to_ascii_lowercase().ends_with(w.as_str()))
        }
        (Some(_), None) => panic!("a host route matched a request without a host"),
    }
    let strip = m
        .route
        .path_prefix
        .as_deref()
        .filter(|_| m.route.strip_prefix);
    let up = upstream_uri(uri, strip);
    assert_eq!(up.query(), uri.query(), "the query is kept");
    assert!(up.authority().is_none(), "origin form upstream");
    match strip {
        None => assert_eq!(
            up.path_and_query().map(|p| p.as_str()),
            Some(uri.path_and_query().map_or("/", |p| p.as_str()))
        ),
        Some(p) => {
            let rest = path
                .get(p.trim_end_matches('/').len()..)
                .expect("a matched prefix is a prefix");
            let want = if rest.is_empty() { "/" } else { rest };
            assert_eq!(up.path(), want, "{path:?} without {p:?}");
        }
    }
}

/// The connection-option names the client listed in `Connection`.
fn connection_names(h: &HeaderMap) -> Vec<HeaderName> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect()
}

/// What is left after hop-by-hop removal: none of RFC 9110 §7.6.1's fields and
/// none that `Connection` named, except `TE: trailers` and an upgrade's pair.
fn check_no_hop_by_hop(before: &HeaderMap, after: &HeaderMap, upgrade: bool) {
    for name in ["keep-alive", "proxy-connection", "transfer-encoding"] {
        assert!(!after.contains_key(name), "{name} left");
    }
    let te: Vec<_> = after.get_all(header::TE).iter().collect();
    assert!(te.is_empty() || te == [&HeaderValue::from_static("trailers")]);
    let conn: Vec<_> = after.get_all(header::CONNECTION).iter().collect();
    if upgrade {
        assert_eq!(conn, [&HeaderValue::from_static("upgrade")]);
        let up_before: Vec<_> = before.get_all(header::UPGRADE).iter().collect();
        let up_after: Vec<_> = after.get_all(header::UPGRADE).iter().collect();
        assert_eq!(up_before, up_after, "an upgrade keeps Upgrade");
    } else {
        assert!(conn.is_empty(), "Connection left");
        assert!(!after.contains_key(header::UPGRADE), "Upgrade left");
    }
    for name in connection_names(before) {
        let kept = name == header::TE
            || name == header::CONNECTION
            || (upgrade && name == header::UPGRADE)
            || SET_BY_DROVER.contains(&name.as_str());
        assert!(
            kept || !after.contains_key(&name),
            "{name} named by Connection left"
        );
    }
}

fn check_rewrite(head: &Head, id: &HeaderValue, trace: &Hop) {
    let mut h = head.headers.clone();
    let upgrade = head.version <= Version::HTTP_11 && headers::is_upgrade(&h);
    let host = h.get(header::HOST).cloned().or_else(|| {
        head.uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    headers::strip_hop_by_hop(&mut h, upgrade);
    h.remove(header::EXPECT);
    headers::add_forwarded(
        &mut h,
        &ForwardInfo {
            client_ip: head.client,
            proto: "http",
            host: host.as_ref(),
            version: head.version,
            request_id: id,
        },
    );
    let state_after_strip: Vec<HeaderValue> = h.get_all(&TRACESTATE).iter().cloned().collect();
    trace_context::write(&mut h, trace);
    if let Some(v) = &host {
        h.insert(header::HOST, v.clone());
    }
    let sent: Vec<_> = h.get_all(&TRACEPARENT).iter().collect();
    assert_eq!(sent.len(), 1, "one traceparent upstream");
    let parsed = sent
        .first()
        .and_then(|v| trace_context::parse(v.as_bytes()))
        .expect("the traceparent sent upstream is valid");
    assert_eq!(parsed, trace.sent);
    match trace_context::incoming(&head.headers) {
        Some(inc) => {
            assert!(trace.continued);
            assert_eq!(parsed.trace_id, inc.trace_id, "a valid trace id is kept");
            let state: Vec<HeaderValue> = h.get_all(&TRACESTATE).iter().cloned().collect();
            assert_eq!(state, state_after_strip, "tracestate passes through");
        }
        None => {
            assert!(!trace.continued);
            assert!(
                !h.contains_key(&TRACESTATE),
                "no tracestate without a valid parent"
            );
        }
    }
    check_no_hop_by_hop(&head.headers, &h, upgrade);
    assert!(!h.contains_key(header::EXPECT));
    assert_eq!(h.get(&X_REQUEST_ID), Some(id));
    assert_eq!(h.get(header::HOST), host.as_ref());
    assert_eq!(h.get_all("x-forwarded-proto").iter().count(), 1);
    let xff: Vec<_> = h.get_all("x-forwarded-for").iter().collect();
    assert_eq!(xff.len(), 1, "X-Forwarded-For folded into one field");
    let last = xff
        .first()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(", ").next());
    assert_eq!(last, Some(head.client.to_string().as_str()));
    let via: Vec<_> = h.get_all(header::VIA).iter().collect();
    assert_eq!(via.len(), 1);
    assert!(via
        .first()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.ends_with(" drover")));

    // The same headers as a backend's response.
    let mut resp = head.headers.clone();
    headers::clean_response(&mut resp, upgrade);
    check_no_hop_by_hop(&head.headers, &resp, upgrade);
}

fn check_access_log(head: &Head, id: &HeaderValue, trace: &Hop) {
    let rec = AccessRecord {
        ts: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        request_id: id.clone(),
        client: head.client,
        method: head.method.clone(),
        uri: head.uri.clone(),
        status: 200,
        bytes: 1,
        duration: Duration::from_micros(1500),
        pool: "p\"ool".into(),
        backend: None,
        retries: 0,
        error: Some("client"),
        grpc_status: None,
        version: head.version,
        trace_id: Some(trace.sent.trace_id),
        referer: head.headers.get(header::REFERER).cloned(),
        user_agent: head.headers.get(header::USER_AGENT).cloned(),
    };
    let line = rec.to_json();
    let v: serde_json::Value = serde_json::from_str(&line).expect("the access log line is JSON");
    assert_eq!(v["request_id"], id.to_str().unwrap_or(""));
    assert_eq!(v["method"], head.method.as_str());
    assert_eq!(v["trace_id"], trace.sent.trace_id_hex());
    let text = rec.to_text();
    assert!(!text.contains('\n'), "one line per request");
    let combined = rec.to_combined();
    assert!(
        combined.bytes().all(|c| (0x20..0x7f).contains(&c)),
        "the combined line is printable ASCII: {combined:?}"
    );
    // Every quote in it is escaped except the six that delimit its three quoted fields.
    let unescaped = combined
        .split("\\\\")
        .map(|part| part.matches('"').count() - part.matches("\\\"").count())
        .sum::<usize>();
    assert_eq!(unescaped, 6, "{combined}");
}
