//! `drover ctl`: a client of the admin API with human tables (or `--json`).

mod autoscale;
pub mod client;
mod orphans;
mod table;

use std::io::Write;
use std::time::Duration;

use http::Method;
use serde_json::{json, Value};

use crate::admin::types::{
    AddBackend, AutoscaleView, Backend, PoolView, Reloaded, Removal, RouteView, ScaleTo, Scaled,
};
use crate::cli::{CtlArgs, CtlCommand};
use crate::events::Event;
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
    let out = &mut std::io::stdout().lock();
    let json = args.json;
    match args.command {
        CtlCommand::Status => status(&c, out, json).await,
        CtlCommand::Pools => pools(&c, out, json).await,
        CtlCommand::Routes => routes(&c, out, json).await,
        CtlCommand::Drain { pool, address } => {
            let path = format!(
                "/api/v1/pools/{}/backends/{}/drain",
                seg(&pool),
                seg(&address)
            );
            let v = c.call(Method::POST, &path, None).await?;
            say(out, json, &v, || {
                format!(
                    "{address} in pool {pool} is draining: no new requests; in-flight ones finish"
                )
            })
        }
        CtlCommand::Add {
            pool,
            address,
            weight,
        } => {
            let path = format!("/api/v1/pools/{}/backends", seg(&pool));
            let body = AddBackend {
                address: address.clone(),
                weight: Some(weight),
            };
            let v = c.call(Method::POST, &path, Some(to_value(&body)?)).await?;
            let added: Backend = typed(&v)?;
            say(out, json, &v, || {
                format!(
                    "added {address} to pool {pool} (weight {weight}, state {})",
                    added.state.as_str()
                )
            })
        }
        CtlCommand::Remove { pool, address } => {
            let path = format!("/api/v1/pools/{}/backends/{}", seg(&pool), seg(&address));
            let v = c.call(Method::DELETE, &path, None).await?;
            let r: Removal = typed(&v)?;
            say(out, json, &v, || {
                format!(
                    "removing {address} from pool {pool}: draining now, removed {}",
                    r.removal
                )
            })
        }
        CtlCommand::Scale { pool, instances } => {
            let path = format!("/api/v1/pools/{}/scale", seg(&pool));
            let body = to_value(&ScaleTo { instances })?;
            let v = c.call(Method::PUT, &path, Some(body)).await?;
            let s: Scaled = typed(&v)?;
            say(out, json, &v, || {
                format!("pool {pool}: desired instances set to {}", s.desired)
            })
        }
        CtlCommand::Orphans { remove, owner } => orphans::run(remove, owner.as_deref(), json).await,
        CtlCommand::Autoscale { pool } => {
            let path = format!("/api/v1/pools/{}/autoscale", seg(&pool));
            let v = c.call(Method::GET, &path, None).await?;
            let x: AutoscaleView = typed(&v)?;
            say(out, json, &v, || {
                autoscale::render(&x).trim_end().to_string()
            })
        }
        CtlCommand::Reload => {
            let v = c.call(Method::POST, "/api/v1/reload", None).await?;
            let _: Reloaded = typed(&v)?;
            say(out, json, &v, || "config reloaded".to_string())
        }
        CtlCommand::Events { follow, since } => events(&c, out, json, follow, since).await,
    }
}

/// An answer as the type the API documents, or an error naming what did not fit.
fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, CtlError> {
    T::deserialize(v).map_err(|e| {
        CtlError::Other(format!(
            "unexpected answer from drover ({e}); is it the same version as this drover ctl?"
        ))
    })
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, CtlError> {
    serde_json::to_value(v).map_err(|e| CtlError::Other(e.to_string()))
}

fn print_json(out: &mut dyn Write, v: &Value) {
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_default()
    );
}

/// The raw answer with `--json`, else the sentence.
fn say(
    out: &mut dyn Write,
    json: bool,
    v: &Value,
    line: impl FnOnce() -> String,
) -> Result<(), CtlError> {
    if json {
        print_json(out, v);
    } else {
        let _ = writeln!(out, "{}", line());
    }
    Ok(())
}

