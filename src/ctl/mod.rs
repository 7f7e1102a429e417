//! `drover ctl`: a client of the admin API with human tables (or `--json`).

mod autoscale;
pub mod client;
mod orphans;
mod table;

use std::io::Write;
use std::time::Duration;

use http::Method;
use serde_json::{json, Value};

use crate::cli::{CtlArgs, CtlCommand};
use client::{AdminClient, CtlError};
use table::Table;

/// How often `events --follow` polls. 1 s.
pub const FOLLOW_POLL: Duration = Duration::from_secs(1);

/// `/` and other unsafe characters in an address path segment, percent-encoded.
fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs one ctl command, printing to stdout; errors are for stderr (exit 1).
pub async fn run(args: CtlArgs) -> Result<(), CtlError> {
    let c = AdminClient::new(&args.admin, args.token.clone())?;
    let mut out = std::io::stdout().lock();
    let json = args.json;
    let print_json = |out: &mut dyn Write, v: &Value| {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(v).unwrap_or_default()
        );
    };
    match args.command {
        CtlCommand::Status => {
            let ready = match c.call(Method::GET, "/readyz", None).await {
                Ok(_) => true,
                Err(CtlError::Refused { status, .. }) if status.as_u16() == 503 => false,
                Err(e) => return Err(e),
            };
            let pools = c.call(Method::GET, "/api/v1/pools", None).await?;
            if json {
                print_json(
                    &mut out,
                    &json!({"admin": c.base(), "ready": ready, "pools": pools}),
                );
                return Ok(());
            }
            let _ = writeln!(
                out,
                "drover at {}: {}",
                c.base(),
                if ready { "ready" } else { "not ready" }
            );
            let mut t = Table::new(&[
                "POOL",
                "BALANCE",
                "DESIRED",
                "READY",
                "MEMBERS",
                "IN FLIGHT",
                "REQUESTS",
            ]);
            for p in pools.as_array().into_iter().flatten() {
                let members = p["backends"].as_array().cloned().unwrap_or_default();
                let sum = |k: &str| members.iter().filter_map(|m| m[k].as_u64()).sum::<u64>();
                t.row(vec![
                    text(&p["name"]),
                    text(&p["balance"]),
                    text(&p["desired"]),
                    text(&p["ready"]),
                    members.len().to_string(),
                    sum("inflight").to_string(),
                    sum("requests").to_string(),
                ]);
            }
            let _ = write!(out, "{t}");
        }
        CtlCommand::Pools => {
            let pools = c.call(Method::GET, "/api/v1/pools", None).await?;
            if json {
                print_json(&mut out, &pools);
                return Ok(());
            }
            for (i, p) in pools.as_array().into_iter().flatten().enumerate() {
                if i > 0 {
                    let _ = writeln!(out);
                }
                let _ = writeln!(
                    out,
                    "pool {}  balance {}  desired {}  ready {}  retries {}",
                    text(&p["name"]),
                    text(&p["balance"]),
                    text(&p["desired"]),
                    text(&p["ready"]),
                    text(&p["retries"])
                );
                let mut t = Table::new(&[
                    "BACKEND",
                    "STATE",
                    "IN FLIGHT",
                    "REQUESTS",
                    "FAILURES",
                    "EWMA MS",
                    "WEIGHT",
                    "REASON",
                ]);
                for m in p["backends"].as_array().into_iter().flatten() {
                    let managed = if m["managed"] == true {
                        " (managed)"
                    } else {
                        ""
                    };
                    t.row(vec![
                        format!("{}{managed}", text(&m["address"])),
                        text(&m["state"]),
                        text(&m["inflight"]),
                        text(&m["requests"]),
                        text(&m["failures"]),
                        format!("{:.1}", m["ewma_ms"].as_f64().unwrap_or(0.0)),
                        text(&m["weight"]),
                        text(&m["reason"]),
                    ]);
                }
                let _ = write!(out, "{t}");
            }
        }
        CtlCommand::Routes => {
            let routes = c.call(Method::GET, "/api/v1/routes", None).await?;
            if json {
                print_json(&mut out, &routes);
                return Ok(());
            }
            let mut t = Table::new(&[
                "NAME",
                "HOST",
                "PATH",
                "METHODS",
                "POOL",
                "RATE LIMIT",
                "LIMITED",
                "KEYS",
            ]);
            for r in routes.as_array().into_iter().flatten() {
                let or_any = |v: &Value| {
                    if v.is_null() {
                        "*".to_string()
                    } else {
                        text(v)
                    }
                };
                let methods: Vec<String> = r["methods"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                let pool = match (&r["pool"], &r["redirect"]) {
                    (Value::Null, Value::Null) => "-".to_string(),
                    (Value::Null, status) => format!("redirect {}", text(status)),
                    (p, _) => text(p),
                };
                let l = &r["rate_limit"];
                let limit = if l.is_null() {
                    "-".to_string()
                } else {
                    format!(
                        "{}/{}ms burst {} by {}",
                        text(&l["requests"]),
                        text(&l["per_ms"]),
                        text(&l["burst"]),
                        text(&l["key"])
                    )
                };
                t.row(vec![
                    text(&r["name"]),
                    or_any(&r["host"]),
                    or_any(&r["path_prefix"]),
                    if methods.is_empty() {
                        "*".into()
                    } else {
                        methods.join(",")
                    },
                    pool,
                    limit,
                    text(&r["rate_limited"]),
                    text(&r["tracked_keys"]),
                ]);
            }
            let _ = write!(out, "{t}");
        }
        CtlCommand::Drain { pool, address } => {
            let path = format!(
                "/api/v1/pools/{}/backends/{}/drain",
                seg(&pool),
                seg(&address)
            );
            let v = c.call(Method::POST, &path, None).await?;
            if json {
                print_json(&mut out, &v);
            } else {
                let _ = writeln!(
                    out,
                    "{address} in pool {pool} is draining: no new requests; in-flight ones finish"
                );
            }
        }
        CtlCommand::Add {
            pool,
            address,
            weight,
        } => {
            let path = format!("/api/v1/pools/{}/backends", seg(&pool));
            let v = c
                .call(
                    Method::POST,
                    &path,
                    Some(json!({"address": address, "weight": weight})),
                )
                .await?;
            if json {
                print_json(&mut out, &v);
            } else {
                let _ = writeln!(
                    out,
                    "added {address} to pool {pool} (weight {weight}, state {})",
                    text(&v["state"])
                );
            }
        }
        CtlCommand::Remove { pool, address } => {
            let path = format!("/api/v1/pools/{}/backends/{}", seg(&pool), seg(&address));
            let v = c.call(Method::DELETE, &path, None).await?;
            if json {
                print_json(&mut out, &v);
            } else {
                let _ = writeln!(
                    out,
                    "removing {address} from pool {pool}: draining now, removed {}",
                    text(&v["removal"])
                );
            }
        }
        CtlCommand::Scale { pool, instances } => {
            let path = format!("/api/v1/pools/{}/scale", seg(&pool));
            let v = c
                .call(Method::PUT, &path, Some(json!({"instances": instances})))
                .await?;
            if json {
                print_json(&mut out, &v);
            } else {
                let _ = writeln!(out, "pool {pool}: desired instances set to {instances}");
            }
        }
        CtlCommand::Orphans { remove, owner } => {
            return orphans::run(remove, owner.as_deref(), json).await;
        }
        CtlCommand::Autoscale { pool } => {
            let path = format!("/api/v1/pools/{}/autoscale", seg(&pool));
            let v = c.call(Method::GET, &path, None).await?;
            if json {
                print_json(&mut out, &v);
            } else {
                let _ = write!(out, "{}", autoscale::render(&v));
            }
        }
        CtlCommand::Reload => {
            let v = c.call(Method::POST, "/api/v1/reload", None).await?;
            if json {
                print_json(&mut out, &v);
            } else {
                let _ = writeln!(out, "config reloaded");
            }
        }
        CtlCommand::Events { follow, since } => {
            let mut since = since;
            let mut first = true;
            loop {
                let v = c
                    .call(Method::GET, &format!("/api/v1/events?since={since}"), None)
                    .await?;
                let events = v.as_array().cloned().unwrap_or_default();
                since = events
                    .iter()
                    .filter_map(|e| e["id"].as_u64())
                    .max()
                    .unwrap_or(since);
                if json && follow {
                    for e in &events {
                        let _ = writeln!(out, "{e}");
                    }
                } else if json {
                    print_json(&mut out, &v);
                } else if !events.is_empty() || first {
                    let mut t = Table::new(&["ID", "TIME", "POOL", "KIND", "BACKEND", "REASON"]);
                    if !first {
                        t.no_header();
                    }
                    for e in &events {
                        t.row(vec![
                            text(&e["id"]),
                            text(&e["ts"]),
                            text(&e["pool"]),
                            text(&e["kind"]),
                            text(&e["backend"]),
                            text(&e["reason"]),
                        ]);
                    }
                    if events.is_empty() && !follow {
                        let _ = writeln!(out, "no events");
                    } else if !events.is_empty() {
                        let _ = write!(out, "{t}");
                    }
                }
                let _ = out.flush();
                first = false;
                if !follow {
                    break;
                }
                tokio::time::sleep(FOLLOW_POLL).await;
            }
        }
    }
    Ok(())
}

/// A JSON value as table text (`null` -> `-`, strings without quotes).
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(super::seg("127.0.0.1:80"), "127.0.0.1:80");
        assert_eq!(super::seg("[::1]:80"), "%5B::1%5D:80");
        assert_eq!(super::seg("a/b c"), "a%2Fb%20c");
    }
}
