//! What a `[[routes]]` entry may add besides host, path and pool: matching on
//! methods and headers, a rate limit, header rules, a redirect, a prefix
//! rewrite and per-route timeout and retries. Templates are parsed here, once,
//! at config load; they are expanded per request by `proxy::route_rules`.

use std::time::Duration;

use http::header::HeaderName;

/// The names `${...}` in a header rule's value that are filled per request
/// (and therefore never read from the environment, see `config::env`).
pub const HEADER_PLACEHOLDERS: [&str; 3] = ["client_ip", "request_id", "host"];

/// Status codes a `redirect` may use.
pub const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

/// Default `redirect.status`: 308 (permanent, keeps the method and body).
pub const DEFAULT_REDIRECT_STATUS: u16 = 308;

/// Default `rate_limit.max_keys`: keys tracked at once per route.
pub const DEFAULT_RATE_LIMIT_MAX_KEYS: usize = 100_000;

/// Everything a route adds to host, path and pool. All optional; the default
/// adds nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteRules {
    /// `name`: the route's label in metrics and the admin API. Default none:
    /// the route's index in `[[routes]]` (`"0"`, `"1"`, ...) is used.
    pub name: Option<String>,
    /// `methods`: the route matches only these methods (case-sensitive, as
    /// HTTP methods are). Default empty = any method.
    pub methods: Vec<String>,
    /// `headers`: the route matches only requests carrying each of these
    /// headers with exactly this value (names stored lower-case; no regex).
    /// Default empty.
    pub headers: Vec<(String, String)>,
    pub rate_limit: Option<RateLimitConfig>,
    /// Applied to the request sent upstream, after the hop-by-hop rules and the
    /// `X-Forwarded-*` headers.
    pub request_headers: Option<HeaderRules>,
    /// Applied to the backend's response, after the hop-by-hop rules.
    pub response_headers: Option<HeaderRules>,
    /// Answer with a redirect instead of forwarding (such a route has no pool).
    pub redirect: Option<Redirect>,
    /// Replace the matched `path_prefix` with this (starts with `/`).
    pub rewrite_prefix: Option<String>,
    /// Overrides the pool's `request_timeout` for this route.
    pub request_timeout: Option<Duration>,
    /// Overrides the pool's `retries` for this route.
    pub retries: Option<u32>,
}

/// What requests are counted together by a rate limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    /// Each client IP has its own allowance.
    ClientIp,
    /// Each value of this header (name lower-case) has its own allowance; requests
    /// without it share one.
    Header(String),
    /// One allowance for the whole route.
    Route,
}

/// `rate_limit = { requests, per, burst, key, max_keys }` (GCRA).
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitConfig {
    /// Sustained rate: `requests` per `per`. `requests` >= 1.
    pub requests: u32,
    /// > 0.
    pub per: Duration,
    /// Requests allowed at once (back to back) by a key that was idle. Default
    /// `requests`; >= 1. In any window of length t at most `burst + rate * t`
    /// requests of one key pass.
    pub burst: u32,
    /// Default [`RateKey::ClientIp`].
    pub key: RateKey,
    /// Keys tracked at once (per route). Default [`DEFAULT_RATE_LIMIT_MAX_KEYS`].
    /// Past it, new keys share one allowance until expired keys are dropped.
    pub max_keys: usize,
}

/// `request_headers` / `response_headers = { set, add, remove }`, applied in
/// that order: remove, then set (replacing), then add (appending). Names are
/// parsed once, at load.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderRules {
    pub remove: Vec<HeaderName>,
    pub set: Vec<(HeaderName, Template)>,
    pub add: Vec<(HeaderName, Template)>,
}

/// A header value with `${client_ip}`, `${request_id}`, `${host}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub Vec<Piece>);

/// One part of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    ClientIp,
    RequestId,
    /// The request's `Host` (or `:authority`), as sent, port included.
    Host,
}

impl Template {
    /// Parses `s`: `${client_ip}`, `${request_id}` and `${host}` are
    /// placeholders; anything else is literal text (after environment
    /// expansion, a `${X}` left in the string was written `$${X}`). The literal
    /// text must be a valid header value (no control characters but tab).
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            let (before, after) = rest.split_at(i);
            lit.push_str(before);
            let body = after.get(2..).unwrap_or("");
            let placeholder = body.split_once('}').and_then(|(name, tail)| {
                let p = match name {
                    "client_ip" => Piece::ClientIp,
                    "request_id" => Piece::RequestId,
                    "host" => Piece::Host,
                    _ => return None,
                };
                Some((p, tail))
            });
            match placeholder {
                Some((p, tail)) => {
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(p);
                    rest = tail;
                }
                None => {
                    lit.push_str("${");
                    rest = body;
                }
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        for p in &pieces {
            if let Piece::Lit(l) = p {
                if http::HeaderValue::from_str(l).is_err() {
                    return Err(format!(
                        "\"{}\" is not a valid header value (control characters other than tab are not allowed)",
                        l.escape_default()
                    ));
                }
            }
        }
        Ok(Template(pieces))
    }
}

