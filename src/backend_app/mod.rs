//! The built-in demo/test backend (`drover backend`).
//!
//! A small HTTP server (HTTP/1.1 and h2c with prior knowledge) so that the demo
//! and the tests need nothing else. Every response carries
//! `X-Backend-Name: NAME`.
//!
//! # Endpoints
//!
//! | request | response |
//! |---|---|
//! | any other path, any method (also extension methods like `PURGE`) | `200 application/json` echo, see below |
//! | `/health` (any method) | `200 ok` (text), or `503 failing` after `POST /admin/fail` |
//! | `POST /admin/fail` / `POST /admin/recover` | `200`; switches `/health` to 503 / back to 200 (per server) |
//! | `GET /admin/stats` | `{"requests": N, "connections": N, "open_connections": N}`: requests served (not counting `/health` and `/admin/*`), connections accepted since start and open now |
//! | `POST /admin/goaway` | `200`; every open connection is shut down gracefully: HTTP/2 ones get GOAWAY (streams in flight finish), HTTP/1.1 ones close after their current response |
//! | `/admin/*` otherwise | `404` (unknown path) or `405` (wrong method) |
//! | `/delay/MS` | the echo JSON, sent after MS milliseconds |
//! | `/status/CODE` | status CODE with a short text body (`"418 I'm a teapot\n"`); no body for 204, 205 and 304. CODE must be 200..=599: `1xx` (101 included — use `/ws` or `/upgrade/echo`) and anything else give `400` |
//! | `/bytes/N` | N bytes in 64 KiB chunks with `Content-Length: N`; `?chunked=1` drops the length (chunked encoding). Byte `i` is `PATTERN[i % 64]` where `PATTERN` is `0-9a-zA-Z` followed by `"-\n"` |
//! | `/stream/N/MS` | N lines `"chunk I\n"` (I from 0), chunked; the first at once, then one every MS milliseconds |
//! | `/cookies` | `200` with two `Set-Cookie` headers: `a=1; Path=/` and `b=2; Path=/` |
//! | `/gzip` | a fixed 33-byte gzip stream of `"hello drover\n"` with `Content-Encoding: gzip` |
//! | `/redirect` | `302` with `Location: /target` |
//! | `/ws` | WebSocket (HTTP/1.1 upgrade) echoing text and binary messages; `426` without the upgrade headers |
//! | `/upgrade/echo` with `Upgrade: echo`, `Connection: upgrade` | `101`, then every byte is echoed back on the raw connection; `426` without the headers |
//!
//! The echo JSON is
//! `{"name", "method", "path", "query", "version", "headers", "body_bytes", "body_sha256"}`:
//! `path` and `query` exactly as received (not percent-decoded; `query` is `""`
//! when absent), `version` like `"HTTP/1.1"` or `"HTTP/2.0"`, `headers` an
//! object of lower-case name → value where repeated headers are joined with
//! `", "` (non-UTF-8 bytes replaced). The body is streamed and hashed as it
//! arrives, never buffered whole, so uploads of any size run in constant memory.
//! `body_sha256` is lower-case hex.
//!
//! Every endpoint other than the echo reads and discards the request body, so
//! keep-alive connections stay usable.
//!
//! With `DROVER_BACKEND_GOAWAY_AFTER=N` in the environment, each connection
//! is shut down gracefully (GOAWAY on HTTP/2) once it has taken N requests:
//! a backend that rotates its connections, for the GOAWAY tests.
//! With `--warmup MS` every other request is slow for the first MS
//! milliseconds after start (see [`warmup`]).
//!
//! With `-v` (debug level) every request is logged as `backend request` with
//! `method`, `path` and `request_id` (its `X-Request-Id`, `""` when absent),
//! before it is answered.

mod body;
mod echo;
mod linger;
mod routes;
mod tls;
mod upgrade;
pub mod warmup;

pub use tls::BackendTls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Pause after a failed `accept` (for example too many open files), so a
/// persistent error does not spin the CPU.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Environment variable: shut each connection down after this many requests.
pub const GOAWAY_AFTER_ENV: &str = "DROVER_BACKEND_GOAWAY_AFTER";

