//! Reading one `[[routes]]` entry: host, path, pool, and the rules of
//! [`super::route_types`].

use http::header::HeaderName;
use toml::de::DeValue;

use super::error::Errors;
use super::reader::{
    boolean, nonempty_string, nonzero_duration, string, string_list, string_map, uint, uint_min,
    Got, Tbl,
};
use super::route_types::{
    HeaderRules, RateKey, RateLimitConfig, Redirect, RedirectTarget, RouteRules, Template,
    DEFAULT_RATE_LIMIT_MAX_KEYS, DEFAULT_REDIRECT_STATUS, REDIRECT_STATUSES,
};
use super::types::Route;
use super::values::parse_host;

/// Keys that do nothing on a route with `redirect` (it forwards nothing).
const NOT_WITH_REDIRECT: &[&str] = &[
    "pool",
    "strip_prefix",
    "rewrite_prefix",
    "request_headers",
    "response_headers",
    "request_timeout",
    "retries",
];

/// Fields a header rule may not name: hop-by-hop fields (RFC 9110 §7.6.1),
/// which drover removes or sets itself, and the message framing.
pub const REFUSED_HEADER_NAMES: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "trailer",
    "content-length",
];

/// One `[[routes]]` entry (`None` when it has errors) and its `pool` value with
/// its span (for the cross-check, even when other keys are wrong).
pub(crate) fn route(
    t: &Tbl<'_, '_>,
    errs: &mut Errors<'_>,
) -> (Option<Route>, Option<Got<String>>) {
    let before = errs.list.len();
    t.check_section(errs, &super::keys::ROUTE);
    let host = t
        .get(errs, "host", |v| parse_host(&string(v)?))
        .map(|g| g.v);
    let path_prefix = t
        .get(errs, "path_prefix", |v| {
            let s = string(v)?;
            if s.starts_with('/') {
                Ok(s)
            } else {
                Err(format!(
                    "must start with \"/\", like \"/api\"; got \"{}\"",
                    s.escape_default()
                ))
            }
        })
        .map(|g| g.v);
    let strip_prefix = t.get(errs, "strip_prefix", boolean).is_some_and(|g| g.v);
    if strip_prefix && !t.has("path_prefix") {
        t.error_at(errs, "strip_prefix", "needs a path_prefix to strip");
    }
    let redirect = t.sub(errs, "redirect").and_then(|sub| redirect(&sub, errs));
    let pool = if t.has("redirect") {
        for k in NOT_WITH_REDIRECT.iter().filter(|k| t.has(k)) {
            t.error_at(
                errs,
                k,
                format!("has no effect on a route with redirect (it forwards nothing); remove {k}"),
            );
        }
        None
    } else {
        t.require(
            errs,
            "pool",
            "the name of a pool (or a redirect)",
            nonempty_string,
        )
    };
    let rules = rules(t, errs, strip_prefix, redirect);
    let route = (errs.list.len() == before).then(|| Route {
        host,
        path_prefix,
        pool: pool.as_ref().map(|p| p.v.clone()),
        strip_prefix,
        rules,
    });
    (route, pool)
}

fn rules(
    t: &Tbl<'_, '_>,
    errs: &mut Errors<'_>,
    strip_prefix: bool,
    redirect: Option<Redirect>,
) -> RouteRules {
    let mut r = RouteRules {
        redirect,
        ..RouteRules::default()
    };
    r.name = t.get(errs, "name", route_name).map(|g| g.v);
    if let Some(g) = t.get(errs, "methods", methods) {
        r.methods = g.v;
    }
    if let Some(g) = t.get(errs, "headers", header_match) {
        r.headers = g.v;
    }
    if let Some(g) = t.get(errs, "rewrite_prefix", rewrite_prefix) {
        if !t.has("path_prefix") {
            t.error_at(errs, "rewrite_prefix", "needs a path_prefix to replace");
        } else if strip_prefix {
            t.error_at(
                errs,
                "rewrite_prefix",
                "strip_prefix and rewrite_prefix exclude each other (strip_prefix is rewrite_prefix = \"/\")",
            );
        } else {
            r.rewrite_prefix = Some(g.v);
        }
    }
    r.request_timeout = t
        .get(errs, "request_timeout", nonzero_duration)
        .map(|g| g.v);
    r.retries = t.get(errs, "retries", uint::<u32>).map(|g| g.v);
    if let Some(sub) = t.sub(errs, "rate_limit") {
        r.rate_limit = rate_limit(&sub, errs);
    }
    for (key, slot) in [
        ("request_headers", &mut r.request_headers),
        ("response_headers", &mut r.response_headers),
    ] {
        if let Some(sub) = t.sub(errs, key) {
            *slot = Some(header_rules(&sub, errs));
        }
    }
    r
}

/// `name`: letters, digits, `_`, `-`, `.` (it is a metric label and a URL segment).
fn route_name(v: &DeValue<'_>) -> Result<String, String> {
    let s = nonempty_string(v)?;
    if s.len() > 64
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(format!(
            "\"{}\" is not a route name: up to 64 letters, digits, '_', '-' or '.'",
            s.escape_default()
        ));
    }
    Ok(s)
}

fn methods(v: &DeValue<'_>) -> Result<Vec<String>, String> {
    let list = string_list(v)?;
    if list.is_empty() {
        return Err("must not be empty (omit methods to match any method)".into());
    }
    for (i, m) in list.iter().enumerate() {
        if http::Method::from_bytes(m.as_bytes()).is_err() || m.is_empty() {
            return Err(format!(
                "item {i}: \"{}\" is not an HTTP method",
                m.escape_default()
            ));
        }
        let upper = m.to_ascii_uppercase();
        let standard = [
            "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
        ];
        if *m != upper && standard.contains(&upper.as_str()) {
            return Err(format!(
                "item {i}: methods are case-sensitive; write \"{upper}\", not \"{}\"",
                m.escape_default()
            ));
        }
    }
    Ok(list)
}

