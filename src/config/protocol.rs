//! The upstream protocol keys of a pool (`protocol`, `max_streams_per_connection`,
//! `grpc_retry_methods`) and the health check's `kind` / `service`.

use super::error::Errors;
use super::reader::{one_of, string, string_list, uint_min, Tbl};
use super::types::{HealthKind, Protocol, ProtocolConfig};

/// Whether `m` is a gRPC method path: `/package.Service/Method`, both parts
/// non-empty and made of the characters gRPC names use.
pub fn valid_grpc_method(m: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    match m.strip_prefix('/').and_then(|r| r.split_once('/')) {
        Some((svc, method)) => ok(svc) && ok(method),
        None => false,
    }
}

/// Reads the protocol keys of pool table `t`.
pub(crate) fn protocol(t: &Tbl<'_, '_>, errs: &mut Errors<'_>) -> ProtocolConfig {
    let mut cfg = ProtocolConfig::default();
    if let Some(g) = t.get(errs, "protocol", one_of(Protocol::TABLE)) {
        cfg.kind = g.v;
    }
    if let Some(g) = t.get(errs, "max_streams_per_connection", uint_min::<u32>(1)) {
        cfg.max_streams_per_connection = g.v;
    }
    if t.has("max_streams_per_connection") && cfg.kind == Protocol::Http1 {
        let uses = if t.has("protocol") {
            ""
        } else {
            "the default "
        };
        t.error_at(
            errs,
            "max_streams_per_connection",
            format!("only used by HTTP/2 pools (protocol = \"h2c\", \"h2\" or \"auto\"); this pool uses {uses}\"http1\""),
        );
    }
    if let Some(g) = t.get(errs, "grpc_retry_methods", string_list) {
        for m in &g.v {
            if !valid_grpc_method(m) {
                errs.push(
                    &t.key("grpc_retry_methods"),
                    g.span.clone(),
                    format!(
                        "\"{}\" is not a gRPC method; write \"/package.Service/Method\"",
                        m.escape_default()
                    ),
                );
            }
        }
        cfg.grpc_retry_methods = g.v;
    }
    cfg
}

/// Reads `kind` and `service` of a `[health]` table; `has_path` says whether
/// `path` was given. The kind defaults to `http` with a path, `tcp` without.
pub(crate) fn health_kind(
    t: &Tbl<'_, '_>,
    errs: &mut Errors<'_>,
    has_path: bool,
) -> (HealthKind, Option<String>) {
    let kind = t.get(errs, "kind", one_of(HealthKind::TABLE)).map(|g| g.v);
    let kind = kind.unwrap_or(if has_path {
        HealthKind::Http
    } else {
        HealthKind::Tcp
    });
    let service = t.get(errs, "service", string).map(|g| g.v);
    match kind {
        HealthKind::Http if !has_path && t.has("kind") => t.error_at(
            errs,
            "kind",
            "kind = \"http\" needs a path, like path = \"/health\"",
        ),
        HealthKind::Tcp | HealthKind::Grpc if has_path => t.error_at(
            errs,
            "path",
            format!(
                "not used by kind = \"{}\" checks; remove it or use kind = \"http\"",
                kind.as_str()
            ),
        ),
        _ => {}
    }
    if kind != HealthKind::Grpc && t.has("service") {
        t.error_at(
            errs,
            "service",
            "only used by gRPC checks (kind = \"grpc\")",
        );
    }
    (kind, service)
}

#[cfg(test)]
mod tests {
    use super::valid_grpc_method;

    #[test]
    fn grpc_method_names() {
        for ok in ["/pkg.Svc/Method", "/Svc/M", "/a.b-c_d/E1"] {
            assert!(valid_grpc_method(ok), "{ok}");
        }
        for bad in ["", "/", "//", "/Svc", "/Svc/", "Svc/M", "/S v/M", "/a/b/c"] {
            assert!(!valid_grpc_method(bad), "{bad}");
        }
    }
}