/// Per-server state shared by all connections.
#[derive(Debug)]
struct State {
    /// Name reported in the echo JSON.
    name: String,
    /// `X-Backend-Name` value; `None` when the name is not a valid header value.
    name_header: Option<HeaderValue>,
    /// `false` after `POST /admin/fail` until `POST /admin/recover`.
    healthy: AtomicBool,
    /// Requests served, not counting `/health` and `/admin/*`.
    requests: AtomicU64,
    /// Connections accepted since start, and open now.
    connections: AtomicU64,
    open: AtomicU64,
    /// Bumped by `POST /admin/goaway`: every connection shuts down gracefully.
    goaway: tokio::sync::watch::Sender<u64>,
    /// `DROVER_BACKEND_GOAWAY_AFTER`: requests per connection before it is shut down.
    goaway_after: Option<u64>,
    /// `--warmup`: slow for a while after start.
    warmup: Option<warmup::Warmup>,
}

impl State {
    fn new(name: String, warm_up: Duration) -> Self {
        let name_header = HeaderValue::from_str(&name).ok();
        if name_header.is_none() {
            tracing::warn!(name = %name, "backend name is not a valid header value; X-Backend-Name omitted");
        }
        State {
            name,
            name_header,
            healthy: AtomicBool::new(true),
            requests: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            open: AtomicU64::new(0),
            goaway: tokio::sync::watch::channel(0).0,
            goaway_after: std::env::var(GOAWAY_AFTER_ENV)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .filter(|&n: &u64| n > 0),
            warmup: warmup::Warmup::new(warm_up),
        }
    }
}

/// Serves the built-in backend forever on an already-bound listener.
///
/// Each accepted connection runs in its own task and speaks HTTP/1.1 (with
/// keep-alive and upgrades) or h2c with prior knowledge. Neither a failed
/// connection nor a failed `accept` ends the server; the function only returns
/// when the task is dropped.
pub async fn serve(listener: TcpListener, name: String) -> std::io::Result<()> {
    serve_with(listener, name, None, Duration::ZERO).await
}

