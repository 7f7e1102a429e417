//! [`super::reconcile`] alone: rounds of a book against what is seen, with
//! unit tests for each rule and a property over any sequence of events.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use super::reconcile::*;
use crate::pool::MemberState;

const START_TIMEOUT: Duration = Duration::from_secs(30);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn want(count: usize) -> Desired {
    Desired {
        count,
        start_timeout: START_TIMEOUT,
        closing: false,
    }
}

fn state(pairs: &[(&str, MemberState)]) -> Observed {
    let seen = pairs.iter().map(|(id, st)| {
        let s = Seen {
            state: Some(*st),
            ..Seen::default()
        };
        (id.to_string(), s)
    });
    Observed {
        seen: seen.collect(),
    }
}

fn exited(id: &str) -> Observed {
    let s = Seen {
        exited: Some("exit status 1".into()),
        ended: true,
        ..Seen::default()
    };
    Observed {
        seen: HashMap::from([(id.to_string(), s)]),
    }
}

fn waits(actions: &[Action]) -> Vec<u64> {
    let waits = actions.iter().filter_map(|a| match a {
        Action::Replace { wait, .. } => Some(wait.as_secs()),
        _ => None,
    });
    waits.collect()
}

#[test]
fn backoff_doubles_from_one_second_to_a_minute() {
    let got: Vec<u64> = (0..9).map(|f| backoff(f).as_secs()).collect();
    assert_eq!(got, vec![0, 1, 2, 4, 8, 16, 32, 60, 60]);
    assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
}

#[test]
fn starts_one_per_round_up_to_desired_and_nothing_when_closing() {
    let t0 = Instant::now();
    let mut book = Book::new(t0);
    assert_eq!(
        reconcile(&mut book, &Observed::default(), &want(2), t0),
        vec![Action::Start]
    );
    book.started("a".into(), addr(1), t0);
    assert_eq!(
        reconcile(&mut book, &Observed::default(), &want(2), t0),
        vec![Action::Start]
    );
    book.started("b".into(), addr(2), t0);
    assert!(reconcile(&mut book, &Observed::default(), &want(2), t0).is_empty());
    let closing = Desired {
        closing: true,
        ..want(3)
    };
    assert!(reconcile(&mut book, &Observed::default(), &closing, t0).is_empty());
}

#[test]
fn a_crash_loop_backs_off_doubling_to_a_minute_and_ends_when_one_is_healthy() {
    let mut now = Instant::now();
    let mut book = Book::new(now);
    let mut got = Vec::new();
    for round in 0..9 {
        let id = format!("i{round}");
        // Nothing starts before the back-off is over.
        if round > 0 {
            let early = reconcile(&mut book, &Observed::default(), &want(1), now);
            assert!(!early.contains(&Action::Start), "round {round}: {early:?}");
            now = book.next_start;
        }
        let a = reconcile(&mut book, &Observed::default(), &want(1), now);
        assert_eq!(a, vec![Action::Start]);
        book.started(id.clone(), addr(1), now);
        let a = reconcile(&mut book, &exited(&id), &want(1), now);
        got.extend(waits(&a));
        assert!(a.contains(&Action::Forget { id: id.clone() }), "{a:?}");
        assert!(book.tracked.is_empty());
    }
    assert_eq!(got, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);

    // One becomes healthy: the next failure backs off 1 s again.
    now = book.next_start;
    reconcile(&mut book, &Observed::default(), &want(1), now);
    book.started("ok".into(), addr(1), now);
    now += Duration::from_secs(3);
    let a = reconcile(
        &mut book,
        &state(&[("ok", MemberState::Healthy)]),
        &want(1),
        now,
    );
    assert_eq!(
        a,
        vec![Action::Ready {
            id: "ok".into(),
            took: Duration::from_secs(3)
        }]
    );
    let a = reconcile(&mut book, &exited("ok"), &want(1), now);
    assert_eq!(waits(&a), vec![1]);
}

#[test]
fn start_timeout_counts_from_the_start_then_from_the_first_unhealthy_look() {
    let t0 = Instant::now();
    let mut book = Book::new(t0);
    book.started("a".into(), addr(1), t0);
    let starting = state(&[("a", MemberState::Starting)]);
    let at = |s| t0 + Duration::from_secs(s);
    assert!(reconcile(&mut book, &starting, &want(1), at(30)).is_empty());
    let a = reconcile(&mut book, &starting, &want(1), at(31));
    assert!(
        matches!(&a[0], Action::Replace { why, .. } if why.contains("not healthy within")),
        "{a:?}"
    );
    assert_eq!(a.len(), 1, "the next start waits for the back-off: {a:?}");

    let mut book = Book::new(t0);
    book.started("b".into(), addr(2), t0);
    reconcile(
        &mut book,
        &state(&[("b", MemberState::Healthy)]),
        &want(1),
        at(5),
    );
    let sick = state(&[("b", MemberState::Unhealthy)]);
    assert!(reconcile(&mut book, &sick, &want(1), at(100)).is_empty());
    assert!(reconcile(&mut book, &sick, &want(1), at(130)).is_empty());
    let a = reconcile(&mut book, &sick, &want(1), at(131));
    assert!(
        matches!(&a[0], Action::Replace { why, .. } if why.contains("unhealthy for longer")),
        "{a:?}"
    );
}

