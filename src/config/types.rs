//! Validated configuration: what the rest of drover consumes.
//!
//! Produced from the raw TOML by [`crate::config::load_str`] / [`crate::config::load_file`];
//! every value here has passed validation, and every default is filled in.

use super::policy_keys::LoadPolicy;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use super::route_types::*;
use super::spelled::spelled_enum;
use super::tls_client::UpstreamTls;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Top-level `name`: who owns the containers this drover starts (their
    /// `drover.managed` label) and which ones it adopts after a restart.
    /// Default `None` = a hash of the config file's path (`docker::containers::owner_id`).
    pub name: Option<String>,
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    /// First match wins; no match -> 404.
    pub routes: Vec<Route>,
    /// Pools by name (sorted by name).
    pub pools: BTreeMap<String, PoolConfig>,
    /// `[resolver]`: where DNS discovery asks.
    pub resolver: ResolverConfig,
    /// File this config was read from (`None` for the built-in demo or a string).
    pub source: Option<PathBuf>,
}

/// `[server]`
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Plain HTTP/1.1 + h2c listeners. Default `["127.0.0.1:8080"]`.
    pub listen: Vec<SocketAddr>,
    /// Graceful shutdown limit for in-flight requests. Default 30 s.
    pub shutdown_timeout: Duration,
    /// Larger request heads get 431. Default 65536 bytes (minimum 8192).
    pub max_header_bytes: usize,
    /// A client slower than this to send its request head is cut off. Default 10 s.
    pub header_read_timeout: Duration,
    /// Idle client keep-alive connections are closed after this. Default 60 s.
    pub idle_timeout: Duration,
    /// Client connections open at once (all listeners and workers together); beyond
    /// it drover stops accepting and new clients wait in the listen backlog.
    /// Default 0 = derived from the open-file limit: `(limit - reserve) / 2` with
    /// `reserve = max(limit / 10, min(128, limit / 2))` (`proxy::limits::default_max_connections`).
    pub max_connections: usize,
    /// An upgraded connection (WebSocket, ...) with no bytes either way for this
    /// long is closed. Default [`DEFAULT_TUNNEL_IDLE_TIMEOUT`] (1 h).
    pub tunnel_idle_timeout: Duration,
    /// Longest wait between two reads of a client's request body (nginx's
    /// `client_body_timeout`); a client that stalls longer gets 408 and the
    /// backend is not blamed. Default 60 s.
    pub body_read_timeout: Duration,
    /// Worker threads, each with its own runtime and `SO_REUSEPORT` listener.
    /// Default 0 = one per available core.
    pub threads: usize,
    /// Optional TLS listener.
    pub tls: Option<TlsConfig>,
    /// Answer every request on the plain listeners with a 308 to `https://`
    /// on the TLS listener's port (left out when it is 443). Needs `[server.tls]`.
    /// Read at start. Default `false`.
    pub https_redirect: bool,
    /// Connections one client IP may hold open at once; excess connections are
    /// closed as soon as they are accepted. Read at start. Default 0 = no limit.
    pub max_connections_per_client: usize,
    /// The HTTP/1 codec of the plain listeners and of requests without a
    /// body to plain HTTP/1.1 members: drover's own (`native`, which hands
    /// what it does not handle to hyper) or hyper's for all of them
    /// (`hyper`, the kill switch). TLS listeners and HTTP/2 always use
    /// hyper. The listener side is read at start, the upstream side at each
    /// load. Default `native` (31% fewer instructions and 0.06 allocations per
    /// proxied request instead of 8.7: bench/RESULTS.md).
    pub http1_codec: Http1Codec,
    /// The HTTP/2 server for client connections (prior-knowledge h2c on
    /// plain listeners, ALPN `h2` on TLS ones): drover's own (`native`,
    /// `proxy::h2`) or hyper's (`hyper`, the kill switch). Read at start.
    /// Default `native`.
    pub http2_codec: Http2Codec,
}

