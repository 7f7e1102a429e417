//! `[server]`, `[server.tls]`, `[admin]`, `[log]` and `[[routes]]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::de::DeValue;

use super::error::Errors;
use super::keys;
use super::reader::{
    boolean, describe, duration, nonempty_string, nonzero_duration, one_of, string_list, uint,
    uint_min, Got, Tbl,
};
use super::types::{
    AccessFormat, AccessTarget, AdminConfig, CertPair, Http1Codec, Http2Codec, LogConfig,
    ServerConfig, TlsConfig,
};
use super::values::parse_addr;

/// Smallest accepted `server.max_header_bytes`.
pub const MIN_HEADER_BYTES: usize = 8192;

/// One address, or a list of them (`listen = "a"` is taken as `["a"]`).
fn addr_list(v: &DeValue<'_>) -> Result<Vec<SocketAddr>, String> {
    let one = |i: Option<usize>, v: &DeValue<'_>| match v {
        DeValue::String(s) => parse_addr(s).map_err(|e| match i {
            Some(i) => format!("item {i}: {e}"),
            None => e,
        }),
        other => Err(format!(
            "expected an address like \"127.0.0.1:8080\", got {}",
            describe(other)
        )),
    };
    match v {
        DeValue::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| one(Some(i), item.get_ref()))
            .collect(),
        other => one(None, other).map(|a| vec![a]),
    }
}

fn addr(v: &DeValue<'_>) -> Result<SocketAddr, String> {
    match v {
        DeValue::String(s) => parse_addr(s),
        other => Err(format!(
            "expected an address like \"127.0.0.1:9090\", got {}",
            describe(other)
        )),
    }
}

pub(crate) fn server(
    t: Option<Tbl<'_, '_>>,
    errs: &mut Errors<'_>,
    base: Option<&Path>,
) -> ServerConfig {
    let mut cfg = ServerConfig::default();
    let Some(t) = t else { return cfg };
    t.check_section(errs, &keys::SERVER);
    if let Some(g) = t.get(errs, "listen", addr_list) {
        if g.v.is_empty() {
            t.error_at(
                errs,
                "listen",
                "at least one address is required, like [\"127.0.0.1:8080\"]",
            );
        } else {
            cfg.listen = g.v;
        }
    }
    if let Some(g) = t.get(errs, "shutdown_timeout", duration) {
        cfg.shutdown_timeout = g.v;
    }
    if let Some(g) = t.get(
        errs,
        "max_header_bytes",
        uint_min::<usize>(MIN_HEADER_BYTES as i128),
    ) {
        cfg.max_header_bytes = g.v;
    }
    if let Some(g) = t.get(errs, "header_read_timeout", nonzero_duration) {
        cfg.header_read_timeout = g.v;
    }
    if let Some(g) = t.get(errs, "idle_timeout", nonzero_duration) {
        cfg.idle_timeout = g.v;
    }
    if let Some(g) = t.get(errs, "max_connections", uint::<usize>) {
        cfg.max_connections = g.v;
    }
    if let Some(g) = t.get(errs, "tunnel_idle_timeout", nonzero_duration) {
        cfg.tunnel_idle_timeout = g.v;
    }
    if let Some(g) = t.get(errs, "body_read_timeout", nonzero_duration) {
        cfg.body_read_timeout = g.v;
    }
    if let Some(g) = t.get(errs, "threads", uint::<usize>) {
        cfg.threads = g.v;
    }
    if let Some(tls) = t.sub(errs, "tls") {
        cfg.tls = server_tls(&tls, errs, base);
    }
    if let Some(g) = t.get(errs, "https_redirect", boolean) {
        if g.v && !t.has("tls") {
            t.error_at(
                errs,
                "https_redirect",
                "needs a [server.tls] listener to redirect to",
            );
        }
        cfg.https_redirect = g.v;
    }
    if let Some(g) = t.get(errs, "max_connections_per_client", uint::<usize>) {
        cfg.max_connections_per_client = g.v;
    }
    if let Some(g) = t.get(errs, "http1_codec", one_of(Http1Codec::TABLE)) {
        cfg.http1_codec = g.v;
    }
    if let Some(g) = t.get(errs, "http2_codec", one_of(Http2Codec::TABLE)) {
        cfg.http2_codec = g.v;
    }
    cfg
}

