//! Docker helpers for tests: engine check (skip loudly, or fail when
//! `DROVER_REQUIRE_DOCKER=1`), the test image, and containers removed by id on drop.

use super::HEADER;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Whether Docker tests can run here. Without an engine: skips with one loud
/// line, or panics when `DROVER_REQUIRE_DOCKER=1` (CI).
pub fn available(test: &str) -> bool {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("DROVER_REQUIRE_DOCKER").as_deref() == Ok("1") {
            panic!("{test}: Docker engine not reachable and DROVER_REQUIRE_DOCKER=1");
        }
        eprintln!("!!! SKIPPED {test}: no Docker engine reachable (set DROVER_REQUIRE_DOCKER=1 to make this fail)");
    }
    ok
}

/// Tests that join and leave a swarm run one at a time: hold it for the whole
/// test, declared before `ImageCleanup` so that it is released after it.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The test image built from this build's drover binary (built again if the
/// last [`ImageCleanup`] of an earlier test removed it).
pub fn image() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    static BUILD: Mutex<()> = Mutex::new(());
    let tag = TAG.get_or_init(|| format!("drover-backend:test-{}", std::process::id()));
    let _one_build = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let exists = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", tag])
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-test-image.sh");
        let out = Command::new("bash")
            .args([script, super::BIN, tag])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "image build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    tag
}

/// `docker ARGS`, asserting success; returns trimmed stdout.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A container this test started; removed (by id) on drop.
pub struct Container {
    pub id: String,
}

impl Container {
    /// `docker run -d ARGS... IMAGE`.
    pub fn run(args: &[&str]) -> Container {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        all.push(image());
        Container { id: docker(&all) }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.id]).output();
    }
}

/// Removes this test binary's image when the last live guard drops (declare it first in a
/// test so it drops last; tests of one binary run in parallel and share the image).
pub struct ImageCleanup(());

/// Live [`ImageCleanup`] guards of this test binary.
static IMAGE_USERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl ImageCleanup {
    pub fn new() -> ImageCleanup {
        IMAGE_USERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ImageCleanup(())
    }
}

impl Drop for ImageCleanup {
    fn drop(&mut self) {
        if IMAGE_USERS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) != 1 {
            return;
        }
        let tag = format!("drover-backend:test-{}", std::process::id());
        remove_image(&tag);
    }
}

/// Removes image `tag` by id once no container uses it any more (Swarm removes a
/// service's task containers a little after `docker service rm`; `docker rmi -f`
/// before that would only untag it and leave a dangling image). Waits at most 60 s.
pub fn remove_image(tag: &str) {
    let out = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(id) = out(&["image", "inspect", "--format", "{{.Id}}", tag]) else {
        return;
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let ancestor = format!("ancestor={id}");
    while std::time::Instant::now() < deadline
        && out(&["ps", "-aq", "--filter", &ancestor]).is_some_and(|ids| !ids.is_empty())
    {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let _ = Command::new("docker").args(["rmi", "-f", &id]).output();
}

/// A config with one `provider = "docker"` pool named `pool` of `count` containers
/// from `image` (health checked every 200 ms), plus a static pool `other` under `/other`.
pub fn docker_pool_config(pool: &str, count: u32, image: &str) -> String {
    format!(
        r#"
{HEADER}[[routes]]
path_prefix = "/other"
pool = "other"
[[routes]]
pool = "{pool}"
[pools.other]
backends = ["127.0.0.1:1"]
[pools.{pool}]
retries = 2
[pools.{pool}.health]
path = "/health"
interval = "200ms"
rise = 1
fall = 2
[pools.{pool}.instances]
provider = "docker"
image = "{image}"
container_port = 8080
count = {count}
start_timeout = "20s"
stop_timeout = "2s"
drain_timeout = "2s"
"#
    )
}

/// Ids of containers (running or not) carrying `label` (`key=value`).
pub fn labelled(label: &str) -> Vec<String> {
    let out = docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label={label}"),
    ]);
    out.lines().map(str::to_string).collect()
}

/// Removes every container carrying one of these labels (`key=value`) on drop.
pub struct LabelCleanup(pub Vec<String>);

impl Drop for LabelCleanup {
    fn drop(&mut self) {
        for label in &self.0 {
            for id in labelled(label) {
                let _ = Command::new("docker").args(["rm", "-f", &id]).output();
            }
        }
    }
}
