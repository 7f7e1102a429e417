//! The per-pool instance controller: keeps `Pool::desired` instances running.
//!
//! Lifecycle of an instance: `starting` (added to the pool, not routable) →
//! `healthy` once it passes its health check (the health task promotes it) →
//! `draining` on scale-down (no new requests; waits until its in-flight count is
//! 0 or `drain_timeout`) → stopped (SIGTERM / `docker stop`, then forced after
//! `stop_timeout`) → removed. An instance that exits, is not healthy within
//! `start_timeout`, or stays unhealthy for `start_timeout` after having been
//! healthy is replaced; repeated failures back off from 1 s doubling to 60 s.
//! With `[autoscale]`, the policy ([`crate::autoscale::policy`]) sets the
//! desired count every `interval` from what drover measures itself.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::warm::{self, WarmPool};
use super::{Provider, Started};
use crate::autoscale::explain::Explain;
use crate::autoscale::forecast::StartTime;
use crate::autoscale::policy::{self, State};
use crate::autoscale::sampler::Sampler;
use crate::config::{AutoscaleConfig, InstancesConfig};
use crate::events;
use crate::pool::{MemberState, Pool, PoolCommand};

/// How often the controller looks at its instances. Default 200 ms.
pub const TICK: Duration = Duration::from_millis(200);
/// First back-off after a failed instance. Default 1 s.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest back-off. Default 60 s.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The controller's clock: tokio's, so that tests can run it with time paused.
pub(super) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Back-off after `failures` consecutive failures: 1 s, 2 s, 4 s, ... 60 s.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    BACKOFF_MIN
        .saturating_mul(1u32 << (failures - 1).min(16))
        .min(BACKOFF_MAX)
}

struct Tracked {
    address: SocketAddr,
    started_at: Instant,
    healthy_once: bool,
    unhealthy_since: Option<Instant>,
    exited: oneshot::Receiver<String>,
    stopping: bool,
}

/// The controller of one pool (shared with the admin API for `set_desired`).
pub struct Controller {
    pub(super) pool: Weak<Pool>,
    pub(super) provider: Arc<dyn Provider>,
    pub(super) policy: Mutex<State>,
    /// Set once drover shuts down (or the pool is removed): from then on no
    /// instance is started or replaced.
    pub(super) closing: AtomicBool,
    /// Held across a start, so [`Controller::stop_all`] never misses an
    /// instance whose start was under way when shutdown began.
    pub(super) starting: tokio::sync::Mutex<()>,
    /// The warm pool ([`super::warm`]).
    pub(super) warm: Mutex<WarmPool>,
    /// What the autoscaler saw and decided ([`crate::autoscale::explain`]).
    pub(super) explain: Mutex<Explain>,
    /// Observed instance start times (for the forecast horizon).
    start_time: Mutex<StartTime>,
}

impl Controller {
    /// Sets the desired count by hand (admin API); refused outside `[min, max]`.
    pub fn set_desired(&self, n: u32) -> Result<(), String> {
        let pool = self.pool.upgrade().ok_or("pool is gone")?;
        let snap = pool.snapshot();
        if let Some(a) = &snap.config.autoscale {
            if n < a.min || n > a.max {
                return Err(format!(
                    "{n} is outside autoscale [min, max] = [{}, {}]",
                    a.min, a.max
                ));
            }
        }
        let before = pool.desired.swap(n, Ordering::Relaxed);
        self.policy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_manual(n, now());
        events::record(
            &pool.name,
            events::EventKind::ScaleSet,
            None,
            format!("scale {before} -> {n}: set through the admin API"),
        );
        pool.demand.notify_one();
        Ok(())
    }

    /// From now on, starts and replaces nothing (drover shutting down, or the
    /// pool removed); running instances keep serving until [`Self::stop_all`].
    pub fn close(&self) {
        if !self.closing.swap(true, Ordering::SeqCst) {
            if let Some(pool) = self.pool.upgrade() {
                pool.demand.notify_one();
            }
        }
    }

