//! The rise/fall counter: a pure state machine over check results.
//!
//! A member that is "up" (healthy or ejected) goes down after `fall`
//! consecutive failed checks; a member that is "down" (unhealthy or starting)
//! comes up after `rise` consecutive passed checks. A result of the other kind
//! resets the streak.

/// Consecutive check results of one member (one of the two is always 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RiseFall {
    /// Consecutive passed checks.
    pub passes: u32,
    /// Consecutive failed checks.
    pub fails: u32,
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
    /// Records one check result for a member that is currently `up` (or not)
    /// and returns the change it calls for, if any.
    ///
    /// `rise` and `fall` are at least 1 (validated config); 0 is treated as 1.
    pub fn observe(&mut self, up: bool, pass: bool, rise: u32, fall: u32) -> Option<Flip> {
        if pass {
            self.passes = self.passes.saturating_add(1);
            self.fails = 0;
            (!up && self.passes >= rise.max(1)).then_some(Flip::Up)
        } else {
            self.fails = self.fails.saturating_add(1);
            self.passes = 0;
            (up && self.fails >= fall.max(1)).then_some(Flip::Down)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn falls_after_fall_failures_and_rises_after_rise_passes() {
        let mut c = RiseFall::default();
        assert_eq!(c.observe(true, false, 2, 3), None);
        assert_eq!(c.observe(true, false, 2, 3), None);
        assert_eq!(c.observe(true, false, 2, 3), Some(Flip::Down));
        assert_eq!(c.observe(false, true, 2, 3), None);
        assert_eq!(c.observe(false, true, 2, 3), Some(Flip::Up));
    }

    #[test]
    fn a_pass_resets_the_failure_streak() {
        let mut c = RiseFall::default();
        c.observe(true, false, 2, 2);
        c.observe(true, true, 2, 2);
        assert_eq!(c.observe(true, false, 2, 2), None);
        assert_eq!(c.observe(true, false, 2, 2), Some(Flip::Down));
    }

    /// Drives a member through `results`, applying every flip.
    fn run(start_up: bool, results: &[bool], rise: u32, fall: u32) -> Vec<(bool, Option<Flip>)> {
        let mut up = start_up;
        let mut c = RiseFall::default();
        results
            .iter()
            .map(|&pass| {
                let f = c.observe(up, pass, rise, fall);
                match f {
                    Some(Flip::Up) => up = true,
                    Some(Flip::Down) => up = false,
                    None => {}
                }
                (up, f)
            })
            .collect()
    }

    proptest! {
        #[test]
        fn flips_only_after_a_full_streak(
            start_up in any::<bool>(),
            results in proptest::collection::vec(any::<bool>(), 0..200),
            rise in 1u32..6,
            fall in 1u32..6,
        ) {
            let trace = run(start_up, &results, rise, fall);
            for (i, (_, flip)) in trace.iter().enumerate() {
                match flip {
                    Some(Flip::Up) => {
                        // The last `rise` results were passes.
                        prop_assert!(i + 1 >= rise as usize);
                        prop_assert!(results[i + 1 - rise as usize..=i].iter().all(|p| *p));
                    }
                    Some(Flip::Down) => {
                        prop_assert!(i + 1 >= fall as usize);
                        prop_assert!(results[i + 1 - fall as usize..=i].iter().all(|p| !*p));
                    }
                    None => {}
                }
            }
        }

        #[test]
        fn a_steady_signal_settles_in_the_matching_state(
            start_up in any::<bool>(),
            pass in any::<bool>(),
            rise in 1u32..6,
            fall in 1u32..6,
        ) {
            let n = rise.max(fall) as usize;
            let trace = run(start_up, &vec![pass; n], rise, fall);
            prop_assert_eq!(trace.last().unwrap().0, pass);
            // And never flips the wrong way.
            let wrong = if pass { Flip::Down } else { Flip::Up };
            prop_assert!(trace.iter().all(|(_, f)| *f != Some(wrong)));
        }
    }
}
