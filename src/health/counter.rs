//! The rise/fall counter: a pure state machine over check results.
//!
//! A member that is "up" (healthy or ejected) goes down after `fall`
//! consecutive failed checks; a member that is "down" (unhealthy or starting)
//! comes up after `rise` consecutive passed checks. A result of the other kind
//! resets the streak. A counter made with [`RiseFall::first_decides`] lets the
//! member's first result decide alone (Envoy's rule for hosts that have never
//! been checked: "only a single successful health check is required" at
//! startup), so drover does not keep a member out of rotation for
//! `rise × interval` only because it has not looked at it yet. An
//! [`Verdict::Unknown`] result (the check could not run for a local reason)
//! changes nothing.

pub use crate::pool::Verdict;

/// Consecutive check results of one member (one of the two is always 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RiseFall {
    /// Consecutive passed checks.
    pub passes: u32,
    /// Consecutive failed checks.
    pub fails: u32,
    /// The member has had no pass or fail yet and its first one decides
    /// alone (a pass brings a down member up at once). Default `false`.
    pub first: bool,
}

/// A state change the counter calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flip {
    /// `rise` passes while down.
    Up,
    /// `fall` failures while up.
    Down,
}

impl RiseFall {
    /// A counter for a member that has never been checked: its first pass
    /// counts as `rise` passes.
    pub fn first_decides() -> RiseFall {
        RiseFall {
            first: true,
            ..RiseFall::default()
        }
    }

