//! `provider = "docker"`: instances are containers from a local image, with the
//! container port published on 127.0.0.1 (an ephemeral host port read back
//! from inspect). A container that exits or is removed behind drover's back is
//! noticed from the engine's events stream; a restarted drover adopts the
//! running containers it owns and removes its stopped leftovers.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::EventsOptionsBuilder;
use bollard::Docker;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use tokio::sync::{oneshot, OnceCell};

use super::containers::{self, short};
use crate::config::InstancesConfig;
use crate::instances::{Instance, Provider, Started};

/// Log lines of a container that died included in its event. Default 5.
pub const LOG_LINES: usize = 5;

/// Runs instances as Docker containers.
pub struct DockerProvider {
    pool: String,
    owner: String,
    cfg: InstancesConfig,
    docker: OnceCell<Docker>,
    running: Arc<Mutex<HashMap<String, Instance>>>,
}

impl DockerProvider {
    pub fn new(pool: &str, cfg: InstancesConfig, owner: &str) -> DockerProvider {
        DockerProvider {
            pool: pool.to_string(),
            owner: owner.to_string(),
            cfg,
            docker: OnceCell::new(),
            running: Arc::default(),
        }
    }

    async fn docker(&self) -> Result<&Docker, String> {
        self.docker.get_or_try_init(super::connect).await
    }

    /// Resolves the oneshot when container `id` dies or is removed.
    fn watch_exit(&self, docker: Docker, id: String) -> oneshot::Receiver<String> {
        let (tx, rx) = oneshot::channel();
        let running = self.running.clone();
        tokio::spawn(async move {
            let filters: HashMap<&str, Vec<String>> = HashMap::from([
                ("type", vec!["container".to_string()]),
                ("container", vec![id.clone()]),
            ]);
            let mut events = docker.events(Some(
                EventsOptionsBuilder::default().filters(&filters).build(),
            ));
            // The container may have died before the subscription: check once.
            let gone_already = containers::list_state(&docker, &id).await != Some(true);
            let why = if gone_already {
                "not running".to_string()
            } else {
                loop {
                    match events.next().await {
                        Some(Ok(e)) => match e.action.as_deref() {
                            Some("die") => {
                                let code = e
                                    .actor
                                    .and_then(|a| a.attributes)
                                    .and_then(|a| a.get("exitCode").cloned())
                                    .unwrap_or_default();
                                break format!("container exited with code {code}");
                            }
                            Some("destroy") => break "container was removed".to_string(),
                            _ => continue,
                        },
                        Some(Err(e)) => break format!("lost the Docker events stream: {e}"),
                        None => break "Docker events stream ended".to_string(),
                    }
                }
            };
            let logs = containers::last_logs(&docker, &id, LOG_LINES).await;
            running.lock().remove(&id);
            let why = if logs.is_empty() {
                why
            } else {
                format!("{why}; last log lines: {}", logs.replace('\n', " | "))
            };
            let _ = tx.send(why);
        });
        rx
    }
}

impl Provider for DockerProvider {
    fn start(&self) -> BoxFuture<'_, Result<Started, String>> {
        Box::pin(async move {
            let docker = self.docker().await?.clone();
            let id = containers::start(&docker, &self.pool, &self.owner, &self.cfg).await?;
            let mut address = None;
            for _ in 0..50 {
                address = containers::address(&docker, &id, &self.cfg).await?;
                if address.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let Some(address) = address else {
                let logs = containers::last_logs(&docker, &id, LOG_LINES).await;
                let _ = containers::remove(&docker, &id).await;
                return Err(format!(
                    "container {} exited at start; last log lines: {}",
                    short(&id),
                    logs.replace('\n', " | ")
                ));
            };
            let instance = Instance {
                id: id.clone(),
                address,
            };
            self.running.lock().insert(id.clone(), instance.clone());
            let exited = self.watch_exit(docker, id);
            Ok(Started { instance, exited })
        })
    }

    fn stop(&self, id: &str, timeout: Duration) -> BoxFuture<'_, ()> {
        let id = id.to_string();
        Box::pin(async move {
            if let Ok(docker) = self.docker().await {
                if let Err(e) = containers::stop_and_remove(docker, &id, timeout).await {
                    tracing::warn!(pool = %self.pool, container = %short(&id), error = %e, "stopping container failed");
                }
            }
            self.running.lock().remove(&id);
        })
    }

    fn freeze(&self, id: &str) -> BoxFuture<'_, Result<(), String>> {
        let id = id.to_string();
        Box::pin(async move {
            let docker = self.docker().await?;
            docker
                .pause_container(&id)
                .await
                .map_err(|e| format!("docker pause {}: {e}", short(&id)))
        })
    }

    fn thaw(&self, id: &str) -> BoxFuture<'_, Result<(), String>> {
        let id = id.to_string();
        Box::pin(async move {
            let docker = self.docker().await?;
            docker
                .unpause_container(&id)
                .await
                .map_err(|e| format!("docker unpause {}: {e}", short(&id)))
        })
    }

    fn list(&self) -> Vec<Instance> {
        let r = self.running.lock();
        r.values().cloned().collect()
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
            let owned =
                match containers::list_owned(&docker, &self.pool, &self.owner, &self.cfg).await {
                    Ok(o) => o,
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
            let mut out = Vec::new();
            for c in owned {
                match (c.running, c.address) {
                    (true, Some(address)) => {
                        // A warm container a killed drover left paused serves again
                        // (an error only means it was not paused).
                        let _ = docker.unpause_container(&c.id).await;
                        let instance = Instance {
                            id: c.id.clone(),
                            address,
                        };
                        self.running.lock().insert(c.id.clone(), instance.clone());
                        let exited = self.watch_exit(docker.clone(), c.id);
                        out.push(Started { instance, exited });
                    }
                    _ => {
                        let _ = containers::remove(&docker, &c.id).await;
                        crate::events::record(
                            &self.pool,
                            crate::events::EventKind::InstanceRemoved,
                            None,
                            format!("removed stopped leftover container {}", short(&c.id)),
                        );
                    }
                }
            }
            out
        })
    }
}
