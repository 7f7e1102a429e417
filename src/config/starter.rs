//! The starter file written by `drover init`, and the built-in demo configuration.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::types::{BackendConfig, Config, HealthConfig, HealthKind, PoolConfig, Route};

/// The commented starter config written by `drover init`.
pub const STARTER_CONFIG: &str = r#"# drover.toml - reverse proxy, load balancer, health checker and autoscaler.
#
# Check it with `drover check -c drover.toml`, run it with `drover run -c drover.toml`.
# Durations are strings like "250ms", "2s", "5m". Unknown keys are errors.
# "${NAME}" in any string is replaced by the environment variable NAME.
# Commented-out lines show the default value.

# name = "shop-prod"                   # owner of the containers drover starts (provider = "docker"):
                                       # a moved config with the same name adopts them. Default: a
                                       # hash of this file's path. Top-level keys come before any [table].

[server]
listen = ["127.0.0.1:8080"]            # one or more addresses, plain HTTP/1.1 and h2c
# shutdown_timeout = "30s"             # on SIGINT/SIGTERM: how long in-flight requests may finish
# max_header_bytes = 65536             # larger request heads get 431 (at least 8192)
# header_read_timeout = "10s"          # a client slower than this to send its request head is cut off
# idle_timeout = "60s"                 # idle keep-alive client connections are closed after this
# max_connections = 0                  # client connections at once; beyond it new ones wait in the
                                       # backlog. 0 = half the open-file limit left after a
                                       # reserve for the admin API and probes (256 -> 64)
# tunnel_idle_timeout = "1h"           # WebSocket/upgraded connections with no bytes either way are closed
# body_read_timeout = "60s"            # longest pause in a client's request body, else 408 (not the backend's fault)
# threads = 0                          # worker threads; 0 = one per core
# https_redirect = false               # true: plain listeners answer 308 to https:// on the TLS port
# max_connections_per_client = 0       # connections one client IP may hold open; excess ones are
                                       # closed at accept. 0 = no limit
# http1_codec = "native"               # HTTP/1 codec (plain listeners, bodiless requests upstream): "native", or "hyper"
                                       # (drover's own; hands what it does not handle to hyper)
# http2_codec = "native"               # HTTP/2 server for clients (h2c, TLS ALPN h2): "native", or "hyper"

# [server.tls]                         # optional TLS listener, ALPN h2 + http/1.1
# listen = ["0.0.0.0:8443"]
# certs = [{ cert = "site.pem", key = "site.key" }]   # paths relative to this file; several = SNI

[admin]
listen = "127.0.0.1:9090"              # JSON API, /metrics and the dashboard (open it in a browser)
# token = "${DROVER_ADMIN_TOKEN}"      # required when listen is not a loopback address;
                                       # then requests need "Authorization: Bearer TOKEN"
# allowed_hosts = []                  # Host names accepted besides localhost, loopback IPs and
                                       # the address dialled (DNS-rebinding guard); "*" = any
# header_read_timeout = "10s"          # a request head must arrive within this
# idle_timeout = "60s"                 # idle admin connections are closed after this
# max_connections = 64                 # admin connections open at once (read at start)

[log]
access = true                          # one line per request on stdout; false = none;
                                       # or a file: "/var/log/drover/access.log" (reopened on SIGUSR1)
# access_format = "json"               # or "combined" (Apache/nginx, for GoAccess and other analysers)

# DNS discovery's name servers (default: the system's, from /etc/resolv.conf and /etc/hosts).
# [resolver]
# nameservers = ["10.0.0.2", "127.0.0.1:5353"]   # IPs, port 53 unless given

# Routes: the first match wins; a request no route matches gets 404.
[[routes]]
# host = "api.example.com"             # exact, or "*.example.com"; default: any host
path_prefix = "/"                      # must start with "/"
pool = "app"
# strip_prefix = false                 # remove path_prefix from the path sent upstream
# name = "app"                         # label in metrics; default: the route's index
# methods = ["GET", "HEAD", "POST"]    # match only these methods; default any
# headers = { X-Env = "prod" }         # match only with these exact header values
# rewrite_prefix = "/"                 # replace path_prefix with this upstream (or strip_prefix)
# request_timeout = "60s"              # overrides the pool's for this route
# retries = 2                          # overrides the pool's for this route
# rate_limit = { requests = 100, per = "1s", burst = 50, key = "client_ip" }
                                       # beyond it 429 + Retry-After; key: client_ip | route | header:NAME