    /// Records one check result for a member that is currently `up` (or not)
    /// and returns the change it calls for, if any. `Unknown` leaves the
    /// counter as it was and calls for nothing.
    ///
    /// `rise` and `fall` are at least 1 (validated config); 0 is treated as 1.
    pub fn observe(&mut self, up: bool, verdict: Verdict, rise: u32, fall: u32) -> Option<Flip> {
        match verdict {
            Verdict::Unknown => None,
            Verdict::Pass => {
                let need = if self.first { 1 } else { rise.max(1) };
                self.first = false;
                self.passes = self.passes.saturating_add(1);
                self.fails = 0;
                (!up && self.passes >= need).then_some(Flip::Up)
            }
            Verdict::Fail => {
                self.first = false;
                self.fails = self.fails.saturating_add(1);
                self.passes = 0;
                (up && self.fails >= fall.max(1)).then_some(Flip::Down)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Verdict::{Fail, Pass, Unknown};

    #[test]
    fn falls_after_fall_failures_and_rises_after_rise_passes() {
        let mut c = RiseFall::default();
        assert_eq!(c.observe(true, Fail, 2, 3), None);
        assert_eq!(c.observe(true, Fail, 2, 3), None);
        assert_eq!(c.observe(true, Fail, 2, 3), Some(Flip::Down));
        assert_eq!(c.observe(false, Pass, 2, 3), None);
        assert_eq!(c.observe(false, Pass, 2, 3), Some(Flip::Up));
    }

    #[test]
    fn a_pass_resets_the_failure_streak() {
        let mut c = RiseFall::default();
        c.observe(true, Fail, 2, 2);
        c.observe(true, Pass, 2, 2);
        assert_eq!(c.observe(true, Fail, 2, 2), None);
        assert_eq!(c.observe(true, Fail, 2, 2), Some(Flip::Down));
    }

    #[test]
    fn a_never_checked_member_comes_up_on_its_first_pass() {
        let mut c = RiseFall::first_decides();
        assert_eq!(c.observe(false, Unknown, 3, 3), None);
        assert_eq!(c.observe(false, Pass, 3, 3), Some(Flip::Up));
        // Only the first result decides alone.
        assert_eq!(c.observe(true, Fail, 3, 3), None);
    }

    #[test]
    fn a_first_failure_leaves_rise_in_force() {
        let mut c = RiseFall::first_decides();
        assert_eq!(c.observe(false, Fail, 3, 3), None);
        assert_eq!(c.observe(false, Pass, 3, 3), None);
        assert_eq!(c.observe(false, Pass, 3, 3), None);
        assert_eq!(c.observe(false, Pass, 3, 3), Some(Flip::Up));
    }

    #[test]
    fn unknown_changes_nothing() {
        let mut c = RiseFall::default();
        c.observe(true, Fail, 2, 2);
        let before = c;
        for _ in 0..10 {
            assert_eq!(c.observe(true, Unknown, 2, 2), None);
        }
        assert_eq!(c, before);
        assert_eq!(c.observe(true, Fail, 2, 2), Some(Flip::Down));
    }

    /// Drives a member through `results`, applying every flip.
    fn run(
        start: RiseFall,
        start_up: bool,
        results: &[Verdict],
        rise: u32,
        fall: u32,
    ) -> Vec<(bool, Option<Flip>)> {
        let mut up = start_up;
        let mut c = start;
        results
            .iter()
            .map(|&v| {
                let f = c.observe(up, v, rise, fall);
                match f {
                    Some(Flip::Up) => up = true,
                    Some(Flip::Down) => up = false,
                    None => {}
                }
                (up, f)
            })
            .collect()
    }

    fn verdict() -> impl Strategy<Value = Verdict> {
        prop_oneof![Just(Pass), Just(Fail), Just(Unknown)]
    }

    fn counter() -> impl Strategy<Value = RiseFall> {
        any::<bool>().prop_map(|first| {
            if first {
                RiseFall::first_decides()
            } else {
                RiseFall::default()
            }
        })
    }

    proptest! {
        #[test]
        fn flips_only_after_a_full_streak(
            start in counter(),
            start_up in any::<bool>(),
            results in proptest::collection::vec(verdict(), 0..200),
            rise in 1u32..6,
            fall in 1u32..6,
        ) {
            // Unknown results are not part of any streak.
            let known: Vec<Verdict> = results.iter().copied().filter(|v| *v != Unknown).collect();
            let trace = run(start, start_up, &known, rise, fall);
            for (i, (_, flip)) in trace.iter().enumerate() {
                match flip {
                    Some(Flip::Up) if start.first && i == 0 => {
                        prop_assert_eq!(known[0], Pass);
                    }
                    Some(Flip::Up) => {
                        // The last `rise` results were passes.
                        prop_assert!(i + 1 >= rise as usize);
                        prop_assert!(known[i + 1 - rise as usize..=i].iter().all(|v| *v == Pass));
                    }
                    Some(Flip::Down) => {
                        prop_assert!(i + 1 >= fall as usize);
                        prop_assert!(known[i + 1 - fall as usize..=i].iter().all(|v| *v == Fail));
                    }
                    None => {}
                }
            }
        }

        #[test]
        fn unknown_results_leave_state_and_counts_unchanged(
            start in counter(),
            start_up in any::<bool>(),
            results in proptest::collection::vec(verdict(), 0..200),
            rise in 1u32..6,
            fall in 1u32..6,
        ) {
            // Step by step: an unknown result changes neither the counter nor the state.
            let mut c = start;
            let mut up = start_up;
            for v in &results {
                let before = c;
                let f = c.observe(up, *v, rise, fall);
                if *v == Unknown {
                    prop_assert_eq!(f, None);
                    prop_assert_eq!(c, before);
                }
                match f {
                    Some(Flip::Up) => up = true,
                    Some(Flip::Down) => up = false,
                    None => {}
                }
            }
            // And overall: the states reached are those of the known results alone.
            let known: Vec<Verdict> = results.iter().copied().filter(|v| *v != Unknown).collect();
            let with: Vec<(bool, Option<Flip>)> = run(start, start_up, &results, rise, fall)
                .into_iter()
                .zip(&results)
                .filter(|(_, v)| **v != Unknown)
                .map(|(t, _)| t)
                .collect();
            prop_assert_eq!(with, run(start, start_up, &known, rise, fall));
        }

        #[test]
        fn a_steady_signal_settles_in_the_matching_state(
            start in counter(),
            start_up in any::<bool>(),
            pass in any::<bool>(),
            rise in 1u32..6,
            fall in 1u32..6,
        ) {
            let n = rise.max(fall) as usize;
            let v = if pass { Pass } else { Fail };
            let trace = run(start, start_up, &vec![v; n], rise, fall);
            prop_assert_eq!(trace.last().unwrap().0, pass);
            // And never flips the wrong way.
            let wrong = if pass { Flip::Down } else { Flip::Up };
            prop_assert!(trace.iter().all(|(_, f)| *f != Some(wrong)));
        }
    }
}
