//! Recent sticky-session activity of one member, in fixed memory: requests
//! that came with (or were given) the member's sticky cookie in the current
//! and the previous window, and the time of the last one. The scale-down
//! picks the member with the fewest; a drain waits until they stop.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The opaque sticky id of `addr` in pool `pool` (stable within this
/// process): the value of its sticky cookie (`proxy/sticky.rs`), kept per
/// member in the snapshot.
pub fn sticky_id(pool: &str, addr: SocketAddr) -> u64 {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    KEY.get_or_init(RandomState::new).hash_one((pool, addr))
}

/// Length of one counting window: 60 s ("recent" = the last 60 to 120 s).
pub const WINDOW: Duration = Duration::from_secs(60);

/// A draining member with sticky sessions is stopped once nothing is in
/// flight and no sticky request came for this long (or at `drain_timeout`): 5 s.
pub const STICKY_QUIET: Duration = Duration::from_secs(5);

/// Milliseconds since the first use in this process (tokio's clock), + 1, so
/// that 0 means "never".
fn stamp(now: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| now);
    now.saturating_duration_since(epoch).as_millis() as u64 + 1
}

/// Sticky requests of one member (atomics; counts are approximate under races).
#[derive(Debug, Default)]
pub struct StickyHits {
    /// Index of the window `cur` counts.
    window: AtomicU64,
    cur: AtomicU64,
    prev: AtomicU64,
    /// [`stamp`] of the last hit; 0 = never.
    last: AtomicU64,
}

fn window_of(stamp: u64) -> u64 {
    stamp / WINDOW.as_millis() as u64
}

impl StickyHits {
    /// Counts one sticky request at `now`.
    pub fn hit(&self, now: Instant) {
        let s = stamp(now);
        let w = window_of(s);
        let old = self.window.load(Ordering::Relaxed);
        if w > old
            && self
                .window
                .compare_exchange(old, w, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let carried = self.cur.swap(0, Ordering::Relaxed);
            let prev = if w == old + 1 { carried } else { 0 };
            self.prev.store(prev, Ordering::Relaxed);
        }
        self.cur.fetch_add(1, Ordering::Relaxed);
        self.last.fetch_max(s, Ordering::Relaxed);
    }

    /// Sticky requests in the current and the previous window as of `now`.
    pub fn recent(&self, now: Instant) -> u64 {
        let w = window_of(stamp(now));
        let stored = self.window.load(Ordering::Relaxed);
        let (cur, prev) = (
            self.cur.load(Ordering::Relaxed),
            self.prev.load(Ordering::Relaxed),
        );
        if stored == w {
            cur + prev
        } else if stored + 1 == w {
            cur
        } else {
            0
        }
    }

    /// Whether no sticky request came within `quiet` before `now`.
    pub fn quiet(&self, now: Instant, quiet: Duration) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        last == 0 || stamp(now).saturating_sub(last) >= quiet.as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_roll_over_two_windows_and_then_fade() {
        // Well after the process epoch, whichever test set it.
        let t0 = Instant::now() + Duration::from_secs(3600);
        let h = StickyHits::default();
        assert_eq!(h.recent(t0), 0);
        assert!(h.quiet(t0, STICKY_QUIET));
        for _ in 0..3 {
            h.hit(t0);
        }
        assert_eq!(h.recent(t0), 3);
        assert!(!h.quiet(t0 + Duration::from_secs(1), STICKY_QUIET));
        assert!(h.quiet(t0 + STICKY_QUIET, STICKY_QUIET));
        let next = t0 + WINDOW;
        h.hit(next);
        assert_eq!(h.recent(next), 4, "previous window still counts");
        assert_eq!(h.recent(next + WINDOW), 1, "only the newer window left");
        assert_eq!(h.recent(next + 2 * WINDOW), 0, "all faded");
        h.hit(next + 5 * WINDOW);
        assert_eq!(
            h.recent(next + 5 * WINDOW),
            1,
            "a gap drops the old windows"
        );
    }
}
