//! Validated configuration: what the rest of drover consumes.
//!
//! Produced from the raw TOML by [`crate::config::load_str`] / [`crate::config::load_file`];
//! every value here has passed validation, and every default is filled in.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    /// First match wins; no match -> 404.
    pub routes: Vec<Route>,
    /// Pools by name (sorted by name).
    pub pools: BTreeMap<String, PoolConfig>,
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

impl Default for AdminConfig {
    fn default() -> AdminConfig {
        AdminConfig {
            listen: SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 9090)),
            token: None,
            allowed_hosts: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 64,
        }
    }
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

/// `log.access_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessFormat {
    /// One JSON object per line (with `--log-format pretty` on stdout: a compact text line).
    #[default]
    Json,
    /// Apache/nginx "combined": `client - - [time] "request" status bytes "referer" "user-agent"`.
    Combined,
}

impl AccessFormat {
    /// The config spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccessFormat::Json => "json",
            AccessFormat::Combined => "combined",
        }
    }
}

/// `[[routes]]`
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub host: Option<HostMatch>,
    /// Must start with `/` when set.
    pub path_prefix: Option<String>,
    pub pool: String,
    /// Remove `path_prefix` from the path sent upstream. Default `false`.
    pub strip_prefix: bool,
}

/// A route's `host`: exact (`api.example.com`) or wildcard (`*.example.com`).
/// Stored lower-case, without port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Exact(String),
    /// The suffix including the leading dot, e.g. `.example.com`.
    Wildcard(String),
}

/// `balance = ...`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    #[default]
    RoundRobin,
    WeightedRoundRobin,
    LeastConn,
    Random,
    P2cEwma,
    Hash,
}

impl Balance {
    /// The config spelling (`round_robin`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            Balance::RoundRobin => "round_robin",
            Balance::WeightedRoundRobin => "weighted_round_robin",
            Balance::LeastConn => "least_conn",
            Balance::Random => "random",
            Balance::P2cEwma => "p2c_ewma",
            Balance::Hash => "hash",
        }
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

/// One static member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    pub address: SocketAddr,
    /// Default 1; must be >= 1.
    pub weight: u32,
}

/// `[pools.NAME]`
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    pub name: String,
    pub balance: Balance,
    pub hash_key: HashKey,
    pub backends: Vec<BackendConfig>,
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
    pub health: Option<HealthConfig>,
    pub passive: Option<PassiveConfig>,
    pub instances: Option<InstancesConfig>,
    pub autoscale: Option<AutoscaleConfig>,
}

impl PoolConfig {
    /// Default `upstream_idle_timeout`: 50 s, below the 60–75 s after which
    /// backends commonly close idle keep-alive connections themselves.
    pub const DEFAULT_UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(50);
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

/// `provider = ...`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Process,
    Docker,
    DockerLabels,
    Swarm,
}

/// `on_shutdown = ...`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnShutdown {
    #[default]
    Stop,
    Leave,
}

/// `address = ...` for docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DockerAddress {
    #[default]
    Published,
    Container,
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
}

/// `metric = ...`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    InflightPerInstance,
    RpsPerInstance,
    P95LatencyMs,
    ErrorRate,
    CpuPercent,
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
