//! Upstream connections: a per-worker-thread keep-alive pool of HTTP/1.1
//! connections, no lock on the request path.
//!
//! Each worker runs a current-thread runtime, so the pool lives in a
//! `thread_local!`; a connection goes back into it when its response body
//! has been read to the end (see [`super::body`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::RequestBody;

/// Idle connections kept per backend and thread. Default 256.
pub const MAX_IDLE_PER_BACKEND: usize = 256;
/// Idle connections older than this are not reused (backends commonly close
/// idle keep-alive connections after 60–75 s). Default 50 s.
pub const IDLE_REUSE_LIMIT: Duration = Duration::from_secs(50);

/// A connection's request sender.
pub type Sender = SendRequest<RequestBody>;

struct Idle {
    sender: Sender,
    since: Instant,
}

/// Upstream connections opened since start (`drover_upstream_connects_total`).
pub static CONNECTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    static IDLE: RefCell<HashMap<SocketAddr, Vec<Idle>>> = RefCell::new(HashMap::new());
}

/// Why a connection could not be had.
#[derive(Debug)]
pub enum ConnectError {
    Timeout,
    Io(io::Error),
    Handshake(hyper::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Timeout => f.write_str("connect timed out"),
            ConnectError::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                f.write_str("connection refused")
            }
            ConnectError::Io(e) => write!(f, "connect failed: {e}"),
            ConnectError::Handshake(e) => write!(f, "handshake failed: {e}"),
        }
    }
}

/// Takes an idle connection to `addr` from this thread's pool (newest first),
/// skipping closed and stale ones. It may still be finishing its previous
/// exchange: [`checkout`] waits for it to be ready.
pub fn take_idle(addr: SocketAddr) -> Option<Sender> {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.get_mut(&addr)?;
        while let Some(c) = list.pop() {
            if !c.sender.is_closed() && c.since.elapsed() < IDLE_REUSE_LIMIT {
                return Some(c.sender);
            }
        }
        None
    })
}

/// Puts a connection back into this thread's pool if it can take another request.
pub fn put_idle(addr: SocketAddr, sender: Sender) {
    if sender.is_closed() {
        return;
    }
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.entry(addr).or_default();
        if list.len() < MAX_IDLE_PER_BACKEND {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    })
}

/// Opens a new connection to `addr` within `timeout` and spawns its driver task.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Sender, ConnectError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(ConnectError::Timeout),
        Ok(Err(e)) => return Err(ConnectError::Io(e)),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    CONNECTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(ConnectError::Handshake)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(backend = %addr, error = %e, "upstream connection ended");
        }
    });
    Ok(sender)
}

/// An idle connection if one is (or becomes) ready, else a new one.
/// The flag says whether the connection was reused.
pub async fn checkout(addr: SocketAddr, timeout: Duration) -> Result<(Sender, bool), ConnectError> {
    while let Some(mut s) = take_idle(addr) {
        if s.is_ready() || s.ready().await.is_ok() {
            return Ok((s, true));
        }
    }
    // Boxed: the rare path, and inline it would be most of this future's size.
    Box::pin(connect(addr, timeout)).await.map(|s| (s, false))
}
