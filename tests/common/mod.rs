//! Test harness: real `drover` processes on 127.0.0.1 port 0.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod docker;
pub mod managed;

pub const BIN: &str = env!("CARGO_BIN_EXE_drover");

/// Lines a child wrote, shared with a reader thread.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    pub fn follow(&self, r: impl std::io::Read + Send + 'static) {
        let lines = self.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until a line satisfies `f`, returning it.
    pub fn wait_for(&self, what: &str, timeout: Duration, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.0.lock().unwrap().iter().find(|l| f(l)) {
                return l.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; lines so far:\n{}",
                    self.all().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The `addr` field of the JSON log event with this message.
    pub fn addr_of(&self, message: &str) -> SocketAddr {
        let line = self.wait_for(message, Duration::from_secs(20), |l| {
            serde_json::from_str::<serde_json::Value>(l)
                .map(|v| v["message"] == message)
                .unwrap_or(false)
        });
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v["addr"].as_str().unwrap().parse().unwrap()
    }
}

/// A child process killed (SIGKILL) on drop unless already stopped.
pub struct Proc {
    pub child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Proc {
    pub fn spawn(args: &[&str], dir: Option<&std::path::Path>) -> Proc {
        Self::spawn_env(args, dir, &[])
    }

    /// [`Proc::spawn`] with extra environment variables for the child.
    pub fn spawn_env(args: &[&str], dir: Option<&std::path::Path>, env: &[(&str, &str)]) -> Proc {
        Self::spawn_under(&[], args, dir, env)
    }

    /// [`Proc::spawn_env`] through `prefix` (e.g. `["prlimit", "--nofile=64:64"]`).
    pub fn spawn_under(
        prefix: &[&str],
        args: &[&str],
        dir: Option<&std::path::Path>,
        env: &[(&str, &str)],
    ) -> Proc {
        let mut cmd = match prefix.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("DROVER_LOG");
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        let mut child = cmd.spawn().expect("spawn drover");
        let (stdout, stderr) = (Lines::default(), Lines::default());
        stdout.follow(child.stdout.take().unwrap());
        stderr.follow(child.stderr.take().unwrap());
        Proc {
            child,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for exit up to `timeout`, returning the exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `drover backend` process.
pub struct Backend {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub name: String,
}

impl Backend {
    pub fn start(name: &str) -> Backend {
        Self::start_on("127.0.0.1:0", name)
    }

    pub fn start_on(listen: &str, name: &str) -> Backend {
        Self::spawn(&[], listen, name)
    }

    /// [`Backend::start_on`] with `-v`: one `backend request` line (method, path,
    /// request_id) per request in `proc.stderr`, written before the response.
    pub fn start_logged(listen: &str, name: &str) -> Backend {
        Self::spawn(&["-v"], listen, name)
    }

    fn spawn(flags: &[&str], listen: &str, name: &str) -> Backend {
        let mut args = flags.to_vec();
        args.extend(["--log-format", "json", "backend", "--listen", listen]);
        args.extend(["--name", name]);
        let proc = Proc::spawn(&args, None);
        let addr = proc.stderr.addr_of("backend listening");
        Backend {
            proc,
            addr,
            name: name.to_string(),
        }
    }
}

/// A `drover run` process with a config written to a temp dir.
pub struct Drover {
    pub proc: Proc,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

impl Drover {
    /// Starts drover with this config (use `127.0.0.1:0` for listeners).
    pub fn start(config: &str) -> Drover {
        Self::start_with(config, &[])
    }

    pub fn start_with(config: &str, extra: &[&str]) -> Drover {
        Self::start_env(config, extra, &[])
    }

    /// [`Drover::start_with`] with extra environment variables for drover.
    pub fn start_env(config: &str, extra: &[&str], env: &[(&str, &str)]) -> Drover {
        Self::start_under(&[], config, extra, env)
    }

    /// [`Drover::start_env`] through `prefix` (see [`Proc::spawn_under`]).
    pub fn start_under(
        prefix: &[&str],
        config: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Drover {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("drover.toml");
        std::fs::write(&config_path, config).unwrap();
        let path = config_path.to_str().unwrap().to_string();
        let mut args = vec!["--log-format", "json", "run", "-c", &path];
        args.extend_from_slice(extra);
        let proc = Proc::spawn_under(prefix, &args, None, env);
        let proxy = proc.stderr.addr_of("proxy listening");
        let admin = proc.stderr.addr_of("admin listening");
        Drover {
            proc,
            proxy,
            admin,
            dir,
            config_path,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.proxy, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }
}

/// The text of [`HEADER`].
macro_rules! header {
    () => {
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[admin]\nlisten = \"127.0.0.1:0\"\n[log]\naccess = false\n"
    };
}

/// The head of a test config: listeners on port 0 (read back from drover's
/// log), no access log. Routes and pools come next.
pub const HEADER: &str = header!();

/// [`HEADER`] and every request to pool `app`; the `[pools.app]` section comes next.
pub const ONE_ROUTE: &str = concat!("\n", header!(), "[[routes]]\npool = \"app\"\n");

/// `[pools.app.health]` for static backends: `GET /health` every 200 ms (1 s
/// timeout), rise 1, fall 1, members healthy from the start.
pub const STATIC_HEALTH: &str = r#"
[pools.app.health]
path = "/health"
interval = "200ms"
timeout = "1s"
rise = 1
fall = 1
initial_state = "healthy"
"#;

/// A config with one pool over these backends.
pub fn one_pool(backends: &[SocketAddr], pool_extra: &str) -> String {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
    format!(
        "{ONE_ROUTE}[pools.app]\nbackends = [{}]\n{pool_extra}\n",
        list.join(", ")
    )
}

/// A reqwest client that does not follow redirects and has no proxy.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `curl` with these args; returns stdout.
pub fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--noproxy", "*"])
        .args(args)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// GET `url` and parse the JSON body.
pub async fn get_json(url: &str) -> serde_json::Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// POSTs a 7-byte body to `url`, asserts a 200 and returns its JSON (the backend's echo).
pub async fn post_ok(url: &str) -> serde_json::Value {
    let r = client().post(url).body("payload").send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// GET `url` and return the body as text.
pub async fn get_text(url: &str) -> String {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `POST /api/v1/reload` (a JSON request, as `drover ctl reload` sends); the response.
pub async fn reload(d: &Drover) -> reqwest::Response {
    client()
        .post(d.admin_url("/api/v1/reload"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap()
}

/// A self-signed certificate for `name` written to `dir`: (cert path, key path).
pub fn write_cert(dir: &std::path::Path, name: &str) -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    (
        cert.to_str().unwrap().to_string(),
        key.to_str().unwrap().to_string(),
    )
}

/// `GET /api/v1/pools/{pool}` from drover's admin API.
pub async fn pool_json(d: &Drover, pool: &str) -> serde_json::Value {
    get_json(&d.admin_url(&format!("/api/v1/pools/{pool}"))).await
}

/// How many members of `pool` are `healthy`.
pub async fn healthy_count(d: &Drover, pool: &str) -> usize {
    let p = pool_json(d, pool).await;
    p["backends"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["state"] == "healthy")
        .count()
}

/// Every event in drover's log (`GET /api/v1/events`).
pub async fn all_events(d: &Drover) -> Vec<serde_json::Value> {
    get_json(&d.admin_url("/api/v1/events"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// Polls `f` every 100 ms until it holds; panics after `secs`.
pub async fn wait_until(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Concurrent GET clients on one URL, counting answers that are not 200.
/// Bounded: each client stops after `max_requests` or when stopped.
pub struct Load {
    ok: Arc<std::sync::atomic::AtomicU64>,
    failed: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `clients` loops of GET `url` (at most `max_requests` each, at most 60 s).
    pub fn start(url: &str, clients: usize, max_requests: usize) -> Load {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let (ok, failed, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let clients = (0..clients)
            .map(|_| {
                let (url, ok, failed, stop) =
                    (url.to_string(), ok.clone(), failed.clone(), stop.clone());
                tokio::spawn(async move {
                    let c = client();
                    for _ in 0..max_requests {
                        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                            break;
                        }
                        match c.get(&url).send().await {
                            Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                            _ => failed.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                })
            })
            .collect();
        Load {
            ok,
            failed,
            stop,
            clients,
        }
    }

    /// Stops the clients and returns `(ok, failed)`.
    pub async fn stop(self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::Relaxed);
        for c in self.clients {
            c.await.unwrap();
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// The `[pools.POOL.autoscale]` section the container scaling tests share:
/// 1..3 instances on in-flight requests (target 2), evaluated every 500 ms.
pub fn autoscale_1_to_3(pool: &str) -> String {
    format!(
        r#"
[pools.{pool}.autoscale]
min = 1
max = 3
interval = "500ms"
target_inflight = 2
scale_up_cooldown = "500ms"
scale_down_cooldown = "3s"
"#
    )
}

/// Stops `heavy` while one client keeps requesting, waits (up to `secs`) until
/// `pool` is back to one member, and asserts that neither load saw a failed
/// request: scaling up and draining down both lose nothing.
pub async fn shrink_to_one_under_light_load(d: &Drover, pool: &str, heavy: Load, secs: u64) {
    let light = Load::start(&d.url("/delay/100"), 1, 600);
    let (ok_heavy, failed_heavy) = heavy.stop().await;
    wait_until("back to one member", secs, async || {
        let p = pool_json(d, pool).await;
        p["desired"] == 1 && p["backends"].as_array().unwrap().len() == 1
    })
    .await;
    let (ok_light, failed_light) = light.stop().await;
    assert_eq!(failed_heavy, 0, "failed requests while scaling up");
    assert_eq!(failed_light, 0, "failed requests while draining down");
    assert!(ok_heavy > 20 && ok_light > 5, "{ok_heavy} {ok_light}");
}

/// Waits (up to 20 s) until `pool` has adopted `n` instances, then checks every
/// 200 ms until `until` that it keeps `desired` = `n` and logs no `draining` or
/// `scale_down` event (what a drover restarted beside running instances must do).
pub async fn adopted_and_held(admin: SocketAddr, pool: &str, n: usize, until: Instant) {
    let pool_url = format!("http://{admin}/api/v1/pools/{pool}");
    let events_url = format!("http://{admin}/api/v1/events");
    let count = async |kinds: &[&str]| {
        let ev = get_json(&events_url).await;
        let ev = ev.as_array().cloned().unwrap_or_default();
        ev.into_iter()
            .filter(|e| e["kind"].as_str().is_some_and(|k| kinds.contains(&k)))
            .collect::<Vec<_>>()
    };
    wait_until("the instances adopted", 20, async || {
        count(&["instance_adopted"]).await.len() == n
    })
    .await;
    while Instant::now() < until {
        let down = count(&["draining", "scale_down"]).await;
        assert!(down.is_empty(), "scaled down after a restart: {down:#?}");
        let p = get_json(&pool_url).await;
        assert_eq!(p["desired"], n, "{p}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        count(&["instance_adopted"]).await.len(),
        n,
        "adopted once each"
    );
}
