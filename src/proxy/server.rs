//! The proxy's listeners and worker threads.
//!
//! One worker thread per core, each with its own current-thread tokio runtime,
//! its own `SO_REUSEPORT` listener per address and its own upstream pool
//! (measured 12–16% more req/s than one multi-thread runtime on this kind of
//! machine: `../shared/bench/README.md`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::{Request, Response, Version};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use super::body::ProxyBody;
use super::client_conns::ClientConns;
pub use super::conn_activity::ConnActivity;
use super::conn_activity::{ClientReads, Limits, Watched};
use super::h1::{self, ClientIn};
use super::isolate::{self, Isolated, RequestInfo, TestPanic};
use super::limits::{self, ConnLimit, ConnSlot};
pub use super::listen::{bind_all, bind_reuseport, listen_error};
use super::prepare::{self, Downstream};
use super::request_id;
use super::router::Router;
use super::spread::Spread;
use crate::config::{Http1Codec, Http2Codec, ServerConfig};

/// State every worker reads; the router is swapped whole on reload.
pub struct Shared {
    pub router: ArcSwap<Router>,
}

/// A change to a worker's listeners.
enum WorkerCmd {
    /// Start accepting on this (already bound) listener.
    Listen(std::net::TcpListener),
    /// Stop accepting on the listener bound to this address (open connections finish).
    Unlisten(SocketAddr),
    /// Serve this connection, accepted by another worker ([`super::spread`]).
    Adopt(Box<NewConn<std::net::TcpStream>>),
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
    bound: parking_lot::Mutex<Vec<(SocketAddr, SocketAddr)>>,
    limit: ConnLimit,
}

