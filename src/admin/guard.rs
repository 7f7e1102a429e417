//! Who may use the admin API, decided from header values only (pure functions):
//! the `Host` (DNS rebinding), the `Origin` (cross-site pages), the
//! `Content-Type` of writes and the bearer token.
//!
//! - `Host` must be `localhost`, a loopback IP, the IP the connection came in
//!   on or the listener is bound to, or a name in `admin.allowed_hosts` (`"*"` accepts any); the port is not
//!   compared (an SSH tunnel may use another local port). Else `421`.
//! - `Origin`, when sent, must be the same origin as `Host` (`http://` + the
//!   same host and port). Else `403`.
//! - With `admin.token`, `Authorization: Bearer TOKEN`; `?token=` only on
//!   `GET /` (the dashboard page, which then sends the header). Else `401`.
//! - Writes (`POST`, `PUT`, `DELETE`, `PATCH`) need `Content-Type:
//!   application/json`, with or without a body: browsers send other types
//!   cross-site without asking the server first (CORS preflight). Else `415`.

use std::net::{IpAddr, SocketAddr};

use http::StatusCode;

use crate::config::hosts::split_authority;

/// What a request carries that the checks read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    pub method: &'a str,
    /// `Host`, or the HTTP/2 `:authority`.
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub authorization: Option<&'a str>,
    /// The raw query string.
    pub query: Option<&'a str>,
    /// Whether `?token=` is accepted (the dashboard page only).
    pub query_token_ok: bool,
}

/// The listener's side of the checks.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub token: Option<&'a str>,
    pub allowed_hosts: &'a [String],
    pub addrs: Addrs,
}

/// The admin API's own addresses, as seen by one connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Addrs {
    /// The local IP the connection was accepted on (the address dialled).
    pub local: Option<IpAddr>,
    /// The IP the listener is bound to (`admin.listen`, maybe `0.0.0.0`).
    pub listen: Option<IpAddr>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` is missing or not one of the admin API's names: `421`.
    Host(String),
    /// `Origin` is another site: `403`.
    Origin(String),
    /// Missing or wrong token: `401`.
    Token,
    /// A write without `Content-Type: application/json`: `415`.
    NotJson(String),
}

impl Refusal {
    /// Status, `error` and `detail` of the answer.
    pub fn answer(&self) -> (StatusCode, &'static str, String) {
        match self {
            Refusal::Host(h) => (
                StatusCode::MISDIRECTED_REQUEST,
                "host not allowed",
                format!("Host {h:?} is not a name of this admin API (localhost, a loopback IP or the address dialled); add it to admin.allowed_hosts to reach drover by that name"),
            ),
            Refusal::Origin(o) => (
                StatusCode::FORBIDDEN,
                "cross-origin request refused",
                format!("Origin {o:?} is not this admin API's origin"),
            ),
            Refusal::Token => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send Authorization: Bearer <admin.token> (?token= only opens the dashboard page, GET /)".to_string(),
            ),
            Refusal::NotJson(ct) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "writes need Content-Type: application/json",
                format!("got {ct:?}; send Content-Type: application/json, also without a body"),
            ),
        }
    }
}

/// Runs every check in order: Host, Origin, token, Content-Type.
pub fn check(req: &Facts<'_>, policy: &Policy<'_>) -> Result<(), Refusal> {
    let host = req.host.unwrap_or("");
    match split_authority(host) {
        Some((name, _)) if host_allowed(&name, policy) => {}
        _ => return Err(Refusal::Host(host.to_string())),
    }
    if let Some(origin) = req.origin {
        if !same_origin(origin, host) {
            return Err(Refusal::Origin(origin.to_string()));
        }
    }
    if let Some(token) = policy.token {
        let query = || {
            req.query_token_ok
                .then(|| super::routes::query_param(req.query, "token"))
                .flatten()
        };
        let got = bearer(req.authorization).map(str::to_string).or_else(query);
        if !got.is_some_and(|g| tokens_equal(g.as_bytes(), token.as_bytes())) {
            return Err(Refusal::Token);
        }
    }
    if is_write(req.method) && !is_json(req.content_type) {
        return Err(Refusal::NotJson(req.content_type.unwrap_or("").to_string()));
    }
    Ok(())
}

/// Whether `host` (from [`split_authority`]) names this admin API.
fn host_allowed(host: &str, policy: &Policy<'_>) -> bool {
    if host == "localhost" || policy.allowed_hosts.iter().any(|a| a == "*" || a == host) {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => {
            let ip = ip.to_canonical();
            let own = |a: Option<IpAddr>| a.map(|a| a.to_canonical()) == Some(ip);
            ip.is_loopback() || own(policy.addrs.local) || own(policy.addrs.listen)
        }
        Err(_) => false,
    }
}

/// Whether `origin` is `http://` plus the same host and port as `host`.
fn same_origin(origin: &str, host: &str) -> bool {
    let scheme_ok = origin
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
    let Some(authority) = origin.get(7..).filter(|_| scheme_ok) else {
        return false;
    };
    match (split_authority(authority), split_authority(host)) {
        (Some((oh, op)), Some((hh, hp))) => oh == hh && op.unwrap_or(80) == hp.unwrap_or(80),
        _ => false,
    }
}

/// `POST`, `PUT`, `DELETE`, `PATCH`.
pub fn is_write(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "DELETE" | "PATCH")
}

/// `application/json`, with parameters (`; charset=utf-8`) or not.
fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// The token of `Authorization: Bearer TOKEN`.
fn bearer(authorization: Option<&str>) -> Option<&str> {
    authorization?.strip_prefix("Bearer ")
}

/// Compares in time depending only on the lengths (a length difference never
/// wraps to "equal", whatever the padding bytes are).
pub fn tokens_equal(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// A reload may not leave the running admin listener open to the network:
/// refused when the new config has no token and `running` is not loopback.
pub fn reload_keeps_token(running: SocketAddr, new_token: Option<&str>) -> Result<(), String> {
    if new_token.is_none() && !running.ip().to_canonical().is_loopback() {
        return Err(format!(
            "the running admin API listens on {running} (not loopback) and needs a token; \
             keep admin.token (admin.listen changes take effect only after a restart)"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
