//! The admin listener's connections: at most `admin.max_connections` open
//! (beyond that it stops accepting, like HAProxy's `maxconn`), a connection
//! that sends nothing is closed after `admin.header_read_timeout`, a request
//! head must complete within it, and a connection idle for
//! `admin.idle_timeout` is closed.

use std::convert::Infallible;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::guard::Addrs;
use super::history::{self, History};
use super::Drover;

/// Pause after a failed accept (EMFILE and friends) instead of spinning. 50 ms.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves the admin API on `listener` until the task is dropped; also runs
/// the history sampler for the dashboard.
pub async fn serve(listener: TcpListener, app: Arc<dyn Drover>) {
    let history = Arc::new(History::default());
    let sampler = tokio::spawn(history::run(history.clone(), app.clone()));
    let _stop_sampler = AbortOnDrop(sampler);
    let slots = Arc::new(Semaphore::new(app.config().admin.max_connections));
    let listen = listener.local_addr().ok().map(|a| a.ip());
    loop {
        // Wait for a free slot before accepting: excess clients wait in the backlog.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let (app, history) = (app.clone(), history.clone());
        tokio::spawn(async move {
            connection(stream, listen, app, history).await;
            drop(slot);
        });
    }
}

/// One admin connection, closed when silent, idle, or done.
async fn connection(
    stream: TcpStream,
    listen: Option<IpAddr>,
    app: Arc<dyn Drover>,
    history: Arc<History>,
) {
    let admin = app.config().admin.clone();
    // hyper's header timer starts with the first byte: bound the silence before it.
    let mut first = [0u8; 1];
    match tokio::time::timeout(admin.header_read_timeout, stream.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => return,
    }
    let addrs = Addrs {
        local: stream.local_addr().ok().map(|a| a.ip()),
        listen,
    };
    let idle = Arc::new(Idle::new());
    let svc = {
        let idle = idle.clone();
        service_fn(move |req| {
            let (app, history, idle) = (app.clone(), history.clone(), idle.clone());
            async move {
                let _busy = idle.busy();
                // A panic ends this request with a 500 (the hook logs it), not the admin API.
                let r = AssertUnwindSafe(super::route(app, history, addrs, req))
                    .catch_unwind()
                    .await;
                Ok::<_, Infallible>(r.unwrap_or_else(|_| super::panicked()))
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(admin.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    loop {
        let left = admin.idle_timeout.saturating_sub(idle.idle_for());
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = tokio::time::sleep(left.max(Duration::from_millis(50))) => {
                if idle.idle_for() >= admin.idle_timeout {
                    conn.as_mut().graceful_shutdown();
                    // An idle connection closes at once; bound a stuck one anyway.
                    let _ = tokio::time::timeout(admin.header_read_timeout, conn.as_mut()).await;
                    return;
                }
            }
        }
    }
}

/// Requests in progress on a connection and when the last one ended.
struct Idle {
    active: AtomicU32,
    /// Milliseconds since `epoch` when the last request ended (or the connection opened).
    last_ms: AtomicU64,
    epoch: Instant,
}

impl Idle {
    fn new() -> Idle {
        Idle {
            active: AtomicU32::new(0),
            last_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Marks a request in progress until the guard is dropped.
    fn busy(self: &Arc<Idle>) -> Busy {
        self.active.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Time since the last request ended; zero while one is in progress.
    fn idle_for(&self) -> Duration {
        if self.active.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

/// A request in progress (see [`Idle::busy`]).
struct Busy(Arc<Idle>);

impl Drop for Busy {
    fn drop(&mut self) {
        let now = u64::try_from(self.0.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_ms.store(now, Ordering::Relaxed);
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Aborts the task when dropped (the sampler stops with the admin server).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