#[test]
fn adopted_instances_are_tracked_once_and_wait_for_their_health_check() {
    let t0 = Instant::now();
    let mut book = Book::new(t0);
    let running = vec![("c1".to_string(), addr(1)), ("c2".to_string(), addr(2))];
    let a = adopt(&mut book, &running, t0);
    assert_eq!(
        a,
        vec![
            Action::Adopt {
                id: "c1".into(),
                address: addr(1)
            },
            Action::Adopt {
                id: "c2".into(),
                address: addr(2)
            },
        ]
    );
    assert!(adopt(&mut book, &running, t0).is_empty(), "known already");
    assert_eq!(book.active(), 2);
    let a = reconcile(&mut book, &Observed::default(), &want(2), t0);
    assert!(a.is_empty(), "{a:?}");
}

#[test]
fn scale_down_drains_the_least_busy_newest_and_scale_up_during_drain_starts_anew() {
    let t0 = Instant::now();
    let mut book = Book::new(t0);
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        book.started(
            id.to_string(),
            addr(i as u16),
            t0 + Duration::from_secs(i as u64),
        );
    }
    let mut seen = state(&[
        ("a", MemberState::Healthy),
        ("b", MemberState::Healthy),
        ("c", MemberState::Healthy),
    ]);
    seen.seen.get_mut("c").unwrap().inflight = 4;
    let now = t0 + Duration::from_secs(10);
    let a = reconcile(&mut book, &seen, &want(1), now);
    let drained = |a: &[Action]| -> Vec<String> {
        let ids = a.iter().filter_map(|a| match a {
            Action::Drain { id, .. } => Some(id.clone()),
            _ => None,
        });
        ids.collect()
    };
    assert_eq!(drained(&a), vec!["b"], "idle and newest first: {a:?}");
    let a = reconcile(&mut book, &seen, &want(1), now);
    assert_eq!(drained(&a), vec!["a"], "then the other idle one");
    assert_eq!(book.active(), 1);
    // Scale up while both drain: draining ones do not count, one start.
    let a = reconcile(&mut book, &seen, &want(2), now);
    assert_eq!(a, vec![Action::Start]);
    // A sticky member is drained last.
    let mut book = Book::new(t0);
    book.started("x".into(), addr(1), t0);
    book.started("y".into(), addr(2), t0);
    let mut seen = state(&[("x", MemberState::Healthy), ("y", MemberState::Healthy)]);
    seen.seen.get_mut("x").unwrap().sticky = 1;
    seen.seen.get_mut("y").unwrap().inflight = 9;
    assert_eq!(
        drained(&reconcile(&mut book, &seen, &want(1), now)),
        vec!["y"]
    );
}

#[test]
fn a_drain_ends_when_idle_and_quiet_or_at_its_deadline() {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(30);
    assert!(!drain_over(1, true, t0, deadline));
    assert!(
        !drain_over(0, false, t0, deadline),
        "sticky sessions still come"
    );
    assert!(drain_over(0, true, t0, deadline));
    assert!(drain_over(5, false, deadline, deadline));
}

/// One event of the simulated world.
#[derive(Debug, Clone)]
enum Ev {
    /// Time passes (ms).
    Wait(u64),
    /// The desired count changes.
    Desire(usize),
    /// The n-th tracked instance (modulo) exits.
    Exit(usize),
    /// The n-th tracked instance (modulo) turns healthy / unhealthy.
    Health(usize, bool),
    /// The n-th tracked instance (modulo) gets or ends a request.
    Load(usize, bool),
    /// The next start fails.
    FailNext,
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        4 => (1u64..40_000).prop_map(Ev::Wait),
        2 => (0usize..6).prop_map(Ev::Desire),
        1 => any::<usize>().prop_map(Ev::Exit),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(i, h)| Ev::Health(i, h)),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, b)| Ev::Load(i, b)),
        1 => Just(Ev::FailNext),
    ]
}

/// The world the controller sees: per id, its pool state, load and end.
#[derive(Default)]
struct World {
    seen: HashMap<String, Seen>,
    fail_next: bool,
    started: u32,
}

impl World {
    fn nth(&self, book: &Book, i: usize) -> Option<String> {
        let ids: Vec<&String> = book.tracked.keys().collect();
        (!ids.is_empty()).then(|| ids[i % ids.len()].clone())
    }
}

