//! Typed views ([`super::types`]) of pools, members and routes for the admin API.

use std::sync::atomic::Ordering;

use super::types::{Backend, Check, PoolView, RateLimitView, RouteView};
use super::Drover;
use crate::pool::{MemberState, Pool, PoolSnapshot};

/// Member `i` of `snap` as `GET /api/v1/pools` shows it.
pub fn backend(snap: &PoolSnapshot, i: usize) -> Option<Backend> {
    let m = snap.members.get(i)?;
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    Some(Backend {
        address: m.address.to_string(),
        state: m.state.into(),
        reason: m.reason.clone(),
        inflight: m.stats.load.inflight(),
        requests: m.stats.requests.load(Ordering::Relaxed),
        failures: m.stats.failures.load(Ordering::Relaxed),
        consecutive_failures: m.stats.consecutive_failures.load(Ordering::Relaxed).into(),
        last_check: m.stats.last_check().map(|c| Check {
            result: if c.pass { "pass" } else { "fail" }.to_string(),
            detail: c.detail,
            at: crate::access_log::rfc3339(c.at),
        }),
        consecutive_check_failures: m.stats.check_failures.load(Ordering::Relaxed).into(),
        ejections: m.stats.ejections.load(Ordering::Relaxed),
        ewma_ms: round3(m.stats.load.ewma_ms()),
        weight: m.weight,
        // Weight now: lower during slow start, 0 while the member takes no requests.
        effective_weight: round3(snap.effective_weight_now(i)),
        sticky_sessions: m.stats.sticky.recent(crate::balance::slow_start::now()),
        managed: m.managed,
    })
}

/// One pool as `GET /api/v1/pools/{pool}` shows it.
pub fn pool_view(app: &dyn Drover, pool: &Pool) -> PoolView {
    let snap = pool.snapshot();
    let bounds = super::scale::bounds(&snap.config).ok();
    PoolView {
        name: pool.name.clone(),
        balance: snap.config.balance.as_str().to_string(),
        desired: pool.desired_instances(),
        instances: snap.members.iter().filter(|m| m.managed).count() as u64,
        ready: ready(pool),
        scalable: bounds.is_some(),
        min: bounds.map(|b| b.0),
        max: bounds.map(|b| b.1),
        autoscaled: snap.config.autoscale.is_some(),
        warm: app.scale_control().and_then(|c| c.warm(&pool.name)),
        retries: pool.metrics.retries.load(Ordering::Relaxed),
        queued: pool.queue.waiting() as u64,
        backends: (0..snap.members.len())
            .filter_map(|i| backend(&snap, i))
            .collect(),
    }
}

/// Members taking requests.
pub fn ready(pool: &Pool) -> u32 {
    pool.snapshot()
        .members
        .iter()
        .filter(|m| m.state == MemberState::Healthy)
        .count() as u32
}

/// `GET /api/v1/routes`: the routes in match order, with their rate-limit counters.
pub(crate) fn routes(router: &crate::proxy::router::Router) -> Vec<RouteView> {
    use crate::config::{HostMatch, RateKey};
    router
        .routes
        .iter()
        .zip(&router.states)
        .map(|(r, st)| {
            let host = r.host.as_ref().map(|h| match h {
                HostMatch::Exact(e) => e.clone(),
                HostMatch::Wildcard(w) => format!("*{w}"),
            });
            let rate_limit = r.rules.rate_limit.as_ref().map(|l| RateLimitView {
                requests: l.requests,
                per_ms: l.per.as_millis() as u64,
                burst: l.burst,
                key: match &l.key {
                    RateKey::ClientIp => "client_ip".to_string(),
                    RateKey::Route => "route".to_string(),
                    RateKey::Header(h) => format!("header:{h}"),
                },
                max_keys: l.max_keys as u64,
            });
            let limiter = st.limiter.as_ref();
            RouteView {
                name: st.label.clone(),
                host,
                path_prefix: r.path_prefix.clone(),
                methods: r.rules.methods.clone(),
                pool: r.pool.clone(),
                redirect: r.rules.redirect.as_ref().map(|d| d.status),
                rate_limit,
                rate_limited: limiter.map_or(0, |l| l.limited.load(Ordering::Relaxed)),
                tracked_keys: limiter.map_or(0, |l| l.tracked() as u64),
            }
        })
        .collect()
}
