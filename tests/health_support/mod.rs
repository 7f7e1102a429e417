//! Helpers for the fault-tolerance tests: admin API reads and polling.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, get_json, get_text, wait_until, Drover};

/// `[pools.app.health]` with fast checks: `interval`, `rise`, `fall`.
pub fn fast_health(interval_ms: u64, rise: u32, fall: u32) -> String {
    format!(
        "[pools.app.health]\npath = \"/health\"\ninterval = \"{interval_ms}ms\"\ntimeout = \"{interval_ms}ms\"\nrise = {rise}\nfall = {fall}\n"
    )
}

/// The member `addr` of pool `app` as the admin API shows it.
pub async fn member(d: &Drover, addr: SocketAddr) -> Value {
    let v = common::pool_json(d, "app").await;
    v["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["address"] == addr.to_string())
        .cloned()
        .unwrap_or_else(|| panic!("no member {addr} in {v}"))
}

/// The states of every member of pool `app`.
pub async fn states(d: &Drover) -> Vec<String> {
    let v = common::pool_json(d, "app").await;
    v["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap().to_string())
        .collect()
}

/// Polls until member `addr` is in `state`; returns how long that took. Panics after `limit`.
pub async fn wait_state(d: &Drover, addr: SocketAddr, state: &str, limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let m = member(d, addr).await;
        if m["state"] == state {
            return t0.elapsed();
        }
        if t0.elapsed() > limit {
            panic!("{addr} not {state} within {limit:?}: {m}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Events of pool `app` (kind, backend, reason).
pub async fn events(d: &Drover) -> Vec<(String, String, String)> {
    let v: Value = get_json(&d.admin_url("/api/v1/events?since=0")).await;
    let list = v
        .as_array()
        .cloned()
        .or_else(|| v["events"].as_array().cloned())
        .unwrap();
    list.iter()
        .filter(|e| e["pool"] == "app")
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or("").to_string(),
                e["backend"].as_str().unwrap_or("").to_string(),
                e["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// A metric's value from `/metrics` (the line starting with `series`).
pub async fn metric(d: &Drover, series: &str) -> f64 {
    let text = get_text(&d.admin_url("/metrics")).await;
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// Requests a `drover backend` served (its `/admin/stats`), asked directly.
pub async fn served(addr: SocketAddr) -> u64 {
    let v: Value = get_json(&format!("http://{addr}/admin/stats")).await;
    v["requests"].as_u64().unwrap()
}

/// An address nothing listens on.
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Waits (up to 10 s) until no member of pool `app` has a request in flight.
pub async fn wait_no_inflight(d: &Drover) {
    wait_until("in-flight back to 0", 10, async || {
        let p = common::pool_json(d, "app").await;
        p["backends"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["inflight"] == 0)
    })
    .await;
}
