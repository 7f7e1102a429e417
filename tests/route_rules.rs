//! End to end: the rules a route may carry (rate limits, header rules,
//! redirects, rewrites, method and header matching, per-route timeout and
//! retries) and the `[server]` keys `https_redirect` and
//! `max_connections_per_client`, over real sockets against `drover backend`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{client, curl, get_text, reload, write_cert, Backend, Drover};

const HEAD: &str = r#"
[server]
listen = ["127.0.0.1:0"]
[admin]
listen = "127.0.0.1:0"
[log]
access = false
"#;

async fn get(
    d: &Drover,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let mut req = client().get(d.url(path)).header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let (status, h) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, h, v)
}

fn rules_config(a: &Backend, b: &Backend) -> String {
    format!(
        r#"{HEAD}
[[routes]]
name = "old"
host = "old.example"
redirect = {{ to = "https://new.example{{uri}}", status = 301 }}
[[routes]]
name = "mirror"
host = "*.mirror.example"
redirect = {{ to = "{{scheme}}://{{host}}:9{{path}}" }}
[[routes]]
name = "posts"
path_prefix = "/api"
methods = ["POST"]
pool = "b"
[[routes]]
name = "canary"
path_prefix = "/api"
headers = {{ X-Env = "canary" }}
pool = "b"
[[routes]]
name = "api"
path_prefix = "/api"
rewrite_prefix = "/v2"
pool = "a"
request_headers = {{ set = {{ X-Client = "${{client_ip}}", X-Seen-Host = "${{host}}" }}, add = {{ X-Tag = "drover" }}, remove = ["X-Secret"] }}
response_headers = {{ set = {{ X-Req = "id ${{request_id}}" }}, remove = ["X-Backend-Name"] }}
[[routes]]
name = "slow"
path_prefix = "/delay"
request_timeout = "300ms"
pool = "a"
[[routes]]
pool = "a"
[pools.a]
backends = ["{}"]
[pools.b]
backends = ["{}"]
"#,
        a.addr, b.addr
    )
}

#[tokio::test]
async fn header_rules_rewrite_and_method_and_header_matching() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let d = Drover::start(&rules_config(&a, &b));
    let (s, h, v) = get(
        &d,
        "api.test:81",
        "/api/users?x=1",
        &[
            ("x-secret", "s"),
            ("x-client", "spoofed"),
            ("x-tag", "client"),
            ("x-request-id", "rid-1"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "a");
    assert_eq!(v["path"], "/v2/users", "rewrite_prefix");
    assert_eq!(v["query"], "x=1");
    let hdr = &v["headers"];
    assert_eq!(
        hdr["x-client"], "127.0.0.1",
        "set replaces the client's value"
    );
    assert_eq!(hdr["x-seen-host"], "api.test:81");
    assert_eq!(hdr["x-tag"], "client, drover", "add appends");
    assert!(hdr.get("x-secret").is_none(), "removed");
    assert_eq!(hdr["x-request-id"], "rid-1");
    assert_eq!(h["x-req"], "id rid-1", "response rule with the request id");
    assert!(h.get("x-backend-name").is_none(), "response rule removes");
    // Methods: POST /api goes to the "posts" route (pool b, no rewrite).
    let r = client()
        .post(d.url("/api/x"))
        .body("hi")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (v["name"].as_str(), v["path"].as_str()),
        (Some("b"), Some("/api/x"))
    );
    // Headers: an exact X-Env: canary goes to b; another value does not.
    let (_, _, v) = get(&d, "x", "/api/x", &[("x-env", "canary")]).await;
    assert_eq!(v["name"], "b");
    let (_, _, v) = get(&d, "x", "/api/x", &[("x-env", "Canary")]).await;
    assert_eq!(v["name"], "a");
}

#[tokio::test]
async fn redirect_routes_answer_without_a_pool_and_refuse_hostile_hosts() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let d = Drover::start(&rules_config(&a, &b));
    let (s, h, _) = get(&d, "old.example", "//evil.example/p?q=1", &[]).await;
    assert_eq!(s, 301);
    assert_eq!(h["location"], "https://new.example/evil.example/p?q=1");
    assert!(h.get("x-request-id").is_some());
    let (s, h, _) = get(&d, "a.mirror.example:8080", "/x", &[]).await;
    assert_eq!(s, 308);
    assert_eq!(h["location"], "http://a.mirror.example:9/x");
    // A Host that is not a host name cannot be reflected into Location.
    let out = curl(&["-i", "-H", "Host: evil.test?a.mirror.example", &d.url("/x")]);
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(out.contains("x-drover-error: client"), "{out}");
    let out = curl(&["-i", "-H", "Host: x_y.mirror.example", &d.url("/x")]);
    assert!(out.starts_with("HTTP/1.1 308"), "{out}");
}

