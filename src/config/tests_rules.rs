//! One test per validation rule: each names the key path and says what is accepted.

use super::tests::{assert_error, errors, load};
use super::*;
use std::time::Duration;

const B: &str = "backends = [\"127.0.0.1:8001\"]";

fn pool(body: &str) -> String {
    format!("[pools.api]\n{body}\n")
}

fn managed(extra: &str) -> String {
    format!("[pools.api.instances]\nprovider = \"process\"\ncommand = [\"./app\"]\n{extra}")
}

#[test]
fn route_to_missing_pool_lists_the_pools() {
    let src = format!("[[routes]]\npool = \"x\"\n[pools.api]\n{B}\n[pools.web]\n{B}\n");
    assert_error(
        &src,
        "routes[0].pool",
        "no pool named \"x\"; pools are: api, web",
    );
}

#[test]
fn route_checks() {
    let with = |r: &str| format!("[[routes]]\n{r}\n[pools.api]\n{B}\n");
    assert_error(
        &with("pool = \"api\"\npath_prefix = \"api\""),
        "routes[0].path_prefix",
        "must start with \"/\"",
    );
    assert_error(
        &with("pool = \"api\"\nhost = \"api.*.com\""),
        "routes[0].host",
        "bad host pattern",
    );
    assert_error(&with("host = \"a.com\""), "routes[0].pool", "required");
    assert_error(
        &with("pool = \"api\"\nstrip_prefix = true"),
        "routes[0].strip_prefix",
        "needs a path_prefix",
    );
    // a route with a bad host still has its pool checked
    let errs = errors(&with("pool = \"nope\"\nhost = \"*\""));
    assert_eq!(errs.len(), 2, "{errs:?}");
    let c = load(&with(
        "pool = \"api\"\nhost = \"*.Example.com\"\npath_prefix = \"/v1\"\nstrip_prefix = true",
    ));
    assert_eq!(
        c.routes[0].host,
        Some(HostMatch::Wildcard(".example.com".into()))
    );
    assert!(c.routes[0].strip_prefix);
}

#[test]
fn pools_and_routes_must_exist() {
    assert_error("[server]\nthreads = 1\n", "pools", "no pools defined");
    let src = format!("[pools.api]\n{B}\n[pools.web]\n{B}\n");
    assert_error(&src, "routes", "no [[routes]]");
    assert_error(
        &format!("routes = []\n[pools.api]\n{B}\n"),
        "routes",
        "every request would get 404",
    );
}

#[test]
fn pool_without_members_is_an_error() {
    assert_error(
        &pool("balance = \"random\""),
        "pools.api",
        "pool has no members",
    );
    assert_error(&pool("backends = []"), "pools.api", "pool has no members");
    // instances alone are enough
    load(&managed(""));
}

#[test]
fn bad_pool_names() {
    assert_error(
        &format!("[pools.\"a b\"]\n{B}\n"),
        "pools.\"a b\"",
        "bad pool name",
    );
}

#[test]
fn backend_checks() {
    assert_error(
        &pool("backends = [\"127.0.0.1\"]"),
        "pools.api.backends[0]",
        "expected an address like \"127.0.0.1:8001\"",
    );
    assert_error(
        &pool("backends = [\"no-such-host.invalid:80\"]"),
        "pools.api.backends[0]",
        "cannot resolve",
    );
    assert_error(
        &pool("backends = [{ address = \"127.0.0.1:1\", weight = 0 }]"),
        "pools.api.backends[0].weight",
        "must be at least 1, got 0",
    );
    assert_error(
        &pool("backends = [{ weight = 2 }]"),
        "pools.api.backends[0].address",
        "required",
    );
    assert_error(
        &pool("backends = [\"127.0.0.1:1\", \"127.0.0.1:1\"]"),
        "pools.api.backends[1]",
        "duplicate backend 127.0.0.1:1",
    );
    assert_error(
        &pool("backends = [\"127.0.0.1:0\"]"),
        "pools.api.backends[0]",
        "port 0",
    );
    assert_error(
        &pool("backends = [5]"),
        "pools.api.backends[0]",
        "expected \"host:port\" or { address",
    );
    let c = load(&pool(
        "backends = [\"localhost:8001\", { address = \"[::1]:8002\", weight = 3 }]",
    ));
    let b = &c.pools["api"].backends;
    assert_eq!(b[0].address.to_string(), "127.0.0.1:8001");
    assert_eq!(
        (b[1].address.to_string().as_str(), b[1].weight),
        ("[::1]:8002", 3)
    );
}

