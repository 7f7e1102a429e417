//! End to end: `drover check`, `drover init`, exit codes and messages.

mod common;

use std::process::Command;

use common::BIN;

fn drover(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn init_writes_a_starter_that_check_accepts_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = drover(&["init"], dir.path());
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(dir.path().join("drover.toml")).unwrap();
    assert!(text.contains("[pools.app]") && text.contains('#'));
    let (code, out, err) = drover(&["check", "-c", "drover.toml"], dir.path());
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("ok"));
    assert!(lines.next().unwrap().starts_with("pool app:"), "{out}");
    let (code, _, err) = drover(&["init"], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, _) = drover(&["init", "other.toml"], dir.path());
    assert_eq!(code, 0);
    assert!(dir.path().join("other.toml").exists());
}

#[test]
fn check_lists_every_error_with_line_column_and_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let bad = r#"[server]
listen = ["127.0.0.1:8080"]
colour = "blue"

[[routes]]
pool = "nope"

[pools.api]
backends = ["127.0.0.1:8001", "not-an-address"]
balance = "roundrobin"

[pools.api.health]
path = "/health"
interval = "2 seconds"

[pools.empty]
"#;
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    let (code, out, err) = drover(&["check", "-c", "bad.toml"], dir.path());
    assert_eq!(code, 2, "{out}{err}");
    for want in [
        "bad.toml:3:1: server.colour",
        "bad.toml:6:8: routes[0].pool",
        "bad.toml:9:31: pools.api.backends[1]",
        "bad.toml:10:11: pools.api.balance",
        "bad.toml:14:12: pools.api.health.interval: expected a duration like \"2s\"",
        "pools.empty",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn run_with_an_invalid_config_exits_2_with_the_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("drover.toml"), "[server]\nlisten = 5\n").unwrap();
    let (code, _, err) = drover(&["run"], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("drover.toml:2:10: server.listen"), "{err}");
}

#[test]
fn run_on_a_port_in_use_says_so_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = format!(
        "[server]\nlisten = [\"{}\"]\n[admin]\nlisten = \"127.0.0.1:0\"\n[pools.a]\nbackends = [\"127.0.0.1:1\"]\n",
        taken.local_addr().unwrap()
    );
    std::fs::write(dir.path().join("d.toml"), cfg).unwrap();
    let (code, _, err) = drover(&["run", "-c", "d.toml"], dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("cannot listen on {}", taken.local_addr().unwrap())),
        "{err}"
    );
}

#[test]
fn check_of_a_missing_file_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = drover(&["check", "-c", "missing.toml"], dir.path());
    assert_eq!(code, 2);
    assert!(
        err.contains("missing.toml") && err.contains("No such file"),
        "{err}"
    );
}
