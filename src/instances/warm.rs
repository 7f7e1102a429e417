//! The warm pool (`[pools.NAME.autoscale] warm = N`): instances started,
//! health-checked and kept out of rotation (frozen with `warm_freeze`), so
//! that a scale-up — or a request at zero — takes one that is ready at once
//! instead of waiting for a start.
//!
//! Life cycle of a warm instance: `starting` (started, not in the pool) →
//! `ready` once a health check passes (then frozen with `warm_freeze`) →
//! taken by a scale-up (thawed, one passing health check, joins the pool as
//! healthy) — and the pool is refilled in the background. A warm instance
//! that does not pass a check within `start_timeout`, or exits, is stopped
//! and replaced; extra ones (after a reload, at zero with
//! `warm_at_zero = false`, at shutdown) are stopped.
//!
//! [`WarmPool`] is that life cycle as a pure state machine: the controller
//! feeds it what happened and carries out the [`Action`]s of [`WarmPool::plan`].

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{Provider, Started};
use crate::autoscale::policy::State;
use crate::config::{AutoscaleConfig, PoolConfig};
use crate::events;
use crate::pool::{MemberState, Pool, PoolCommand, WARM_START};
use std::sync::atomic::Ordering;

/// Where a warm instance is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Started; its health check has not passed yet.
    Starting,
    /// Passed a health check; waiting to be taken.
    Ready,
}

/// One warm instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warm {
    pub id: String,
    pub address: SocketAddr,
    pub phase: Phase,
    pub started_at: Instant,
    /// When it passed its health check.
    pub ready_at: Option<Instant>,
    pub frozen: bool,
    /// Freezing it failed (it waits unfrozen).
    pub freeze_failed: bool,
}

/// What the controller should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start one more warm instance.
    Start,
    /// Freeze this ready instance.
    Freeze(String),
    /// Stop this instance, with why.
    Stop(String, String),
}

/// How many warm instances the pool should keep now.
pub fn wanted(cfg: Option<&AutoscaleConfig>, desired: u32, closing: bool) -> u32 {
    match cfg {
        Some(a) if !closing && (desired > 0 || a.warm_at_zero) => a.warm,
        _ => 0,
    }
}

/// The warm instances of one pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarmPool {
    members: Vec<Warm>,
}

impl WarmPool {
    /// A warm instance was started.
    pub fn started(&mut self, id: String, address: SocketAddr, now: Instant) {
        self.members.push(Warm {
            id,
            address,
            phase: Phase::Starting,
            started_at: now,
            ready_at: None,
            frozen: false,
            freeze_failed: false,
        });
    }

    /// Its health check passed: it is ready (and the start took the returned time).
    pub fn checked(&mut self, id: &str, now: Instant) -> Option<Duration> {
        let w = self.members.iter_mut().find(|w| w.id == id)?;
        if w.phase != Phase::Starting {
            return None;
        }
        w.phase = Phase::Ready;
        w.ready_at = Some(now);
        Some(now.duration_since(w.started_at))
    }

    /// It was frozen (`ok`), or freezing it failed (it is not tried again).
    pub fn frozen(&mut self, id: &str, ok: bool) {
        if let Some(w) = self.members.iter_mut().find(|w| w.id == id) {
            w.frozen = ok;
            w.freeze_failed = !ok;
        }
    }

    /// Takes the ready instance that waited longest, for a scale-up: it leaves
    /// the warm pool (the caller thaws it and lets it join).
    pub fn take(&mut self) -> Option<Warm> {
        let i = self
            .members
            .iter()
            .enumerate()
            .filter(|(_, w)| w.phase == Phase::Ready)
            .min_by_key(|(_, w)| w.ready_at)
            .map(|(i, _)| i)?;
        Some(self.members.remove(i))
    }

    /// Forgets an instance (it exited, failed or is being stopped).
    pub fn remove(&mut self, id: &str) -> Option<Warm> {
        let i = self.members.iter().position(|w| w.id == id)?;
        Some(self.members.remove(i))
    }

    /// `(ready, starting)`.
    pub fn counts(&self) -> (u32, u32) {
        let ready = self
            .members
            .iter()
            .filter(|w| w.phase == Phase::Ready)
            .count() as u32;
        (ready, self.members.len() as u32 - ready)
    }

