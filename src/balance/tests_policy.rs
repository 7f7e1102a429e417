//! Slow start and bounded loads in every selector: unit and property tests.

use std::collections::HashMap;
use std::time::Instant;

use proptest::prelude::*;

use super::*;

/// Three members of weight 1; member 2 in slow start at `factor`.
fn ramping(factor: f64) -> StaticMembers {
    let mut m = StaticMembers::with_weights(vec![1, 1, 1]);
    m.factors = vec![1.0, 1.0, factor];
    m
}

/// Picks over `n` requests with a fresh key each (for `hash`).
fn shares(b: Balance, m: &StaticMembers, n: usize, now: Option<Instant>) -> HashMap<usize, usize> {
    let s = build(b, &m.weights, &[11, 22, 33], None);
    let mut c = HashMap::new();
    for k in 0..n as u64 {
        let ctx = SelectContext {
            hash: Some(k.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            now,
        };
        let i = s.select(m, &ctx, &|_| true).expect("a member");
        *c.entry(i).or_default() += 1;
    }
    c
}

#[test]
fn a_member_in_slow_start_gets_a_reduced_share_from_weighted_algorithms() {
    let m = ramping(0.1);
    let now = Some(Instant::now());
    // Expected share of member 2: 0.1 / 2.1 = 4.8% (vs 33% at full weight).
    for b in [
        Balance::RoundRobin,
        Balance::WeightedRoundRobin,
        Balance::Random,
        Balance::LeastConn,
    ] {
        let c = shares(b, &m, 6000, now);
        let got = c.get(&2).copied().unwrap_or(0) as f64 / 6000.0;
        assert!(got > 0.02 && got < 0.09, "{b:?}: share {got}");
        // Without a `now` (no window active) the factor is not read.
        let c = shares(b, &m, 6000, None);
        let full = c.get(&2).copied().unwrap_or(0) as f64 / 6000.0;
        assert!(full > 0.28, "{b:?}: full share {full}");
    }
}

#[test]
fn hash_without_a_key_rotates_with_slow_start() {
    let m = ramping(0.1);
    let s = build(Balance::Hash, &m.weights, &[11, 22, 33], None);
    let now = Some(Instant::now());
    let picks: Vec<usize> = (0..3000)
        .map(|_| {
            s.select(&m, &SelectContext { hash: None, now }, &|_| true)
                .unwrap()
        })
        .collect();
    let share = picks.iter().filter(|&&i| i == 2).count() as f64 / 3000.0;
    assert!(share > 0.02 && share < 0.09, "share {share}");
}

#[test]
fn p2c_ewma_divides_the_cost_by_the_effective_weight() {
    let m = ramping(0.1);
    let c = shares(Balance::P2cEwma, &m, 3000, Some(Instant::now()));
    // Equal latency and load: the ramping member costs 10x and loses every comparison.
    assert_eq!(c.get(&2).copied().unwrap_or(0), 0, "{c:?}");
}

#[test]
fn least_conn_divides_load_by_the_effective_weight() {
    let m = ramping(0.5);
    // 1 in flight on a half-weight member counts as 2 on a full one.
    m.loads[0].begin_raw();
    m.loads[1].begin_raw();
    m.loads[2].begin_raw();
    m.loads[0].begin_raw();
    let s = LeastConn::default();
    let ctx = SelectContext {
        hash: None,
        now: Some(Instant::now()),
    };
    // loads 2, 1, 1 -> ratios 2, 1, 2: member 1.
    assert_eq!(s.select(&m, &ctx, &|_| true), Some(1));
}

#[test]
fn hash_bounds_a_ramping_member_by_its_share() {
    let mut m = ramping(0.1);
    m.factors = vec![1.0, 1.0, 0.1];
    let s = build(Balance::Hash, &m.weights, &[11, 22, 33], None);
    let now = Some(Instant::now());
    // Find keys that prefer member 2 when all is idle.
    let keys: Vec<u64> = (0..200u64)
        .filter(|k| {
            s.select(
                &m,
                &SelectContext {
                    hash: Some(*k),
                    now,
                },
                &|_| true,
            ) == Some(2)
        })
        .collect();
    assert!(keys.len() > 10);
    // With 10 requests in flight elsewhere, its capacity is ceil(11 × 0.1/2.1) = 1:
    // one in flight on it sends its keys to the others.
    for _ in 0..5 {
        m.loads[0].begin_raw();
        m.loads[1].begin_raw();
    }
    m.loads[2].begin_raw();
    for k in keys {
        let got = s.select(&m, &SelectContext { hash: Some(k), now }, &|_| true);
        assert_ne!(got, Some(2), "key {k}");
        // Outside the window the key stays.
        let got = s.select(
            &m,
            &SelectContext {
                hash: Some(k),
                now: None,
            },
            &|_| true,
        );
        assert_eq!(got, Some(2), "key {k}");
    }
}

#[test]
fn every_algorithm_still_picks_a_lone_ramping_member() {
    let mut m = StaticMembers::with_weights(vec![1]);
    m.factors = vec![0.1];
    for b in Balance::ALL {
        let s = build(b, &m.weights, &[1], None);
        let ctx = SelectContext {
            hash: Some(5),
            now: Some(Instant::now()),
        };
        assert_eq!(s.select(&m, &ctx, &|_| true), Some(0), "{b:?}");
    }
}

fn loads_strategy() -> impl Strategy<Value = (Vec<u64>, f64)> {
    (
        (2usize..12).prop_flat_map(|n| prop::collection::vec(0u64..6, n)),
        1.01f64..3.0,
    )
}

proptest! {
    #[test]
    fn bounded_hash_maps_like_plain_hash_when_loads_are_equal(
        n in 2usize..12,
        load in 0u64..8,
        c in 1.01f64..3.0,
        keys in prop::collection::vec(any::<u64>(), 20),
    ) {
        let m = StaticMembers::with_weights(vec![1; n]);
        for l in &m.loads {
            for _ in 0..load { l.begin_raw(); }
        }
        let seeds: Vec<u64> = (0..n as u64).map(|i| i * 7919).collect();
        let plain = HashSelector::new(seeds.clone());
        let bounded = HashSelector::new(seeds).bounded(Some(c));
        for key in keys {
            let ctx = SelectContext { hash: Some(key), now: None };
            prop_assert_eq!(bounded.select(&m, &ctx, &|_| true), plain.select(&m, &ctx, &|_| true));
        }
    }

    #[test]
    fn bounded_hash_never_exceeds_the_bound(
        (start, c) in loads_strategy(),
        keys in prop::collection::vec(any::<u64>(), 1..200),
        releases in prop::collection::vec(any::<prop::sample::Index>(), 200),
    ) {
        let n = start.len();
        // Start balanced within the bound: equal loads.
        let base = start[0];
        let m = StaticMembers::with_weights(vec![1; n]);
        let mut loads = vec![base; n];
        for l in &m.loads {
            for _ in 0..base { l.begin_raw(); }
        }
        let seeds: Vec<u64> = (0..n as u64).collect();
        let s = HashSelector::new(seeds).bounded(Some(c));
        for (step, key) in keys.iter().enumerate() {
            let ctx = SelectContext { hash: Some(*key), now: None };
            let i = s.select(&m, &ctx, &|_| true).unwrap();
            m.loads[i].begin_raw();
            loads[i] += 1;
            let total: u64 = loads.iter().sum();
            // No member above c × mean, plus one.
            let bound = (c * total as f64 / n as f64).ceil() as u64;
            prop_assert!(loads[i] <= bound, "member {} has {} > {} (total {})", i, loads[i], bound, total);
            // Requests end now and then.
            if step % 3 == 2 {
                let j = releases[step % releases.len()].index(n);
                if loads[j] > 0 {
                    m.loads[j].end();
                    loads[j] -= 1;
                }
            }
        }
    }

    #[test]
    fn bounded_capacity_sums_above_the_load(
        weights in prop::collection::vec(1u64..5000, 1..20),
        inflight in 0u64..10_000,
        c in 1.0f64..4.0,
    ) {
        let total: u64 = weights.iter().sum();
        let caps: u64 = weights.iter().map(|w| bounded_capacity(c, inflight, *w, total)).sum();
        // Some member always has room for one more.
        prop_assert!(caps > inflight);
    }
}
