//! `[pools.NAME]` with its `backends`, `[health]` and `[passive]`.

use toml::de::DeValue;

use super::error::Errors;
use super::keys;
use super::policy_keys;
use super::protocol::{health_kind, protocol};
use super::reader::{
    describe, duration, nonzero_duration, one_of, string, string_map, uint, uint_min, Tbl,
};
use super::scaling::{autoscale, instances};
use super::types::{
    BackendConfig, Balance, HashKey, HealthConfig, HealthKind, NamedBackend, PassiveConfig,
    PoolConfig, ProviderKind,
};
use super::upstream_tls::{strip_https, upstream_tls};
use super::values::{
    parse_backend_address, parse_hash_key, parse_status_ranges, resolve_now, valid_header_name,
    BackendAddress,
};

/// `health.initial_state` spellings.
pub(crate) const INITIAL_STATES: &[(&str, bool)] = &[("healthy", true), ("unhealthy", false)];

/// A pool name usable in URLs and metric labels.
fn valid_pool_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Reads one pool. `None` when it has errors (they are recorded).
/// `system_resolver`: no `[resolver]` section, so a backend's host name is
/// checked now with the system resolver (like the first DNS discovery round).
pub(crate) fn pool(
    name: &str,
    name_span: std::ops::Range<usize>,
    t: &Tbl<'_, '_>,
    errs: &mut Errors<'_>,
    base: Option<&std::path::Path>,
    system_resolver: bool,
) -> Option<PoolConfig> {
    let before = errs.list.len();
    if !valid_pool_name(name) {
        errs.push(
            &t.path,
            name_span,
            format!(
                "bad pool name \"{}\"; use letters, digits, \"-\", \"_\" and \".\"",
                name.escape_default()
            ),
        );
    }
    t.check_section(errs, &keys::POOL);
    let balance = t.get(errs, "balance", one_of(Balance::TABLE)).map(|g| g.v);
    // A bad `balance` is reported already: `None` then, and balance-specific checks are skipped.
    let effective = balance.or((!t.has("balance")).then_some(Balance::default()));
    let hash_key = hash_key(t, errs, effective);
    let (backends, named_backends) = backends(t, errs, system_resolver);
    let mut cfg = PoolConfig {
        name: name.to_string(),
        balance: balance.unwrap_or_default(),
        hash_key: hash_key.unwrap_or_default(),
        backends,
        named_backends,
        protocol: protocol(t, errs),
        tls: upstream_tls(t, errs, base),
        policy: policy_keys::policy(t, errs, effective),
        ..PoolConfig::default()
    };
    if cfg.protocol.kind == super::types::Protocol::H2c && cfg.tls.is_some() {
        t.error_at(
            errs,
            "protocol",
            "\"h2c\" is HTTP/2 on plain TCP, but this pool uses TLS; write protocol = \"h2\" (HTTP/2 over TLS, ALPN h2) or \"auto\"",
        );
    }
    limits(t, errs, &mut cfg);
    cfg.health = t.sub(errs, "health").map(|h| health(&h, errs));
    cfg.passive = t.sub(errs, "passive").map(|p| passive(&p, errs));
    managed(t, errs, &mut cfg);
    members_check(t, errs, &cfg, errs.list.len() == before);
    (errs.list.len() == before).then_some(cfg)
}

/// `hash_key`, which only `balance = "hash"` uses (`effective`: the pool's
/// balance, `None` when it is invalid).
fn hash_key(t: &Tbl<'_, '_>, errs: &mut Errors<'_>, effective: Option<Balance>) -> Option<HashKey> {
    let hash_key = t.get(errs, "hash_key", |v| parse_hash_key(&string(v)?));
    if let (Some(b), Some(_)) = (effective, &hash_key) {
        if b != Balance::Hash {
            let uses = if t.has("balance") { "" } else { "the default " };
            t.error_at(
                errs,
                "hash_key",
                format!(
                    "only used with balance = \"hash\" (this pool uses {uses}\"{}\")",
                    b.as_str()
                ),
            );
        }
    }
    hash_key.map(|g| g.v)
}

