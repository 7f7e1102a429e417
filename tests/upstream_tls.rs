//! End to end: TLS to backends. Real `drover backend --tls-cert` processes
//! with certificates from a test CA (rcgen), drover in front of them, real
//! HTTP clients; verification, SNI / IP names, mTLS, skip-verify, health
//! checks over TLS and `drover check` on the TLS keys.

mod common;
mod health_support;
mod tls_support;

use std::path::Path;
use std::time::Duration;

use common::{client, get_json, pool_json, wait_until, Drover, BIN};
use tls_support::{pki, tls_backend, tls_backend_with};

/// One route per pool, `/NAME/...` → pool NAME (prefix stripped).
fn config(pools: &[(&str, String)]) -> String {
    let mut s = String::from(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[admin]\nlisten = \"127.0.0.1:0\"\n[log]\naccess = false\n",
    );
    for (name, _) in pools {
        s.push_str(&format!(
            "[[routes]]\npath_prefix = \"/{name}\"\nstrip_prefix = true\npool = \"{name}\"\n"
        ));
    }
    for (name, body) in pools {
        let retries = if body.contains("retries") {
            ""
        } else {
            "retries = 0\n"
        };
        s.push_str(&format!("[pools.{name}]\n{retries}{body}\n"));
    }
    s
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

async fn get(d: &Drover, p: &str) -> (u16, String) {
    let r = client().get(d.url(p)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn upstream_connects(d: &Drover) -> f64 {
    health_support::metric(d, "drover_upstream_connects_total ").await
}

#[tokio::test]
async fn verified_with_ca_file_by_host_name_and_by_ip_san_and_connections_are_reused() {
    let pki = pki();
    let named = tls_backend_with("named", &pki, &pki.by_name, false);
    let ip = tls_backend_with("ip", &pki, &pki.by_ip, false);
    let ca = path(&pki.ca);
    let d = Drover::start(&config(&[
        (
            "byname",
            format!(
                "backends = [\"https://localhost:{}\"]\nca_file = \"{ca}\"",
                named.addr.port()
            ),
        ),
        (
            "byip",
            format!(
                "backends = [\"{}\"]\ntls = true\nca_file = \"{ca}\"",
                ip.addr
            ),
        ),
        (
            "ipfornamed",
            format!(
                "backends = [\"{}\"]\ntls = true\nca_file = \"{ca}\"",
                named.addr
            ),
        ),
    ]));
    // The host name written in `backends` is verified (and sent as SNI).
    let (code, body) = get(&d, "/byname/hello?x=1").await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["name"], "named");
    assert_eq!(v["path"], "/hello");
    assert_eq!(v["version"], "HTTP/1.1");
    // An IP member is verified against the certificate's IP address SAN...
    let (code, body) = get(&d, "/byip/").await;
    assert_eq!(code, 200, "{body}");
    // ... and fails against a certificate without one.
    let (code, body) = get(&d, "/ipfornamed/").await;
    assert_eq!(code, 502, "{body}");
    assert!(body.contains("not valid for name \"127.0.0.1\""), "{body}");
    // Via on the response too (RFC 9110 §7.6.3), as on the request.
    let r = client().get(d.url("/byip/")).send().await.unwrap();
    assert_eq!(r.headers()["via"], "1.1 drover");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["via"], "1.1 drover");
    // Sequential requests reuse the pooled TLS connection.
    let before = upstream_connects(&d).await;
    for _ in 0..5 {
        assert_eq!(get(&d, "/byname/again").await.0, 200);
    }
    let after = upstream_connects(&d).await;
    assert!(
        after - before <= 1.0,
        "{before} -> {after} connections for 5 requests"
    );
}

#[tokio::test]
async fn wrong_name_and_unknown_ca_are_502_with_the_reason_and_blame_the_backend() {
    let pki = pki();
    let b = tls_backend("tls-b", &pki, false);
    // A second member: passive ejection never takes out more than half.
    let b2 = tls_backend("tls-b2", &pki, false);
    let (ca, other) = (path(&pki.ca), path(&pki.other_ca));
    let (addr, addr2) = (b.addr, b2.addr);
    let d = Drover::start(&config(&[
        (
            "wrongname",
            format!("backends = [\"{addr}\", \"{addr2}\"]\ntls = true\nca_file = \"{ca}\"\ntls_server_name = \"wrong.example\"\n[pools.wrongname.passive]\nconsecutive_failures = 1\neject_for = \"60s\""),
        ),
        (
            "unknownca",
            format!("backends = [\"https://localhost:{}\"]\nca_file = \"{other}\"", addr.port()),
        ),
    ]));
    let (code, body) = get(&d, "/wrongname/").await;
    assert_eq!(code, 502, "{body}");
    assert!(
        body.contains("TLS handshake failed")
            && body.contains("not valid for name \"wrong.example\""),
        "{body}"
    );
    let (code, body) = get(&d, "/unknownca/").await;
    assert_eq!(code, 502, "{body}");
    assert!(body.contains("unknown authority"), "{body}");
    // Counted by passive health: the member is ejected with the reason in the event.
    wait_until("the ejection event", 10, async || {
        common::all_events(&d).await.iter().any(|e| {
            e["pool"] == "wrongname"
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("not valid for name"))
        })
    })
    .await;
    let p = pool_json(&d, "wrongname").await;
    let states: Vec<_> = p["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].clone())
        .collect();
    assert!(states.contains(&"ejected".into()), "{p}");
}

#[tokio::test]
async fn mtls_backend_accepts_drover_with_client_cert_and_refuses_it_without() {
    let pki = pki();
    let b = tls_backend("mtls", &pki, true);
    let (ca, cert, key) = (path(&pki.ca), path(&pki.client.0), path(&pki.client.1));
    let port = b.addr.port();
    let d = Drover::start(&config(&[
        (
            "with",
            format!("backends = [\"https://localhost:{port}\"]\nca_file = \"{ca}\"\nclient_cert = \"{cert}\"\nclient_key = \"{key}\""),
        ),
        (
            "without",
            format!("backends = [\"https://localhost:{port}\"]\nca_file = \"{ca}\""),
        ),
    ]));
    let (code, body) = get(&d, "/with/x").await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = get(&d, "/without/x").await;
    assert_eq!(code, 502, "{body}");
    // TLS 1.3: the backend refuses after drover's side of the handshake is
    // done, with an alert that says why.
    assert!(body.contains("CertificateRequired"), "{body}");
}

#[tokio::test]
async fn skip_verify_accepts_an_unknown_certificate_and_warns() {
    let pki = pki();
    let b = tls_backend("any", &pki, false);
    let port = b.addr.port();
    let cfg = config(&[(
        "insecure",
        format!("backends = [\"https://127.0.0.1:{port}\"]\ntls_server_name = \"not.the.name\"\ntls_insecure_skip_verify = true"),
    )]);
    let d = Drover::start(&cfg);
    let (code, body) = get(&d, "/insecure/").await;
    assert_eq!(code, 200, "{body}");
    d.proc
        .stderr
        .wait_for("the skip-verify warning", Duration::from_secs(5), |l| {
            l.contains("WARN") && l.contains("tls_insecure_skip_verify = true")
        });
    // `drover check` warns too, and still accepts the file.
    let out = std::process::Command::new(BIN)
        .args(["check", "-c", d.config_path.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.starts_with("ok\n"), "{stdout}");
    assert!(
        stderr.contains("warning: pools.insecure.tls_insecure_skip_verify = true: backend certificates are not verified"),
        "{stderr}"
    );
}

#[tokio::test]
async fn health_checks_go_over_tls() {
    let pki = pki();
    let b = tls_backend("checked", &pki, false);
    let port = b.addr.port();
    let (ca, other) = (path(&pki.ca), path(&pki.other_ca));
    let health = "path = \"/health\"\ninterval = \"200ms\"\ntimeout = \"2s\"\nrise = 1\nfall = 1";
    let d = Drover::start(&config(&[
        (
            "good",
            format!("backends = [\"https://localhost:{port}\"]\nca_file = \"{ca}\"\n[pools.good.health]\n{health}"),
        ),
        (
            "bad",
            format!("backends = [\"https://localhost:{port}\"]\nca_file = \"{other}\"\n[pools.bad.health]\n{health}"),
        ),
    ]));
    wait_until("the TLS member to pass its checks", 20, async || {
        pool_json(&d, "good").await["backends"][0]["state"] == "healthy"
    })
    .await;
    assert_eq!(get(&d, "/good/").await.0, 200);
    // The same member behind an untrusted CA fails its checks, and says why.
    wait_until("a failed check over TLS", 20, async || {
        let p = pool_json(&d, "bad").await;
        p["backends"][0]["last_check"]
            .to_string()
            .contains("unknown authority")
    })
    .await;
    let p = pool_json(&d, "bad").await;
    assert_eq!(p["backends"][0]["state"], "unhealthy", "{p}");
    let p = get_json(&d.admin_url("/api/v1/pools/good")).await;
    assert_eq!(p["backends"][0]["state"], "healthy");
}

#[test]
fn check_reports_tls_key_errors_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = r#"[[routes]]
pool = "a"
[pools.a]
backends = ["https://127.0.0.1:8443"]
ca_file = "missing-ca.pem"
client_cert = "client.pem"
[pools.b]
backends = ["127.0.0.1:8001"]
tls_server_name = "api.internal"
[pools.c]
backends = ["https://127.0.0.1:8443", "127.0.0.1:8444"]
[pools.d]
backends = ["https://127.0.0.1:8443"]
tls = false
"#;
    std::fs::write(dir.path().join("client.pem"), "not pem\n").unwrap();
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["check", "-c", "bad.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for want in [
        "bad.toml:5:11: pools.a.ca_file: no such file",
        "bad.toml:6:15: pools.a.client_cert: needs client_key",
        "bad.toml:9:19: pools.b.tls_server_name: only used with tls = true",
        "bad.toml:11:39: pools.c.backends: \"127.0.0.1:8444\" is plain but other backends use https://",
        "bad.toml:14:7: pools.d.tls: tls = false, but backends are written with https://",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[tokio::test]
async fn the_admin_api_adds_https_members_to_tls_pools_only() {
    let pki = pki();
    let b = tls_backend("added", &pki, false);
    let ca = path(&pki.ca);
    // Both pools start with a member that refuses connections.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let d = Drover::start(&config(&[
        (
            "tls",
            format!("backends = [\"{dead}\"]\ntls = true\nca_file = \"{ca}\""),
        ),
        ("plain", format!("backends = [\"{dead}\"]")),
    ]));
    let add = |pool: &str, address: String| {
        client()
            .post(d.admin_url(&format!("/api/v1/pools/{pool}/backends")))
            .json(&serde_json::json!({ "address": address }))
            .send()
    };
    let r = add("plain", format!("https://{}", b.addr)).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("does not use TLS"));
    let r = add("tls", format!("https://{}", b.addr)).await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // The new member is reached over TLS, verified against its IP SAN.
    wait_until("a 200 from the added TLS member", 10, async || {
        get(&d, "/tls/").await.0 == 200
    })
    .await;
}

