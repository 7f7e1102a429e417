//! Containers drover runs itself (`provider = "docker"`): create, start,
//! read back the published port, stop and remove, list its own (adoption after
//! a restart), last log lines for events.
//!
//! Every container carries `drover.pool=<pool>` and `drover.managed=<owner>`,
//! where the owner id is stable for a given config file (see [`owner_id`]), so a
//! restarted drover (even after SIGKILL) finds and adopts its containers.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, InspectContainerOptions,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use crate::config::{DockerAddress, InstancesConfig};

/// Label naming the pool.
pub const POOL_LABEL: &str = "drover.pool";
/// Label naming the drover (config) that owns the container.
pub const OWNER_LABEL: &str = "drover.managed";

/// A stable id for "this drover": a hash of the config file's canonical path
/// (or `demo`), so restarts with the same config adopt the same containers.
pub fn owner_id(config_path: Option<&std::path::Path>) -> String {
    let key = config_path
        .map(|p| {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string()
        })
        .unwrap_or_else(|| "demo".to_string());
    format!("{:016x}", crate::balance::hash_key_bytes(key.as_bytes()))
}

/// One container drover owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub id: String,
    pub running: bool,
    /// Where to dial it (None when not running or no port could be read).
    pub address: Option<SocketAddr>,
}

/// The first 12 characters of a container id (as `docker ps` shows it).
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn port_key(port: u16) -> String {
    format!("{port}/tcp")
}

/// Makes sure `image` exists locally; pulls only when `pull` is true.
pub async fn ensure_image(docker: &Docker, image: &str, pull: bool) -> Result<(), String> {
    if docker.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    if !pull {
        return Err(format!(
            "image {image:?} is not on this machine and pull = false: build or load it first (`docker images` lists what is here), or set pull = true"
        ));
    }
    let opts = CreateImageOptionsBuilder::default()
        .from_image(image)
        .build();
    let mut stream = docker.create_image(Some(opts), None, None);
    while let Some(step) = stream.next().await {
        step.map_err(|e| format!("pulling {image:?} failed: {e}"))?;
    }
    Ok(())
}

