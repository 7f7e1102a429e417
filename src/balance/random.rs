//! `random`: weighted random choice among eligible members.

use rand::Rng;

use super::{MemberSet, SelectContext, Selector};

/// Chooses member `i` with probability `weight_i / sum of eligible weights`
/// (effective weights: lower during slow start)
/// (uniform when weights are equal), with the thread-local RNG.
#[derive(Debug, Default)]
pub struct Random;

impl Selector for Random {
    fn select(
        &self,
        members: &dyn MemberSet,
        ctx: &SelectContext,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        let total: u64 = (0..members.len())
            .filter(|&i| eligible(i))
            .map(|i| members.effective_weight(i, ctx.now))
            .sum();
        if total == 0 {
            return None;
        }
        let mut x = rand::rng().random_range(0..total);
        for i in (0..members.len()).filter(|&i| eligible(i)) {
            let w = members.effective_weight(i, ctx.now);
            if x < w {
                return Some(i);
            }
            x -= w;
        }
        None
    }
}
