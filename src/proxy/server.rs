//! The proxy's listeners and worker threads.
//!
//! One worker thread per core, each with its own current-thread tokio runtime,
//! its own `SO_REUSEPORT` listener per address and its own upstream pool
//! (measured 12–16% more req/s than one multi-thread runtime on this kind of
//! machine: `../shared/bench/README.md`).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures_util::FutureExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use super::forward::{self, Downstream};
use super::router::Router;
use crate::config::ServerConfig;

/// State every worker reads; the router is swapped whole on reload.
pub struct Shared {
    pub router: ArcSwap<Router>,
}

/// Binds `addr` with `SO_REUSEPORT` (and `SO_REUSEADDR`), non-blocking, backlog 4096.
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Binds every address once per worker. Port 0 is resolved by the first bind,
/// so all workers share the same port. Errors name the address.
pub fn bind_all(
    addrs: &[SocketAddr],
    workers: usize,
) -> anyhow::Result<(Vec<SocketAddr>, Vec<Vec<std::net::TcpListener>>)> {
    let mut per_worker: Vec<Vec<std::net::TcpListener>> =
        (0..workers).map(|_| Vec::new()).collect();
    let mut bound = Vec::new();
    for addr in addrs {
        let first = bind_reuseport(*addr).map_err(|e| listen_error(*addr, e))?;
        let actual = first.local_addr()?;
        bound.push(actual);
        per_worker[0].push(first);
        for w in per_worker.iter_mut().skip(1) {
            w.push(bind_reuseport(actual).map_err(|e| listen_error(actual, e))?);
        }
    }
    Ok((bound, per_worker))
}

/// "cannot listen on 127.0.0.1:8080: address in use (is another drover or server running there?)"
pub fn listen_error(addr: SocketAddr, e: io::Error) -> anyhow::Error {
    let hint = match e.kind() {
        io::ErrorKind::AddrInUse => {
            " (is another server already listening there? change server.listen)"
        }
        io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
        io::ErrorKind::AddrNotAvailable => " (that address is not on this machine)",
        _ => "",
    };
    anyhow::anyhow!("cannot listen on {addr}: {e}{hint}")
}

/// Activity of one client connection, for `idle_timeout`.
#[derive(Debug)]
pub struct ConnActivity {
    /// Requests being served on the connection.
    pub active: AtomicU32,
    /// Milliseconds since `epoch` when the last request ended.
    last_end_ms: AtomicU64,
    epoch: Instant,
}

