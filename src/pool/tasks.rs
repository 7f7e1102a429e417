//! [`PoolTasks`]: one piece of work per pool, kept in step with the router.
//!
//! Health checks ([`crate::health::Supervisor`]), discovery watches
//! ([`crate::discovery::Watchers`]) and instance controllers
//! ([`crate::instances::controller::Controllers`]) each run one task per pool.
//! After every router swap their owner calls [`PoolTasks::sync`] with the pools
//! that want one, each with an *identity*: the part of its config the task
//! depends on. The rule, written once here:
//!
//! - a pool that is gone, was replaced (another `Arc<Pool>` under its name),
//!   or whose identity changed has its entry stopped (handed to `stop`);
//! - a pool with an entry of the same pool and identity keeps it (untouched);
//! - a pool without an entry gets one from `start` (which may decline).
//!
//! The entry value is the owner's: an [`Aborting`] handle aborts its task when
//! dropped (so dropping the set or an entry ends the task), a controller is
//! closed by the owner's `stop`.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

use tokio::task::AbortHandle;

use super::Pool;

/// A pool that wants a task, with the config part the task depends on and
/// what `start` needs to start it.
pub struct Want<P> {
    pub name: String,
    pub pool: Arc<Pool>,
    /// A change restarts the task on reload ("" when only the pool matters).
    pub identity: String,
    pub with: P,
}

impl<P> Want<P> {
    /// A pool whose task depends on nothing but the pool itself.
    pub fn pool(name: &str, pool: &Arc<Pool>, with: P) -> Want<P> {
        Want {
            name: name.to_string(),
            pool: pool.clone(),
            identity: String::new(),
            with,
        }
    }
}

struct Entry<V> {
    pool: Weak<Pool>,
    identity: String,
    value: V,
}

/// One value (a task handle, a controller) per pool name.
pub struct PoolTasks<V> {
    map: Mutex<HashMap<String, Entry<V>>>,
}

