//! `drover __supervise --parent PID -- CMD ARGS...`: the small parent drover
//! puts between itself and every process instance, so that nothing an
//! instance started outlives drover or its supervisor.
//!
//! - drover starts the supervisor as the leader of a new process group, with a
//!   pipe on its stdin. The supervisor asks for SIGTERM when drover dies
//!   (`PR_SET_PDEATHSIG`; it exits at once if drover is already gone).
//! - The supervisor starts `drover __exec-child --parent SELF -- CMD...` in
//!   the same group; that sets `PR_SET_PDEATHSIG(SIGKILL)`, checks that its
//!   parent is still the supervisor, and execs the command (the parent-death
//!   signal survives exec): if the supervisor dies, even by SIGKILL, the
//!   application is killed with it.
//! - A SIGTERM, SIGINT or SIGHUP to the supervisor (drover's way of stopping
//!   an instance) is passed once to the whole group, so the application and
//!   everything it started get one SIGTERM; drover kills the group after
//!   `stop_timeout`.
//! - When drover is gone (its pipe reaches EOF or the parent-death signal
//!   arrives), the supervisor sends SIGTERM to the group, then SIGKILL after
//!   [`ORPHAN_GRACE`].
//!
//! The supervisor exits with the application's status (128 + the signal if
//! it was killed by one).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::prctl;
use nix::sys::signal::{killpg, SigSet, Signal};
use nix::unistd::{getpgrp, getppid};

/// How long an orphaned instance gets between SIGTERM and SIGKILL. Default 3 s.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(3);

/// The signals that stop an instance (handled by a thread, blocked elsewhere).
fn stop_signals() -> SigSet {
    SigSet::from_iter([Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP])
}

/// Set once the group has been sent SIGTERM (it is sent once).
static TERMINATING: AtomicBool = AtomicBool::new(false);
/// Set once drover is known to be gone (the SIGKILL escalation runs once).
static ORPHANED: AtomicBool = AtomicBool::new(false);

/// SIGTERM to the whole group, once (the supervisor itself has it blocked).
fn terminate_group() {
    if !TERMINATING.swap(true, Ordering::SeqCst) {
        let _ = killpg(getpgrp(), Signal::SIGTERM);
    }
}

/// drover is gone: SIGTERM to the group, SIGKILL to it after [`ORPHAN_GRACE`].
fn orphaned() {
    if ORPHANED.swap(true, Ordering::SeqCst) {
        return;
    }
    terminate_group();
    std::thread::sleep(ORPHAN_GRACE);
    let _ = killpg(getpgrp(), Signal::SIGKILL);
}

/// Runs the supervisor; `parent` is drover's pid (default: the parent at
/// start), `argv` the command and its arguments.
pub fn run(parent: Option<i32>, argv: &[String]) -> ExitCode {
    if argv.is_empty() {
        eprintln!("drover __supervise: no command given");
        return ExitCode::from(2);
    }
    // Before any thread exists, so that every thread inherits the mask; the
    // child's mask is reset by std before exec.
    let signals = stop_signals();
    let _ = signals.thread_block();
    let parent = parent.unwrap_or_else(|| getppid().as_raw());
    let _ = prctl::set_pdeathsig(Signal::SIGTERM);
    if getppid().as_raw() != parent {
        eprintln!("drover __supervise: drover (pid {parent}) is already gone");
        return ExitCode::from(1);
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("drover __supervise: cannot find the drover executable: {e}");
            return ExitCode::from(127);
        }
    };
    // Spawned from this (the main) thread: the child's parent-death signal
    // fires when the thread that forked it exits, and this one lives longest.
    let mut child = match Command::new(exe)
        .arg("__exec-child")
        .arg("--parent")
        .arg(std::process::id().to_string())
        .arg("--")
        .args(argv)
        .stdin(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start {:?}: {e}", argv[0]);
            return ExitCode::from(127);
        }
    };
    std::thread::spawn(move || loop {
        if signals.wait().is_err() {
            return;
        }
        if getppid().as_raw() != parent {
            std::thread::spawn(orphaned);
        } else {
            terminate_group();
        }
    });
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        orphaned();
    });
    match child.wait() {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            let code = status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(9));
            ExitCode::from(code.clamp(0, 255) as u8)
        }
        Err(_) => ExitCode::from(1),
    }
}

/// `drover __exec-child --parent PID -- CMD ARGS...`: asks for SIGKILL when
/// its parent (the supervisor, pid `parent`) dies, exits if that has already
/// happened, then replaces itself with the command. Only returns on failure
/// (exit 127, as a shell does for a command it cannot run).
pub fn exec_child(parent: i32, argv: &[String]) -> ExitCode {
    let Some((cmd, args)) = argv.split_first() else {
        eprintln!("drover __exec-child: no command given");
        return ExitCode::from(2);
    };
    if let Err(e) = prctl::set_pdeathsig(Signal::SIGKILL) {
        eprintln!("drover __exec-child: PR_SET_PDEATHSIG failed: {e}");
        return ExitCode::from(127);
    }
    if getppid().as_raw() != parent {
        // The supervisor died before the parent-death signal was set.
        return ExitCode::from(1);
    }
    // The supervisor's mask (stop signals blocked) was inherited: the command
    // starts with none blocked. std's exec resets SIGPIPE (which the Rust
    // runtime ignores) to its default; the parent-death signal is kept.
    if let Err(e) = SigSet::all().thread_unblock() {
        eprintln!("drover __exec-child: cannot reset the signal mask: {e}");
        return ExitCode::from(127);
    }
    let e = Command::new(cmd).args(args).exec();
    eprintln!("cannot start {cmd:?}: {e}");
    ExitCode::from(127)
}
