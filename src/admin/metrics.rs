//! `GET /metrics`: Prometheus text exposition (format 0.0.4) rendered from the
//! live atomics; nothing on the request path is touched.

use std::collections::BTreeMap;
use std::fmt::{Display, Write};
use std::sync::atomic::Ordering;

use crate::pool::{Histogram, Member, MemberState, Pool};

/// Escapes a label value (backslash, quote, newline).
pub(crate) fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One histogram per pool (`name{pool}` with `_bucket`, `_sum`, `_count`).
fn histogram<'a>(
    out: &mut String,
    pools: impl Iterator<Item = &'a Pool>,
    name: &str,
    help: &str,
    of: impl Fn(&Pool) -> &Histogram,
) {
    header(out, name, "histogram", help);
    for p in pools {
        let pn = esc(&p.name);
        let (buckets, count, sum) = of(p).read();
        for (le, n) in buckets {
            let _ = writeln!(out, "{name}_bucket{{pool=\"{pn}\",le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{pool=\"{pn}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{pool=\"{pn}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{pool=\"{pn}\"}} {count}");
    }
}

/// `drover_health_checks_total`, `drover_backend_ejections_total`, `drover_queue_waiting`.
fn health_metrics<'a>(out: &mut String, pools: impl Iterator<Item = &'a Pool> + Clone) {
    header(
        out,
        "drover_health_checks_total",
        "counter",
        "Active health checks by pool, backend and result (pass, fail, unknown: could not run for a local reason).",
    );
    for p in pools.clone() {
        for m in p.snapshot().members.iter() {
            for (result, c) in [
                ("pass", &m.stats.checks_passed),
                ("fail", &m.stats.checks_failed),
                ("unknown", &m.stats.checks_unknown),
            ] {
                let _ = writeln!(
                    out,
                    "drover_health_checks_total{{pool=\"{}\",backend=\"{}\",result=\"{result}\"}} {}",
                    esc(&p.name),
                    m.address,
                    c.load(Ordering::Relaxed)
                );
            }
        }
    }
    per_member(
        out,
        pools.clone(),
        ("drover_backend_ejections_total", "counter"),
        "Passive ejections of a backend (outlier detection).",
        |m| m.stats.ejections.load(Ordering::Relaxed),
    );
    per_pool(
        out,
        pools,
        ("drover_queue_waiting", "gauge"),
        "Requests waiting in a pool's queue: for a backend below max_connections_per_backend, or held for a cold start.",
        |p| Some(p.queue.waiting()),
    );
}

/// `drover_proxy_errors_total{pool,cause}`: every cause of every pool (0 too,
/// so rates work from the start), and `no_route` under `pool=""`.
fn proxy_error_metrics<'a>(out: &mut String, pools: impl Iterator<Item = &'a Pool>) {
    header(
        out,
        "drover_proxy_errors_total",
        "counter",
        "Requests drover failed, by pool and cause (client, connect, upstream, timeout, limit, no_route, no_member, cold_start).",
    );
    for p in pools {
        for (cause, n) in p.metrics.error_counts() {
            let _ = writeln!(
                out,
                "drover_proxy_errors_total{{pool=\"{}\",cause=\"{cause}\"}} {n}",
                esc(&p.name)
            );
        }
    }
    let _ = writeln!(
        out,
        "drover_proxy_errors_total{{pool=\"\",cause=\"no_route\"}} {}",
        crate::proxy::errors::no_pool_errors()
    );
}

/// `drover_http1_native_requests_total`, `drover_http1_handoffs_total{reason}`
/// and `drover_upstream_native_exchanges_total`: requests the native HTTP/1
/// codec served, connections it handed to hyper, exchanges its client made.
fn http1_codec_metrics(out: &mut String) {
    header(
        out,
        "drover_http1_native_requests_total",
        "counter",
        "Requests served by drover's own HTTP/1 codec (server.http1_codec = \"native\").",
    );
    let _ = writeln!(
        out,
        "drover_http1_native_requests_total {}",
        crate::proxy::h1::native_requests()
    );
    header(
        out,
        "drover_http1_handoffs_total",
        "counter",
        "Client connections the native HTTP/1 codec handed to hyper, by reason (version, feature, malformed, too_large).",
    );
    for (reason, n) in crate::proxy::h1::handoffs() {
        let _ = writeln!(
            out,
            "drover_http1_handoffs_total{{reason=\"{reason}\"}} {n}"
        );
    }
    header(
        out,
        "drover_upstream_native_exchanges_total",
        "counter",
        "Exchanges with backends over drover's own HTTP/1.1 client (server.http1_codec = \"native\": requests without a body to plain members).",
    );
    let _ = writeln!(
        out,
        "drover_upstream_native_exchanges_total {}",
        crate::upstream::native::exchanges()
    );
}

