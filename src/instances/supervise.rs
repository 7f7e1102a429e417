//! `drover __supervise -- CMD ARGS...`: the small parent drover puts between
//! itself and every process instance, so that no instance outlives drover.
//!
//! drover starts the supervisor as the leader of a new process group with a
//! pipe on its stdin; the supervisor starts the command in the same group and
//! waits. When the pipe reaches EOF — drover exited, even by SIGKILL — the
//! supervisor sends SIGTERM to the command, then SIGKILL to the whole group
//! after [`ORPHAN_GRACE`]. The supervisor exits with the command's status.
//! (A parent-death signal would need `prctl` in `pre_exec`, i.e. unsafe code.)

use std::io::Read;
use std::process::{Command, ExitCode};
use std::time::Duration;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{getpgrp, Pid};

/// How long an orphaned instance gets between SIGTERM and SIGKILL. Default 3 s.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(3);

/// Runs the supervisor; `argv` is the command and its arguments.
pub fn run(argv: &[String]) -> ExitCode {
    let Some((cmd, args)) = argv.split_first() else {
        eprintln!("drover __supervise: no command given");
        return ExitCode::from(2);
    };
    let mut child = match Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start {cmd:?}: {e}");
            return ExitCode::from(127);
        }
    };
    let pid = Pid::from_raw(child.id() as i32);
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        // drover is gone: stop the instance, then everything in our group.
        let _ = kill(pid, Signal::SIGTERM);
        std::thread::sleep(ORPHAN_GRACE);
        let _ = killpg(getpgrp(), Signal::SIGKILL);
    });
    match child.wait() {
        Ok(status) => match status.code() {
            Some(c) => ExitCode::from(c.clamp(0, 255) as u8),
            None => ExitCode::from(128 + 9),
        },
        Err(_) => ExitCode::from(1),
    }
}