    pub(super) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Stops every instance this controller started (drover shutting down),
    /// after [`Self::close`] and after a start under way has finished.
    pub async fn stop_all(&self, timeout: Duration) {
        self.close();
        let _no_start_under_way = self.starting.lock().await;
        let pool = self.pool.upgrade();
        let stops: Vec<_> = self
            .provider
            .list()
            .into_iter()
            .map(|i| {
                let p = self.provider.clone();
                let pool = pool.clone();
                async move {
                    p.stop(&i.id, timeout).await;
                    if let Some(pool) = pool {
                        events::record(
                            &pool.name,
                            events::EventKind::Stopped,
                            Some(i.address.to_string()),
                            format!("{}: stopped, drover is shutting down", i.id),
                        );
                    }
                }
            })
            .collect();
        futures_util::future::join_all(stops).await;
    }
}

/// Starts the controller (and, with `[autoscale]`, the autoscaler) for `pool`.
pub fn spawn(pool: &Arc<Pool>, provider: Arc<dyn Provider>) -> Arc<Controller> {
    let initial = pool.desired.load(Ordering::Relaxed);
    let ctl = Arc::new(Controller {
        pool: Arc::downgrade(pool),
        provider,
        policy: Mutex::new(State::new(initial)),
        closing: AtomicBool::new(false),
        starting: tokio::sync::Mutex::new(()),
        warm: Mutex::default(),
        explain: Mutex::default(),
        start_time: Mutex::default(),
    });
    tokio::spawn(run_instances(ctl.clone()));
    ctl
}

fn config_of(pool: &Pool) -> Option<(InstancesConfig, Option<AutoscaleConfig>, bool)> {
    let snap = pool.snapshot();
    let inst = snap.config.instances.clone()?;
    Some((
        inst,
        snap.config.autoscale.clone(),
        snap.config.health.is_some(),
    ))
}