/// `drover ctl status`: readiness and one line per pool.
async fn status(c: &AdminClient, out: &mut dyn Write, json: bool) -> Result<(), CtlError> {
    let ready = match c.call(Method::GET, "/readyz", None).await {
        Ok(_) => true,
        Err(CtlError::Refused { status, .. }) if status.as_u16() == 503 => false,
        Err(e) => return Err(e),
    };
    let v = c.call(Method::GET, "/api/v1/pools", None).await?;
    if json {
        print_json(out, &json!({"admin": c.base(), "ready": ready, "pools": v}));
        return Ok(());
    }
    let pools: Vec<PoolView> = typed(&v)?;
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
    for p in &pools {
        let sum = |f: fn(&Backend) -> u64| p.backends.iter().map(f).sum::<u64>();
        t.row(vec![
            p.name.clone(),
            p.balance.clone(),
            p.desired.to_string(),
            p.ready.to_string(),
            p.backends.len().to_string(),
            sum(|m| m.inflight).to_string(),
            sum(|m| m.requests).to_string(),
        ]);
    }
    let _ = write!(out, "{t}");
    Ok(())
}

/// `drover ctl pools`: every member of every pool.
async fn pools(c: &AdminClient, out: &mut dyn Write, json: bool) -> Result<(), CtlError> {
    let v = c.call(Method::GET, "/api/v1/pools", None).await?;
    if json {
        print_json(out, &v);
        return Ok(());
    }
    let pools: Vec<PoolView> = typed(&v)?;
    for (i, p) in pools.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(out);
        }
        let _ = writeln!(
            out,
            "pool {}  balance {}  desired {}  ready {}  retries {}",
            p.name, p.balance, p.desired, p.ready, p.retries
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
        for m in &p.backends {
            let managed = if m.managed { " (managed)" } else { "" };
            t.row(vec![
                format!("{}{managed}", m.address),
                m.state.as_str().to_string(),
                m.inflight.to_string(),
                m.requests.to_string(),
                m.failures.to_string(),
                format!("{:.1}", m.ewma_ms),
                m.weight.to_string(),
                or_dash(&m.reason),
            ]);
        }
        let _ = write!(out, "{t}");
    }
    Ok(())
}

/// `drover ctl routes`: the routes in match order.
async fn routes(c: &AdminClient, out: &mut dyn Write, json: bool) -> Result<(), CtlError> {
    let v = c.call(Method::GET, "/api/v1/routes", None).await?;
    if json {
        print_json(out, &v);
        return Ok(());
    }
    let routes: Vec<RouteView> = typed(&v)?;
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
    for r in &routes {
        let or_any = |v: &Option<String>| v.as_deref().map_or("*".to_string(), or_dash);
        let pool = match (&r.pool, r.redirect) {
            (None, None) => "-".to_string(),
            (None, Some(status)) => format!("redirect {status}"),
            (Some(p), _) => or_dash(p),
        };
        let limit = r.rate_limit.as_ref().map_or("-".to_string(), |l| {
            format!(
                "{}/{}ms burst {} by {}",
                l.requests, l.per_ms, l.burst, l.key
            )
        });
        t.row(vec![
            or_dash(&r.name),
            or_any(&r.host),
            or_any(&r.path_prefix),
            if r.methods.is_empty() {
                "*".into()
            } else {
                r.methods.join(",")
            },
            pool,
            limit,
            r.rate_limited.to_string(),
            r.tracked_keys.to_string(),
        ]);
    }
    let _ = write!(out, "{t}");
    Ok(())
}

/// `drover ctl events [--follow] [--since ID]`.
async fn events(
    c: &AdminClient,
    out: &mut dyn Write,
    json: bool,
    follow: bool,
    mut since: u64,
) -> Result<(), CtlError> {
    let mut first = true;
    loop {
        let v = c
            .call(Method::GET, &format!("/api/v1/events?since={since}"), None)
            .await?;
        let events: Vec<Event> = typed(&v)?;
        since = events.iter().map(|e| e.id).max().unwrap_or(since);
        if json && follow {
            for e in v.as_array().into_iter().flatten() {
                let _ = writeln!(out, "{e}");
            }
        } else if json {
            print_json(out, &v);
        } else if !events.is_empty() || first {
            let mut t = Table::new(&["ID", "TIME", "POOL", "KIND", "BACKEND", "REASON"]);
            if !first {
                t.no_header();
            }
            for e in &events {
                t.row(vec![
                    e.id.to_string(),
                    or_dash(&e.ts),
                    or_dash(&e.pool),
                    e.kind.to_string(),
                    e.backend.as_deref().map_or("-".to_string(), or_dash),
                    or_dash(&e.reason),
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
            return Ok(());
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

/// Table text: an empty string as `-`.
fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
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
