//! systemd `Type=notify`: drover started with `NOTIFY_SOCKET` pointing at a Unix
//! datagram socket this test owns (as systemd would), and `WATCHDOG_USEC` set.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{one_pool, Backend, Drover};

/// Messages received on the socket, one datagram each.
struct NotifySocket {
    sock: UnixDatagram,
    got: Vec<String>,
}

impl NotifySocket {
    /// Reads datagrams until one satisfies `f` (panics after `secs`); returns it.
    fn wait_for(&mut self, what: &str, secs: u64, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut buf = vec![0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; got {:?}",
                self.got
            );
            self.sock.set_read_timeout(Some(left)).unwrap();
            let Ok(n) = self.sock.recv(&mut buf) else {
                continue;
            };
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.got.push(msg.clone());
            if f(&msg) {
                return msg;
            }
        }
    }

    /// The messages so far without the watchdog pings.
    fn states(&self) -> Vec<String> {
        self.got
            .iter()
            .filter(|m| m.trim() != "WATCHDOG=1")
            .map(|m| m.lines().next().unwrap_or_default().to_string())
            .collect()
    }

    fn pings(&self) -> usize {
        self.got.iter().filter(|m| m.trim() == "WATCHDOG=1").count()
    }
}

#[test]
fn notifies_ready_reloading_ready_stopping_in_order_and_pings_the_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let mut notify = NotifySocket {
        sock: UnixDatagram::bind(&path).unwrap(),
        got: Vec::new(),
    };
    let backend = Backend::start("b1");
    // A slow-ish health check: READY must wait for its first round.
    let cfg = one_pool(
        &[backend.addr],
        "[pools.app.health]\npath = \"/health\"\ninterval = \"300ms\"\nrise = 1\n",
    );
    let socket = path.to_str().unwrap();
    let mut d = Drover::start_env(
        &cfg,
        &[],
        &[("NOTIFY_SOCKET", socket), ("WATCHDOG_USEC", "200000")],
    );

    let ready = notify.wait_for("READY=1", 20, |m| m.trim() == "READY=1");
    assert_eq!(ready, "READY=1\n");
    // READY means what /readyz means: listeners bound and the first health round done.
    let readyz = common::curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &d.admin_url("/readyz"),
    ]);
    assert_eq!(readyz, "200");

    // A reload: RELOADING=1 with the monotonic clock, then READY=1 again.
    d.proc.signal("HUP");
    let reloading = notify.wait_for("RELOADING=1", 20, |m| m.starts_with("RELOADING=1"));
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(usec.parse::<u64>().is_ok_and(|u| u > 0), "{usec}");
    notify.wait_for("READY=1 after the reload", 20, |m| m.trim() == "READY=1");

    // Watchdog pings every WATCHDOG_USEC / 2 = 100 ms: several arrive in a few seconds.
    let before = notify.pings();
    let t0 = Instant::now();
    for _ in 0..5 {
        notify.wait_for("a watchdog ping", 10, |m| m.trim() == "WATCHDOG=1");
    }
    assert!(notify.pings() >= before + 5);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "5 pings took {:?}",
        t0.elapsed()
    );

    d.proc.signal("TERM");
    notify.wait_for("STOPPING=1", 30, |m| m.trim() == "STOPPING=1");
    assert_eq!(d.proc.wait_exit(Duration::from_secs(30)), Some(0));
    assert_eq!(
        notify.states(),
        ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"]
    );
}

#[test]
fn the_example_unit_passes_systemd_analyze_verify() {
    let unit = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/systemd/drover.service"
    );
    let Ok(out) = Command::new("systemd-analyze")
        .args(["verify", unit])
        .output()
    else {
        eprintln!("!!! SKIPPED the_example_unit_passes_systemd_analyze_verify: systemd-analyze not installed");
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The binary path in ExecStart need not exist on the test machine.
    let real: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("/usr/local/bin/drover") && !l.trim().is_empty())
        .collect();
    assert!(real.is_empty(), "systemd-analyze verify: {stderr}");
}