async fn run_instances(ctl: Arc<Controller>) {
    let mut tracked: HashMap<String, Tracked> = HashMap::new();
    for Started { instance, exited } in ctl.provider.adopt().await {
        let Some(pool) = ctl.pool.upgrade() else {
            return;
        };
        let _ = pool.apply(PoolCommand::Add {
            address: instance.address,
            weight: 1,
            managed: true,
            state: MemberState::Starting,
        });
        events::record(
            &pool.name,
            events::EventKind::InstanceAdopted,
            Some(instance.address.to_string()),
            format!("{} was already running; adopted", instance.id),
        );
        tracked.insert(
            instance.id,
            Tracked {
                address: instance.address,
                started_at: now(),
                healthy_once: false,
                unhealthy_since: None,
                exited,
                stopping: false,
            },
        );
    }
    if !tracked.is_empty() {
        resume_scale(&ctl, tracked.len() as u32).await;
    }
    // The autoscaler starts only now, from the count in force after adoption.
    tokio::spawn(run_autoscaler(ctl.clone()));
    let mut failures = 0u32;
    let mut next_start = now();
    let mut warm_runner = warm::Runner::new();
    loop {
        if ctl.is_closing() {
            return;
        }
        let Some(pool) = ctl.pool.upgrade() else {
            return;
        };
        let Some((cfg, auto, has_health)) = config_of(&pool) else {
            return;
        };
        let now = now();
        warm::demand_at_zero(&ctl.policy, ctl.is_closing(), &pool, auto.as_ref());
        let snap = pool.snapshot_arc();

        // Exits and health deadlines.
        let mut failed: Vec<(String, String)> = Vec::new();
        for (id, t) in tracked.iter_mut() {
            if let Ok(why) = t.exited.try_recv() {
                if !t.stopping {
                    failed.push((id.clone(), format!("instance exited: {why}")));
                }
                t.stopping = true;
                continue;
            }
            if t.stopping {
                continue;
            }
            let state = snap.position(t.address).map(|i| snap.members[i].state);
            match state {
                Some(MemberState::Healthy) => {
                    if !t.healthy_once {
                        failures = 0;
                        ctl.start_time
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .record(now.duration_since(t.started_at));
                    }
                    t.healthy_once = true;
                    t.unhealthy_since = None;
                }
                Some(MemberState::Starting | MemberState::Unhealthy) => {
                    let since = *t.unhealthy_since.get_or_insert(if t.healthy_once {
                        now
                    } else {
                        t.started_at
                    });
                    if now.duration_since(since) > cfg.start_timeout {
                        let why = if t.healthy_once {
                            format!(
                                "unhealthy for longer than start_timeout {:?}",
                                cfg.start_timeout
                            )
                        } else {
                            format!("not healthy within start_timeout {:?}", cfg.start_timeout)
                        };
                        failed.push((id.clone(), why));
                    }
                }
                _ => {}
            }
        }
        for (id, why) in failed {
            let Some(t) = tracked.get_mut(&id) else {
                continue;
            };
            t.stopping = true;
            failures += 1;
            let wait = backoff(failures);
            next_start = now + wait;
            let _ = pool.apply(PoolCommand::Remove { address: t.address });
            events::record(
                &pool.name,
                events::EventKind::InstanceFailed,
                Some(t.address.to_string()),
                format!("{id}: {why}; replacing it in {wait:?}"),
            );
            let p = ctl.provider.clone();
            let stop_timeout = cfg.stop_timeout;
            tokio::spawn(async move { p.stop(&id, stop_timeout).await });
        }
        tracked.retain(|_, t| !(t.stopping && t.exited.is_terminated()));

        let desired = pool.desired.load(Ordering::Relaxed) as usize;
        let env = warm::Env {
            provider: &ctl.provider,
            state: &ctl.warm,
            pool: &pool,
            start_timeout: cfg.start_timeout,
            stop_timeout: cfg.stop_timeout,
            config: pool.snapshot().config.clone(),
        };
        let in_rotation = tracked.values().filter(|t| !t.stopping).count();
        // A scale-up takes a warm instance first.
        if in_rotation < desired {
            if let Some(w) = warm_runner.take(&env).await {
                warm::join(&pool, &w);
                tracked.insert(
                    w.id,
                    Tracked {
                        address: w.address,
                        started_at: now,
                        healthy_once: true,
                        unhealthy_since: None,
                        exited: w.exited,
                        stopping: false,
                    },
                );
                continue;
            }
        }
        // The warm pool is refilled when the pool itself needs no start.
        let wanted = warm::wanted(auto.as_ref(), desired as u32, ctl.is_closing());
        let may_start = in_rotation >= desired && now >= next_start && !ctl.is_closing();
        let freeze = auto.as_ref().is_some_and(|a| a.warm_freeze);
        let start_guard = ctl.starting.lock().await;
        match warm_runner.maintain(&env, wanted, freeze, may_start).await {
            Ok(took) => {
                let mut st = ctl.start_time.lock().unwrap_or_else(|e| e.into_inner());
                for t in took {
                    st.record(t);
                }
            }
            Err(why) => {
                failures += 1;
                let wait = backoff(failures);
                next_start = now + wait;
                events::record(
                    &pool.name,
                    events::EventKind::InstanceFailed,
                    None,
                    format!("warm pool: {why}; retrying in {wait:?}"),
                );
            }
        }
        drop(start_guard);
        let (ready_warm, _) = ctl.warm.lock().unwrap_or_else(|e| e.into_inner()).counts();
        pool.metrics
            .warm
            .store(u64::from(ready_warm), Ordering::Relaxed);

        let active: Vec<(&String, &Tracked)> =
            tracked.iter().filter(|(_, t)| !t.stopping).collect();
        if active.len() < desired && now >= next_start {
            let start_guard = ctl.starting.lock().await;
            if ctl.is_closing() {
                return;
            }
            let started = ctl.provider.start().await;
            match started {
                Ok(Started { instance, exited }) => {
                    let state = MemberState::Starting;
                    let _ = pool.apply(PoolCommand::Add {
                        address: instance.address,
                        weight: 1,
                        managed: true,
                        state,
                    });
                    events::record(
                        &pool.name,
                        events::EventKind::InstanceStarted,
                        Some(instance.address.to_string()),
                        format!("{} started; waiting for its health check", instance.id),
                    );
                    if !has_health {
                        tokio::spawn(tcp_ready(Arc::downgrade(&pool), instance.address));
                    }
                    tracked.insert(
                        instance.id,
                        Tracked {
                            address: instance.address,
                            started_at: now,
                            healthy_once: false,
                            unhealthy_since: None,
                            exited,
                            stopping: false,
                        },
                    );
                }
                Err(why) => {
                    failures += 1;
                    let wait = backoff(failures);
                    next_start = now + wait;
                    events::record(
                        &pool.name,
                        events::EventKind::InstanceFailed,
                        None,
                        format!("{why}; retrying in {wait:?}"),
                    );
                }
            }
            drop(start_guard);
            continue;
        } else if active.len() > desired {
            // Fewest recent sticky sessions first (pools with `sticky`; 0
            // otherwise), then fewest in-flight, newest on ties.
            let at = crate::balance::slow_start::now();
            let victim = active
                .iter()
                .min_by_key(|(_, t)| {
                    let (sticky, inflight) = snap.position(t.address).map_or((0, 0), |i| {
                        let s = &snap.members[i].stats;
                        (s.sticky.recent(at), s.load.inflight())
                    });
                    (sticky, inflight, std::cmp::Reverse(t.started_at))
                })
                .map(|(id, _)| (*id).clone());
            if let Some(id) = victim {
                let t = tracked.get_mut(&id).expect("victim is tracked");
                t.stopping = true;
                tokio::spawn(drain_and_stop(
                    Arc::downgrade(&pool),
                    ctl.provider.clone(),
                    id,
                    t.address,
                    cfg.clone(),
                ));
            }
        }
        drop(snap);
        drop(pool);
        let pool = ctl.pool.upgrade();
        let Some(pool) = pool else { return };
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = pool.demand.notified() => {}
        }
    }
}