    pub fn members(&self) -> &[Warm] {
        &self.members
    }

    /// What to do to keep `wanted` warm instances: stop the ones that did not
    /// become ready within `start_timeout` and the extra ones (those still
    /// starting first, then the newest), freeze ready ones with `freeze`, and
    /// start one more when short (one at a time; the controller calls again).
    /// Stopped instances leave the pool here.
    pub fn plan(
        &mut self,
        wanted: u32,
        freeze: bool,
        start_timeout: Duration,
        now: Instant,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let late: Vec<String> = self
            .members
            .iter()
            .filter(|w| {
                w.phase == Phase::Starting && now.duration_since(w.started_at) > start_timeout
            })
            .map(|w| w.id.clone())
            .collect();
        for id in late {
            self.remove(&id);
            out.push(Action::Stop(
                id,
                format!("not healthy within start_timeout {start_timeout:?}"),
            ));
        }
        while self.members.len() as u32 > wanted {
            let victim = self
                .members
                .iter()
                .enumerate()
                .max_by_key(|(_, w)| (w.phase == Phase::Starting, w.started_at))
                .map(|(i, _)| i);
            let Some(i) = victim else { break };
            let w = self.members.remove(i);
            out.push(Action::Stop(w.id, format!("warm pool holds {wanted} now")));
        }
        if freeze {
            for w in &self.members {
                if w.phase == Phase::Ready && !w.frozen && !w.freeze_failed {
                    out.push(Action::Freeze(w.id.clone()));
                }
            }
        }
        if (self.members.len() as u32) < wanted {
            out.push(Action::Start);
        }
        out
    }
}

/// Checks `addr` until it passes once (the pool's health check over the
/// pool's protocol and TLS, or a TCP connect without one), every `every`, for
/// at most `within`.
pub async fn check_until_passes(
    addr: SocketAddr,
    pool: &PoolConfig,
    every: Duration,
    within: Duration,
) -> Result<(), String> {
    let health = pool.health.as_ref();
    let deadline = tokio::time::Instant::now() + within;
    let mut last = String::from("not checked");
    loop {
        let passed = match health {
            Some(h) => {
                let r = crate::health::probe::probe_over(
                    addr,
                    h,
                    pool.protocol.kind,
                    pool.tls.as_deref(),
                )
                .await;
                last = r.detail.clone();
                r.passed()
            }
            None => match tokio::net::TcpStream::connect(addr).await {
                Ok(_) => true,
                Err(e) => {
                    last = e.to_string();
                    false
                }
            },
        };
        if passed {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "no passing health check within {within:?} ({last})"
            ));
        }
        tokio::time::sleep(every).await;
    }
}

/// The controller's side of the warm pool: carries out the plan with the
/// provider, watches the instances' exits and their first health checks.
pub(super) struct Runner {
    checked_tx: mpsc::UnboundedSender<(String, Result<(), String>)>,
    checked_rx: mpsc::UnboundedReceiver<(String, Result<(), String>)>,
    exits: HashMap<String, oneshot::Receiver<String>>,
}

/// A warm instance taken for a scale-up, thawed and checked.
pub(super) struct Taken {
    pub id: String,
    pub address: SocketAddr,
    pub exited: oneshot::Receiver<String>,
}

/// What [`Runner::maintain`] needs to know.
pub(super) struct Env<'a> {
    pub provider: &'a Arc<dyn Provider>,
    pub state: &'a Mutex<WarmPool>,
    pub pool: &'a Pool,
    pub start_timeout: Duration,
    pub stop_timeout: Duration,
    /// The pool's config: its health check, protocol and TLS.
    pub config: Arc<PoolConfig>,
}

impl Runner {
    pub(super) fn new() -> Runner {
        let (checked_tx, checked_rx) = mpsc::unbounded_channel();
        Runner {
            checked_tx,
            checked_rx,
            exits: HashMap::new(),
        }
    }

    fn stop(&mut self, env: &Env<'_>, id: String, address: Option<SocketAddr>, why: String) {
        self.exits.remove(&id);
        events::record(
            &env.pool.name,
            events::EventKind::WarmStopped,
            address.map(|a| a.to_string()),
            format!("{id}: warm instance stopped: {why}"),
        );
        let p = env.provider.clone();
        let t = env.stop_timeout;
        tokio::spawn(async move { p.stop(&id, t).await });
    }

