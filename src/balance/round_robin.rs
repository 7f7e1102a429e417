//! `round_robin`: exact rotation over eligible members, shared by all threads.

use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;

use super::{slow_start, MemberSet, SelectContext, Selector};

/// Rotation with one atomic counter: 30 requests over 3 eligible members give
/// exactly 10/10/10. Ineligible members are skipped (the next eligible one in
/// rotation order takes the turn). While a slow-start window is active, a
/// member in it takes its turn only with probability = its weight factor
/// (otherwise the turn passes on), so its share ramps up with the factor.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// Returns the first eligible index at or after the rotating start offset.
    pub(crate) fn rotate(
        next: &AtomicUsize,
        len: usize,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        if len == 0 {
            return None;
        }
        let raw = next.fetch_add(1, Ordering::Relaxed);
        let start = raw % len;
        let skip = (0..len).find(|&k| eligible((start + k) % len))?;
        if skip > 0 {
            // Members were skipped: let the next call start after the chosen one,
            // so the member after a down one does not get two turns.
            let _ = next.compare_exchange(
                raw.wrapping_add(1),
                raw.wrapping_add(1 + skip),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        Some((start + skip) % len)
    }

    /// [`RoundRobin::rotate`], where a member in its slow-start window gives
    /// its turn away with probability 1 - its factor (after `len` refusals the
    /// last candidate takes it).
    pub(crate) fn rotate_ramped(
        next: &AtomicUsize,
        members: &dyn MemberSet,
        ctx: &SelectContext,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        let mut pick = Self::rotate(next, members.len(), eligible)?;
        if ctx.now.is_none() {
            return Some(pick);
        }
        let mut rng = rand::rng();
        for _ in 0..members.len() {
            let full = slow_start::scaled(members.weight(pick), 1.0);
            let eff = members.effective_weight(pick, ctx.now);
            if eff >= full || rng.random_range(0..full) < eff {
                break;
            }
            pick = Self::rotate(next, members.len(), eligible)?;
        }
        Some(pick)
    }
}

impl Selector for RoundRobin {
    fn select(
        &self,
        members: &dyn MemberSet,
        ctx: &SelectContext,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        Self::rotate_ramped(&self.next, members, ctx, eligible)
    }
}
