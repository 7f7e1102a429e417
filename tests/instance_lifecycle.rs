//! Managed process instances over their whole life: a graceful shutdown stops
//! them without replacing any, a dead supervisor takes its application (and
//! what that started) with it, and nothing drover started outlives it.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{healthy_count, wait_until, Drover, BIN};

/// One process as `/proc/PID/stat` shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    ppid: i32,
    state: char,
    /// Start time in clock ticks since boot (tells a reused pid apart).
    start: u64,
}

fn stat(pid: i32) -> Option<Stat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp ... starttime(22nd) ..."; comm may hold spaces.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Every live descendant of `root` (at any depth), with its start time.
fn descendants(root: i32) -> HashMap<i32, u64> {
    let mut children: HashMap<i32, Vec<(i32, Stat)>> = HashMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if let Some(s) = stat(pid) {
            children.entry(s.ppid).or_default().push((pid, s));
        }
    }
    let mut out = HashMap::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for (pid, s) in children.get(&p).into_iter().flatten() {
            if !matches!(s.state, 'Z' | 'X') {
                out.insert(*pid, s.start);
            }
            todo.push(*pid);
        }
    }
    out
}

/// Whether this very process (pid and start time) still runs (a zombie does not).
fn alive(pid: i32, start: u64) -> bool {
    stat(pid).is_some_and(|s| s.start == start && !matches!(s.state, 'Z' | 'X'))
}

fn still_running(seen: &HashMap<i32, u64>) -> Vec<String> {
    seen.iter()
        .filter(|(pid, start)| alive(**pid, **start))
        .map(|(pid, _)| format!("{pid} {}", cmdline(*pid)))
        .collect()
}

/// Waits up to `secs` until none of `seen` runs; panics with the survivors.
fn assert_all_gone(seen: &HashMap<i32, u64>, secs: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = still_running(seen);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: still running: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process pool of `count` instances running `command` (a TOML array).
fn config(count: u32, command: &str) -> String {
    format!(
        r#"
[[routes]]
pool = "app"
[server]
listen = ["127.0.0.1:0"]
[admin]
listen = "127.0.0.1:0"
[pools.app.instances]
provider = "process"
command = {command}
count = {count}
start_timeout = "20s"
drain_timeout = "2s"
stop_timeout = "5s"
"#
    )
}

/// drover running a process pool of `count` instances of `command`, all healthy.
async fn start_healthy(count: u32, command: &str) -> Drover {
    let d = Drover::start(&config(count, command));
    wait_until("healthy instances", 60, async || {
        healthy_count(&d, "app").await == count as usize
    })
    .await;
    d
}

/// `drover backend` behind `sh`, which starts a grandchild (`sleep 300`) first.
fn backend_with_a_grandchild() -> String {
    format!(r#"["/bin/sh", "-c", "sleep 300 & exec '{BIN}' backend --listen 127.0.0.1:$PORT"]"#)
}

/// `drover backend` behind `sh`, which takes 2 s to stop after SIGTERM: long
/// enough for a controller that still ran to see an exit and replace it.
fn slow_stopping_command() -> String {
    format!(
        r#"["/bin/sh", "-c", "'{BIN}' backend --listen 127.0.0.1:$PORT & trap 'sleep 2; exit 0' TERM; wait"]"#
    )
}

/// The instance events drover logged (JSON on stderr) after "shutting down".
fn events_after_shutdown(d: &Drover) -> Vec<serde_json::Value> {
    let lines: Vec<serde_json::Value> = d
        .proc
        .stderr
        .all()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let start = lines
        .iter()
        .position(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("shutting down"))
        })
        .expect("a \"shutting down\" line");
    lines[start..]
        .iter()
        .filter(|v| v["message"] == "event")
        .cloned()
        .collect()
}