/// `redirect = { to, status }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub to: RedirectTarget,
    /// One of [`REDIRECT_STATUSES`]. Default [`DEFAULT_REDIRECT_STATUS`].
    pub status: u16,
}

/// A redirect's `to`, with `{scheme}`, `{host}`, `{path}`, `{query}` and
/// `{uri}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectTarget(pub Vec<RedirectPiece>);

/// One part of a [`RedirectTarget`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectPiece {
    Lit(String),
    /// `http` or `https`: how the request came in.
    Scheme,
    /// The request's host without its port.
    Host,
    /// The request's path (leading slashes collapsed to one).
    Path,
    /// `?` and the query when the request has one, else nothing.
    Query,
    /// `{path}{query}`.
    Uri,
}

/// The placeholders of a redirect's `to`.
pub const REDIRECT_PLACEHOLDERS: [&str; 5] = ["scheme", "host", "path", "query", "uri"];

impl RedirectTarget {
    /// Parses `to`; an unknown `{name}` or a character not allowed in a
    /// `Location` header is an error.
    pub fn parse(s: &str) -> Result<RedirectTarget, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('{') {
            let (before, after) = rest.split_at(i);
            lit.push_str(before);
            let body = after.get(1..).unwrap_or("");
            let Some((name, tail)) = body.split_once('}') else {
                return Err(format!(
                    "unterminated \"{{\" in \"{}\"; placeholders are {}",
                    s.escape_default(),
                    list_placeholders()
                ));
            };
            let p = match name {
                "scheme" => RedirectPiece::Scheme,
                "host" => RedirectPiece::Host,
                "path" => RedirectPiece::Path,
                "query" => RedirectPiece::Query,
                "uri" => RedirectPiece::Uri,
                other => {
                    return Err(format!(
                        "unknown placeholder \"{{{}}}\"; placeholders are {}",
                        other.escape_default(),
                        list_placeholders()
                    ))
                }
            };
            if !lit.is_empty() {
                pieces.push(RedirectPiece::Lit(std::mem::take(&mut lit)));
            }
            pieces.push(p);
            rest = tail;
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(RedirectPiece::Lit(lit));
        }
        if pieces.is_empty() {
            return Err("must not be empty; like \"https://{host}{uri}\"".into());
        }
        for p in &pieces {
            if let RedirectPiece::Lit(l) = p {
                if l.bytes().any(|b| !b.is_ascii_graphic()) {
                    return Err(format!(
                        "\"{}\" has characters not allowed in a URL (spaces, control or non-ASCII characters; percent-encode them)",
                        l.escape_default()
                    ));
                }
            }
        }
        Ok(RedirectTarget(pieces))
    }
}

fn list_placeholders() -> String {
    REDIRECT_PLACEHOLDERS
        .iter()
        .map(|p| format!("{{{p}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_templates_keep_unknown_references_literal() {
        let t = Template::parse("ip=${client_ip}; id=${request_id} ${HOME} ${host}").unwrap();
        assert_eq!(
            t.0,
            vec![
                Piece::Lit("ip=".into()),
                Piece::ClientIp,
                Piece::Lit("; id=".into()),
                Piece::RequestId,
                Piece::Lit(" ${HOME} ".into()),
                Piece::Host,
            ]
        );
        assert_eq!(Template::parse("").unwrap().0, vec![]);
        assert_eq!(
            Template::parse("${").unwrap().0,
            vec![Piece::Lit("${".into())]
        );
        assert!(Template::parse("a\r\nb").is_err());
        assert!(Template::parse("tab\tok").is_ok());
    }

    #[test]
    fn redirect_targets_name_their_placeholders() {
        let t = RedirectTarget::parse("https://{host}:8443{uri}").unwrap();
        assert_eq!(
            t.0,
            vec![
                RedirectPiece::Lit("https://".into()),
                RedirectPiece::Host,
                RedirectPiece::Lit(":8443".into()),
                RedirectPiece::Uri,
            ]
        );
        assert!(RedirectTarget::parse("https://{hots}")
            .unwrap_err()
            .contains("unknown placeholder \"{hots}\""));
        assert!(RedirectTarget::parse("https://{host")
            .unwrap_err()
            .contains("unterminated"));
        assert!(RedirectTarget::parse("https://a b").is_err());
        assert!(RedirectTarget::parse("").is_err());
    }
}