#[tokio::test]
async fn a_route_request_timeout_overrides_the_pool() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let d = Drover::start(&rules_config(&a, &b));
    let t0 = Instant::now();
    let (s, h, _) = get(&d, "x", "/delay/3000", &[]).await;
    assert_eq!(s, 504);
    assert_eq!(h["x-drover-error"], "timeout");
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t0.elapsed()
    );
    // The same backend through a route without the override answers.
    let (s, _, v) = get(&d, "x", "/status/200", &[]).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn a_route_retries_override_the_pool() {
    let live = Backend::start("live");
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cfg = format!(
        r#"{HEAD}
[[routes]]
path_prefix = "/once"
retries = 0
pool = "app"
[[routes]]
pool = "app"
[pools.app]
backends = ["{dead}", "{}"]
retries = 2
[pools.app.passive]
consecutive_failures = 100
"#,
        live.addr
    );
    let d = Drover::start(&cfg);
    let mut failed = 0;
    for _ in 0..4 {
        let (s, h, _) = get(&d, "x", "/once", &[]).await;
        if s == 502 {
            assert_eq!(h["x-drover-error"], "connect");
            failed += 1;
        }
    }
    assert_eq!(
        failed, 2,
        "round robin over a dead and a live member, not retried"
    );
    for _ in 0..4 {
        let (s, _, _) = get(&d, "x", "/again", &[]).await;
        assert_eq!(s, 200, "the pool's retries apply elsewhere");
    }
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_and_ratelimit_headers() {
    let b = Backend::start("b");
    let head = HEAD.replace("access = false", "access = true");
    let cfg = format!(
        r#"{head}
[[routes]]
name = "limited"
path_prefix = "/limited"
rate_limit = {{ requests = 1, per = "1h", burst = 3 }}
pool = "app"
[[routes]]
name = "per-user"
path_prefix = "/user"
rate_limit = {{ requests = 1, per = "1h", burst = 2, key = "header:X-User" }}
pool = "app"
[[routes]]
name = "fast"
path_prefix = "/fast"
rate_limit = {{ requests = 4, per = "1s", burst = 1, key = "route" }}
pool = "app"
[pools.app]
backends = ["{}"]
"#,
        b.addr
    );
    let d = Drover::start(&cfg);
    for _ in 0..3 {
        assert_eq!(get(&d, "x", "/limited", &[]).await.0, 200);
    }
    let (s, h, body) = get(&d, "x", "/limited", &[]).await;
    assert_eq!(s, 429, "{body}");
    assert_eq!(h["x-drover-error"], "limit");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&retry), "{retry}");
    assert_eq!(h["ratelimit-limit"], "3");
    assert_eq!(h["ratelimit-remaining"], "0");
    let reset: u64 = h["ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert!((10790..=10800).contains(&reset), "{reset}");
    assert!(body
        .as_str()
        .unwrap()
        .contains("rate limit of route limited"));

    // A reload that leaves the route's limit as it was keeps its state; a
    // changed limit starts afresh.
    let reload = || async {
        let r = reload(&d).await;
        assert_eq!(r.status(), 200);
    };
    reload().await;
    assert_eq!(
        get(&d, "x", "/limited", &[]).await.0,
        429,
        "kept across a reload"
    );
    let cfg2 = std::fs::read_to_string(&d.config_path).unwrap();
    std::fs::write(&d.config_path, cfg2.replace("burst = 3 }", "burst = 4 }")).unwrap();
    reload().await;
    assert_eq!(
        get(&d, "x", "/limited", &[]).await.0,
        200,
        "a new limit starts afresh"
    );
    std::fs::write(&d.config_path, &cfg2).unwrap();
    reload().await;
    assert_eq!(get(&d, "x", "/limited", &[]).await.0, 200);

    // Per header value.
    for _ in 0..2 {
        assert_eq!(get(&d, "x", "/user", &[("x-user", "a")]).await.0, 200);
    }
    assert_eq!(get(&d, "x", "/user", &[("x-user", "a")]).await.0, 429);
    assert_eq!(get(&d, "x", "/user", &[("x-user", "b")]).await.0, 200);

    // One allowance for the whole route, back after 250 ms.
    assert_eq!(get(&d, "x", "/fast", &[]).await.0, 200);
    let (s, h, _) = get(&d, "x", "/fast", &[]).await;
    assert_eq!((s, h["retry-after"].to_str().unwrap()), (429, "1"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if get(&d, "x", "/fast", &[]).await.0 == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the route allowance never came back"
        );
    }

    let metrics = get_text(&d.admin_url("/metrics")).await;
    assert!(
        metrics.contains("drover_rate_limited_total{route=\"limited\"} 2\n"),
        "{metrics}"
    );
    assert!(metrics.contains("drover_rate_limited_total{route=\"per-user\"} 1\n"));
    assert!(metrics.contains("drover_proxy_errors_total{pool=\"app\",cause=\"limit\"}"));
    // The access log says why.
    d.proc
        .stdout
        .wait_for("a 429 access-log line", Duration::from_secs(10), |l| {
            serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|v| v["status"] == 429 && v["error"] == "limit" && v["pool"] == "app")
        });
    // The admin API lists the routes with their counters.
    let routes: serde_json::Value =
        serde_json::from_str(&get_text(&d.admin_url("/api/v1/routes")).await).unwrap();
    assert_eq!(routes[0]["name"], "limited");
    assert_eq!(routes[0]["rate_limited"], 2, "counted across reloads");
    assert_eq!(routes[0]["tracked_keys"], 1);
    assert_eq!(routes[0]["rate_limit"]["burst"], 3);
    assert_eq!(routes[2]["rate_limit"]["key"], "route");
    // And `drover ctl routes` prints them.
    let admin = d.admin_url("");
    let out = std::process::Command::new(common::BIN)
        .args(["ctl", "--admin", &admin, "routes"])
        .env_remove("DROVER_ADMIN")
        .env_remove("DROVER_ADMIN_TOKEN")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = text.lines().find(|l| l.starts_with("limited ")).unwrap();
    assert!(line.contains("1/3600000ms burst 3 by client_ip"), "{text}");
    assert!(text.lines().next().unwrap().starts_with("NAME"), "{text}");
}

