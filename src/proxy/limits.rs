//! Process limits of the proxy: the open-file limit, the client connection
//! limit derived from it (HAProxy's `maxconn`), and warnings that must not
//! flood the log when a limit is hit.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::rate_limit::RateLimit;

/// File descriptors kept out of the client connection budget (admin API,
/// health probes, listeners, logs, docker, managed processes' pipes): this
/// many, or half the limit if that is less, or a tenth of it if that is more.
pub const MIN_RESERVED_FDS: u64 = 128;

/// The descriptors [`default_max_connections`] leaves out of an open-file limit
/// of `nofile`: `max(nofile / 10, min(128, nofile / 2))`.
pub fn reserved_fds(nofile: u64) -> u64 {
    (nofile / 10).max(MIN_RESERVED_FDS.min(nofile / 2))
}

/// At most one "limit reached" / "accept failed" warning per this interval; the next
/// one says how many were suppressed. 30 s.
pub const WARN_INTERVAL: Duration = Duration::from_secs(30);

/// How long an accept loop pauses after running out of file descriptors
/// (`EMFILE`/`ENFILE`) or kernel memory, leaving new clients in the backlog. 250 ms.
pub const FD_BACKOFF: Duration = Duration::from_millis(250);

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (capped by `fs.nr_open`
/// when the hard limit is unlimited) and returns the soft limit now in force.
/// A failure leaves the limit as it was (logged).
pub fn raise_nofile_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit");
            return u64::MAX;
        }
    };
    let target = if hard == RLIM_INFINITY {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20)
    } else {
        hard
    };
    if soft >= target {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => {
            tracing::info!(from = soft, to = target, "raised the open-file limit");
            target
        }
        Err(e) => {
            tracing::warn!(error = %e, soft, hard, "cannot raise the open-file limit");
            soft
        }
    }
}

/// The default `server.max_connections` for an open-file limit of `nofile`:
/// `(nofile - reserved_fds(nofile)) / 2`, at least 1. Halved because a
/// proxied connection usually holds an upstream connection too; the reserve
/// keeps the admin API, health probes and managed instances working when
/// clients take every slot. 40 -> 10, 256 -> 64, 1024 -> 448, 1048576 -> 471859.
pub fn default_max_connections(nofile: u64) -> usize {
    let n = nofile.saturating_sub(reserved_fds(nofile)) / 2;
    usize::try_from(n).unwrap_or(usize::MAX).max(1)
}

/// `server.max_connections` as configured (0 = derived from `nofile`).
pub fn max_connections(configured: usize, nofile: u64) -> usize {
    if configured > 0 {
        configured
    } else {
        default_max_connections(nofile)
    }
}

/// Whether an accept error means the process or machine is out of a
/// resource (descriptors, buffers, memory): back off instead of retrying at once.
pub fn is_resource_exhaustion(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}

/// The process-wide client connection budget, shared by every worker and listener.
#[derive(Debug, Clone)]
pub struct ConnLimit {
    slots: Arc<Semaphore>,
    max: usize,
    open: Arc<std::sync::atomic::AtomicUsize>,
    /// Connections served by the HTTP server (upgrade tunnels excluded).
    serving: Arc<std::sync::atomic::AtomicUsize>,
    /// "limit reached" warnings.
    warn: Arc<RateLimit>,
    /// "accept failed" warnings.
    accept_warn: Arc<RateLimit>,
}