/// A header name as written in the config, lower-cased; errors say why.
fn header_name(name: &str) -> Result<String, String> {
    HeaderName::from_bytes(name.as_bytes())
        .map(|n| n.as_str().to_string())
        .map_err(|_| format!("\"{}\" is not a valid header name", name.escape_default()))
}

fn header_match(v: &DeValue<'_>) -> Result<Vec<(String, String)>, String> {
    string_map(v)?
        .into_iter()
        .map(|(k, val)| {
            let k = header_name(&k)?;
            if http::HeaderValue::from_str(&val).is_err() {
                return Err(format!(
                    "\"{k}\": \"{}\" is not a valid header value",
                    val.escape_default()
                ));
            }
            Ok((k, val))
        })
        .collect()
}

fn rewrite_prefix(v: &DeValue<'_>) -> Result<String, String> {
    let s = string(v)?;
    let valid = s.starts_with('/')
        && !s.contains(['?', '#'])
        && http::uri::PathAndQuery::try_from(s.as_str()).is_ok();
    if !valid {
        return Err(format!(
            "must be a path starting with \"/\" (no query), like \"/v2\"; got \"{}\"",
            s.escape_default()
        ));
    }
    Ok(s)
}

fn redirect(t: &Tbl<'_, '_>, errs: &mut Errors<'_>) -> Option<Redirect> {
    t.check_section(errs, &super::keys::REDIRECT);
    let to = t.require(
        errs,
        "to",
        "the target, like \"https://{host}{uri}\"",
        |v| RedirectTarget::parse(&string(v)?),
    );
    let status = t
        .get(errs, "status", |v| {
            let n = uint::<u16>(v)?;
            if REDIRECT_STATUSES.contains(&n) {
                Ok(n)
            } else {
                Err(format!(
                    "{n} is not a redirect status; expected one of 301, 302, 303, 307, 308"
                ))
            }
        })
        .map_or(DEFAULT_REDIRECT_STATUS, |g| g.v);
    Some(Redirect { to: to?.v, status })
}

fn rate_limit(t: &Tbl<'_, '_>, errs: &mut Errors<'_>) -> Option<RateLimitConfig> {
    t.check_section(errs, &super::keys::RATE_LIMIT);
    let requests = t.require(errs, "requests", "a whole number >= 1", uint_min::<u32>(1));
    let per = t.require(errs, "per", "a duration like \"1s\"", nonzero_duration);
    let burst = t.get(errs, "burst", uint_min::<u32>(1)).map(|g| g.v);
    let key = t
        .get(errs, "key", |v| {
            let s = string(v)?;
            match s.as_str() {
                "client_ip" => Ok(RateKey::ClientIp),
                "route" => Ok(RateKey::Route),
                _ => match s.strip_prefix("header:") {
                    Some(name) if !name.is_empty() => header_name(name).map(RateKey::Header),
                    _ => Err(format!(
                        "unknown key \"{}\"; expected client_ip, route or header:NAME",
                        s.escape_default()
                    )),
                },
            }
        })
        .map_or(RateKey::ClientIp, |g| g.v);
    let max_keys = t
        .get(errs, "max_keys", uint_min::<usize>(1))
        .map_or(DEFAULT_RATE_LIMIT_MAX_KEYS, |g| g.v);
    let requests = requests?.v;
    Some(RateLimitConfig {
        requests,
        per: per?.v,
        burst: burst.unwrap_or(requests),
        key,
        max_keys,
    })
}

fn header_rules(t: &Tbl<'_, '_>, errs: &mut Errors<'_>) -> HeaderRules {
    t.check_section(errs, &super::keys::HEADER_RULES);
    let mut rules = HeaderRules::default();
    let allowed = |name: &str| -> Result<HeaderName, String> {
        let n = header_name(name)?;
        if REFUSED_HEADER_NAMES.contains(&n.as_str()) {
            return Err(format!(
                "\"{n}\" is a hop-by-hop or framing header; drover manages it (RFC 9110 §7.6.1)"
            ));
        }
        HeaderName::from_bytes(n.as_bytes()).map_err(|e| e.to_string())
    };
    for key in ["set", "add"] {
        let got = t.get(errs, key, |v| {
            string_map(v)?
                .into_iter()
                .map(|(k, val)| {
                    let n = allowed(&k)?;
                    let tpl = Template::parse(&val).map_err(|e| format!("\"{n}\": {e}"))?;
                    Ok((n, tpl))
                })
                .collect::<Result<Vec<_>, String>>()
        });
        if let Some(g) = got {
            if key == "set" {
                rules.set = g.v;
            } else {
                rules.add = g.v;
            }
        }
    }
    if let Some(g) = t.get(errs, "remove", |v| {
        string_list(v)?
            .iter()
            .map(|n| allowed(n))
            .collect::<Result<Vec<_>, String>>()
    }) {
        rules.remove = g.v;
    }
    rules
}

/// Route names must be unique (they label metrics).
pub(crate) fn check_unique_names(tables: &[Tbl<'_, '_>], errs: &mut Errors<'_>) {
    let mut seen: Vec<String> = Vec::new();
    for t in tables {
        if let Some(DeValue::String(s)) = t.raw("name").map(|v| v.get_ref()) {
            if seen.iter().any(|n| n == s.as_ref()) {
                t.error_at(
                    errs,
                    "name",
                    format!(
                        "another route is named \"{}\" already; names must be unique",
                        s.escape_default()
                    ),
                );
            } else {
                seen.push(s.to_string());
            }
        }
    }
}