spelled_enum! {
    /// `server.http2_codec`. Default `native`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Http2Codec {
        /// drover's HTTP/2 server (`proxy::h2`).
        #[default]
        Native = "native",
        /// hyper's HTTP/2 server (the `h2` crate).
        Hyper = "hyper",
    }
}

spelled_enum! {
    /// `server.http1_codec`. Default `native`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Http1Codec {
        /// drover's codec (`proxy::h1`, `upstream::native`), with the hand-off to hyper.
        #[default]
        Native = "native",
        /// hyper's server and client for every connection.
        Hyper = "hyper",
    }
}

/// Default `server.tunnel_idle_timeout`: 1 h.
pub const DEFAULT_TUNNEL_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// `[admin]`
#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    /// Admin API, /metrics and the dashboard. Default `127.0.0.1:9090`.
    pub listen: SocketAddr,
    /// Bearer token; required when `listen` is not a loopback address.
    pub token: Option<String>,
    /// Host names (or IPs) accepted in `Host` besides `localhost`, loopback IPs
    /// and the address the connection came in on; `"*"` accepts any. Stored
    /// lower-case, IPv6 without brackets. Default empty.
    pub allowed_hosts: Vec<String>,
    /// A connection must send a complete request head within this time (also
    /// counted from the accept when nothing arrives). Default 10 s.
    pub header_read_timeout: Duration,
    /// An admin connection with no request in progress for this long is
    /// closed. Default 60 s. (On HTTP/1.1 the wait for the next request is
    /// also bounded by `header_read_timeout`, which hyper restarts after each
    /// answer: the smaller of the two applies.)
    pub idle_timeout: Duration,
    /// Open admin connections beyond which the listener stops accepting
    /// (read at start, like `listen`). Default 64.
    pub max_connections: usize,
}

/// `[resolver]`: the DNS resolver of DNS discovery (backends given by host
/// name, `provider = "dns"`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolverConfig {
    /// Name servers asked (UDP, then TCP for truncated answers), in order.
    /// Default empty = the system's (`/etc/resolv.conf`, and `/etc/hosts` first).
    pub nameservers: Vec<SocketAddr>,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogConfig {
    /// Where the access log goes. Default [`AccessTarget::Stdout`].
    pub access: AccessTarget,
    /// How each line is written. Default [`AccessFormat::Json`].
    pub access_format: AccessFormat,
}

/// `log.access`: `true`/`"stdout"`, `false`/`"off"`, or a file path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AccessTarget {
    Off,
    #[default]
    Stdout,
    /// Appended to; reopened on SIGUSR1 (after logrotate renamed it).
    File(PathBuf),
}

impl AccessTarget {
    /// Whether requests are logged at all.
    pub fn is_on(&self) -> bool {
        *self != AccessTarget::Off
    }

    /// The config spelling, as `drover schema` shows the default.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            AccessTarget::Off => serde_json::json!("off"),
            AccessTarget::Stdout => serde_json::json!("stdout"),
            AccessTarget::File(p) => serde_json::json!(p.display().to_string()),
        }
    }
}

spelled_enum! {
    /// `log.access_format`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum AccessFormat {
        /// One JSON object per line (with `--log-format pretty` on stdout: a compact text line).
        #[default]
        Json = "json",
        /// Apache/nginx "combined": `client - - [time] "request" status bytes "referer" "user-agent"`.
        Combined = "combined",
    }
}

/// `[[routes]]`
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub host: Option<HostMatch>,
    /// Must start with `/` when set.
    pub path_prefix: Option<String>,
    /// The pool requests go to; `None` only on a route with `rules.redirect`.
    pub pool: Option<String>,
    /// Remove `path_prefix` from the path sent upstream. Default `false`.
    pub strip_prefix: bool,
    /// Methods, headers, rate limit, header rules, redirect, rewrite, timeouts.
    pub rules: RouteRules,
}

