//! One line per pool for `drover check`.

use super::types::{Config, HealthKind, HostMatch, Protocol, ProviderKind, Route};

fn route_label(r: &Route) -> String {
    let host = match &r.host {
        None => String::new(),
        Some(HostMatch::Exact(h)) => h.clone(),
        Some(HostMatch::Wildcard(s)) => format!("*{s}"),
    };
    match (&r.path_prefix, host.is_empty()) {
        (Some(p), _) => format!("{host}{p}"),
        (None, true) => "/".to_string(),
        (None, false) => host,
    }
}

fn fmt_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".into()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `pool api: 2 backends, least_conn, health GET /health every 2s, routes: api.example.com/api`
/// (plus `managed: process x1`, `autoscale 1..10` and the protocol when not
/// `http1`; a gRPC check reads `health gRPC SERVICE every 2s`).
pub fn summary_lines(cfg: &Config) -> Vec<String> {
    cfg.pools
        .values()
        .map(|p| {
            let n = p.backends.len() + p.named_backends.len();
            let mut parts = vec![
                format!("{n} backend{}", if n == 1 { "" } else { "s" }),
                p.balance.as_str().to_string(),
            ];
            let names = p.dns_names();
            if !names.is_empty() {
                let names: Vec<String> = names
                    .iter()
                    .map(|b| format!("{}:{}", b.host, b.port))
                    .collect();
                parts.push(format!(
                    "discovered by DNS: {} every {}",
                    names.join(", "),
                    fmt_duration(p.resolve_interval)
                ));
            }
            if let Some(i) = &p.instances {
                parts.push(match i.provider {
                    ProviderKind::Dns => String::new(),
                    ProviderKind::DockerLabels => match &i.owner {
                        Some(o) => format!(
                            "discovered: containers labelled drover.pool and drover.owner={o}"
                        ),
                        None => {
                            "discovered: containers labelled drover.pool (any owner)".to_string()
                        }
                    },
                    _ => format!("managed: {} x{}", i.provider.as_str(), i.count),
                });
                parts.retain(|p| !p.is_empty());
            }
            if let Some(t) = &p.tls {
                parts.push(super::upstream_tls::summary(t));
            }
            if let Some(a) = &p.autoscale {
                parts.push(format!("autoscale {}..{}", a.min, a.max));
                if a.warm > 0 {
                    parts.push(format!("warm {}", a.warm));
                }
                if a.predictive {
                    parts.push("predictive".to_string());
                }
                if !a.schedule.is_empty() {
                    parts.push(format!("{} schedule window(s)", a.schedule.len()));
                }
            }
            if p.protocol.kind != Protocol::Http1 {
                parts.push(p.protocol.kind.as_str().to_string());
            }
            parts.extend(super::policy_keys::summary(&p.policy, fmt_duration));
            match &p.health {
                Some(h) => {
                    let what = match (h.kind, &h.path) {
                        (HealthKind::Grpc, _) if h.service.is_empty() => "gRPC".to_string(),
                        (HealthKind::Grpc, _) => format!("gRPC {}", h.service),
                        (HealthKind::Http, Some(path)) => format!("GET {path}"),
                        _ => "TCP".to_string(),
                    };
                    parts.push(format!("health {what} every {}", fmt_duration(h.interval)));
                }
                None => parts.push("no health check".to_string()),
            }
            let routes: Vec<String> = cfg
                .routes
                .iter()
                .filter(|r| r.pool.as_deref() == Some(p.name.as_str()))
                .map(route_label)
                .collect();
            if routes.is_empty() {
                parts.push("no routes".to_string());
            } else {
                parts.push(format!("routes: {}", routes.join(", ")));
            }
            format!("pool {}: {}", p.name, parts.join(", "))
        })
        .collect()
}
