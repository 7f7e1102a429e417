//! Upstream connections: a per-worker-thread keep-alive pool of HTTP/1.1
//! connections, plain or TLS ([`super::tls`]), no lock on the request path.
//!
//! Each worker runs a current-thread runtime, so the pool lives in a
//! `thread_local!`; a connection goes back into it when its response body
//! has been read to the end (see `proxy/body.rs`). An idle connection is
//! kept for the pool's `upstream_idle_timeout` (default 50 s, below the
//! 60–75 s after which backends commonly close idle keep-alive connections):
//! [`sweeper`] closes it after that even if no request comes, so a burst's
//! connections do not hold file descriptors (drover's and the backend's) for good.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::RequestBody;
use super::idle::IdleList;
use super::tls::{self as upstream_tls, UpstreamTls, ALPN_HTTP1};

/// Idle connections kept per backend and thread. Default 256.
pub const MAX_IDLE_PER_BACKEND: usize = 256;
/// How often each worker closes its idle connections past their pool's
/// `upstream_idle_timeout`. 1 s.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// A connection's request sender.
pub type Sender = SendRequest<RequestBody>;

/// The connection an exchange went out on: an HTTP/1.1 connection of its
/// own, or a stream slot on a shared HTTP/2 connection ([`super::http2`]).
pub enum Conn {
    H1(Sender),
    H2(super::http2::Stream),
}

/// Idle connections are kept per member address and TLS client
/// ([`UpstreamTls::id`]; 0 = plain): a pool reloaded with other TLS settings,
/// or another pool reaching the same address, never takes the wrong one.
pub type Key = (SocketAddr, u64);

/// The pool key part of `tls`.
pub fn tls_id(tls: Option<&UpstreamTls>) -> u64 {
    tls.map_or(0, UpstreamTls::id)
}

/// A connection that may go back to the pool when its response has been
/// read: to `key` (member address, TLS client), idle for at most `idle_for`
/// (the pool's `upstream_idle_timeout`).
pub struct Pooled {
    pub key: Key,
    pub conn: Conn,
    pub idle_for: Duration,
}

impl Pooled {
    /// Puts an HTTP/1.1 connection back into this thread's pool if it can take
    /// another request (see [`put_idle`]); gives an HTTP/2 stream slot back.
    pub fn release(self) {
        match self.conn {
            Conn::H1(sender) => put_idle(self.key, sender, self.idle_for),
            Conn::H2(stream) => drop(stream),
        }
    }
}

/// Upstream connections opened since start (`drover_upstream_connects_total`).
pub static CONNECTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    static IDLE: RefCell<HashMap<Key, IdleList<Sender>>> = RefCell::new(HashMap::new());
}

/// Why a connection could not be had.
#[derive(Debug)]
pub enum ConnectError {
    Timeout,
    Io(io::Error),
    /// The TLS handshake failed or timed out: why (the verification error).
    Tls(String),
    Handshake(hyper::Error),
    /// A TLS connection that should speak HTTP/2 did not negotiate it: why.
    NoH2(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Timeout => f.write_str("connect timed out"),
            ConnectError::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                f.write_str("connection refused")
            }
            ConnectError::Io(e) => write!(f, "connect failed: {e}"),
            ConnectError::Tls(why) => write!(f, "TLS handshake failed: {why}"),
            ConnectError::Handshake(e) => write!(f, "handshake failed: {e}"),
            ConnectError::NoH2(why) => write!(f, "no HTTP/2 over TLS: {why}"),
        }
    }
}

/// Takes an idle connection to `addr` from this thread's pool (newest first),
/// closing closed and expired ones met on the way. It may still be finishing
/// its previous exchange: [`checkout`] waits for it to be ready.
pub fn take_idle(key: Key) -> Option<Sender> {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.get_mut(&key)?;
        list.pop_newest(Instant::now(), |s| !s.is_closed())
    })
}

/// Puts a connection back into this thread's pool, idle for at most
/// `idle_for`, if it can take another request.
pub fn put_idle(key: Key, sender: Sender, idle_for: Duration) {
    if sender.is_closed() {
        return;
    }
    IDLE.with(|idle| {
        let expires = Instant::now() + idle_for;
        let mut idle = idle.borrow_mut();
        idle.entry(key)
            .or_default()
            .push(sender, expires, MAX_IDLE_PER_BACKEND);
    })
}