/// The timeouts, retries, queue and connection limits, and `resolve_interval`.
fn limits(t: &Tbl<'_, '_>, errs: &mut Errors<'_>, cfg: &mut PoolConfig) {
    if let Some(g) = t.get(errs, "connect_timeout", nonzero_duration) {
        cfg.connect_timeout = g.v;
    }
    if let Some(g) = t.get(errs, "request_timeout", nonzero_duration) {
        cfg.request_timeout = g.v;
    }
    if let Some(g) = t.get(errs, "retries", uint::<u32>) {
        cfg.retries = g.v;
    }
    if let Some(g) = t.get(errs, "max_connections_per_backend", uint::<u32>) {
        cfg.max_connections_per_backend = g.v;
    }
    if let Some(g) = t.get(errs, "queue_timeout", duration) {
        cfg.queue_timeout = g.v;
    }
    if let Some(g) = t.get(errs, "max_queue", uint::<usize>) {
        cfg.max_queue = g.v;
    }
    if let Some(g) = t.get(errs, "upstream_idle_timeout", nonzero_duration) {
        cfg.upstream_idle_timeout = g.v;
    }
    if let Some(g) = t.get(errs, "resolve_interval", nonzero_duration) {
        cfg.resolve_interval = g.v;
    }
}

/// `[instances]` and `[autoscale]`, and whether the provider can be scaled.
fn managed(t: &Tbl<'_, '_>, errs: &mut Errors<'_>, cfg: &mut PoolConfig) {
    let inst = t.sub(errs, "instances");
    cfg.instances = inst.as_ref().and_then(|i| instances(i, errs));
    let Some(a) = t.sub(errs, "autoscale") else {
        return;
    };
    if inst.is_none() && !t.has("instances") {
        errs.push(
            &a.path,
            a.span.clone(),
            format!(
                "needs a [{}.instances] section: drover scales only instances it manages",
                t.path
            ),
        );
    }
    if let Some(i) = &cfg.instances {
        if i.provider.discovers() {
            errs.push(
                &a.path,
                a.span.clone(),
                super::scaling::not_scaled(i.provider),
            );
        }
        if i.provider == ProviderKind::Swarm && a.has("warm") {
            a.error_at(
                errs,
                "warm",
                "warm pools are not supported with provider = \"swarm\" (swarm keeps its replicas itself); use provider = \"docker\" or remove warm",
            );
        }
    }
    cfg.autoscale = autoscale(&a, errs);
}

/// Where the members come from: some source is given, host names only with
/// DNS discovery, `resolve_interval` only with names to resolve (checked when
/// the pool has no other error: `clean`).
fn members_check(t: &Tbl<'_, '_>, errs: &mut Errors<'_>, cfg: &PoolConfig, clean: bool) {
    let runs = cfg
        .instances
        .as_ref()
        .filter(|i| i.provider != ProviderKind::Dns);
    if let (Some(i), false) = (runs, cfg.named_backends.is_empty()) {
        t.error_at(
            errs,
            "backends",
            format!(
                "a backend given by host name is discovered by DNS and cannot share a pool with provider \"{}\"; give it by IP, use provider = \"dns\", or use another pool",
                i.provider.as_str()
            ),
        );
    }
    let clean = clean && (runs.is_none() || cfg.named_backends.is_empty());
    if t.has("resolve_interval") && cfg.dns_names().is_empty() && clean {
        t.error_at(
            errs,
            "resolve_interval",
            "only used when a backend is given by host name (\"api.internal:8080\") or with provider = \"dns\"",
        );
    }
    let empty_list =
        matches!(t.raw("backends").map(|v| v.get_ref()), Some(DeValue::Array(a)) if a.is_empty());
    if !t.has("instances") && (!t.has("backends") || empty_list) {
        errs.push(
            &t.path,
            t.span.clone(),
            format!(
                "pool has no members; add backends = [\"127.0.0.1:8001\"] or a [{}.instances] section",
                t.path
            ),
        );
    }
}