impl<V> Default for PoolTasks<V> {
    fn default() -> Self {
        PoolTasks {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<V> PoolTasks<V> {
    /// Aligns the entries with `wanted` (see the module doc): stops (`stop`)
    /// the entries of pools gone, replaced or changed, keeps the others, and
    /// starts (`start`, `None`: no entry) one for each wanted pool without one.
    pub fn sync<P>(
        &self,
        wanted: impl IntoIterator<Item = Want<P>>,
        mut start: impl FnMut(&str, &Arc<Pool>, P) -> Option<V>,
        mut stop: impl FnMut(&str, V),
    ) {
        let wanted: HashMap<String, Want<P>> =
            wanted.into_iter().map(|w| (w.name.clone(), w)).collect();
        let mut map = self.map.lock();
        let gone: Vec<String> = map
            .iter()
            .filter(|(name, e)| {
                !wanted.get(*name).is_some_and(|w| {
                    Weak::ptr_eq(&e.pool, &Arc::downgrade(&w.pool)) && w.identity == e.identity
                })
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some(e) = map.remove(&name) {
                stop(&name, e.value);
            }
        }
        for (name, w) in wanted {
            if map.contains_key(&name) {
                continue;
            }
            if let Some(value) = start(&name, &w.pool, w.with) {
                let entry = Entry {
                    pool: Arc::downgrade(&w.pool),
                    identity: w.identity,
                    value,
                };
                map.insert(name, entry);
            }
        }
    }

    /// `f` of every entry (pool name, pool, value), in no particular order.
    pub fn collect<T>(&self, mut f: impl FnMut(&str, &Weak<Pool>, &V) -> T) -> Vec<T> {
        let map = self.map.lock();
        map.iter().map(|(n, e)| f(n, &e.pool, &e.value)).collect()
    }

    /// `f` of the entry of `pool`, if it has one.
    pub fn get<T>(&self, pool: &str, f: impl FnOnce(&V) -> T) -> Option<T> {
        let map = self.map.lock();
        map.get(pool).map(|e| f(&e.value))
    }
}

/// A task handle that aborts the task when dropped.
pub struct Aborting(pub AbortHandle);

impl Drop for Aborting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pool(name: &str) -> Arc<Pool> {
        let cfg = crate::config::load_str(
            &format!("[pools.{name}]\nbackends = [\"127.0.0.1:9\"]\n"),
            None,
        )
        .unwrap();
        Arc::new(Pool::new(Arc::new(cfg.pools[name].clone())))
    }

    /// A task counting ticks every second until aborted.
    fn ticking() -> (Aborting, Arc<std::sync::atomic::AtomicU32>) {
        let n = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let c = n.clone();
        let task = tokio::spawn(async move {
            loop {
                c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        (Aborting(task.abort_handle()), n)
    }

    fn ticks(n: &std::sync::atomic::AtomicU32) -> u32 {
        n.load(std::sync::atomic::Ordering::Relaxed)
    }

    type Set = PoolTasks<(u32, Aborting)>;

    /// Syncs `set` to `pools` (name, pool, identity); returns (started, stopped) names.
    fn sync(
        set: &Set,
        pools: &[(&str, &Arc<Pool>, &str)],
        serial: &mut u32,
        counters: &mut Vec<Arc<std::sync::atomic::AtomicU32>>,
    ) -> (Vec<String>, Vec<String>) {
        let (mut started, mut stopped) = (Vec::new(), Vec::new());
        let wanted = pools.iter().map(|(n, p, id)| Want {
            name: n.to_string(),
            pool: (*p).clone(),
            identity: id.to_string(),
            with: (),
        });
        set.sync(
            wanted,
            |name, _, ()| {
                started.push(name.to_string());
                let (task, n) = ticking();
                counters.push(n);
                *serial += 1;
                Some((*serial, task))
            },
            |name, _| stopped.push(name.to_string()),
        );
        started.sort();
        stopped.sort();
        (started, stopped)
    }

    #[tokio::test(start_paused = true)]
    async fn starts_keeps_and_stops_one_task_per_pool() {
        let set = Set::default();
        let (a, b, a2) = (pool("a"), pool("b"), pool("a"));
        let (mut serial, mut counters) = (0, Vec::new());

        let got = sync(
            &set,
            &[("a", &a, ""), ("b", &b, "")],
            &mut serial,
            &mut counters,
        );
        assert_eq!(got, (vec!["a".into(), "b".into()], vec![]));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(ticks(&counters[0]), 3, "the first task runs");

        // Same pools, same identities: kept, nothing restarted.
        let first = set.get("a", |(n, _)| *n);
        let got = sync(
            &set,
            &[("a", &a, ""), ("b", &b, "")],
            &mut serial,
            &mut counters,
        );
        assert_eq!(got, (vec![], vec![]));
        assert_eq!(set.get("a", |(n, _)| *n), first);

        // b's identity changes: restarted. a replaced by another pool: restarted.
        let got = sync(
            &set,
            &[("a", &a2, ""), ("b", &b, "x")],
            &mut serial,
            &mut counters,
        );
        assert_eq!(
            got,
            (vec!["a".into(), "b".into()], vec!["a".into(), "b".into()])
        );
        let before = ticks(&counters[0]);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(ticks(&counters[0]), before, "the stopped task was aborted");
        assert!(ticks(&counters[2]) >= 5, "its successor runs");

        // b removed: stopped; the set lists what is left.
        let got = sync(&set, &[("a", &a2, "")], &mut serial, &mut counters);
        assert_eq!(got, (vec![], vec!["b".into()]));
        let names =
            set.collect(|n, p, (serial, _)| (n.to_string(), p.upgrade().is_some(), *serial));
        assert_eq!(names.len(), 1);
        let (name, alive, n) = names[0].clone();
        assert_eq!((name.as_str(), alive), ("a", true));
        assert!(n > 2, "the successor of a's first task");
        let left = &counters[n as usize - 1];
        let before = ticks(left);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(ticks(left) >= before + 2, "it still runs");

        // Dropping the set aborts the rest.
        drop(set);
        let before = ticks(left);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(ticks(left), before);
    }

    #[tokio::test(start_paused = true)]
    async fn a_declined_start_leaves_no_entry_and_is_asked_again() {
        let set: PoolTasks<u32> = PoolTasks::default();
        let a = pool("a");
        let mut asked = 0;
        for _ in 0..3 {
            set.sync(
                [Want::pool("a", &a, ())],
                |_, _, ()| {
                    asked += 1;
                    None
                },
                |_, _| panic!("nothing to stop"),
            );
        }
        assert_eq!(asked, 3);
        assert_eq!(set.get("a", |v| *v), None);
        set.sync([Want::pool("a", &a, ())], |_, _, ()| Some(7), |_, _| {});
        set.sync(
            [Want::pool("a", &a, ())],
            |_, _, ()| panic!("kept"),
            |_, _| panic!("kept"),
        );
        assert_eq!(set.get("a", |v| *v), Some(7));
    }
}