impl Route {
    /// A route sending every request to `pool`, with nothing else set.
    pub fn to_pool(pool: &str) -> Route {
        Route {
            host: None,
            path_prefix: None,
            pool: Some(pool.to_string()),
            strip_prefix: false,
            rules: RouteRules::default(),
        }
    }

    /// Its label in metrics and the admin API: `name`, else its index in `[[routes]]`.
    pub fn label(&self, index: usize) -> String {
        self.rules.name.clone().unwrap_or_else(|| index.to_string())
    }
}

/// A route's `host`: exact (`api.example.com`) or wildcard (`*.example.com`).
/// Stored lower-case, without port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Exact(String),
    /// The suffix including the leading dot, e.g. `.example.com`.
    Wildcard(String),
}

spelled_enum! {
    /// `balance = ...`. Default `round_robin`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Balance {
        #[default]
        RoundRobin = "round_robin",
        WeightedRoundRobin = "weighted_round_robin",
        LeastConn = "least_conn",
        Random = "random",
        P2cEwma = "p2c_ewma",
        Hash = "hash",
    }
}

/// `hash_key = ...` for `balance = "hash"`. Default `ClientIp`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HashKey {
    #[default]
    ClientIp,
    /// `header:NAME` (name stored lower-case)
    Header(String),
    /// `cookie:NAME`
    Cookie(String),
    Path,
}

impl HashKey {
    /// The config spelling: `client_ip`, `header:NAME`, `cookie:NAME` or `path`.
    pub fn spelling(&self) -> String {
        match self {
            HashKey::ClientIp => "client_ip".to_string(),
            HashKey::Header(n) => format!("header:{n}"),
            HashKey::Cookie(n) => format!("cookie:{n}"),
            HashKey::Path => "path".to_string(),
        }
    }
}

/// One static member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    pub address: SocketAddr,
    /// Default 1; must be >= 1.
    pub weight: u32,
}

/// A backend given by host name (`"api.internal:8080"`): its addresses are
/// discovered by DNS and re-resolved every `resolve_interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedBackend {
    /// As written, lower-case, without a trailing dot.
    pub host: String,
    pub port: u16,
    /// Weight of every address the name answers. Default 1.
    pub weight: u32,
}

/// `[pools.NAME]`
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    pub name: String,
    pub balance: Balance,
    pub hash_key: HashKey,
    /// Backends given by address (an IP, or `localhost`).
    pub backends: Vec<BackendConfig>,
    /// Backends given by host name: discovered by DNS (see [`PoolConfig::dns_names`]).
    pub named_backends: Vec<NamedBackend>,
    /// How often DNS names are resolved again; sooner when the answer's TTL
    /// ends first (at most once per [`PoolConfig::MIN_RESOLVE_INTERVAL`]).
    /// Default [`PoolConfig::DEFAULT_RESOLVE_INTERVAL`] (30 s).
    pub resolve_interval: Duration,
    /// Default 2 s.
    pub connect_timeout: Duration,
    /// From the moment the request has been sent in full (its body too) until
    /// the response head arrives -> 504. Default 60 s.
    pub request_timeout: Duration,
    /// Other instances tried. Default 2.
    pub retries: u32,
    /// 0 = unlimited (default); otherwise excess requests queue.
    pub max_connections_per_backend: u32,
    /// How long a request may wait for a free member. Default 5 s.
    pub queue_timeout: Duration,
    /// Waiting requests beyond this get 503 at once. Default 1024.
    pub max_queue: usize,
    /// How long an idle keep-alive connection to a member is kept for reuse
    /// before drover closes it. Default [`PoolConfig::DEFAULT_UPSTREAM_IDLE_TIMEOUT`] (50 s).
    pub upstream_idle_timeout: Duration,
    /// `protocol`, `max_streams_per_connection`, `grpc_retry_methods`.
    pub protocol: ProtocolConfig,
    pub health: Option<HealthConfig>,
    pub passive: Option<PassiveConfig>,
    pub instances: Option<InstancesConfig>,
    pub autoscale: Option<AutoscaleConfig>,
    /// TLS to the members (`tls = true` or `https://` backends), loaded once
    /// per config: certificates read, rustls client config built, names
    /// parsed. Default `None` (plain).
    pub tls: Option<Arc<UpstreamTls>>,
    /// Slow start, bounded-load hashing and sticky sessions (all off by default).
    pub policy: LoadPolicy,
    /// The HTTP/1.1 client for plain members: `server.http1_codec`, copied
    /// here at load (not a pool key). With `native` (the default), requests
    /// without a body go over drover's own client (`upstream::native`).
    pub http1_client: Http1Codec,
}