impl ConnActivity {
    fn new() -> ConnActivity {
        ConnActivity {
            active: AtomicU32::new(0),
            last_end_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Marks one request finished.
    pub fn end(&self) {
        self.last_end_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// How long the connection has been idle (zero while a request is active).
    fn idle_for(&self) -> Duration {
        if self.active.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_end_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

/// A change to a worker's listeners.
enum WorkerCmd {
    /// Start accepting on this (already bound) listener.
    Listen(std::net::TcpListener),
    /// Stop accepting on the listener bound to this address (open connections finish).
    Unlisten(SocketAddr),
}

/// A running set of proxy workers.
pub struct Workers {
    /// The addresses actually bound (port 0 resolved).
    pub addrs: Vec<SocketAddr>,
    /// The TLS addresses actually bound.
    pub tls_addrs: Vec<SocketAddr>,
    shutdown: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Commands to each worker (listeners added or removed on reload).
    cmds: Vec<mpsc::UnboundedSender<WorkerCmd>>,
    /// Plain listeners in force: configured address -> bound address.
    bound: std::sync::Mutex<Vec<(SocketAddr, SocketAddr)>>,
    open: Arc<AtomicUsize>,
}

impl Workers {
    /// Binds and starts `workers` threads serving `shared`.
    pub fn start(
        shared: Arc<Shared>,
        server: &ServerConfig,
        workers: usize,
    ) -> anyhow::Result<Workers> {
        let workers = workers.max(1);
        let (addrs, mut listeners) = bind_all(&server.listen, workers)?;
        let plain = server.listen.len();
        let (tls_addrs, acceptor) = match &server.tls {
            Some(tls) => {
                let acceptor = super::tls::acceptor(tls)?;
                let (bound, per_worker) = bind_all(&tls.listen, workers)?;
                for (w, extra) in listeners.iter_mut().zip(per_worker) {
                    w.extend(extra);
                }
                (bound, Some(acceptor))
            }
            None => (Vec::new(), None),
        };
        let (tx, rx) = watch::channel(false);
        let open = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        let mut cmds = Vec::new();
        for (i, ls) in listeners.into_iter().enumerate() {
            let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
            cmds.push(cmd_tx);
            let shared = shared.clone();
            let rx = rx.clone();
            let server = server.clone();
            let open = open.clone();
            let acceptor = acceptor.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("drover-worker-{i}"))
                    .spawn(move || {
                        let init = WorkerInit {
                            shared,
                            shutdown: rx,
                            server,
                            open,
                        };
                        worker(ls, plain, acceptor, cmd_rx, init)
                    })?,
            );
        }
        let bound = server
            .listen
            .iter()
            .copied()
            .zip(addrs.iter().copied())
            .collect();
        Ok(Workers {
            addrs,
            tls_addrs,
            cmds,
            bound: std::sync::Mutex::new(bound),
            shutdown: tx,
            threads,
            open,
        })
    }

    /// Makes the plain listeners match `listen` (reload): binds the new
    /// addresses on every worker first (an error changes nothing), then stops
    /// accepting on the removed ones; unchanged listeners are not touched.
    /// Returns the newly bound addresses.
    pub fn rebind(&self, listen: &[SocketAddr]) -> anyhow::Result<Vec<SocketAddr>> {
        let mut bound = self.bound.lock().unwrap_or_else(|e| e.into_inner());
        let added: Vec<SocketAddr> = listen
            .iter()
            .copied()
            .filter(|a| !bound.iter().any(|(c, _)| c == a))
            .collect();
        let (new_addrs, per_worker) = bind_all(&added, self.cmds.len())?;
        for (tx, ls) in self.cmds.iter().zip(per_worker) {
            for l in ls {
                let _ = tx.send(WorkerCmd::Listen(l));
            }
        }
        let removed: Vec<SocketAddr> = bound
            .iter()
            .filter(|(c, _)| !listen.contains(c))
            .map(|(_, b)| *b)
            .collect();
        for addr in &removed {
            for tx in &self.cmds {
                let _ = tx.send(WorkerCmd::Unlisten(*addr));
            }
        }
        bound.retain(|(c, _)| listen.contains(c));
        bound.extend(added.into_iter().zip(new_addrs.iter().copied()));
        Ok(new_addrs)
    }

    /// Client connections currently open.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Stops accepting, lets in-flight requests finish (up to the server's
    /// `shutdown_timeout`), closes idle connections, and joins the threads.
    pub fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// What every worker shares.
struct WorkerInit {
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    server: ServerConfig,
    open: Arc<AtomicUsize>,
}

/// What an accept loop needs (cloned per listener).
#[derive(Clone)]
struct AcceptCtx {
    builder: Arc<auto::Builder<TokioExecutor>>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    server: ServerConfig,
    open: Arc<AtomicUsize>,
}

/// One worker thread: the first `plain` listeners serve HTTP, the rest TLS.
fn worker(
    listeners: Vec<std::net::TcpListener>,
    plain: usize,
    acceptor: Option<TlsAcceptor>,
    mut cmds: mpsc::UnboundedReceiver<WorkerCmd>,
    init: WorkerInit,
) {
    let WorkerInit {
        shared,
        mut shutdown,
        server,
        open,
    } = init;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("worker runtime");
    rt.block_on(async move {
        // Closes this worker's idle upstream connections past their timeout.
        tokio::spawn(super::upstream::sweeper());
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(server.header_read_timeout)
            .max_buf_size(server.max_header_bytes.max(8192))
            .keep_alive(true);
        let ctx = AcceptCtx {
            builder: Arc::new(builder),
            shared,
            shutdown: shutdown.clone(),
            server: server.clone(),
            open: open.clone(),
        };
        let mut accepts = Vec::new();
        // Per-listener stop switches, by bound address (plain listeners only).
        let mut stops: Vec<(SocketAddr, watch::Sender<bool>)> = Vec::new();
        let spawn_accept =
            |l: std::net::TcpListener,
             tls: Option<TlsAcceptor>,
             stops: &mut Vec<(SocketAddr, watch::Sender<bool>)>| {
                let l = TcpListener::from_std(l).expect("listener into tokio");
                let (stop_tx, stop_rx) = watch::channel(false);
                if let Ok(a) = l.local_addr() {
                    stops.push((a, stop_tx));
                }
                tokio::spawn(accept_loop(l, tls, ctx.clone(), stop_rx))
            };
        for (i, l) in listeners.into_iter().enumerate() {
            let tls = if i < plain { None } else { acceptor.clone() };
            accepts.push(spawn_accept(l, tls, &mut stops));
        }
        loop {
            tokio::select! {
                _ = stopped(&mut shutdown) => break,
                cmd = cmds.recv() => match cmd {
                    Some(WorkerCmd::Listen(l)) => accepts.push(spawn_accept(l, None, &mut stops)),
                    Some(WorkerCmd::Unlisten(addr)) => {
                        for (_, tx) in stops.iter().filter(|(a, _)| *a == addr) {
                            let _ = tx.send(true);
                        }
                        stops.retain(|(a, _)| *a != addr);
                    }
                    None => {
                        stopped(&mut shutdown).await;
                        break;
                    }
                },
            }
        }
        for a in accepts {
            let _ = a.await;
        }
        // Listeners are closed; wait for open connections to finish.
        let deadline = Instant::now() + server.shutdown_timeout;
        while open.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    // Dropping the runtime cancels whatever is left after shutdown_timeout.
    rt.shutdown_timeout(Duration::from_millis(100));
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    ctx: AcceptCtx,
    mut unlisten: watch::Receiver<bool>,
) {
    let AcceptCtx {
        builder,
        shared,
        mut shutdown,
        server,
        open,
    } = ctx;
    loop {
        let (stream, client) = tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = stopped(&mut unlisten) => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (builder, shared, shutdown, open) = (
            builder.clone(),
            shared.clone(),
            shutdown.clone(),
            open.clone(),
        );
        let idle = server.idle_timeout;
        let handshake_timeout = server.header_read_timeout;
        let tls = tls.clone();
        open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            match tls {
                None => {
                    serve_connection(stream, client, builder, shared, shutdown, idle, "http").await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => {
                            serve_connection(s, client, builder, shared, shutdown, idle, "https")
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(client = %client, error = %e, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(client = %client, "TLS handshake timed out"),
                    }
                }
            }
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn serve_connection<I>(
    stream: I,
    client: SocketAddr,
    builder: Arc<auto::Builder<TokioExecutor>>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    idle_timeout: Duration,
    proto: &'static str,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(ConnActivity::new());
    let down = Downstream { client, proto };
    let act = activity.clone();
    let svc = service_fn(move |req| {
        let act = act.clone();
        act.active.fetch_add(1, Ordering::Relaxed);
        // `map` rather than an async block: no second slot for the future
        // (hyper copies the whole future once per request).
        forward::handle(&shared.router.load(), req, down).map(move |mut resp| {
            resp.body_mut().on_end(act);
            Ok::<_, Infallible>(resp)
        })
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let idle_check = tokio::time::sleep(
            idle_timeout
                .saturating_sub(activity.idle_for())
                .max(Duration::from_millis(50)),
        );
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(client = %client, error = %e, "client connection error");
                }
                return;
            }
            _ = stopped(&mut shutdown), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = idle_check, if !closing => {
                if activity.idle_for() >= idle_timeout {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Resolves once shutdown has been signalled (or the sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
