//! `drover run`: starts the proxy workers and the admin API, handles signals
//! (SIGHUP reload, SIGTERM/SIGINT graceful shutdown) and reloads.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::signal::unix::{signal, SignalKind};

use crate::admin::scale::ScaleControl;
use crate::config::{
    self, Config, ConfigErrors, InstancesConfig, PoolConfig, ProviderKind, ResolverConfig,
};
use crate::discovery::{Discovery, Watchers};
use crate::instances::controller::Controllers;
use crate::instances::Provider;
use crate::proxy::router::Router;
use crate::proxy::server::{listen_error, Shared, Workers};

/// Where the config comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    /// The built-in demo: three in-process backends.
    Demo,
}

/// What `drover run` can fail with; maps to the exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Exit 2.
    #[error("{0}")]
    Config(ConfigErrors),
    /// Exit 1.
    #[error("{0:#}")]
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for RunError {
    fn from(e: anyhow::Error) -> Self {
        RunError::Runtime(e)
    }
}

/// Options of `drover run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub source: ConfigSource,
    /// Worker threads override (0 = config, then one per core).
    pub threads: usize,
    /// Reload when the config file changes (polled every second). Default off.
    pub watch: bool,
}

/// The running drover, shared by the admin API and the signal handlers.
pub struct App {
    pub shared: Arc<Shared>,
    config: ArcSwap<Config>,
    source: ConfigSource,
    ready: AtomicBool,
    /// Latched once every pool's first round of health checks was seen done.
    checked: AtomicBool,
    /// Per-pool health tasks, kept in step with the router's pools.
    health: crate::health::Supervisor,
    /// Discovery tasks (docker labels, DNS), kept in step with the router's pools.
    discovery: Watchers,
    /// Instance controllers of managed pools, kept in step with the router's pools.
    pub controllers: Arc<Controllers>,
    /// The proxy workers (taken at shutdown).
    workers: parking_lot::Mutex<Option<Workers>>,
    /// Where the admin listener is bound (it changes only at a restart).
    admin_addr: SocketAddr,
    /// Owner of the containers this drover starts: top-level `name`, else the
    /// config-path hash. Fixed at start (a changed `name` needs a restart).
    owner: String,
    /// The claim on `owner` (held while drover runs; pools with `provider = "docker"` only).
    _claim: Option<crate::docker::claim::Claim>,
}

impl App {
    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Who owns the containers this drover starts: the top-level `name`, else a
    /// hash of the config file's path (stable for a config file).
    pub fn owner(&self) -> String {
        self.owner.clone()
    }

    /// Whether drover is ready (`/readyz`): the proxy listeners are up, it is
    /// not shutting down, and every pool has had its first round of health
    /// checks. Once that round has been seen done, a reload that adds pools
    /// or members does not make drover unready again (their requests wait
    /// for their own first checks instead).
    pub fn is_ready(&self) -> bool {
        if !self.ready.load(Ordering::Relaxed) {
            return false;
        }
        if self.checked.load(Ordering::Relaxed) {
            return true;
        }
        let router = self.shared.router.load();
        let done = router.pools.values().all(|p| !p.first_checks_pending());
        if done {
            self.checked.store(true, Ordering::Relaxed);
        }
        done
    }

    /// Re-reads the config file; an invalid one changes nothing. systemd hears
    /// `RELOADING=1` before and `READY=1` after, whatever the outcome.
    pub fn reload(&self) -> Result<(), ConfigErrors> {
        crate::notify::reloading();
        let result = self.reload_file();
        crate::notify::ready();
        result
    }