/// Closes this thread's idle connections that are past their idle timeout
/// or already closed by the backend, and forgets backends left with none.
pub fn sweep_idle(now: Instant) {
    IDLE.with(|idle| {
        idle.borrow_mut().retain(|_, list| {
            list.sweep(now, |s| !s.is_closed());
            !list.is_empty()
        });
    })
}

/// Runs [`sweep_idle`] every [`SWEEP_EVERY`], forever: spawned once on each
/// worker's runtime (the pool is per thread), so an idle connection is
/// closed at most `upstream_idle_timeout` + 1 s after it was last used, even
/// when no request comes to take it.
pub async fn sweeper() {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        sweep_idle(Instant::now());
        super::native::sweep(Instant::now());
        super::http2::sweep(Instant::now());
    }
}

/// A connected transport: plain TCP, or TLS (with the protocol ALPN chose).
pub enum Wire {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Wire {
    /// The protocol the backend selected by ALPN (`None` on plain TCP, or
    /// when the backend selected none).
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            Wire::Plain(_) => None,
            Wire::Tls(s) => s.get_ref().1.alpn_protocol(),
        }
    }
}

/// Opens a TCP connection to `addr` and, when the pool has `tls`, does the
/// TLS handshake offering `alpn`. The connect and the handshake each get `timeout`.
pub async fn open(
    addr: SocketAddr,
    tls: Option<&UpstreamTls>,
    alpn: &[&[u8]],
    timeout: Duration,
) -> Result<Wire, ConnectError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(ConnectError::Timeout),
        Ok(Err(e)) => return Err(ConnectError::Io(e)),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    CONNECTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let Some(tls) = tls else {
        return Ok(Wire::Plain(stream));
    };
    match tokio::time::timeout(timeout, tls.handshake(stream, addr, alpn)).await {
        Err(_) => Err(ConnectError::Tls(format!(
            "no TLS handshake within {timeout:?}"
        ))),
        Ok(Err(e)) => Err(ConnectError::Tls(with_alpn(&e, alpn))),
        Ok(Ok(s)) => Ok(Wire::Tls(Box::new(s))),
    }
}

/// Why a handshake failed; when the backend refused every protocol offered
/// by ALPN, which ones those were.
fn with_alpn(e: &io::Error, alpn: &[&[u8]]) -> String {
    let why = upstream_tls::describe(e);
    let refused = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        == Some(&rustls::Error::AlertReceived(
            rustls::AlertDescription::NoApplicationProtocol,
        ));
    if !refused {
        return why;
    }
    let offered: Vec<String> = alpn
        .iter()
        .map(|p| format!("\"{}\"", String::from_utf8_lossy(p)))
        .collect();
    format!(
        "{why}: the backend speaks none of the protocols offered by ALPN ({})",
        offered.join(", ")
    )
}

/// Opens a new HTTP/1.1 connection to `addr` (TLS when the pool has `tls`)
/// and spawns its driver task. The TCP connect and the TLS handshake each get `timeout`.
pub async fn connect(
    addr: SocketAddr,
    tls: Option<&UpstreamTls>,
    timeout: Duration,
) -> Result<Sender, ConnectError> {
    http1_on(open(addr, tls, ALPN_HTTP1, timeout).await?, addr).await
}

/// HTTP/1.1 on a connected transport.
pub async fn http1_on(wire: Wire, addr: SocketAddr) -> Result<Sender, ConnectError> {
    match wire {
        Wire::Plain(s) => http1_over(s, addr).await,
        Wire::Tls(s) => http1_over(s, addr).await,
    }
}

/// The HTTP/1.1 handshake over `io` (plain or TLS: the sender does not
/// depend on it) and the spawned driver task.
async fn http1_over<IO>(io: IO, addr: SocketAddr) -> Result<Sender, ConnectError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(io))
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
pub async fn checkout(
    addr: SocketAddr,
    tls: Option<&UpstreamTls>,
    timeout: Duration,
) -> Result<(Sender, bool), ConnectError> {
    let key = (addr, tls_id(tls));
    while let Some(mut s) = take_idle(key) {
        if s.is_ready() || s.ready().await.is_ok() {
            return Ok((s, true));
        }
    }
    // Boxed: the rare path, and inline it would be most of this future's size.
    Box::pin(connect(addr, tls, timeout))
        .await
        .map(|s| (s, false))
}