# request_headers = { set = { X-Client-IP = "${client_ip}" }, add = {}, remove = ["X-Debug"] }
# response_headers = { set = { X-Frame-Options = "DENY" }, remove = ["Server"] }
                                       # ${client_ip} ${request_id} ${host} are filled per request

# A redirect route answers itself and needs no pool:
# [[routes]]
# host = "old.example.com"
# redirect = { to = "https://www.example.com{uri}", status = 301 }   # {scheme} {host} {path} {query} {uri}

[pools.app]
balance = "round_robin"                # round_robin | weighted_round_robin | least_conn |
                                       # random | p2c_ewma | hash
# hash_key = "client_ip"               # for balance = "hash": client_ip | header:NAME | cookie:NAME | path
backends = ["127.0.0.1:8001", "127.0.0.1:8002"]   # or { address = "127.0.0.1:8003", weight = 3 }
                                       # a host name ("api.internal:8080") is discovered by DNS:
                                       # resolved again every resolve_interval = "30s" (or at its TTL)
# connect_timeout = "2s"
# request_timeout = "60s"              # from the request fully sent until the response head, else 504
# retries = 2                          # other instances tried when that is safe
# max_connections_per_backend = 0      # 0 = unlimited; otherwise excess requests queue
# queue_timeout = "5s"                 # how long a queued request may wait for a free backend
# max_queue = 1024                     # requests beyond this get 503 at once
# upstream_idle_timeout = "50s"        # idle keep-alive connections to backends are closed after this
# protocol = "http1"                   # http1 | h2c (HTTP/2 prior knowledge, e.g. gRPC) | h2 | auto
                                       # (h2: HTTP/2 over TLS by ALPN; auto: h2 or http/1.1 as ALPN picks);
                                       # HTTP/2 pools: max_streams_per_connection = 100 per connection
# grpc_retry_methods = []              # idempotent gRPC methods ("/pkg.Svc/Get"), retried on UNAVAILABLE
# tls = true                           # TLS to the backends (also: write them as "https://host:port")
# tls_server_name = "app.internal"     # name verified and sent as SNI; default the backend's host name
# ca_file = "backend-ca.pem"           # trust these (PEM) instead of the system roots
# client_cert = "drover.pem"           # mTLS: client certificate chain (PEM) ...
# client_key = "drover.key"            # ... and its key
# slow_start = "30s"                   # a backend that becomes healthy (new, scaled up, back from
                                       # ejection) ramps from 10% to its full weight over this; default off
# slow_start_aggression = 1.0          # ramp shape: 1 = linear, above 1 faster at first
# bounded_load = 1.25                  # balance = "hash" only: no backend above 1.25x its share of the
                                       # in-flight requests (+1); keys move to their next choice
# sticky = { cookie = "drover_sticky", ttl = "1h", secure = false, http_only = true, same_site = "Lax" }
                                       # session affinity by cookie; sticky = true for these defaults
                                       # (ttl default: a session cookie)

# Active health checks (without this section every backend counts as healthy).
# [pools.app.health]
# path = "/health"                     # HTTP GET; omit path for a TCP connect check
# interval = "2s"
# timeout = "1s"
# rise = 2                             # consecutive passes to become healthy
# fall = 3                             # consecutive failures to become unhealthy
# expect_status = "200-399"            # ranges and lists: "200-299,304"
# initial_state = "unhealthy"          # or "healthy"
# headers = { Host = "app.internal" }  # extra headers on the probe
# kind = "http"                        # http (with path) | tcp (without path) |
                                       # grpc (grpc.health.v1 Check; service = "NAME" to ask about one)

# Passive checks: take a backend out after failures seen in live traffic.
# [pools.app.passive]
# consecutive_failures = 5             # connect errors / 502 / 503 / 504 in a row
# eject_for = "30s"                    # doubles on repeated ejection

