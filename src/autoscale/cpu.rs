//! `cpu_percent` of process instances, from `/proc`: the CPU time of every
//! process in the instances' process groups, as percent of one core per instance.

use std::collections::HashSet;
use std::time::Instant;

/// `/proc/PID/stat` reports times in USER_HZ, which Linux fixes at 100 per second.
const USER_HZ: f64 = 100.0;

/// `(pgrp, utime + stime)` from one `/proc/PID/stat` line.
pub fn parse_stat(stat: &str) -> Option<(i32, u64)> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] = state (field 3), so field N is f[N - 3].
    let pgrp = f.get(2)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((pgrp, utime + stime))
}

/// CPU ticks used so far by all processes in these process groups.
pub fn group_ticks(groups: &HashSet<i32>) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|s| parse_stat(&s))
        .filter(|(g, _)| groups.contains(g))
        .map(|(_, t)| t)
        .sum()
}

/// Turns successive tick readings into percent of one core per instance.
#[derive(Debug, Default)]
pub struct CpuMeter {
    last: Option<(Instant, u64)>,
}

impl CpuMeter {
    /// Mean CPU percent per instance since the previous reading (None the first time).
    pub fn read(&mut self, groups: &HashSet<i32>, now: Instant) -> Option<f64> {
        if groups.is_empty() {
            self.last = None;
            return None;
        }
        let ticks = group_ticks(groups);
        let prev = self.last.replace((now, ticks));
        let (at, before) = prev?;
        let dt = now.duration_since(at).as_secs_f64();
        (dt > 0.0).then(|| {
            ticks.saturating_sub(before) as f64 / USER_HZ / dt * 100.0 / groups.len() as f64
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pgrp_and_cpu_time_even_with_odd_command_names() {
        let line =
            "4242 (my (odd) cmd) S 1 4240 4240 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 123 0 0";
        assert_eq!(parse_stat(line), Some((4240, 300)));
    }

    #[test]
    fn measures_this_process_group_burning_cpu() {
        let me = nix::unistd::getpgrp().as_raw();
        let groups = HashSet::from([me]);
        let mut m = CpuMeter::default();
        let t0 = Instant::now();
        assert_eq!(m.read(&groups, t0), None);
        let mut x = 0u64;
        while t0.elapsed().as_millis() < 300 {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let pct = m.read(&groups, Instant::now()).unwrap();
        assert!(pct > 10.0, "{pct}");
    }
}
