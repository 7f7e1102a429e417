//! End to end, issue 12 finding 7: the admin API refuses cross-site writes and
//! foreign `Host`s, takes `?token=` only for the dashboard page, answers the
//! probes without the token, bounds its connections, and a reload cannot open
//! a non-loopback listener by dropping the token.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{client, get_json, one_pool, pool_json, Backend, Drover, BIN};
use serde_json::{json, Value};

/// Sends `head` (CRLF line ends added, `Connection: close`) and returns the
/// status code and body of the answer.
fn raw(addr: SocketAddr, lines: &[&str]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!("{}\r\nConnection: close\r\n\r\n", lines.join("\r\n"));
    s.write_all(head.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {out:?}"));
    let body = out.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    (status, body)
}

fn with_admin(cfg: &str, keys: &str) -> String {
    cfg.replace("[admin]\n", &format!("[admin]\n{keys}\n"))
}

async fn members(d: &Drover) -> usize {
    let v = pool_json(d, "app").await;
    v["backends"].as_array().unwrap().len()
}

#[tokio::test]
async fn cross_site_writes_and_foreign_hosts_are_refused() {
    let a = Backend::start("a");
    let d = Drover::start(&one_pool(&[a.addr], ""));
    let c = client();
    let add = |ct: &'static str, origin: Option<String>, address: &str| {
        let mut r = c
            .post(d.admin_url("/api/v1/pools/app/backends"))
            .header("content-type", ct)
            .body(json!({ "address": address }).to_string());
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    // The attack of the finding: a page elsewhere posts text/plain (no preflight).
    let evil = Some("http://evil.example".to_string());
    let r = add("text/plain", evil.clone(), "127.0.0.1:1")
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "foreign Origin");
    let r = add("application/json", evil, "127.0.0.1:1").await.unwrap();
    assert_eq!(r.status(), 403, "foreign Origin, even with JSON");
    let other_port = Some(format!("http://127.0.0.1:{}", d.admin.port() + 1));
    let r = add("application/json", other_port, "127.0.0.1:1")
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "another local origin");
    let r = add("text/plain", None, "127.0.0.1:1").await.unwrap();
    assert_eq!(r.status(), 415, "text/plain without Origin");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "writes need Content-Type: application/json");
    assert_eq!(members(&d).await, 1, "nothing refused was added");
    // The admin page's own origin with JSON is fine.
    let own = Some(format!("http://{}", d.admin));
    let r = add("application/json; charset=utf-8", own, "127.0.0.1:2")
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(members(&d).await, 2);

    // Bodiless writes need the JSON type too (a browser sends them as simple requests).
    let reload = |ct: Option<&'static str>| {
        let mut r = c.post(d.admin_url("/api/v1/reload"));
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r.send()
    };
    assert_eq!(reload(None).await.unwrap().status(), 415);
    assert_eq!(reload(Some("text/plain")).await.unwrap().status(), 415);
    assert_eq!(
        reload(Some("application/json")).await.unwrap().status(),
        200
    );

    // DNS rebinding: a name that is not the admin API's is refused, reads too.
    let port = d.admin.port();
    for (host, want) in [
        (format!("evil.example:{port}"), 421),
        (format!("localhost.evil.example:{port}"), 421),
        ("[".to_string(), 421),
        (format!("localhost:{port}"), 200),
        (format!("127.0.0.1:{port}"), 200),
        (format!("[::1]:{port}"), 200),
    ] {
        let (status, body) = raw(
            d.admin,
            &["GET /api/v1/pools HTTP/1.1", &format!("Host: {host}")],
        );
        assert_eq!(status, want, "Host {host}: {body}");
    }
    let (status, body) = raw(d.admin, &["GET /api/v1/pools HTTP/1.1"]);
    assert_eq!(status, 421, "no Host at all: {body}");
    // The probes answer whatever the Host.
    let (status, _) = raw(d.admin, &["GET /healthz HTTP/1.1", "Host: evil.example:1"]);
    assert_eq!(status, 200);

    // admin.allowed_hosts lets a name through.
    let d2 = Drover::start(&with_admin(
        &one_pool(&[a.addr], ""),
        "allowed_hosts = [\"admin.example\"]",
    ));
    let (status, _) = raw(
        d2.admin,
        &["GET /api/v1/pools HTTP/1.1", "Host: Admin.Example:9"],
    );
    assert_eq!(status, 200);
    let (status, _) = raw(
        d2.admin,
        &["GET /api/v1/pools HTTP/1.1", "Host: other.example"],
    );
    assert_eq!(status, 421);
}

