//! `provider = "swarm"`: an existing Docker Swarm service whose `replicas`
//! drover sets. Its tasks publish their port in `mode=host` (no fixed published
//! port), so each task has its own port on its node; drover routes to every
//! task directly (its own health checks, balancing and draining), not through
//! the routing mesh.
//!
//! Scale-down ordering: Swarm decides which task a lower `replicas` removes, but
//! it prefers slots whose task is not running. So drover drains the task it
//! chose, stops that task's container, and only then lowers `replicas`: Swarm
//! then removes exactly that slot instead of restarting it (its restart delay,
//! 5 s by default, leaves ample time). On a multi-node cluster drover stops the
//! container through the engine it talks to, so it must be a manager whose node
//! runs the task, or the images must allow Swarm to reschedule — see README.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::{
    InspectServiceOptions, ListTasksOptionsBuilder, UpdateServiceOptionsBuilder,
};
use bollard::Docker;
use futures_util::future::BoxFuture;
use tokio::sync::{oneshot, OnceCell};

use super::containers::short;
use crate::instances::{Instance, Provider, Started};

/// How often task state is polled. Default 500 ms.
pub const POLL: Duration = Duration::from_millis(500);

/// A running task: id, address, container id.
#[derive(Debug, Clone)]
struct TaskInfo {
    id: String,
    address: SocketAddr,
    container: Option<String>,
}

/// Sets the replicas of one Swarm service and routes to its tasks.
pub struct SwarmProvider {
    pool: String,
    service: String,
    docker: OnceCell<Docker>,
    running: Arc<Mutex<HashMap<String, TaskInfo>>>,
    /// Serialises replica changes (each needs the service's current version).
    scaling: tokio::sync::Mutex<()>,
}

impl SwarmProvider {
    pub fn new(pool: &str, service: &str) -> SwarmProvider {
        SwarmProvider {
            pool: pool.to_string(),
            service: service.to_string(),
            docker: OnceCell::new(),
            running: Arc::default(),
            scaling: tokio::sync::Mutex::new(()),
        }
    }

    async fn docker(&self) -> Result<&Docker, String> {
        self.docker.get_or_try_init(super::connect).await
    }

    /// Changes `replicas` by `delta` (with the service's version index).
    async fn add_replicas(&self, docker: &Docker, delta: i64) -> Result<i64, String> {
        let svc = docker
            .inspect_service(&self.service, None::<InspectServiceOptions>)
            .await
            .map_err(|e| format!("swarm service {:?}: {e}", self.service))?;
        let version = svc
            .version
            .and_then(|v| v.index)
            .ok_or("service has no version")?;
        let mut spec = svc.spec.ok_or("service has no spec")?;
        let mode = spec.mode.get_or_insert_with(Default::default);
        let rep = mode.replicated.as_mut().ok_or_else(|| {
            format!(
                "swarm service {:?} is not a replicated service",
                self.service
            )
        })?;
        let n = (rep.replicas.unwrap_or(0) + delta).max(0);
        rep.replicas = Some(n);
        let opts = UpdateServiceOptionsBuilder::default()
            .version(version as i32)
            .build();
        docker
            .update_service(&self.service, spec, opts, None)
            .await
            .map_err(|e| format!("updating swarm service {:?} failed: {e}", self.service))?;
        Ok(n)
    }

    /// Running tasks of the service with their host-mode addresses.
    async fn tasks(&self, docker: &Docker) -> Result<Vec<TaskInfo>, String> {
        let filters: HashMap<&str, Vec<String>> = HashMap::from([
            ("service", vec![self.service.clone()]),
            ("desired-state", vec!["running".to_string()]),
        ]);
        let list = docker
            .list_tasks(Some(
                ListTasksOptionsBuilder::default().filters(&filters).build(),
            ))
            .await
            .map_err(|e| format!("listing tasks of {:?} failed: {e}", self.service))?;
        let mut out = Vec::new();
        for t in list {
            let Some(status) = t.status else { continue };
            if status.state.map(|s| s.to_string()) != Some("running".to_string()) {
                continue;
            }
            let Some(port) = status
                .port_status
                .and_then(|p| p.ports)
                .unwrap_or_default()
                .into_iter()
                .find_map(|p| p.published_port)
            else {
                continue;
            };
            let node_ip = match t.node_id.as_deref() {
                Some(node) => docker
                    .inspect_node(node)
                    .await
                    .ok()
                    .and_then(|n| n.status)
                    .and_then(|s| s.addr)
                    .and_then(|a| a.parse::<IpAddr>().ok())
                    .filter(|ip| !ip.is_unspecified())
                    .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                None => continue,
            };
            out.push(TaskInfo {
                id: t.id.unwrap_or_default(),
                address: SocketAddr::new(node_ip, port as u16),
                container: status.container_status.and_then(|c| c.container_id),
            });
        }
        Ok(out)
    }

