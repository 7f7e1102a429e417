//! The key table of every config section: name, type, description and where
//! its default comes from.
//!
//! One source for two readers: the section readers' unknown-key check
//! ([`Tbl::check_section`](super::reader::Tbl::check_section)) accepts exactly
//! these names, and `drover schema` ([`super::schema`]) turns them into a JSON
//! Schema for editors. A key the reader reads must be listed here (else it is
//! rejected as unknown); `tests/editor_support.rs` also compares what the
//! reader accepts with the schema, section by section.
//!
//! Defaults are not written here: each `default` reads the value the reader
//! filled in for a config that leaves the key out (see `schema::defaults_probe`).

use serde_json::{json, Value};

use super::policy_keys::{SameSite, SlowStart, StickyConfig};
use super::pool::INITIAL_STATES;
use super::types::{
    AccessFormat, Balance, Config, DockerAddress, HealthKind, Metric, OnShutdown, PoolConfig,
    Protocol, ProviderKind,
};

pub(crate) use super::keys_route::{HEADER_RULES, RATE_LIMIT, REDIRECT, ROUTE};
pub(crate) use super::keys_server::{CERT, SERVER, SERVER_TLS};

/// The type of a key's value, as the reader converts it.
pub(crate) enum Ty {
    Bool,
    /// Any string.
    Str,
    /// A string that must not be empty.
    NonEmpty,
    /// A string starting with `/`.
    AbsPath,
    /// A whole number >= the minimum.
    Uint(u64),
    /// A number (integer or float) > 0.
    Positive,
    /// Any number.
    Number,
    /// `"250ms"`, `"2s"`, `"1m30s"`.
    Duration,
    /// `"256m"` or a number of bytes.
    Size,
    /// `"host:port"`.
    Addr,
    /// `"host:port"` or a list of them.
    AddrList,
    StrList,
    /// `{ NAME = "value" }`.
    StrMap,
    /// One of the spellings the function lists (taken from the reader's table).
    Choice(fn() -> Vec<&'static str>),
    /// `"200-299,304"` or one status.
    StatusRanges,
    /// A sub-table.
    Table(&'static Section),
    /// An array of tables (`[[key]]`).
    Tables(&'static Section),
    /// A table of named sub-tables (`[pools.NAME]`).
    Named(&'static Section),
    /// Any of these.
    AnyOf(&'static [Ty]),
    /// An array whose items are any of these.
    ListOf(&'static [Ty]),
}

/// One accepted key.
pub(crate) struct Key {
    pub name: &'static str,
    pub ty: Ty,
    /// Shown by editors; says units and what the default means.
    pub doc: &'static str,
    /// The reader's default, read from a config that omits the key.
    pub default: Option<fn(&Config) -> Value>,
}

/// One table of the config.
pub(crate) struct Section {
    /// How the section is written, e.g. `[pools.NAME.health]`.
    pub title: &'static str,
    pub doc: &'static str,
    pub keys: &'static [Key],
    /// Keys that must be present.
    pub required: &'static [&'static str],
    /// At least one of these keys must be present (none: no such rule).
    pub required_any: &'static [&'static str],
}

impl Section {
    /// The accepted key names, in table order.
    pub fn names(&self) -> Vec<&'static str> {
        self.keys.iter().map(|k| k.name).collect()
    }
}

pub(super) const fn key(name: &'static str, ty: Ty, doc: &'static str) -> Key {
    Key {
        name,
        ty,
        doc,
        default: None,
    }
}

pub(super) const fn keyd(
    name: &'static str,
    ty: Ty,
    doc: &'static str,
    default: fn(&Config) -> Value,
) -> Key {
    Key {
        name,
        ty,
        doc,
        default: Some(default),
    }
}

/// A duration as the config writes it: `"250ms"`, `"30s"`, `"5m"`, `"1h"`.
pub(crate) fn dur(d: std::time::Duration) -> Value {
    let ms = d.as_millis();
    let secs = ms / 1000;
    let s = if ms == 0 {
        "0s".to_string()
    } else if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    };
    Value::String(s)
}

fn pool(c: &Config) -> &PoolConfig {
    c.pools
        .values()
        .next()
        .expect("the defaults probe has a pool")
}

fn scale(c: &Config) -> &super::types::AutoscaleConfig {
    pool(c)
        .autoscale
        .as_ref()
        .expect("the defaults probe has [autoscale]")
}

fn names<T>(table: &[(&'static str, T)]) -> Vec<&'static str> {
    table.iter().map(|(n, _)| *n).collect()
}

pub(crate) static ROOT: Section = Section {
    title: "drover.toml",
    doc: "drover configuration: reverse proxy, load balancer, health checker and autoscaler.",
    keys: &[
        key(
            "name",
            Ty::NonEmpty,
            "This deployment's name: the owner label of its managed containers (default: a hash of the config file's path). 1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit.",
        ),
        key(
            "resolver",
            Ty::Table(&RESOLVER),
            "DNS servers for DNS discovery; default the system resolver.",
        ),
        key(
            "server",
            Ty::Table(&SERVER),
            "Client-facing listeners and limits.",
        ),
        key(
            "admin",
            Ty::Table(&ADMIN),
            "The admin API, /metrics and the dashboard.",
        ),
        key("log", Ty::Table(&LOG), "The access log."),
        key(
            "routes",
            Ty::Tables(&ROUTE),
            "Routes, first match wins; a request no route matches gets 404.",
        ),
        key("pools", Ty::Named(&POOL), "Pools of backends, by name."),
    ],
    required: &[],
    required_any: &[],
};

pub(crate) static ADMIN: Section = Section {
    title: "[admin]",
    doc: "The admin API, /metrics and the dashboard.",
    keys: &[
        keyd("listen", Ty::Addr, "Admin API, /metrics and the dashboard.", |c| json!(c.admin.listen.to_string())),
        key("token", Ty::NonEmpty, "Bearer token; required when listen is not a loopback address, e.g. \"${DROVER_ADMIN_TOKEN}\"."),
        keyd("allowed_hosts", Ty::StrList, "Host names accepted besides localhost, loopback IPs and the address dialled; \"*\" = any.", |c| json!(c.admin.allowed_hosts)),
        keyd("header_read_timeout", Ty::Duration, "A request head must arrive within this.", |c| dur(c.admin.header_read_timeout)),
        keyd("idle_timeout", Ty::Duration, "Idle admin connections are closed after this.", |c| dur(c.admin.idle_timeout)),
        keyd("max_connections", Ty::Uint(1), "Admin connections open at once (read at start).", |c| json!(c.admin.max_connections)),
    ],
    required: &[],
    required_any: &[],
};

pub(crate) static LOG: Section = Section {
    title: "[log]",
    doc: "The access log: one line per request.",
    keys: &[
        keyd(
            "access",
            Ty::AnyOf(&[Ty::Bool, Ty::NonEmpty]),
            "Where the access log goes: true or \"stdout\" (standard output), false or \"off\", or a file path (appended to; reopened on SIGUSR1 for logrotate).",
            |c| c.log.access.to_json(),
        ),
        keyd(
            "access_format",
            Ty::Choice(AccessFormat::names),
            "\"json\" (one JSON object per line) or \"combined\" (Apache/nginx combined, read by GoAccess and most analysers).",
            |c| json!(c.log.access_format.as_str()),
        ),
    ],
    required: &[],
    required_any: &[],
};

pub(crate) static RESOLVER: Section = Section {
    title: "[resolver]",
    doc: "DNS servers used by DNS discovery.",
    keys: &[key(
        "nameservers",
        Ty::StrList,
        "Name servers, \"IP\" or \"IP:port\"; default: the system's (/etc/resolv.conf).",
    )],
    required: &[],
    required_any: &[],
};

pub(crate) static STICKY: Section = Section {
    title: "sticky = { ... }",
    doc: "Sticky sessions by cookie.",
    keys: &[
        keyd("cookie", Ty::NonEmpty, "Cookie name.", |_| {
            json!(StickyConfig::default().cookie)
        }),
        key(
            "ttl",
            Ty::Duration,
            "Max-Age; default none (a session cookie).",
        ),
        keyd("secure", Ty::Bool, "Secure attribute.", |_| {
            json!(StickyConfig::default().secure)
        }),
        keyd("http_only", Ty::Bool, "HttpOnly attribute.", |_| {
            json!(StickyConfig::default().http_only)
        }),
        keyd(
            "same_site",
            Ty::Choice(SameSite::names),
            "SameSite attribute (\"None\" needs secure = true).",
            |_| json!(StickyConfig::default().same_site.as_str()),
        ),
    ],
    required: &[],
    required_any: &[],
};

pub(crate) static SCHEDULE: Section = Section {
    title: "[[pools.NAME.autoscale.schedule]]",
    doc: "A scheduled window that raises or lowers min/max.",
    keys: &[
        key(
            "cron",
            Ty::NonEmpty,
            "When the window opens, like \"0 9 * * 1-5\".",
        ),
        key("min", Ty::Uint(0), "Fewest instances while open."),
        key("max", Ty::Uint(1), "Most instances while open."),
        key("until", Ty::NonEmpty, "When it closes, \"HH:MM\" in tz."),
        key(
            "tz",
            Ty::NonEmpty,
            "Time zone, like \"Europe/Berlin\"; default UTC.",
        ),
    ],
    required: &["cron"],
    required_any: &[],
};

pub(crate) static POOL: Section = Section {
    title: "[pools.NAME]",
    doc: "A pool of backends.",
    keys: &[
        keyd(
            "balance",
            Ty::Choice(Balance::names),
            "Load-balancing algorithm.",
            |c| json!(pool(c).balance.as_str()),
        ),
        keyd(
            "hash_key",
            Ty::Str,
            "For balance = \"hash\": client_ip | header:NAME | cookie:NAME | path.",
            |c| json!(pool(c).hash_key.spelling()),
        ),
        key(
            "backends",
            Ty::ListOf(&[Ty::Addr, Ty::Table(&BACKEND)]),
            "Static members: \"host:port\" or { address = \"host:port\", weight = 3 }.",
        ),
        keyd(
            "connect_timeout",
            Ty::Duration,
            "Connecting to a backend.",
            |c| dur(pool(c).connect_timeout),
        ),
        keyd(
            "request_timeout",
            Ty::Duration,
            "From the request fully sent until the response head, else 504.",
            |c| dur(pool(c).request_timeout),
        ),
        keyd(
            "retries",
            Ty::Uint(0),
            "Other instances tried when that is safe.",
            |c| json!(pool(c).retries),
        ),
        keyd(
            "max_connections_per_backend",
            Ty::Uint(0),
            "0 = unlimited; otherwise excess requests queue.",
            |c| json!(pool(c).max_connections_per_backend),
        ),
        keyd(
            "queue_timeout",
            Ty::Duration,
            "How long a queued request may wait for a free backend.",
            |c| dur(pool(c).queue_timeout),
        ),
        keyd(
            "max_queue",
            Ty::Uint(0),
            "Waiting requests beyond this get 503 at once.",
            |c| json!(pool(c).max_queue),
        ),
        keyd(
            "upstream_idle_timeout",
            Ty::Duration,
            "Idle keep-alive connections to backends are closed after this.",
            |c| dur(pool(c).upstream_idle_timeout),
        ),
        keyd(
            "protocol",
            Ty::Choice(Protocol::names),
            "How drover speaks to the members: http1, h2c (HTTP/2 prior knowledge), h2 (HTTP/2, ALPN over TLS), auto (ALPN over TLS, else http1).",
            |c| json!(pool(c).protocol.kind.as_str()),
        ),
        keyd(
            "max_streams_per_connection",
            Ty::Uint(1),
            "HTTP/2 pools: requests in flight on one connection; each worker thread keeps its own connections.",
            |c| json!(pool(c).protocol.max_streams_per_connection),
        ),
        keyd(
            "grpc_retry_methods",
            Ty::StrList,
            "Idempotent gRPC methods (\"/pkg.Service/Method\") retried after UNAVAILABLE.",
            |c| json!(pool(c).protocol.grpc_retry_methods),
        ),
        key("tls", Ty::Bool, "TLS to the members (also: backends written \"https://host:port\")."),
        key("tls_server_name", Ty::NonEmpty, "Name verified and sent as SNI; default the backend's host name."),
        key("ca_file", Ty::NonEmpty, "PEM CA certificates trusted instead of the system roots."),
        key("client_cert", Ty::NonEmpty, "mTLS: PEM certificate chain presented to backends (with client_key)."),
        key("client_key", Ty::NonEmpty, "mTLS: the PEM key of client_cert."),
        key("tls_insecure_skip_verify", Ty::Bool, "Accept any certificate (a warning at start and in check); default false."),
        key("slow_start", Ty::Duration, "Members that become healthy ramp from 10% to their weight over this; default off."),
        keyd("slow_start_aggression", Ty::Positive, "Ramp shape: 1 = linear, above 1 faster at first.", |_| json!(SlowStart::DEFAULT_AGGRESSION)),
        key("bounded_load", Ty::Positive, "balance = \"hash\": no member above this factor (> 1.0) of its share of in-flight requests."),
        key("sticky", Ty::AnyOf(&[Ty::Bool, Ty::Table(&STICKY)]), "Sticky sessions by cookie; true for the defaults."),
        keyd("resolve_interval", Ty::Duration, "Backends given by host name are resolved again this often (or at the records' TTL).", |c| dur(pool(c).resolve_interval)),
        key(
            "health",
            Ty::Table(&HEALTH),
            "Active health checks; without it every backend counts as healthy.",
        ),
        key(
            "passive",
            Ty::Table(&PASSIVE),
            "Outlier detection from live traffic.",
        ),
        key(
            "instances",
            Ty::Table(&INSTANCES),
            "Managed instances; omit for static backends only.",
        ),
        key(
            "autoscale",
            Ty::Table(&AUTOSCALE),
            "Autoscaling of the managed instances.",
        ),
    ],
    required: &[],
    required_any: &[],
};

pub(crate) static BACKEND: Section = Section {
    title: "{ address, weight }",
    doc: "A static member with a weight.",
    keys: &[
        key("address", Ty::Addr, "\"host:port\"."),
        key(
            "weight",
            Ty::Uint(1),
            "Weight for weighted balancing; default 1.",
        ),
    ],
    required: &["address"],
    required_any: &[],
};

pub(crate) static HEALTH: Section = Section {
    title: "[pools.NAME.health]",
    doc: "Active health checks.",
    keys: &[
        key(
            "path",
            Ty::AbsPath,
            "HTTP GET path; omit for a TCP connect check.",
        ),
        keyd("interval", Ty::Duration, "Time between probes.", |c| {
            dur(pool(c).health.as_ref().expect("probe").interval)
        }),
        keyd(
            "timeout",
            Ty::Duration,
            "A probe slower than this fails.",
            |c| dur(pool(c).health.as_ref().expect("probe").timeout),
        ),
        keyd(
            "rise",
            Ty::Uint(1),
            "Consecutive passes to become healthy.",
            |c| json!(pool(c).health.as_ref().expect("probe").rise),
        ),
        keyd(
            "fall",
            Ty::Uint(1),
            "Consecutive failures to become unhealthy.",
            |c| json!(pool(c).health.as_ref().expect("probe").fall),
        ),
        keyd(
            "expect_status",
            Ty::StatusRanges,
            "Statuses that pass: ranges and lists like \"200-299,304\".",
            |c| {
                let ranges = &pool(c).health.as_ref().expect("probe").expect_status.0;
                let parts: Vec<String> = ranges
                    .iter()
                    .map(|(lo, hi)| {
                        if lo == hi {
                            format!("{lo}")
                        } else {
                            format!("{lo}-{hi}")
                        }
                    })
                    .collect();
                json!(parts.join(","))
            },
        ),
        keyd(
            "initial_state",
            Ty::Choice(|| names(INITIAL_STATES)),
            "State of new members before their first probes.",
            |c| {
                let healthy = pool(c).health.as_ref().expect("probe").initial_healthy;
                json!(INITIAL_STATES.iter().find(|(_, h)| *h == healthy).map(|(n, _)| *n))
            },
        ),
        key(
            "headers",
            Ty::StrMap,
            "Extra headers on the probe, like { Host = \"app.internal\" }.",
        ),
        key(
            "kind",
            Ty::Choice(HealthKind::names),
            "\"http\" (with path; default then), \"tcp\" (default without path) or \"grpc\" (grpc.health.v1).",
        ),
        keyd("service", Ty::Str, "kind = \"grpc\": the service asked about; \"\" = the server.", |c| json!(pool(c).health.as_ref().expect("probe").service)),
    ],
    required: &[],
    required_any: &[],
};

pub(crate) static PASSIVE: Section = Section {
    title: "[pools.NAME.passive]",
    doc: "Outlier detection from live traffic.",
    keys: &[
        keyd(
            "consecutive_failures",
            Ty::Uint(1),
            "Connect errors / 502 / 503 / 504 in a row that eject a member.",
            |c| {
                json!(
                    pool(c)
                        .passive
                        .as_ref()
                        .expect("probe")
                        .consecutive_failures
                )
            },
        ),
        keyd(
            "eject_for",
            Ty::Duration,
            "How long an ejected member stays out (doubles on repeated ejection).",
            |c| dur(pool(c).passive.as_ref().expect("probe").eject_for),
        ),
    ],
    required: &[],
    required_any: &[],
};

pub(crate) static INSTANCES: Section = Section {
    title: "[pools.NAME.instances]",
    doc: "Managed instances: processes, Docker containers, labelled containers or a swarm service.",
    keys: &[
        key("provider", Ty::Choice(ProviderKind::names), "Who runs the instances."),
        keyd("count", Ty::Uint(0), "Instances to keep running when there is no [autoscale].", |c| json!(pool(c).instances.as_ref().expect("probe").count)),
        key("command", Ty::StrList, "process: the program and its arguments, {port} is a free port (PORT is set too); docker: command override."),
        key("env", Ty::StrMap, "process/docker: environment of the instances."),
        keyd("on_shutdown", Ty::Choice(OnShutdown::names), "process/docker: \"stop\" or \"leave\" the instances when drover exits.", |c| {
            json!(pool(c).instances.as_ref().expect("probe").on_shutdown.as_str())
        }),
        key("image", Ty::NonEmpty, "docker: the local image to run."),
        key("container_port", Ty::Uint(1), "docker: the port the app listens on inside the container."),
        key("args", Ty::StrList, "docker: arguments after the image's entrypoint."),
        key("network", Ty::NonEmpty, "docker: attach to this network."),
        keyd("address", Ty::Choice(DockerAddress::names), "docker: dial the 127.0.0.1 published port or the container's IP (drover inside that network).", |c| {
            json!(pool(c).instances.as_ref().expect("probe").address.as_str())
        }),
        key("memory", Ty::Size, "docker: memory limit, like \"256m\"."),
        key("cpus", Ty::Positive, "docker: CPU limit, like 0.5."),
        keyd("pull", Ty::Bool, "docker: pull the image (false: local images only).", |c| json!(pool(c).instances.as_ref().expect("probe").pull)),
        key("service", Ty::NonEmpty, "swarm: an existing service whose replicas drover sets."),
        key("owner", Ty::NonEmpty, "docker_labels: only containers also labelled drover.owner=<owner> join."),
        key("name", Ty::NonEmpty, "dns: the host name whose A/AAAA records are the members."),
        key("port", Ty::Uint(1), "dns: the members' port."),
        keyd("start_timeout", Ty::Duration, "An instance must pass its health check within this, or it is replaced.", |c| dur(pool(c).instances.as_ref().expect("probe").start_timeout)),
        keyd("drain_timeout", Ty::Duration, "On scale-down: wait this long for in-flight requests.", |c| dur(pool(c).instances.as_ref().expect("probe").drain_timeout)),
        keyd("stop_timeout", Ty::Duration, "After drain: SIGTERM / docker stop, then kill after this.", |c| dur(pool(c).instances.as_ref().expect("probe").stop_timeout)),
    ],
    required: &["provider"],
    required_any: &[],
};

pub(crate) static AUTOSCALE: Section = Section {
    title: "[pools.NAME.autoscale]",
    doc: "Autoscaling: target tracking and explicit rules, evaluated every interval.",
    keys: &[
        keyd(
            "min",
            Ty::Uint(0),
            "Fewest instances; 0 allows scale to zero.",
            |c| json!(pool(c).autoscale.as_ref().expect("probe").min),
        ),
        keyd("max", Ty::Uint(1), "Most instances.", |c| {
            json!(pool(c).autoscale.as_ref().expect("probe").max)
        }),
        keyd(
            "interval",
            Ty::Duration,
            "The rules are evaluated every interval.",
            |c| dur(pool(c).autoscale.as_ref().expect("probe").interval),
        ),
        key(
            "target_inflight",
            Ty::Positive,
            "Target tracking: desired = ceil(total in-flight / target).",
        ),
        key(
            "target_rps",
            Ty::Positive,
            "Target tracking on requests per second per instance.",
        ),
        keyd(
            "scale_up_cooldown",
            Ty::Duration,
            "No scale-up sooner than this after the last one.",
            |c| dur(pool(c).autoscale.as_ref().expect("probe").scale_up_cooldown),
        ),
        keyd(
            "scale_down_cooldown",
            Ty::Duration,
            "No scale-down while any recommendation in this window was higher.",
            |c| {
                dur(pool(c)
                    .autoscale
                    .as_ref()
                    .expect("probe")
                    .scale_down_cooldown)
            },
        ),
        keyd(
            "idle_timeout",
            Ty::Duration,
            "With min = 0: stop the last instance after this long without requests.",
            |c| dur(pool(c).autoscale.as_ref().expect("probe").idle_timeout),
        ),
        keyd(
            "hold_timeout",
            Ty::Duration,
            "With min = 0: how long a request may wait for a cold instance.",
            |c| dur(pool(c).autoscale.as_ref().expect("probe").hold_timeout),
        ),
        key(
            "rules",
            Ty::Tables(&RULE),
            "Explicit rules: the largest wins up, all must agree down.",
        ),
        keyd(
            "warm",
            Ty::Uint(0),
            "Extra instances kept started, checked and out of rotation (not with swarm).",
            |c| json!(scale(c).warm),
        ),
        keyd(
            "warm_freeze",
            Ty::Bool,
            "Freeze warm instances (SIGSTOP / docker pause) while they wait.",
            |c| json!(scale(c).warm_freeze),
        ),
        keyd(
            "warm_at_zero",
            Ty::Bool,
            "Keep the warm pool when scaled to zero.",
            |c| json!(scale(c).warm_at_zero),
        ),
        keyd(
            "predictive",
            Ty::Bool,
            "Scale ahead on a Holt forecast of the metric (never down).",
            |c| json!(scale(c).predictive),
        ),
        key(
            "schedule",
            Ty::Tables(&SCHEDULE),
            "Scheduled windows that set min/max.",
        ),
    ],
    required: &[],
    required_any: &[],
};

pub(crate) static RULE: Section = Section {
    title: "[[pools.NAME.autoscale.rules]]",
    doc: "A scaling rule: metric above/below a threshold for a while -> add, remove or factor.",
    keys: &[
        key("metric", Ty::Choice(Metric::names), "The metric compared."),
        key("above", Ty::Number, "Fires when the metric is above this."),
        key("below", Ty::Number, "Fires when the metric is below this."),
        key(
            "for",
            Ty::Duration,
            "How long the condition must hold; default \"0s\".",
        ),
        key("add", Ty::Uint(1), "Instances added."),
        key("remove", Ty::Uint(1), "Instances removed."),
        key("factor", Ty::Positive, "Multiply the instance count."),
    ],
    required: &["metric"],
    required_any: &[],
};