#[test]
fn balance_and_hash_key() {
    assert_error(
        &pool(&format!("{B}\nbalance = \"roundrobin\"")),
        "pools.api.balance",
        "unknown \"roundrobin\"; expected one of round_robin, weighted_round_robin, least_conn, random, p2c_ewma, hash",
    );
    assert_error(
        &pool(&format!(
            "{B}\nbalance = \"least_conn\"\nhash_key = \"path\""
        )),
        "pools.api.hash_key",
        "only used with balance = \"hash\"",
    );
    assert_error(
        &pool(&format!("{B}\nhash_key = \"path\"")),
        "pools.api.hash_key",
        "default \"round_robin\"",
    );
    assert_error(
        &pool(&format!("{B}\nbalance = \"hash\"\nhash_key = \"ip\"")),
        "pools.api.hash_key",
        "expected one of client_ip, header:NAME, cookie:NAME, path",
    );
    for (s, b) in Balance::TABLE {
        assert_eq!(
            load(&pool(&format!("{B}\nbalance = \"{s}\""))).pools["api"].balance,
            *b
        );
        assert_eq!(b.as_str(), *s);
    }
    let c = load(&pool(&format!(
        "{B}\nbalance = \"hash\"\nhash_key = \"cookie:sid\""
    )));
    assert_eq!(c.pools["api"].hash_key, HashKey::Cookie("sid".into()));
}

#[test]
fn upstream_idle_timeout_is_read() {
    let c = load(&pool(&format!("{B}\nupstream_idle_timeout = \"1500ms\"")));
    assert_eq!(
        c.pools["api"].upstream_idle_timeout,
        Duration::from_millis(1500)
    );
}

#[test]
fn zero_timeouts_are_refused_where_meaningless() {
    for key in [
        "connect_timeout",
        "request_timeout",
        "upstream_idle_timeout",
    ] {
        assert_error(
            &pool(&format!("{B}\n{key} = \"0s\"")),
            &format!("pools.api.{key}"),
            "must be greater than 0s",
        );
    }
    for key in ["interval", "timeout"] {
        assert_error(
            &pool(&format!("{B}\n[pools.api.health]\n{key} = \"0ms\"")),
            &format!("pools.api.health.{key}"),
            "greater than 0s",
        );
    }
    assert_error(
        &pool(&format!("{B}\n[pools.api.passive]\neject_for = \"0s\"")),
        "pools.api.passive.eject_for",
        "greater than 0s",
    );
    for key in [
        "header_read_timeout",
        "idle_timeout",
        "tunnel_idle_timeout",
        "body_read_timeout",
    ] {
        assert_error(
            &format!("[server]\n{key} = \"0s\"\n{}", pool(B)),
            &format!("server.{key}"),
            "greater than 0s",
        );
    }
    assert_error(
        &format!("{}{}", pool(""), managed("start_timeout = \"0s\"")),
        "pools.api.instances.start_timeout",
        "greater than 0s",
    );
    // zero is fine where it means "none"
    load(&pool(&format!(
        "{B}\nqueue_timeout = \"0s\"\nretries = 0\n[pools.api.passive]\nconsecutive_failures = 1"
    )));
}

#[test]
fn health_checks() {
    let h = |body: &str| pool(&format!("{B}\n[pools.api.health]\n{body}"));
    assert_error(
        &h("path = \"/h\"\nrise = 0"),
        "pools.api.health.rise",
        "must be at least 1, got 0",
    );
    assert_error(
        &h("path = \"/h\"\nfall = 0"),
        "pools.api.health.fall",
        "must be at least 1",
    );
    assert_error(
        &h("path = \"/h\"\nexpect_status = \"2xx\""),
        "pools.api.health.expect_status",
        "expected status codes like \"200-399\"",
    );
    assert_error(
        &h("path = \"/h\"\nexpect_status = \"399-200\""),
        "pools.api.health.expect_status",
        "backwards",
    );
    assert_error(
        &h("path = \"health\""),
        "pools.api.health.path",
        "must start with \"/\"",
    );
    assert_error(
        &h("initial_state = \"up\""),
        "pools.api.health.initial_state",
        "expected one of healthy, unhealthy",
    );
    assert_error(
        &h("path = \"/h\"\nheaders = { \"Bad Name\" = \"x\" }"),
        "pools.api.health.headers",
        "not a valid header name",
    );
    assert_error(
        &h("expect_status = \"200\""),
        "pools.api.health.expect_status",
        "only used by HTTP checks",
    );
    let c = load(&h(
        "path = \"/h\"\nexpect_status = 204\ninitial_state = \"healthy\"",
    ));
    let hc = c.pools["api"].health.clone().unwrap();
    assert_eq!(hc.expect_status.0, vec![(204, 204)]);
    assert!(hc.initial_healthy);
}

