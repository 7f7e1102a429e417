//! End to end on the real Docker Engine: `provider = "docker"`.

mod common;

use std::time::{Duration, Instant};

use common::docker::{available, docker, image, ImageCleanup, LabelCleanup};
use common::{
    autoscale_1_to_3, client, get_json, healthy_count, shrink_to_one_under_light_load, wait_until,
    Drover, Load, Proc,
};

use common::docker::docker_pool_config as config;

/// Ids of containers labelled for `pool`, running or not.
fn containers(pool: &str) -> Vec<String> {
    common::docker::labelled(&format!("drover.pool={pool}"))
}

/// Removes every container of `pool` on drop (this test's own, by label).
fn pool_cleanup(pool: &str) -> LabelCleanup {
    LabelCleanup(vec![format!("drover.pool={pool}")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_pool_runs_replaces_adopts_and_cleans_up_its_containers() {
    if !available("docker_pool_runs_replaces_adopts_and_cleans_up_its_containers") {
        return;
    }
    let _image = ImageCleanup::new();
    let pool = format!("dk{}", std::process::id());
    let _cleanup = pool_cleanup(&pool);
    let cfg = config(&pool, 2, image());
    let mut d = Drover::start(&cfg);
    wait_until("two healthy containers", 60, async || {
        healthy_count(&d, &pool).await == 2
    })
    .await;
    let first = containers(&pool);
    assert_eq!(first.len(), 2, "{first:?}");
    let r = client().get(d.url("/hello")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // docker kill behind drover's back: replaced.
    docker(&["kill", &first[0]]);
    wait_until("replacement", 60, async || {
        let now = containers(&pool);
        healthy_count(&d, &pool).await == 2 && !now.contains(&first[0])
    })
    .await;
    let ev: serde_json::Value = get_json(&d.admin_url("/api/v1/events")).await;
    assert!(
        ev.as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "instance_failed"),
        "{ev}"
    );

    // SIGKILL drover, start it again on the same config file: the containers are adopted.
    let running_before = containers(&pool);
    d.proc.signal("KILL");
    let _ = d.proc.wait_exit(Duration::from_secs(5));
    let path = d.config_path.to_str().unwrap().to_string();
    let again = Proc::spawn(&["--log-format", "json", "run", "-c", &path], None);
    let admin = again.stderr.addr_of("admin listening");
    let admin_url = format!("http://{admin}/api/v1/pools/{pool}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v: serde_json::Value = get_json(&admin_url).await;
        let n = v["backends"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["state"] == "healthy")
            .count();
        if n == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "adopted containers never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut after = containers(&pool);
    let mut before = running_before.clone();
    after.sort();
    before.sort();
    assert_eq!(
        after, before,
        "containers were not adopted as they were (no duplicates, none lost)"
    );

    // SIGTERM: drover stops and removes its containers.
    let mut again = again;
    again.signal("TERM");
    assert_eq!(again.wait_exit(Duration::from_secs(30)), Some(0));
    assert!(
        containers(&pool).is_empty(),
        "containers left after SIGTERM: {:?}",
        containers(&pool)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_a_clear_event_and_other_pools_keep_serving() {
    if !available("a_missing_image_is_a_clear_event_and_other_pools_keep_serving") {
        return;
    }
    let pool = format!("mi{}", std::process::id());
    let _cleanup = pool_cleanup(&pool);
    let b = common::Backend::start("other");
    let cfg =
        config(&pool, 1, "drover-no-such-image:never").replace("127.0.0.1:1", &b.addr.to_string());
    let d = Drover::start(&cfg);
    let mut found = None;
    for _ in 0..50 {
        let ev: serde_json::Value = get_json(&d.admin_url("/api/v1/events")).await;
        found = ev
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "instance_failed")
            .cloned();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e = found.expect("an instance_failed event");
    assert!(
        e["reason"]
            .as_str()
            .unwrap()
            .contains("is not on this machine"),
        "{e}"
    );
    let r = client().get(d.url("/other/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(containers(&pool).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_pool_autoscales_1_to_3_to_1_under_load_with_no_failed_requests() {
    if !available("docker_pool_autoscales_1_to_3_to_1_under_load_with_no_failed_requests") {
        return;
    }
    let _image = ImageCleanup::new();
    let pool = format!("as{}", std::process::id());
    let _cleanup = pool_cleanup(&pool);
    let cfg = config(&pool, 1, image()).replace("count = 1\n", "") + &autoscale_1_to_3(&pool);
    let cfg = cfg.replace(
        &format!("[pools.{pool}]\nretries = 2"),
        &format!("[pools.{pool}]\nbalance = \"least_conn\"\nretries = 2"),
    );
    let d = Drover::start(&cfg);
    wait_until("the first container", 60, async || {
        healthy_count(&d, &pool).await == 1
    })
    .await;

    // Eight clients on a 300 ms endpoint: ~8 in flight against a target of 2 per instance.
    let heavy = Load::start(&d.url("/delay/300"), 8, 400);
    wait_until("three healthy containers under load", 90, async || {
        healthy_count(&d, &pool).await == 3
    })
    .await;
    assert_eq!(containers(&pool).len(), 3, "never more than max");
    shrink_to_one_under_light_load(&d, &pool, heavy, 60).await;
    wait_until("the drained containers removed", 30, async || {
        containers(&pool).len() == 1
    })
    .await;
    let ev = common::all_events(&d).await;
    let kinds: Vec<&str> = ev.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(
        kinds.contains(&"scale_up") && kinds.contains(&"scale_down"),
        "{kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_drover_keeps_the_adopted_containers_for_the_scale_down_cooldown() {
    if !available("a_restarted_drover_keeps_the_adopted_containers_for_the_scale_down_cooldown") {
        return;
    }
    let _image = ImageCleanup::new();
    let pool = format!("rs{}", std::process::id());
    let _cleanup = pool_cleanup(&pool);
    let cooldown = Duration::from_secs(10);
    let cfg = config(&pool, 1, image()).replace("count = 1\n", "")
        + &autoscale_1_to_3(&pool).replace(
            "scale_down_cooldown = \"3s\"",
            "scale_down_cooldown = \"10s\"",
        );
    let mut d = Drover::start(&cfg);
    wait_until("the first container", 60, async || {
        healthy_count(&d, &pool).await == 1
    })
    .await;
    // Three containers (set by hand), serving a light load that alone would keep one.
    let r = client()
        .put(d.admin_url(&format!("/api/v1/pools/{pool}/scale")))
        .json(&serde_json::json!({"instances": 3}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    wait_until("three healthy containers", 90, async || {
        healthy_count(&d, &pool).await == 3
    })
    .await;
    let before = Load::start(&d.url("/delay/50"), 2, 2000);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // SIGKILL drover and start it again on the same config under the same load.
    d.proc.signal("KILL");
    let _ = d.proc.wait_exit(Duration::from_secs(5));
    let (served, _) = before.stop().await;
    assert!(served > 0);
    let mut running = containers(&pool);
    running.sort();
    assert_eq!(running.len(), 3, "{running:?}");
    let restarted = Instant::now();
    let path = d.config_path.to_str().unwrap().to_string();
    let mut again = Proc::spawn(&["--log-format", "json", "run", "-c", &path], None);
    let proxy = again.stderr.addr_of("proxy listening");
    let admin = again.stderr.addr_of("admin listening");
    let load = Load::start(&format!("http://{proxy}/delay/50"), 2, 100_000);

    // For the first scale_down_cooldown: the three adopted, none drained.
    let pool_url = format!("http://{admin}/api/v1/pools/{pool}");
    common::adopted_and_held(
        admin,
        &pool,
        3,
        restarted + cooldown - Duration::from_secs(1),
    )
    .await;
    let mut now = containers(&pool);
    now.sort();
    assert_eq!(now, running, "the same three containers, adopted");

    // The hold ends: the light load then scales it down, still without a failure.
    wait_until("a scale-down after the cooldown", 60, async || {
        common::get_json(&pool_url).await["desired"]
            .as_u64()
            .is_some_and(|n| n < 3)
    })
    .await;
    let (ok, failed) = load.stop().await;
    assert_eq!(failed, 0, "failed requests after the restart ({ok} ok)");
    assert!(ok > 20, "{ok}");
    again.signal("TERM");
    assert_eq!(again.wait_exit(Duration::from_secs(30)), Some(0));
}
