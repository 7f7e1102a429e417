//! The per-pool retry budget: retries may add at most [`RATIO`] of the
//! requests seen over the last [`WINDOW_SECS`] seconds, but at least
//! [`MIN_PER_SEC`] per second of the window are always allowed (so a quiet
//! pool can still retry), so retries cannot amplify an outage.

use parking_lot::Mutex;
use std::time::Instant;

/// Length of the sliding window, in one-second buckets. Default 10.
pub const WINDOW_SECS: usize = 10;
/// Retries allowed per request in the window. Default 0.2 (20%).
pub const RATIO: f64 = 0.2;
/// Retries always allowed per second of the window. Default 3.
pub const MIN_PER_SEC: u64 = 3;

/// Requests and retries per second over the last [`WINDOW_SECS`] seconds (pure).
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// `(second, requests, retries)` per bucket, indexed by `second % WINDOW_SECS`.
    buckets: [(u64, u64, u64); WINDOW_SECS],
}

impl Window {
    fn bucket(&mut self, sec: u64) -> &mut (u64, u64, u64) {
        let b = &mut self.buckets[(sec % WINDOW_SECS as u64) as usize];
        if b.0 != sec {
            *b = (sec, 0, 0);
        }
        b
    }

    /// `(requests, retries)` in the window ending at second `sec`.
    pub fn totals(&self, sec: u64) -> (u64, u64) {
        self.buckets
            .iter()
            .filter(|b| b.0 + (WINDOW_SECS as u64) > sec && b.0 <= sec)
            .fold((0, 0), |(r, t), b| (r + b.1, t + b.2))
    }

    /// Retries allowed in a window that saw `requests`:
    /// `max(RATIO × requests, MIN_PER_SEC × WINDOW_SECS)`.
    pub fn allowance(requests: u64) -> u64 {
        ((requests as f64 * RATIO) as u64).max(MIN_PER_SEC * WINDOW_SECS as u64)
    }

    /// Counts one request (not a retry) at second `sec`.
    pub fn request(&mut self, sec: u64) {
        self.bucket(sec).1 += 1;
    }

    /// Takes one retry at second `sec` if the budget has room; `false` = over budget.
    pub fn try_retry(&mut self, sec: u64) -> bool {
        let (requests, retries) = self.totals(sec);
        if retries >= Self::allowance(requests) {
            return false;
        }
        self.bucket(sec).2 += 1;
        true
    }
}

/// A pool's retry budget (a [`Window`] behind a short lock, no I/O under it).
#[derive(Debug)]
pub struct RetryBudget {
    origin: Instant,
    window: Mutex<Window>,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            origin: Instant::now(),
            window: Mutex::new(Window::default()),
        }
    }
}

impl RetryBudget {
    fn sec(&self) -> u64 {
        self.origin.elapsed().as_secs()
    }

    /// Counts one downstream request.
    pub fn request(&self) {
        let sec = self.sec();
        self.window.lock().request(sec);
    }

    /// Takes one retry if the budget allows it.
    pub fn try_retry(&self) -> bool {
        let sec = self.sec();
        self.window.lock().try_retry(sec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_quiet_pool_still_gets_the_minimum() {
        let mut w = Window::default();
        let ok = (0..100).filter(|_| w.try_retry(0)).count();
        assert_eq!(ok as u64, MIN_PER_SEC * WINDOW_SECS as u64);
    }

    #[test]
    fn a_busy_pool_gets_a_fifth_of_its_requests() {
        let mut w = Window::default();
        for _ in 0..1000 {
            w.request(3);
        }
        let ok = (0..1000).filter(|_| w.try_retry(3)).count();
        assert_eq!(ok, 200);
    }

    #[test]
    fn old_seconds_leave_the_window() {
        let mut w = Window::default();
        for _ in 0..1000 {
            w.request(0);
        }
        assert_eq!((0..500).filter(|_| w.try_retry(0)).count(), 200);
        assert!(!w.try_retry(9), "still inside the window");
        assert_eq!(w.totals(10), (0, 0));
        assert!(w.try_retry(10), "the window moved on");
    }

    proptest! {
        #[test]
        fn grants_exactly_what_the_window_allows(
            // (seconds later, requests, retry attempts) per step
            steps in proptest::collection::vec((0u64..4, 0u64..200, 0u64..200), 1..60),
        ) {
            let mut w = Window::default();
            let mut sec = 0;
            let mut log: Vec<(u64, u64, u64)> = Vec::new(); // (sec, requests, granted)
            for (dt, reqs, tries) in steps {
                sec += dt;
                for _ in 0..reqs {
                    w.request(sec);
                }
                let in_window = |s: u64| s + WINDOW_SECS as u64 > sec;
                let requests: u64 = reqs + log.iter().filter(|l| in_window(l.0)).map(|l| l.1).sum::<u64>();
                let before: u64 = log.iter().filter(|l| in_window(l.0)).map(|l| l.2).sum();
                let granted = (0..tries).filter(|_| w.try_retry(sec)).count() as u64;
                // Retries in the window never pass the allowance when granted...
                prop_assert!(before + granted <= Window::allowance(requests).max(before));
                // ...and the budget gives all the room there is.
                prop_assert_eq!(granted, tries.min(Window::allowance(requests).saturating_sub(before)));
                log.push((sec, reqs, granted));
                prop_assert_eq!(w.totals(sec), (requests, before + granted));
            }
        }
    }
}
