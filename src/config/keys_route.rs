//! The key tables of `[[routes]]` and its sub-tables (rate limit, header
//! rules, redirect): see [`super::keys`] for what a key table is for.

use serde_json::json;

use super::keys::{key, keyd, Section, Ty};

pub(crate) static ROUTE: Section = Section {
    title: "[[routes]]",
    doc: "A route: the first match wins; no match -> 404.",
    keys: &[
        key(
            "host",
            Ty::NonEmpty,
            "Exact host, or \"*.example.com\"; default: any host.",
        ),
        key(
            "path_prefix",
            Ty::AbsPath,
            "Path prefix; must start with \"/\".",
        ),
        key("name", Ty::NonEmpty, "The route's label in metrics and the API; default its index."),
        key(
            "methods",
            Ty::StrList,
            "Match only these methods (case-sensitive), like [\"GET\", \"HEAD\"].",
        ),
        key(
            "headers",
            Ty::StrMap,
            "Match only requests with these header values (exact), like { X-Env = \"canary\" }.",
        ),
        key("pool", Ty::NonEmpty, "The pool that serves this route (not with redirect)."),
        key(
            "rewrite_prefix",
            Ty::AbsPath,
            "Replace the matched path_prefix with this upstream (not with strip_prefix).",
        ),
        key(
            "rate_limit",
            Ty::Table(&RATE_LIMIT),
            "Requests per key over time (GCRA); excess ones get 429 with Retry-After.",
        ),
        key(
            "request_headers",
            Ty::Table(&HEADER_RULES),
            "Header rules on the request sent upstream; values may use ${client_ip}, ${request_id}, ${host}.",
        ),
        key(
            "response_headers",
            Ty::Table(&HEADER_RULES),
            "Header rules on the backend's response; values may use ${client_ip}, ${request_id}, ${host}.",
        ),
        key(
            "redirect",
            Ty::Table(&REDIRECT),
            "Answer with a redirect instead of forwarding (no pool).",
        ),
        key(
            "request_timeout",
            Ty::Duration,
            "Overrides the pool's request_timeout for this route.",
        ),
        key("retries", Ty::Uint(0), "Overrides the pool's retries for this route."),
        keyd(
            "strip_prefix",
            Ty::Bool,
            "Remove path_prefix from the path sent upstream.",
            |c| json!(c.routes.first().is_some_and(|r| r.strip_prefix)),
        ),
    ],
    required: &[],
    required_any: &["pool", "redirect"],
};

pub(crate) static RATE_LIMIT: Section = Section {
    title: "rate_limit = { ... }",
    doc: "A route's rate limit (GCRA): requests per `per`, with a burst.",
    keys: &[
        key("requests", Ty::Uint(1), "Requests allowed per `per`."),
        key("per", Ty::Duration, "The period, like \"1s\" or \"1m\"."),
        key("burst", Ty::Uint(1), "Requests allowed at once above the rate; default `requests`."),
        key("key", Ty::Str, "What is limited: \"client_ip\" (default), \"header:NAME\" or \"route\"."),
        key("max_keys", Ty::Uint(1), "Most keys tracked at once (default 100000); past it new keys share one allowance per shard."),
    ],
    required: &["requests", "per"],
    required_any: &[],
};

pub(crate) static HEADER_RULES: Section = Section {
    title: "{ set, add, remove }",
    doc: "Header rules, applied after the hop-by-hop rules: remove, then set, then add.",
    keys: &[
        key(
            "set",
            Ty::StrMap,
            "Headers set (replacing any of that name).",
        ),
        key("add", Ty::StrMap, "Headers appended."),
        key("remove", Ty::StrList, "Header names removed."),
    ],
    required: &[],
    required_any: &[],
};

pub(crate) static REDIRECT: Section = Section {
    title: "redirect = { to, status }",
    doc: "A redirect: `to` may use {scheme} {host} {path} {query} {uri}.",
    keys: &[
        key("to", Ty::NonEmpty, "Target, like \"https://{host}{uri}\"."),
        key(
            "status",
            Ty::Uint(300),
            "301, 302, 303, 307 or 308 (default 308).",
        ),
    ],
    required: &["to"],
    required_any: &[],
};