#[test]
fn server_checks() {
    assert_error(
        &format!("[server]\nlisten = []\n{}", pool(B)),
        "server.listen",
        "at least one address",
    );
    assert_error(
        &format!("[server]\nlisten = [\"8080\"]\n{}", pool(B)),
        "server.listen",
        "item 0: expected an address",
    );
    assert_error(
        &format!("[server]\nmax_header_bytes = 8191\n{}", pool(B)),
        "server.max_header_bytes",
        "must be at least 8192",
    );
    assert_error(
        &format!("[server]\nthreads = -2\n{}", pool(B)),
        "server.threads",
        ">= 0",
    );
    assert_error(
        &format!("[server.tls]\nlisten = [\"127.0.0.1:8443\"]\n{}", pool(B)),
        "server.tls.certs",
        "required",
    );
    assert_error(
        &format!("[server.tls]\ncerts = []\n{}", pool(B)),
        "server.tls.listen",
        "required",
    );
    let c = load(&format!(
        "[server]\nlisten = \"0.0.0.0:80\"\nmax_header_bytes = 8192\nthreads = 4\n{}",
        pool(B)
    ));
    assert_eq!(c.server.listen[0].to_string(), "0.0.0.0:80");
    assert_eq!((c.server.max_header_bytes, c.server.threads), (8192, 4));
}

#[test]
fn connection_limit_and_tunnel_idle_timeout() {
    assert_error(
        &format!("[server]\nmax_connections = -1\n{}", pool(B)),
        "server.max_connections",
        ">= 0",
    );
    assert_error(
        &format!("[server]\ntunnel_idle_timeout = \"soon\"\n{}", pool(B)),
        "server.tunnel_idle_timeout",
        "duration",
    );
    let c = load(&format!(
        "[server]\nmax_connections = 500\ntunnel_idle_timeout = \"90s\"\n{}",
        pool(B)
    ));
    assert_eq!(c.server.max_connections, 500);
    assert_eq!(
        c.server.tunnel_idle_timeout,
        std::time::Duration::from_secs(90)
    );
}

#[test]
fn admin_token_required_off_loopback() {
    let src = format!("[admin]\nlisten = \"0.0.0.0:9090\"\n{}", pool(B));
    assert_error(
        &src,
        "admin.token",
        "required when admin.listen is not a loopback address",
    );
    let errs = errors(&src);
    assert_eq!((errs[0].line, errs[0].column), (Some(2), Some(10)));
    load(&format!("[admin]\nlisten = \"[::1]:9090\"\n{}", pool(B)));
    let c = load(&format!(
        "[admin]\nlisten = \"0.0.0.0:9090\"\ntoken = \"abc\"\n{}",
        pool(B)
    ));
    assert_eq!(c.admin.token.as_deref(), Some("abc"));
    assert_error(
        &format!("[admin]\ntoken = \"\"\n{}", pool(B)),
        "admin.token",
        "must not be empty",
    );
}

#[test]
fn admin_hardening_keys() {
    let c = load(&pool(B));
    assert_eq!(c.admin, AdminConfig::default());
    assert_eq!(
        (
            c.admin.header_read_timeout,
            c.admin.idle_timeout,
            c.admin.max_connections
        ),
        (Duration::from_secs(10), Duration::from_secs(60), 64)
    );
    let c = load(&format!(
        "[admin]\nallowed_hosts = [\"Admin.Example\", \"::1\", \"*\"]\nheader_read_timeout = \"2s\"\nidle_timeout = \"5s\"\nmax_connections = 3\n{}",
        pool(B)
    ));
    assert_eq!(c.admin.allowed_hosts, ["admin.example", "::1", "*"]);
    assert_eq!(
        (
            c.admin.header_read_timeout,
            c.admin.idle_timeout,
            c.admin.max_connections
        ),
        (Duration::from_secs(2), Duration::from_secs(5), 3)
    );
    let with = |kv: &str| format!("[admin]\n{kv}\n{}", pool(B));
    assert_error(
        &with("allowed_hosts = [\"a.example:80\"]"),
        "admin.allowed_hosts",
        "item 0: \"a.example:80\" is not a host name or IP without port",
    );
    assert_error(
        &with("allowed_hosts = \"a\""),
        "admin.allowed_hosts",
        "expected a list",
    );
    assert_error(&with("max_connections = 0"), "admin.max_connections", "");
    assert_error(&with("idle_timeout = \"0s\""), "admin.idle_timeout", "");
    assert_error(
        &with("header_read_timeout = 5"),
        "admin.header_read_timeout",
        "",
    );
}