impl PoolConfig {
    /// Default `upstream_idle_timeout`: 50 s, below the 60–75 s after which
    /// backends commonly close idle keep-alive connections themselves.
    pub const DEFAULT_UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(50);

    /// Default `instances.drain_timeout`, also how long a member of a pool
    /// without `[instances]` drains (admin removal, sticky sessions): 30 s.
    pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

    /// How long a draining member may take: `instances.drain_timeout`, else
    /// [`Self::DEFAULT_DRAIN_TIMEOUT`].
    pub fn drain_timeout(&self) -> Duration {
        self.instances
            .as_ref()
            .map_or(Self::DEFAULT_DRAIN_TIMEOUT, |i| i.drain_timeout)
    }

    /// Default `resolve_interval`: 30 s.
    pub const DEFAULT_RESOLVE_INTERVAL: Duration = Duration::from_secs(30);
    /// Shortest wait between two resolutions of a pool's names, whatever the
    /// TTL says (a TTL of 0 is common): 1 s.
    pub const MIN_RESOLVE_INTERVAL: Duration = Duration::from_secs(1);

    /// The host names DNS discovery resolves for this pool: the backends given
    /// by name, and `provider = "dns"`'s `name` and `port`.
    pub fn dns_names(&self) -> Vec<NamedBackend> {
        let mut names = self.named_backends.clone();
        if let Some(i) = &self.instances {
            if let (ProviderKind::Dns, Some(host), Some(port)) = (i.provider, &i.name, i.port) {
                names.push(NamedBackend {
                    host: host.clone(),
                    port,
                    weight: 1,
                });
            }
        }
        names
    }
}

/// `[pools.NAME.health]`
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// HTTP GET path; `None` = TCP connect check.
    pub path: Option<String>,
    /// Default 2 s.
    pub interval: Duration,
    /// Default 1 s.
    pub timeout: Duration,
    /// Consecutive passes to become healthy. Default 2.
    pub rise: u32,
    /// Consecutive failures to become unhealthy. Default 3.
    pub fall: u32,
    /// Default `200-399`.
    pub expect_status: StatusRanges,
    /// Default `false` (members start unhealthy until `rise` passes).
    pub initial_healthy: bool,
    /// Extra headers on the probe (names as written).
    pub headers: Vec<(String, String)>,
    /// `kind`: `http` with a `path`, `tcp` without (defaults); or `grpc`.
    pub kind: HealthKind,
    /// `service`: the service name a gRPC check asks about. Default `""` (the server as a whole).
    pub service: String,
}

/// Inclusive status ranges, e.g. `"200-299,304"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRanges(pub Vec<(u16, u16)>);

impl StatusRanges {
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

/// `[pools.NAME.passive]`
#[derive(Debug, Clone, PartialEq)]
pub struct PassiveConfig {
    /// Default 5.
    pub consecutive_failures: u32,
    /// Default 30 s (doubles on repeated ejection, capped).
    pub eject_for: Duration,
}

spelled_enum! {
    /// `provider = ...` (required).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ProviderKind {
        Process = "process",
        Docker = "docker",
        DockerLabels = "docker_labels",
        Swarm = "swarm",
        /// Members are the addresses a DNS name answers (A/AAAA), on `port`.
        Dns = "dns",
    }
}

