//! `Upgrade` (WebSocket and others): after a `101`, bytes are copied both ways
//! between the client and the backend until either side closes, or until no
//! byte has moved either way for `server.tunnel_idle_timeout` (default 1 h).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::body::Completion;
use super::watched::{Watch, Watched};
use crate::config::DEFAULT_TUNNEL_IDLE_TIMEOUT;

/// `server.tunnel_idle_timeout` in milliseconds, set when the workers start.
static IDLE_TIMEOUT_MS: AtomicU64 = AtomicU64::new(DEFAULT_TUNNEL_IDLE_TIMEOUT.as_millis() as u64);

/// Sets the idle timeout of tunnels opened from now on.
pub fn set_idle_timeout(d: Duration) {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
    IDLE_TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

fn idle_timeout() -> Duration {
    Duration::from_millis(IDLE_TIMEOUT_MS.load(Ordering::Relaxed))
}

/// Spawns the tunnel; `done` (the member's in-flight count, the access log)
/// completes when the tunnel closes.
pub fn tunnel(client: OnUpgrade, backend: OnUpgrade, done: Completion, addr: SocketAddr) {
    let idle = idle_timeout();
    tokio::spawn(async move {
        let _done = done;
        let (c, b) = match tokio::try_join!(client, backend) {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(backend = %addr, error = %e, "upgrade failed");
                return;
            }
        };
        let last = Arc::new(LastByte::new());
        let mut c = Watched::new(TokioIo::new(c), last.clone());
        let mut b = Watched::new(TokioIo::new(b), last.clone());
        let copy = tokio::io::copy_bidirectional(&mut c, &mut b);
        tokio::pin!(copy);
        loop {
            let left = idle.saturating_sub(last.idle_for());
            tokio::select! {
                r = copy.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(backend = %addr, error = %e, "upgraded connection ended");
                    }
                    return;
                }
                _ = tokio::time::sleep(left.max(Duration::from_millis(1))) => {
                    if last.idle_for() >= idle {
                        // Dropping both ends closes them.
                        tracing::debug!(backend = %addr, idle = ?idle, "upgraded connection idle; closing");
                        return;
                    }
                }
            }
        }
    });
}

/// When a byte last moved through a tunnel (either way).
#[derive(Debug)]
struct LastByte {
    epoch: Instant,
    /// Milliseconds since `epoch`.
    at_ms: AtomicU64,
}

impl LastByte {
    fn new() -> LastByte {
        LastByte {
            epoch: Instant::now(),
            at_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.at_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let at = Duration::from_millis(self.at_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(at)
    }
}

/// Each end of a tunnel notes every byte it reads or writes.
impl Watch for Arc<LastByte> {
    fn read(&mut self, _new: &[u8]) {
        self.touch();
    }

    fn wrote(&mut self, _n: usize) {
        self.touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_and_writes_mark_the_tunnel_active() {
        let last = Arc::new(LastByte::new());
        let (a, mut peer) = tokio::io::duplex(64);
        let mut w = Watched::new(a, last.clone());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(last.idle_for() >= Duration::from_millis(50));
        w.write_all(b"x").await.unwrap();
        assert!(last.idle_for() < Duration::from_millis(50));
        tokio::time::sleep(Duration::from_millis(60)).await;
        peer.write_all(b"y").await.unwrap();
        let mut got = [0u8; 1];
        w.read_exact(&mut got).await.unwrap();
        assert!(last.idle_for() < Duration::from_millis(50));
    }
}