    /// Keeps `wanted` warm instances: takes in health-check results and exits,
    /// stops, freezes and (with `may_start`) starts one. Returns the observed
    /// start times of instances that became ready; `Err` when a start failed.
    pub(super) async fn maintain(
        &mut self,
        env: &Env<'_>,
        wanted: u32,
        freeze: bool,
        may_start: bool,
    ) -> Result<Vec<Duration>, String> {
        let now = super::controller::now();
        let mut took = Vec::new();
        while let Ok((id, result)) = self.checked_rx.try_recv() {
            let addr = env
                .state
                .lock()
                .members()
                .iter()
                .find(|w| w.id == id)
                .map(|w| w.address);
            match result {
                Ok(()) => {
                    if let Some(t) = env.state.lock().checked(&id, now) {
                        took.push(t);
                        events::record(
                            &env.pool.name,
                            events::EventKind::WarmReady,
                            addr.map(|a| a.to_string()),
                            format!("{id}: warm instance passed its health check after {t:.0?}; held out of rotation"),
                        );
                    }
                }
                Err(why) => {
                    if env.state.lock().remove(&id).is_some() {
                        self.stop(env, id, addr, why);
                    }
                }
            }
        }
        let gone: Vec<(String, String)> = self
            .exits
            .iter_mut()
            .filter_map(|(id, rx)| match rx.try_recv() {
                Ok(why) => Some((id.clone(), why)),
                Err(oneshot::error::TryRecvError::Closed) => Some((id.clone(), "gone".to_string())),
                Err(oneshot::error::TryRecvError::Empty) => None,
            })
            .collect();
        for (id, why) in gone {
            self.exits.remove(&id);
            if let Some(w) = env.state.lock().remove(&id) {
                events::record(
                    &env.pool.name,
                    events::EventKind::WarmFailed,
                    Some(w.address.to_string()),
                    format!("{id}: warm instance exited: {why}; replacing it"),
                );
            }
        }
        let plan = env
            .state
            .lock()
            .plan(wanted, freeze, env.start_timeout, now);
        for action in plan {
            match action {
                Action::Stop(id, why) => self.stop(env, id, None, why),
                Action::Freeze(id) => {
                    let r = env.provider.freeze(&id).await;
                    env.state.lock().frozen(&id, r.is_ok());
                    if let Err(e) = r {
                        events::record(
                            &env.pool.name,
                            events::EventKind::WarmFreezeFailed,
                            None,
                            format!("{id}: {e}; it waits unfrozen"),
                        );
                    }
                }
                Action::Start if may_start => {
                    let Started { instance, exited } = env.provider.start().await?;
                    env.state
                        .lock()
                        .started(instance.id.clone(), instance.address, now);
                    self.exits.insert(instance.id.clone(), exited);
                    events::record(
                        &env.pool.name,
                        events::EventKind::WarmStarted,
                        Some(instance.address.to_string()),
                        format!("{} started for the warm pool; out of rotation", instance.id),
                    );
                    let tx = self.checked_tx.clone();
                    let config = env.config.clone();
                    let within = env.start_timeout;
                    tokio::spawn(async move {
                        let r = check_until_passes(instance.address, &config, CHECK_EVERY, within)
                            .await;
                        let _ = tx.send((instance.id, r));
                    });
                }
                Action::Start => {}
            }
        }
        Ok(took)
    }

    /// Takes a ready warm instance for a scale-up: thaws it and waits for one
    /// passing health check (at most [`THAW_CHECK_WITHIN`]). None: there is
    /// none, or the one taken failed (it is stopped, with an event).
    pub(super) async fn take(&mut self, env: &Env<'_>) -> Option<Taken> {
        loop {
            let w = env.state.lock().take()?;
            let Some(exited) = self.exits.remove(&w.id) else {
                continue;
            };
            let thawed = if w.frozen {
                env.provider.thaw(&w.id).await
            } else {
                Ok(())
            };
            let checked = match thawed {
                Ok(()) => {
                    check_until_passes(w.address, &env.config, THAW_CHECK_EVERY, THAW_CHECK_WITHIN)
                        .await
                }
                Err(e) => Err(e),
            };
            match checked {
                Ok(()) => {
                    return Some(Taken {
                        id: w.id,
                        address: w.address,
                        exited,
                    })
                }
                Err(why) => self.stop(env, w.id, Some(w.address), format!("after thawing: {why}")),
            }
        }
    }
}