/// `drover_worker_connections{worker}` and `drover_worker_moves_total`: the
/// client connections each worker serves, and those handed from the
/// accepting worker to a less loaded one ([`crate::proxy::spread`]).
fn worker_metrics(out: &mut String) {
    let Some(spread) = crate::proxy::spread::Spread::current() else {
        return;
    };
    header(
        out,
        "drover_worker_connections",
        "gauge",
        "Client connections each worker thread serves now.",
    );
    for (i, n) in spread.connections().iter().enumerate() {
        let _ = writeln!(out, "drover_worker_connections{{worker=\"{i}\"}} {n}");
    }
    header(
        out,
        "drover_worker_moves_total",
        "counter",
        "Client connections handed from the worker that accepted them to a less loaded one.",
    );
    let _ = writeln!(out, "drover_worker_moves_total {}", spread.moved());
}

/// `drover_rate_limited_total{route}`: requests refused by each route's
/// `rate_limit` (label: the route's `name`, else its index), since start.
fn rate_limit_metrics(out: &mut String) {
    header(
        out,
        "drover_rate_limited_total",
        "counter",
        "Requests refused with 429 by a route's rate_limit, by route (name, else index).",
    );
    for (route, n) in crate::proxy::rate_limiter::limited_counters() {
        let _ = writeln!(
            out,
            "drover_rate_limited_total{{route=\"{}\"}} {n}",
            esc(&route)
        );
    }
}

/// Renders every metric for these pools; `desired` gives a pool's desired instance count.
pub fn render<'a>(
    pools: impl Iterator<Item = &'a Pool> + Clone,
    desired: impl Fn(&Pool) -> u32,
) -> String {
    let mut out = String::with_capacity(4096);
    request_metrics(&mut out, pools.clone());
    member_metrics(&mut out, pools.clone());
    instance_metrics(&mut out, pools.clone(), desired);
    health_metrics(&mut out, pools.clone());
    proxy_error_metrics(&mut out, pools);
    rate_limit_metrics(&mut out);
    http1_codec_metrics(&mut out);
    worker_metrics(&mut out);
    process_metrics(&mut out);
    out
}

/// A metric with one sample per pool, `name{pool="P"} value` (none where `value` is `None`).
/// `metric` is `(name, type)`.
fn per_pool<'a, V: Display>(
    out: &mut String,
    pools: impl Iterator<Item = &'a Pool>,
    (name, kind): (&str, &str),
    help: &str,
    value: impl Fn(&Pool) -> Option<V>,
) {
    header(out, name, kind, help);
    for p in pools {
        if let Some(v) = value(p) {
            let _ = writeln!(out, "{name}{{pool=\"{}\"}} {v}", esc(&p.name));
        }
    }
}

/// A metric with one sample per member, `name{pool="P",backend="ADDR"} value`.
fn per_member<'a, V: Display>(
    out: &mut String,
    pools: impl Iterator<Item = &'a Pool>,
    (name, kind): (&str, &str),
    help: &str,
    value: impl Fn(&Member) -> V,
) {
    header(out, name, kind, help);
    for p in pools {
        let pn = esc(&p.name);
        for m in p.snapshot().members.iter() {
            let _ = writeln!(
                out,
                "{name}{{pool=\"{pn}\",backend=\"{}\"}} {}",
                m.address,
                value(m)
            );
        }
    }
}

/// `drover_requests_total` and the request and upstream-response duration histograms.
fn request_metrics<'a>(out: &mut String, pools: impl Iterator<Item = &'a Pool> + Clone) {
    header(
        out,
        "drover_requests_total",
        "counter",
        "Responses by pool, backend and status code (backend \"\" = made by drover).",
    );
    for p in pools.clone() {
        let pn = esc(&p.name);
        for m in p.snapshot().members.iter() {
            for (code, n) in m.stats.status_counts() {
                let _ = writeln!(
                    out,
                    "drover_requests_total{{pool=\"{pn}\",backend=\"{}\",code=\"{code}\"}} {n}",
                    m.address
                );
            }
        }
        for (code, n) in p.metrics.local_counts() {
            if n > 0 {
                let _ = writeln!(
                    out,
                    "drover_requests_total{{pool=\"{pn}\",backend=\"\",code=\"{code}\"}} {n}"
                );
            }
        }
    }
    histogram(
        out,
        pools.clone(),
        "drover_request_duration_seconds",
        "Request duration from arrival to the end of the response, by pool.",
        |p| &p.metrics.duration,
    );
    histogram(
        out,
        pools,
        "drover_upstream_response_seconds",
        "Time from a request's arrival to the backend's response head (queueing and retries included; not the body, tunnel or stream after it), by pool.",
        |p| &p.metrics.response,
    );
}