proptest! {
    /// Over any sequence of exits, health changes, load, desired counts and
    /// failed starts: a start happens only below desired, after the back-off
    /// and not when closing; in rotation never exceeds desired after a start;
    /// back-offs stay within [1 s, 60 s] and push the next start back; an
    /// instance is replaced or drained at most once, never once stopping; a
    /// drained member had no fewer sticky-then-in-flight than another idle
    /// candidate; every exited instance is forgotten in the round it ends.
    #[test]
    fn reconcile_keeps_its_promises(
        evs in prop::collection::vec(ev(), 1..120),
        close_at in 0usize..400,
    ) {
        let mut now = Instant::now();
        let mut book = Book::new(now);
        let mut world = World::default();
        let mut desired = want(2);
        let mut stopped: Vec<String> = Vec::new();
        for (i, e) in evs.into_iter().enumerate() {
            desired.closing |= i == close_at;
            match e {
                Ev::Wait(ms) => now += Duration::from_millis(ms),
                Ev::Desire(n) => desired.count = n,
                Ev::Exit(i) => if let Some(id) = world.nth(&book, i) {
                    let s = world.seen.entry(id).or_default();
                    if !s.ended {
                        s.exited = Some("killed".into());
                        s.ended = true;
                    }
                },
                Ev::Health(i, up) => if let Some(id) = world.nth(&book, i) {
                    let s = world.seen.entry(id).or_default();
                    if s.state.is_some() {
                        s.state = Some(if up { MemberState::Healthy } else { MemberState::Unhealthy });
                    }
                },
                Ev::Load(i, more) => if let Some(id) = world.nth(&book, i) {
                    let s = world.seen.entry(id).or_default();
                    s.inflight = if more { s.inflight + 1 } else { s.inflight.saturating_sub(1) };
                },
                Ev::FailNext => world.fail_next = true,
            }
            let before = book.clone();
            let seen = Observed { seen: world.seen.clone() };
            let actions = reconcile(&mut book, &seen, &desired, now);
            // An exit signal is read once.
            for s in world.seen.values_mut() {
                s.exited = None;
            }
            let starts = actions.iter().filter(|a| **a == Action::Start).count();
            let drains = actions.iter().filter(|a| matches!(a, Action::Drain { .. })).count();
            prop_assert!(starts + drains <= 1, "{actions:?}");
            for a in &actions {
                match a {
                    Action::Replace { id, .. } | Action::Drain { id, .. } => {
                        prop_assert!(!stopped.contains(id), "{id} stopped twice");
                        prop_assert!(before.tracked.get(id).is_some_and(|t| !t.stopping));
                        stopped.push(id.clone());
                        if let Action::Replace { wait, .. } = a {
                            prop_assert!(*wait >= BACKOFF_MIN && *wait <= BACKOFF_MAX);
                            prop_assert!(book.next_start >= now + BACKOFF_MIN);
                        }
                    }
                    Action::Forget { id } => {
                        prop_assert!(world.seen.get(id).is_some_and(|s| s.ended));
                    }
                    _ => {}
                }
                if let Action::Drain { id, .. } = a {
                    let key = |id: &String| {
                        let s = world.seen.get(id).cloned().unwrap_or_default();
                        (s.sticky, s.inflight)
                    };
                    // Candidates: those still in rotation after this round's replacements.
                    for (other, t) in &book.tracked {
                        if !t.stopping && other != id {
                            prop_assert!(key(id) <= key(other), "drained {id} over {other}");
                        }
                    }
                }
            }
            if starts == 1 {
                prop_assert!(!desired.closing);
                prop_assert!(now >= before.next_start);
                prop_assert!(book.active() < desired.count);
                if world.fail_next {
                    world.fail_next = false;
                    book.failed_start(now);
                } else {
                    world.started += 1;
                    let id = format!("i{}", world.started);
                    book.started(id.clone(), addr(world.started as u16), now);
                    world.seen.insert(id, Seen { state: Some(MemberState::Starting), ..Seen::default() });
                }
                prop_assert!(book.active() <= desired.count);
            }
            if drains == 1 {
                prop_assert!(book.active() >= desired.count);
            }
            for t in book.tracked.keys() {
                prop_assert!(!world.seen.get(t).is_some_and(|s| s.ended && book.tracked[t].stopping));
            }
        }
    }
}

proptest! {
    /// A member with requests in flight is never stopped before its drain
    /// deadline, and always at it; an idle, quiet one at once.
    #[test]
    fn a_drain_never_cuts_requests_before_its_deadline(
        inflight in 0u64..1000,
        quiet in any::<bool>(),
        at_ms in 0u64..120_000,
        timeout_ms in 0u64..120_000,
    ) {
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_millis(timeout_ms);
        let now = t0 + Duration::from_millis(at_ms);
        let over = drain_over(inflight, quiet, now, deadline);
        if now >= deadline {
            prop_assert!(over);
        } else {
            prop_assert_eq!(over, inflight == 0 && quiet);
        }
    }
}