#[tokio::test]
async fn a_failed_handshake_is_a_connect_failure_retried_on_another_member() {
    let pki = pki();
    // Both dialled by IP: one certificate carries the IP, the other does not.
    let bad = tls_backend_with("bad", &pki, &pki.by_name, false);
    let good = tls_backend_with("good", &pki, &pki.by_ip, false);
    let ca = path(&pki.ca);
    let d = Drover::start(&config(&[(
        "mixed",
        format!(
            "backends = [\"{}\", \"{}\"]\ntls = true\nca_file = \"{ca}\"\nretries = 1",
            bad.addr, good.addr
        ),
    )]));
    // Any method: nothing was sent to the member whose handshake failed.
    for _ in 0..6 {
        let v = common::post_ok(&d.url("/mixed/")).await;
        assert_eq!((&v["name"], &v["body_bytes"]), (&"good".into(), &7.into()));
    }
    let p = pool_json(&d, "mixed").await;
    let bad_member = p["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["address"] == bad.addr.to_string())
        .unwrap()
        .clone();
    assert!(bad_member["failures"].as_u64().unwrap() >= 1, "{p}");
}

#[tokio::test]
async fn a_reload_reads_the_certificates_again() {
    let pki = pki();
    let b = tls_backend("reread", &pki, false);
    // ca_file names a file whose content changes between loads.
    let dir = tempfile::tempdir().unwrap();
    let trusted = dir.path().join("trusted.pem");
    std::fs::copy(&pki.other_ca, &trusted).unwrap();
    let d = Drover::start(&config(&[(
        "p",
        format!(
            "backends = [\"https://localhost:{}\"]\nca_file = \"{}\"",
            b.addr.port(),
            path(&trusted)
        ),
    )]));
    let (code, body) = get(&d, "/p/").await;
    assert_eq!(code, 502, "{body}");
    assert!(body.contains("unknown authority"), "{body}");
    // The same config text, the file now holding the backend's CA.
    std::fs::copy(&pki.ca, &trusted).unwrap();
    let r = common::reload(&d).await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let (code, body) = get(&d, "/p/").await;
    assert_eq!(code, 200, "{body}");
    // And back: the new load is used, not a connection of the old one.
    std::fs::copy(&pki.other_ca, &trusted).unwrap();
    assert!(common::reload(&d).await.status().is_success());
    let (code, body) = get(&d, "/p/").await;
    assert_eq!(code, 502, "{body}");
}
