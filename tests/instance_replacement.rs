//! The only instance of a managed pool dies under load: requests that find it
//! dead (connection refused, nothing sent) wait for its replacement instead
//! of failing, whatever their method.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client, healthy_count, wait_until, Drover, BIN, HEADER};
use tokio::sync::RwLock;

/// Parent pid and state of a process, from `/proc/PID/stat`.
fn ppid_state(pid: i32) -> Option<(i32, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ..."; comm may hold spaces.
    let rest = s.get(s.rfind(')')? + 1..)?;
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    Some((f.next()?.parse().ok()?, state))
}

/// Live children of `parent`.
fn children(parent: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| ppid_state(*p).is_some_and(|(pp, st)| pp == parent && st != 'Z'))
        .collect()
}

/// The application process of the pool's only instance (the child of its supervisor).
fn application(drover: i32) -> i32 {
    let [supervisor] = children(drover)[..] else {
        panic!("one supervisor expected: {:?}", children(drover));
    };
    let [app] = children(supervisor)[..] else {
        panic!("one application expected: {:?}", children(supervisor));
    };
    app
}

fn config() -> String {
    format!(
        r#"
[[routes]]
pool = "app"
{HEADER}[pools.app]
retries = 2
[pools.app.health]
path = "/health"
interval = "200ms"
rise = 1
[pools.app.instances]
provider = "process"
command = ["{BIN}", "backend", "--listen", "127.0.0.1:{{port}}", "--name", "app-{{port}}"]
count = 1
start_timeout = "20s"
drain_timeout = "2s"
stop_timeout = "2s"
"#
    )
}

/// What the load saw.
#[derive(Default)]
struct Seen {
    ok: AtomicU64,
    /// `status cause detail` of every failure.
    failed: Mutex<Vec<String>>,
    /// Requests answered after the kill, by `X-Backend-Name`.
    after_kill: Mutex<HashMap<String, u64>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_wait_for_the_replacement_of_a_killed_only_instance() {
    let d = Drover::start(&config());
    wait_until("the instance healthy", 60, async || {
        healthy_count(&d, "app").await == 1
    })
    .await;
    let first = client()
        .get(d.url("/"))
        .send()
        .await
        .unwrap()
        .headers()
        .get("x-backend-name")
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_string();

    // Clients take the gate's read side around each request: the kill (write
    // side) lands between requests, so none is in flight on the application
    // when it dies (a POST sent to it then is lost, rightly a 502) and every
    // request after it finds the instance dead and not yet replaced.
    let gate = Arc::new(RwLock::new(()));
    let seen = Arc::new(Seen::default());
    let killed = Arc::new(AtomicBool::new(false));
    let until = Instant::now() + Duration::from_secs(6);
    let mut clients = Vec::new();
    for c in 0..4 {
        let (gate, seen, killed, url) = (gate.clone(), seen.clone(), killed.clone(), d.url("/"));
        clients.push(tokio::spawn(async move {
            let http = client();
            for n in 0..2000 {
                if Instant::now() >= until {
                    break;
                }
                let pass = gate.read().await;
                let after = killed.load(Ordering::SeqCst);
                let req = if (c + n) % 2 == 0 {
                    http.get(format!("{url}get/{c}/{n}"))
                } else {
                    http.post(format!("{url}post/{c}/{n}"))
                        .body(format!("client {c} request {n}"))
                };
                match req.send().await {
                    Ok(r) if r.status() == 200 => {
                        seen.ok.fetch_add(1, Ordering::Relaxed);
                        if after {
                            let name = r
                                .headers()
                                .get("x-backend-name")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string();
                            *seen.after_kill.lock().unwrap().entry(name).or_default() += 1;
                        }
                    }
                    Ok(r) => {
                        let cause = r.headers().get("x-drover-error").cloned();
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        let why = format!("{status} {cause:?} {}", body.trim());
                        seen.failed.lock().unwrap().push(why);
                    }
                    Err(e) => seen
                        .failed
                        .lock()
                        .unwrap()
                        .push(format!("client error: {e}")),
                }
                drop(pass);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let app = application(d.proc.pid());
    {
        let _closed = gate.write().await;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(app),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        // Dead (its sockets closed) before any request goes on.
        let t = Instant::now();
        while ppid_state(app).is_some_and(|(_, st)| st != 'Z') {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "the application outlived SIGKILL"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        killed.store(true, Ordering::SeqCst);
    }
    for c in clients {
        c.await.unwrap();
    }

    let failed = seen.failed.lock().unwrap().clone();
    let after = seen.after_kill.lock().unwrap().clone();
    let ok = seen.ok.load(Ordering::Relaxed);
    eprintln!(
        "{ok} answered, {} failed; after the kill: {after:?}",
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} requests failed when the instance died: {:?}",
        failed.len(),
        failed.len() as u64 + ok,
        &failed[..failed.len().min(5)]
    );
    let replacement: u64 = after
        .iter()
        .filter(|(name, _)| **name != first && name.starts_with("app-"))
        .map(|(_, n)| n)
        .sum();
    assert!(
        replacement > 0,
        "no request served by a replacement of {first} after the kill: {after:?}"
    );
    assert_ne!(application(d.proc.pid()), app, "a new application runs");
}
