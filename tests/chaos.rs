//! Chaos under steady load, retries on: members SIGKILLed and restarted, a
//! member hung by SIGSTOP, a member that resets connections mid-response.
//!
//! Members are `drover backend` processes the test starts itself (`-v`, so
//! each logs every request it reads, before answering: the POST ids they saw
//! survive a SIGKILL in the test's copy of their stderr). Killed members are
//! restarted on the same port, as a supervisor (systemd, a container restart
//! policy) would do: that exercises drover's own detection and return of a
//! static member, where a managed pool would hide the dead one behind a new
//! address. Each test prints its figures as `[chaos]` lines (`--nocapture`).

mod chaos_support;
mod common;
mod health_support;

use std::net::SocketAddr;
use std::time::Duration;

use chaos_support::{
    assert_no_post_replayed, posts_logged, Cut, Figures, Outcome, Resetter, Traffic,
};
use common::{healthy_count, one_pool, wait_until, Backend, Drover, Lines};
use health_support::{events, member, metric, wait_state};
use rand::Rng;

/// GET clients of every test (closed loops, so at most this many in flight).
const GET_CLIENTS: usize = 6;
/// POST clients of every test.
const POST_CLIENTS: usize = 2;
/// The path the load requests: the echo after 20 ms, so requests overlap.
const PATH: &str = "/delay/20";

/// `n` logged `drover backend` members named `m0`..
fn members(n: usize) -> Vec<Backend> {
    (0..n)
        .map(|i| Backend::start_logged("127.0.0.1:0", &format!("m{i}")))
        .collect()
}

/// Pool `app` over `addrs` with retries on, fast active checks and passive
/// ejection; `extra` adds keys to `[pools.app]`.
fn config(addrs: &[SocketAddr], extra: &str, health: &str, passive: &str) -> String {
    one_pool(
        addrs,
        &format!(
            "retries = 2\nconnect_timeout = \"1s\"\n{extra}\n\
             [pools.app.health]\npath = \"/health\"\n{health}\n\
             [pools.app.passive]\n{passive}\n"
        ),
    )
}

/// Starts drover and waits until all `n` members passed their checks.
async fn start_drover(config: &str, n: usize) -> Drover {
    let d = Drover::start(config);
    wait_until("every member healthy", 30, async || {
        healthy_count(&d, "app").await == n
    })
    .await;
    d
}

/// Every POST id the members logged (`logs` of every process, dead ones too).
fn received(logs: &[Lines]) -> Vec<String> {
    logs.iter().flat_map(posts_logged).collect()
}

/// (1) A random member SIGKILLed every 2 s for 20 s, restarted on its port
/// 300 ms later. Budget: a GET fails only if its member died after sending
/// the response head (a truncated body cannot be replayed); any GET failure
/// before a response head (connect refused, reset, 502/503/504) is outside it.
/// POSTs in flight on the killed member fail (502), never replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_a_random_member_every_2s_loses_no_get_and_replays_no_post() {
    let mut live = members(4);
    let addrs: Vec<SocketAddr> = live.iter().map(|b| b.addr).collect();
    let mut logs: Vec<Lines> = live.iter().map(|b| b.proc.stderr.clone()).collect();
    let cfg = dead_member_config(&addrs);
    let d = start_drover(&cfg, 4).await;
    let load = Traffic::start(&d.url(PATH), GET_CLIENTS, POST_CLIENTS);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut kills = Vec::new();
    for round in 0..10u32 {
        let i = rand::rng().random_range(0..live.len());
        let at = load.now();
        tokio::task::block_in_place(|| {
            live[i].proc.signal("KILL");
            live[i].proc.wait_exit(Duration::from_secs(5));
        });
        kills.push((at, i));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let name = format!("m{i}");
        let b = tokio::task::block_in_place(|| Backend::start_logged(&addrs[i].to_string(), &name));
        logs.push(b.proc.stderr.clone());
        live[i] = b;
        let next = Duration::from_secs(1 + 2 * (u64::from(round) + 1));
        tokio::time::sleep(next.saturating_sub(load.now())).await;
    }
    // Let the last restarted member come back while the load goes on.
    wait_until("every member healthy again", 20, async || {
        healthy_count(&d, "app").await == 4
    })
    .await;
    let outcomes = load.stop().await;
    let retries = metric(&d, "drover_retries_total{pool=\"app\"}").await;
    println!(
        "[chaos] sigkill: {} kills at {:?} (s, member); drover_retries_total {retries}",
        kills.len(),
        kills
            .iter()
            .map(|(t, i)| (format!("{:.1}", t.as_secs_f64()), *i))
            .collect::<Vec<_>>()
    );
    let f = Figures::of("sigkill", &outcomes);
    assert_no_post_replayed(&outcomes, &received(&logs));
    let unbudgeted: Vec<&Outcome> = f
        .failed_gets
        .iter()
        .filter(|o| o.status != Some(200))
        .collect();
    assert!(
        unbudgeted.is_empty(),
        "GETs failed before a response head: {unbudgeted:#?}"
    );
    assert!(
        f.failed_gets.len() <= kills.len(),
        "more truncated GETs than kills: {:#?}",
        f.failed_gets
    );
    assert!(f.gets > 500 && f.posts > 100, "too little load: {f:?}");
}

