//! `slow_start`, `slow_start_aggression`, `bounded_load` and `sticky`: values and errors.

use super::tests::{assert_error, errors, load};
use super::*;
use std::time::Duration;

const B: &str = "backends = [\"127.0.0.1:8001\"]";

fn pool(body: &str) -> String {
    format!("[pools.api]\n{B}\n{body}\n")
}

/// Line and column of the error at `key`.
fn position(src: &str, key: &str) -> (Option<usize>, Option<usize>) {
    let errs = errors(src);
    let e = errs
        .iter()
        .find(|e| e.key == key)
        .unwrap_or_else(|| panic!("no error at {key}: {errs:?}"));
    (e.line, e.column)
}

#[test]
fn policy_is_off_by_default() {
    let c = load(&pool(""));
    assert_eq!(c.pools["api"].policy, LoadPolicy::default());
}

#[test]
fn reads_every_policy_key() {
    let c = load(&pool(
        "balance = \"hash\"\nslow_start = \"30s\"\nslow_start_aggression = 2\nbounded_load = 1.25\n\
         sticky = { cookie = \"s\", ttl = \"1h\", secure = true, http_only = false, same_site = \"None\" }",
    ));
    let p = &c.pools["api"].policy;
    assert_eq!(
        p.slow_start,
        Some(SlowStart {
            window: Duration::from_secs(30),
            aggression: 2.0
        })
    );
    assert_eq!(p.bounded_load, Some(1.25));
    assert_eq!(
        p.sticky,
        Some(StickyConfig {
            cookie: "s".into(),
            ttl: Some(Duration::from_secs(3600)),
            secure: true,
            http_only: false,
            same_site: SameSite::None,
        })
    );
}

#[test]
fn defaults_of_slow_start_and_sticky() {
    let c = load(&pool("slow_start = \"10s\"\nsticky = true"));
    let p = &c.pools["api"].policy;
    assert_eq!(p.slow_start.map(|s| s.aggression), Some(1.0));
    assert_eq!(p.sticky, Some(StickyConfig::default()));
    let c = load(&pool("sticky = {}"));
    assert_eq!(c.pools["api"].policy.sticky, Some(StickyConfig::default()));
    let c = load(&pool("sticky = false"));
    assert_eq!(c.pools["api"].policy.sticky, None);
}

#[test]
fn slow_start_errors_name_the_key_and_position() {
    assert_error(
        &pool("slow_start = \"0s\""),
        "pools.api.slow_start",
        "greater than 0s",
    );
    assert_error(
        &pool("slow_start = 30"),
        "pools.api.slow_start",
        "expected a duration",
    );
    assert_error(
        &pool("slow_start = \"30s\"\nslow_start_aggression = 0"),
        "pools.api.slow_start_aggression",
        "greater than 0",
    );
    assert_error(
        &pool("slow_start_aggression = 1.5"),
        "pools.api.slow_start_aggression",
        "only used with slow_start",
    );
    assert_eq!(
        position(&pool("slow_start = \"soon\""), "pools.api.slow_start"),
        (Some(3), Some(14))
    );
}

#[test]
fn bounded_load_must_exceed_one_and_needs_hash() {
    assert_error(
        &pool("balance = \"hash\"\nbounded_load = 1.0"),
        "pools.api.bounded_load",
        "greater than 1.0",
    );
    assert_error(
        &pool("balance = \"hash\"\nbounded_load = \"1.5\""),
        "pools.api.bounded_load",
        "expected a number",
    );
    assert_error(
        &pool("bounded_load = 1.5"),
        "pools.api.bounded_load",
        "only used with balance = \"hash\" (this pool uses \"round_robin\")",
    );
    assert_eq!(
        position(
            &pool("balance = \"least_conn\"\nbounded_load = 2"),
            "pools.api.bounded_load"
        ),
        (Some(4), Some(16))
    );
}

#[test]
fn sticky_fields_are_checked() {
    let key = "pools.api.sticky";
    assert_error(&pool("sticky = \"yes\""), key, "expected true or a table");
    assert_error(
        &pool("sticky = { cookie = \"a b\" }"),
        "pools.api.sticky.cookie",
        "not a valid cookie name",
    );
    assert_error(
        &pool("sticky = { ttl = \"0s\" }"),
        "pools.api.sticky.ttl",
        "greater than 0s",
    );
    assert_error(
        &pool("sticky = { secure = \"yes\" }"),
        "pools.api.sticky.secure",
        "expected true or false",
    );
    assert_error(
        &pool("sticky = { same_site = \"lax\" }"),
        "pools.api.sticky.same_site",
        "expected one of Strict, Lax, None",
    );
    assert_error(
        &pool("sticky = { same_site = \"None\" }"),
        "pools.api.sticky.same_site",
        "needs secure = true",
    );
    assert_error(
        &pool("sticky = { domain = \"x\" }"),
        "pools.api.sticky.domain",
        "unknown key",
    );
    // A [section] form works as well.
    let c = load(&format!(
        "[pools.api]\n{B}\n[pools.api.sticky]\ncookie = \"sid\"\n"
    ));
    assert_eq!(
        c.pools["api"]
            .policy
            .sticky
            .as_ref()
            .map(|s| s.cookie.as_str()),
        Some("sid")
    );
}

#[test]
fn check_summary_mentions_the_policy() {
    let c = load(&pool(
        "balance = \"hash\"\nslow_start = \"30s\"\nbounded_load = 1.25\nsticky = true",
    ));
    let line = summary_lines(&c).join("\n");
    for part in [
        "slow start 30s",
        "bounded load 1.25",
        "sticky cookie drover_sticky",
    ] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
}
