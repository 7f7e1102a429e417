//! End to end: sticky sessions with curl cookie jars. The cookie pins a client
//! to one member while it is healthy (or draining, for a while), is replaced
//! when the member goes, is an opaque id rather than the address, and a
//! crafted cookie is ignored; the scale-down stops the member with the fewest
//! sticky sessions.

mod common;

use std::path::Path;
use std::process::Command;

use common::managed::{managed_pool, scale};
use common::STATIC_HEALTH as HEALTH;
use common::{client, one_pool, pool_json, wait_until, Backend, Drover};

/// One GET through curl with cookie jar `jar` (read and written; `None` = no
/// cookies): the backend's name and the `Set-Cookie` headers of the response.
fn get(url: &str, jar: Option<&Path>, cookie: Option<&str>) -> (String, Vec<String>) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--noproxy", "*", "-o", "/dev/null", "-D", "-"]);
    if let Some(j) = jar {
        let j = j.to_str().unwrap();
        cmd.args(["-b", j, "-c", j]);
    }
    if let Some(c) = cookie {
        cmd.args(["-H", &format!("Cookie: {c}")]);
    }
    let out = cmd.arg(url).output().expect("curl");
    let head = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let value = |name: &str| -> Vec<String> {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    };
    let backend = value("x-backend-name").pop().expect("x-backend-name");
    (backend, value("set-cookie"))
}

/// The names that served `n` requests with jar `jar`.
fn names(url: &str, jar: &Path, n: usize) -> Vec<String> {
    (0..n).map(|_| get(url, Some(jar), None).0).collect()
}

#[tokio::test]
async fn a_sticky_cookie_pins_each_client_to_its_member() {
    let bs = [
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    ];
    let addrs: Vec<_> = bs.iter().map(|b| b.addr).collect();
    let d = Drover::start(&one_pool(
        &addrs,
        "sticky = { cookie = \"sid\", ttl = \"1h\" }",
    ));
    let dir = tempfile::tempdir().unwrap();
    let url = d.url("/");
    let mut first = Vec::new();
    for s in 0..3 {
        let jar = dir.path().join(format!("jar{s}"));
        let (name, set) = get(&url, Some(&jar), None);
        assert_eq!(set.len(), 1, "{set:?}");
        let c = &set[0];
        assert!(
            c.starts_with("sid=") && c.ends_with("; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"),
            "{c}"
        );
        let value = c["sid=".len()..].split(';').next().unwrap();
        assert_eq!(value.len(), 16, "{value}");
        for a in &addrs {
            assert!(!value.contains(&a.port().to_string()), "{value} names {a}");
        }
        // Every later request of this client: the same member, no new cookie.
        for _ in 0..8 {
            let (n, set) = get(&url, Some(&jar), None);
            assert_eq!(n, name);
            assert!(set.is_empty(), "{set:?}");
        }
        first.push(name);
    }
    // New sessions are balanced (round robin): three clients, three members.
    first.sort();
    assert_eq!(first, ["a", "b", "c"]);
    // The admin API counts them.
    let p = pool_json(&d, "app").await;
    let counted: u64 = p["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sticky_sessions"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 27);
}

#[tokio::test]
async fn crafted_cookies_are_ignored_and_replaced() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let d = Drover::start(&one_pool(&[a.addr, b.addr], "sticky = true"));
    let url = d.url("/");
    for bad in [
        "drover_sticky=",
        "drover_sticky=127.0.0.1:1",
        "drover_sticky=ffffffffffffffff",
        "drover_sticky=\"0123456789abcdef",
        "drover_sticky=0123456789ABCDEF; drover_sticky",
        "=;;;==; drover_sticky=%00%ff",
    ] {
        let (_, set) = get(&url, None, Some(bad));
        assert_eq!(set.len(), 1, "{bad}: {set:?}");
        assert!(set[0].starts_with("drover_sticky="), "{bad}: {set:?}");
    }
    // The cookie a client got works in any position among others.
    let (name, set) = get(&url, None, None);
    let pair = set[0].split(';').next().unwrap().to_string();
    for _ in 0..4 {
        let (n, set) = get(&url, None, Some(&format!("x=1; {pair}; y=2")));
        assert_eq!(n, name);
        assert!(set.is_empty());
    }
}

