//! End to end: admin mutations (add / drain / remove / scale), events, what a
//! reload keeps, auth, OpenAPI coverage, and that the proxy never serves admin paths.

mod common;

use std::time::{Duration, Instant};

use common::{client, get_json, one_pool, reload, Backend, Drover, Proc};
use serde_json::{json, Value};

async fn get(d: &Drover, path: &str) -> Value {
    get_json(&d.admin_url(path)).await
}

fn member<'a>(pool: &'a Value, addr: &str) -> Option<&'a Value> {
    pool["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["address"] == addr)
}

async fn names_served(d: &Drover, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let v: Value = get_json(&d.url("/")).await;
        out.push(v["name"].as_str().unwrap().to_string());
    }
    out
}

#[tokio::test]
async fn add_drain_remove_members_at_runtime_with_events() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let d = Drover::start(&one_pool(&[a.addr], ""));
    let c = client();
    let since = get(&d, "/api/v1/events").await.as_array().unwrap().len();

    // Add b: 201, serves traffic; adding it again: 409; a bad address: 400.
    let r = c
        .post(d.admin_url("/api/v1/pools/app/backends"))
        .json(&json!({"address": b.addr.to_string(), "weight": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let m: Value = r.json().await.unwrap();
    assert_eq!(
        (m["state"].as_str(), m["weight"].as_u64()),
        (Some("healthy"), Some(2))
    );
    let again = c
        .post(d.admin_url("/api/v1/pools/app/backends"))
        .json(&json!({"address": b.addr.to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let bad = c
        .post(d.admin_url("/api/v1/pools/app/backends"))
        .json(&json!({"address": "not-an-address"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let e: Value = bad.json().await.unwrap();
    assert!(
        e["error"].as_str().unwrap().contains("not-an-address"),
        "{e}"
    );
    let missing_pool = c
        .post(d.admin_url("/api/v1/pools/nope/backends"))
        .json(&json!({"address": "127.0.0.1:1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing_pool.status(), 404);
    let served = names_served(&d, 6).await;
    assert!(served.contains(&"b".to_string()), "{served:?}");

    // Drain a: 202, never chosen again, and it stays draining across a reload
    // of a file that still lists it.
    let r = c
        .post(d.admin_url(&format!("/api/v1/pools/app/backends/{}/drain", a.addr)))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(names_served(&d, 6).await.iter().all(|n| n == "b"));
    std::fs::write(
        &d.config_path,
        one_pool(&[a.addr, b.addr], "balance = \"least_conn\""),
    )
    .unwrap();
    let r = c
        .post(d.admin_url("/api/v1/reload"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pool = get(&d, "/api/v1/pools/app").await;
    assert_eq!(pool["balance"], "least_conn");
    assert_eq!(
        member(&pool, &a.addr.to_string()).unwrap()["state"],
        "draining"
    );
    assert!(
        member(&pool, &b.addr.to_string()).unwrap()["requests"]
            .as_u64()
            .unwrap()
            >= 6,
        "counters survive the reload: {pool}"
    );
    assert!(names_served(&d, 4).await.iter().all(|n| n == "b"));

    // Remove b while a request is in flight: it drains first and goes once it finished.
    let slow = {
        let url = d.url("/delay/1200");
        tokio::spawn(async move { client().get(url).send().await.unwrap().status() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = c
        .delete(d.admin_url(&format!("/api/v1/pools/app/backends/{}", b.addr)))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let pool = get(&d, "/api/v1/pools/app").await;
    let bm = member(&pool, &b.addr.to_string()).expect("still there while in flight");
    assert_eq!(bm["state"], "draining");
    assert_eq!(slow.await.unwrap(), 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pool = get(&d, "/api/v1/pools/app").await;
        if member(&pool, &b.addr.to_string()).is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "b was not removed: {pool}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = c
        .delete(d.admin_url(&format!("/api/v1/pools/app/backends/{}", b.addr)))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Every change is in the event log, with paging by id.
    let events = get(&d, &format!("/api/v1/events?since={since}")).await;
    let kinds: Vec<(String, String)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["backend"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for want in [
        ("added", b.addr.to_string()),
        ("draining", a.addr.to_string()),
        ("reload", String::new()),
        ("draining", b.addr.to_string()),
        ("removed", b.addr.to_string()),
    ] {
        assert!(
            kinds.contains(&(want.0.to_string(), want.1.clone())),
            "{want:?} in {kinds:?}"
        );
    }
    let last = events.as_array().unwrap().last().unwrap()["id"]
        .as_u64()
        .unwrap();
    assert_eq!(
        get(&d, &format!("/api/v1/events?since={last}")).await,
        json!([])
    );
    let r = c
        .get(d.admin_url("/api/v1/events?since=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_reload_drops_api_added_members_the_file_does_not_list() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let d = Drover::start(&one_pool(&[a.addr], ""));
    let r = client()
        .post(d.admin_url("/api/v1/pools/app/backends"))
        .json(&json!({"address": b.addr.to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    std::fs::write(&d.config_path, one_pool(&[a.addr], "balance = \"random\"")).unwrap();
    let r = reload(&d).await;
    assert_eq!(r.status(), 200);
    let pool = get(&d, "/api/v1/pools/app").await;
    assert!(member(&pool, &b.addr.to_string()).is_none(), "{pool}");
    assert!(member(&pool, &a.addr.to_string()).is_some());
}

#[tokio::test]
async fn scale_is_refused_for_static_pools_and_outside_bounds() {
    let a = Backend::start("a");
    let d = Drover::start(&one_pool(&[a.addr], ""));
    let r = client()
        .put(d.admin_url("/api/v1/pools/app/scale"))
        .json(&json!({"instances": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("pool app has no managed instances"),
        "{e}"
    );
    let r = client()
        .put(d.admin_url("/api/v1/pools/app/scale"))
        .json(&json!({"instances": "two"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client()
        .put(d.admin_url("/api/v1/pools/zzz/scale"))
        .json(&json!({"instances": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn scale_bounds_come_from_autoscale_min_max() {
    let a = Backend::start("a");
    let cfg = one_pool(&[a.addr], "")
        + "[pools.app.instances]\nprovider = \"process\"\ncommand = [\"true\", \"{port}\"]\n\
           [pools.app.autoscale]\nmin = 1\nmax = 3\ntarget_inflight = 10\n";
    let d = Drover::start(&cfg);
    for (n, status) in [(0, 400), (4, 400)] {
        let r = client()
            .put(d.admin_url("/api/v1/pools/app/scale"))
            .json(&json!({"instances": n}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "instances {n}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["detail"], json!({"min": 1, "max": 3}), "{e}");
    }
    let pool = get(&d, "/api/v1/pools/app").await;
    assert_eq!(
        (
            pool["scalable"].as_bool(),
            pool["min"].as_u64(),
            pool["max"].as_u64()
        ),
        (Some(true), Some(1), Some(3))
    );
}

#[tokio::test]
async fn with_a_token_every_admin_request_needs_it() {
    let a = Backend::start("a");
    let d = Drover::start(
        &one_pool(&[a.addr], "").replace("[admin]\n", "[admin]\ntoken = \"s3cret-token\"\n"),
    );
    let c = client();
    for path in ["/api/v1/pools", "/metrics", "/", "/api/v1/openapi.json"] {
        let r = c.get(d.admin_url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "unauthorized");
        let r = c
            .get(d.admin_url(path))
            .header("authorization", "Bearer wrong-token!")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong token");
        let r = c
            .get(d.admin_url(path))
            .header("authorization", "Bearer s3cret-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path} with the token");
    }
    let r = c
        .get(d.admin_url("/?token=s3cret-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<title>drover</title>"));
    let r = c
        .post(d.admin_url("/api/v1/pools/app/backends"))
        .json(&json!({"address": "127.0.0.1:1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "mutations too");
}

#[test]
fn a_non_loopback_admin_without_token_is_refused_by_check_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drover.toml");
    let cfg = one_pool(&["127.0.0.1:9".parse().unwrap()], "")
        .replace("listen = \"127.0.0.1:0\"", "listen = \"0.0.0.0:0\"");
    std::fs::write(&path, cfg).unwrap();
    let p = path.to_str().unwrap();
    for args in [
        vec!["check", "-c", p],
        vec!["--log-format", "json", "run", "-c", p],
    ] {
        let mut proc = Proc::spawn(&args, None);
        assert_eq!(proc.wait_exit(Duration::from_secs(10)), Some(2), "{args:?}");
        let err = proc
            .stderr
            .wait_for("the error", Duration::from_secs(2), |l| {
                l.contains("admin.token")
            });
        assert!(err.contains("not a loopback"), "{err}");
    }
}

#[tokio::test]
async fn the_proxy_listener_never_serves_admin_paths() {
    let a = Backend::start("a");
    let d = Drover::start(&one_pool(&[a.addr], ""));
    for path in [
        "/api/v1/pools",
        "/metrics",
        "/healthz",
        "/api/v1/reload",
        "/",
    ] {
        let r = client().get(d.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (v["name"].as_str(), v["path"].as_str()),
            (Some("a"), Some(path)),
            "{path} went to the backend"
        );
    }
    // And with no route at all, admin paths are a plain 404 from the proxy.
    let d2 = Drover::start(&one_pool(&[a.addr], "").replace(
        "[[routes]]\npool = \"app\"",
        "[[routes]]\npath_prefix = \"/app\"\npool = \"app\"",
    ));
    let r = client().get(d2.url("/api/v1/pools")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(!r.text().await.unwrap().contains("\"backends\""));
}

#[tokio::test]
async fn openapi_lists_every_route_the_router_serves() {
    let a = Backend::start("a");
    let d = Drover::start(&one_pool(&[a.addr], ""));
    let doc = get(&d, "/api/v1/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // The served document is the one generated from the types and the route table.
    let generated: Value = serde_json::from_str(drover::admin::openapi::json()).unwrap();
    assert_eq!(doc, generated);
    let paths = doc["paths"].as_object().unwrap();
    for r in drover::admin::routes::ROUTES {
        let item = paths
            .get(r.path)
            .unwrap_or_else(|| panic!("{} missing from openapi.json", r.path));
        assert!(
            item.get(r.method.to_lowercase()).is_some(),
            "{} {} missing from openapi.json",
            r.method,
            r.path
        );
    }
    // And nothing documented that is not served.
    for (path, item) in paths {
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "parameters")
        {
            assert!(
                drover::admin::routes::ROUTES
                    .iter()
                    .any(|r| r.path == path && r.method.eq_ignore_ascii_case(method)),
                "{method} {path} is documented but not routed"
            );
        }
    }
    let r = client()
        .get(d.admin_url("/api/v1/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
}