    fn reload_file(&self) -> Result<(), ConfigErrors> {
        let ConfigSource::File(path) = &self.source else {
            tracing::info!(
                "reload requested, but the built-in demo has no config file; nothing to do"
            );
            return Ok(());
        };
        let new = match config::load_file(path) {
            Ok(c) => c,
            Err(e) => {
                for err in &e.errors {
                    tracing::error!(key = %err.key, line = ?err.line, column = ?err.column, "reload refused: {}", err.message);
                }
                return Err(e);
            }
        };
        if let Err(message) =
            crate::admin::guard::reload_keeps_token(self.admin_addr, new.admin.token.as_deref())
        {
            let e = ConfigErrors {
                file: path.display().to_string(),
                errors: vec![crate::config::ConfigError {
                    key: "admin.token".to_string(),
                    line: None,
                    column: None,
                    message,
                }],
            };
            tracing::error!("reload refused: {e}");
            return Err(e);
        }
        crate::config::log_warnings(&new);
        let old = self.config();
        if new.server.listen != old.server.listen {
            let rebound = self
                .workers
                .lock()
                .as_ref()
                .map(|w| w.rebind(&new.server.listen));
            match rebound {
                Some(Ok(added)) => {
                    for addr in added {
                        tracing::info!(addr = %addr, "proxy listening");
                    }
                }
                Some(Err(e)) => {
                    let e = ConfigErrors {
                        file: path.display().to_string(),
                        errors: vec![crate::config::ConfigError {
                            key: "server.listen".to_string(),
                            line: None,
                            column: None,
                            message: format!("{e:#}; the running config stays"),
                        }],
                    };
                    tracing::error!("reload refused: {e}");
                    return Err(e);
                }
                None => {}
            }
        }
        if new.name != old.name {
            tracing::warn!(
                old_name = ?old.name,
                new_name = ?new.name,
                owner = %self.owner,
                "a changed top-level `name` takes effect only after a restart (managed containers keep their owner until then)"
            );
        }
        if new.admin.listen != old.admin.listen
            || new.admin.max_connections != old.admin.max_connections
            || new.server.tls != old.server.tls
        {
            tracing::warn!(
                old_admin = %old.admin.listen,
                new_admin = %new.admin.listen,
                "admin.listen / admin.max_connections / server.tls changes take effect only after a restart; everything else is applied now"
            );
        }
        let router = Arc::new(Router::build(&new, Some(&self.shared.router.load())));
        self.shared.router.store(router.clone());
        self.health.sync(&router.pools);
        self.discovery.sync(&router.pools, &new.resolver);
        self.controllers.sync(&router, &self.owner());
        if let Err(e) = crate::access_log::configure(&new.log) {
            tracing::error!("reload: {e}; the access log stays as it was");
        }
        self.config.store(Arc::new(new));
        tracing::info!(file = %path.display(), "config reloaded");
        crate::events::record(
            "",
            crate::events::EventKind::Reload,
            None,
            format!("config reloaded from {}", path.display()),
        );
        Ok(())
    }
}

/// The admin API's view of the running drover.
impl crate::admin::Drover for App {
    fn config(&self) -> Arc<Config> {
        App::config(self)
    }

    fn shared(&self) -> &Shared {
        &self.shared
    }

    fn is_ready(&self) -> bool {
        App::is_ready(self)
    }

    fn reload(&self) -> Result<(), ConfigErrors> {
        App::reload(self)
    }

    /// The instance controllers: `PUT .../scale` answers 503 for a pool none manages.
    fn scale_control(&self) -> Option<Arc<dyn ScaleControl>> {
        Some(self.controllers.clone())
    }
}

/// The owner label value: the top-level `name`, else the config-path hash.
fn owner_of(cfg: &Config, source: &ConfigSource) -> String {
    if let Some(name) = &cfg.name {
        return name.clone();
    }
    match source {
        ConfigSource::File(p) => crate::docker::containers::owner_id(Some(p)),
        ConfigSource::Demo => crate::docker::containers::owner_id(None),
    }
}

/// Claims `owner` (see `docker::claim`) when a pool runs containers; a drover of the
/// same name already running is a start error.
fn claim_if_needed(
    cfg: &Config,
    owner: &str,
) -> Result<Option<crate::docker::claim::Claim>, RunError> {
    let runs_containers = cfg.pools.values().any(|p| {
        p.instances
            .as_ref()
            .is_some_and(|i| i.provider == crate::config::ProviderKind::Docker)
    });
    if !runs_containers {
        return Ok(None);
    }
    let dir = crate::docker::claim::claims_dir();
    crate::docker::claim::take(&dir, owner)
        .map(Some)
        .map_err(|e| RunError::Runtime(anyhow::anyhow!(e)))
}