/// A connection being served by the HTTP server; dropping it ends that.
#[derive(Debug)]
pub struct InService(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for InService {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One client connection's slot (held as long as its socket is open, upgrade
/// tunnels included); dropping it frees the slot.
#[derive(Debug)]
pub struct ConnSlot {
    _permit: OwnedSemaphorePermit,
    open: Arc<std::sync::atomic::AtomicUsize>,
    /// Its count under `server.max_connections_per_client`, when that is on.
    client: Option<super::client_conns::ClientConn>,
    /// Its count against the worker serving it ([`super::spread`]).
    worker: Option<super::spread::Serving>,
}

impl ConnSlot {
    /// Holds `c` (the connection's count for its client IP) as long as this slot.
    pub fn with_client(mut self, c: Option<super::client_conns::ClientConn>) -> ConnSlot {
        self.client = c;
        self
    }

    /// Holds `w` (the connection's count against its worker) as long as this
    /// slot, in place of any it held.
    pub fn with_worker(mut self, w: super::spread::Serving) -> ConnSlot {
        self.worker = Some(w);
        self
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnLimit {
    pub fn new(max: usize) -> ConnLimit {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        ConnLimit {
            slots: Arc::new(Semaphore::new(max)),
            max,
            open: Arc::default(),
            serving: Arc::default(),
            warn: Arc::new(RateLimit::new(WARN_INTERVAL)),
            accept_warn: Arc::new(RateLimit::new(WARN_INTERVAL)),
        }
    }

    /// The limit in force.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Client connections open now (upgrade tunnels included).
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Marks a connection served by the HTTP server until the guard drops.
    pub fn in_service(&self) -> InService {
        self.serving.fetch_add(1, Ordering::Relaxed);
        InService(self.serving.clone())
    }

    /// Connections served by the HTTP server now (what a graceful shutdown waits for).
    pub fn serving(&self) -> usize {
        self.serving.load(Ordering::Relaxed)
    }

    /// Logs a failed `accept` (at most one warning per [`WARN_INTERVAL`] for
    /// the whole process) and returns how long to pause accepting: [`FD_BACKOFF`]
    /// when out of descriptors or memory, 10 ms otherwise (a connection
    /// aborted before it was accepted and the like).
    pub fn accept_failed(&self, e: &std::io::Error) -> Duration {
        let exhausted = is_resource_exhaustion(e);
        if let Some(suppressed) = self.accept_warn.allow() {
            if exhausted {
                tracing::warn!(error = %e, suppressed, open_connections = self.open(), backoff = ?FD_BACKOFF,
                    "accept failed: out of file descriptors or memory; pausing accepts");
            } else {
                tracing::warn!(error = %e, suppressed, "accept failed");
            }
        }
        if exhausted {
            FD_BACKOFF
        } else {
            Duration::from_millis(10)
        }
    }

    /// Waits for a free slot (logging one rate-limited warning when the limit
    /// is reached). Called with an accepted client in hand, so each accept loop
    /// (workers x listeners) holds at most one client beyond the limit; the
    /// others wait in the listen backlog.
    pub async fn acquire(&self) -> ConnSlot {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if let Some(suppressed) = self.warn.allow() {
                    tracing::warn!(
                        max_connections = self.max,
                        suppressed,
                        "connection limit reached (server.max_connections); new clients wait in the listen backlog"
                    );
                }
                match self.slots.clone().acquire_owned().await {
                    Ok(p) => p,
                    // The semaphore is never closed.
                    Err(_) => std::future::pending().await,
                }
            }
        };
        self.open.fetch_add(1, Ordering::Relaxed);
        ConnSlot {
            _permit: permit,
            open: self.open.clone(),
            client: None,
            worker: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_leaves_room_for_admin_probes_and_upstreams() {
        assert_eq!(default_max_connections(40), 10);
        assert_eq!(default_max_connections(256), 64);
        assert_eq!(default_max_connections(1024), 448);
        assert_eq!(default_max_connections(1 << 20), 471_859);
        assert_eq!(default_max_connections(100), 25);
        assert_eq!(default_max_connections(2), 1);
        assert_eq!(default_max_connections(0), 1);
        assert!(default_max_connections(u64::MAX) > 1);
        for n in [40u64, 200, 256, 1000, 4096, 65536, 1 << 20] {
            let m = default_max_connections(n) as u64;
            // Two descriptors per connection still leave the reserve free.
            assert!(2 * m + reserved_fds(n) <= n, "{n}: {m}");
            assert!(reserved_fds(n) >= MIN_RESERVED_FDS.min(n / 2));
        }
    }

    #[test]
    fn configured_limit_wins() {
        assert_eq!(max_connections(10, 256), 10);
        assert_eq!(max_connections(0, 256), 64);
    }

    #[test]
    fn emfile_and_enfile_are_resource_exhaustion() {
        use nix::errno::Errno;
        for e in [Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM] {
            assert!(is_resource_exhaustion(&std::io::Error::from_raw_os_error(
                e as i32
            )));
        }
        for e in [Errno::ECONNABORTED, Errno::EINTR] {
            assert!(!is_resource_exhaustion(&std::io::Error::from_raw_os_error(
                e as i32
            )));
        }
    }

    #[tokio::test]
    async fn slots_are_freed_on_drop() {
        let l = ConnLimit::new(2);
        let a = l.acquire().await;
        let _b = l.acquire().await;
        assert_eq!(l.open(), 2);
        let waiting = tokio::time::timeout(Duration::from_millis(100), l.acquire()).await;
        assert!(waiting.is_err(), "a third slot must wait");
        drop(a);
        let _c = tokio::time::timeout(Duration::from_secs(5), l.acquire())
            .await
            .expect("a freed slot is handed out");
        assert_eq!(l.open(), 2);
    }
}
