//! `PUT /api/v1/pools/{pool}/scale`: the admin side of desired-instance control.
//!
//! The instance controller (managed instances and autoscaling) implements
//! [`ScaleControl`] (defined below the admin API, in `instances/scale.rs`);
//! the API validates the request against the pool's bounds ([`bounds`]) first.

use crate::config::PoolConfig;
pub use crate::instances::scale::{ScaleControl, ScaleError};

/// Upper bound of `instances` for a managed pool without `[autoscale]`. Default 100.
pub const MAX_FIXED_INSTANCES: u32 = 100;

/// The `[min, max]` a pool's desired count may be set to: `autoscale.min..=autoscale.max`,
/// or `0..=`[`MAX_FIXED_INSTANCES`] for `[instances]` without `[autoscale]`.
pub fn bounds(pc: &PoolConfig) -> Result<(u32, u32, &'static str), ScaleError> {
    match (&pc.instances, &pc.autoscale) {
        (None, _) => Err(ScaleError::NotManaged(pc.name.clone())),
        (Some(_), Some(a)) => Ok((a.min, a.max, " (autoscale.min / autoscale.max)")),
        (Some(_), None) => Ok((0, MAX_FIXED_INSTANCES, "")),
    }
}

/// Validates `n` against the pool's bounds, then hands it to the controller.
pub fn set_desired(
    pc: &PoolConfig,
    n: u32,
    control: Option<&dyn ScaleControl>,
) -> Result<(), ScaleError> {
    let (min, max, why) = bounds(pc)?;
    if n < min || n > max {
        return Err(ScaleError::OutOfRange {
            pool: pc.name.clone(),
            n,
            min,
            max,
            why,
        });
    }
    match control {
        Some(c) => c.set_desired(&pc.name, n),
        None => Err(ScaleError::NoController(pc.name.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Fake(Mutex<Vec<(String, u32)>>);

    impl ScaleControl for Fake {
        fn set_desired(&self, pool: &str, n: u32) -> Result<(), ScaleError> {
            self.0.lock().unwrap().push((pool.to_string(), n));
            Ok(())
        }
    }

    fn pool(src: &str) -> PoolConfig {
        let cfg = crate::config::load_str(src, None).expect("valid config");
        cfg.pools["p"].clone()
    }

    #[test]
    fn scale_is_checked_against_bounds_then_applied() {
        let fake = Fake::default();
        let static_pool = pool("[pools.p]\nbackends = [\"127.0.0.1:1\"]\n");
        assert_eq!(
            set_desired(&static_pool, 1, Some(&fake)),
            Err(ScaleError::NotManaged("p".into()))
        );
        let managed = pool(
            "[pools.p.instances]\nprovider = \"process\"\ncommand = [\"x\", \"{port}\"]\n\
             [pools.p.autoscale]\nmin = 1\nmax = 3\ntarget_inflight = 5\n",
        );
        assert!(matches!(
            set_desired(&managed, 4, Some(&fake)),
            Err(ScaleError::OutOfRange { min: 1, max: 3, .. })
        ));
        assert!(matches!(
            set_desired(&managed, 0, Some(&fake)),
            Err(ScaleError::OutOfRange { .. })
        ));
        assert_eq!(
            set_desired(&managed, 2, None),
            Err(ScaleError::NoController("p".into()))
        );
        assert_eq!(set_desired(&managed, 3, Some(&fake)), Ok(()));
        assert_eq!(*fake.0.lock().unwrap(), vec![("p".to_string(), 3)]);
    }
}
