//! End to end on the real Docker Engine: `provider = "docker_labels"`.

mod common;

use std::time::Duration;

use common::docker::{available, Container};
use common::{all_events, get_json, healthy_count, wait_until, Drover, Load, HEADER};

fn config(pool: &str) -> String {
    config_with(pool, "")
}

fn config_with(pool: &str, instances_extra: &str) -> String {
    format!(
        r#"
{HEADER}[pools.{pool}]
retries = 2
[pools.{pool}.instances]
provider = "docker_labels"
{instances_extra}
[pools.{pool}.health]
path = "/health"
interval = "200ms"
rise = 1
fall = 2
"#
    )
}

/// A container of the test image labelled for `pool` (port 8080 published on 127.0.0.1),
/// with hostname `name` (the backend's `name` in its answers) and an optional owner label.
fn labelled(pool: &str, name: &str, owner: Option<&str>) -> Container {
    let mut args = vec![
        "--label".to_string(),
        format!("drover.pool={pool}"),
        "--label".into(),
        "drover.port=8080".into(),
        "-p".into(),
        "127.0.0.1::8080".into(),
        "--hostname".into(),
        name.to_string(),
    ];
    if let Some(o) = owner {
        args.extend(["--label".to_string(), format!("drover.owner={o}")]);
    }
    Container::run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

async fn wait_members(d: &Drover, pool: &str, n: usize) {
    wait_until(&format!("{n} healthy members in {pool}"), 30, async || {
        healthy_count(d, pool).await == n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelled_containers_join_while_running_and_leave_on_stop_without_failed_requests() {
    if !available(
        "labelled_containers_join_while_running_and_leave_on_stop_without_failed_requests",
    ) {
        return;
    }
    let _image = common::docker::ImageCleanup::new();
    let pool = format!("lbl{}", std::process::id());
    let d = Drover::start(&config(&pool));
    let a = labelled(&pool, "c-a", None);
    wait_members(&d, &pool, 1).await;
    let b = labelled(&pool, "c-b", None);
    wait_members(&d, &pool, 2).await;

    // Both serve.
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let v = get_json(&d.url("/x")).await;
        names.insert(v["name"].as_str().unwrap().to_string());
    }
    assert_eq!(names.into_iter().collect::<Vec<_>>(), vec!["c-a", "c-b"]);

    // Steady GET load while `a` is stopped: no client sees a failure.
    let load = Load::start(&d.url("/load"), 4, 5000);
    tokio::time::sleep(Duration::from_secs(1)).await;
    common::docker::docker(&["stop", "-t", "2", &a.id]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (ok, failed) = load.stop().await;
    assert_eq!(failed, 0, "failed requests while a container stopped");
    assert!(ok > 50);
    wait_members(&d, &pool, 1).await;
    let v = get_json(&d.url("/x")).await;
    assert_eq!(v["name"], "c-b");
    let ev: serde_json::Value = serde_json::Value::Array(all_events(&d).await);
    let kinds: Vec<&str> = ev
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"added") && kinds.contains(&"removed"),
        "{kinds:?}"
    );
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_owner_only_containers_carrying_it_join() {
    if !available("with_an_owner_only_containers_carrying_it_join") {
        return;
    }
    let _image = common::docker::ImageCleanup::new();
    let pool = format!("own{}", std::process::id());
    let owner = format!("team-{}", std::process::id());
    let d = Drover::start(&config_with(&pool, &format!("owner = \"{owner}\"")));
    // An impostor with the pool label but no (or another) owner, then the real one.
    let _impostor = labelled(&pool, "impostor", None);
    let _other = labelled(&pool, "other-owner", Some("someone-else"));
    let _mine = labelled(&pool, "mine", Some(&owner));
    wait_members(&d, &pool, 1).await;
    // Give discovery time to (wrongly) pick up the others too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let p = common::pool_json(&d, &pool).await;
    assert_eq!(p["backends"].as_array().unwrap().len(), 1, "{p}");
    for _ in 0..10 {
        let v = get_json(&d.url("/x")).await;
        assert_eq!(v["name"], "mine");
    }
}