    fn track(&self, docker: Docker, task: TaskInfo) -> Started {
        self.running.lock().insert(task.id.clone(), task.clone());
        let (tx, exited) = oneshot::channel();
        let running = self.running.clone();
        let service = self.service.clone();
        let me = SwarmProvider::new(&self.pool, &service);
        let id = task.id.clone();
        tokio::spawn(async move {
            let _ = me.docker.set(docker.clone());
            let why = loop {
                tokio::time::sleep(POLL).await;
                match me.tasks(&docker).await {
                    Ok(list) if list.iter().any(|t| t.id == id) => continue,
                    Ok(_) => break format!("swarm task {} is no longer running", short(&id)),
                    Err(e) => break e,
                }
            };
            running.lock().remove(&id);
            let _ = tx.send(why);
        });
        Started {
            instance: Instance {
                id: task.id,
                address: task.address,
            },
            exited,
        }
    }
}

impl Provider for SwarmProvider {
    fn start(&self) -> BoxFuture<'_, Result<Started, String>> {
        Box::pin(async move {
            let docker = self.docker().await?.clone();
            let _g = self.scaling.lock().await;
            let known: Vec<String> = self.running.lock().keys().cloned().collect();
            // Take over a running task we do not track yet before adding one.
            let spare = self
                .tasks(&docker)
                .await?
                .into_iter()
                .find(|t| !known.contains(&t.id));
            if let Some(t) = spare {
                return Ok(self.track(docker, t));
            }
            self.add_replicas(&docker, 1).await?;
            for _ in 0..120 {
                tokio::time::sleep(POLL).await;
                if let Some(t) = self
                    .tasks(&docker)
                    .await?
                    .into_iter()
                    .find(|t| !known.contains(&t.id))
                {
                    return Ok(self.track(docker, t));
                }
            }
            Err(format!(
                "swarm service {:?}: no new task was running within 60 s",
                self.service
            ))
        })
    }

    fn stop(&self, id: &str, timeout: Duration) -> BoxFuture<'_, ()> {
        let id = id.to_string();
        Box::pin(async move {
            let Ok(docker) = self.docker().await.cloned() else {
                return;
            };
            let _g = self.scaling.lock().await;
            let task = self.running.lock().get(&id).cloned();
            if let Some(c) = task.and_then(|t| t.container) {
                // Not running any more: Swarm removes this slot when replicas drop.
                let t = timeout.as_secs().min(i32::MAX as u64) as i32;
                let _ = docker
                    .stop_container(
                        &c,
                        Some(
                            bollard::query_parameters::StopContainerOptionsBuilder::default()
                                .t(t)
                                .build(),
                        ),
                    )
                    .await;
            }
            if let Err(e) = self.add_replicas(&docker, -1).await {
                tracing::warn!(pool = %self.pool, error = %e, "lowering swarm replicas failed");
            }
            self.running.lock().remove(&id);
        })
    }

    fn list(&self) -> Vec<Instance> {
        let r = self.running.lock();
        r.values()
            .map(|t| Instance {
                id: t.id.clone(),
                address: t.address,
            })
            .collect()
    }

    fn scale(&self) -> BoxFuture<'_, Option<u32>> {
        Box::pin(async move {
            let docker = self.docker().await.ok()?;
            let svc = docker
                .inspect_service(&self.service, None::<InspectServiceOptions>)
                .await
                .ok()?;
            let replicas = svc.spec?.mode?.replicated?.replicas?;
            u32::try_from(replicas.max(0)).ok()
        })
    }

    fn adopt(&self) -> BoxFuture<'_, Vec<Started>> {
        Box::pin(async move {
            let docker = match self.docker().await {
                Ok(d) => d.clone(),
                Err(why) => {
                    crate::events::record(
                        &self.pool,
                        crate::events::EventKind::InstanceFailed,
                        None,
                        why,
                    );
                    return Vec::new();
                }
            };
            match self.tasks(&docker).await {
                Ok(list) => list
                    .into_iter()
                    .map(|t| self.track(docker.clone(), t))
                    .collect(),
                Err(why) => {
                    crate::events::record(
                        &self.pool,
                        crate::events::EventKind::InstanceFailed,
                        None,
                        why,
                    );
                    Vec::new()
                }
            }
        })
    }
}