/// Longest wait at start for the discovered pools' first member sets: 5 s.
const FIRST_DISCOVERY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A pool's discovery: `provider = "docker_labels"`, or DNS for backends given
/// by host name and `provider = "dns"`.
fn discovery_for(pool: &PoolConfig, resolver: &ResolverConfig) -> Option<Arc<dyn Discovery>> {
    match pool.instances.as_ref().map(|i| i.provider) {
        Some(ProviderKind::DockerLabels) => Some(Arc::new(crate::docker::labels::Labels)),
        _ if !pool.dns_names().is_empty() => {
            Some(Arc::new(crate::discovery::dns::Dns::new(resolver.clone())))
        }
        _ => None,
    }
}

/// The provider of a pool's `[instances]`; `None` for members drover does not
/// run (`docker_labels`, `dns`: discovery watches them).
fn provider_for(name: &str, inst: InstancesConfig, owner: &str) -> Option<Arc<dyn Provider>> {
    Some(match inst.provider {
        ProviderKind::Process => {
            Arc::new(crate::instances::process::ProcessProvider::new(name, inst))
        }
        ProviderKind::Docker => Arc::new(crate::docker::provider::DockerProvider::new(
            name, inst, owner,
        )),
        ProviderKind::Swarm => Arc::new(crate::docker::swarm::SwarmProvider::new(
            name,
            inst.service.as_deref().unwrap_or_default(),
        )),
        ProviderKind::DockerLabels | ProviderKind::Dns => return None,
    })
}

