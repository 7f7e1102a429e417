//! Every config default, written once.
//!
//! The section readers start from these values and overwrite what the file
//! sets; the built-in demo builds on them; `drover schema` shows them (its
//! defaults probe reads a config that sets nothing); and
//! `tests_defaults.rs` keeps the starter config's and README's stated
//! defaults equal to them. Units are in the field docs in `types.rs`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::types::{
    AdminConfig, AutoscaleConfig, Balance, Config, DockerAddress, HashKey, HealthConfig,
    HealthKind, Http1Codec, Http2Codec, InstancesConfig, LogConfig, OnShutdown, PassiveConfig,
    PoolConfig, ProtocolConfig, ProviderKind, ResolverConfig, ServerConfig, StatusRanges,
    DEFAULT_TUNNEL_IDLE_TIMEOUT,
};

/// Nothing but defaults: no routes, no pools, read from no file.
impl Default for Config {
    fn default() -> Config {
        Config {
            name: None,
            server: ServerConfig::default(),
            admin: AdminConfig::default(),
            log: LogConfig::default(),
            routes: Vec::new(),
            pools: BTreeMap::new(),
            resolver: ResolverConfig::default(),
            source: None,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 8080))],
            shutdown_timeout: Duration::from_secs(30),
            max_header_bytes: 65536,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 0,
            tunnel_idle_timeout: DEFAULT_TUNNEL_IDLE_TIMEOUT,
            body_read_timeout: Duration::from_secs(60),
            threads: 0,
            tls: None,
            https_redirect: false,
            max_connections_per_client: 0,
            http1_codec: Http1Codec::default(),
            http2_codec: Http2Codec::default(),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> AdminConfig {
        AdminConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 9090)),
            token: None,
            allowed_hosts: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 64,
        }
    }
}

/// A pool with no name and no members; every key at its default.
impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            name: String::new(),
            balance: Balance::RoundRobin,
            hash_key: HashKey::ClientIp,
            backends: Vec::new(),
            named_backends: Vec::new(),
            resolve_interval: PoolConfig::DEFAULT_RESOLVE_INTERVAL,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(60),
            retries: 2,
            max_connections_per_backend: 0,
            queue_timeout: Duration::from_secs(5),
            max_queue: 1024,
            upstream_idle_timeout: PoolConfig::DEFAULT_UPSTREAM_IDLE_TIMEOUT,
            http1_client: Http1Codec::default(),
            protocol: ProtocolConfig::default(),
            health: None,
            passive: None,
            instances: None,
            autoscale: None,
            tls: None,
            policy: Default::default(),
        }
    }
}

/// A TCP connect check (no `path`).
impl Default for HealthConfig {
    fn default() -> HealthConfig {
        HealthConfig {
            path: None,
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 3,
            expect_status: StatusRanges(vec![(200, 399)]),
            initial_healthy: false,
            headers: Vec::new(),
            kind: HealthKind::Tcp,
            service: String::new(),
        }
    }
}

impl Default for PassiveConfig {
    fn default() -> PassiveConfig {
        PassiveConfig {
            consecutive_failures: 5,
            eject_for: Duration::from_secs(30),
        }
    }
}

impl InstancesConfig {
    /// `provider` (a required key) with every other key at its default.
    pub fn with_provider(provider: ProviderKind) -> InstancesConfig {
        InstancesConfig {
            provider,
            count: 1,
            command: Vec::new(),
            image: None,
            container_port: None,
            args: Vec::new(),
            network: None,
            address: DockerAddress::Published,
            memory: None,
            cpus: None,
            pull: false,
            on_shutdown: OnShutdown::Stop,
            service: None,
            env: BTreeMap::new(),
            owner: None,
            name: None,
            port: None,
            withheld_env: Vec::new(),
            start_timeout: Duration::from_secs(30),
            drain_timeout: PoolConfig::DEFAULT_DRAIN_TIMEOUT,
            stop_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for AutoscaleConfig {
    fn default() -> AutoscaleConfig {
        AutoscaleConfig {
            min: 1,
            max: 10,
            interval: Duration::from_secs(5),
            target_inflight: None,
            target_rps: None,
            scale_up_cooldown: Duration::from_secs(10),
            scale_down_cooldown: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(300),
            hold_timeout: Duration::from_secs(30),
            rules: Vec::new(),
            warm: 0,
            warm_freeze: true,
            warm_at_zero: true,
            predictive: false,
            schedule: Vec::new(),
        }
    }
}
