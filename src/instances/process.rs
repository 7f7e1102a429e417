//! `provider = "process"`: runs `command` (with `{port}` replaced by a free
//! loopback port drover picked, and `PORT` set) under `drover __supervise`, in
//! its own process group; its output goes to drover's log, prefixed with the
//! pool and instance id and rate limited ([`LOG_LINES_PER_SEC`]). Stopping an
//! instance stops its whole group (SIGTERM, SIGKILL after `stop_timeout`);
//! once its supervisor has exited, whatever is left in the group is killed.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{ChildStdin, Command};
use tokio::sync::oneshot;

use super::{Instance, Provider, Started};
use crate::config::InstancesConfig;

/// Instance output lines logged per second and instance; more are counted and dropped. Default 50.
pub const LOG_LINES_PER_SEC: u32 = 50;

struct Running {
    instance: Instance,
    pgid: i32,
    /// Kept open: its EOF tells the supervisor drover is gone.
    _stdin: ChildStdin,
}

/// Runs instances as local processes.
pub struct ProcessProvider {
    pool: String,
    cfg: InstancesConfig,
    running: Arc<Mutex<HashMap<String, Running>>>,
}

impl ProcessProvider {
    pub fn new(pool: &str, cfg: InstancesConfig) -> ProcessProvider {
        ProcessProvider {
            pool: pool.to_string(),
            cfg,
            running: Arc::default(),
        }
    }

    fn pgid(&self, id: &str) -> Option<i32> {
        let r = self.running.lock();
        r.get(id).map(|run| run.pgid)
    }

    /// The process ids of running instances (for CPU metrics), by instance id.
    pub fn pids(&self) -> Vec<(String, i32)> {
        let r = self.running.lock();
        r.iter().map(|(id, run)| (id.clone(), run.pgid)).collect()
    }
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn log_lines<R: AsyncRead + Unpin + Send + 'static>(
    pool: String,
    id: String,
    stream: &'static str,
    r: R,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(r).lines();
        let (mut window, mut count, mut dropped) = (Instant::now(), 0u32, 0u64);
        while let Ok(Some(line)) = lines.next_line().await {
            if window.elapsed() >= Duration::from_secs(1) {
                if dropped > 0 {
                    tracing::warn!(pool = %pool, instance = %id, dropped, "instance output rate limited");
                }
                (window, count, dropped) = (Instant::now(), 0, 0);
            }
            count += 1;
            if count > LOG_LINES_PER_SEC {
                dropped += 1;
                continue;
            }
            super::output::log_line(&pool, &id, stream, &line);
        }
    });
}

impl Provider for ProcessProvider {
    fn start(&self) -> BoxFuture<'_, Result<Started, String>> {
        Box::pin(async move {
            let port = free_port().map_err(|e| format!("no free port: {e}"))?;
            let argv: Vec<String> = self
                .cfg
                .command
                .iter()
                .map(|a| a.replace("{port}", &port.to_string()))
                .collect();
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot find the drover executable: {e}"))?;
            let mut cmd = Command::new(exe);
            // The admin token's variables are not inherited; `env` may still set any
            // variable explicitly (applied after, so it wins).
            for name in &self.cfg.withheld_env {
                cmd.env_remove(name);
            }
            // Spawned from the runtime's (main) thread: the supervisor's
            // parent-death signal fires when the thread that forked it exits.
            let mut child = cmd
                .arg("__supervise")
                .arg("--parent")
                .arg(std::process::id().to_string())
                .arg("--")
                .args(&argv)
                .env("PORT", port.to_string())
                .envs(&self.cfg.env)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .spawn()
                .map_err(|e| format!("cannot start {:?}: {e}", argv.join(" ")))?;
            let pid = child.id().ok_or("instance exited at once")? as i32;
            let id = format!("p{pid}");
            let instance = Instance {
                id: id.clone(),
                address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            };
            if let Some(out) = child.stdout.take() {
                log_lines(self.pool.clone(), id.clone(), "stdout", out);
            }
            if let Some(err) = child.stderr.take() {
                log_lines(self.pool.clone(), id.clone(), "stderr", err);
            }
            let stdin = child.stdin.take().ok_or("no stdin pipe")?;
            self.running.lock().insert(
                id.clone(),
                Running {
                    instance: instance.clone(),
                    pgid: pid,
                    _stdin: stdin,
                },
            );
            let (tx, exited) = oneshot::channel();
            let running = self.running.clone();
            tokio::spawn(async move {
                let why = match child.wait().await {
                    Ok(s) => match s.code() {
                        Some(127) => {
                            "the command could not be started (exit 127: not found?)".to_string()
                        }
                        Some(c) => format!("exited with status {c}"),
                        None => "killed by a signal".to_string(),
                    },
                    Err(e) => format!("wait failed: {e}"),
                };
                // The supervisor is gone (its application with it): whatever is
                // left in the group (processes the application started) goes too.
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                running.lock().remove(&id);
                let _ = tx.send(why);
            });
            Ok(Started { instance, exited })
        })
    }

    fn stop(&self, id: &str, timeout: Duration) -> BoxFuture<'_, ()> {
        let id = id.to_string();
        Box::pin(async move {
            let pgid = {
                let r = self.running.lock();
                match r.get(&id) {
                    Some(run) => run.pgid,
                    None => return,
                }
            };
            // The supervisor passes SIGTERM once to its whole group; a frozen
            // (warm) instance is thawed first so that it can act on it.
            let group = Pid::from_raw(pgid);
            let _ = killpg(group, Signal::SIGCONT);
            let _ = kill(group, Signal::SIGTERM);
            let deadline = Instant::now() + timeout;
            // The group is gone once signalling it fails (ESRCH).
            while Instant::now() < deadline {
                if killpg(group, None).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = killpg(group, Signal::SIGKILL);
        })
    }

    /// SIGSTOP to the instance's group, then SIGCONT to its supervisor alone:
    /// the application is frozen, the supervisor still acts when drover dies
    /// (its SIGKILL reaches stopped processes too).
    fn freeze(&self, id: &str) -> BoxFuture<'_, Result<(), String>> {
        let pgid = self.pgid(id);
        Box::pin(async move {
            let pgid = pgid.ok_or("instance is not running")?;
            killpg(Pid::from_raw(pgid), Signal::SIGSTOP)
                .map_err(|e| format!("SIGSTOP failed: {e}"))?;
            kill(Pid::from_raw(pgid), Signal::SIGCONT)
                .map_err(|e| format!("SIGCONT to the supervisor failed: {e}"))
        })
    }

    fn thaw(&self, id: &str) -> BoxFuture<'_, Result<(), String>> {
        let pgid = self.pgid(id);
        Box::pin(async move {
            let pgid = pgid.ok_or("instance is not running")?;
            killpg(Pid::from_raw(pgid), Signal::SIGCONT).map_err(|e| format!("SIGCONT failed: {e}"))
        })
    }

    fn process_groups(&self) -> Vec<i32> {
        self.pids().into_iter().map(|(_, pgid)| pgid).collect()
    }

    fn list(&self) -> Vec<Instance> {
        let r = self.running.lock();
        r.values().map(|run| run.instance.clone()).collect()
    }
}