/// A request is held at zero instances: the desired count becomes 1 at once
/// (not at the next autoscale evaluation), so that a warm instance is
/// thawed, or a cold one started, for it now.
pub(super) fn demand_at_zero(
    policy: &Mutex<State>,
    closing: bool,
    pool: &Pool,
    auto: Option<&AutoscaleConfig>,
) {
    if auto.is_none() || closing || pool.held.load(Ordering::Relaxed) == 0 {
        return;
    }
    if pool
        .desired
        .compare_exchange(0, 1, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        policy.lock().current = 1;
        pool.metrics.scale_up.fetch_add(1, Ordering::Relaxed);
        events::record(
            &pool.name,
            events::EventKind::ScaleUp,
            None,
            "scale 0 -> 1: a request is held at zero instances",
        );
    }
}

/// A thawed warm instance that passed its check joins the pool as healthy;
/// its reason (`warm start ID: ...`) names the warm start (a request held
/// for it says so in `X-Drover-Cold-Start`).
pub(super) fn join(pool: &Pool, w: &Taken) {
    let _ = pool.apply(PoolCommand::Add {
        address: w.address,
        weight: 1,
        managed: true,
        state: MemberState::Starting,
    });
    let reason = format!("{} {}: thawed and passed a health check", WARM_START, w.id);
    let joined = pool.apply(PoolCommand::Transition {
        address: w.address,
        from: vec![MemberState::Starting],
        to: MemberState::Healthy,
        reason: reason.clone(),
    });
    if let Ok(change) = joined {
        change.record(&pool.name, events::EventKind::WarmJoined, reason);
    }
}