/// `backends = ["host:port", { address = "host:port", weight = 3 }]`: those
/// given by address, and those given by host name (for DNS discovery).
fn backends(
    t: &Tbl<'_, '_>,
    errs: &mut Errors<'_>,
    system_resolver: bool,
) -> (Vec<BackendConfig>, Vec<NamedBackend>) {
    let mut named: Vec<NamedBackend> = Vec::new();
    let Some(v) = t.raw("backends") else {
        return (Vec::new(), named);
    };
    let path = t.key("backends");
    let DeValue::Array(items) = v.get_ref() else {
        errs.push(
            &path,
            v.span(),
            format!(
                "expected a list like [\"127.0.0.1:8001\", {{ address = \"127.0.0.1:8002\", weight = 3 }}], got {}",
                describe(v.get_ref())
            ),
        );
        return (Vec::new(), named);
    };
    let mut out: Vec<BackendConfig> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ipath = format!("{path}[{i}]");
        let b = match item.get_ref() {
            DeValue::String(s) => match parse_backend_address(strip_https(s).1) {
                Ok(address) => Some((address, 1)),
                Err(e) => {
                    errs.push(&ipath, item.span(), e);
                    None
                }
            },
            DeValue::Table(tab) => {
                let bt = Tbl {
                    path: ipath.clone(),
                    table: tab,
                    span: item.span(),
                };
                bt.check_section(errs, &keys::BACKEND);
                let address = bt.require(errs, "address", "\"host:port\"", |v| {
                    parse_backend_address(strip_https(&string(v)?).1)
                });
                let weight = if bt.has("weight") {
                    bt.get(errs, "weight", uint_min::<u32>(1)).map(|g| g.v)
                } else {
                    Some(1)
                };
                match (address, weight) {
                    (Some(a), Some(weight)) => Some((a.v, weight)),
                    _ => None,
                }
            }
            other => {
                errs.push(
                    &ipath,
                    item.span(),
                    format!(
                        "expected \"host:port\" or {{ address = \"host:port\", weight = 3 }}, got {}",
                        describe(other)
                    ),
                );
                None
            }
        };
        let Some((address, weight)) = b else { continue };
        let port = match &address {
            BackendAddress::Addr(a) => a.port(),
            BackendAddress::Name { port, .. } => *port,
        };
        if port == 0 {
            errs.push(&ipath, item.span(), "port 0 is not a valid backend port");
            continue;
        }
        match address {
            BackendAddress::Addr(address) => {
                if out.iter().any(|o| o.address == address) {
                    errs.push(&ipath, item.span(), format!("duplicate backend {address}"));
                } else {
                    out.push(BackendConfig { address, weight });
                }
            }
            BackendAddress::Name { host, port } => {
                let resolved = match system_resolver {
                    true => resolve_now(&host, port).map(|_| ()),
                    false => Ok(()),
                };
                if named.iter().any(|n| n.host == host && n.port == port) {
                    errs.push(
                        &ipath,
                        item.span(),
                        format!("duplicate backend {host}:{port}"),
                    );
                } else if let Err(e) = resolved {
                    errs.push(&ipath, item.span(), e);
                } else {
                    named.push(NamedBackend { host, port, weight });
                }
            }
        }
    }
    (out, named)
}

fn health(t: &Tbl<'_, '_>, errs: &mut Errors<'_>) -> HealthConfig {
    t.check_section(errs, &keys::HEALTH);
    let path = t
        .get(errs, "path", |v| {
            let s = string(v)?;
            if s.starts_with('/') {
                Ok(s)
            } else {
                Err(format!(
                    "must start with \"/\", like \"/health\"; got \"{}\"",
                    s.escape_default()
                ))
            }
        })
        .map(|g| g.v);
    let mut cfg = HealthConfig {
        path,
        ..HealthConfig::default()
    };
    if let Some(g) = t.get(errs, "interval", nonzero_duration) {
        cfg.interval = g.v;
    }
    if let Some(g) = t.get(errs, "timeout", nonzero_duration) {
        cfg.timeout = g.v;
    }
    if let Some(g) = t.get(errs, "rise", uint_min::<u32>(1)) {
        cfg.rise = g.v;
    }
    if let Some(g) = t.get(errs, "fall", uint_min::<u32>(1)) {
        cfg.fall = g.v;
    }
    if let Some(g) = t.get(errs, "expect_status", |v| match v {
        DeValue::Integer(_) => parse_status_ranges(&uint::<u16>(v)?.to_string()),
        _ => parse_status_ranges(&string(v)?),
    }) {
        cfg.expect_status = g.v;
    }
    if let Some(g) = t.get(errs, "initial_state", one_of(INITIAL_STATES)) {
        cfg.initial_healthy = g.v;
    }
    if let Some(g) = t.get(errs, "headers", string_map) {
        for (name, _) in &g.v {
            if !valid_header_name(name) {
                errs.push(
                    &t.key("headers"),
                    g.span.clone(),
                    format!("\"{}\" is not a valid header name", name.escape_default()),
                );
            }
        }
        cfg.headers = g.v;
    }
    let (kind, service) = health_kind(t, errs, t.has("path"));
    cfg.kind = kind;
    cfg.service = service.unwrap_or_default();
    if kind != HealthKind::Http {
        for key in ["headers", "expect_status"] {
            if t.has(key) {
                t.error_at(
                    errs,
                    key,
                    "only used by HTTP checks; set path = \"/health\" (without path the check is a TCP connect)",
                );
            }
        }
    }
    cfg
}

fn passive(t: &Tbl<'_, '_>, errs: &mut Errors<'_>) -> PassiveConfig {
    t.check_section(errs, &keys::PASSIVE);
    let mut cfg = PassiveConfig::default();
    if let Some(g) = t.get(errs, "consecutive_failures", uint_min::<u32>(1)) {
        cfg.consecutive_failures = g.v;
    }
    if let Some(g) = t.get(errs, "eject_for", nonzero_duration) {
        cfg.eject_for = g.v;
    }
    cfg
}
