//! End to end: `drover ctl` against a live drover (the real binary both sides).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{client, one_pool, Backend, Drover, Proc, BIN};

/// Runs `drover ctl ARGS`; returns (exit code, stdout, stderr).
fn ctl(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("ctl")
        .args(args)
        .env_remove("DROVER_ADMIN")
        .env_remove("DROVER_ADMIN_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn ctl_lists_changes_and_follows_a_live_drover() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let d =
        Drover::start(&one_pool(&[a.addr], "").replace("[admin]\n", "[admin]\ntoken = \"tok\"\n"));
    client().get(d.url("/x")).send().await.unwrap();
    let admin = d.admin_url("");
    let (aa, ba) = (a.addr.to_string(), b.addr.to_string());
    let with = |args: &[&str]| {
        let mut v = vec!["--admin", admin.as_str(), "--token", "tok"];
        v.extend_from_slice(args);
        ctl(&v, &[])
    };

    let (code, out, err) = with(&["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ready"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("app ") && l.contains("round_robin")),
        "{out}"
    );

    let (code, out, _) = with(&["add", "app", &ba, "--weight", "3"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("added {ba} to pool app (weight 3")),
        "{out}"
    );
    let (code, _, err) = with(&["add", "app", &ba]);
    assert_eq!(code, 1);
    assert!(
        err.contains("409") && err.contains("already has member"),
        "{err}"
    );

    let (code, out, _) = with(&["drain", "app", &aa]);
    assert_eq!(code, 0);
    assert!(out.contains("draining"), "{out}");
    let (code, out, _) = with(&["pools"]);
    assert_eq!(code, 0);
    let row = out
        .lines()
        .find(|l| l.starts_with(&aa))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains("draining") && row.contains("drained via admin API"),
        "{row}"
    );
    assert!(out.lines().next().unwrap().starts_with("pool app"), "{out}");
    assert!(
        out.contains("BACKEND") && out.contains("IN FLIGHT"),
        "{out}"
    );

    // --json gives the API's JSON.
    let (code, out, _) = with(&["--json", "pools"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["backends"].as_array().unwrap().len(), 2);

    let (code, out, _) = with(&["remove", "app", &ba]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("removing"), "{out}");
    let (code, _, err) = with(&["scale", "app", "3"]);
    assert_eq!(code, 1);
    assert!(err.contains("pool app has no managed instances"), "{err}");

    let (code, out, _) = with(&["events"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ID"), "{out}");
    for kind in ["added", "draining"] {
        assert!(out.lines().any(|l| l.contains(kind)), "{kind} in {out}");
    }

    // reload: ok, then an invalid file's errors printed.
    let (code, out, _) = with(&["reload"]);
    assert_eq!((code, out.trim()), (0, "config reloaded"));
    std::fs::write(&d.config_path, "[pools.app]\nbackends = [\"nope\"]\n").unwrap();
    let (code, _, err) = with(&["reload"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("400") && err.contains("pools.app.backends[0]"),
        "{err}"
    );

    // The environment works as the flags do; a wrong token is refused with the API's words.
    let (code, out, _) = ctl(
        &["pools"],
        &[("DROVER_ADMIN", &admin), ("DROVER_ADMIN_TOKEN", "tok")],
    );
    assert_eq!(code, 0);
    assert!(out.contains("pool app"));
    let (code, _, err) = ctl(&["--admin", &admin, "pools"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("401") && err.contains("unauthorized"), "{err}");

    // events --follow prints new events as they happen.
    let admin_hostport = d.admin.to_string();
    let follow = Proc::spawn(
        &[
            "ctl",
            "--admin",
            &admin_hostport,
            "--token",
            "tok",
            "events",
            "--follow",
        ],
        None,
    );
    follow
        .stdout
        .wait_for("header", Duration::from_secs(5), |l| l.starts_with("ID"));
    let (code, _, _) = with(&["drain", "app", &aa]); // already draining: no new event
    assert_eq!(code, 0);
    std::fs::write(
        &d.config_path,
        one_pool(&[a.addr], "").replace("[admin]\n", "[admin]\ntoken = \"tok\"\n"),
    )
    .unwrap();
    with(&["reload"]);
    follow
        .stdout
        .wait_for("the reload event", Duration::from_secs(5), |l| {
            l.contains("reload") && l.contains("config reloaded from")
        });
}

#[test]
fn ctl_says_clearly_when_drover_is_not_running() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (code, out, err) = ctl(&["--admin", &url, "status"], &[]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains(&format!("cannot reach drover admin at {url}: connection refused — is drover running? set --admin")),
        "{err}"
    );
    let (code, _, err) = ctl(&["--admin", "https://x:1", "pools"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("https is not supported"), "{err}");
    let (code, _, _) = ctl(&["pools", "extra-arg"], &[]);
    assert_eq!(code, 2, "bad arguments exit 2");
}