#[test]
fn provider_required_keys() {
    let inst = |body: &str| format!("[pools.api.instances]\n{body}\n");
    assert_error(
        &inst("count = 1"),
        "pools.api.instances.provider",
        "required",
    );
    assert_error(
        &inst("provider = \"podman\""),
        "pools.api.instances.provider",
        "expected one of process, docker, docker_labels, swarm",
    );
    assert_error(
        &inst("provider = \"process\""),
        "pools.api.instances.command",
        "required for provider \"process\"",
    );
    assert_error(
        &inst("provider = \"process\"\ncommand = []"),
        "pools.api.instances.command",
        "must not be empty",
    );
    assert_error(
        &inst("provider = \"docker\"\ncontainer_port = 80"),
        "pools.api.instances.image",
        "required for provider \"docker\"",
    );
    assert_error(
        &inst("provider = \"docker\"\nimage = \"x\""),
        "pools.api.instances.container_port",
        "required for provider \"docker\"",
    );
    assert_error(
        &inst("provider = \"docker\"\nimage = \"x\"\ncontainer_port = 0"),
        "pools.api.instances.container_port",
        "at least 1",
    );
    assert_error(
        &inst("provider = \"swarm\""),
        "pools.api.instances.service",
        "required for provider \"swarm\"",
    );
    assert_error(
        &inst("provider = \"process\"\ncommand = [\"x\"]\nimage = \"y\""),
        "pools.api.instances.image",
        "not used with provider \"process\" (only with docker)",
    );
    assert_error(
        &inst("provider = \"docker\"\nimage = \"x\"\ncontainer_port = 80\nmemory = \"lots\""),
        "pools.api.instances.memory",
        "expected a size like \"256m\"",
    );
    assert_error(
        &inst("provider = \"docker\"\nimage = \"x\"\ncontainer_port = 80\ncpus = 0"),
        "pools.api.instances.cpus",
        "greater than 0",
    );
    let c = load(&inst("provider = \"docker_labels\""));
    assert_eq!(
        c.pools["api"].instances.as_ref().unwrap().provider,
        ProviderKind::DockerLabels
    );
    let c = load(&inst("provider = \"docker_labels\"\nowner = \"team-a\""));
    assert_eq!(
        c.pools["api"].instances.as_ref().unwrap().owner.as_deref(),
        Some("team-a")
    );
    assert_error(
        &inst("provider = \"process\"\ncommand = [\"x\"]\nowner = \"team-a\""),
        "pools.api.instances.owner",
        "only with docker_labels",
    );
    let c = load(&inst("provider = \"swarm\"\nservice = \"web\"\ncount = 3"));
    let i = c.pools["api"].instances.clone().unwrap();
    assert_eq!((i.service.as_deref(), i.count), (Some("web"), 3));
}

#[test]
fn autoscale_checks() {
    assert_error(
        &pool(&format!("{B}\n[pools.api.autoscale]\nmax = 3")),
        "pools.api.autoscale",
        "needs a [pools.api.instances] section",
    );
    assert_error(
        "[pools.api.instances]\nprovider = \"docker_labels\"\n[pools.api.autoscale]\n",
        "pools.api.autoscale",
        "drover does not start or stop docker_labels containers; remove [autoscale] or use provider = \"docker\"",
    );
    let a = |body: &str| format!("{}[pools.api.autoscale]\n{body}\n", managed(""));
    assert_error(
        &a("min = 5\nmax = 2"),
        "pools.api.autoscale.min",
        "min (5) is greater than max (2)",
    );
    assert_error(
        &a("min = 11"),
        "pools.api.autoscale.min",
        "greater than max (10)",
    );
    assert_error(&a("max = 0"), "pools.api.autoscale.max", "at least 1");
    assert_error(
        &a("target_inflight = 10\ntarget_rps = 100"),
        "pools.api.autoscale.target_rps",
        "not both",
    );
    assert_error(
        &a("target_rps = 0"),
        "pools.api.autoscale.target_rps",
        "greater than 0",
    );
    assert_error(
        &a("interval = \"0s\""),
        "pools.api.autoscale.interval",
        "greater than 0s",
    );
    let c = load(&a(
        "min = 0\nmax = 4\ntarget_rps = 50.5\nidle_timeout = \"90s\"",
    ));
    let s = c.pools["api"].autoscale.clone().unwrap();
    assert_eq!((s.min, s.max, s.target_rps), (0, 4, Some(50.5)));
    assert_eq!(s.idle_timeout, std::time::Duration::from_secs(90));
}

