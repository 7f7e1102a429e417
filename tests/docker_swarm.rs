//! End to end on the real Docker Engine: `provider = "swarm"` in a single-node swarm.

mod common;

use std::time::{Duration, Instant};

use common::docker::{available, docker, image, ImageCleanup, ONE_AT_A_TIME};
use common::{healthy_count, pool_json, wait_until, Drover, Load, HEADER};

/// Joins this engine to a single-node swarm for the test if it is not in one;
/// leaves on drop only if the test created it, and then removes the
/// `docker_gwbridge` network `swarm init` made (`swarm leave` keeps it).
struct Swarm {
    created: bool,
    gwbridge_before: bool,
}

fn gwbridge_exists() -> bool {
    !docker(&["network", "ls", "-q", "--filter", "name=^docker_gwbridge$"]).is_empty()
}

impl Swarm {
    fn ensure() -> Swarm {
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        if state == "active" {
            return Swarm {
                created: false,
                gwbridge_before: true,
            };
        }
        let gwbridge_before = gwbridge_exists();
        docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        Swarm {
            created: true,
            gwbridge_before,
        }
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        if self.created {
            let _ = std::process::Command::new("docker")
                .args(["swarm", "leave", "--force"])
                .output();
            // Its endpoints go a little after the leave: retry for up to 10 s.
            for _ in 0..40 {
                if self.gwbridge_before || !gwbridge_exists() {
                    break;
                }
                let _ = std::process::Command::new("docker")
                    .args(["network", "rm", "docker_gwbridge"])
                    .output();
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}

/// A service this test created; removed on drop.
struct Service(String);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["service", "rm", &self.0])
            .output();
    }
}

impl Service {
    /// `docker service create` of the test image with `replicas`, port 8080 in host mode.
    fn create(name: &str, replicas: u32) -> Service {
        docker(&[
            "service",
            "create",
            "--detach",
            "--name",
            name,
            "--replicas",
            &replicas.to_string(),
            "--publish",
            "mode=host,target=8080",
            "--no-resolve-image",
            image(),
        ]);
        Service(name.to_string())
    }
}

/// One autoscaled (1..3) pool `sw` over the swarm service `service`.
fn config(service: &str, scale_down_cooldown: &str) -> String {
    format!(
        r#"
{HEADER}[pools.sw]
balance = "least_conn"
retries = 2
[pools.sw.health]
path = "/health"
interval = "200ms"
rise = 1
fall = 2
[pools.sw.instances]
provider = "swarm"
service = "{service}"
start_timeout = "60s"
drain_timeout = "5s"
stop_timeout = "2s"
"#
    ) + &common::autoscale_1_to_3("sw").replace(
        "scale_down_cooldown = \"3s\"",
        &format!("scale_down_cooldown = \"{scale_down_cooldown}\""),
    )
}

fn replicas(service: &str) -> u64 {
    docker(&[
        "service",
        "inspect",
        "--format",
        "{{.Spec.Mode.Replicated.Replicas}}",
        service,
    ])
    .parse()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_service_scales_1_to_3_to_1_under_load_with_no_failed_requests() {
    if !available("swarm_service_scales_1_to_3_to_1_under_load_with_no_failed_requests") {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().await;
    let _image = ImageCleanup::new();
    let _swarm = Swarm::ensure();
    let name = format!("drover-test-{}", std::process::id());
    let _service = Service::create(&name, 1);
    let d = Drover::start(&config(&name, "3s"));
    wait_until("the first task", 90, async || {
        healthy_count(&d, "sw").await == 1
    })
    .await;

    let load = Load::start(&d.url("/delay/300"), 8, 400);
    let stop_at = Instant::now() + Duration::from_secs(90);
    let mut peak = 0;
    while peak < 3 && Instant::now() < stop_at {
        peak = peak.max(healthy_count(&d, "sw").await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(peak >= 3, "only {peak} healthy tasks under load");
    assert!(replicas(&name) <= 3);
    common::shrink_to_one_under_light_load(&d, "sw", load, 90).await;
    wait_until("replicas = 1", 30, async || replicas(&name) == 1).await;
    // The one task left is the one drover routes to.
    let p = pool_json(&d, "sw").await;
    let r = common::client().get(d.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drover_started_beside_3_replicas_keeps_them_for_the_scale_down_cooldown() {
    if !available("a_drover_started_beside_3_replicas_keeps_them_for_the_scale_down_cooldown") {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().await;
    let _image = ImageCleanup::new();
    let _swarm = Swarm::ensure();
    // What a drover that scaled the service to 3 and was then SIGKILLed leaves.
    let name = format!("drover-restart-{}", std::process::id());
    let _service = Service::create(&name, 3);
    wait_until("three running tasks", 90, async || {
        let listed = format!("name={name}");
        docker(&[
            "service",
            "ls",
            "--filter",
            &listed,
            "--format",
            "{{.Replicas}}",
        ]) == "3/3"
    })
    .await;
    let started = Instant::now();
    let d = Drover::start(&config(&name, "10s"));
    let load = Load::start(&d.url("/delay/50"), 2, 100_000);
    common::adopted_and_held(d.admin, "sw", 3, started + Duration::from_secs(9)).await;
    assert_eq!(replicas(&name), 3);
    let (ok, failed) = load.stop().await;
    assert_eq!(failed, 0, "failed requests after the start ({ok} ok)");
    assert!(ok > 20, "{ok}");
}