# Managed instances: drover starts and stops them (instead of, or besides, backends).
# [pools.app.instances]
# provider = "process"                 # process | docker | docker_labels | swarm | dns
# count = 1                            # instances to keep running without [autoscale]
# command = ["drover", "backend", "--listen", "127.0.0.1:{port}"]   # process: {port} = a free port; PORT is set too
# env = { APP_MODE = "demo" }
# image = "myapp:latest"               # docker: a local image
# container_port = 8080                # docker: published on 127.0.0.1
# service = "web"                      # swarm: an existing service whose replicas drover sets
#   dns: name = "api" with port = 8080: the members are the addresses the name answers
# start_timeout = "30s"                # must pass its health check within this, or it is replaced
# drain_timeout = "30s"                # on scale-down: wait this long for in-flight requests
# stop_timeout = "10s"                 # after draining: SIGTERM / docker stop, then kill
# on_shutdown = "stop"                 # or "leave" the instances running when drover exits

# Autoscaling (needs [pools.app.instances]).
# [pools.app.autoscale]
# min = 1                              # 0 allows scale to zero
# max = 10
# interval = "5s"                      # how often the rules are evaluated
# target_inflight = 20                 # desired = ceil(in-flight requests / target); or target_rps = 100
# scale_up_cooldown = "10s"
# scale_down_cooldown = "60s"
# idle_timeout = "5m"                  # with min = 0: stop the last instance after this long idle
# hold_timeout = "30s"                 # with min = 0: how long a request waits for a cold start
# warm = 1                             # extra instances started, checked, frozen, out of rotation (default 0)
# warm_freeze = true                   # SIGSTOP / docker pause while they wait (default true)
# warm_at_zero = true                  # keep them at zero instances (default true)
# predictive = true                    # scale up ahead on a forecast of the target (default false)

# Scheduled bounds: from each cron firing until `until` (local time in tz).
# [[pools.app.autoscale.schedule]]
# cron = "0 9 * * 1-5"
# until = "18:00"
# tz = "UTC"
# min = 3

# Explicit scaling rules, on top of target tracking.
# [[pools.app.autoscale.rules]]
# metric = "p95_latency_ms"            # inflight_per_instance | rps_per_instance | p95_latency_ms |
#                                      # error_rate | cpu_percent
# above = 250                          # or below = N
# for = "30s"                          # how long the condition must hold
# add = 1                              # or remove = 1, or factor = 2
"#;

/// The built-in demo: proxy on 127.0.0.1:8080, admin on 127.0.0.1:9090, one
/// catch-all route to pool `demo` (round robin over `backends`), health checks
/// `GET /health` every second (rise 1, fall 2, initially healthy), access log on.
pub fn demo_config(backends: &[SocketAddr]) -> Config {
    let pool = PoolConfig {
        name: "demo".to_string(),
        backends: backends
            .iter()
            .map(|&address| BackendConfig { address, weight: 1 })
            .collect(),
        health: Some(HealthConfig {
            path: Some("/health".to_string()),
            interval: Duration::from_secs(1),
            rise: 1,
            fall: 2,
            initial_healthy: true,
            kind: HealthKind::Http,
            ..HealthConfig::default()
        }),
        ..PoolConfig::default()
    };
    Config {
        routes: vec![Route::to_pool("demo")],
        pools: BTreeMap::from([("demo".to_string(), pool)]),
        ..Config::default()
    }
}

/// The built-in demo's config: a managed, autoscaled pool (1..5) of
/// `drover backend` processes started from `exe`, behind 127.0.0.1:8080.
pub const DEMO_TOML: &str = r#"
[server]
listen = ["127.0.0.1:8080"]

[admin]
listen = "127.0.0.1:9090"

[log]
access = false

[pools.demo]
balance = "least_conn"

[pools.demo.health]
path = "/health"
interval = "1s"
rise = 1
fall = 2

[pools.demo.instances]
provider = "process"
command = ["${DROVER_DEMO_EXE}", "backend", "--listen", "127.0.0.1:{port}", "--name", "demo-{port}"]
start_timeout = "10s"
drain_timeout = "10s"
stop_timeout = "5s"

[pools.demo.autoscale]
min = 1
max = 5
interval = "2s"
target_inflight = 5
scale_up_cooldown = "2s"
scale_down_cooldown = "10s"
"#;

/// [`DEMO_TOML`] with the backend command pointing at `exe`.
pub fn demo_autoscaled(exe: &std::path::Path) -> Config {
    let src = DEMO_TOML.replace(
        "${DROVER_DEMO_EXE}",
        &exe.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\""),
    );
    super::load_str(&src, None).expect("the built-in demo config is valid")
}