/// After adopting `adopted` instances a previous drover left running: the
/// desired count starts from what runs (the provider's own count, e.g. a Swarm
/// service's replicas, when it has one) instead of `autoscale.min`, and the
/// autoscaler scales down no sooner than `scale_down_cooldown` from now.
async fn resume_scale(ctl: &Controller, adopted: u32) {
    let running = ctl.provider.scale().await.unwrap_or(adopted);
    let Some(pool) = ctl.pool.upgrade() else {
        return;
    };
    let Some((_, Some(auto), _)) = config_of(&pool) else {
        return;
    };
    let st = policy::State::resumed(running, &auto, now());
    let n = st.current;
    *ctl.policy.lock().unwrap_or_else(|e| e.into_inner()) = st;
    let before = pool.desired.swap(n, Ordering::Relaxed);
    events::record(
        &pool.name,
        events::EventKind::ScaleSet,
        None,
        format!(
            "scale {before} -> {n}: {running} instance(s) running at start; \
             no scale-down before scale_down_cooldown {:?}",
            auto.scale_down_cooldown
        ),
    );
}

/// Without a `[health]` section: the instance is ready once its port accepts connections.
async fn tcp_ready(pool: Weak<Pool>, addr: SocketAddr) {
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            if let Some(p) = pool.upgrade() {
                let ready = p.apply(PoolCommand::Transition {
                    address: addr,
                    from: vec![MemberState::Starting],
                    to: MemberState::Healthy,
                    reason: "accepts connections".to_string(),
                });
                if let Ok(change) = ready {
                    change.record(
                        &p.name,
                        events::EventKind::Healthy,
                        "port accepts connections",
                    );
                }
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Scale-down of one instance: draining → in-flight 0 (and no sticky request
/// for [`crate::pool::STICKY_QUIET`]) or `drain_timeout` → stop → removed.
async fn drain_and_stop(
    pool: Weak<Pool>,
    provider: Arc<dyn Provider>,
    id: String,
    addr: SocketAddr,
    cfg: InstancesConfig,
) {
    let Some(p) = pool.upgrade() else { return };
    let from = {
        let snap = p.snapshot();
        snap.position(addr).map(|i| snap.members[i].state)
    };
    let drain = from.map(|from| {
        p.apply(PoolCommand::Transition {
            address: addr,
            from: vec![from],
            to: MemberState::Draining,
            reason: "scale down".to_string(),
        })
    });
    if let Some(Ok(change)) = drain {
        let why = format!("{id}: scale down; no new requests");
        change.record(&p.name, events::EventKind::Draining, why);
    }
    let deadline = now() + cfg.drain_timeout;
    let stats = {
        let snap = p.snapshot();
        snap.position(addr).map(|i| snap.members[i].stats.clone())
    };
    drop(p);
    // Sticky sessions keep coming to a draining member: wait until they stop too.
    while let Some(s) = &stats {
        let quiet = s.sticky.quiet(now(), crate::pool::STICKY_QUIET);
        if (s.load.inflight() == 0 && quiet) || now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    provider.stop(&id, cfg.stop_timeout).await;
    if let Some(p) = pool.upgrade() {
        let _ = p.apply(PoolCommand::Remove { address: addr });
        events::record(
            &p.name,
            events::EventKind::Stopped,
            Some(addr.to_string()),
            format!("{id} stopped after draining"),
        );
    }
}

async fn run_autoscaler(ctl: Arc<Controller>) {
    let mut sampler = Sampler::default();
    let mut cpu = crate::autoscale::cpu::CpuMeter::default();
    let mut last_eval = now();
    let mut ahead = super::ahead::Ahead::default();
    loop {
        if ctl.is_closing() {
            return;
        }
        let Some(pool) = ctl.pool.upgrade() else {
            return;
        };
        let Some((_, Some(auto), _)) = config_of(&pool) else {
            drop(pool);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        sampler.sample(&pool, now());
        let burst = sampler.short_demand(&pool)
            >= policy::BURST_FACTOR
                * f64::from(sampler.capacity(&pool).max(1))
                * auto.target_inflight.unwrap_or(f64::INFINITY);
        if now().duration_since(last_eval) >= auto.interval || burst {
            last_eval = now();
            let mut window = sampler.window(&pool, auto.interval);
            let groups = ctl.provider.process_groups().into_iter().collect();
            window.cpu_percent = cpu.read(&groups, now());
            let start_time = ctl
                .start_time
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get();
            let (eff, inputs) = ahead.prepare(&pool.name, &auto, &window, start_time);
            let from = pool.desired.load(Ordering::Relaxed);
            let decision = {
                let mut st = ctl.policy.lock().unwrap_or_else(|e| e.into_inner());
                st.current = from;
                policy::decide_with(&window, &inputs, &mut st, &eff, now())
            };
            ahead.record(
                &mut ctl.explain.lock().unwrap_or_else(|e| e.into_inner()),
                &auto,
                &window,
                &inputs,
                start_time,
                from,
                &decision,
            );
            let before = pool.desired.swap(decision.desired, Ordering::Relaxed);
            if decision.desired != before {
                let (kind, counter) = if decision.desired > before {
                    (events::EventKind::ScaleUp, &pool.metrics.scale_up)
                } else {
                    (events::EventKind::ScaleDown, &pool.metrics.scale_down)
                };
                counter.fetch_add(1, Ordering::Relaxed);
                events::record(
                    &pool.name,
                    kind,
                    None,
                    format!(
                        "scale {before} -> {}: {}",
                        decision.desired, decision.reason
                    ),
                );
                pool.demand.notify_one();
            }
        }
        drop(pool);
        tokio::time::sleep(crate::autoscale::sampler::SAMPLE_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute() {
        let got: Vec<u64> = (0..9).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(got, vec![0, 1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(1000), BACKOFF_MAX);
    }
}

/// A managed pool and its controller.
type Managed = (Weak<Pool>, Arc<Controller>);

/// The controllers of every managed pool, kept in step with the router.
#[derive(Default)]
pub struct Controllers {
    map: Mutex<HashMap<String, Managed>>,
}

impl Controllers {
    /// Starts controllers for new managed pools; stops the instances of pools that are gone.
    pub fn sync(&self, router: &crate::proxy::router::Router, owner: &str) {
        use crate::config::ProviderKind;
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|name, (weak, ctl)| {
            let keep = router
                .pools
                .get(name)
                .is_some_and(|p| Weak::ptr_eq(weak, &Arc::downgrade(p)));
            if !keep {
                ctl.close();
                let ctl = ctl.clone();
                tokio::spawn(async move { ctl.stop_all(Duration::from_secs(10)).await });
            }
            keep
        });
        for (name, pool) in &router.pools {
            if map.contains_key(name) {
                continue;
            }
            let Some(inst) = pool.snapshot().config.instances.clone() else {
                continue;
            };
            let provider: Arc<dyn Provider> = match inst.provider {
                ProviderKind::Process => Arc::new(super::process::ProcessProvider::new(name, inst)),
                ProviderKind::Docker => Arc::new(crate::docker::provider::DockerProvider::new(
                    name, inst, owner,
                )),
                ProviderKind::Swarm => Arc::new(crate::docker::swarm::SwarmProvider::new(
                    name,
                    inst.service.as_deref().unwrap_or_default(),
                )),
                // Members drover does not run: crate::discovery watches them.
                ProviderKind::DockerLabels | ProviderKind::Dns => continue,
            };
            map.insert(name.clone(), (Arc::downgrade(pool), spawn(pool, provider)));
        }
    }

    /// The controller of `pool`, if it has managed instances.
    pub fn get(&self, pool: &str) -> Option<Arc<Controller>> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(pool).map(|(_, c)| c.clone())
    }

    /// Shutdown has begun: no controller starts or replaces an instance any more.
    pub fn close_all(&self) {
        for (_, ctl) in self.all() {
            ctl.close();
        }
    }

    fn all(&self) -> Vec<Managed> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.values().cloned().collect()
    }

    /// Stops the instances of every pool whose `on_shutdown` is `stop` (drover
    /// exiting), and the warm instances of every pool (they serve nothing).
    pub async fn shutdown(&self) {
        self.close_all();
        let mut stops = Vec::new();
        for (weak, ctl) in self.all() {
            let Some(pool) = weak.upgrade() else { continue };
            let Some(inst) = pool.snapshot().config.instances.clone() else {
                continue;
            };
            if inst.on_shutdown == crate::config::OnShutdown::Stop {
                stops.push(
                    Box::pin(async move { ctl.stop_all(inst.stop_timeout).await })
                        as futures_util::future::BoxFuture<'static, ()>,
                );
            } else {
                stops.push(Box::pin(
                    async move { ctl.stop_warm(inst.stop_timeout).await },
                ));
            }
        }
        futures_util::future::join_all(stops).await;
    }
}

impl super::scale::ScaleControl for Controllers {
    fn set_desired(&self, pool: &str, n: u32) -> Result<(), super::scale::ScaleError> {
        use super::scale::ScaleError;
        let ctl = self
            .get(pool)
            .ok_or_else(|| ScaleError::NoController(pool.to_string()))?;
        ctl.set_desired(n).map_err(ScaleError::Failed)
    }

    fn autoscale(&self, pool: &str) -> Option<crate::autoscale::explain::Explain> {
        Some(self.get(pool)?.explain())
    }

    fn warm(&self, pool: &str) -> Option<crate::autoscale::explain::WarmView> {
        Some(self.get(pool)?.warm_view())
    }
}
