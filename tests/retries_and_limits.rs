//! End to end: safe retries, the retry budget, passive ejection, connection
//! limits and the queue, against real backend processes.

mod common;
mod health_support;

use std::time::{Duration, Instant};

use common::{client, get_json, one_pool, Backend, Drover};
use health_support::*;

/// Sends `req` through drover to one of `bs`, SIGKILLs whichever member holds
/// it, and returns the response with the index of the killed member.
async fn kill_the_holder(
    bs: &[Backend; 2],
    req: reqwest::RequestBuilder,
) -> (reqwest::Response, usize) {
    let before = [served(bs[0].addr).await, served(bs[1].addr).await];
    let pending = tokio::spawn(req.send());
    let victim = loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if served(bs[0].addr).await > before[0] {
            break 0;
        }
        if served(bs[1].addr).await > before[1] {
            break 1;
        }
    };
    bs[victim].proc.signal("KILL");
    (pending.await.unwrap().unwrap(), victim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_to_a_member_dying_mid_request_is_not_replayed() {
    let bs = [Backend::start("b1"), Backend::start("b2")];
    let d = Drover::start(&one_pool(&[bs[0].addr, bs[1].addr], ""));
    let req = client().post(d.url("/delay/1500")).body("order #1");
    let (resp, victim) = kill_the_holder(&bs, req).await;
    assert_eq!(resp.status(), 502);
    assert!(resp.text().await.unwrap().contains("502 Bad Gateway"));
    assert_eq!(
        served(bs[1 - victim].addr).await,
        0,
        "the POST was replayed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_to_a_member_dying_mid_request_is_replayed_once() {
    let bs = [Backend::start("b1"), Backend::start("b2")];
    let d = Drover::start(&one_pool(&[bs[0].addr, bs[1].addr], ""));
    let (resp, victim) = kill_the_holder(&bs, client().get(d.url("/delay/1500"))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        served(bs[1 - victim].addr).await,
        1,
        "replayed exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_budget_caps_retries_when_every_member_fails() {
    let d = Drover::start(&one_pool(
        &[dead_addr(), dead_addr(), dead_addr()],
        "retries = 2",
    ));
    let n = 200u64;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let url = d.url("/x");
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut bodies = Vec::new();
            for _ in (w..n).step_by(8) {
                let r = c.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 502);
                bodies.push(r.text().await.unwrap());
            }
            bodies
        }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        bodies.extend(t.await.unwrap());
    }
    let secs = t0.elapsed().as_secs_f64().ceil();
    let retries = metric(&d, "drover_retries_total{pool=\"app\"}").await;
    // Without a budget: 2 per request = 400. With it: max(20% of 200, 3/s × 10 s),
    // plus 3/s for every second the test ran past the first window.
    let cap = (0.2 * n as f64).max(30.0) + 3.0 * (secs - 10.0).max(0.0);
    assert!(retries <= cap, "{retries} retries > {cap}");
    assert!(
        retries >= 30.0,
        "the budget's minimum was not used: {retries}"
    );
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("retry budget of pool app exhausted")),
        "{:?}",
        &bodies[..3]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_times_out_with_503_and_beyond_max_queue_is_immediate_503() {
    let b = Backend::start("only");
    let d = Drover::start(&one_pool(
        &[b.addr],
        "max_connections_per_backend = 1\nmax_queue = 2\nqueue_timeout = \"1s\"",
    ));
    let slow = tokio::spawn(client().get(d.url("/delay/4000")).send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    let queued: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client().get(d.url("/anything")).send()))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v: serde_json::Value = get_json(&d.admin_url("/api/v1/pools/app")).await;
    assert_eq!(v["queued"], 2, "{v}");

    // The queue is full: 503 at once, while the two are still waiting.
    let r = client().get(d.url("/anything")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("queue is full (2 waiting)"));
    assert!(queued.iter().all(|q| !q.is_finished()));

    for q in queued {
        let r = q.await.unwrap().unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        assert!(r.text().await.unwrap().contains("queue_timeout (1s)"));
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    assert_eq!(
        served(b.addr).await,
        1,
        "the refused ones never reached the member"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_request_is_served_when_the_member_frees_up() {
    let b = Backend::start("only");
    let d = Drover::start(&one_pool(
        &[b.addr],
        "max_connections_per_backend = 1\nqueue_timeout = \"20s\"",
    ));
    let slow_url = d.url("/delay/800");
    let slow = tokio::spawn(async move {
        let r = client().get(slow_url).send().await.unwrap();
        assert_eq!(r.status(), 200);
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    let fast = tokio::spawn(client().get(d.url("/anything")).send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let v: serde_json::Value = get_json(&d.admin_url("/api/v1/pools/app")).await;
    assert_eq!(v["queued"], 1, "{v}");
    assert_eq!(fast.await.unwrap().unwrap().status(), 200);
    // It waited for the slow one's slot (about 600 ms).
    assert!(
        t0.elapsed() >= Duration::from_millis(450),
        "{:?}",
        t0.elapsed()
    );
    slow.await.unwrap();
    assert_eq!(served(b.addr).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejection_keeps_at_least_half_of_the_members() {
    let live = Backend::start("live");
    let dead = [dead_addr(), dead_addr(), dead_addr()];
    let d = Drover::start(&one_pool(
        &[live.addr, dead[0], dead[1], dead[2]],
        // Enough retries that every request can reach the live member.
        "retries = 3\n[pools.app.passive]\nconsecutive_failures = 1\neject_for = \"60s\"",
    ));
    let c = client();
    for _ in 0..20 {
        let r = c.get(d.url("/x")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let st = states(&d).await;
    assert_eq!(st.iter().filter(|s| *s == "ejected").count(), 2, "{st:?}");
    assert_eq!(st.iter().filter(|s| *s == "healthy").count(), 2, "{st:?}");
    assert_eq!(member(&d, live.addr).await["state"], "healthy");
    let ev = events(&d).await;
    let ejected: Vec<_> = ev.iter().filter(|e| e.0 == "ejected").collect();
    assert_eq!(ejected.len(), 2, "{ev:?}");
    assert!(
        ejected[0].2.starts_with("1 consecutive failures: backend ")
            && ejected[0]
                .2
                .contains("connection refused; ejected for 60s (ejection 1 in a row)"),
        "{ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejected_member_returns_after_eject_for_doubling_while_it_keeps_failing() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let gone = dead_addr();
    let d = Drover::start(&one_pool(
        &[a.addr, b.addr, gone],
        "[pools.app.passive]\nconsecutive_failures = 2\neject_for = \"500ms\"",
    ));
    let c = client();
    let get_some = |n: usize| {
        let (c, url) = (c.clone(), d.url("/x"));
        async move {
            for _ in 0..n {
                let r = c.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
            }
        }
    };
    get_some(12).await;
    assert_eq!(member(&d, gone).await["state"], "ejected");
    // Back after 500 ms, fails twice more, out for 1 s this time.
    wait_state(&d, gone, "healthy", Duration::from_secs(5)).await;
    get_some(12).await;
    assert_eq!(member(&d, gone).await["state"], "ejected");
    let ev = events(&d).await;
    let kinds: Vec<&str> = ev
        .iter()
        .filter(|e| e.1 == gone.to_string())
        .map(|e| e.0.as_str())
        .collect();
    assert_eq!(kinds, ["ejected", "uneject", "ejected"], "{ev:?}");
    assert!(
        ev.iter()
            .any(|e| e.2.contains("ejected for 1s (ejection 2 in a row)")),
        "{ev:?}"
    );

    // Something listens there now: after its ejection it takes requests again.
    let back = Backend::start_on(&gone.to_string(), "back");
    wait_state(&d, gone, "healthy", Duration::from_secs(5)).await;
    get_some(12).await;
    assert!(served(back.addr).await > 0);
    assert_eq!(member(&d, gone).await["state"], "healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_500_is_not_a_failure_but_its_503_is() {
    let bs = [Backend::start("a"), Backend::start("b")];
    let d = Drover::start(&one_pool(
        &[bs[0].addr, bs[1].addr],
        "[pools.app.passive]\nconsecutive_failures = 1\neject_for = \"60s\"",
    ));
    let c = client();
    for _ in 0..10 {
        let r = c.get(d.url("/status/500")).send().await.unwrap();
        assert_eq!(r.status(), 500);
    }
    assert_eq!(states(&d).await, ["healthy", "healthy"]);
    // A 503 is retried on the other member, which answers 503 too; one of the
    // two is ejected, the other may not be (that would be more than half).
    let r = c.get(d.url("/status/503")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let mut st = states(&d).await;
    st.sort();
    assert_eq!(st, ["ejected", "healthy"]);
}