#[tokio::test]
async fn a_failed_member_hands_its_sessions_over_with_a_new_cookie() {
    let bs = [Backend::start("a"), Backend::start("b")];
    let addrs: Vec<_> = bs.iter().map(|b| b.addr).collect();
    let d = Drover::start(&one_pool(&addrs, &format!("sticky = true\n{HEALTH}")));
    let dir = tempfile::tempdir().unwrap();
    let jar = dir.path().join("jar");
    let url = d.url("/");
    let (pinned, _) = get(&url, Some(&jar), None);
    let victim = bs.iter().find(|b| b.name == pinned).unwrap();
    client()
        .post(format!("http://{}/admin/fail", victim.addr))
        .send()
        .await
        .unwrap();
    wait_until("pinned member unhealthy", 20, async || {
        let p = pool_json(&d, "app").await;
        p["backends"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["address"] == victim.addr.to_string() && m["state"] == "unhealthy")
    })
    .await;
    let (moved, set) = get(&url, Some(&jar), None);
    assert_ne!(moved, pinned);
    assert_eq!(set.len(), 1, "the cookie is replaced: {set:?}");
    // It sticks to the new member, even once the old one is back.
    client()
        .post(format!("http://{}/admin/recover", victim.addr))
        .send()
        .await
        .unwrap();
    wait_until("old member healthy", 20, async || {
        common::healthy_count(&d, "app").await == 2
    })
    .await;
    assert!(names(&url, &jar, 6).iter().all(|n| *n == moved));
}

#[tokio::test]
async fn a_draining_member_keeps_its_sessions_but_takes_no_new_ones() {
    let bs = [Backend::start("a"), Backend::start("b")];
    let addrs: Vec<_> = bs.iter().map(|b| b.addr).collect();
    let d = Drover::start(&one_pool(&addrs, "sticky = true"));
    let dir = tempfile::tempdir().unwrap();
    let jar = dir.path().join("jar");
    let url = d.url("/");
    let (pinned, _) = get(&url, Some(&jar), None);
    let victim = bs.iter().find(|b| b.name == pinned).unwrap();
    let r = client()
        .post(d.admin_url(&format!("/api/v1/pools/app/backends/{}/drain", victim.addr)))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // The session stays (the drain timeout, 30 s by default, has not passed)...
    assert!(names(&url, &jar, 6).iter().all(|n| *n == pinned));
    // ...while new sessions go elsewhere.
    for _ in 0..6 {
        let (n, set) = get(&url, None, None);
        assert_ne!(n, pinned);
        assert_eq!(set.len(), 1);
    }
}

#[tokio::test]
async fn scale_down_stops_the_member_with_the_fewest_sticky_sessions() {
    let config = managed_pool(
        "sticky = true",
        "\"--name\", \"i{port}\"",
        "count = 2\ndrain_timeout = \"3s\"",
    );
    let d = Drover::start(&config);
    wait_until("two instances", 30, async || {
        common::healthy_count(&d, "app").await == 2
    })
    .await;
    // Without sticky sessions the newest instance would go (fewest in flight,
    // newest on ties): pin a session to it.
    let events = common::all_events(&d).await;
    let newest = events
        .iter()
        .rev()
        .find(|e| e["kind"] == "instance_started")
        .and_then(|e| e["backend"].as_str())
        .unwrap()
        .to_string();
    let port = newest.rsplit(':').next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jar = dir.path().join("jar");
    let url = d.url("/");
    let mut pinned = String::new();
    for _ in 0..10 {
        std::fs::remove_file(&jar).ok();
        pinned = get(&url, Some(&jar), None).0;
        if pinned == format!("i{port}") {
            break;
        }
    }
    assert_eq!(
        pinned,
        format!("i{port}"),
        "no session on the newest instance"
    );
    assert!(names(&url, &jar, 5).iter().all(|n| *n == pinned));
    scale(&d, 1).await;
    wait_until("one instance left", 30, async || {
        pool_json(&d, "app").await["backends"]
            .as_array()
            .unwrap()
            .len()
            == 1
    })
    .await;
    let p = pool_json(&d, "app").await;
    assert_eq!(p["backends"][0]["address"], newest.as_str());
    assert!(names(&url, &jar, 3).iter().all(|n| *n == pinned));
}