/// Creates and starts one container for `pool`; returns its id.
pub async fn start(
    docker: &Docker,
    pool: &str,
    owner: &str,
    cfg: &InstancesConfig,
) -> Result<String, String> {
    let image = cfg.image.as_deref().ok_or("instances.image is not set")?;
    let port = cfg
        .container_port
        .ok_or("instances.container_port is not set")?;
    ensure_image(docker, image, cfg.pull).await?;
    let labels = HashMap::from([
        (POOL_LABEL.to_string(), pool.to_string()),
        (OWNER_LABEL.to_string(), owner.to_string()),
    ]);
    let bindings = HashMap::from([(
        port_key(port),
        Some(vec![PortBinding {
            host_ip: Some("127.0.0.1".to_string()),
            host_port: Some(String::new()),
        }]),
    )]);
    let mut cmd: Vec<String> = cfg.command.clone();
    cmd.extend(cfg.args.iter().cloned());
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: (!cmd.is_empty()).then_some(cmd),
        env: Some(cfg.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        exposed_ports: Some(vec![port_key(port)]),
        host_config: Some(HostConfig {
            port_bindings: Some(bindings),
            network_mode: cfg.network.clone(),
            memory: cfg.memory.map(|m| m as i64),
            nano_cpus: cfg.cpus.map(|c| (c * 1e9) as i64),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(Some(CreateContainerOptionsBuilder::default().build()), body)
        .await
        .map_err(|e| format!("creating a container from {image:?} failed: {e}"))?;
    if let Err(e) = docker
        .start_container(
            &created.id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
    {
        let _ = remove(docker, &created.id).await;
        return Err(format!(
            "starting container {} failed: {e}",
            short(&created.id)
        ));
    }
    Ok(created.id)
}

/// Where to dial a running container: its published 127.0.0.1 port, or its IP
/// on `network` when `address = "container"`.
pub async fn address(
    docker: &Docker,
    id: &str,
    cfg: &InstancesConfig,
) -> Result<Option<SocketAddr>, String> {
    let port = cfg
        .container_port
        .ok_or("instances.container_port is not set")?;
    let info = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .map_err(|e| format!("inspecting container {} failed: {e}", short(id)))?;
    if !info.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
        return Ok(None);
    }
    let net = info.network_settings.unwrap_or_default();
    if cfg.address == DockerAddress::Container {
        let ip = net
            .networks
            .unwrap_or_default()
            .into_iter()
            .find_map(|(name, e)| {
                (cfg.network.as_deref().is_none_or(|n| n == name))
                    .then_some(e.ip_address)
                    .flatten()
                    .and_then(|ip| ip.parse::<IpAddr>().ok())
            });
        return Ok(ip.map(|ip| SocketAddr::new(ip, port)));
    }
    let host_port = net
        .ports
        .unwrap_or_default()
        .get(&port_key(port))
        .cloned()
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .find_map(|b| b.host_port.and_then(|p| p.parse::<u16>().ok()));
    Ok(host_port.map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p)))
}

/// `docker stop -t stop_timeout`, then remove.
pub async fn stop_and_remove(
    docker: &Docker,
    id: &str,
    stop_timeout: Duration,
) -> Result<(), String> {
    let t = stop_timeout.as_secs().min(i32::MAX as u64) as i32;
    // A paused (warm) container is unpaused first, so that it can stop gracefully
    // (an error here only means it was not paused).
    let _ = docker.unpause_container(id).await;
    let _ = docker
        .stop_container(
            id,
            Some(StopContainerOptionsBuilder::default().t(t).build()),
        )
        .await;
    remove(docker, id).await
}

/// Force-removes a container (a missing one is fine).
pub async fn remove(docker: &Docker, id: &str) -> Result<(), String> {
    match docker
        .remove_container(
            id,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(e) => Err(format!("removing container {} failed: {e}", short(id))),
    }
}

/// Every container (running or not) matching all `labels` filters (`key` or `key=value`).
pub async fn list_labelled(
    docker: &Docker,
    labels: Vec<String>,
) -> Result<Vec<bollard::models::ContainerSummary>, String> {
    let filters: HashMap<&str, Vec<String>> = HashMap::from([("label", labels)]);
    docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| format!("listing containers failed: {e}"))
}

/// The containers of `pool` owned by `owner`, running or not.
pub async fn list_owned(
    docker: &Docker,
    pool: &str,
    owner: &str,
    cfg: &InstancesConfig,
) -> Result<Vec<Owned>, String> {
    let list = list_labelled(
        docker,
        vec![
            format!("{POOL_LABEL}={pool}"),
            format!("{OWNER_LABEL}={owner}"),
        ],
    )
    .await?;
    let mut out = Vec::new();
    for c in list {
        let Some(id) = c.id else { continue };
        let running = c.state.map(|s| s.to_string() == "running").unwrap_or(false);
        let address = if running {
            address(docker, &id, cfg).await?
        } else {
            None
        };
        out.push(Owned {
            id,
            running,
            address,
        });
    }
    Ok(out)
}

/// The last `n` log lines of a container (for "exited at start" events).
pub async fn last_logs(docker: &Docker, id: &str, n: usize) -> String {
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&n.to_string())
        .build();
    let mut s = docker.logs(id, Some(opts));
    let mut out = String::new();
    while let Some(Ok(chunk)) = s.next().await {
        out.push_str(&chunk.to_string());
    }
    out.trim_end().to_string()
}

/// Whether container `id` runs (`None` if it does not exist).
pub async fn list_state(docker: &Docker, id: &str) -> Option<bool> {
    docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .ok()
        .map(|i| i.state.and_then(|s| s.running).unwrap_or(false))
}
