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
//!
//! What to do is decided by the pure [`super::reconcile`]; this file is its
//! executor ([`Executor`]: observe, reconcile, act through the [`Provider`]),
//! the drain of one instance, and the autoscaler task. Time is tokio's
//! throughout, so tests drive it paused (`tests_controller.rs`).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::time::Instant as TokioInstant;

use super::reconcile::{self, drain_over, reconcile, Action, Book, Desired, Observed, Seen};
use super::warm::{self, WarmPool};
use super::{Provider, Started};
use crate::autoscale::explain::Explain;
use crate::autoscale::forecast::StartTime;
use crate::autoscale::policy::{self, State};
use crate::autoscale::sampler::Sampler;
use crate::config::{AutoscaleConfig, InstancesConfig};
use crate::events;
use crate::pool::{MemberState, Pool, PoolCommand};

pub use super::controllers::Controllers;

/// How often the controller looks at its instances. Default 200 ms.
pub const TICK: Duration = Duration::from_millis(200);
pub use super::reconcile::{backoff, BACKOFF_MAX, BACKOFF_MIN};

/// The controller's clock: tokio's, so that tests can run it with time paused.
pub(super) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
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
        self.policy.lock().set_manual(n, now());
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

/// Runs the controller of `ctl`'s pool until it closes or the pool is gone:
/// adoption first, then the autoscaler, then rounds of the [`Executor`] every
/// [`TICK`] or as soon as the pool's demand changes.
async fn run_instances(ctl: Arc<Controller>) {
    let mut ex = Executor {
        ctl: ctl.clone(),
        book: Book::new(TokioInstant::now()),
        exits: HashMap::new(),
        warm: warm::Runner::new(),
    };
    if !ex.adopt().await {
        return;
    }
    // The autoscaler starts only now, from the count in force after adoption.
    tokio::spawn(run_autoscaler(ctl.clone()));
    loop {
        match ex.round().await {
            Next::Stop => return,
            Next::Again => continue,
            Next::Wait => {}
        }
        let Some(pool) = ctl.pool.upgrade() else {
            return;
        };
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = pool.demand.notified() => {}
        }
    }
}

/// The thin executor of [`reconcile`]: it observes the instances, runs the
/// actions through the [`Provider`] and the pool, and reports starts back to
/// the [`Book`]. The warm pool ([`super::warm`]) serves a scale-up first.
struct Executor {
    ctl: Arc<Controller>,
    book: Book,
    /// Each tracked instance's end signal from the provider.
    exits: HashMap<String, oneshot::Receiver<String>>,
    warm: warm::Runner,
}

/// After a round: look again at once, wait for the next tick, or end.
enum Next {
    Again,
    Wait,
    Stop,
}

impl Executor {
    /// Takes over what a previous drover left running; `false`: the pool is gone.
    async fn adopt(&mut self) -> bool {
        let mut adopted = Vec::new();
        for Started { instance, exited } in self.ctl.provider.adopt().await {
            self.exits.insert(instance.id.clone(), exited);
            adopted.push((instance.id, instance.address));
        }
        if adopted.is_empty() {
            return true;
        }
        let Some(pool) = self.ctl.pool.upgrade() else {
            return false;
        };
        let Some((cfg, _, _)) = config_of(&pool) else {
            return false;
        };
        for a in reconcile::adopt(&mut self.book, &adopted, TokioInstant::now()) {
            self.apply(&pool, &cfg, a);
        }
        drop(pool);
        resume_scale(&self.ctl, adopted.len() as u32).await;
        true
    }

    /// One round: observe, reconcile, act.
    async fn round(&mut self) -> Next {
        if self.ctl.is_closing() {
            return Next::Stop;
        }
        let Some(pool) = self.ctl.pool.upgrade() else {
            return Next::Stop;
        };
        let Some((cfg, auto, has_health)) = config_of(&pool) else {
            return Next::Stop;
        };
        let now = TokioInstant::now();
        let closing = self.ctl.is_closing();
        warm::demand_at_zero(&self.ctl.policy, closing, &pool, auto.as_ref());
        let want = Desired {
            count: pool.desired.load(Ordering::Relaxed) as usize,
            start_timeout: cfg.start_timeout,
            closing,
        };
        let seen = self.observe(&pool);
        let mut start = false;
        for a in reconcile(&mut self.book, &seen, &want, now) {
            start |= a == Action::Start;
            self.apply(&pool, &cfg, a);
        }
        if self
            .warm_round(&pool, &cfg, auto.as_ref(), want.count, now)
            .await
        {
            return Next::Again;
        }
        // The warm pool's failure may have pushed the start back.
        if start && self.book.may_start(now) {
            return self.start(&pool, has_health, now).await;
        }
        Next::Wait
    }

    /// The warm pool's part of a round: a pool short of instances takes a
    /// warm one (`true`: it joined); otherwise the warm pool is tended, and
    /// refilled when the pool itself needs no start.
    async fn warm_round(
        &mut self,
        pool: &Arc<Pool>,
        cfg: &InstancesConfig,
        auto: Option<&AutoscaleConfig>,
        desired: usize,
        now: TokioInstant,
    ) -> bool {
        let ctl = &self.ctl;
        let env = warm::Env {
            provider: &ctl.provider,
            state: &ctl.warm,
            pool,
            start_timeout: cfg.start_timeout,
            stop_timeout: cfg.stop_timeout,
            config: pool.snapshot().config.clone(),
        };
        let short = self.book.active() < desired;
        if short {
            if let Some(w) = self.warm.take(&env).await {
                warm::join(pool, &w);
                self.exits.insert(w.id.clone(), w.exited);
                self.book.joined_warm(w.id, w.address, now);
                return true;
            }
        }
        let wanted = warm::wanted(auto, desired as u32, ctl.is_closing());
        let may_start = !short && self.book.may_start(now) && !ctl.is_closing();
        let freeze = auto.is_some_and(|a| a.warm_freeze);
        let start_guard = ctl.starting.lock().await;
        match self.warm.maintain(&env, wanted, freeze, may_start).await {
            Ok(took) => {
                let mut st = ctl.start_time.lock();
                for t in took {
                    st.record(t);
                }
            }
            Err(why) => start_failed(&mut self.book, pool, &format!("warm pool: {why}"), now),
        }
        drop(start_guard);
        let (ready_warm, _) = ctl.warm.lock().counts();
        pool.metrics
            .warm
            .store(u64::from(ready_warm), Ordering::Relaxed);
        false
    }

