//! The idle keep-alive connections to one backend on one worker thread,
//! shared by the hyper-driven pool ([`super::http1`]) and the native one
//! ([`super::native`]): newest first out, each with the instant it expires,
//! at most a given number kept.

use std::time::Instant;

/// The idle connections to one backend on one thread, oldest first, each
/// with the instant it expires. Generic over the connection so its rules
/// are tested without sockets.
pub struct IdleList<T> {
    entries: Vec<(T, Instant)>,
}

impl<T> Default for IdleList<T> {
    fn default() -> Self {
        IdleList {
            entries: Vec::new(),
        }
    }
}

impl<T> IdleList<T> {
    /// Adds a connection idle until `expires`; dropped (closed) when the list
    /// already holds `max`.
    pub fn push(&mut self, conn: T, expires: Instant, max: usize) {
        if self.entries.len() < max {
            self.entries.push((conn, expires));
        }
    }

    /// The newest connection still `usable` and not expired at `now`; the
    /// unusable and expired ones met on the way are dropped (closed).
    pub fn pop_newest(&mut self, now: Instant, usable: impl Fn(&T) -> bool) -> Option<T> {
        while let Some((c, expires)) = self.entries.pop() {
            if now < expires && usable(&c) {
                return Some(c);
            }
        }
        None
    }

    /// Drops (closes) every connection expired at `now` or no longer `usable`.
    pub fn sweep(&mut self, now: Instant, usable: impl Fn(&T) -> bool) {
        self.entries
            .retain(|(c, expires)| now < *expires && usable(c));
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_newest_usable_unexpired_connection_is_taken() {
        let t0 = Instant::now();
        let mut l = IdleList::default();
        for i in 0..4u32 {
            l.push(i, t0 + S * (10 + i), 256);
        }
        // 3 is newest but not usable: dropped on the way to 2.
        assert_eq!(l.pop_newest(t0, |&c| c != 3), Some(2));
        assert_eq!(l.entries.len(), 2);
        // At t0 + 10.5 s, 0 has expired, 1 has not.
        assert_eq!(l.pop_newest(t0 + S * 10 + S / 2, |_| true), Some(1));
        assert_eq!(l.pop_newest(t0 + S * 10 + S / 2, |_| true), None);
        assert!(l.is_empty());
    }

    #[test]
    fn a_sweep_closes_every_expired_connection_not_only_the_newest() {
        let t0 = Instant::now();
        let mut l = IdleList::default();
        // A burst: 40 connections released over 2 s, idle for 5 s each.
        for i in 0..40u32 {
            l.push(i, t0 + S * i / 20 + S * 5, 256);
        }
        l.sweep(t0 + S * 4, |_| true);
        assert_eq!(l.entries.len(), 40, "none expired yet");
        // Just before 6 s: those released in the first second have expired.
        let now = t0 + S * 6 - Duration::from_millis(1);
        l.sweep(now, |_| true);
        assert_eq!(l.entries.len(), 20);
        assert!(l.entries.iter().all(|(c, _)| *c >= 20));
        // Closed by the backend: swept whatever its age.
        l.sweep(now, |&c| c % 2 == 0);
        assert_eq!(l.entries.len(), 10);
        l.sweep(t0 + S * 7, |_| true);
        assert!(l.is_empty());
    }

    #[test]
    fn the_list_holds_at_most_max() {
        let t0 = Instant::now();
        let mut l = IdleList::default();
        for i in 0..5u32 {
            l.push(i, t0 + S, 3);
        }
        assert_eq!(l.entries.iter().map(|e| e.0).collect::<Vec<_>>(), [0, 1, 2]);
    }
}
