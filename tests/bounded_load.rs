//! End to end: `balance = "hash"` with `bounded_load`. One hot key whose
//! requests pile up spills over to other members instead of loading its own
//! past the bound; once the pile is gone the key maps where it did.

mod common;

use std::time::Duration;

use common::{client, one_pool, Backend, Drover};
use serde_json::Value;

/// Sends `n` concurrent `GET /delay/MS` with header `x-k: KEY`; returns the
/// backend names that answered.
async fn burst(d: &Drover, n: usize, ms: u64, key: &str) -> Vec<String> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (url, key) = (d.url(&format!("/delay/{ms}")), key.to_string());
            tokio::spawn(async move {
                let v: Value = client()
                    .get(url)
                    .header("x-k", key)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                v["name"].as_str().unwrap().to_string()
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn max_per_member(names: &[String]) -> usize {
    let mut counts = std::collections::HashMap::new();
    for n in names {
        *counts.entry(n.as_str()).or_insert(0usize) += 1;
    }
    counts.values().copied().max().unwrap_or(0)
}

#[tokio::test]
async fn a_hot_key_spills_over_within_the_bound_and_comes_back() {
    let bs = [
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    ];
    let addrs: Vec<_> = bs.iter().map(|b| b.addr).collect();
    let hash = "balance = \"hash\"\nhash_key = \"header:x-k\"";
    let plain = Drover::start(&one_pool(&addrs, hash));
    let bounded = Drover::start(&one_pool(&addrs, &format!("{hash}\nbounded_load = 1.25")));

    // Unbounded: the key's member takes every request of the burst.
    let names = burst(&plain, 12, 2500, "hot").await;
    assert_eq!(max_per_member(&names), 12, "{names:?}");
    let home = names[0].clone();

    // Bounded: the n-th request in flight may go to a member holding fewer than
    // ceil(1.25 × n / 3) (at most 5 of 12); the rest spill over.
    let names = burst(&bounded, 12, 2500, "hot").await;
    let max = max_per_member(&names);
    assert!(max <= 5, "{max} on one member: {names:?}");
    assert!(
        names.contains(&home),
        "the key's own member takes its share: {names:?}"
    );

    // Idle again: the key maps to its member, as without the bound.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..5 {
        assert_eq!(
            burst(&bounded, 1, 0, "hot").await,
            std::slice::from_ref(&home)
        );
    }
}