fn server_tls(t: &Tbl<'_, '_>, errs: &mut Errors<'_>, base: Option<&Path>) -> Option<TlsConfig> {
    t.check_section(errs, &keys::SERVER_TLS);
    let listen = t.require(
        errs,
        "listen",
        "addresses like [\"0.0.0.0:8443\"]",
        addr_list,
    );
    if let Some(g) = &listen {
        if g.v.is_empty() {
            t.error_at(
                errs,
                "listen",
                "at least one address is required, like [\"0.0.0.0:8443\"]",
            );
        }
    }
    if !t.has("certs") {
        t.error_at(
            errs,
            "certs",
            "required: certs = [{ cert = \"site.pem\", key = \"site.key\" }]",
        );
    }
    let pairs = t.tables(errs, "certs");
    if t.has("certs")
        && pairs.is_empty()
        && matches!(t.raw("certs").map(|v| v.get_ref()), Some(DeValue::Array(a)) if a.is_empty())
    {
        t.error_at(errs, "certs", "at least one { cert, key } pair is required");
    }
    let mut certs = Vec::new();
    for p in &pairs {
        p.check_section(errs, &keys::CERT);
        let cert = p.require(
            errs,
            "cert",
            "a PEM certificate chain file",
            nonempty_string,
        );
        let key = p.require(errs, "key", "a PEM private key file", nonempty_string);
        let cert = cert.and_then(|g| existing_file(p, errs, "cert", g, base));
        let key = key.and_then(|g| existing_file(p, errs, "key", g, base));
        if let (Some(cert), Some(key)) = (cert, key) {
            certs.push(CertPair { cert, key });
        }
    }
    Some(TlsConfig {
        listen: listen?.v,
        certs,
    })
}

/// Resolves `path` against the config file's directory and checks that it exists.
pub(crate) fn existing_file(
    t: &Tbl<'_, '_>,
    errs: &mut Errors<'_>,
    key: &str,
    g: Got<String>,
    base: Option<&Path>,
) -> Option<PathBuf> {
    let p = Path::new(&g.v);
    let full = match base {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p.to_path_buf(),
    };
    if full.is_file() {
        Some(full)
    } else {
        errs.push(
            &t.key(key),
            g.span,
            format!("no such file: {}", full.display()),
        );
        None
    }
}

pub(crate) fn admin(t: Option<Tbl<'_, '_>>, errs: &mut Errors<'_>) -> AdminConfig {
    let mut cfg = AdminConfig::default();
    let Some(t) = t else { return cfg };
    t.check_section(errs, &keys::ADMIN);
    let listen = t.get(errs, "listen", addr);
    if let Some(g) = &listen {
        cfg.listen = g.v;
    }
    cfg.token = t.get(errs, "token", nonempty_string).map(|g| g.v);
    if let Some(g) = listen {
        if !g.v.ip().is_loopback() && !t.has("token") {
            errs.push(
                &t.key("token"),
                g.span,
                "required when admin.listen is not a loopback address (e.g. token = \"${DROVER_ADMIN_TOKEN}\")",
            );
        }
    }
    if let Some(g) = t.get(errs, "allowed_hosts", allowed_hosts) {
        cfg.allowed_hosts = g.v;
    }
    if let Some(g) = t.get(errs, "header_read_timeout", nonzero_duration) {
        cfg.header_read_timeout = g.v;
    }
    if let Some(g) = t.get(errs, "idle_timeout", nonzero_duration) {
        cfg.idle_timeout = g.v;
    }
    if let Some(g) = t.get(errs, "max_connections", uint_min::<usize>(1)) {
        cfg.max_connections = g.v;
    }
    cfg
}

/// `admin.allowed_hosts`: names or IPs without port (`"*"` for any), stored
/// lower-case with IPv6 brackets removed.
fn allowed_hosts(v: &DeValue<'_>) -> Result<Vec<String>, String> {
    string_list(v)?
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            super::hosts::normalize_allowed_host(&h)
                .ok_or_else(|| format!("item {i}: {h:?} is not a host name or IP without port, like \"admin.example.com\" or \"*\""))
        })
        .collect()
}

pub(crate) fn log(t: Option<Tbl<'_, '_>>, errs: &mut Errors<'_>, base: Option<&Path>) -> LogConfig {
    let mut cfg = LogConfig::default();
    let Some(t) = t else { return cfg };
    t.check_section(errs, &keys::LOG);
    if let Some(g) = t.get(errs, "access", |v| access_target(v, base)) {
        cfg.access = g.v;
    }
    if let Some(g) = t.get(errs, "access_format", one_of(AccessFormat::TABLE)) {
        cfg.access_format = g.v;
    }
    cfg
}

/// `access = true | false | "stdout" | "off" | "/path/file"` (a relative path is
/// taken from the config file's directory).
fn access_target(v: &DeValue<'_>, base: Option<&Path>) -> Result<AccessTarget, String> {
    match v {
        DeValue::Boolean(true) => Ok(AccessTarget::Stdout),
        DeValue::Boolean(false) => Ok(AccessTarget::Off),
        DeValue::String(s) => match s.trim() {
            "stdout" => Ok(AccessTarget::Stdout),
            "off" => Ok(AccessTarget::Off),
            p if !p.contains('/') => Err(format!(
                "expected true, false, \"stdout\", \"off\" or a file path with a \"/\" (like \"./access.log\"); got \"{}\"",
                p.escape_default()
            )),
            p => {
                let p = Path::new(p);
                let full = match base {
                    Some(dir) if p.is_relative() => dir.join(p),
                    _ => p.to_path_buf(),
                };
                match full.parent() {
                    Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                        Err(format!("no such directory: {}", dir.display()))
                    }
                    _ => Ok(AccessTarget::File(full)),
                }
            }
        },
        other => Err(format!(
            "expected true, false, \"stdout\", \"off\" or a file path, got {}",
            describe(other)
        )),
    }
}
