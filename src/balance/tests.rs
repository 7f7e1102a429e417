//! Unit and property tests for the selectors.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn all(_: usize) -> bool {
    true
}

fn run(
    sel: &dyn Selector,
    m: &StaticMembers,
    n: usize,
    eligible: &dyn Fn(usize) -> bool,
) -> Vec<usize> {
    (0..n)
        .map(|_| sel.select(m, &SelectContext::default(), eligible).unwrap())
        .collect()
}

fn counts(picks: &[usize]) -> HashMap<usize, usize> {
    let mut c = HashMap::new();
    for p in picks {
        *c.entry(*p).or_default() += 1;
    }
    c
}

#[test]
fn round_robin_gives_ten_each_of_thirty_over_three() {
    let m = StaticMembers::with_weights(vec![1, 1, 1]);
    let c = counts(&run(&RoundRobin::default(), &m, 30, &all));
    assert_eq!((c[&0], c[&1], c[&2]), (10, 10, 10));
}

#[test]
fn round_robin_skipping_a_member_does_not_double_its_successor() {
    let m = StaticMembers::with_weights(vec![1, 1, 1]);
    let picks = run(&RoundRobin::default(), &m, 8, &|i| i != 1);
    assert_eq!(picks, vec![0, 2, 0, 2, 0, 2, 0, 2]);
}

#[test]
fn empty_or_all_ineligible_is_none_for_every_algorithm() {
    let empty = StaticMembers::default();
    let m = StaticMembers::with_weights(vec![1, 2]);
    for b in Balance::ALL {
        let s = build(b, &[], &[], None);
        assert_eq!(
            s.select(&empty, &SelectContext::default(), &all),
            None,
            "{b:?}"
        );
        let s = build(b, &m.weights, &[1, 2], None);
        let ctx = SelectContext {
            hash: Some(7),
            ..Default::default()
        };
        assert_eq!(s.select(&m, &ctx, &|_| false), None, "{b:?}");
    }
}

#[test]
fn smooth_weighted_round_robin_matches_nginx_sequence() {
    let m = StaticMembers::with_weights(vec![5, 1, 1]);
    let picks = run(&WeightedRoundRobin::new(3), &m, 7, &all);
    assert_eq!(picks, vec![0, 0, 1, 0, 2, 0, 0]);
}

#[test]
fn least_conn_picks_least_loaded_relative_to_weight_and_rotates_ties() {
    let m = StaticMembers::with_weights(vec![1, 1, 2]);
    for _ in 0..4 {
        m.loads[0].begin_raw();
    }
    m.loads[1].begin_raw();
    m.loads[2].begin_raw();
    m.loads[2].begin_raw();
    // loads 4/1, 1/1, 2/2: members 1 and 2 tie at 1 per weight.
    let c = counts(&run(&LeastConn::default(), &m, 10, &all));
    assert_eq!(c.get(&0), None);
    assert_eq!((c[&1], c[&2]), (5, 5));
}

#[test]
fn p2c_prefers_the_cheaper_member() {
    let m = StaticMembers::with_weights(vec![1, 1]);
    m.loads[0].observe(std::time::Duration::from_millis(100));
    m.loads[1].observe(std::time::Duration::from_millis(1));
    let c = counts(&run(&P2cEwma, &m, 50, &all));
    assert_eq!(c.get(&0), None);
    assert_eq!(c[&1], 50);
}

#[test]
fn hash_without_key_falls_back_to_rotation() {
    let m = StaticMembers::with_weights(vec![1, 1, 1]);
    let s = HashSelector::new(vec![1, 2, 3]);
    let c = counts(&run(&s, &m, 30, &all));
    assert_eq!((c[&0], c[&1], c[&2]), (10, 10, 10));
}

fn weights_and_mask() -> impl Strategy<Value = (Vec<u32>, Vec<bool>)> {
    (1usize..50).prop_flat_map(|n| {
        (
            prop::collection::vec(1u32..10, n),
            prop::collection::vec(any::<bool>(), n),
        )
    })
}

