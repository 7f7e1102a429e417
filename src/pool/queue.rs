//! The per-pool wait queue for `max_connections_per_backend`: when every
//! member is at its limit, a request waits here (FIFO, bounded by
//! `max_queue`, for at most `queue_timeout`) and is woken when a member's
//! in-flight count drops. Built on `tokio::sync::Notify`, which works across
//! the worker threads' separate runtimes.

use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Why a request left the queue without a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// `max_queue` requests were waiting already.
    Full(usize),
    /// Waited `queue_timeout` without a free member.
    TimedOut(Duration),
}

/// Waiting requests of one pool.
#[derive(Debug, Default)]
pub struct WaitQueue {
    waiting: AtomicUsize,
    notify: Notify,
}

/// A place among the waiting requests; leaving (served, timed out or
/// cancelled) is dropping it.
#[must_use = "dropping the slot leaves the queue"]
#[derive(Debug)]
pub struct QueueSlot<'a>(&'a AtomicUsize);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WaitQueue {
    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Takes a place among the waiting requests, unless `max` are waiting
    /// already. Requests held for a cold start take one too, so `max_queue`
    /// bounds everything that waits in a pool.
    pub fn enter(&self, max: usize) -> Result<QueueSlot<'_>, QueueError> {
        self.waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| {
                (w < max).then_some(w + 1)
            })
            .map(|_| QueueSlot(&self.waiting))
            .map_err(|_| QueueError::Full(max))
    }

    /// Waits until `take` yields a slot, in arrival order among waiters.
    /// Refuses at once when `max` requests are waiting; gives up after `timeout`.
    pub async fn wait<T>(
        &self,
        max: usize,
        timeout: Duration,
        mut take: impl FnMut() -> Option<T>,
    ) -> Result<T, QueueError> {
        let _slot = self.enter(max)?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Register before looking, so a release between the look and the
            // wait is not lost (pairs with the fence in `release`).
            notified.as_mut().enable();
            fence(Ordering::SeqCst);
            if let Some(t) = take() {
                return Ok(t);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => return Err(QueueError::TimedOut(timeout)),
            }
        }
    }

    /// A slot was freed (a member's in-flight count dropped): wakes the oldest waiter.
    pub fn release(&self) {
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.notify.notify_one();
        }
    }

    /// The member set changed (a member came back, a new one joined): every waiter looks again.
    pub fn wake_all(&self) {
        self.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    /// A pretend member with `cap` slots.
    struct Slots(AtomicU32);
    impl Slots {
        fn take(&self) -> Option<()> {
            self.0
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .ok()
                .map(|_| ())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_time_out_and_the_queue_is_bounded() {
        let q = Arc::new(WaitQueue::default());
        let slots = Arc::new(Slots(AtomicU32::new(0)));
        let t = Duration::from_secs(5);
        let (q1, s1) = (q.clone(), slots.clone());
        let first = tokio::spawn(async move { q1.wait(1, t, || s1.take()).await });
        tokio::task::yield_now().await;
        assert_eq!(q.waiting(), 1);
        assert_eq!(
            q.wait(1, t, || slots.take()).await,
            Err(QueueError::Full(1))
        );
        let started = tokio::time::Instant::now();
        assert_eq!(first.await.unwrap(), Err(QueueError::TimedOut(t)));
        assert_eq!(started.elapsed(), t);
        assert_eq!(q.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn released_slots_go_to_waiters_in_arrival_order() {
        let q = Arc::new(WaitQueue::default());
        let slots = Arc::new(Slots(AtomicU32::new(0)));
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..4 {
            let (q, s, o) = (q.clone(), slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                q.wait(10, Duration::from_secs(60), || s.take())
                    .await
                    .unwrap();
                o.lock().unwrap().push(i);
            }));
            tokio::task::yield_now().await;
        }
        assert_eq!(q.waiting(), 4);
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            slots.0.fetch_add(1, Ordering::SeqCst);
            q.release();
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(q.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn entered_places_count_against_max() {
        let q = WaitQueue::default();
        let held = q.enter(2).unwrap();
        let _held2 = q.enter(2).unwrap();
        assert_eq!(q.enter(2).unwrap_err(), QueueError::Full(2));
        assert_eq!(
            q.wait(2, Duration::from_secs(1), || Some(())).await,
            Err(QueueError::Full(2))
        );
        drop(held);
        assert_eq!(q.waiting(), 1);
        assert_eq!(q.wait(2, Duration::from_secs(1), || Some(())).await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn max_queue_zero_refuses_at_once() {
        let q = WaitQueue::default();
        assert_eq!(
            q.wait(0, Duration::from_secs(1), || None::<()>).await,
            Err(QueueError::Full(0))
        );
    }
}
