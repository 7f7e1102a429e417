//! The admin API's handlers for pools, members, scaling and events. Every
//! change is a [`PoolCommand`] applied through [`Pool::apply`], and recorded as an event.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{json, Value};

use super::scale::{self, ScaleError};
use super::types::{AutoscaleView, Backend, Removal, Scaled};
use super::Drover;
use super::{fail, json_resp, ApiResult, Resp};
use crate::events::EventKind;
use crate::pool::{MemberState, Pool, PoolCommand};

/// How often a pending removal checks the member's in-flight count. 100 ms.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// `GET /api/v1/pools/{pool}/autoscale`: what the autoscaler saw and decided.
pub fn autoscale(app: &dyn Drover, pool: &Pool) -> ApiResult<Resp> {
    if pool.snapshot().config.autoscale.is_none() {
        return Err(fail(
            StatusCode::CONFLICT,
            &format!("pool {} has no [autoscale] section", pool.name),
            json!({"pool": pool.name}),
        ));
    }
    match app.scale_control().and_then(|c| c.autoscale(&pool.name)) {
        Some(explain) => {
            let view = AutoscaleView {
                pool: pool.name.clone(),
                explain,
            };
            Ok(super::json_resp(StatusCode::OK, &view))
        }
        None => Err(fail(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("no autoscaler is running for pool {}", pool.name),
            json!({"pool": pool.name}),
        )),
    }
}

/// The pool named `name`, or a 404 listing the pools there are.
pub fn find_pool(app: &dyn Drover, name: &str) -> ApiResult<Arc<Pool>> {
    let router = app.shared().router.load();
    router.pools.get(name).cloned().ok_or_else(|| {
        let mut names: Vec<&String> = router.pools.keys().collect();
        names.sort();
        fail(
            StatusCode::NOT_FOUND,
            &format!("no such pool: {name}"),
            json!({"pool": name, "pools": names}),
        )
    })
}

fn parse_addr(s: &str) -> ApiResult<SocketAddr> {
    s.trim().parse().map_err(|_| {
        fail(
            StatusCode::BAD_REQUEST,
            &format!("bad backend address {s:?}"),
            json!("expected ip:port, like 127.0.0.1:8001 or [::1]:8001"),
        )
    })
}

fn member_of(pool: &Pool, addr: SocketAddr) -> ApiResult<Backend> {
    let snap = pool.snapshot();
    match snap
        .position(addr)
        .and_then(|i| super::api::backend(&snap, i))
    {
        Some(b) => Ok(b),
        None => Err(fail(
            StatusCode::NOT_FOUND,
            &format!("pool {} has no member {addr}", pool.name),
            json!({"members": snap.members.iter().map(|m| m.address.to_string()).collect::<Vec<_>>()}),
        )),
    }
}

/// Parses a JSON request body into an object.
pub fn body_json(body: &[u8]) -> ApiResult<Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(fail(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object",
            Value::Null,
        )),
        Err(e) => Err(fail(
            StatusCode::BAD_REQUEST,
            "the body is not valid JSON",
            json!(e.to_string()),
        )),
    }
}

/// `POST /api/v1/pools/{pool}/backends` `{"address", "weight"}`.
pub fn add_backend(app: &dyn Drover, pool: &str, body: &[u8]) -> ApiResult<Resp> {
    let pool = find_pool(app, pool)?;
    let v = body_json(body)?;
    let Some(address) = v.get("address").and_then(Value::as_str) else {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "missing \"address\"",
            json!("send {\"address\": \"127.0.0.1:8001\", \"weight\": 1}"),
        ));
    };
    // `https://ip:port` is accepted for a TLS pool (the pool's TLS settings apply).
    let (https, address) = crate::config::strip_https(address);
    if https && pool.snapshot().config.tls.is_none() {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            &format!(
                "pool {} does not use TLS; https:// members need tls = true in its config",
                pool.name
            ),
            Value::Null,
        ));
    }
    let addr = parse_addr(address)?;
    let weight = match v.get("weight") {
        None | Some(Value::Null) => 1,
        Some(w) => match w.as_u64() {
            Some(n @ 1..=1_000_000) => n as u32,
            _ => {
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    "weight must be a whole number from 1 to 1000000",
                    w.clone(),
                ))
            }
        },
    };
    if pool.snapshot().position(addr).is_some() {
        return Err(fail(
            StatusCode::CONFLICT,
            &format!("pool {} already has member {addr}", pool.name),
            Value::Null,
        ));
    }
    let cfg = pool.snapshot().config.clone();
    let (state, why) = match &cfg.health {
        Some(h) if !h.initial_healthy => (
            MemberState::Unhealthy,
            "added via admin API; waiting for health checks",
        ),
        _ => (MemberState::Healthy, "added via admin API"),
    };
    let added = pool.apply(PoolCommand::Add {
        address: addr,
        weight,
        managed: false,
        state,
    });
    if let Ok(change) = added {
        change.record(&pool.name, EventKind::Added, why);
    }
    Ok(json_resp(StatusCode::CREATED, &member_of(&pool, addr)?))
}

