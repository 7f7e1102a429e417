//! gRPC end to end through drover over h2c, with a real gRPC server and
//! client nobody here wrote: Python `grpcio` and `grpcio-health-checking`
//! (tests/grpc_support/*.py). The venv comes from `.ci/run`
//! (`/var/tmp/drover-venv`, or `DROVER_PYTHON`); without it the tests skip
//! loudly, except under `CI`, where they fail.

mod common;
mod tls_support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const SUPPORT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc_support");

/// The Python with grpcio, or `None` (skip) outside CI.
fn python() -> Option<String> {
    let py = std::env::var("DROVER_PYTHON")
        .unwrap_or_else(|_| "/var/tmp/drover-venv/bin/python".to_string());
    let ok = Command::new(&py)
        .args(["-c", "import grpc, grpc_health.v1.health"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(py);
    }
    let why = format!(
        "{py} has no grpcio / grpcio-health-checking: \
         python3 -m venv /var/tmp/drover-venv && /var/tmp/drover-venv/bin/pip install grpcio grpcio-health-checking"
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIPPED (gRPC end-to-end test): {why}");
    None
}

/// A grpcio server named `name`; its stdout lines are JSON events.
struct GrpcServer {
    proc: Proc,
    port: u16,
}

impl GrpcServer {
    fn start(py: &str, name: &str) -> GrpcServer {
        GrpcServer::start_env(py, name, &[])
    }

    /// With `env` (`DROVER_GRPC_TLS_CERT`/`_KEY`: serve TLS).
    fn start_env(py: &str, name: &str, env: &[(&str, &str)]) -> GrpcServer {
        let mut child = Command::new(py)
            .arg(format!("{SUPPORT}/server.py"))
            .arg(name)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python");
        let stdout = Lines::default();
        let stderr = Lines::default();
        follow(&stdout, child.stdout.take().unwrap());
        follow(&stderr, child.stderr.take().unwrap());
        let proc = Proc {
            child,
            stdout,
            stderr,
        };
        let line = proc
            .stdout
            .wait_for("grpc server listening", Duration::from_secs(30), |l| {
                l.contains("listening")
            });
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let port = v["listening"].as_u64().unwrap() as u16;
        GrpcServer { proc, port }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sets the health status (`SERVING` / `NOT_SERVING`).
    fn set_health(&mut self, status: &str) {
        let stdin = self.proc.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{status}").unwrap();
        stdin.flush().unwrap();
    }

    fn calls(&self, method: &str) -> usize {
        let needle = format!("\"call\": \"{method}\"");
        self.proc
            .stdout
            .all()
            .iter()
            .filter(|l| l.contains(&needle))
            .count()
    }
}

fn follow(lines: &Lines, r: impl std::io::Read + Send + 'static) {
    lines.follow(r);
}

/// One call with the grpcio client: its final JSON line.
fn call(py: &str, target: &str, kind: &str, arg: &str, timeout_s: f64) -> serde_json::Value {
    call_env(py, target, kind, arg, timeout_s, &[])
}

/// [`call`] with `env` (`DROVER_GRPC_CA`: over TLS).
fn call_env(
    py: &str,
    target: &str,
    kind: &str,
    arg: &str,
    timeout_s: f64,
    env: &[(&str, &str)],
) -> serde_json::Value {
    let out = Command::new(py)
        .arg(format!("{SUPPORT}/client.py"))
        .envs(env.iter().copied())
        .args([target, kind, arg, &timeout_s.to_string()])
        .output()
        .expect("python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_else(|| {
        panic!(
            "client printed nothing; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(last).unwrap()
}

fn config(members: &[String], extra: &str) -> String {
    let list: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    format!(
        r#"
{HEADER}[[routes]]
pool = "grpc"
[pools.grpc]
protocol = "h2c"
balance = "round_robin"
backends = [{}]
request_timeout = "10s"
{extra}
[pools.grpc.health]
kind = "grpc"
service = "test.Echo"
interval = "200ms"
timeout = "1s"
rise = 1
fall = 1
"#,
        list.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_four_call_kinds_pass_through_with_trailers_and_statuses() {
    let Some(py) = python() else { return };
    let a = GrpcServer::start(&py, "a");
    let d = Drover::start(&config(&[a.addr()], ""));
    wait_until("gRPC health check passes", 20, async || {
        healthy_count(&d, "grpc").await == 1
    })
    .await;
    let target = d.proxy.to_string();

    let r = call(&py, &target, "unary", "hello", 20.0);
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(r["responses"][0], "a:hello");
    assert_eq!(r["trailers"]["x-trailer"], "a", "trailers intact: {r}");

    let r = call(&py, &target, "server_stream", "5:20", 20.0);
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(
        r["responses"],
        serde_json::json!(["a:0", "a:1", "a:2", "a:3", "a:4"])
    );
    assert_eq!(r["trailers"]["x-trailer"], "a");

    let r = call(&py, &target, "client_stream", "a,bb,ccc,dddd", 20.0);
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(r["responses"][0], "a:4/10");
    assert_eq!(r["trailers"]["x-trailer"], "a");

    let r = call(&py, &target, "bidi", "x,y,z", 20.0);
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(r["responses"], serde_json::json!(["a:x", "a:y", "a:z"]));

    // The backend's own status and message pass through untouched.
    let r = call(
        &py,
        &target,
        "unary",
        "fail:INVALID_ARGUMENT:bad 100% input",
        20.0,
    );
    assert_eq!(r["code"], "INVALID_ARGUMENT", "{r}");
    assert_eq!(r["details"], "bad 100% input");
    assert_eq!(r["trailers"]["x-trailer"], "a");

    // A deadline shorter than the call: DEADLINE_EXCEEDED, and drover does
    // not wait for request_timeout (10 s) either.
    let t0 = std::time::Instant::now();
    let r = call(&py, &target, "unary", "sleep:3000", 0.5);
    assert_eq!(r["code"], "DEADLINE_EXCEEDED", "{r}");
    assert!(t0.elapsed() < Duration::from_secs(3));
}

/// The `deadline` answer of server `name`: the ms left of the call when it arrived there.
fn deadline_seen(r: &serde_json::Value, name: &str) -> u64 {
    assert_eq!(r["code"], "OK", "{r}");
    let s = r["responses"][0].as_str().unwrap();
    let ms = s.strip_prefix(&format!("{name}:deadline:")).unwrap();
    ms.parse()
        .unwrap_or_else(|_| panic!("no deadline reached the server: {s}"))
}

/// The `grpc-timeout` sent upstream is what is left of the call's deadline
/// (here after ~1 s queued behind another call), capped by `request_timeout`;
/// a call drover fails itself is logged with the gRPC status its client got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_sent_upstream_is_what_is_left_and_grpc_failures_are_logged() {
    let Some(py) = python() else { return };
    let a = GrpcServer::start(&py, "a");
    let d = Drover::start(&config(
        &[a.addr()],
        "max_connections_per_backend = 1\nqueue_timeout = \"20s\"",
    ));
    wait_until("gRPC health check passes", 20, async || {
        healthy_count(&d, "grpc").await == 1
    })
    .await;
    let target = d.proxy.to_string();
    // Nothing waits: the server sees (nearly) the client's 5 s.
    let fresh = deadline_seen(&call(&py, &target, "unary", "deadline", 5.0), "a");
    assert!((4000..=5000).contains(&fresh), "{fresh} ms");
    // Over request_timeout (10 s): capped.
    let capped = deadline_seen(&call(&py, &target, "unary", "deadline", 60.0), "a");
    assert!((9000..=10_000).contains(&capped), "{capped} ms");
    // The only slot is taken for 3 s: the call waits in the queue first.
    let busy = tokio::task::spawn_blocking({
        let (py, target) = (py.clone(), target.clone());
        move || call(&py, &target, "unary", "sleep:3000", 20.0)
    });
    let t0 = std::time::Instant::now();
    while a.calls("Unary") < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the busy call never came"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Its client needs well under a second to start: over a second queued. Sent
    // as it came (the old behaviour), the server would see nearly 5 s.
    let queued = deadline_seen(&call(&py, &target, "unary", "deadline", 5.0), "a");
    assert!(
        (500..=3900).contains(&queued),
        "{queued} ms left after the queue"
    );
    assert_eq!(busy.await.unwrap()["code"], "OK");

    // drover's own failure (nothing listens there: no healthy member): UNAVAILABLE
    // to the client; the HTTP status it stands for and grpc_status 14 in the access log.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let logged = Drover::start(
        &config(&[dead_addr], "retries = 0")
            .replace("access = false", "access = true\naccess_format = \"json\""),
    );
    let r = call(&py, &logged.proxy.to_string(), "unary", "x", 5.0);
    assert_eq!(r["code"], "UNAVAILABLE", "{r}");
    let line = logged
        .proc
        .stdout
        .wait_for("the access log line", Duration::from_secs(10), |l| {
            l.contains("\"grpc_status\"")
        });
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["grpc_status"], 14, "{v}");
    assert!(v["status"] == 502 || v["status"] == 503, "{v}");
    assert!(v["error"].is_string(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_killed_mid_stream_gives_unavailable_and_the_next_call_works() {
    let Some(py) = python() else { return };
    let mut servers = vec![GrpcServer::start(&py, "a"), GrpcServer::start(&py, "b")];
    let addrs: Vec<String> = servers.iter().map(GrpcServer::addr).collect();
    let d = Drover::start(&config(&addrs, ""));
    wait_until("both healthy", 20, async || {
        healthy_count(&d, "grpc").await == 2
    })
    .await;
    let target = d.proxy.to_string();
    // 40 messages 100 ms apart: the stream is in flight when its server dies.
    let mut client = Command::new(&py)
        .arg(format!("{SUPPORT}/client.py"))
        .args([target.as_str(), "server_stream", "40:100", "30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let got = Lines::default();
    follow(&got, client.stdout.take().unwrap());
    got.wait_for("first streamed message", Duration::from_secs(20), |l| {
        l.contains("\"got\"")
    });
    let victim = servers
        .iter()
        .position(|s| s.calls("ServerStream") == 1)
        .expect("one server has the stream");
    let mut dead = servers.remove(victim);
    dead.proc.child.kill().unwrap();
    dead.proc.child.wait().unwrap();
    let status = client.wait().unwrap();
    assert!(status.success());
    let all = got.all();
    let last: serde_json::Value = serde_json::from_str(all.last().unwrap()).unwrap();
    assert_eq!(last["code"], "UNAVAILABLE", "{last}");
    let n = last["responses"].as_array().unwrap().len();
    assert!((1..40).contains(&n), "cut mid-stream after {n} messages");

    // The next call succeeds, on the other member.
    let survivor = servers[0].proc.stdout.clone();
    let name = if victim == 0 { "b" } else { "a" };
    let r = call(&py, &target, "unary", "after", 20.0);
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(r["responses"][0], format!("{name}:after"));
    assert!(!survivor.all().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_not_serving_takes_the_member_out() {
    let Some(py) = python() else { return };
    let mut a = GrpcServer::start(&py, "a");
    let b = GrpcServer::start(&py, "b");
    let d = Drover::start(&config(&[a.addr(), b.addr()], ""));
    wait_until("both healthy", 20, async || {
        healthy_count(&d, "grpc").await == 2
    })
    .await;
    a.set_health("NOT_SERVING");
    wait_until("a unhealthy", 20, async || {
        healthy_count(&d, "grpc").await == 1
    })
    .await;
    let p = pool_json(&d, "grpc").await;
    let a_state = p["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["address"] == a.addr())
        .unwrap()
        .clone();
    assert_eq!(a_state["state"], "unhealthy", "{p}");
    assert!(
        a_state["reason"].to_string().contains("NOT_SERVING"),
        "{a_state}"
    );
    let target = d.proxy.to_string();
    let before = a.calls("Unary");
    for i in 0..6 {
        let r = call(&py, &target, "unary", &format!("m{i}"), 20.0);
        assert_eq!(r["responses"][0], format!("b:m{i}"), "{r}");
    }
    assert_eq!(
        a.calls("Unary"),
        before,
        "no call went to the NOT_SERVING member"
    );
    a.set_health("SERVING");
    wait_until("a back", 20, async || healthy_count(&d, "grpc").await == 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_is_retried_only_for_methods_listed_as_idempotent() {
    let Some(py) = python() else { return };
    let a = GrpcServer::start(&py, "a");
    let b = GrpcServer::start(&py, "b");
    let members = [a.addr(), b.addr()];
    // a answers UNAVAILABLE, b answers: round robin sends one of two calls to a.
    let ask = "fail_on:a:UNAVAILABLE:a is busy";
    let listed = Drover::start(&config(
        &members,
        "grpc_retry_methods = [\"/test.Echo/Unary\"]",
    ));
    let unlisted = Drover::start(&config(
        &members,
        "grpc_retry_methods = [\"/test.Echo/Other\"]",
    ));
    for d in [&listed, &unlisted] {
        wait_until("both healthy", 20, async || {
            healthy_count(d, "grpc").await == 2
        })
        .await;
    }
    let codes = |d: &Drover| {
        let target = d.proxy.to_string();
        (0..4)
            .map(|_| {
                call(&py, &target, "unary", ask, 20.0)["code"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(codes(&listed), ["OK"; 4], "listed: retried on b");
    let mut got = codes(&unlisted);
    got.sort();
    assert_eq!(
        got,
        ["OK", "OK", "UNAVAILABLE", "UNAVAILABLE"],
        "not listed: not retried"
    );
    // The retried calls reached a first, each once.
    assert!(a.calls("Unary") >= 4, "{}", a.calls("Unary"));
}

/// gRPC over TLS at both ends: the grpcio client speaks TLS (ALPN h2) to
/// drover's `[server.tls]` listener, drover speaks TLS with ALPN h2 to a
/// grpcio TLS server (`protocol = "h2"`, verified with `ca_file`), and the
/// gRPC health check goes over TLS too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls_end_to_end_with_tls_health_checks() {
    let Some(py) = python() else { return };
    let pki = tls_support::pki();
    let (cert, key) = (
        pki.server.0.to_str().unwrap(),
        pki.server.1.to_str().unwrap(),
    );
    let ca = pki.ca.to_str().unwrap();
    let mut a = GrpcServer::start_env(
        &py,
        "a",
        &[("DROVER_GRPC_TLS_CERT", cert), ("DROVER_GRPC_TLS_KEY", key)],
    );
    let cfg = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[server.tls]
listen = ["127.0.0.1:0"]
certs = [{{ cert = "{cert}", key = "{key}" }}]
[admin]
listen = "127.0.0.1:0"
[log]
access = false
[[routes]]
pool = "grpc"
[pools.grpc]
protocol = "h2"
backends = ["https://localhost:{port}"]
ca_file = "{ca}"
request_timeout = "10s"
[pools.grpc.health]
kind = "grpc"
service = "test.Echo"
interval = "200ms"
timeout = "2s"
rise = 1
fall = 1
"#,
        port = a.port
    );
    let d = Drover::start(&cfg);
    wait_until("gRPC health check over TLS passes", 20, async || {
        healthy_count(&d, "grpc").await == 1
    })
    .await;
    let target = d.proc.stderr.addr_of("tls listening").to_string();
    let tls = [("DROVER_GRPC_CA", ca)];
    let r = call_env(&py, &target, "unary", "hello", 20.0, &tls);
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(r["responses"][0], "a:hello");
    assert_eq!(r["trailers"]["x-trailer"], "a", "trailers intact: {r}");
    let r = call_env(&py, &target, "bidi", "x,y,z", 20.0, &tls);
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(r["responses"], serde_json::json!(["a:x", "a:y", "a:z"]));
    assert_eq!(r["trailers"]["x-trailer"], "a");
    let r = call_env(&py, &target, "server_stream", "3:10", 20.0, &tls);
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(r["responses"], serde_json::json!(["a:0", "a:1", "a:2"]));
    // The backend's own status passes through, over TLS too.
    let r = call_env(
        &py,
        &target,
        "unary",
        "fail:NOT_FOUND:no such thing",
        20.0,
        &tls,
    );
    assert_eq!(r["code"], "NOT_FOUND", "{r}");
    assert_eq!(r["details"], "no such thing");
    // The gRPC health check over TLS sees NOT_SERVING, and says so.
    a.set_health("NOT_SERVING");
    wait_until("the member out on NOT_SERVING", 20, async || {
        healthy_count(&d, "grpc").await == 0
    })
    .await;
    let p = pool_json(&d, "grpc").await;
    assert!(
        p["backends"][0]["reason"]
            .to_string()
            .contains("NOT_SERVING"),
        "{p}"
    );
    a.set_health("SERVING");
    wait_until("the member back", 20, async || {
        healthy_count(&d, "grpc").await == 1
    })
    .await;
}
