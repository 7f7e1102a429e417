//! Claims: how a running drover says "the containers labelled
//! `drover.managed=<name>` are mine", so that `drover ctl orphans` can tell them
//! from leftovers of drovers that are gone.
//!
//! A drover that runs `provider = "docker"` pools holds an exclusive `flock` on
//! `<claims dir>/<name>.claim` for as long as it runs. The kernel drops the lock
//! when the process ends, however it ends (SIGKILL and crashes too), so the claim
//! can never outlive its drover, and a lock another process holds is proof that a
//! drover with that name runs on this machine. The file itself stays (0 bytes):
//! removing it could let two drovers lock two different files of one name.
//!
//! Why not ask the running drovers' admin APIs: which drovers run on an engine,
//! and where their admin listens, is not knowable from the engine. Why not a
//! record in the engine (a label, a volume): nothing there ends with the process,
//! so a SIGKILLed drover would stay "running" forever.
//!
//! The claims directory is `DROVER_CLAIMS_DIR`, else `/run/drover-claims` when it
//! exists (the systemd unit in `examples/systemd` creates it), else
//! `/tmp/drover-claims` (created mode 1777, like /tmp). Every drover using one
//! engine must see the same directory: a drover in a container mounts it (see
//! `examples/compose`).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The claims directory systemd units share (created by `RuntimeDirectory=`).
pub const SYSTEM_DIR: &str = "/run/drover-claims";
/// The claims directory when neither `DROVER_CLAIMS_DIR` nor [`SYSTEM_DIR`] is there.
pub const FALLBACK_DIR: &str = "/tmp/drover-claims";

/// Where claims live (see the module doc).
pub fn claims_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DROVER_CLAIMS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if Path::new(SYSTEM_DIR).is_dir() {
        return PathBuf::from(SYSTEM_DIR);
    }
    PathBuf::from(FALLBACK_DIR)
}

/// Whether `name` can be a claim file's stem (the top-level `name` rule).
fn valid(name: &str) -> bool {
    crate::config::is_valid_name(name)
}

fn claim_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.claim"))
}

/// A held claim; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct Claim {
    _file: File,
    pub path: PathBuf,
}

/// Takes the claim on `name` in `dir`. Fails with a message saying what and where
/// when another running drover holds it, or when the directory is not usable.
pub fn take(dir: &Path, name: &str) -> Result<Claim, String> {
    if !valid(name) {
        return Err(format!("cannot claim {name:?}: not a valid name"));
    }
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the claims directory {}: {e} (set DROVER_CLAIMS_DIR)",
                dir.display()
            )
        })?;
        if dir == Path::new(FALLBACK_DIR) {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777));
        }
    }
    let path = claim_path(dir, name);
    // Read-only is enough for flock: a file another user created is claimable too.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .or_else(|_| File::open(&path))
        .map_err(|e| {
            format!(
                "cannot open the claim file {}: {e} (set DROVER_CLAIMS_DIR)",
                path.display()
            )
        })?;
    match file.try_lock() {
        Ok(()) => Ok(Claim { _file: file, path }),
        Err(TryLockError::WouldBlock) => Err(format!(
            "another running drover is named {name:?} (it holds {}): two drovers of one name would fight over the same containers; give this one another top-level `name`",
            path.display()
        )),
        Err(TryLockError::Error(e)) => Err(format!("cannot lock the claim file {}: {e}", path.display())),
    }
}

/// Whether a running drover on this machine holds the claim on `name` in `dir`.
/// A name no drover could claim (not a valid name, no file) is not claimed.
pub fn is_claimed(dir: &Path, name: &str) -> bool {
    if !valid(name) {
        return false;
    }
    let Ok(file) = File::open(claim_path(dir, name)) else {
        return false;
    };
    match file.try_lock() {
        // We got it: nobody holds it. The lock is released when `file` drops.
        Ok(()) => false,
        Err(TryLockError::WouldBlock) => true,
        // Unknown: say claimed, so that `orphans --remove` never removes a live drover's containers.
        Err(TryLockError::Error(_)) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_held_while_it_lives_and_released_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_claimed(dir.path(), "shop"), "no file: not claimed");
        let c = take(dir.path(), "shop").unwrap();
        assert!(is_claimed(dir.path(), "shop"));
        let again = take(dir.path(), "shop").unwrap_err();
        assert!(
            again.contains("another running drover is named \"shop\""),
            "{again}"
        );
        assert!(!is_claimed(dir.path(), "other"));
        drop(c);
        assert!(!is_claimed(dir.path(), "shop"), "released on drop");
        let _c = take(dir.path(), "shop").expect("claimable again");
    }

    #[test]
    fn names_that_would_escape_the_directory_are_never_claimed_or_looked_up() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../x", "", "a/b", ".x", "-x"] {
            assert!(!is_claimed(dir.path(), bad));
            assert!(take(dir.path(), bad).is_err());
        }
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    proptest::proptest! {
        /// Owner labels are anyone's text: a name that passes `valid` names a file
        /// directly inside the claims directory, never elsewhere.
        #[test]
        fn a_valid_name_never_leaves_the_directory(name in "\\PC{0,70}") {
            let dir = Path::new("/claims");
            if valid(&name) {
                let p = claim_path(dir, &name);
                proptest::prop_assert_eq!(p.parent(), Some(dir));
                proptest::prop_assert!(!name.contains('/') && !name.starts_with('.'));
            }
        }
    }

    #[test]
    fn the_directory_is_created_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        let _c = take(&sub, "x1").unwrap();
        assert!(is_claimed(&sub, "x1"));
    }
}