/// `drover_backend_inflight` and `drover_backend_up`.
fn member_metrics<'a>(out: &mut String, pools: impl Iterator<Item = &'a Pool> + Clone) {
    per_member(
        out,
        pools.clone(),
        ("drover_backend_inflight", "gauge"),
        "Requests in flight to a backend.",
        |m| m.stats.load.inflight(),
    );
    per_member(
        out,
        pools,
        ("drover_backend_up", "gauge"),
        "1 when the backend takes requests (healthy), else 0.",
        |m| u8::from(m.state == MemberState::Healthy),
    );
}

/// Members by state, desired and warm instances, scale events, cold starts and retries.
fn instance_metrics<'a>(
    out: &mut String,
    pools: impl Iterator<Item = &'a Pool> + Clone,
    desired: impl Fn(&Pool) -> u32,
) {
    header(
        out,
        "drover_pool_instances",
        "gauge",
        "Members of a pool by state.",
    );
    for p in pools.clone() {
        let mut by_state: BTreeMap<&str, usize> = [
            MemberState::Starting,
            MemberState::Healthy,
            MemberState::Unhealthy,
            MemberState::Ejected,
            MemberState::Draining,
        ]
        .iter()
        .map(|s| (s.as_str(), 0))
        .collect();
        for m in p.snapshot().members.iter() {
            *by_state.entry(m.state.as_str()).or_default() += 1;
        }
        for (state, n) in by_state {
            let _ = writeln!(
                out,
                "drover_pool_instances{{pool=\"{}\",state=\"{state}\"}} {n}",
                esc(&p.name)
            );
        }
    }
    per_pool(
        out,
        pools.clone(),
        ("drover_pool_desired_instances", "gauge"),
        "Instances the pool should run (managed pools; static pools: member count).",
        |p| Some(desired(p)),
    );
    per_pool(
        out,
        pools.clone(),
        ("drover_pool_warm_instances", "gauge"),
        "Warm instances ready and held out of rotation (autoscale.warm; managed pools).",
        |p| {
            let managed = p.snapshot().config.instances.is_some();
            managed.then(|| p.metrics.warm.load(Ordering::Relaxed))
        },
    );
    header(
        out,
        "drover_scale_events_total",
        "counter",
        "Changes of the desired instance count by the autoscaler, by direction.",
    );
    for p in pools.clone() {
        for (dir, c) in [("up", &p.metrics.scale_up), ("down", &p.metrics.scale_down)] {
            let _ = writeln!(
                out,
                "drover_scale_events_total{{pool=\"{}\",direction=\"{dir}\"}} {}",
                esc(&p.name),
                c.load(Ordering::Relaxed)
            );
        }
    }
    histogram(
        out,
        pools.clone(),
        "drover_cold_start_seconds",
        "How long requests were held while an instance started (scale from zero).",
        |p| &p.metrics.cold_start,
    );
    per_pool(
        out,
        pools,
        ("drover_retries_total", "counter"),
        "Requests retried on another member.",
        |p| Some(p.metrics.retries.load(Ordering::Relaxed)),
    );
}

/// Process-wide counters: upstream connects and dropped access-log records.
fn process_metrics(out: &mut String) {
    header(
        out,
        "drover_upstream_connects_total",
        "counter",
        "Upstream connections opened (keep-alive reuse keeps this low).",
    );
    let _ = writeln!(
        out,
        "drover_upstream_connects_total {}",
        crate::upstream::http1::CONNECTS.load(Ordering::Relaxed)
    );
    header(
        out,
        "drover_access_log_dropped_total",
        "counter",
        "Access log records dropped because the log buffer was full.",
    );
    let _ = writeln!(
        out,
        "drover_access_log_dropped_total {}",
        crate::access_log::dropped()
    );
}
