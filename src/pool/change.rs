//! What one [`super::Pool::apply`] changed. The event of a change comes from
//! it ([`Change::record`]), so an event is recorded only when the change
//! happened: never after a refused command, never for a state set to the one
//! the member already had.

use std::net::SocketAddr;
use std::time::Duration;

use super::MemberState;
use crate::events::{self, EventKind};

/// The change a command made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new config (reload); the member set follows it.
    Configured,
    /// A member joined.
    Added { address: SocketAddr },
    /// An existing member's weight was set (`Add` of an address already there).
    Reweighted { address: SocketAddr },
    /// A member left.
    Removed { address: SocketAddr },
    /// A member's state was set (`from == to`: it already was; nothing happened).
    State {
        address: SocketAddr,
        from: MemberState,
        to: MemberState,
    },
    /// A member was ejected for `eject_for`, the `streak`-th ejection in a row.
    Ejected {
        address: SocketAddr,
        eject_for: Duration,
        streak: u32,
    },
}

impl Change {
    /// The member whose membership or state changed; `None` for a reload, a
    /// weight update, or a state set to the one the member had.
    pub fn member(&self) -> Option<SocketAddr> {
        match *self {
            Change::Added { address }
            | Change::Removed { address }
            | Change::Ejected { address, .. } => Some(address),
            Change::State { address, from, to } if from != to => Some(address),
            Change::State { .. } | Change::Configured | Change::Reweighted { .. } => None,
        }
    }

    /// Records `kind` about the changed member (as the event's `backend`) in
    /// the event log of `pool`, when a member changed ([`Change::member`]);
    /// returns the event's id.
    pub fn record(&self, pool: &str, kind: EventKind, reason: impl Into<String>) -> Option<u64> {
        let address = self.member()?;
        Some(events::record(
            pool,
            kind,
            Some(address.to_string()),
            reason,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::{Pool, PoolCommand};
    use super::*;

    fn pool() -> Pool {
        let src = "[pools.changes]\nbackends = [\"127.0.0.1:9001\"]\n";
        let cfg = crate::config::load_str(src, None).expect("valid config");
        Pool::new(Arc::new(cfg.pools["changes"].clone()))
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn kinds_recorded(pool: &str) -> Vec<(EventKind, Option<String>)> {
        events::log()
            .since(0, usize::MAX)
            .into_iter()
            .filter(|e| e.pool == pool)
            .map(|e| (e.kind, e.backend))
            .collect()
    }

    #[test]
    fn apply_says_what_changed_and_only_a_change_records_its_event() {
        let p = pool();
        let add = |weight| PoolCommand::Add {
            address: addr(9002),
            weight,
            managed: false,
            state: MemberState::Healthy,
        };
        let c = p.apply(add(1)).unwrap();
        assert_eq!(
            c,
            Change::Added {
                address: addr(9002)
            }
        );
        assert!(c.record(&p.name, EventKind::Added, "test").is_some());
        // The same address again only sets the weight: no member joined.
        let c = p.apply(add(3)).unwrap();
        assert_eq!(
            c,
            Change::Reweighted {
                address: addr(9002)
            }
        );
        assert_eq!(c.record(&p.name, EventKind::Added, "test"), None);

        let drain = || PoolCommand::SetState {
            address: addr(9002),
            state: MemberState::Draining,
            reason: "test".into(),
        };
        let c = p.apply(drain()).unwrap();
        assert_eq!(c.member(), Some(addr(9002)));
        c.record(&p.name, EventKind::Draining, "test");
        // Draining a draining member changes nothing.
        let c = p.apply(drain()).unwrap();
        assert_eq!(c.member(), None);
        assert_eq!(c.record(&p.name, EventKind::Draining, "test"), None);

        // A refused transition is an error: there is no change to record.
        let refused = p.apply(PoolCommand::Transition {
            address: addr(9002),
            from: vec![MemberState::Healthy],
            to: MemberState::Unhealthy,
            reason: "test".into(),
        });
        assert!(refused.is_err());
        let c = p
            .apply(PoolCommand::Remove {
                address: addr(9002),
            })
            .unwrap();
        c.record(&p.name, EventKind::Removed, "test");
        assert!(p
            .apply(PoolCommand::Remove {
                address: addr(9002)
            })
            .is_err());

        let b = Some(addr(9002).to_string());
        assert_eq!(
            kinds_recorded(&p.name),
            vec![
                (EventKind::Added, b.clone()),
                (EventKind::Draining, b.clone()),
                (EventKind::Removed, b),
            ]
        );
    }
}
