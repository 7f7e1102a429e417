//! Validation of the route rules (`rate_limit`, header rules, redirects,
//! rewrites, methods, headers, per-route timeouts) and the `[server]` keys
//! `https_redirect` and `max_connections_per_client`.

use super::tests::{assert_error, errors, load};
use super::*;
use std::time::Duration;

const B: &str = "backends = [\"127.0.0.1:8001\"]";

fn with(r: &str) -> String {
    format!("[[routes]]\n{r}\n[pools.api]\n{B}\n")
}

fn routed(r: &str) -> String {
    with(&format!("pool = \"api\"\n{r}"))
}

#[test]
fn a_full_route_loads_with_its_defaults() {
    let c = load(&routed(
        r#"name = "api-v1"
path_prefix = "/api"
methods = ["GET", "PURGE"]
headers = { X-Env = "canary" }
rewrite_prefix = "/v2"
request_timeout = "3s"
retries = 0
rate_limit = { requests = 100, per = "1s" }
request_headers = { set = { X-Client = "${client_ip}" }, add = { X-Tag = "a" }, remove = ["X-Secret"] }
response_headers = { set = { X-Served-For = "${host} ${request_id}" } }"#,
    ));
    let r = &c.routes[0].rules;
    assert_eq!(r.name.as_deref(), Some("api-v1"));
    assert_eq!(c.routes[0].label(0), "api-v1");
    assert_eq!(r.methods, ["GET", "PURGE"]);
    assert_eq!(r.headers, [("x-env".to_string(), "canary".to_string())]);
    assert_eq!(r.rewrite_prefix.as_deref(), Some("/v2"));
    assert_eq!(r.request_timeout, Some(Duration::from_secs(3)));
    assert_eq!(r.retries, Some(0));
    assert_eq!(
        r.rate_limit,
        Some(RateLimitConfig {
            requests: 100,
            per: Duration::from_secs(1),
            burst: 100,
            key: RateKey::ClientIp,
            max_keys: DEFAULT_RATE_LIMIT_MAX_KEYS,
        })
    );
    let req = r.request_headers.as_ref().unwrap();
    assert_eq!(req.set[0].0, "x-client");
    assert_eq!(req.set[0].1, Template(vec![Piece::ClientIp]));
    assert_eq!(req.remove, ["x-secret"]);
    let resp = r.response_headers.as_ref().unwrap();
    assert_eq!(
        resp.set[0].1 .0,
        vec![Piece::Host, Piece::Lit(" ".into()), Piece::RequestId]
    );
    // Without a name the label is the index.
    assert_eq!(load(&routed("")).routes[0].label(0), "0");
}

#[test]
fn rate_limit_checks() {
    let rl = |body: &str| routed(&format!("rate_limit = {{ {body} }}"));
    assert_error(
        &rl("per = \"1s\""),
        "routes[0].rate_limit.requests",
        "required",
    );
    assert_error(
        &rl("requests = 0, per = \"1s\""),
        "routes[0].rate_limit.requests",
        "at least 1",
    );
    assert_error(
        &rl("requests = 1, per = \"0s\""),
        "routes[0].rate_limit.per",
        "greater than 0s",
    );
    assert_error(
        &rl("requests = 1, per = \"1s\", burst = 0"),
        "routes[0].rate_limit.burst",
        "at least 1",
    );
    assert_error(
        &rl("requests = 1, per = \"1s\", key = \"cookie:x\""),
        "routes[0].rate_limit.key",
        "expected client_ip, route or header:NAME",
    );
    assert_error(
        &rl("requests = 1, per = \"1s\", key = \"header:a b\""),
        "routes[0].rate_limit.key",
        "not a valid header name",
    );
    assert_error(
        &rl("requests = 1, per = \"1s\", bogus = 1"),
        "routes[0].rate_limit.bogus",
        "unknown key",
    );
    let c = load(&rl(
        "requests = 5, per = \"1m\", burst = 2, key = \"header:X-User\", max_keys = 10",
    ));
    let l = c.routes[0].rules.rate_limit.clone().unwrap();
    assert_eq!((l.burst, l.max_keys), (2, 10));
    assert_eq!(l.key, RateKey::Header("x-user".into()));
}