#[tokio::test]
async fn the_query_token_opens_only_the_dashboard_and_probes_need_none() {
    let a = Backend::start("a");
    let d = Drover::start(&with_admin(&one_pool(&[a.addr], ""), "token = \"tok\""));
    let c = client();
    let status = |path: &str, bearer: Option<&str>| {
        let mut r = c.get(d.admin_url(path));
        if let Some(t) = bearer {
            r = r.bearer_auth(t);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    for path in [
        "/api/v1/pools",
        "/api/v1/events",
        "/api/v1/openapi.json",
        "/metrics",
    ] {
        assert_eq!(
            status(&format!("{path}?token=tok"), None).await,
            401,
            "{path}"
        );
        assert_eq!(status(path, Some("tok")).await, 200, "{path}");
    }
    let r = c
        .post(d.admin_url("/api/v1/reload?token=tok"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a write with ?token=");
    let e: Value = r.json().await.unwrap();
    assert!(e["detail"]
        .as_str()
        .unwrap()
        .contains("Authorization: Bearer"));
    assert_eq!(status("/?token=tok", None).await, 200, "the dashboard page");
    assert_eq!(status("/", Some("tok")).await, 200);
    assert_eq!(status("/", None).await, 401);
    assert_eq!(status("/?token=nope", None).await, 401);
    // Probes: no token needed; everything else still needs it.
    assert_eq!(status("/healthz", None).await, 200);
    assert_eq!(status("/readyz", None).await, 200);
    assert_eq!(status("/api/v1/pools", None).await, 401);
    assert_eq!(status("/api/v1/pools", Some("nope")).await, 401);
}

/// Reads until EOF or error; returns how long it took and what came.
fn read_until_closed(s: &mut TcpStream) -> (Duration, String) {
    let t = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (t.elapsed(), String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn the_admin_listener_closes_silent_and_idle_connections() {
    let a = Backend::start("a");
    let d = Drover::start(&with_admin(
        &one_pool(&[a.addr], ""),
        "header_read_timeout = \"3s\"\nidle_timeout = \"1s\"",
    ));
    let connect = || {
        let s = TcpStream::connect(d.admin).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s
    };
    // Nothing sent: closed after header_read_timeout.
    let mut silent = connect();
    let (took, got) = read_until_closed(&mut silent);
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(10),
        "silent connection closed after {took:?}"
    );
    assert!(!got.contains("200 OK"), "{got}");
    // A head that never ends: closed too (hyper's header timer).
    let mut partial = connect();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x")
        .unwrap();
    let (took, got) = read_until_closed(&mut partial);
    assert!(took < Duration::from_secs(10), "partial head kept {took:?}");
    assert!(!got.contains("200 OK"), "{got}");
    // Keep-alive after one answer: closed after idle_timeout (before the header timer).
    let mut idle = connect();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("200 OK"));
    let (took, rest) = read_until_closed(&mut idle);
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_millis(2500),
        "idle connection closed after {took:?} ({rest:?})"
    );
}

#[tokio::test]
async fn the_admin_listener_stops_accepting_at_max_connections() {
    let a = Backend::start("a");
    let d = Drover::start(&with_admin(
        &one_pool(&[a.addr], ""),
        "max_connections = 2\nheader_read_timeout = \"20s\"",
    ));
    let hold: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(d.admin).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // The third connection waits in the backlog: no answer while both slots are held.
    let mut third = TcpStream::connect(d.admin).unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 256];
    let early = third.read(&mut buf);
    assert!(
        early.is_err(),
        "answered beyond max_connections: {early:?} {:?}",
        String::from_utf8_lossy(&buf)
    );
    // A slot frees: it is served.
    drop(hold);
    third
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut out = String::new();
    third.read_to_string(&mut out).unwrap();
    assert!(out.contains("200 OK"), "{out}");
}

/// Runs `script` in a new user and network namespace (only its own loopback
/// exists, so a `0.0.0.0` listener is reachable from nowhere else).
fn in_private_network(script: &str, env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new("unshare")
        .args(["-rn", "sh", "-c", script])
        .envs(env.iter().copied())
        .output()
        .expect("unshare (util-linux) runs this test in a private network");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "namespace script failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn a_reload_cannot_drop_the_token_of_a_non_loopback_admin_listener() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("drover.toml");
    let open = with_admin(
        &one_pool(&["127.0.0.1:9".parse().unwrap()], ""),
        "token = \"tok\"",
    )
    .replace(
        "listen = \"127.0.0.1:0\"\n[log]",
        "listen = \"0.0.0.0:0\"\n[log]",
    );
    assert!(open.contains("0.0.0.0:0"), "{open}");
    // Valid on its own (loopback, no token), but the running listener is 0.0.0.0.
    let tokenless = one_pool(&["127.0.0.1:9".parse().unwrap()], "");
    std::fs::write(&cfg, &open).unwrap();
    std::fs::write(dir.path().join("tokenless.toml"), &tokenless).unwrap();
    let script = r#"
set -e
ip link set lo up
"$DROVER" --log-format json run -c "$DIR/drover.toml" 2>"$DIR/log" &
pid=$!
for i in $(seq 200); do grep -q '"admin listening"' "$DIR/log" && break; sleep 0.1; done
port=$(grep '"admin listening"' "$DIR/log" | grep -o '0\.0\.0\.0:[0-9]*' | head -1 | cut -d: -f2)
base="http://127.0.0.1:$port"
cp "$DIR/tokenless.toml" "$DIR/drover.toml"
echo "reload $(curl -sS -o "$DIR/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' -H 'Authorization: Bearer tok' "$base/api/v1/reload")"
echo "body $(cat "$DIR/body")"
echo "anonymous $(curl -sS -o /dev/null -w '%{http_code}' "$base/api/v1/pools")"
kill -HUP $pid
sleep 1
echo "after-sighup $(curl -sS -o /dev/null -w '%{http_code}' "$base/api/v1/pools")"
kill $pid
wait $pid || true
grep -c 'reload refused' "$DIR/log" | sed 's/^/refused-logged /'
"#;
    let out = in_private_network(
        script,
        &[("DROVER", BIN), ("DIR", dir.path().to_str().unwrap())],
    );
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .unwrap_or_else(|| panic!("no {k} in {out}"))
            .to_string()
    };
    assert_eq!(field("reload"), "400", "{out}");
    let body = field("body");
    assert!(
        body.contains("admin.token") && body.contains("not loopback"),
        "{body}"
    );
    assert_eq!(field("anonymous"), "401", "the token still holds: {out}");
    assert_eq!(field("after-sighup"), "401", "SIGHUP is refused too: {out}");
    assert_eq!(field("refused-logged"), "2", "{out}");
}

#[tokio::test]
async fn openapi_documents_the_guard_answers() {
    let a = Backend::start("a");
    let d = Drover::start(&one_pool(&[a.addr], ""));
    let doc = get_json(&d.admin_url("/api/v1/openapi.json")).await;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            let codes = op["responses"].as_object().unwrap();
            let probe = path == "/healthz" || path == "/readyz";
            assert_eq!(op["security"] == json!([]), probe, "{method} {path}");
            for code in ["401", "403", "421"] {
                assert_eq!(
                    codes.contains_key(code),
                    !probe,
                    "{code} on {method} {path}"
                );
            }
            let write = matches!(method.as_str(), "post" | "put" | "delete");
            assert_eq!(codes.contains_key("415"), write, "415 on {method} {path}");
        }
    }
}
