//! End to end with docker-compose: examples/compose brought up as a user would
//! (drover in a container from scripts/build-image.sh, two label-discovered app
//! services, a managed `provider = "docker"` pool dialled at container IPs on the
//! Compose network), traffic through it, `--scale app=3` followed by the pool, and
//! a teardown that leaves nothing behind.

mod common;

use std::collections::HashSet;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::docker::{available, docker, remove_image};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/compose/docker-compose.yml"
);

/// One Compose project of this test: its names, its environment, and a teardown on drop.
struct Project {
    name: String,
    image: String,
    token: String,
    claims: tempfile::TempDir,
}

impl Project {
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DROVER_IMAGE", self.image.clone()),
            ("DROVER_NAME", self.name.clone()),
            ("DROVER_NETWORK", self.name.clone()),
            ("DROVER_ADMIN_TOKEN", self.token.clone()),
            ("DROVER_PROXY_PORT", "127.0.0.1:".to_string()),
            ("DROVER_ADMIN_PORT", "127.0.0.1:".to_string()),
            (
                "DROVER_CLAIMS_DIR",
                self.claims.path().display().to_string(),
            ),
        ]
    }

    /// `docker-compose -p NAME -f EXAMPLE ARGS...`.
    fn compose(&self, args: &[&str]) -> Output {
        Command::new("docker-compose")
            .args(["-p", &self.name, "-f", EXAMPLE])
            .args(args)
            .envs(self.env())
            .output()
            .expect("docker-compose")
    }

    fn compose_ok(&self, args: &[&str]) -> String {
        let out = self.compose(args);
        assert!(
            out.status.success(),
            "docker-compose {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The host address Compose published `port` of service `drover` on.
    fn published(&self, port: &str) -> String {
        let out = self.compose_ok(&["port", "drover", port]);
        out.lines().last().unwrap_or_default().trim().to_string()
    }

    /// Containers of this project, of drover's managed pool, and the network.
    fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        for label in [
            format!("com.docker.compose.project={}", self.name),
            format!("drover.managed={}", self.name),
        ] {
            let ids = docker(&["ps", "-aq", "--filter", &format!("label={label}")]);
            left.extend(ids.lines().map(|id| format!("container {id} ({label})")));
        }
        let nets = docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("name=^{}$", self.name),
        ]);
        left.extend(nets.lines().map(|n| format!("network {n}")));
        left
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "--remove-orphans", "-t", "30"]);
        let managed = format!("label=drover.managed={}", self.name);
        if let Ok(o) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &managed])
            .output()
        {
            for id in String::from_utf8_lossy(&o.stdout).lines() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &self.name])
            .output();
        remove_image(&self.image);
    }
}

fn compose_available(test: &str) -> bool {
    let ok = Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("DROVER_REQUIRE_DOCKER").as_deref() == Ok("1") {
            panic!("{test}: docker-compose not found and DROVER_REQUIRE_DOCKER=1 (apt-get install docker-compose)");
        }
        eprintln!("!!! SKIPPED {test}: docker-compose not found (Debian package docker-compose)");
    }
    ok
}

