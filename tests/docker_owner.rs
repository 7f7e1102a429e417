//! The top-level `name` as the owner of managed containers, on the real Docker
//! Engine: a moved config with the same name adopts; `drover ctl orphans` lists
//! the containers of drovers that are gone (and not those of a running one), and
//! `--remove` removes them; two running drovers of one name are refused.

mod common;

use std::time::Duration;

use common::docker::{available, docker_pool_config, image, labelled, ImageCleanup, LabelCleanup};
use common::{healthy_count, wait_until, Drover, Proc, BIN};

/// A one-container docker pool owned by `name`.
fn config(name: &str, pool: &str, image: &str) -> String {
    format!("name = \"{name}\"\n{}", docker_pool_config(pool, 1, image))
}

/// Ids of running or stopped containers owned by `owner`.
fn owned(owner: &str) -> Vec<String> {
    labelled(&format!("drover.managed={owner}"))
}

/// Removes every container of these owners on drop.
fn owner_cleanup(owners: &[&str]) -> LabelCleanup {
    LabelCleanup(
        owners
            .iter()
            .map(|o| format!("drover.managed={o}"))
            .collect(),
    )
}

/// `drover ctl orphans ARGS` with this claims dir; (exit code, stdout).
fn orphans(claims: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(BIN)
        .args(["ctl", "orphans"])
        .args(args)
        .env("DROVER_CLAIMS_DIR", claims)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn one_healthy(d: &Drover, pool: &str) {
    wait_until("one healthy container", 60, async || {
        healthy_count(d, pool).await == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_config_with_the_same_name_adopts_the_running_containers() {
    if !available("a_moved_config_with_the_same_name_adopts_the_running_containers") {
        return;
    }
    let _image = ImageCleanup::new();
    let pid = std::process::id();
    let (name, pool) = (format!("moved-{pid}"), format!("mv{pid}"));
    let _cleanup = owner_cleanup(&[&name]);
    let claims = tempfile::tempdir().unwrap();
    let env = [("DROVER_CLAIMS_DIR", claims.path().to_str().unwrap())];
    let cfg = config(&name, &pool, image());

    let mut first = Drover::start_env(&cfg, &[], &env);
    one_healthy(&first, &pool).await;
    let before = owned(&name);
    assert_eq!(before.len(), 1, "{before:?}");
    first.proc.signal("KILL");
    let _ = first.proc.wait_exit(Duration::from_secs(10));

    // The same config in another directory (a new release dir): same name, so adopted.
    let mut second = Drover::start_env(&cfg, &[], &env);
    assert_ne!(first.config_path, second.config_path);
    one_healthy(&second, &pool).await;
    assert_eq!(owned(&name), before, "adopted, not replaced or duplicated");
    let p = common::pool_json(&second, &pool).await;
    let member = p["backends"][0]["address"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let r = common::client().get(second.url("/x")).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "served by the adopted container at {member}"
    );

    second.proc.signal("TERM");
    assert_eq!(second.proc.wait_exit(Duration::from_secs(30)), Some(0));
    assert!(
        owned(&name).is_empty(),
        "removed at shutdown: {:?}",
        owned(&name)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_lists_containers_of_gone_drovers_only_and_removes_them() {
    if !available("orphans_lists_containers_of_gone_drovers_only_and_removes_them") {
        return;
    }
    let _image = ImageCleanup::new();
    let pid = std::process::id();
    let (gone, live) = (format!("gone-{pid}"), format!("live-{pid}"));
    let pool = format!("or{pid}");
    let _cleanup = owner_cleanup(&[&gone, &live]);
    let claims = tempfile::tempdir().unwrap();
    let claims_dir = claims.path().to_str().unwrap();
    let env = [("DROVER_CLAIMS_DIR", claims_dir)];

    let mut dead = Drover::start_env(&config(&gone, &pool, image()), &[], &env);
    one_healthy(&dead, &pool).await;
    dead.proc.signal("KILL");
    let _ = dead.proc.wait_exit(Duration::from_secs(10));
    let running = Drover::start_env(&config(&live, &pool, image()), &[], &env);
    one_healthy(&running, &pool).await;
    let (gone_ids, live_ids) = (owned(&gone), owned(&live));
    assert_eq!((gone_ids.len(), live_ids.len()), (1, 1));

    // A second drover of a running drover's name is refused (they would fight).
    let twin_dir = tempfile::tempdir().unwrap();
    let twin_cfg = twin_dir.path().join("drover.toml");
    std::fs::write(&twin_cfg, config(&live, &pool, image())).unwrap();
    let mut twin = Proc::spawn_env(
        &[
            "--log-format",
            "json",
            "run",
            "-c",
            twin_cfg.to_str().unwrap(),
        ],
        None,
        &env,
    );
    assert_eq!(twin.wait_exit(Duration::from_secs(30)), Some(1));
    assert!(
        twin.stderr
            .all()
            .join("\n")
            .contains(&format!("another running drover is named \"{live}\"")),
        "{:?}",
        twin.stderr.all()
    );

    // Listed: the gone drover's container, never the running one's.
    let (code, out) = orphans(claims_dir, &["--json"]);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let listed: Vec<(&str, &str)> = v["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["owner"].as_str().unwrap(), o["id"].as_str().unwrap()))
        .collect();
    assert!(
        listed.contains(&(gone.as_str(), gone_ids[0].as_str())),
        "{out}"
    );
    assert!(!listed.iter().any(|(o, _)| *o == live), "{out}");
    let (_, table) = orphans(claims_dir, &["--owner", &gone]);
    assert!(
        table.contains(&gone) && table.contains(&gone_ids[0][..12]),
        "{table}"
    );

    // --remove (narrowed to this test's owner: other drovers may share this engine).
    let (code, out) = orphans(claims_dir, &["--remove", "--owner", &gone]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("removed 1"), "{out}");
    assert!(owned(&gone).is_empty(), "{:?}", owned(&gone));
    assert_eq!(
        owned(&live),
        live_ids,
        "the running drover's container stays"
    );
    let (_, after) = orphans(claims_dir, &["--owner", &gone]);
    assert!(after.starts_with("no orphans"), "{after}");
}