#[test]
fn header_rules_refuse_hop_by_hop_and_invalid_names_and_values() {
    assert_error(
        &routed("request_headers = { set = { Connection = \"close\" } }"),
        "routes[0].request_headers.set",
        "\"connection\" is a hop-by-hop or framing header",
    );
    assert_error(
        &routed("response_headers = { remove = [\"Transfer-Encoding\"] }"),
        "routes[0].response_headers.remove",
        "hop-by-hop",
    );
    assert_error(
        &routed("request_headers = { add = { \"bad name\" = \"x\" } }"),
        "routes[0].request_headers.add",
        "not a valid header name",
    );
    assert_error(
        &routed("request_headers = { set = { X-A = \"a\\nb\" } }"),
        "routes[0].request_headers.set",
        "not a valid header value",
    );
    assert_error(
        &routed("request_headers = { replace = {} }"),
        "routes[0].request_headers.replace",
        "unknown key",
    );
}

#[test]
fn errors_have_line_and_column() {
    let src = routed("request_headers = { set = { Upgrade = \"x\" } }");
    let e = errors(&src)
        .into_iter()
        .find(|e| e.key == "routes[0].request_headers.set")
        .unwrap();
    assert_eq!((e.line, e.column), (Some(3), Some(27)), "{e}");
}

#[test]
fn redirect_checks() {
    let c = load(&with("redirect = { to = \"https://{host}{uri}\" }"));
    let r = &c.routes[0];
    assert_eq!(r.pool, None);
    assert_eq!(r.rules.redirect.as_ref().unwrap().status, 308);
    assert_error(
        &with("redirect = { to = \"https://{hots}\" }"),
        "routes[0].redirect.to",
        "unknown placeholder \"{hots}\"",
    );
    assert_error(
        &with("redirect = { to = \"/x\", status = 200 }"),
        "routes[0].redirect.status",
        "not a redirect status",
    );
    assert_error(
        &with("redirect = { status = 301 }"),
        "routes[0].redirect.to",
        "required",
    );
    assert_error(
        &with("pool = \"api\"\nredirect = { to = \"/x\" }"),
        "routes[0].pool",
        "has no effect on a route with redirect",
    );
    assert_error(
        &with("redirect = { to = \"/x\" }\nretries = 1"),
        "routes[0].retries",
        "has no effect",
    );
}

#[test]
fn rewrite_methods_headers_and_overrides() {
    assert_error(
        &routed("rewrite_prefix = \"/v2\""),
        "routes[0].rewrite_prefix",
        "needs a path_prefix",
    );
    assert_error(
        &routed("path_prefix = \"/a\"\nstrip_prefix = true\nrewrite_prefix = \"/v2\""),
        "routes[0].rewrite_prefix",
        "exclude each other",
    );
    assert_error(
        &routed("path_prefix = \"/a\"\nrewrite_prefix = \"v2\""),
        "routes[0].rewrite_prefix",
        "starting with \"/\"",
    );
    assert_error(
        &routed("methods = [\"get\"]"),
        "routes[0].methods",
        "write \"GET\"",
    );
    assert_error(
        &routed("methods = []"),
        "routes[0].methods",
        "must not be empty",
    );
    assert_error(
        &routed("methods = [\"GE T\"]"),
        "routes[0].methods",
        "not an HTTP method",
    );
    assert_error(
        &routed("headers = { X-A = 1 }"),
        "routes[0].headers",
        "expected string values",
    );
    assert_error(
        &routed("request_timeout = \"0s\""),
        "routes[0].request_timeout",
        "greater than 0s",
    );
    assert_error(&routed("retries = -1"), "routes[0].retries", ">= 0");
    assert_error(
        &routed("name = \"a b\""),
        "routes[0].name",
        "not a route name",
    );
    let two = format!(
        "[[routes]]\nname = \"x\"\npool = \"api\"\n[[routes]]\nname = \"x\"\npool = \"api\"\n[pools.api]\n{B}\n"
    );
    assert_error(&two, "routes[1].name", "names must be unique");
}

#[test]
fn server_https_redirect_and_per_client_limit() {
    assert_error(
        &format!("[server]\nhttps_redirect = true\n[pools.api]\n{B}\n"),
        "server.https_redirect",
        "needs a [server.tls] listener",
    );
    let c = load(&format!(
        "[server]\nmax_connections_per_client = 8\n[pools.api]\n{B}\n"
    ));
    assert_eq!(c.server.max_connections_per_client, 8);
    assert!(!c.server.https_redirect);
    assert_error(
        &format!("[server]\nmax_connections_per_client = -1\n[pools.api]\n{B}\n"),
        "server.max_connections_per_client",
        ">= 0",
    );
}