/// [`serve`], over TLS when `tls` is given (a failed handshake ends only
/// that connection), slow for `warm_up` after start (see [`warmup`]).
pub async fn serve_with(
    listener: TcpListener,
    name: String,
    tls: Option<TlsAcceptor>,
    warm_up: Duration,
) -> std::io::Result<()> {
    let state = Arc::new(State::new(name, warm_up));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, error = %err, "cannot set TCP_NODELAY");
                }
                let state = Arc::clone(&state);
                match tls.clone() {
                    None => tokio::spawn(serve_connection(stream, peer, state)),
                    Some(acceptor) => tokio::spawn(async move {
                        match acceptor.accept(stream).await {
                            Ok(s) => serve_tls_connection(s, peer, state).await,
                            Err(err) => {
                                tracing::debug!(%peer, error = %err, "backend TLS handshake failed")
                            }
                        }
                    }),
                };
            }
            Err(err) => {
                tracing::warn!(error = %err, "backend accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Runs one client connection to completion; errors are logged, not returned.
async fn serve_connection(stream: TcpStream, peer: SocketAddr, state: Arc<State>) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %err, "cannot set TCP_NODELAY");
    }
    state.connections.fetch_add(1, Ordering::Relaxed);
    state.open.fetch_add(1, Ordering::Relaxed);
    let mut goaway = state.goaway.subscribe();
    // Requests taken on this connection, and the signal that it has had its share.
    let taken = Arc::new(AtomicU64::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());
    let (svc_state, svc_taken, svc_enough) = (state.clone(), taken.clone(), enough.clone());
    let service = service_fn(move |req| {
        let n = svc_taken.fetch_add(1, Ordering::Relaxed) + 1;
        if svc_state.goaway_after == Some(n) {
            svc_enough.notify_one();
        }
        routes::handle(req, Arc::clone(&svc_state))
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let stream = Arc::new(stream);
    let io = TokioIo::new(linger::Shared(stream.clone()));
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let mut shutting = false;
    let result = loop {
        tokio::select! {
            r = conn.as_mut() => break r,
            _ = goaway.changed(), if !shutting => {
                shutting = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = enough.notified(), if !shutting => {
                shutting = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    };
    if shutting {
        // Shut down on purpose: close without an RST that could cut the last responses.
        linger::close(stream).await;
    } else {
        drop(stream);
    }
    state.open.fetch_sub(1, Ordering::Relaxed);
    if let Err(err) = result {
        tracing::debug!(%peer, error = %err, "backend connection ended with error");
    }
}

/// [`serve_connection`] over TLS: the same service, without the lingering
/// close and GOAWAY hooks (those test the plain h2c path).
async fn serve_tls_connection<IO>(stream: IO, peer: SocketAddr, state: Arc<State>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    state.connections.fetch_add(1, Ordering::Relaxed);
    state.open.fetch_add(1, Ordering::Relaxed);
    let svc_state = state.clone();
    let service = service_fn(move |req| routes::handle(req, Arc::clone(&svc_state)));
    let builder = auto::Builder::new(TokioExecutor::new());
    let result = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .await;
    state.open.fetch_sub(1, Ordering::Relaxed);
    if let Err(err) = result {
        tracing::debug!(%peer, error = %err, "backend connection ended with error");
    }
}

/// `drover backend`: binds, logs `backend listening` with the bound address,
/// and serves until SIGTERM or SIGINT, then returns `Ok`.
///
/// `listen` defaults to `127.0.0.1:$PORT`; `name` defaults to `$HOSTNAME`, or
/// the bound listen address when that is unset or empty.
/// With `--tls-cert`/`--tls-key` it serves TLS (see [`BackendTls`]);
/// `warm_up`: slow for this long after start (`--warmup`; zero = never).
pub async fn run(
    listen: Option<SocketAddr>,
    name: Option<String>,
    tls: BackendTls,
    warm_up: Duration,
) -> anyhow::Result<()> {
    let acceptor = tls.acceptor()?;
    let addr = listen_addr(listen, std::env::var("PORT").ok())?;
    let listener = bind(addr).await?;
    let local_addr = listener.local_addr().context("reading the bound address")?;
    let name = name.unwrap_or_else(|| default_name(std::env::var("HOSTNAME").ok(), local_addr));
    tracing::info!(addr = %local_addr, name = %name, tls = acceptor.is_some(), "backend listening");
    tokio::select! {
        result = serve_with(listener, name, acceptor, warm_up) => result.context("backend server failed"),
        signal = shutdown_signal() => {
            signal?;
            tracing::info!("backend shutting down");
            Ok(())
        }
    }
}

/// The address to listen on: `listen`, else `127.0.0.1:PORT`.
fn listen_addr(listen: Option<SocketAddr>, port_env: Option<String>) -> anyhow::Result<SocketAddr> {
    if let Some(addr) = listen {
        return Ok(addr);
    }
    let Some(port) = port_env else {
        bail!("no listen address: pass --listen or set the PORT environment variable");
    };
    let port: u16 = port
        .trim()
        .parse()
        .map_err(|_| anyhow!("PORT must be a port number (0-65535), got {port:?}"))?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// The default backend name: `$HOSTNAME` when set and non-empty, else the address.
fn default_name(hostname: Option<String>, addr: SocketAddr) -> String {
    hostname
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| addr.to_string())
}

/// Binds `addr`, with a readable error ("cannot listen on ADDR: address in use").
async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|err| {
        let reason = match err.kind() {
            std::io::ErrorKind::AddrInUse => "address in use".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => err.to_string(),
        };
        anyhow!("cannot listen on {addr}: {reason}")
    })
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C elsewhere than Unix).
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_flag_wins_over_port_env() {
        let addr: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        assert_eq!(listen_addr(Some(addr), Some("8001".into())).unwrap(), addr);
    }

    #[test]
    fn port_env_means_loopback() {
        let addr = listen_addr(None, Some("8001".into())).unwrap();
        assert_eq!(addr, "127.0.0.1:8001".parse().unwrap());
    }

    #[test]
    fn missing_listen_and_port_is_a_clear_error() {
        let err = listen_addr(None, None).unwrap_err().to_string();
        assert!(err.contains("--listen") && err.contains("PORT"), "{err}");
        let err = listen_addr(None, Some("http".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PORT must be a port number"), "{err}");
    }

    #[test]
    fn name_defaults_to_hostname_then_address() {
        let addr: SocketAddr = "127.0.0.1:8001".parse().unwrap();
        assert_eq!(default_name(Some("web-1".into()), addr), "web-1");
        assert_eq!(default_name(Some(" ".into()), addr), "127.0.0.1:8001");
        assert_eq!(default_name(None, addr), "127.0.0.1:8001");
    }

    #[tokio::test]
    async fn bind_reports_address_in_use() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind(addr).await.unwrap_err().to_string();
        assert_eq!(err, format!("cannot listen on {addr}: address in use"));
    }
}
