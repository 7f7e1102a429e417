//! Loading whole files: defaults, positions, several errors at once, env, starter, demo.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::load::load_with_env;
use super::*;

pub(crate) fn env(name: &str) -> Option<String> {
    match name {
        "ADMIN_TOKEN" => Some("t0ken".into()),
        "BACKEND_PORT" => Some("8005".into()),
        "BAL" => Some("least_conn".into()),
        _ => None,
    }
}

/// Loads `src` with the test environment; panics with the errors if invalid.
pub(crate) fn load(src: &str) -> Config {
    match load_with_env(src, None, &env) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

/// Loads `src` expecting errors.
pub(crate) fn errors(src: &str) -> Vec<ConfigError> {
    match load_with_env(src, None, &env) {
        Ok(c) => panic!("expected errors, got {c:#?}"),
        Err(e) => e.errors,
    }
}

/// Asserts that loading `src` reports an error at `key` whose message contains `needle`.
#[track_caller]
pub(crate) fn assert_error(src: &str, key: &str, needle: &str) {
    let errs = errors(src);
    assert!(
        errs.iter()
            .any(|e| e.key == key && e.message.contains(needle)),
        "no error at {key} containing {needle:?}; got:\n{}",
        errs.iter()
            .map(|e| format!("  {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

pub(crate) const MINIMAL: &str = r#"
[pools.app]
backends = ["127.0.0.1:8001"]
"#;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn minimal_file_gets_every_default() {
    let c = load(MINIMAL);
    assert_eq!(c.server.listen, vec![addr("127.0.0.1:8080")]);
    assert_eq!(c.server.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(c.server.max_header_bytes, 65536);
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.server.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.server.max_connections, 0);
    assert_eq!(c.server.tunnel_idle_timeout, Duration::from_secs(3600));
    assert_eq!(c.server.body_read_timeout, Duration::from_secs(60));
    assert_eq!(c.server.threads, 0);
    assert_eq!(c.server.tls, None);
    assert_eq!(c.admin.listen, addr("127.0.0.1:9090"));
    assert_eq!(c.admin.token, None);
    assert!(c.log.access.is_on());
    assert_eq!(c.source, None);
    // a single pool without routes gets a catch-all route
    assert_eq!(c.routes, vec![Route::to_pool("app")]);
    let p = &c.pools["app"];
    assert_eq!(p.name, "app");
    assert_eq!(p.balance, Balance::RoundRobin);
    assert_eq!(p.hash_key, HashKey::ClientIp);
    assert_eq!(
        p.backends,
        vec![BackendConfig {
            address: addr("127.0.0.1:8001"),
            weight: 1
        }]
    );
    assert_eq!(p.connect_timeout, Duration::from_secs(2));
    assert_eq!(p.request_timeout, Duration::from_secs(60));
    assert_eq!(p.retries, 2);
    assert_eq!(p.max_connections_per_backend, 0);
    assert_eq!(p.queue_timeout, Duration::from_secs(5));
    assert_eq!(p.max_queue, 1024);
    assert_eq!(p.upstream_idle_timeout, Duration::from_secs(50));
    assert!(p.health.is_none() && p.passive.is_none());
    assert!(p.instances.is_none() && p.autoscale.is_none());
}

#[test]
fn section_defaults_are_filled() {
    let c = load(
        r#"
[pools.app]
backends = ["127.0.0.1:8001"]
[pools.app.health]
[pools.app.passive]
[pools.app.instances]
provider = "process"
command = ["./app", "{port}"]
[pools.app.autoscale]
"#,
    );
    let p = &c.pools["app"];
    let h = p.health.as_ref().unwrap();
    assert_eq!(h.path, None);
    assert_eq!(h.interval, Duration::from_secs(2));
    assert_eq!(h.timeout, Duration::from_secs(1));
    assert_eq!((h.rise, h.fall), (2, 3));
    assert_eq!(h.expect_status, StatusRanges(vec![(200, 399)]));
    assert!(!h.initial_healthy);
    assert!(h.headers.is_empty());
    let pa = p.passive.as_ref().unwrap();
    assert_eq!(pa.consecutive_failures, 5);
    assert_eq!(pa.eject_for, Duration::from_secs(30));
    let i = p.instances.as_ref().unwrap();
    assert_eq!(i.provider, ProviderKind::Process);
    assert_eq!(i.count, 1);
    assert_eq!(i.command, vec!["./app", "{port}"]);
    assert_eq!(i.address, DockerAddress::Published);
    assert_eq!(i.on_shutdown, OnShutdown::Stop);
    assert!(!i.pull);
    assert_eq!(i.start_timeout, Duration::from_secs(30));
    assert_eq!(i.drain_timeout, Duration::from_secs(30));
    assert_eq!(i.stop_timeout, Duration::from_secs(10));
    let a = p.autoscale.as_ref().unwrap();
    assert_eq!((a.min, a.max), (1, 10));
    assert_eq!(a.interval, Duration::from_secs(5));
    assert_eq!((a.target_inflight, a.target_rps), (None, None));
    assert_eq!(a.scale_up_cooldown, Duration::from_secs(10));
    assert_eq!(a.scale_down_cooldown, Duration::from_secs(60));
    assert_eq!(a.idle_timeout, Duration::from_secs(300));
    assert_eq!(a.hold_timeout, Duration::from_secs(30));
    assert!(a.rules.is_empty());
}

/// The example from SPEC.md, with the docker-only keys left out.
const SPEC_EXAMPLE: &str = r#"
[server]
listen = ["127.0.0.1:8080"]
shutdown_timeout = "30s"
max_header_bytes = 65536
header_read_timeout = "10s"
idle_timeout = "60s"
threads = 2

[admin]
listen = "127.0.0.1:9090"

[log]
access = false

[[routes]]
host = "api.example.com"
path_prefix = "/api"
pool = "api"
strip_prefix = true

[pools.api]
balance = "hash"
hash_key = "header:X-User"
backends = ["127.0.0.1:8001", { address = "127.0.0.1:8002", weight = 3 }]
connect_timeout = "2s"
request_timeout = "60s"
retries = 2
max_connections_per_backend = 0
queue_timeout = "5s"
max_queue = 1024

[pools.api.health]
path = "/health"
interval = "2s"
timeout = "1s"
rise = 2
fall = 3
expect_status = "200-299,304"
initial_state = "healthy"
headers = { Host = "app.internal" }

[pools.api.passive]
consecutive_failures = 5
eject_for = "30s"

[pools.api.instances]
provider = "process"
count = 1
command = ["drover", "backend", "--listen", "127.0.0.1:{port}"]
env = { APP_MODE = "demo" }
start_timeout = "30s"
drain_timeout = "30s"
stop_timeout = "10s"

[pools.api.autoscale]
min = 1
max = 10
interval = "5s"
target_inflight = 20
scale_up_cooldown = "10s"
scale_down_cooldown = "60s"
idle_timeout = "5m"
hold_timeout = "30s"

[[pools.api.autoscale.rules]]
metric = "p95_latency_ms"
above = 250
for = "30s"
add = 1

[[pools.api.autoscale.rules]]
metric = "inflight_per_instance"
below = 2.5
for = "1m"
remove = 1
"#;

#[test]
fn spec_example_loads() {
    let c = load(SPEC_EXAMPLE);
    assert_eq!(c.server.threads, 2);
    assert!(!c.log.access.is_on());
    assert_eq!(
        c.routes[0],
        Route {
            host: Some(HostMatch::Exact("api.example.com".into())),
            path_prefix: Some("/api".into()),
            strip_prefix: true,
            ..Route::to_pool("api")
        }
    );
    let p = &c.pools["api"];
    assert_eq!(p.balance, Balance::Hash);
    assert_eq!(p.hash_key, HashKey::Header("x-user".into()));
    assert_eq!(p.backends[1].weight, 3);
    let h = p.health.as_ref().unwrap();
    assert_eq!(h.path.as_deref(), Some("/health"));
    assert!(h.initial_healthy);
    assert_eq!(h.expect_status.0, vec![(200, 299), (304, 304)]);
    assert_eq!(
        h.headers,
        vec![("Host".to_string(), "app.internal".to_string())]
    );
    let i = p.instances.as_ref().unwrap();
    assert_eq!(i.env.get("APP_MODE").map(String::as_str), Some("demo"));
    let a = p.autoscale.as_ref().unwrap();
    assert_eq!(a.target_inflight, Some(20.0));
    assert_eq!(
        a.rules,
        vec![
            ScaleRule {
                metric: Metric::P95LatencyMs,
                threshold: Threshold::Above(250.0),
                for_: Duration::from_secs(30),
                action: ScaleAction::Add(1),
            },
            ScaleRule {
                metric: Metric::InflightPerInstance,
                threshold: Threshold::Below(2.5),
                for_: Duration::from_secs(60),
                action: ScaleAction::Remove(1),
            },
        ]
    );
}

#[test]
fn docker_instances_load() {
    let c = load(
        r#"
[pools.web.instances]
provider = "docker"
image = "myapp:latest"
container_port = 8080
args = ["--flag"]
network = "appnet"
address = "container"
memory = "256m"
cpus = 0.5
pull = true
on_shutdown = "leave"
"#,
    );
    let i = c.pools["web"].instances.clone().unwrap();
    assert_eq!(i.provider, ProviderKind::Docker);
    assert_eq!(i.image.as_deref(), Some("myapp:latest"));
    assert_eq!(i.container_port, Some(8080));
    assert_eq!(i.args, vec!["--flag"]);
    assert_eq!(i.network.as_deref(), Some("appnet"));
    assert_eq!(i.address, DockerAddress::Container);
    assert_eq!(i.memory, Some(256 << 20));
    assert_eq!(i.cpus, Some(0.5));
    assert!(i.pull);
    assert_eq!(i.on_shutdown, OnShutdown::Leave);
}

#[test]
fn reports_every_error_with_line_and_column() {
    let src = r#"[server]
listen = []
max_header_bytes = 100

[pools.api]
balance = "roundrobin"
backends = ["127.0.0.1:8001", { address = "127.0.0.1:8002", weight = 0 }]

[pools.api.health]
interval = "2 seconds"
rise = 0
colour = "blue"

[pools.web]
backends = ["nowhere"]

[[routes]]
pool = "x"
"#;
    let errs = errors(src);
    let got: Vec<(String, Option<usize>, Option<usize>)> = errs
        .iter()
        .map(|e| (e.key.clone(), e.line, e.column))
        .collect();
    let expect = [
        ("server.listen", 2, 10),
        ("server.max_header_bytes", 3, 20),
        ("pools.api.balance", 6, 11),
        ("pools.api.backends[1].weight", 7, 70),
        ("pools.api.health.interval", 10, 12),
        ("pools.api.health.rise", 11, 8),
        ("pools.api.health.colour", 12, 1),
        ("pools.web.backends[0]", 15, 13),
        ("routes[0].pool", 18, 8),
    ];
    let expect: Vec<(String, Option<usize>, Option<usize>)> = expect
        .iter()
        .map(|(k, l, c)| (k.to_string(), Some(*l), Some(*c)))
        .collect();
    assert_eq!(
        got,
        expect,
        "\n{}",
        ConfigErrors {
            file: "f".into(),
            errors: errs.clone()
        }
    );
    assert_eq!(
        errs[4].message,
        "expected a duration like \"2s\", got \"2 seconds\""
    );
    assert_eq!(
        errs[2].message,
        "unknown \"roundrobin\"; expected one of round_robin, weighted_round_robin, least_conn, random, p2c_ewma, hash"
    );
    assert_eq!(errs[8].message, "no pool named \"x\"; pools are: api, web");
    let text = ConfigErrors {
        file: "drover.toml".into(),
        errors: errs,
    }
    .to_string();
    assert!(text.contains(
        "drover.toml:10:12: pools.api.health.interval: expected a duration like \"2s\", got \"2 seconds\""
    ));
    assert_eq!(text.lines().count(), 9);
}

#[test]
fn syntax_error_has_position() {
    let e = load_str(
        "[server]\nlisten = [\"a\"\n",
        Some(Path::new("drover.toml")),
    )
    .unwrap_err();
    assert_eq!(e.file, "drover.toml");
    assert_eq!(e.errors[0].line, Some(2));
    assert!(e.errors[0].message.starts_with("TOML syntax"), "{e}");
    let e = load_str("a = 1\na = 2\n", None).unwrap_err();
    assert_eq!(e.file, "<config>");
    assert_eq!(e.errors[0].line, Some(2), "{e}");
}

#[test]
fn unknown_keys_at_any_depth() {
    assert_error(
        "colour = 1\n[pools.a]\nbackends=[\"127.0.0.1:1\"]",
        "colour",
        "unknown key \"colour\"",
    );
    assert_error(
        "[server]\nlistn = []\n[pools.a]\nbackends=[\"127.0.0.1:1\"]",
        "server.listn",
        "accepted here: listen,",
    );
    assert_error(
        "[admin]\nx = 1\n[pools.a]\nbackends=[\"127.0.0.1:1\"]",
        "admin.x",
        "unknown key",
    );
    assert_error(
        "[log]\nerror = true\n[pools.a]\nbackends=[\"127.0.0.1:1\"]",
        "log.error",
        "unknown key",
    );
    assert_error(
        "[[routes]]\npool = \"a\"\nprefix = \"/\"\n[pools.a]\nbackends=[\"127.0.0.1:1\"]",
        "routes[0].prefix",
        "unknown key",
    );
    assert_error(
        "[pools.a]\nbackends=[{ address = \"127.0.0.1:1\", wieght = 2 }]",
        "pools.a.backends[0].wieght",
        "unknown key",
    );
    assert_error(
        "[pools.a]\nbackends=[\"127.0.0.1:1\"]\n[pools.a.passive]\nfailures = 2",
        "pools.a.passive.failures",
        "unknown key",
    );
    assert_error(
        "[pools.a.instances]\nprovider=\"process\"\ncommand=[\"x\"]\n[pools.a.autoscale]\n[[pools.a.autoscale.rules]]\nmetric=\"error_rate\"\nabove=1\nadd=1\nwhen=\"now\"",
        "pools.a.autoscale.rules[0].when",
        "unknown key",
    );
    assert_error(
        "[server.tls]\nport = 1\n[pools.a]\nbackends=[\"127.0.0.1:1\"]",
        "server.tls.port",
        "unknown key",
    );
}

#[test]
fn wrong_types_are_reported() {
    assert_error(
        "[pools.a]\nbackends=[\"127.0.0.1:1\"]\nretries = \"2\"",
        "pools.a.retries",
        "expected a whole number, got \"2\"",
    );
    assert_error(
        "[pools.a]\nbackends=[\"127.0.0.1:1\"]\nconnect_timeout = 2",
        "pools.a.connect_timeout",
        "durations are strings",
    );
    assert_error(
        "[log]\naccess = \"yes\"\n[pools.a]\nbackends=[\"127.0.0.1:1\"]",
        "log.access",
        "expected true, false, \"stdout\", \"off\" or a file path",
    );
    assert_error(
        "server = 1\n[pools.a]\nbackends=[\"127.0.0.1:1\"]",
        "server",
        "expected a table",
    );
    assert_error(
        "[pools.a]\nbackends = \"127.0.0.1:1\"",
        "pools.a.backends",
        "expected a list",
    );
    assert_error(
        "[pools.a]\nbackends=[\"127.0.0.1:1\"]\nretries = -1",
        "pools.a.retries",
        ">= 0",
    );
}

#[test]
fn env_references_are_expanded_everywhere() {
    let c = load(
        r#"
[admin]
listen = "0.0.0.0:9090"
token = "${ADMIN_TOKEN}"
[pools.app]
balance = "${BAL}"
backends = ["127.0.0.1:${BACKEND_PORT}", { address = "localhost:1${BACKEND_PORT}" }]
"#,
    );
    assert_eq!(c.admin.token.as_deref(), Some("t0ken"));
    assert_eq!(c.pools["app"].balance, Balance::LeastConn);
    assert_eq!(c.pools["app"].backends[0].address, addr("127.0.0.1:8005"));
    assert_eq!(c.pools["app"].backends[1].address, addr("127.0.0.1:18005"));
}

#[test]
fn admin_token_variables_are_withheld_from_instances() {
    let c = load(
        r#"
[admin]
token = "${ADMIN_TOKEN}"
[pools.app.instances]
provider = "process"
command = ["./app"]
"#,
    );
    let inst = c.pools["app"].instances.as_ref().unwrap();
    assert_eq!(inst.withheld_env, vec!["ADMIN_TOKEN"]);
    let c = load("[pools.app.instances]\nprovider = \"process\"\ncommand = [\"./app\"]");
    assert!(c.pools["app"]
        .instances
        .as_ref()
        .unwrap()
        .withheld_env
        .is_empty());
}

#[test]
fn unset_env_reference_is_an_error_naming_it() {
    let src = "[admin]\ntoken = \"${NOT_SET_ANYWHERE}\"\n[pools.a]\nbackends=[\"127.0.0.1:1\"]";
    assert_error(
        src,
        "admin.token",
        "environment variable \"NOT_SET_ANYWHERE\" is not set",
    );
    let errs = errors(src);
    assert_eq!((errs[0].line, errs[0].column), (Some(2), Some(9)));
}

#[test]
fn load_str_reads_the_process_environment() {
    // a name no other test uses; only this test sets it
    std::env::set_var("DROVER_CONFIG_TEST_TOKEN_7731", "from-env");
    let c = load_str(
        "[admin]\ntoken = \"${DROVER_CONFIG_TEST_TOKEN_7731}\"\n[pools.a]\nbackends=[\"127.0.0.1:1\"]",
        None,
    )
    .unwrap();
    assert_eq!(c.admin.token.as_deref(), Some("from-env"));
}

#[test]
fn load_file_sets_source_and_reports_read_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drover.toml");
    std::fs::write(&path, MINIMAL).unwrap();
    let c = load_file(&path).unwrap();
    assert_eq!(c.source.as_deref(), Some(path.as_path()));

    let e = load_file(Path::new("drover.toml.missing")).unwrap_err();
    assert_eq!(e.file, "drover.toml.missing");
    assert_eq!(
        e.errors[0].message,
        "cannot read drover.toml.missing: No such file or directory"
    );
    assert_eq!(
        e.to_string(),
        "drover.toml.missing: cannot read drover.toml.missing: No such file or directory"
    );

    std::fs::write(&path, "[pools.a]\nbackends = [\"bad\"]\n").unwrap();
    let e = load_file(&path).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{}:2:13: pools.a.backends[0]: ", path.display())),
        "{e}"
    );
}

#[test]
fn tls_paths_are_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.pem"), "x").unwrap();
    std::fs::write(dir.path().join("site.key"), "x").unwrap();
    let path = dir.path().join("drover.toml");
    let src = format!(
        "[server.tls]\nlisten = [\"127.0.0.1:8443\"]\ncerts = [{{ cert = \"site.pem\", key = \"site.key\" }}]\n{MINIMAL}"
    );
    std::fs::write(&path, &src).unwrap();
    let c = load_file(&path).unwrap();
    let tls = c.server.tls.unwrap();
    assert_eq!(tls.listen, vec![addr("127.0.0.1:8443")]);
    assert_eq!(tls.certs[0].cert, dir.path().join("site.pem"));
    assert_eq!(tls.certs[0].key, dir.path().join("site.key"));

    let src = src.replace("site.key", "missing.key");
    let e = load_str(&src, Some(&path)).unwrap_err();
    assert_eq!(e.errors.len(), 1, "{e}");
    assert_eq!(e.errors[0].key, "server.tls.certs[0].key");
    assert!(e.errors[0].message.starts_with("no such file"));
}

#[test]
fn starter_config_validates() {
    let c = load_str(STARTER_CONFIG, Some(Path::new("drover.toml"))).unwrap();
    assert_eq!(c.server.listen, vec![addr("127.0.0.1:8080")]);
    assert_eq!(c.admin.listen, addr("127.0.0.1:9090"));
    assert_eq!(c.routes.len(), 1);
    assert_eq!(c.routes[0].pool.as_deref(), Some("app"));
    let p = &c.pools["app"];
    assert_eq!(c.pools.len(), 1);
    assert_eq!(p.balance, Balance::RoundRobin);
    let addrs: Vec<SocketAddr> = p.backends.iter().map(|b| b.address).collect();
    assert_eq!(addrs, vec![addr("127.0.0.1:8001"), addr("127.0.0.1:8002")]);
    for section in [
        "health",
        "passive",
        "instances",
        "autoscale",
        "rules",
        "tls",
        "token",
        "name",
    ] {
        assert!(STARTER_CONFIG.contains(section), "starter lacks {section}");
    }
}

#[test]
fn starter_config_commented_sections_validate_when_uncommented() {
    // Uncommenting the optional sections (one provider, one target) must give a valid file.
    let mut out = String::new();
    for line in STARTER_CONFIG.lines() {
        let t = line.trim_start();
        let skip = [
            "# [server.tls]",
            "# listen = [\"0.0.0.0:8443\"]",
            "# certs",
            "# token",
            "# image",
            "# container_port",
            "# service",
            "# host =",
            // TLS to backends: names files that do not exist here.
            "# tls = true",
            "# tls_server_name",
            "# ca_file",
            "# client_cert",
            "# client_key",
        ];
        if let Some(rest) = t.strip_prefix("# ") {
            let looks_like_toml = rest.starts_with('[')
                || rest
                    .split_once(" = ")
                    .is_some_and(|(k, _)| !k.contains(' '));
            if looks_like_toml && !skip.iter().any(|s| t.starts_with(s)) {
                out.push_str(rest);
                out.push('\n');
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    let out = out.replace("balance = \"round_robin\"", "balance = \"hash\"");
    let c = load_with_env(&out, None, &env).unwrap_or_else(|e| panic!("{e}\n---\n{out}"));
    let p = &c.pools["app"];
    assert!(p.health.is_some() && p.passive.is_some() && p.instances.is_some());
    assert_eq!(p.autoscale.as_ref().unwrap().rules.len(), 1);
    assert_eq!(c.name.as_deref(), Some("shop-prod"));
}

#[test]
fn demo_config_fields() {
    let backends = [addr("127.0.0.1:7001"), addr("127.0.0.1:7002")];
    let c = demo_config(&backends);
    assert_eq!(c.server.listen, vec![addr("127.0.0.1:8080")]);
    assert_eq!(c.admin.listen, addr("127.0.0.1:9090"));
    assert!(c.log.access.is_on());
    assert_eq!(c.routes.len(), 1);
    assert_eq!(c.routes[0].pool.as_deref(), Some("demo"));
    assert!(c.routes[0].host.is_none() && c.routes[0].path_prefix.is_none());
    let p = &c.pools["demo"];
    assert_eq!(p.balance, Balance::RoundRobin);
    assert_eq!(
        p.backends.iter().map(|b| b.address).collect::<Vec<_>>(),
        backends
    );
    assert!(p.backends.iter().all(|b| b.weight == 1));
    let h = p.health.as_ref().unwrap();
    assert_eq!(h.path.as_deref(), Some("/health"));
    assert_eq!(h.interval, Duration::from_secs(1));
    assert_eq!((h.rise, h.fall, h.initial_healthy), (1, 2, true));
    assert_eq!(c.source, None);
}

#[test]
fn summary_has_one_line_per_pool() {
    let c = load(SPEC_EXAMPLE);
    assert_eq!(
        summary_lines(&c),
        vec!["pool api: 2 backends, hash, managed: process x1, autoscale 1..10, health GET /health every 2s, routes: api.example.com/api"]
    );
    let c = load(
        r#"
[[routes]]
path_prefix = "/api"
pool = "api"
[[routes]]
host = "*.example.com"
pool = "web"
[pools.api]
balance = "least_conn"
backends = ["127.0.0.1:1", "127.0.0.1:2"]
[pools.api.health]
path = "/health"
[pools.web]
backends = ["127.0.0.1:3"]
[pools.web.health]
interval = "500ms"
"#,
    );
    assert_eq!(
        summary_lines(&c),
        vec![
            "pool api: 2 backends, least_conn, health GET /health every 2s, routes: /api",
            "pool web: 1 backend, round_robin, health TCP every 500ms, routes: *.example.com",
        ]
    );
}

#[test]
fn access_log_targets_and_formats() {
    let pool = "[pools.a]\nbackends=[\"127.0.0.1:1\"]\n";
    let read = |log: &str| {
        load_str(
            &format!("[log]\n{log}\n{pool}"),
            Some(Path::new("/etc/drover/drover.toml")),
        )
        .unwrap()
        .log
    };
    assert_eq!(read("").access, AccessTarget::Stdout);
    assert_eq!(read("access = true").access, AccessTarget::Stdout);
    assert_eq!(read("access = \"stdout\"").access, AccessTarget::Stdout);
    assert_eq!(read("access = false").access, AccessTarget::Off);
    assert_eq!(read("access = \"off\"").access, AccessTarget::Off);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("drover.toml");
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let rel = load_str(
        &format!("[log]\naccess = \"logs/access.log\"\n{pool}"),
        Some(&cfg),
    )
    .unwrap();
    assert_eq!(
        rel.log.access,
        AccessTarget::File(dir.path().join("logs/access.log")),
        "relative to the config file"
    );
    assert_eq!(
        read("access = \"/tmp/a.log\"").access,
        AccessTarget::File("/tmp/a.log".into())
    );
    assert_error(
        &format!("[log]\naccess = \"/nonexistent-dir-x/a.log\"\n{pool}"),
        "log.access",
        "no such directory: /nonexistent-dir-x",
    );
    assert_eq!(read("").access_format, AccessFormat::Json);
    assert_eq!(
        read("access_format = \"combined\"").access_format,
        AccessFormat::Combined
    );
    assert_error(
        &format!("[log]\naccess_format = \"clf\"\n{pool}"),
        "log.access_format",
        "expected one of json, combined",
    );
    assert_error(
        &format!("[log]\naccess = 3\n{pool}"),
        "log.access",
        "got integer 3",
    );
}

#[test]
fn http2_codec_is_read_and_a_bad_one_is_placed() {
    assert_eq!(load(MINIMAL).server.http2_codec, Http2Codec::Native);
    let c = load(&format!("[server]\nhttp2_codec = \"hyper\"\n{MINIMAL}"));
    assert_eq!(c.server.http2_codec, Http2Codec::Hyper);
    let errs = errors(&format!("[server]\nhttp2_codec = \"h2\"\n{MINIMAL}"));
    let e = errs
        .iter()
        .find(|e| e.key == "server.http2_codec")
        .expect("an error at server.http2_codec");
    assert_eq!(e.message, "unknown \"h2\"; expected one of native, hyper");
    assert_eq!((e.line, e.column), (Some(2), Some(15)));
}