async fn pool(admin: &str, token: &str, pool: &str) -> Option<serde_json::Value> {
    let r = common::client()
        .get(format!("http://{admin}/api/v1/pools/{pool}"))
        .bearer_auth(token)
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// Members of `pool` that are healthy, by address.
async fn healthy(admin: &str, token: &str, name: &str) -> Vec<String> {
    let Some(p) = pool(admin, token, name).await else {
        return Vec::new();
    };
    p["backends"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["state"] == "healthy")
        .filter_map(|m| m["address"].as_str().map(str::to_string))
        .collect()
}

async fn wait_healthy(admin: &str, token: &str, name: &str, n: usize, secs: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let h = healthy(admin, token, name).await;
        if h.len() == n {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "pool {name}: wanted {n} healthy members, have {h:?}; pool: {:?}",
            pool(admin, token, name).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// GETs `path` `n` times; every answer must be 200; returns the distinct backend names.
async fn names_serving(proxy: &str, path: &str, n: usize) -> HashSet<String> {
    let c = common::client();
    let mut names = HashSet::new();
    for _ in 0..n {
        let r = c.get(format!("http://{proxy}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        let v: serde_json::Value = r.json().await.unwrap();
        names.insert(v["name"].as_str().unwrap_or_default().to_string());
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_example_serves_scales_with_the_app_service_and_leaves_nothing_behind() {
    let test = "compose_example_serves_scales_with_the_app_service_and_leaves_nothing_behind";
    if !available(test) || !compose_available(test) {
        return;
    }
    let pid = std::process::id();
    let p = Project {
        name: format!("drovercompose{pid}"),
        image: format!("drover-compose:test-{pid}"),
        token: format!("t{:032x}", rand::random::<u128>()),
        claims: tempfile::tempdir().unwrap(),
    };
    let built = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/build-image.sh"
        ))
        .arg(&p.image)
        .env("DROVER_BINARY", common::BIN)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "build-image.sh: {}",
        String::from_utf8_lossy(&built.stderr)
    );

    p.compose_ok(&["up", "-d"]);
    let proxy = p.published("8080");
    let admin = p.published("9090");

    // Both discovered services and both managed containers become healthy members.
    wait_healthy(&admin, &p.token, "app", 1, 90).await;
    wait_healthy(&admin, &p.token, "api", 1, 60).await;
    let managed = wait_healthy(&admin, &p.token, "managed", 2, 90).await;
    // address = "container": members are IPs on the Compose network, not 127.0.0.1 ports.
    let subnet = docker(&[
        "network",
        "inspect",
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
        &p.name,
    ]);
    let prefix: String = subnet.split('.').take(2).collect::<Vec<_>>().join(".");
    for m in &managed {
        assert!(
            m.starts_with(&format!("{prefix}.")) && m.ends_with(":8080"),
            "{m} not on {subnet}"
        );
    }

    // drover in its container claims its name through the mounted claims dir: the
    // host's `drover ctl orphans` does not list its managed containers.
    let orphans = Command::new(common::BIN)
        .args(["ctl", "orphans", "--json", "--owner", &p.name])
        .env("DROVER_CLAIMS_DIR", p.claims.path())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&orphans.stdout).unwrap();
    assert_eq!(v["orphans"], serde_json::json!([]), "{v}");

    assert_eq!(names_serving(&proxy, "/", 10).await.len(), 1);
    assert_eq!(names_serving(&proxy, "/api/x", 10).await.len(), 1);
    assert_eq!(
        names_serving(&proxy, "/managed/x", 10).await.len(),
        2,
        "round robin over both managed containers"
    );
    let ready = common::client()
        .get(format!("http://{admin}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    // The pool follows the app service's scale, up and down.
    p.compose_ok(&["up", "-d", "--scale", "app=3"]);
    wait_healthy(&admin, &p.token, "app", 3, 90).await;
    assert_eq!(
        names_serving(&proxy, "/", 30).await.len(),
        3,
        "served by all three replicas"
    );
    p.compose_ok(&["up", "-d", "--scale", "app=1"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while pool(&admin, &p.token, "app")
        .await
        .and_then(|v| v["backends"].as_array().map(Vec::len))
        != Some(1)
    {
        assert!(
            Instant::now() < deadline,
            "app pool did not shrink to 1: {:?}",
            pool(&admin, &p.token, "app").await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(names_serving(&proxy, "/", 5).await.len(), 1);

    // Teardown: drover stops its managed containers on SIGTERM, Compose removes the rest.
    p.compose_ok(&["down", "-v", "--remove-orphans", "-t", "30"]);
    assert_eq!(
        p.leftovers(),
        Vec::<String>::new(),
        "left behind after down"
    );
}