fn worker_count(cfg: &Config, opt: usize) -> usize {
    if opt > 0 {
        return opt;
    }
    if cfg.server.threads > 0 {
        return cfg.server.threads;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs drover until SIGTERM/SIGINT. Must be called inside a tokio runtime
/// (admin API, signals and background tasks run there; proxy workers on their own threads).
pub async fn run(opts: RunOptions) -> Result<(), RunError> {
    let cfg = match &opts.source {
        ConfigSource::File(path) => config::load_file(path).map_err(RunError::Config)?,
        ConfigSource::Demo => config::demo_autoscaled(
            &std::env::current_exe()
                .map_err(|e| anyhow::anyhow!("cannot find the drover executable: {e}"))?,
        ),
    };
    crate::access_log::configure(&cfg.log).map_err(|e| anyhow::anyhow!(e))?;
    config::log_warnings(&cfg);
    let owner = owner_of(&cfg, &opts.source);
    let claim = claim_if_needed(&cfg, &owner)?;
    // Before anything opens sockets (health probes start before the proxy binds).
    crate::proxy::limits::raise_nofile_limit();

    // Admin first: a port conflict there should stop us before the proxy binds.
    let admin_listener = tokio::net::TcpListener::bind(cfg.admin.listen)
        .await
        .map_err(|e| listen_error(cfg.admin.listen, e))?;
    let admin_addr = admin_listener.local_addr().map_err(anyhow::Error::from)?;

    let shared = Arc::new(Shared {
        router: ArcSwap::from_pointee(Router::build(&cfg, None)),
    });
    // Health checks first: the first round runs at once, while the listeners
    // bind; requests that find no healthy member wait for it (bounded by the
    // check timeout) rather than get 503, and /readyz is 503 until it is done.
    // Binding at once (instead of after the round) shows port errors at once.
    let health = crate::health::Supervisor::new(tokio::runtime::Handle::current());
    health.sync(&shared.router.load().pools);
    // Discovered pools get their first member set before the proxy opens.
    let discovery = Watchers::new(discovery_for);
    discovery.sync(&shared.router.load().pools, &cfg.resolver);
    discovery.first_round(FIRST_DISCOVERY_WAIT).await;
    let workers = worker_count(&cfg, opts.threads);
    let proxy = Workers::start(shared.clone(), &cfg.server, workers)?;
    let (proxy_addrs, tls_addrs) = (proxy.addrs.clone(), proxy.tls_addrs.clone());
    let app = Arc::new(App {
        shared,
        config: ArcSwap::from_pointee(cfg.clone()),
        source: opts.source.clone(),
        ready: AtomicBool::new(true),
        checked: AtomicBool::new(false),
        health,
        discovery,
        controllers: Arc::new(Controllers::new(provider_for)),
        workers: parking_lot::Mutex::new(Some(proxy)),
        admin_addr,
        owner,
        _claim: claim,
    });
    app.controllers
        .sync(&app.shared.router.load(), &app.owner());
    if let (true, ConfigSource::File(path)) = (opts.watch, &opts.source) {
        let watched = app.clone();
        tokio::spawn(crate::watch::run(path.clone(), move || {
            let _ = watched.reload();
        }));
    }
    let admin = tokio::spawn(crate::admin::serve(admin_listener, app.clone()));

    for addr in &proxy_addrs {
        tracing::info!(addr = %addr, workers, "proxy listening");
    }
    for addr in &tls_addrs {
        tracing::info!(addr = %addr, workers, "tls listening");
    }
    tracing::info!(addr = %admin_addr, "admin listening");
    let ready_app = app.clone();
    let notify_ready = tokio::spawn(crate::notify::ready_when(Arc::new(move || {
        ready_app.is_ready()
    })));
    let watchdog =
        crate::notify::watchdog_period().map(|p| tokio::spawn(crate::notify::watchdog(p)));
    if matches!(opts.source, ConfigSource::Demo) {
        print_demo_banner(&proxy_addrs, admin_addr, &cfg);
    }

    wait_for_shutdown(&app).await.map_err(anyhow::Error::from)?;
    notify_ready.abort();
    crate::notify::stopping();
    app.ready.store(false, Ordering::Relaxed);
    // From here on no instance is started or replaced.
    app.controllers.close_all();
    tracing::info!(timeout = ?app.config().server.shutdown_timeout, "shutting down: finishing in-flight requests");
    // Workers join their threads; do it off the runtime.
    let second = tokio::spawn(async {
        let mut term = signal(SignalKind::terminate()).ok()?;
        let mut int = signal(SignalKind::interrupt()).ok()?;
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        Some(())
    });
    let proxy = app.workers.lock().take();
    let joined = tokio::task::spawn_blocking(move || {
        if let Some(p) = proxy {
            p.shutdown()
        }
    });
    let app2 = app.clone();
    let drained = async move {
        let _ = joined.await;
        // In-flight requests are done: now stop the instances drover started.
        app2.controllers.shutdown().await;
    };
    tokio::select! {
        _ = drained => {}
        Some(Some(())) = async { second.await.ok() } => {
            tracing::warn!("second signal: exiting at once");
            admin.abort();
            return Err(RunError::Runtime(anyhow::anyhow!(
                "second signal: exited without waiting for in-flight requests"
            )));
        }
    }
    admin.abort();
    if let Some(w) = watchdog {
        w.abort();
    }
    crate::access_log::flush();
    tracing::info!("stopped");
    Ok(())
}

fn print_demo_banner(proxy: &[SocketAddr], admin: SocketAddr, _cfg: &Config) {
    let p = proxy[0];
    eprintln!(
        "\n  drover is running its built-in demo (no drover.toml here; `drover init` writes one).\n\n  \
         proxy   http://{p}/  -> pool \"demo\": `drover backend` processes drover starts itself,\n          \
         autoscaled 1..5 on in-flight requests (target 5 per instance, evaluated every 2 s)\n  \
         admin   http://{admin}/api/v1/pools   events http://{admin}/api/v1/events   metrics http://{admin}/metrics\n\n  \
         try:    curl http://{p}/anything\n          \
         wrk -c 40 -d 20s http://{p}/delay/200     (then watch the pool grow and shrink in /api/v1/pools)\n\n  \
         Ctrl-C stops it (and the instances it started).\n"
    );
}

async fn wait_for_shutdown(app: &Arc<App>) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading config");
                let _ = app.reload();
            }
            _ = usr1.recv() => {
                tracing::info!("SIGUSR1: reopening the access log");
                tokio::task::spawn_blocking(crate::access_log::reopen);
            }
        }
    }
}