async fn shutdown_starts_and_replaces_nothing(signal: &str) {
    let mut d = start_healthy(2, &slow_stopping_command()).await;
    let seen = descendants(d.proc.pid());
    assert!(seen.len() >= 6, "supervisors, shells, backends: {seen:?}");

    d.proc.signal(signal);
    assert_eq!(d.proc.wait_exit(Duration::from_secs(30)), Some(0));
    let after = events_after_shutdown(&d);
    let kinds: Vec<&str> = after.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(
        !kinds
            .iter()
            .any(|k| matches!(*k, "instance_started" | "instance_failed")),
        "an instance was started or replaced after SIG{signal}: {after:#?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "stopped").count(),
        2,
        "both instances stopped: {after:#?}"
    );
    assert_all_gone(&seen, 5, &format!("after SIG{signal}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_every_instance_and_starts_or_replaces_none() {
    shutdown_starts_and_replaces_nothing("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_every_instance_and_starts_or_replaces_none() {
    shutdown_starts_and_replaces_nothing("INT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_supervisor_takes_its_application_with_it_and_nothing_outlives_drover() {
    let mut d = start_healthy(1, &backend_with_a_grandchild()).await;
    let mut seen = descendants(d.proc.pid());
    let of_drover: Vec<i32> = seen
        .keys()
        .copied()
        .filter(|p| stat(*p).is_some_and(|s| s.ppid == d.proc.pid()))
        .collect();
    let [supervisor] = of_drover[..] else {
        panic!("one supervisor expected: {of_drover:?} of {seen:?}");
    };
    assert!(cmdline(supervisor).contains("__supervise"));
    let app: Vec<i32> = seen
        .keys()
        .copied()
        .filter(|p| stat(*p).is_some_and(|s| s.ppid == supervisor))
        .collect();
    let [app] = app[..] else {
        panic!("one application expected: {app:?}");
    };
    let grandchild: Vec<i32> = seen
        .keys()
        .copied()
        .filter(|p| stat(*p).is_some_and(|s| s.ppid == app))
        .collect();
    assert!(
        grandchild.iter().any(|p| cmdline(*p).starts_with("sleep")),
        "the application's own child: {grandchild:?}"
    );

    // SIGKILL the supervisor (the OOM killer's pick): the application dies with it.
    let app_start = seen[&app];
    let killed = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    while alive(app, app_start) {
        assert!(
            killed.elapsed() < Duration::from_secs(1),
            "the application outlived its supervisor by 1 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The rest of its group (the grandchild) goes too, and drover replaces it.
    let first: HashMap<i32, u64> = seen.clone();
    assert_all_gone(&first, 5, "after the supervisor was killed");
    wait_until("a replacement", 60, async || {
        healthy_count(&d, "app").await == 1
            && descendants(d.proc.pid())
                .keys()
                .any(|p| !first.contains_key(p))
    })
    .await;
    seen.extend(descendants(d.proc.pid()));

    // Graceful stop of drover: nothing it ever started is left, at any depth.
    d.proc.signal("TERM");
    assert_eq!(d.proc.wait_exit(Duration::from_secs(30)), Some(0));
    assert_all_gone(&seen, 5, "after drover's SIGTERM");
    let pids: HashSet<i32> = seen.keys().copied().collect();
    assert!(pids.len() >= 6, "{pids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_drover_takes_its_process_instances_with_it() {
    let mut d = start_healthy(2, &backend_with_a_grandchild()).await;
    let seen = descendants(d.proc.pid());
    assert!(seen.len() >= 6, "{seen:?}");
    d.proc.signal("KILL");
    let _ = d.proc.wait_exit(Duration::from_secs(5));
    // SIGTERM from the parent-death signal at once, SIGKILL after ORPHAN_GRACE (3 s).
    assert_all_gone(&seen, 5, "after drover was SIGKILLed");
}

#[test]
fn a_supervisor_or_child_whose_parent_is_already_gone_runs_nothing() {
    // pid 1 is never our parent here: both exit at once instead of running `sleep`.
    for sub in ["__supervise", "__exec-child"] {
        let t = Instant::now();
        let out = std::process::Command::new(BIN)
            .args([sub, "--parent", "1", "--", "sleep", "30"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{sub}: {out:?}");
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{sub} ran the command"
        );
    }
}