impl Workers {
    /// Raises the open-file limit (if `app::run` has not already), binds and
    /// starts `workers` threads serving `shared`.
    pub fn start(
        shared: Arc<Shared>,
        server: &ServerConfig,
        workers: usize,
    ) -> anyhow::Result<Workers> {
        let workers = workers.max(1);
        isolate::init_test_trigger();
        let nofile = limits::raise_nofile_limit();
        let limit = ConnLimit::new(limits::max_connections(server.max_connections, nofile));
        if limit.max() > limits::default_max_connections(nofile) {
            tracing::warn!(
                max_connections = limit.max(),
                open_files = nofile,
                "server.max_connections leaves little room under the open-file limit: a flood can starve the admin API and health probes"
            );
        }
        tracing::info!(
            max_connections = limit.max(),
            open_files = nofile,
            "client connection limit"
        );
        super::upgrade::set_idle_timeout(server.tunnel_idle_timeout);
        let (addrs, mut listeners) = bind_all(&server.listen, workers, &[])?;
        let plain = server.listen.len();
        let (tls_addrs, acceptor) = match &server.tls {
            Some(tls) => {
                let acceptor = super::tls::acceptor(tls)?;
                let (bound, per_worker) = bind_all(&tls.listen, workers, &[])?;
                for (w, extra) in listeners.iter_mut().zip(per_worker) {
                    w.extend(extra);
                }
                (bound, Some(acceptor))
            }
            None => (Vec::new(), None),
        };
        // `server.https_redirect`: the port of the TLS listener (as bound).
        let https_port = tls_addrs
            .first()
            .map(|a| a.port())
            .filter(|_| server.https_redirect);
        let per_client = (server.max_connections_per_client > 0)
            .then(|| ClientConns::new(server.max_connections_per_client));
        let (tx, rx) = watch::channel(false);
        let mut threads = Vec::new();
        let (cmds, cmd_rxs): (Vec<_>, Vec<_>) =
            listeners.iter().map(|_| mpsc::unbounded_channel()).unzip();
        let peers = Arc::new(cmds.clone());
        let spread = Spread::new(listeners.len());
        for ((i, ls), cmd_rx) in listeners.into_iter().enumerate().zip(cmd_rxs) {
            let place = Placement {
                me: i,
                spread: spread.clone(),
                peers: peers.clone(),
            };
            let shared = shared.clone();
            let rx = rx.clone();
            let server = server.clone();
            let limit = limit.clone();
            let per_client = per_client.clone();
            let acceptor = acceptor.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("drover-worker-{i}"))
                    .spawn(move || {
                        let init = WorkerInit {
                            shared,
                            shutdown: rx,
                            server,
                            limit,
                            https_port,
                            per_client,
                            place,
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
            bound: parking_lot::Mutex::new(bound),
            shutdown: tx,
            threads,
            limit,
        })
    }

    /// Makes the plain listeners match `listen` (reload): binds the new
    /// addresses on every worker first (an error changes nothing), then stops
    /// accepting on the removed ones; unchanged listeners are not touched.
    /// Returns the newly bound addresses.
    pub fn rebind(&self, listen: &[SocketAddr]) -> anyhow::Result<Vec<SocketAddr>> {
        let mut bound = self.bound.lock();
        let added: Vec<SocketAddr> = listen
            .iter()
            .copied()
            .filter(|a| !bound.iter().any(|(c, _)| c == a))
            .collect();
        let ours: Vec<SocketAddr> = bound.iter().map(|(_, b)| *b).collect();
        let (new_addrs, per_worker) = bind_all(&added, self.cmds.len(), &ours)?;
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
        self.limit.open()
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
    limit: ConnLimit,
    /// `server.https_redirect`: the TLS listener's port.
    https_port: Option<u16>,
    /// `server.max_connections_per_client`, when set.
    per_client: Option<Arc<ClientConns>>,
    place: Placement,
}

/// A worker's place among the others: where it hands connections over.
#[derive(Clone)]
struct Placement {
    /// This worker's index.
    me: usize,
    spread: Arc<Spread>,
    /// Every worker's commands, by index.
    peers: Arc<Vec<mpsc::UnboundedSender<WorkerCmd>>>,
}

/// A client connection accepted and holding its slot, not yet served.
struct NewConn<S> {
    stream: S,
    client: SocketAddr,
    slot: ConnSlot,
    /// When it was accepted.
    at: Instant,
    /// The TLS listener's acceptor, for a connection accepted there.
    tls: Option<TlsAcceptor>,
    /// `server.https_redirect` (plain listeners): the TLS port.
    https_port: Option<u16>,
}

impl<S> NewConn<S> {
    /// The same connection over `f(stream)`; the error drops it (closed).
    fn map_stream<T>(self, f: impl FnOnce(S) -> std::io::Result<T>) -> Option<NewConn<T>> {
        match f(self.stream) {
            Ok(stream) => Some(NewConn {
                stream,
                client: self.client,
                slot: self.slot,
                at: self.at,
                tls: self.tls,
                https_port: self.https_port,
            }),
            Err(e) => {
                tracing::debug!(client = %self.client, error = %e, "cannot move a connection between workers; closed");
                None
            }
        }
    }
}

impl NewConn<TcpStream> {
    /// Where this connection is served: here (returned), or handed to the
    /// worker [`super::spread::pick`] chose (`None`).
    fn place(self, place: &Placement) -> Option<NewConn<TcpStream>> {
        let (to, serving) = place.spread.place(place.me);
        let mut conn = NewConn {
            slot: self.slot.with_worker(serving),
            ..self
        };
        if to == place.me {
            return Some(conn);
        }
        if let Some(peer) = place.peers.get(to) {
            let moving = conn.map_stream(TcpStream::into_std)?;
            match peer.send(WorkerCmd::Adopt(Box::new(moving))) {
                Ok(()) => {
                    place.spread.count_move();
                    return None;
                }
                // That worker is stopping: served here after all.
                Err(mpsc::error::SendError(WorkerCmd::Adopt(c))) => {
                    conn = (*c).map_stream(TcpStream::from_std)?;
                }
                Err(_) => return None,
            }
        }
        Some(NewConn {
            slot: conn.slot.with_worker(place.spread.serve(place.me)),
            ..conn
        })
    }
}

/// What an accept loop needs (cloned per listener).
#[derive(Clone)]
struct AcceptCtx {
    builder: Arc<auto::Builder<TokioExecutor>>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    server: ServerConfig,
    limit: ConnLimit,
    https_port: Option<u16>,
    per_client: Option<Arc<ClientConns>>,
    place: Placement,
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
        limit,
        https_port,
        per_client,
        place,
    } = init;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("worker runtime");
    rt.block_on(async move {
        // Closes this worker's idle upstream connections past their timeout.
        tokio::spawn(crate::upstream::http1::sweeper());
        // Members that drain or leave close their shared HTTP/2 connections.
        crate::pool::on_member_retired(crate::upstream::http2::retire);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            // serve_connection applies header_read_timeout itself: hyper's timer
            // would also cut idle keep-alive connections and start only at the first byte.
            .header_read_timeout(None)
            .max_buf_size(server.max_header_bytes.max(8192))
            .keep_alive(true);
        let ctx = AcceptCtx {
            builder: Arc::new(builder),
            shared,
            shutdown: shutdown.clone(),
            server: server.clone(),
            limit: limit.clone(),
            https_port,
            per_client,
            place,
        };
        let mut accepts = Vec::new();
        // Per-listener stop switches, by bound address (plain listeners only).
        let mut stops: Vec<(SocketAddr, watch::Sender<bool>)> = Vec::new();
        let spawn_accept =
            |l: std::net::TcpListener,
             tls: Option<TlsAcceptor>,
             stops: &mut Vec<(SocketAddr, watch::Sender<bool>)>| {
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
                    Some(WorkerCmd::Adopt(c)) => {
                        if let Some(c) = (*c).map_stream(TcpStream::from_std) {
                            serve_new(c, &ctx);
                        }
                    }
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
        while limit.serving() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    // Dropping the runtime cancels whatever is left after shutdown_timeout.
    rt.shutdown_timeout(Duration::from_millis(100));
}

async fn accept_loop(
    listener: std::net::TcpListener,
    tls: Option<TlsAcceptor>,
    ctx: AcceptCtx,
    mut unlisten: watch::Receiver<bool>,
) {
    let mut shutdown = ctx.shutdown.clone();
    let limit = &ctx.limit;
    // The redirect to https is for the plain listeners only.
    let https_port = ctx.https_port.filter(|_| tls.is_none());
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot register a listener");
            return;
        }
    };
    loop {
        let (stream, client) = tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = stopped(&mut unlisten) => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tokio::time::sleep(limit.accept_failed(&e)).await;
                    continue;
                }
            },
        };
        let client_conn = match &ctx.per_client {
            Some(pc) => match pc.try_open(client.ip()) {
                Some(c) => Some(c),
                None => {
                    // Over max_connections_per_client: closed at once.
                    tracing::debug!(client = %client, "connection closed: server.max_connections_per_client reached");
                    drop(stream);
                    continue;
                }
            },
            None => None,
        };
        // At the limit this client waits for a slot and the loop accepts no
        // more: the others wait in the backlog (HAProxy's maxconn). A slot is
        // taken only with a client in hand, so no loop holds one idle while
        // the kernel queues clients on another worker's socket.
        let slot = tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = stopped(&mut unlisten) => return,
            slot = limit.acquire() => slot,
        };
        let conn = NewConn {
            stream,
            client,
            slot: slot.with_client(client_conn),
            at: Instant::now(),
            tls: tls.clone(),
            https_port,
        };
        if let Some(conn) = conn.place(&ctx.place) {
            serve_new(conn, &ctx);
        }
    }
}

