//! `provider = "docker_labels"`: containers started by someone else
//! (docker-compose, `docker run`) that carry `drover.pool=<pool>` and
//! `drover.port=<port>` join that pool while they run and leave when they stop.
//!
//! The member address is the container port's published binding on the host
//! (`-p 127.0.0.1::8080` → `127.0.0.1:<host port>`; a `0.0.0.0` binding is
//! dialled on 127.0.0.1), else the container's IP on its first network.
//! Changes are picked up from the engine's events stream at once, with a full
//! re-list every [`RESYNC`] as a safety net. drover never starts or stops these
//! containers: a stopped one drains and leaves (`crate::discovery::Sink`).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bollard::models::ContainerSummary;
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use bollard::Docker;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;

use crate::discovery::{Discovery, Found, MemberSet, Sink};

/// Full re-list interval besides the events stream. Default 10 s.
pub const RESYNC: Duration = Duration::from_secs(10);
/// Longest wait between reconnection attempts. Default 30 s.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The label naming the pool.
pub const POOL_LABEL: &str = "drover.pool";
/// The label naming the container port to dial.
pub const PORT_LABEL: &str = "drover.port";
/// The label a container must carry, with the pool's `owner` as its value, when `owner` is set.
pub const OWNER_LABEL: &str = "drover.owner";

/// The engine's `label` filter values a container must all match to join `pool`:
/// `drover.pool=<pool>`, and `drover.owner=<owner>` when the pool names an owner.
pub fn label_filters(pool: &str, owner: Option<&str>) -> Vec<String> {
    let mut f = vec![format!("{POOL_LABEL}={pool}")];
    f.extend(owner.map(|o| format!("{OWNER_LABEL}={o}")));
    f
}

/// A labelled container's member address, or why it has none.
pub fn member_address(c: &ContainerSummary) -> Result<SocketAddr, String> {
    let labels = c.labels.clone().unwrap_or_default();
    let port: u16 = labels
        .get(PORT_LABEL)
        .ok_or_else(|| format!("label {PORT_LABEL} is missing"))?
        .parse()
        .map_err(|_| format!("label {PORT_LABEL} is not a port number"))?;
    let published = c.ports.iter().flatten().find(|p| {
        p.private_port == port
            && p.public_port.is_some()
            && p.ip.as_deref().is_none_or(|ip| !ip.contains(':'))
    });
    if let Some(p) = published {
        let ip = match p.ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()) {
            Some(ip) if !ip.is_unspecified() => ip,
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        return Ok(SocketAddr::new(ip, p.public_port.unwrap_or(port)));
    }
    let ip = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .and_then(|nets| {
            let mut nets: Vec<_> = nets.iter().collect();
            nets.sort_by(|a, b| a.0.cmp(b.0));
            nets.into_iter().find_map(|(_, e)| {
                e.ip_address
                    .as_deref()
                    .filter(|ip| !ip.is_empty())
                    .and_then(|ip| ip.parse().ok())
            })
        })
        .ok_or_else(|| {
            format!("port {port} is not published and the container has no network address")
        })?;
    Ok(SocketAddr::new(ip, port))
}

/// Running containers labelled for `pool` (and its `owner`), by address (with a short id for logs).
async fn running(
    docker: &Docker,
    pool: &str,
    owner: Option<&str>,
) -> Result<BTreeMap<SocketAddr, String>, bollard::errors::Error> {
    let filters: HashMap<&str, Vec<String>> = HashMap::from([
        ("label", label_filters(pool, owner)),
        ("status", vec!["running".to_string()]),
    ]);
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await?;
    let mut out = BTreeMap::new();
    for c in list {
        let id: String = c.id.clone().unwrap_or_default().chars().take(12).collect();
        match member_address(&c) {
            Ok(addr) => {
                out.insert(addr, id);
            }
            Err(why) => {
                tracing::warn!(pool, container = %id, reason = %why, "labelled container ignored")
            }
        }
    }
    Ok(out)
}

/// `provider = "docker_labels"` as a [`Discovery`].
pub struct Labels;

impl Discovery for Labels {
    fn kind(&self) -> &'static str {
        "docker_labels"
    }

    fn watch(self: Arc<Self>, out: Sink) -> BoxFuture<'static, ()> {
        Box::pin(watch(out))
    }
}

/// Watches the engine for one pool until the pool is dropped.
async fn watch(out: Sink) {
    let mut backoff = Duration::from_secs(1);
    let name = out.pool_name().to_string();
    loop {
        let docker = match super::connect().await {
            Ok(d) => d,
            Err(why) => {
                out.failed(&why);
                if out.config().is_none() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let filters: HashMap<&str, Vec<String>> = HashMap::from([
            ("type", vec!["container".to_string()]),
            ("label", vec![format!("{POOL_LABEL}={name}")]),
        ]);
        let mut events = docker.events(Some(
            EventsOptionsBuilder::default().filters(&filters).build(),
        ));
        // Subscribe first, then list, so nothing between the two is missed.
        // Events are filtered by pool only: an event about a container of another
        // owner costs one re-list, which ignores it.
        loop {
            // Read at each re-list: a reload may change the owner.
            let Some(cfg) = out.config() else { return };
            let owner = cfg.instances.as_ref().and_then(|i| i.owner.clone());
            match running(&docker, &name, owner.as_deref()).await {
                Ok(want) => {
                    let found: MemberSet = want
                        .into_iter()
                        .map(|(addr, id)| {
                            let origin = format!("labelled container {id} is running");
                            (addr, Found { weight: 1, origin })
                        })
                        .collect();
                    out.set(&found, "labelled container stopped");
                    backoff = Duration::from_secs(1);
                }
                Err(e) => {
                    tracing::warn!(pool = %name, error = %e, "listing labelled containers failed");
                    out.failed(&format!("listing labelled containers failed: {e}"));
                    break;
                }
            }
            match tokio::time::timeout(RESYNC, events.next()).await {
                Err(_) => continue,               // periodic re-list
                Ok(Some(Ok(_event))) => continue, // something changed: re-list
                Ok(Some(Err(e))) => {
                    tracing::warn!(pool = %name, error = %e, "docker events stream failed");
                    break;
                }
                Ok(None) => break,
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_adds_a_second_required_label() {
        assert_eq!(label_filters("web", None), vec!["drover.pool=web"]);
        assert_eq!(
            label_filters("web", Some("team-a")),
            vec!["drover.pool=web", "drover.owner=team-a"]
        );
    }
}
