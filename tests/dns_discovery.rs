//! DNS discovery end to end: drover asks a real DNS server (hickory-server,
//! started here on 127.0.0.1) and follows its answers; the backends listen on
//! 127.0.0.2 and 127.0.0.3, one port for both, as replicas behind a name do.

mod common;
mod dns_support;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use common::{all_events, client, pool_json, wait_until, Backend, Drover, Load, HEADER};
use dns_support::TestDns;

const TWO: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const THREE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// Two backends on one port: 127.0.0.2 ("two") and 127.0.0.3 ("three").
fn replicas() -> (Backend, Backend, u16) {
    let two = Backend::start_on("127.0.0.2:0", "two");
    let port = two.addr.port();
    let three = Backend::start_on(&format!("127.0.0.3:{port}"), "three");
    (two, three, port)
}

fn config(dns: &TestDns, pool: &str) -> String {
    format!(
        r#"
{HEADER}[resolver]
nameservers = ["{}"]
[[routes]]
pool = "api"
[pools.api]
resolve_interval = "1s"
{pool}
"#,
        dns.addr
    )
}

/// The pool's members as `address state` strings.
async fn members(d: &Drover) -> BTreeSet<String> {
    let p = pool_json(d, "api").await;
    p["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                m["address"].as_str().unwrap(),
                m["state"].as_str().unwrap()
            )
        })
        .collect()
}

fn set(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

/// Names of the backends that answered `n` requests.
async fn served_by(d: &Drover, n: usize) -> BTreeSet<String> {
    let c = client();
    let mut names = BTreeSet::new();
    for _ in 0..n {
        let r = c.get(d.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let name = r.headers()["x-backend-name"].to_str().unwrap().to_string();
        names.insert(name);
    }
    names
}

// Multi-threaded: the DNS server must answer while `Drover::start` blocks this thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_pool_follows_the_answer_drains_what_leaves_and_keeps_members_when_dns_is_down() {
    let dns = TestDns::start("test.").await;
    dns.answer("api", &[TWO]).await;
    let (_two, _three, port) = replicas();
    let d = Drover::start(&config(
        &dns,
        &format!("[pools.api.instances]\nprovider = \"dns\"\nname = \"api.test\"\nport = {port}"),
    ));
    let (a2, a3) = (format!("127.0.0.2:{port}"), format!("127.0.0.3:{port}"));

    // At start the pool has the first answer.
    assert_eq!(members(&d).await, set(&[format!("{a2} healthy")]));
    assert_eq!(served_by(&d, 4).await, BTreeSet::from(["two".to_string()]));

    // The answer grows: the pool grows and traffic reaches both.
    dns.answer("api", &[TWO, THREE]).await;
    wait_until("the pool to have both addresses", 20, async || {
        members(&d).await == set(&[format!("{a2} healthy"), format!("{a3} healthy")])
    })
    .await;
    assert_eq!(
        served_by(&d, 8).await,
        BTreeSet::from(["two".to_string(), "three".to_string()])
    );

    // The answer drops 127.0.0.2 under load: it drains and leaves, no request fails.
    let load = Load::start(&d.url("/delay/50"), 4, 2000);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    dns.answer("api", &[THREE]).await;
    wait_until("127.0.0.2 to leave the pool", 20, async || {
        members(&d).await == set(&[format!("{a3} healthy")])
    })
    .await;
    let (ok, failed) = load.stop().await;
    assert!(ok > 0, "the load sent no request");
    assert_eq!(failed, 0, "requests failed while 127.0.0.2 drained");
    let events = all_events(&d).await;
    let about = |kind: &str, addr: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind && e["backend"] == addr)
            .map(|e| e["reason"].as_str().unwrap().to_string())
    };
    let added = about("added", &a3).expect("an added event for 127.0.0.3");
    assert!(added.contains("api.test answers 127.0.0.3"), "{added}");
    let draining = about("draining", &a2).expect("a draining event for 127.0.0.2");
    assert!(
        draining.contains("no longer in the DNS answer"),
        "{draining}"
    );
    assert!(
        about("removed", &a2).is_some(),
        "a removed event for 127.0.0.2"
    );

    // The DNS server goes away: the pool keeps its members and says why.
    dns.stop().await;
    wait_until("a discovery_error event", 30, async || {
        all_events(&d)
            .await
            .iter()
            .any(|e| e["kind"] == "discovery_error")
    })
    .await;
    // Several more rounds (1 s each) fail; the member stays and serves.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(members(&d).await, set(&[format!("{a3} healthy")]));
    assert_eq!(
        served_by(&d, 4).await,
        BTreeSet::from(["three".to_string()])
    );
    let errors = all_events(&d)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "discovery_error")
        .count();
    assert_eq!(errors, 1, "failure events are rate limited");
}

// Multi-threaded: the DNS server must answer while `Drover::start` blocks this thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_given_by_host_name_is_resolved_again() {
    let dns = TestDns::start("test.").await;
    dns.answer("web", &[TWO]).await;
    let (_two, _three, port) = replicas();
    let d = Drover::start(&config(
        &dns,
        &format!("backends = [{{ address = \"web.test:{port}\", weight = 2 }}]"),
    ));
    let (a2, a3) = (format!("127.0.0.2:{port}"), format!("127.0.0.3:{port}"));
    assert_eq!(members(&d).await, set(&[format!("{a2} healthy")]));

    dns.answer("web", &[THREE]).await;
    wait_until("the member to follow the name", 20, async || {
        members(&d).await == set(&[format!("{a3} healthy")])
    })
    .await;
    assert_eq!(
        served_by(&d, 4).await,
        BTreeSet::from(["three".to_string()])
    );
    let p = pool_json(&d, "api").await;
    assert_eq!(p["backends"][0]["weight"], 2, "the name's weight is kept");
    dns.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_changes_the_name_moves_the_pool_to_the_new_answer() {
    let dns = TestDns::start("test.").await;
    dns.answer("api", &[TWO]).await;
    dns.answer("web", &[THREE]).await;
    let (_two, _three, port) = replicas();
    let pool = |name: &str| {
        format!("[pools.api.instances]\nprovider = \"dns\"\nname = \"{name}\"\nport = {port}")
    };
    let d = Drover::start(&config(&dns, &pool("api.test")));
    let (a2, a3) = (format!("127.0.0.2:{port}"), format!("127.0.0.3:{port}"));
    assert_eq!(members(&d).await, set(&[format!("{a2} healthy")]));

    std::fs::write(&d.config_path, config(&dns, &pool("web.test"))).unwrap();
    d.proc.signal("HUP");
    wait_until("the pool to follow the new name", 20, async || {
        members(&d).await == set(&[format!("{a3} healthy")])
    })
    .await;
    dns.stop().await;
}
