//! What a client connection is doing, for its timeouts: `idle_timeout`
//! between requests, `header_read_timeout` from accept until the first request
//! head and from the first byte of each later HTTP/1 head until it is complete.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::limits::ConnSlot;
use super::watched::Watch;
pub use super::watched::Watched;

/// A client connection's limits (from `[server]`), for either codec.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `max_header_bytes`: the largest request head (for HTTP/2, the decoded
    /// field list size).
    pub max_head: usize,
    /// `idle_timeout`: no request (HTTP/2: no stream open) this long closes
    /// the connection (HTTP/2: GOAWAY first).
    pub idle: Duration,
    /// `header_read_timeout`.
    pub head: Duration,
}

/// Activity of one client connection.
#[derive(Debug)]
pub struct ConnActivity {
    /// Requests being served on the connection.
    pub active: AtomicU32,
    /// Milliseconds since `epoch` when the last request ended.
    last_end_ms: AtomicU64,
    /// Milliseconds since `epoch`, plus one, since when a request head is
    /// awaited with its bytes arriving (from accept for the first one); 0 = none.
    head_since: AtomicU64,
    /// HTTP/2: frames between requests (PING, WINDOW_UPDATE) are not a head.
    h2: AtomicBool,
    epoch: Instant,
}

impl ConnActivity {
    /// A connection accepted at `accepted`: its first head is awaited from then.
    pub fn new(accepted: Instant) -> ConnActivity {
        ConnActivity {
            active: AtomicU32::new(0),
            last_end_ms: AtomicU64::new(0),
            head_since: AtomicU64::new(1),
            h2: AtomicBool::new(false),
            epoch: accepted,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Marks one request begun (its head has been read).
    pub fn begin(&self) {
        self.head_since.store(0, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks one request finished.
    pub fn end(&self) {
        self.last_end_ms.store(self.now_ms(), Ordering::Relaxed);
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// Bytes arrived: while no request is in progress they start the next head.
    fn bytes_read(&self) {
        if self.active.load(Ordering::Relaxed) == 0
            && self.head_since.load(Ordering::Relaxed) == 0
            && !self.h2.load(Ordering::Relaxed)
        {
            self.head_since.store(self.now_ms() + 1, Ordering::Relaxed);
        }
    }

    /// How long the connection has been idle (zero while a request is active).
    pub fn idle_for(&self) -> Duration {
        if self.active.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_end_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    /// When the connection's timer should next look at it: when the awaited
    /// head or the idle time runs out, and while neither is near, every quarter
    /// of `head` (so a later head is cut at most `head / 4` late without waking
    /// anything per request). At least 50 ms.
    pub fn next_check(&self, idle: Duration, head: Duration) -> Duration {
        let idle_left = idle.saturating_sub(self.idle_for());
        let head_left = self.head_time_left(head).unwrap_or(head / 4);
        idle_left.min(head_left).max(Duration::from_millis(50))
    }

    /// Time left for the awaited request head under `limit`
    /// (`None` when no head is awaited; zero when it is overdue).
    pub fn head_time_left(&self, limit: Duration) -> Option<Duration> {
        let since = self.head_since.load(Ordering::Relaxed).checked_sub(1)?;
        let waited = self
            .epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(since));
        Some(limit.saturating_sub(waited))
    }
}

/// Reports a client stream's reads to its [`ConnActivity`] (wrap the stream
/// in [`Watched`] with it).
pub struct ClientReads {
    activity: Arc<ConnActivity>,
    /// The connection's slot under `server.max_connections`: it lives as long as the stream.
    _slot: ConnSlot,
    /// Whether the first bytes (which tell HTTP/2's preface) have been seen.
    sniffed: bool,
}

impl ClientReads {
    pub fn new(activity: Arc<ConnActivity>, slot: ConnSlot) -> ClientReads {
        ClientReads {
            activity,
            _slot: slot,
            sniffed: false,
        }
    }
}

impl Watch for ClientReads {
    fn read(&mut self, new: &[u8]) {
        if !self.sniffed {
            self.sniffed = true;
            // RFC 9113 §3.4: every HTTP/2 connection starts "PRI * HTTP/2.0".
            if new.starts_with(b"PRI ") {
                self.activity.h2.store(true, Ordering::Relaxed);
            }
        }
        self.activity.bytes_read();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::limits::ConnLimit;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: Duration = Duration::from_secs(10);

    #[test]
    fn the_first_head_is_awaited_from_accept() {
        let a = ConnActivity::new(Instant::now() - Duration::from_secs(4));
        let left = a.head_time_left(LIMIT).unwrap();
        assert!(left <= Duration::from_secs(6), "{left:?}");
        let a = ConnActivity::new(Instant::now() - Duration::from_secs(11));
        assert_eq!(a.head_time_left(LIMIT), Some(Duration::ZERO));
    }

    #[test]
    fn between_requests_only_bytes_start_the_head_timer() {
        let a = ConnActivity::new(Instant::now());
        a.begin();
        assert_eq!(a.head_time_left(LIMIT), None);
        // Bytes of a body while the request runs do not count.
        a.bytes_read();
        assert_eq!(a.head_time_left(LIMIT), None);
        a.end();
        // Idle keep-alive: idle_timeout governs, not header_read_timeout.
        assert_eq!(a.head_time_left(LIMIT), None);
        a.bytes_read();
        assert!(a.head_time_left(LIMIT).unwrap() > Duration::from_secs(9));
        a.begin();
        assert_eq!(a.head_time_left(LIMIT), None);
    }

    #[test]
    fn the_timer_looks_again_at_least_every_quarter_of_header_read_timeout() {
        let idle = Duration::from_secs(60);
        let a = ConnActivity::new(Instant::now());
        // Awaiting the first head: exactly when it runs out.
        assert!(a.next_check(idle, LIMIT) > Duration::from_millis(9900));
        a.begin();
        assert_eq!(a.next_check(idle, LIMIT), LIMIT / 4);
        a.end();
        assert_eq!(a.next_check(idle, LIMIT), LIMIT / 4);
        assert!(a.next_check(Duration::from_secs(1), LIMIT) <= Duration::from_secs(1));
        assert_eq!(
            a.next_check(Duration::from_millis(1), LIMIT),
            Duration::from_millis(50)
        );
    }

    #[tokio::test]
    async fn http2_frames_between_requests_are_not_a_head() {
        let a = Arc::new(ConnActivity::new(Instant::now()));
        let (io, mut peer) = tokio::io::duplex(1024);
        let mut w = Watched::new(
            io,
            ClientReads::new(a.clone(), ConnLimit::new(1).acquire().await),
        );
        peer.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = w.read(&mut buf).await.unwrap();
        assert_eq!(n, 24);
        a.begin();
        a.end();
        peer.write_all(b"ping frame").await.unwrap();
        let _ = w.read(&mut buf).await.unwrap();
        assert_eq!(a.head_time_left(LIMIT), None);
    }

    #[tokio::test]
    async fn http1_bytes_after_a_request_start_the_next_head() {
        let a = Arc::new(ConnActivity::new(Instant::now()));
        let (io, mut peer) = tokio::io::duplex(1024);
        let mut w = Watched::new(
            io,
            ClientReads::new(a.clone(), ConnLimit::new(1).acquire().await),
        );
        peer.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let _ = w.read(&mut buf).await.unwrap();
        a.begin();
        a.end();
        peer.write_all(b"GET /next").await.unwrap();
        let _ = w.read(&mut buf).await.unwrap();
        assert!(a.head_time_left(LIMIT).is_some());
    }
}
