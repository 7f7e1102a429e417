//! `weighted_round_robin`: smooth weighted round robin, as nginx does it,
//! on effective weights (slow start).

use parking_lot::Mutex;

use super::{MemberSet, SelectContext, Selector};

/// Each pick adds every eligible member's weight to its current weight, takes
/// the largest, and subtracts the round's total from it: weights 5,1,1 give
/// a a b a c a a. The mutex is held only for this arithmetic.
#[derive(Debug)]
pub struct WeightedRoundRobin {
    current: Mutex<Vec<i64>>,
}

impl WeightedRoundRobin {
    /// For `n` members.
    pub fn new(n: usize) -> Self {
        WeightedRoundRobin {
            current: Mutex::new(vec![0; n]),
        }
    }
}

impl Selector for WeightedRoundRobin {
    fn select(
        &self,
        members: &dyn MemberSet,
        ctx: &SelectContext,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        let mut cur = self.current.lock();
        if cur.len() != members.len() {
            cur.resize(members.len(), 0);
        }
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for i in 0..members.len() {
            if !eligible(i) {
                continue;
            }
            // Thousandths; below full weight during slow start.
            let w = members.effective_weight(i, ctx.now) as i64;
            cur[i] += w;
            total += w;
            if best.is_none_or(|b| cur[i] > cur[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        cur[b] -= total;
        Some(b)
    }
}