/// Reads until EOF or `limit`; `true` when the peer closed without sending anything.
fn closed_at_once(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

#[tokio::test]
async fn https_redirect_and_max_connections_per_client() {
    let b = Backend::start("b");
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = write_cert(certs.path(), "localhost");
    let cfg = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
https_redirect = true
max_connections_per_client = 2
[server.tls]
listen = ["127.0.0.1:0"]
certs = [{{ cert = "{cert}", key = "{key}" }}]
[admin]
listen = "127.0.0.1:0"
[log]
access = false
[pools.app]
backends = ["{}"]
"#,
        b.addr
    );
    let d = Drover::start(&cfg);
    let tls_port = d.proc.stderr.addr_of("tls listening").port();
    let (s, h, _) = get(&d, "shop.example:80", "/cart?id=3", &[]).await;
    assert_eq!(s, 308);
    assert_eq!(
        h["location"].to_str().unwrap(),
        format!("https://shop.example:{tls_port}/cart?id=3")
    );
    // The TLS listener forwards.
    let out = curl(&["-k", &format!("https://127.0.0.1:{tls_port}/secure")]);
    assert!(out.contains("\"path\":\"/secure\""), "{out}");

    // The reqwest client of the first request is dropped, but its connection
    // task runs on this test's runtime: let it close before blocking below.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Two connections from 127.0.0.1 are served; a third is closed at once.
    // Each of the two is served before the next is opened (the connections
    // of the requests above may take a moment to be counted as closed, and
    // workers accept in any order).
    let served = |deadline: Instant| loop {
        let mut c = TcpStream::connect(d.proxy).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = c.write_all(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
        let mut buf = [0u8; 12];
        if c.read_exact(&mut buf).is_ok() {
            assert_eq!(&buf, b"HTTP/1.1 308");
            return c;
        }
        assert!(Instant::now() < deadline, "no connection served");
        std::thread::sleep(Duration::from_millis(100));
    };
    let one = served(Instant::now() + Duration::from_secs(10));
    let two = served(Instant::now() + Duration::from_secs(10));
    let mut third = TcpStream::connect(d.proxy).unwrap();
    assert!(closed_at_once(&mut third, Duration::from_secs(10)));
    // Once one closes, a new connection is served again.
    drop(two);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = TcpStream::connect(d.proxy).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = c.write_all(b"GET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        if got.starts_with(b"HTTP/1.1 308") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no connection served after one closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(one);
}

#[test]
fn check_reports_every_bad_route_key_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = r#"[server]
https_redirect = true
max_connections_per_client = -1

[[routes]]
name = "a b"
methods = ["get"]
headers = { "X Env" = "x" }
pool = "api"
rate_limit = { requests = 0, per = "1s", key = "cookie:x" }
request_headers = { set = { Connection = "close" }, remove = ["Content-Length"] }
response_headers = { add = { X-A = "${host}\u0001" } }
rewrite_prefix = "v2"
request_timeout = "soon"
retries = "two"

[[routes]]
redirect = { to = "https://{hots}", status = 200 }
pool = "api"

[pools.api]
backends = ["127.0.0.1:8001"]
"#;
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["check", "-c", "bad.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for want in [
        "bad.toml:2:18: server.https_redirect: needs a [server.tls] listener",
        "bad.toml:3:30: server.max_connections_per_client",
        "bad.toml:6:8: routes[0].name",
        "bad.toml:7:11: routes[0].methods: item 0: methods are case-sensitive; write \"GET\"",
        "bad.toml:8:11: routes[0].headers: \"X Env\" is not a valid header name",
        "bad.toml:10:27: routes[0].rate_limit.requests: must be at least 1",
        "bad.toml:10:48: routes[0].rate_limit.key",
        "bad.toml:11:27: routes[0].request_headers.set: \"connection\" is a hop-by-hop",
        "bad.toml:11:62: routes[0].request_headers.remove",
        "bad.toml:12:28: routes[0].response_headers.add",
        "bad.toml:13:18: routes[0].rewrite_prefix",
        "bad.toml:14:19: routes[0].request_timeout",
        "bad.toml:15:11: routes[0].retries",
        "bad.toml:18:19: routes[1].redirect.to: unknown placeholder \"{hots}\"",
        "bad.toml:18:46: routes[1].redirect.status",
        "bad.toml:19:8: routes[1].pool: has no effect on a route with redirect",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}
