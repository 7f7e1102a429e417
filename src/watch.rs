//! `drover run --watch`: reloads the config when its file changes.
//!
//! The file's modification time and size are polled every [`POLL`]; a change is
//! applied once the file has stayed the same for one more poll (debounce), so an
//! editor's several writes make one reload. An invalid file is refused as with
//! SIGHUP (errors logged, the running config stays).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often the file is checked. 1 s.
pub const POLL: Duration = Duration::from_secs(1);

/// (mtime, size), or `None` while the file is missing.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// What the watcher does after one poll.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Changed since the last applied version; wait until it settles.
    Settling,
    Reload,
}

/// The debounce state machine: `applied` is the version last reloaded,
/// `pending` the changed version seen at the previous poll.
pub fn step<T: PartialEq + Clone>(applied: &mut T, pending: &mut Option<T>, now: T) -> Step {
    if now == *applied {
        *pending = None;
        return Step::Nothing;
    }
    if pending.as_ref() == Some(&now) {
        *applied = now;
        *pending = None;
        return Step::Reload;
    }
    *pending = Some(now);
    Step::Settling
}

/// Watches `path` forever, calling `reload` (the app's reload) on settled changes.
pub async fn run(path: PathBuf, reload: impl Fn()) {
    tracing::info!(file = %path.display(), poll = ?POLL, "watching the config file for changes");
    let mut applied = stamp(&path);
    let mut pending = None;
    loop {
        tokio::time::sleep(POLL).await;
        let now = stamp(&path);
        if now.is_none() {
            continue; // being replaced (rename) or deleted: keep the running config
        }
        if step(&mut applied, &mut pending, now) == Step::Reload {
            tracing::info!(file = %path.display(), "config file changed: reloading");
            reload();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_reloads_once_after_it_settles() {
        let (mut applied, mut pending) = (1, None);
        assert_eq!(step(&mut applied, &mut pending, 1), Step::Nothing);
        assert_eq!(step(&mut applied, &mut pending, 2), Step::Settling);
        assert_eq!(
            step(&mut applied, &mut pending, 3),
            Step::Settling,
            "still being written"
        );
        assert_eq!(step(&mut applied, &mut pending, 3), Step::Reload);
        assert_eq!(applied, 3);
        assert_eq!(step(&mut applied, &mut pending, 3), Step::Nothing);
    }
}
