//! End to end: HTTP/2 over TLS to backends (`protocol = "h2"` and `"auto"`).
//! Real `drover backend --tls-cert` processes (ALPN `h2, http/1.1`, or
//! `http/1.1` only with `--tls-http1-only`), drover in front, real clients;
//! the echo says which HTTP version the backend saw.

mod common;
mod health_support;
mod tls_support;

use common::{client, pool_json, wait_until, Drover};
use tls_support::{pki, tls_backend, tls_backend_args, Pki, TlsBackend};

/// One route per pool, `/NAME/...` → pool NAME (prefix stripped), each pool
/// a TLS pool to `localhost:PORT` trusting the test CA, with `extra` keys.
fn config(pki: &Pki, pools: &[(&str, u16, &str)]) -> String {
    let ca = pki.ca.display();
    let mut s = String::from(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[admin]\nlisten = \"127.0.0.1:0\"\n[log]\naccess = false\n",
    );
    for (name, _, _) in pools {
        s.push_str(&format!(
            "[[routes]]\npath_prefix = \"/{name}\"\nstrip_prefix = true\npool = \"{name}\"\n"
        ));
    }
    for (name, port, extra) in pools {
        s.push_str(&format!(
            "[pools.{name}]\nbackends = [\"https://localhost:{port}\"]\nca_file = \"{ca}\"\nretries = 0\n{extra}\n"
        ));
    }
    s
}

fn http1_only(name: &str, pki: &Pki) -> TlsBackend {
    tls_backend_args(name, &pki.server, &["--tls-http1-only"])
}

async fn get(d: &Drover, p: &str) -> (u16, String) {
    let r = client().get(d.url(p)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The HTTP version the backend behind `pool` saw for a request.
async fn version_seen(d: &Drover, pool: &str) -> String {
    let (code, body) = get(d, &format!("/{pool}/echo")).await;
    assert_eq!(code, 200, "{pool}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["version"].as_str().unwrap().to_string()
}

async fn upstream_connects(d: &Drover) -> f64 {
    health_support::metric(d, "drover_upstream_connects_total ").await
}

const HEALTH: &str =
    "path = \"/health\"\ninterval = \"200ms\"\ntimeout = \"2s\"\nrise = 1\nfall = 1";

/// 200 requests at once to an `h2` pool with 50 streams per connection go
/// over HTTP/2 on at most 4 TLS connections per worker thread that serves
/// them, ceil(n_w / 50) each: at most 5 with 2 workers (the backend counts them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_pool_multiplexes_requests_over_few_tls_connections() {
    let pki = pki();
    let b = tls_backend("h2b", &pki, false);
    let d = Drover::start_with(
        &config(
            &pki,
            &[(
                "h2",
                b.addr.port(),
                "protocol = \"h2\"\nmax_streams_per_connection = 50",
            )],
        ),
        &["--threads", "2"],
    );
    assert_eq!(version_seen(&d, "h2").await, "HTTP/2.0");
    let c = client();
    let url = d.url("/h2/delay/200");
    let got = futures_util::future::join_all((0..200).map(|_| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            let r = c.get(&url).send().await.unwrap();
            let code = r.status().as_u16();
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            (code, v["version"].as_str().unwrap_or("").to_string())
        }
    }))
    .await;
    for (code, version) in &got {
        assert_eq!((*code, version.as_str()), (200, "HTTP/2.0"));
    }
    // Asked over drover's own HTTP/2 connections: this adds none.
    let (code, stats) = get(&d, "/h2/admin/stats").await;
    assert_eq!(code, 200, "{stats}");
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    let conns = stats["connections"].as_u64().unwrap();
    assert!((1..=5).contains(&conns), "{conns} TLS connections: {stats}");
    assert!(upstream_connects(&d).await <= 5.0);
}

/// `auto` speaks HTTP/2 to a backend that selects h2 and HTTP/1.1 to one that
/// offers only http/1.1, remembering the choice (no new handshake per
/// request); `h2` against the HTTP/1.1-only backend is a 502 saying why. The
/// health checks go over the same protocols (h2 + TLS, or HTTP/1.1 for the
/// auto member that chose it) and fail for the h2 pool with that reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_follows_alpn_and_h2_without_h2_is_a_502_with_the_reason() {
    let pki = pki();
    let both = tls_backend("both", &pki, false);
    let h1 = http1_only("h1only", &pki);
    let checked = format!("\n[health]\n{HEALTH}");
    let pools = [
        ("autoh2", both.addr.port(), "protocol = \"auto\""),
        ("autoh1", h1.addr.port(), "protocol = \"auto\""),
        ("h2checked", h1.addr.port(), "protocol = \"h2\""),
    ];
    let mut with_health: Vec<(String, u16, String)> = pools
        .iter()
        .map(|(n, p, e)| {
            let h = checked.replace("[health]", &format!("[pools.{n}.health]"));
            (n.to_string(), *p, format!("{e}{h}"))
        })
        .collect();
    // Unchecked, so that its requests reach the member.
    with_health.push(("h2bad".into(), h1.addr.port(), "protocol = \"h2\"".into()));
    let refs: Vec<(&str, u16, &str)> = with_health
        .iter()
        .map(|(n, p, e)| (n.as_str(), *p, e.as_str()))
        .collect();
    let d = Drover::start(&config(&pki, &refs));
    for pool in ["autoh2", "autoh1"] {
        wait_until(&format!("{pool} healthy"), 20, async || {
            pool_json(&d, pool).await["backends"][0]["state"] == "healthy"
        })
        .await;
    }
    // The first requests arrive together: one opens the connection, the
    // others wait for its ALPN outcome and follow it.
    for (pool, want) in [("autoh1", "HTTP/1.1"), ("autoh2", "HTTP/2.0")] {
        let seen = futures_util::future::join_all((0..20).map(|_| version_seen(&d, pool))).await;
        assert!(seen.iter().all(|v| v == want), "{pool}: {seen:?}");
    }
    // The choice is remembered: sequential requests reuse the pooled
    // HTTP/1.1 connection instead of a handshake each.
    let before = upstream_connects(&d).await;
    for _ in 0..5 {
        assert_eq!(version_seen(&d, "autoh1").await, "HTTP/1.1");
        assert_eq!(version_seen(&d, "autoh2").await, "HTTP/2.0");
    }
    let after = upstream_connects(&d).await;
    assert!(
        after - before <= 2.0,
        "{before} -> {after} connections for 10 requests"
    );
    // h2 against a backend that does not select h2: 502 with the reason.
    let (code, body) = get(&d, "/h2bad/").await;
    assert_eq!(code, 502, "{body}");
    assert!(
        body.contains("none of the protocols offered by ALPN (\"h2\")"),
        "{body}"
    );
    // Its health check asked for h2 too, and says why it failed.
    wait_until("h2checked unhealthy with the ALPN reason", 20, async || {
        let p = pool_json(&d, "h2checked").await;
        p["backends"][0]["state"] == "unhealthy"
            && p["backends"][0]["last_check"]
                .to_string()
                .contains("offered by ALPN (\\\"h2\\\")")
    })
    .await;
}
