//! `round_robin`: exact rotation over eligible members, shared by all threads.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{MemberSet, SelectContext, Selector};

/// Rotation with one atomic counter: 30 requests over 3 eligible members give
/// exactly 10/10/10. Ineligible members are skipped (the next eligible one in
/// rotation order takes the turn).
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
}

impl Selector for RoundRobin {
    fn select(
        &self,
        members: &dyn MemberSet,
        _ctx: &SelectContext,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        Self::rotate(&self.next, members.len(), eligible)
    }
}
