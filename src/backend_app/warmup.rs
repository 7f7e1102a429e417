//! `drover backend --warmup MS`: a backend that is slow while it warms up,
//! like an application whose caches are cold after a start.
//!
//! For the first MS milliseconds after start, requests (not `/health` or
//! `/admin/*`) are served one at a time, each [`COST`] longer: the backend
//! handles at most 50 requests per second then, and a full share of traffic
//! queues up on it. Slow start (`slow_start` on a pool) exists for this.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Extra time per request while warming up: 20 ms.
pub const COST: Duration = Duration::from_millis(20);

/// The warm-up window of one backend.
#[derive(Debug)]
pub struct Warmup {
    until: Instant,
    one_at_a_time: Mutex<()>,
}

impl Warmup {
    /// A window of `d` from now; `None` for zero.
    pub fn new(d: Duration) -> Option<Warmup> {
        (!d.is_zero()).then(|| Warmup {
            until: Instant::now() + d,
            one_at_a_time: Mutex::new(()),
        })
    }

    /// While warming up: waits for the requests before this one, then [`COST`].
    pub async fn wait(&self) {
        if Instant::now() >= self.until {
            return;
        }
        let _turn = self.one_at_a_time.lock().await;
        tokio::time::sleep(COST).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn serialises_requests_during_the_window_only() {
        assert!(Warmup::new(Duration::ZERO).is_none());
        let w = std::sync::Arc::new(Warmup::new(Duration::from_secs(1)).unwrap());
        let t0 = Instant::now();
        let both = futures_util::future::join(w.wait(), w.wait());
        both.await;
        assert_eq!(t0.elapsed(), 2 * COST, "one at a time");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t1 = Instant::now();
        futures_util::future::join(w.wait(), w.wait()).await;
        assert_eq!(t1.elapsed(), Duration::ZERO, "warm");
    }
}