proptest! {
    #[test]
    fn every_algorithm_returns_an_eligible_member_or_none_iff_none_eligible((w, mask) in weights_and_mask(), key in any::<u64>()) {
        let m = StaticMembers::with_weights(w.clone());
        let seeds: Vec<u64> = (0..w.len() as u64).collect();
        let any_eligible = mask.iter().any(|b| *b);
        for b in Balance::ALL {
            let s = build(b, &w, &seeds, None);
            for _ in 0..5 {
                let got = s.select(&m, &SelectContext { hash: Some(key), ..Default::default() }, &|i| mask[i]);
                match got {
                    Some(i) => prop_assert!(mask[i], "{:?} chose ineligible {}", b, i),
                    None => prop_assert!(!any_eligible, "{:?} returned None with eligible members", b),
                }
            }
        }
    }

    #[test]
    fn round_robin_gives_each_eligible_member_exactly_k_turns((w, mask) in weights_and_mask(), k in 1usize..5) {
        let e: Vec<usize> = (0..w.len()).filter(|i| mask[*i]).collect();
        prop_assume!(!e.is_empty());
        let m = StaticMembers::with_weights(w);
        let c = counts(&run(&RoundRobin::default(), &m, k * e.len(), &|i| mask[i]));
        for i in e {
            prop_assert_eq!(c.get(&i).copied().unwrap_or(0), k);
        }
    }

    #[test]
    fn weighted_round_robin_gives_each_member_its_weight_per_cycle(w in prop::collection::vec(1u32..10, 1..20)) {
        let total: u32 = w.iter().sum();
        let m = StaticMembers::with_weights(w.clone());
        let c = counts(&run(&WeightedRoundRobin::new(w.len()), &m, total as usize, &all));
        for (i, wi) in w.iter().enumerate() {
            prop_assert_eq!(c.get(&i).copied().unwrap_or(0), *wi as usize);
        }
    }

    #[test]
    fn least_conn_never_picks_a_strictly_more_loaded_member((w, mask) in weights_and_mask(), loads in prop::collection::vec(0u64..20, 50)) {
        let m = StaticMembers::with_weights(w.clone());
        for (i, l) in m.loads.iter().enumerate() {
            for _ in 0..loads[i] { l.begin_raw(); }
        }
        if let Some(p) = LeastConn::default().select(&m, &SelectContext::default(), &|i| mask[i]) {
            for j in (0..w.len()).filter(|j| mask[*j]) {
                // load_p / w_p <= load_j / w_j
                prop_assert!(loads[p] * u64::from(w[j]) <= loads[j] * u64::from(w[p]));
            }
        }
    }

    #[test]
    fn hash_is_stable_and_removal_moves_only_the_removed_members_keys(n in 2usize..20, keys in prop::collection::vec(any::<u64>(), 50), gone in any::<prop::sample::Index>()) {
        let m = StaticMembers::with_weights(vec![1; n]);
        let seeds: Vec<u64> = (0..n as u64).map(|i| i * 7919).collect();
        let s = HashSelector::new(seeds);
        let gone = gone.index(n);
        for key in keys {
            let ctx = SelectContext { hash: Some(key), ..Default::default() };
            let before = s.select(&m, &ctx, &all).unwrap();
            prop_assert_eq!(s.select(&m, &ctx, &all).unwrap(), before);
            let after = s.select(&m, &ctx, &|i| i != gone).unwrap();
            if before != gone {
                prop_assert_eq!(after, before);
            }
        }
    }
}

#[test]
fn random_follows_the_weights() {
    let m = StaticMembers::with_weights(vec![1, 2, 5]);
    let c = counts(&run(&Random, &m, 20_000, &all));
    for (i, w) in [(0usize, 1.0f64), (1, 2.0), (2, 5.0)] {
        let want = 20_000.0 * w / 8.0;
        let got = c[&i] as f64;
        assert!(
            (got - want).abs() / want < 0.25,
            "member {i}: {got} vs {want}"
        );
    }
}