/// Serves a connection on this worker, in its own task.
fn serve_new(conn: NewConn<TcpStream>, ctx: &AcceptCtx) {
    let NewConn {
        stream,
        client,
        slot,
        at,
        tls,
        https_port,
    } = conn;
    let server = &ctx.server;
    let _ = stream.set_nodelay(true);
    let (builder, shared, shutdown) = (
        ctx.builder.clone(),
        ctx.shared.clone(),
        ctx.shutdown.clone(),
    );
    let accepted = Accepted {
        slot,
        at,
        idle: server.idle_timeout,
        head: server.header_read_timeout,
    };
    let serving = ctx.limit.in_service();
    let handshake_timeout = server.header_read_timeout;
    let limits = Limits {
        max_head: server.max_header_bytes.max(8192),
        idle: server.idle_timeout,
        head: server.header_read_timeout,
    };
    let native = (tls.is_none() && server.http1_codec == Http1Codec::Native).then_some(limits);
    let down = Downstream {
        client,
        proto: if tls.is_none() { "http" } else { "https" },
        https_port,
    };
    let h2 = (server.http2_codec == Http2Codec::Native).then_some(limits);
    let cfg = ConnCfg { down, native, h2 };
    tokio::spawn(async move {
        // Counted until this task ends, even by a panic.
        let _serving = serving;
        match tls {
            None => serve_connection(stream, builder, shared, shutdown, accepted, cfg, false).await,
            Some(acceptor) => {
                match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => {
                        let h2 = s.get_ref().1.alpn_protocol() == Some(b"h2");
                        serve_connection(s, builder, shared, shutdown, accepted, cfg, h2).await
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(client = %client, error = %e, "TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(client = %client, "TLS handshake timed out"),
                }
            }
        }
    });
}

/// One accepted client connection: its slot under `max_connections` and its deadlines.
#[derive(Debug)]
struct Accepted {
    /// Held as long as the socket is open (moved into the stream, so an
    /// upgrade tunnel keeps it).
    slot: ConnSlot,
    at: Instant,
    /// `idle_timeout`: no request in progress for this long closes the connection.
    idle: Duration,
    /// `header_read_timeout`: a request head not complete this long after accept
    /// (the first one: a silent client too) or after its first byte closes the connection.
    head: Duration,
}

/// How a connection is served.
#[derive(Clone, Copy)]
struct ConnCfg {
    down: Downstream,
    /// The native HTTP/1 codec first (plain listeners with `server.http1_codec = "native"`).
    native: Option<Limits>,
    /// drover's HTTP/2 server (`server.http2_codec = "native"`): for
    /// prior-knowledge h2c found by the native HTTP/1 codec, and ALPN `h2`.
    h2: Option<Limits>,
}

/// One request of a connection (either codec): its id, the panic guard, routing.
fn dispatch(
    shared: &Shared,
    act: &Arc<ConnActivity>,
    down: Downstream,
    req: Request<ClientIn>,
) -> Isolated<impl std::future::Future<Output = Response<ProxyBody>> + Send + 'static> {
    act.begin();
    let request_id = request_id::choose(req.headers());
    let test = isolate::test_panic(req.headers());
    let info = RequestInfo {
        request_id: request_id.clone(),
        client: down.client,
        close: req.version() <= Version::HTTP_11,
        activity: Some(act.clone()),
        panic_on_poll: test == Some(TestPanic::Forward),
    };
    // A wrapper rather than an async block: no second slot for the
    // future (hyper copies the whole future once per request).
    let routed = isolate::guarded(|| {
        if test == Some(TestPanic::Route) {
            panic!("test panic ({}) while routing", isolate::TEST_PANIC_ENV);
        }
        prepare::handle(&shared.router.load(), req, down, request_id)
    });
    Isolated::new(routed, info)
}

