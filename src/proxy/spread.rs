//! Spreading client connections over the workers.
//!
//! Each worker accepts on its own `SO_REUSEPORT` socket, and the kernel picks
//! the socket by a hash of the client's address and port: with a few
//! long-lived connections (HTTP/2 and gRPC clients keep one or a handful
//! open) one worker can carry most of them while another idles, and every
//! stream on them waits behind that one thread. So a worker that accepts a
//! connection while it serves at least [`SLACK`] more than the least loaded
//! worker hands the socket to that worker, before any byte of it is read
//! (HAProxy also gives each accepted connection to its least loaded thread).
//! The decision is [`pick`], a pure function; the counts are [`Spread`].

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How many more connections than the least loaded worker a worker may serve
/// before it hands a newly accepted one over: 1, so that no worker serves more
/// than one connection above another when connections only arrive (with few
/// long-lived connections, one more is a large share). A move costs a wake-up
/// of the other thread and a re-registration of the socket: a few
/// microseconds, next to the tens a TCP handshake and accept cost.
pub const SLACK: usize = 1;

/// The worker that serves a connection accepted by worker `me`, given how
/// many connections each worker serves (`counts[i]` for worker `i`): `me`,
/// unless some worker serves at least [`SLACK`] fewer; then the least loaded
/// one (the lowest index among equals). `me` out of range: `me`.
pub fn pick(counts: &[usize], me: usize) -> usize {
    let Some(&mine) = counts.get(me) else {
        return me;
    };
    let least = counts
        .iter()
        .enumerate()
        .min_by_key(|&(i, &n)| (n, i))
        .map_or(me, |(i, _)| i);
    match counts.get(least) {
        Some(&n) if n + SLACK <= mine => least,
        _ => me,
    }
}

/// Connections each worker serves now (plain and TLS, from accept or hand-over
/// until the socket closes; upgrade tunnels included).
#[derive(Debug)]
pub struct Spread {
    counts: Vec<AtomicUsize>,
    moved: AtomicU64,
}

/// One connection counted against a worker; dropping it ends that.
#[derive(Debug)]
pub struct Serving {
    spread: Arc<Spread>,
    worker: usize,
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(c) = self.spread.counts.get(self.worker) {
            c.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The [`Spread`] of the running workers, for `/metrics`.
static CURRENT: Mutex<Option<Arc<Spread>>> = Mutex::new(None);

impl Spread {
    /// Counts for `workers` workers, registered as the current ones for `/metrics`.
    pub fn new(workers: usize) -> Arc<Spread> {
        let s = Arc::new(Spread {
            counts: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
            moved: AtomicU64::new(0),
        });
        if let Ok(mut c) = CURRENT.lock() {
            *c = Some(s.clone());
        }
        s
    }

    /// The running workers' counts, if workers were started in this process.
    pub fn current() -> Option<Arc<Spread>> {
        CURRENT.lock().ok().and_then(|c| c.clone())
    }

    /// Where a connection accepted by worker `me` is served ([`pick`] on the
    /// counts as they are now), and its count there.
    pub fn place(self: &Arc<Spread>, me: usize) -> (usize, Serving) {
        let to = pick(&self.connections(), me);
        (to, self.serve(to))
    }

    /// Counts one connection against `worker`.
    pub fn serve(self: &Arc<Spread>, worker: usize) -> Serving {
        if let Some(c) = self.counts.get(worker) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        Serving {
            spread: self.clone(),
            worker,
        }
    }

    /// Connections each worker serves now.
    pub fn connections(&self) -> Vec<usize> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// Connections handed from the accepting worker to another, since start.
    pub fn moved(&self) -> u64 {
        self.moved.load(Ordering::Relaxed)
    }

    /// Counts a connection handed to another worker.
    pub fn count_move(&self) {
        self.moved.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stays_within_the_slack_and_moves_beyond_it() {
        assert_eq!(pick(&[0, 0], 0), 0);
        assert_eq!(pick(&[1, 1], 0), 0);
        assert_eq!(pick(&[1, 0], 0), 1);
        assert_eq!(pick(&[2, 0], 0), 1);
        assert_eq!(pick(&[4, 3, 4], 2), 1);
        assert_eq!(
            pick(&[5, 3, 3], 0),
            1,
            "lowest index among the least loaded"
        );
        assert_eq!(pick(&[3, 9], 1), 0);
        assert_eq!(pick(&[3, 3, 9], 1), 1);
        assert_eq!(pick(&[7], 0), 0, "one worker");
        assert_eq!(pick(&[], 3), 3);
        assert_eq!(pick(&[1, 2], 5), 5, "out of range");
    }

    #[test]
    fn counts_follow_the_tokens() {
        let s = Spread::new(2);
        let a = s.serve(0);
        let b = s.serve(0);
        let (to, c) = s.place(0);
        assert_eq!((to, s.connections()), (1, vec![2, 1]));
        let (to, d) = s.place(1);
        assert_eq!((to, s.connections()), (1, vec![2, 2]));
        assert_eq!(s.moved(), 0, "placing is not moving");
        s.count_move();
        assert_eq!(s.moved(), 1);
        drop((a, b, c, d));
        assert_eq!(s.connections(), vec![0, 0]);
    }

    proptest! {
        #[test]
        fn pick_never_makes_things_worse(counts in prop::collection::vec(0usize..50, 1..8), me in 0usize..8) {
            let me = me % counts.len();
            let to = pick(&counts, me);
            prop_assert!(to < counts.len());
            if to == me {
                let least = *counts.iter().min().unwrap();
                prop_assert!(counts[me] < least + SLACK);
            } else {
                prop_assert!(counts[to] + SLACK <= counts[me]);
                prop_assert_eq!(counts[to], *counts.iter().min().unwrap());
            }
        }

        #[test]
        fn sequential_accepts_stay_balanced(hashes in prop::collection::vec(0usize..4, 1..200)) {
            // Any order of accepting workers (the kernel's hash): the spread
            // between the most and least loaded stays within the slack.
            let mut counts = vec![0usize; 4];
            for h in hashes {
                let to = pick(&counts, h);
                counts[to] += 1;
                let (max, min) = (*counts.iter().max().unwrap(), *counts.iter().min().unwrap());
                prop_assert!(max - min <= SLACK);
            }
        }
    }
}