/// Health checks of a starting warm instance, every. Default 100 ms.
pub const CHECK_EVERY: Duration = Duration::from_millis(100);
/// The check after a thaw, every. Default 5 ms.
pub const THAW_CHECK_EVERY: Duration = Duration::from_millis(5);
/// The check after a thaw must pass within. Default 5 s.
pub const THAW_CHECK_WITHIN: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    const T: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn fills_then_freezes_ready_instances() {
        let mut w = WarmPool::default();
        let t0 = tokio::time::Instant::now().into_std();
        assert_eq!(w.plan(2, true, T, t0), vec![Action::Start]);
        w.started("a".into(), addr(1), t0);
        assert_eq!(w.plan(2, true, T, t0), vec![Action::Start]);
        w.started("b".into(), addr(2), t0);
        assert_eq!(w.plan(2, true, T, t0), vec![]);
        tokio::time::advance(Duration::from_millis(800)).await;
        let t1 = tokio::time::Instant::now().into_std();
        assert_eq!(w.checked("a", t1), Some(Duration::from_millis(800)));
        assert_eq!(w.checked("a", t1), None, "checked once");
        assert_eq!(w.plan(2, true, T, t1), vec![Action::Freeze("a".into())]);
        w.frozen("a", true);
        assert_eq!(w.plan(2, true, T, t1), vec![]);
        assert_eq!(w.counts(), (1, 1));
        // Without warm_freeze nothing is frozen.
        w.checked("b", t1);
        assert_eq!(w.plan(2, false, T, t1), vec![]);
        // A failed freeze is not tried again.
        assert_eq!(w.plan(2, true, T, t1), vec![Action::Freeze("b".into())]);
        w.frozen("b", false);
        assert_eq!(w.plan(2, true, T, t1), vec![]);
    }

    #[tokio::test(start_paused = true)]
    async fn scale_up_takes_the_longest_waiting_ready_one_then_refills() {
        let mut w = WarmPool::default();
        let t0 = tokio::time::Instant::now().into_std();
        w.started("a".into(), addr(1), t0);
        w.started("b".into(), addr(2), t0);
        w.started("c".into(), addr(3), t0);
        assert_eq!(w.take(), None, "nothing ready yet");
        tokio::time::advance(Duration::from_secs(1)).await;
        w.checked("b", tokio::time::Instant::now().into_std());
        tokio::time::advance(Duration::from_secs(1)).await;
        w.checked("a", tokio::time::Instant::now().into_std());
        let got = w.take().unwrap();
        assert_eq!(got.id, "b");
        assert_eq!(got.address, addr(2));
        assert_eq!(w.take().unwrap().id, "a");
        assert_eq!(w.take(), None);
        // Refill: one start at a time until 3 again.
        let now = tokio::time::Instant::now().into_std();
        assert_eq!(w.plan(3, true, T, now), vec![Action::Start]);
    }

    #[tokio::test(start_paused = true)]
    async fn stops_instances_not_ready_within_start_timeout() {
        let mut w = WarmPool::default();
        let t0 = tokio::time::Instant::now().into_std();
        w.started("slow".into(), addr(1), t0);
        tokio::time::advance(T + Duration::from_secs(1)).await;
        let now = tokio::time::Instant::now().into_std();
        let plan = w.plan(1, true, T, now);
        assert!(
            matches!(&plan[0], Action::Stop(id, why) if id == "slow" && why.contains("start_timeout"))
        );
        assert_eq!(plan[1], Action::Start, "and replaces it");
        assert_eq!(w.counts(), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn reload_to_fewer_stops_starting_ones_first_and_shutdown_stops_all() {
        let mut w = WarmPool::default();
        let t0 = tokio::time::Instant::now().into_std();
        w.started("a".into(), addr(1), t0);
        w.started("b".into(), addr(2), t0);
        w.started("c".into(), addr(3), t0);
        w.checked("a", t0);
        w.checked("c", t0);
        w.frozen("a", true);
        w.frozen("c", true);
        // Reload: warm = 1. "b" (starting) goes first, then the newest ready, "c".
        let plan = w.plan(1, true, T, t0);
        let stopped: Vec<&str> = plan
            .iter()
            .filter_map(|a| match a {
                Action::Stop(id, _) => Some(id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(stopped, vec!["b", "c"]);
        assert_eq!(w.members().len(), 1);
        assert_eq!(w.members()[0].id, "a");
        // Shutdown (or scale to zero with warm_at_zero = false): none wanted.
        let plan = w.plan(0, true, T, t0);
        assert!(matches!(&plan[..], [Action::Stop(id, _)] if id == "a"));
        assert!(w.members().is_empty());
    }

    #[test]
    fn wanted_follows_config_zero_and_closing() {
        let cfg = crate::config::load_str(
            "[pools.x]\n[pools.x.instances]\nprovider = \"process\"\ncommand = [\"x\"]\n[pools.x.autoscale]\nmin = 0\nwarm = 2\n",
            None,
        )
        .unwrap();
        let mut a = cfg.pools["x"].autoscale.clone().unwrap();
        assert_eq!(
            wanted(Some(&a), 0, false),
            2,
            "warm_at_zero defaults to true"
        );
        assert_eq!(wanted(Some(&a), 3, true), 0, "closing");
        a.warm_at_zero = false;
        assert_eq!(wanted(Some(&a), 0, false), 0);
        assert_eq!(wanted(Some(&a), 1, false), 2);
        assert_eq!(wanted(None, 1, false), 0);
    }

    #[tokio::test]
    async fn check_until_passes_waits_for_a_listener() {
        let port = crate::instances::process::free_port().unwrap();
        let a = addr(port);
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            tokio::net::TcpListener::bind(a).await.unwrap()
        });
        let cfg = crate::config::load_str("[pools.x]\nbackends = [\"127.0.0.1:1\"]\n", None)
            .unwrap()
            .pools["x"]
            .clone();
        check_until_passes(a, &cfg, Duration::from_millis(20), Duration::from_secs(20))
            .await
            .unwrap();
        drop(late.await.unwrap());
        let err = check_until_passes(
            addr(1),
            &cfg,
            Duration::from_millis(10),
            Duration::from_millis(50),
        )
        .await
        .unwrap_err();
        assert!(err.contains("no passing health check"), "{err}");
    }
}