impl ProviderKind {
    /// Whether drover only discovers this provider's members (it never starts
    /// or stops them): `docker_labels` and `dns`.
    pub fn discovers(self) -> bool {
        matches!(self, ProviderKind::DockerLabels | ProviderKind::Dns)
    }
}

spelled_enum! {
    /// `on_shutdown = ...`. Default `stop`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum OnShutdown {
        #[default]
        Stop = "stop",
        Leave = "leave",
    }
}

spelled_enum! {
    /// `address = ...` for docker. Default `published`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum DockerAddress {
        #[default]
        Published = "published",
        Container = "container",
    }
}

/// `[pools.NAME.instances]`
#[derive(Debug, Clone, PartialEq)]
pub struct InstancesConfig {
    pub provider: ProviderKind,
    /// Instances to keep running when there is no `[autoscale]`. Default 1.
    pub count: u32,
    /// process: argv with `{port}` placeholders; docker: command override.
    pub command: Vec<String>,
    pub image: Option<String>,
    pub container_port: Option<u16>,
    pub args: Vec<String>,
    pub network: Option<String>,
    pub address: DockerAddress,
    /// Bytes.
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    /// Default `false`.
    pub pull: bool,
    pub on_shutdown: OnShutdown,
    pub service: Option<String>,
    pub env: BTreeMap<String, String>,
    /// docker_labels: only containers that also carry the label `drover.owner=<owner>` join.
    /// Default none: every container on the engine labelled `drover.pool=<pool>` joins.
    pub owner: Option<String>,
    /// dns: the host name whose A/AAAA answer is the member set (lower-case,
    /// without a trailing dot).
    pub name: Option<String>,
    /// dns: the port dialled on every address `name` answers.
    pub port: Option<u16>,
    /// process: environment variables removed from what instances inherit. Not a key:
    /// the variables `admin.token` was read from (`"${NAME}"`), so no instance sees the token.
    pub withheld_env: Vec<String>,
    /// Default 30 s.
    pub start_timeout: Duration,
    /// Default 30 s.
    pub drain_timeout: Duration,
    /// Default 10 s.
    pub stop_timeout: Duration,
}

/// `[pools.NAME.autoscale]`
#[derive(Debug, Clone, PartialEq)]
pub struct AutoscaleConfig {
    /// Default 1.
    pub min: u32,
    /// Default 10.
    pub max: u32,
    /// Default 5 s.
    pub interval: Duration,
    pub target_inflight: Option<f64>,
    pub target_rps: Option<f64>,
    /// Default 10 s.
    pub scale_up_cooldown: Duration,
    /// Default 60 s.
    pub scale_down_cooldown: Duration,
    /// Default 5 m.
    pub idle_timeout: Duration,
    /// Default 30 s.
    pub hold_timeout: Duration,
    pub rules: Vec<ScaleRule>,
    /// Instances kept started, health-checked and out of rotation, taken
    /// first on a scale-up (see [`crate::instances::warm`]). Default 0.
    pub warm: u32,
    /// Freeze warm instances while they wait (process: SIGSTOP / SIGCONT;
    /// docker: pause / unpause). Default true.
    pub warm_freeze: bool,
    /// Keep the warm instances while the pool is at zero (so a request at
    /// zero is served by a warm one). Default true.
    pub warm_at_zero: bool,
    /// Scale ahead of a rising load on a forecast of the target metric
    /// (see [`crate::autoscale::forecast`]). Default false.
    pub predictive: bool,
    /// `[[schedule]]` windows that set `min` / `max`. Default none.
    pub schedule: Vec<ScheduleEntry>,
}

/// `[[pools.NAME.autoscale.schedule]]`: from each time `cron` fires until
/// the next `until` (local time in `tz`), the pool's bounds are `min` / `max`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleEntry {
    pub cron: super::schedule::CronSpec,
    /// The pool's `min` in the window; default the pool's own.
    pub min: Option<u32>,
    /// The pool's `max` in the window; default the pool's own.
    pub max: Option<u32>,
    /// Hour and minute the window closes, local time in `tz`.
    pub until: (u32, u32),
    /// Default UTC.
    pub tz: chrono_tz::Tz,
}