    /// [`Action::Start`]: one instance through the provider; a failure backs off.
    async fn start(&mut self, pool: &Arc<Pool>, has_health: bool, now: TokioInstant) -> Next {
        let _start_guard = self.ctl.starting.lock().await;
        if self.ctl.is_closing() {
            return Next::Stop;
        }
        match self.ctl.provider.start().await {
            Ok(Started { instance, exited }) => {
                add_starting(pool, instance.address);
                events::record(
                    &pool.name,
                    events::EventKind::InstanceStarted,
                    Some(instance.address.to_string()),
                    format!("{} started; waiting for its health check", instance.id),
                );
                if !has_health {
                    tokio::spawn(tcp_ready(Arc::downgrade(pool), instance.address));
                }
                self.exits.insert(instance.id.clone(), exited);
                self.book.started(instance.id, instance.address, now);
            }
            Err(why) => start_failed(&mut self.book, pool, &why, now),
        }
        Next::Again
    }

    /// What is seen of the tracked instances: their ends (from the provider's
    /// signals), pool state, sticky sessions and load.
    fn observe(&mut self, pool: &Pool) -> Observed {
        let snap = pool.snapshot();
        let at = crate::balance::slow_start::now();
        let mut out = Observed::default();
        for (id, t) in &self.book.tracked {
            let mut s = Seen::default();
            if let Some(rx) = self.exits.get_mut(id) {
                s.exited = rx.try_recv().ok();
                s.ended = rx.is_terminated();
            }
            if let Some(m) = snap.position(t.address).map(|i| &snap.members[i]) {
                s.state = Some(m.state);
                s.sticky = m.stats.sticky.recent(at);
                s.inflight = m.stats.load.inflight();
            }
            out.seen.insert(id.clone(), s);
        }
        out
    }

    /// Runs one action but [`Action::Start`] ([`Self::start`], as it waits):
    /// pool changes, events, and stops and drains as tasks.
    fn apply(&mut self, pool: &Arc<Pool>, cfg: &InstancesConfig, action: Action) {
        match action {
            Action::Adopt { id, address } => {
                add_starting(pool, address);
                events::record(
                    &pool.name,
                    events::EventKind::InstanceAdopted,
                    Some(address.to_string()),
                    format!("{id} was already running; adopted"),
                );
            }
            Action::Ready { took, .. } => {
                let mut st = self.ctl.start_time.lock();
                st.record(took);
            }
            Action::Replace {
                id,
                address,
                why,
                wait,
            } => {
                let _ = pool.apply(PoolCommand::Remove { address });
                events::record(
                    &pool.name,
                    events::EventKind::InstanceFailed,
                    Some(address.to_string()),
                    format!("{id}: {why}; replacing it in {wait:?}"),
                );
                let p = self.ctl.provider.clone();
                let stop_timeout = cfg.stop_timeout;
                tokio::spawn(async move { p.stop(&id, stop_timeout).await });
            }
            Action::Forget { id } => {
                self.exits.remove(&id);
            }
            Action::Drain { id, address } => {
                let (pool, provider) = (Arc::downgrade(pool), self.ctl.provider.clone());
                tokio::spawn(drain_and_stop(pool, provider, id, address, cfg.clone()));
            }
            Action::Start => {}
        }
    }
}

/// A start (or the warm pool's) failed: back off, and say so.
fn start_failed(book: &mut Book, pool: &Pool, why: &str, now: TokioInstant) {
    let wait = book.failed_start(now);
    events::record(
        &pool.name,
        events::EventKind::InstanceFailed,
        None,
        format!("{why}; retrying in {wait:?}"),
    );
}

/// Adds a fresh or adopted instance to the pool, not routable until healthy.
fn add_starting(pool: &Pool, address: SocketAddr) {
    let _ = pool.apply(PoolCommand::Add {
        address,
        weight: 1,
        managed: true,
        state: MemberState::Starting,
    });
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
    *ctl.policy.lock() = st;
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
    let deadline = TokioInstant::now() + cfg.drain_timeout;
    let stats = {
        let snap = p.snapshot();
        snap.position(addr).map(|i| snap.members[i].stats.clone())
    };
    drop(p);
    // Sticky sessions keep coming to a draining member: wait until they stop too.
    while let Some(s) = &stats {
        let quiet = s.sticky.quiet(now(), crate::pool::STICKY_QUIET);
        if drain_over(s.load.inflight(), quiet, TokioInstant::now(), deadline) {
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
            let start_time = ctl.start_time.lock().get();
            let (eff, inputs) = ahead.prepare(&pool.name, &auto, &window, start_time);
            let from = pool.desired.load(Ordering::Relaxed);
            let decision = {
                let mut st = ctl.policy.lock();
                st.current = from;
                policy::decide_with(&window, &inputs, &mut st, &eff, now())
            };
            ahead.record(
                &mut ctl.explain.lock(),
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