#[test]
fn rule_checks() {
    let r = |body: &str| {
        format!(
            "{}[pools.api.autoscale]\n[[pools.api.autoscale.rules]]\n{body}\n",
            managed("")
        )
    };
    let key = "pools.api.autoscale.rules[0]";
    assert_error(
        &r("metric = \"error_rate\"\nadd = 1"),
        key,
        "needs a threshold: above = N or below = N",
    );
    assert_error(
        &r("metric = \"error_rate\"\nabove = 1\nbelow = 0\nadd = 1"),
        &format!("{key}.below"),
        "not both",
    );
    assert_error(
        &r("metric = \"error_rate\"\nabove = 1"),
        key,
        "needs an action: add = N, remove = N or factor = X",
    );
    assert_error(
        &r("metric = \"error_rate\"\nabove = 1\nadd = 1\nfactor = 2"),
        &format!("{key}.factor"),
        "give one of add, remove, factor",
    );
    assert_error(&r("metric = \"latency\"\nabove = 1\nadd = 1"), &format!("{key}.metric"), "expected one of inflight_per_instance, rps_per_instance, p95_latency_ms, error_rate, cpu_percent");
    assert_error(
        &r("above = 1\nadd = 1"),
        &format!("{key}.metric"),
        "required",
    );
    assert_error(
        &r("metric = \"cpu_percent\"\nabove = 80\nadd = 0"),
        &format!("{key}.add"),
        "at least 1",
    );
    assert_error(
        &r("metric = \"cpu_percent\"\nabove = 80\nfor = \"soon\"\nadd = 1"),
        &format!("{key}.for"),
        "expected a duration",
    );
    let c = load(&r(
        "metric = \"rps_per_instance\"\nabove = 80\nfactor = 1.5",
    ));
    let rule = &c.pools["api"].autoscale.as_ref().unwrap().rules[0];
    assert_eq!(rule.action, ScaleAction::Factor(1.5));
    assert_eq!(rule.for_, std::time::Duration::ZERO);
}

#[test]
fn several_errors_in_one_pool_are_all_reported() {
    let src = "[pools.api]\nbalance = \"least_conn\"\nhash_key = \"path\"\nretries = \"x\"\nbackends = [\"bad\", \"127.0.0.1:1\"]\n[pools.api.health]\nrise = 0\nfall = 0\n";
    let keys: Vec<String> = errors(src).into_iter().map(|e| e.key).collect();
    assert_eq!(
        keys,
        [
            "pools.api.hash_key",
            "pools.api.retries",
            "pools.api.backends[0]",
            "pools.api.health.rise",
            "pools.api.health.fall"
        ]
    );
}

#[test]
fn top_level_name_is_read_and_defaults_to_none() {
    let src = "[pools.a]\nbackends=[\"127.0.0.1:1\"]";
    assert_eq!(load(src).name, None);
    let c = load(&format!("name = \"shop-prod.v2_a\"\n{src}"));
    assert_eq!(c.name.as_deref(), Some("shop-prod.v2_a"));
}

#[test]
fn a_name_that_cannot_be_a_label_or_file_name_is_refused_with_its_position() {
    let long = "a".repeat(64);
    for bad in [
        "\"\"",
        "\"-x\"",
        "\".hidden\"",
        "\"a b\"",
        "\"a/b\"",
        "\"é\"",
        "5",
    ] {
        assert_error(
            &format!("name = {bad}\n[pools.a]\nbackends=[\"127.0.0.1:1\"]"),
            "name",
            "expected a",
        );
    }
    let errs = errors(&format!(
        "\nname = \"{long}\"\n[pools.a]\nbackends=[\"127.0.0.1:1\"]"
    ));
    let e = errs
        .iter()
        .find(|e| e.key == "name")
        .expect("an error at name");
    assert_eq!((e.line, e.column), (Some(2), Some(8)));
    assert!(e.message.contains("1 to 63"), "{}", e.message);
}