spelled_enum! {
    /// `metric = ...` (required).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Metric {
        InflightPerInstance = "inflight_per_instance",
        RpsPerInstance = "rps_per_instance",
        P95LatencyMs = "p95_latency_ms",
        ErrorRate = "error_rate",
        CpuPercent = "cpu_percent",
    }
}

/// What a rule does when its condition held for `for_`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScaleAction {
    Add(u32),
    Remove(u32),
    Factor(f64),
}

/// Condition side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Above(f64),
    Below(f64),
}

/// `[[pools.NAME.autoscale.rules]]`
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleRule {
    pub metric: Metric,
    pub threshold: Threshold,
    /// Default 0 s (the condition must hold this long).
    pub for_: Duration,
    pub action: ScaleAction,
}

/// `[server.tls]`: an optional TLS listener (rustls), ALPN h2 + http/1.1.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    pub listen: Vec<SocketAddr>,
    /// Several = SNI (the first is the default certificate).
    pub certs: Vec<CertPair>,
}

/// One certificate chain and its key (PEM files; relative paths are relative to the config file).
#[derive(Debug, Clone, PartialEq)]
pub struct CertPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

spelled_enum! {
    /// `protocol = ...`: how drover speaks to a pool's members.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Protocol {
        /// HTTP/1.1 with keep-alive (the default).
        #[default]
        Http1 = "http1",
        /// HTTP/2 over plain TCP with prior knowledge.
        H2c = "h2c",
        /// HTTP/2 always: over TLS negotiated by ALPN; on a plain connection, as `h2c`.
        H2 = "h2",
        /// Over TLS, whatever ALPN picks (h2 or http/1.1); on a plain connection, `http1`.
        Auto = "auto",
    }
}

impl Protocol {
    /// Whether every request goes over HTTP/2 (`h2c`; `h2` over TLS and on plain TCP).
    pub fn always_h2(&self) -> bool {
        matches!(self, Protocol::H2c | Protocol::H2)
    }

    /// Whether requests may go over HTTP/2 (`auto` does over TLS when ALPN picks it):
    /// the member's shared HTTP/2 connections are retired when it drains.
    pub fn may_use_h2(&self) -> bool {
        *self != Protocol::Http1
    }
}

/// A pool's upstream protocol keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolConfig {
    /// `protocol`. Default `http1`.
    pub kind: Protocol,
    /// `max_streams_per_connection`: requests in flight on one HTTP/2
    /// connection; a new connection to the member is opened when every one is
    /// full. Default [`ProtocolConfig::DEFAULT_MAX_STREAMS`] (100, the
    /// minimum RFC 9113 §6.5.2 recommends a server allow). Connections are
    /// per worker thread: a member gets at most ceil(n / this) connections
    /// from a worker with n of its requests in flight.
    pub max_streams_per_connection: u32,
    /// `grpc_retry_methods`: gRPC methods (`/pkg.Service/Method`) that are
    /// idempotent: a call answered `grpc-status` 14 UNAVAILABLE is retried on
    /// another member. Default none.
    pub grpc_retry_methods: Vec<String>,
}

impl ProtocolConfig {
    /// Default `max_streams_per_connection`: 100.
    pub const DEFAULT_MAX_STREAMS: u32 = 100;
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        ProtocolConfig {
            kind: Protocol::Http1,
            max_streams_per_connection: Self::DEFAULT_MAX_STREAMS,
            grpc_retry_methods: Vec::new(),
        }
    }
}

spelled_enum! {
    /// `health.kind = ...`
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum HealthKind {
        /// `GET path`, over the pool's protocol (the default with a `path`).
        #[default]
        Http = "http",
        /// A TCP connect (the default without a `path`).
        Tcp = "tcp",
        /// `grpc.health.v1.Health/Check` over HTTP/2; SERVING passes.
        Grpc = "grpc",
    }
}
