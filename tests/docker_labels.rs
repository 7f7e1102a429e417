//! End to end on the real Docker Engine: `provider = "docker_labels"`.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::docker::{available, Container};
use common::{client, Drover};

fn config(pool: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[admin]
listen = "127.0.0.1:0"
[log]
access = false
[pools.{pool}]
retries = 2
[pools.{pool}.instances]
provider = "docker_labels"
[pools.{pool}.health]
path = "/health"
interval = "200ms"
rise = 1
fall = 2
"#
    )
}

async fn healthy_members(d: &Drover, pool: &str) -> Vec<String> {
    let v: serde_json::Value = client()
        .get(d.admin_url(&format!("/api/v1/pools/{pool}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["backends"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["state"] == "healthy")
        .map(|m| m["address"].as_str().unwrap().to_string())
        .collect()
}

async fn wait_members(d: &Drover, pool: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if healthy_members(d, pool).await.len() == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pool {pool} never had {n} healthy members"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelled_containers_join_while_running_and_leave_on_stop_without_failed_requests() {
    if !available(
        "labelled_containers_join_while_running_and_leave_on_stop_without_failed_requests",
    ) {
        return;
    }
    let _image = common::docker::ImageCleanup;
    let pool = format!("lbl{}", std::process::id());
    let labels = |n: &str| {
        vec![
            "--label".to_string(),
            format!("drover.pool={pool}"),
            "--label".into(),
            "drover.port=8080".into(),
            "-p".into(),
            "127.0.0.1::8080".into(),
            "--hostname".into(),
            n.to_string(),
        ]
    };
    let d = Drover::start(&config(&pool));
    let a_args = labels("c-a");
    let a = Container::run(&a_args.iter().map(String::as_str).collect::<Vec<_>>());
    wait_members(&d, &pool, 1).await;
    let b_args = labels("c-b");
    let b = Container::run(&b_args.iter().map(String::as_str).collect::<Vec<_>>());
    wait_members(&d, &pool, 2).await;

    // Both serve.
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let v: serde_json::Value = client()
            .get(d.url("/x"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        names.insert(v["name"].as_str().unwrap().to_string());
    }
    assert_eq!(names.into_iter().collect::<Vec<_>>(), vec!["c-a", "c-b"]);

    // Steady GET load while `a` is stopped: no client sees a failure.
    let failures = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let url = d.url("/load");
    let stop_at = Instant::now() + Duration::from_secs(6);
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (url, failures, done) = (url.clone(), failures.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let c = client();
            for _ in 0..5000 {
                if Instant::now() > stop_at {
                    break;
                }
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    common::docker::docker(&["stop", "-t", "2", &a.id]);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "failed requests while a container stopped"
    );
    assert!(done.load(Ordering::Relaxed) > 50);
    wait_members(&d, &pool, 1).await;
    let v: serde_json::Value = client()
        .get(d.url("/x"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["name"], "c-b");
    let ev: serde_json::Value = client()
        .get(d.admin_url("/api/v1/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
