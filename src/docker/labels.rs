//! `provider = "docker_labels"`: containers started by someone else
//! (docker-compose, `docker run`) that carry `drover.pool=<pool>` and
//! `drover.port=<port>` join that pool while they run and leave when they stop.
//!
//! The member address is the container port's published binding on the host
//! (`-p 127.0.0.1::8080` → `127.0.0.1:<host port>`; a `0.0.0.0` binding is
//! dialled on 127.0.0.1), else the container's IP on its first network.
//! Changes are picked up from the engine's events stream at once, with a full
//! re-list every [`RESYNC`] as a safety net. drover never starts or stops these
//! containers.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bollard::models::ContainerSummary;
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;

use crate::config::ProviderKind;
use crate::pool::{MemberState, Pool, PoolCommand};
use crate::proxy::router::Router;

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

/// Makes the pool's dynamic members equal to `want`: adds new ones, removes gone ones.
fn reconcile(pool: &Pool, want: &BTreeMap<SocketAddr, String>) {
    let snap = pool.snapshot_arc();
    let initial = if snap.config.health.is_some() {
        MemberState::Starting
    } else {
        MemberState::Healthy
    };
    for m in snap.members.iter().filter(|m| m.managed) {
        if !want.contains_key(&m.address)
            && pool
                .apply(PoolCommand::Remove { address: m.address })
                .is_ok()
        {
            crate::events::record(
                &pool.name,
                "removed",
                Some(m.address.to_string()),
                "labelled container stopped",
            );
        }
    }
    for (addr, id) in want {
        if snap.position(*addr).is_none() {
            let add = PoolCommand::Add {
                address: *addr,
                weight: 1,
                managed: true,
                state: initial,
            };
            if pool.apply(add).is_ok() {
                crate::events::record(
                    &pool.name,
                    "added",
                    Some(addr.to_string()),
                    format!("labelled container {id} is running"),
                );
            }
        }
    }
}

/// Watches the engine for one pool until the pool is dropped.
async fn watch(pool: Weak<Pool>) {
    let mut backoff = Duration::from_secs(1);
    let name = match pool.upgrade() {
        Some(p) => p.name.clone(),
        None => return,
    };
    let mut reported = false;
    loop {
        let docker = match super::connect().await {
            Ok(d) => d,
            Err(why) => {
                if !reported {
                    crate::events::record(&name, "discovery_error", None, why);
                    reported = true;
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
            let Some(p) = pool.upgrade() else { return };
            // Read at each re-list: a reload may change the owner.
            let owner = p
                .snapshot()
                .config
                .instances
                .as_ref()
                .and_then(|i| i.owner.clone());
            match running(&docker, &name, owner.as_deref()).await {
                Ok(want) => {
                    reconcile(&p, &want);
                    backoff = Duration::from_secs(1);
                    reported = false;
                }
                Err(e) => {
                    tracing::warn!(pool = %name, error = %e, "listing labelled containers failed");
                    break;
                }
            }
            drop(p);
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

/// A pool's discovery task and the pool it serves.
type Watcher = (Weak<Pool>, tokio::task::JoinHandle<()>);

/// Starts and stops the discovery tasks as pools with `provider = "docker_labels"` come and go.
#[derive(Default)]
pub struct Discovery {
    tasks: std::sync::Mutex<HashMap<String, Watcher>>,
}

impl Discovery {
    /// Aligns the running tasks with the router's pools (call at start and after each reload).
    pub fn sync(&self, router: &Router) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        let wanted: HashMap<&String, &Arc<Pool>> = router
            .pools
            .iter()
            .filter(|(_, p)| {
                p.snapshot().config.instances.as_ref().map(|i| i.provider)
                    == Some(ProviderKind::DockerLabels)
            })
            .collect();
        tasks.retain(|name, (weak, handle)| {
            let keep = wanted
                .get(name)
                .is_some_and(|p| Weak::ptr_eq(weak, &Arc::downgrade(p)));
            if !keep {
                handle.abort();
            }
            keep
        });
        for (name, pool) in wanted {
            if !tasks.contains_key(name) {
                let weak = Arc::downgrade(pool);
                tasks.insert(name.clone(), (weak.clone(), tokio::spawn(watch(weak))));
            }
        }
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