/// Sets a member draining (no-op when it already is); returns its JSON.
fn drain(pool: &Pool, addr: SocketAddr, reason: &str) -> ApiResult<Backend> {
    member_of(pool, addr)?;
    use MemberState::*;
    let drain = PoolCommand::Transition {
        address: addr,
        from: vec![Starting, Healthy, Unhealthy, Ejected],
        to: Draining,
        reason: reason.to_string(),
    };
    // Refused when it already drains (or just left): nothing changed, no event.
    if let Ok(change) = pool.apply(drain) {
        change.record(&pool.name, EventKind::Draining, reason);
    }
    member_of(pool, addr)
}

/// `POST /api/v1/pools/{pool}/backends/{address}/drain`.
pub fn drain_backend(app: &dyn Drover, pool: &str, address: &str) -> ApiResult<Resp> {
    let pool = find_pool(app, pool)?;
    let addr = parse_addr(address)?;
    let m = drain(&pool, addr, "drained via admin API")?;
    Ok(json_resp(StatusCode::ACCEPTED, &m))
}

/// `DELETE /api/v1/pools/{pool}/backends/{address}`: drain now, remove in the background.
pub fn remove_backend(app: &dyn Drover, pool: &str, address: &str) -> ApiResult<Resp> {
    let pool = find_pool(app, pool)?;
    let addr = parse_addr(address)?;
    let m = drain(&pool, addr, "removal requested via admin API")?;
    let timeout = pool.snapshot().config.drain_timeout();
    tokio::spawn(finish_removal(pool, addr, timeout));
    let removal = Removal {
        member: m,
        removal: format!("once nothing is in flight, at most {timeout:?}"),
    };
    Ok(json_resp(StatusCode::ACCEPTED, &removal))
}

/// Removes the member once its in-flight count is 0 or `timeout` passed.
async fn finish_removal(pool: Arc<Pool>, addr: SocketAddr, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let snap = pool.snapshot_arc();
        let Some(i) = snap.position(addr) else {
            return; // already gone (a reload or another removal)
        };
        let stats = &snap.members[i].stats;
        let inflight = stats.load.inflight();
        let timed_out = Instant::now() >= deadline;
        // Sticky sessions keep coming to a draining member: wait until they stop too.
        let quiet = stats
            .sticky
            .quiet(crate::balance::slow_start::now(), crate::pool::STICKY_QUIET);
        if (inflight == 0 && quiet) || timed_out {
            if let Ok(change) = pool.apply(PoolCommand::Remove { address: addr }) {
                let why = if timed_out && inflight > 0 {
                    format!("drain timeout ({timeout:?}) passed with {inflight} in flight")
                } else {
                    "drained (nothing in flight); removed via admin API".to_string()
                };
                change.record(&pool.name, EventKind::Removed, why);
            }
            return;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// `PUT /api/v1/pools/{pool}/scale` `{"instances": N}`.
pub fn scale(app: &dyn Drover, pool: &str, body: &[u8]) -> ApiResult<Resp> {
    let pool = find_pool(app, pool)?;
    let v = body_json(body)?;
    let Some(n) = v
        .get("instances")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
    else {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "\"instances\" must be a whole number",
            json!("send {\"instances\": 3}"),
        ));
    };
    let cfg = pool.snapshot().config.clone();
    let control = app.scale_control();
    match scale::set_desired(&cfg, n, control.as_deref()) {
        // The controller records the `scale_set` event (once, with the count before).
        Ok(()) => {
            let scaled = Scaled {
                pool: pool.name.clone(),
                desired: n,
            };
            Ok(json_resp(StatusCode::ACCEPTED, &scaled))
        }
        Err(e) => {
            let status = match &e {
                ScaleError::NotManaged(_) => StatusCode::CONFLICT,
                ScaleError::OutOfRange { .. } => StatusCode::BAD_REQUEST,
                ScaleError::NoController(_) => StatusCode::SERVICE_UNAVAILABLE,
                ScaleError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let detail = match &e {
                ScaleError::OutOfRange { min, max, .. } => json!({"min": min, "max": max}),
                _ => Value::Null,
            };
            Err(fail(status, &e.to_string(), detail))
        }
    }
}

/// `GET /api/v1/events?since=ID&limit=N` (limit default and maximum 1000).
pub fn events(query: Option<&str>) -> ApiResult<Resp> {
    let num = |key: &str, default: u64| -> ApiResult<u64> {
        match super::routes::query_param(query, key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                fail(
                    StatusCode::BAD_REQUEST,
                    &format!("{key} must be a whole number"),
                    json!(v),
                )
            }),
        }
    };
    let since = num("since", 0)?;
    let limit = num("limit", 1000)?.clamp(1, 1000) as usize;
    Ok(json_resp(
        StatusCode::OK,
        &crate::events::log().since(since, limit),
    ))
}