/// (2) A member hung by SIGSTOP (connect works, nothing answers), resumed by
/// SIGCONT 6 s later. Budget: the GETs sent to it before passive ejection,
/// each answered 504 after `request_timeout` (2 s): at most one per client
/// plus `consecutive_failures`, all before ejection + `request_timeout`.
/// Active checks (1 s timeout, then 1 s to the next; fall 3: at least 4 s)
/// are slower than passive ejection on purpose: the timeouts of live traffic
/// must take it out; after SIGCONT the checks (rise 2) bring it back before
/// its 8 s ejection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_member_is_ejected_by_timeouts_and_returns_after_sigcont() {
    let live = members(4);
    let addrs: Vec<SocketAddr> = live.iter().map(|b| b.addr).collect();
    let logs: Vec<Lines> = live.iter().map(|b| b.proc.stderr.clone()).collect();
    let request_timeout = Duration::from_secs(2);
    let consecutive = 2;
    let cfg = config(
        &addrs,
        "request_timeout = \"2s\"",
        "interval = \"1s\"\ntimeout = \"1s\"\nrise = 2\nfall = 3",
        &format!("consecutive_failures = {consecutive}\neject_for = \"8s\""),
    );
    let d = start_drover(&cfg, 4).await;
    let load = Traffic::start(&d.url(PATH), GET_CLIENTS, 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hung = addrs[0];
    let stopped_at = load.now();
    live[0].proc.signal("STOP");
    let detection = wait_state(&d, hung, "ejected", Duration::from_secs(10)).await;
    let ejected_at = load.now();
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(load.now() - stopped_at)).await;
    let resumed_at = load.now();
    live[0].proc.signal("CONT");
    let back = wait_state(&d, hung, "healthy", Duration::from_secs(20)).await;
    let back_at = load.now();
    // Traffic must reach it again.
    wait_until("the resumed member serves again", 10, async || {
        load.outcomes()
            .iter()
            .any(|o| o.at > back_at && o.backend == "m0" && o.ok())
    })
    .await;
    let outcomes = load.stop().await;
    println!(
        "[chaos] sigstop: stopped at {:.2}s, ejected {:.2}s later (state seen at {:.2}s), \
         SIGCONT at {:.2}s, healthy again {:.2}s after SIGCONT; member: {}",
        stopped_at.as_secs_f64(),
        detection.as_secs_f64(),
        ejected_at.as_secs_f64(),
        resumed_at.as_secs_f64(),
        back.as_secs_f64(),
        member(&d, hung).await
    );
    let f = Figures::of("sigstop", &outcomes);
    assert_no_post_replayed(&outcomes, &received(&logs));
    let evs = events(&d).await;
    let mine: Vec<_> = evs
        .iter()
        .filter(|(_, b, _)| *b == hung.to_string())
        .collect();
    println!("[chaos]   hung member events: {mine:?}");
    let ejected = evs
        .iter()
        .find(|(kind, backend, _)| kind == "ejected" && *backend == hung.to_string())
        .unwrap_or_else(|| panic!("no ejected event for {hung}: {evs:?}"));
    assert!(
        ejected.2.contains("did not answer"),
        "ejected for {ejected:?}"
    );
    let window_end = ejected_at + request_timeout + Duration::from_secs(1);
    let outside: Vec<&Outcome> = f
        .failed_gets
        .iter()
        .filter(|o| o.status != Some(504) || o.at < stopped_at || o.at > window_end)
        .collect();
    assert!(
        outside.is_empty(),
        "GET failures outside the budget: {outside:#?}"
    );
    assert!(
        f.failed_gets.len() <= GET_CLIENTS + consecutive,
        "more GET timeouts than the budget of {}: {}",
        GET_CLIENTS + consecutive,
        f.failed_gets.len()
    );
}