async fn serve_connection<I>(
    stream: I,
    builder: Arc<auto::Builder<TokioExecutor>>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    accepted: Accepted,
    cfg: ConnCfg,
    alpn_h2: bool,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Accepted {
        slot,
        at,
        idle,
        head,
    } = accepted;
    let activity = Arc::new(ConnActivity::new(at));
    let stream = Watched::new(stream, ClientReads::new(activity.clone(), slot));
    let hy = HyperSide {
        builder,
        shared,
        shutdown,
        activity,
        down: cfg.down,
        idle,
        head,
    };
    if let (true, Some(h2)) = (alpn_h2, cfg.h2) {
        return serve_h2(stream, bytes::BytesMut::new(), h2, hy).await;
    }
    let Some(limits) = cfg.native else {
        return serve_hyper(stream, hy).await;
    };
    let ended = h1::conn::serve(
        stream,
        limits,
        hy.activity.clone(),
        hy.shutdown.clone(),
        |req| dispatch(&hy.shared, &hy.activity, hy.down, req),
    )
    .await;
    if let h1::conn::Ended::HandOff(stream) = ended {
        match cfg.h2 {
            Some(h2) if stream.is_h2_preface() => {
                let (read, io) = stream.into_parts();
                serve_h2(io, bytes::BytesMut::from(read), h2, hy).await;
            }
            _ => serve_hyper(stream, hy).await,
        }
    }
}

/// A connection on drover's HTTP/2 server; `read`: what was read of it already.
async fn serve_h2<I>(io: I, read: bytes::BytesMut, limits: Limits, hy: HyperSide)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    super::h2::serve(
        io,
        read,
        limits,
        hy.activity.clone(),
        hy.shutdown.clone(),
        |req| dispatch(&hy.shared, &hy.activity, hy.down, req),
    )
    .await;
}

/// What a connection on hyper's server needs.
struct HyperSide {
    builder: Arc<auto::Builder<TokioExecutor>>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    activity: Arc<ConnActivity>,
    down: Downstream,
    /// `idle_timeout`.
    idle: Duration,
    /// `header_read_timeout`.
    head: Duration,
}

/// A connection on hyper's server (HTTP/1 with upgrades, or HTTP/2).
async fn serve_hyper<I>(stream: I, side: HyperSide)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let HyperSide {
        builder,
        shared,
        mut shutdown,
        activity,
        down,
        idle,
        head,
    } = side;
    let client = down.client;
    let act = activity.clone();
    // Boxed: hyper moves a request's future several times (into its stream
    // wrapper, into a spawned task for each HTTP/2 stream), and the future is
    // ~4 KiB; one allocation costs less than those copies. (The native
    // HTTP/1.1 codec polls it in place, unboxed.)
    let svc = service_fn(move |req: Request<Incoming>| {
        Box::pin(dispatch(&shared, &act, down, req.map(ClientIn::Hyper)))
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let check = tokio::time::sleep(activity.next_check(idle, head));
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
            _ = check => {
                if activity.head_time_left(head) == Some(Duration::ZERO) {
                    // Silent or too slow: no request is in progress, nothing to finish.
                    tracing::debug!(client = %client, "no request head within header_read_timeout; closing");
                    return;
                }
                if !closing && activity.idle_for() >= idle {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Resolves once shutdown has been signalled (or the sender is gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
