//! JSON views of pools and members for the admin API.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use crate::pool::{Pool, PoolSnapshot};

/// Member `i` of `snap` as `GET /api/v1/pools` shows it.
pub fn member_json(snap: &PoolSnapshot, i: usize) -> Value {
    let Some(m) = snap.members.get(i) else {
        return Value::Null;
    };
    json!({
        "address": m.address.to_string(),
        "state": m.state.as_str(),
        "reason": m.reason,
        "inflight": m.stats.load.inflight(),
        "requests": m.stats.requests.load(Ordering::Relaxed),
        "failures": m.stats.failures.load(Ordering::Relaxed),
        "consecutive_failures": m.stats.consecutive_failures.load(Ordering::Relaxed),
        "last_check": m.stats.last_check().map(|c| json!({
            "result": if c.pass { "pass" } else { "fail" },
            "detail": c.detail,
            "at": crate::access_log::rfc3339(c.at),
        })),
        "consecutive_check_failures": m.stats.check_failures.load(Ordering::Relaxed),
        "ejections": m.stats.ejections.load(Ordering::Relaxed),
        "ewma_ms": (m.stats.load.ewma_ms() * 1000.0).round() / 1000.0,
        "weight": m.weight,
        // Weight now: lower during slow start, 0 while the member takes no requests.
        "effective_weight": (snap.effective_weight_now(i) * 1000.0).round() / 1000.0,
        "sticky_sessions": m.stats.sticky.recent(crate::balance::slow_start::now()),
        "managed": m.managed,
    })
}

/// One pool as `GET /api/v1/pools/{pool}` shows it.
pub fn pool_json(pool: &Pool) -> Value {
    let snap = pool.snapshot();
    let members: Vec<Value> = (0..snap.members.len())
        .map(|i| member_json(&snap, i))
        .collect();
    let desired = match snap.config.instances {
        Some(_) => pool.desired.load(std::sync::atomic::Ordering::Relaxed),
        None => snap.members.len() as u32,
    };
    let managed = snap.members.iter().filter(|m| m.managed).count();
    json!({
        "name": pool.name,
        "balance": snap.config.balance.as_str(),
        "desired": desired,
        "instances": managed,
        "retries": pool.metrics.retries.load(Ordering::Relaxed),
        "queued": pool.queue.waiting(),
        "backends": members,
    })
}