/// (3) One member of four resets every proxied request in the middle of the
/// response head (its `/health` answers properly, so only traffic sees it).
/// Budget: none for GETs (nothing usable arrived, so each is replayed on
/// another member); the POSTs it read fail with 502 and are not replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_resetting_in_the_response_head_costs_no_get_and_replays_no_post() {
    let (f, outcomes, resetter, d, logs) = run_with_resetter(Cut::InHead).await;
    assert!(
        f.failed_gets.is_empty(),
        "GETs failed: {:#?}",
        f.failed_gets
    );
    check_resetter_posts(&outcomes, &resetter, &logs);
    assert_resetter_ejected(&d, resetter.addr).await;
}

/// (3b) The same member, but it sends the whole head and half the body
/// before the reset. A GET whose head was forwarded cannot be replayed, so
/// each one routed there fails; the budget is the requests it gets before
/// each passive ejection (`consecutive_failures`, plus one per client already
/// in flight there), and as many after the last return to rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_resetting_in_the_response_body_is_ejected() {
    let (f, outcomes, resetter, d, logs) = run_with_resetter(Cut::InBody).await;
    check_resetter_posts(&outcomes, &resetter, &logs);
    assert_resetter_ejected(&d, resetter.addr).await;
    let ejections = metric(
        &d,
        &format!(
            "drover_backend_ejections_total{{pool=\"app\",backend=\"{}\"}}",
            resetter.addr
        ),
    )
    .await as usize;
    let budget = (3 + GET_CLIENTS) * (ejections + 1);
    assert!(
        f.failed_gets.len() <= budget,
        "{} GETs failed, budget {budget}",
        f.failed_gets.len()
    );
}

/// The config of the kill and reset tests: 5 s request timeout, checks every
/// 500 ms (rise 2, fall 2), ejection after 3 consecutive failures for 2 s.
fn dead_member_config(addrs: &[SocketAddr]) -> String {
    config(
        addrs,
        "request_timeout = \"5s\"",
        "interval = \"500ms\"\ntimeout = \"500ms\"\nrise = 2\nfall = 2",
        "consecutive_failures = 3\neject_for = \"2s\"",
    )
}

/// Three logged members and a [`Resetter`] under 8 s of load.
async fn run_with_resetter(cut: Cut) -> (Figures, Vec<Outcome>, Resetter, Drover, Vec<Lines>) {
    let resetter = Resetter::start(cut).await;
    let live = members(3);
    let mut addrs: Vec<SocketAddr> = live.iter().map(|b| b.addr).collect();
    addrs.push(resetter.addr);
    let cfg = dead_member_config(&addrs);
    let d = start_drover(&cfg, 4).await;
    let load = Traffic::start(&d.url(PATH), GET_CLIENTS, POST_CLIENTS);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let outcomes = load.stop().await;
    let title = format!("reset {cut:?}");
    let f = Figures::of(&title, &outcomes);
    let resets = resetter.resets.load(std::sync::atomic::Ordering::Relaxed);
    let retries = metric(&d, "drover_retries_total{pool=\"app\"}").await;
    println!("[chaos]   {resets} connections reset; drover_retries_total {retries}");
    assert!(resets > 0, "the resetter got no traffic");
    let logs = live.iter().map(|b| b.proc.stderr.clone()).collect();
    (f, outcomes, resetter, d, logs)
}

/// The POSTs the resetter read all failed (not replayed elsewhere), and no
/// POST reached two members.
fn check_resetter_posts(outcomes: &[Outcome], resetter: &Resetter, logs: &[Lines]) {
    let reset_posts = resetter.posts.lock().unwrap().clone();
    for id in &reset_posts {
        let o = outcomes.iter().find(|o| &o.id == id).expect("sent");
        assert!(!o.ok(), "POST {id} was reset yet answered 200: replayed");
    }
    let mut all = received(logs);
    all.extend(reset_posts);
    assert_no_post_replayed(outcomes, &all);
}

/// Passive ejection took the resetter out at least once; prints the events.
async fn assert_resetter_ejected(d: &Drover, addr: SocketAddr) {
    let evs = events(d).await;
    let mine: Vec<_> = evs
        .iter()
        .filter(|(_, b, _)| *b == addr.to_string())
        .collect();
    println!("[chaos]   resetter events: {mine:?}");
    assert!(
        mine.iter().any(|(kind, _, _)| kind == "ejected"),
        "resetter never ejected: {mine:?}"
    );
}
