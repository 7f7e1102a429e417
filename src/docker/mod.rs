//! The Docker Engine: connecting (with API version negotiation, so older
//! engines work), and label discovery (`provider = "docker_labels"`).

pub mod claim;
pub mod containers;
pub mod labels;
pub mod orphans;
pub mod provider;
pub mod swarm;

use bollard::Docker;

/// Where drover looks for the engine: `DOCKER_HOST`, else the local socket.
pub fn engine_location() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
}

/// Connects to the engine and negotiates the API version.
/// The error says where drover looked: "Docker not reachable at unix:///var/run/docker.sock: ...".
pub async fn connect() -> Result<Docker, String> {
    let at = engine_location();
    let docker = Docker::connect_with_defaults()
        .map_err(|e| format!("Docker not reachable at {at}: {e}"))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| format!("Docker not reachable at {at}: {e}"))?;
    docker
        .ping()
        .await
        .map_err(|e| format!("Docker not reachable at {at}: {e}"))?;
    Ok(docker)
}
