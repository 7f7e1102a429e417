//! A pool's load policy keys: `slow_start`, `slow_start_aggression`,
//! `bounded_load` and `sticky` (all off by default).

use std::time::Duration;

use toml::de::DeValue;

use super::error::Errors;
use super::reader::{boolean, describe, nonzero_duration, number, one_of, string, Tbl};
use super::types::Balance;
use super::values::valid_header_name;

/// Slow start, bounded-load hashing and sticky sessions of one pool. The
/// default (`LoadPolicy::default()`) has all three off.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadPolicy {
    /// `slow_start = "30s"`: members that become healthy ramp up over this window.
    pub slow_start: Option<SlowStart>,
    /// `bounded_load = 1.25` (only with `balance = "hash"`): no member takes more
    /// than this factor × its share of the in-flight load (+1). Must be > 1.0.
    pub bounded_load: Option<f64>,
    /// `sticky = { ... }`: cookie-based session affinity.
    pub sticky: Option<StickyConfig>,
}

/// `slow_start` with its `slow_start_aggression`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowStart {
    /// The ramp's length (> 0).
    pub window: Duration,
    /// Shape of the ramp: 1.0 (default) is linear; above 1 the weight rises
    /// faster at first, below 1 slower (Envoy's `aggression`). > 0.
    pub aggression: f64,
}

impl SlowStart {
    /// Default `slow_start_aggression`: 1.0 (a linear ramp).
    pub const DEFAULT_AGGRESSION: f64 = 1.0;
}

super::spelled::spelled_enum! {
    /// `SameSite` attribute of the sticky cookie (spelled as the attribute is).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum SameSite {
        Strict = "Strict",
        /// The default.
        #[default]
        Lax = "Lax",
        /// Needs `secure = true` (browsers drop it otherwise).
        None = "None",
    }
}

/// `sticky = { cookie, ttl, secure, http_only, same_site }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyConfig {
    /// Cookie name. Default `drover_sticky`.
    pub cookie: String,
    /// `Max-Age` of the cookie; `None` (the default) = a session cookie.
    pub ttl: Option<Duration>,
    /// `Secure` attribute. Default false (a plain-HTTP listener could not set it back).
    pub secure: bool,
    /// `HttpOnly` attribute. Default true.
    pub http_only: bool,
    /// `SameSite` attribute. Default `Lax`.
    pub same_site: SameSite,
}

impl Default for StickyConfig {
    fn default() -> Self {
        StickyConfig {
            cookie: "drover_sticky".to_string(),
            ttl: None,
            secure: false,
            http_only: true,
            same_site: SameSite::Lax,
        }
    }
}

/// Reads the policy keys of pool table `t`, whose balance is `balance` (`None`
/// when it was invalid: balance-specific checks are skipped then).
pub(crate) fn policy(
    t: &Tbl<'_, '_>,
    errs: &mut Errors<'_>,
    balance: Option<Balance>,
) -> LoadPolicy {
    let mut out = LoadPolicy::default();
    let window = t.get(errs, "slow_start", nonzero_duration).map(|g| g.v);
    let aggression = t.get(errs, "slow_start_aggression", |v| {
        let x = number(v)?;
        if x <= 0.0 {
            return Err(format!("must be greater than 0 (1.0 = linear), got {x}"));
        }
        Ok(x)
    });
    if aggression.is_some() && !t.has("slow_start") {
        t.error_at(
            errs,
            "slow_start_aggression",
            "only used with slow_start; add slow_start = \"30s\"",
        );
    }
    out.slow_start = window.map(|window| SlowStart {
        window,
        aggression: aggression.map_or(SlowStart::DEFAULT_AGGRESSION, |g| g.v),
    });
    out.bounded_load = t
        .get(errs, "bounded_load", |v| {
            let x = number(v)?;
            if x <= 1.0 {
                return Err(format!(
                    "must be greater than 1.0 (1.25 = at most 25% above the mean load), got {x}"
                ));
            }
            Ok(x)
        })
        .map(|g| g.v);
    if let Some(b) = balance {
        if out.bounded_load.is_some() && b != Balance::Hash {
            t.error_at(
                errs,
                "bounded_load",
                format!(
                    "only used with balance = \"hash\" (this pool uses \"{}\")",
                    b.as_str()
                ),
            );
        }
    }
    out.sticky = sticky(t, errs);
    out
}

/// The `drover check` summary parts of a policy: `slow start 30s`,
/// `bounded load 1.25`, `sticky cookie drover_sticky`.
pub(crate) fn summary(p: &LoadPolicy, fmt: impl Fn(Duration) -> String) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = &p.slow_start {
        out.push(format!("slow start {}", fmt(s.window)));
    }
    if let Some(c) = p.bounded_load {
        out.push(format!("bounded load {c}"));
    }
    if let Some(s) = &p.sticky {
        out.push(format!("sticky cookie {}", s.cookie));
    }
    out
}

/// `sticky = true`, `sticky = false` or `sticky = { ... }`.
fn sticky(t: &Tbl<'_, '_>, errs: &mut Errors<'_>) -> Option<StickyConfig> {
    let v = t.raw("sticky")?;
    let tab = match v.get_ref() {
        DeValue::Boolean(on) => return on.then(StickyConfig::default),
        DeValue::Table(_) => t.sub(errs, "sticky")?,
        other => {
            t.error_at(
                errs,
                "sticky",
                format!(
                    "expected true or a table like {{ cookie = \"drover_sticky\", ttl = \"1h\" }}, got {}",
                    describe(other)
                ),
            );
            return None;
        }
    };
    tab.check_section(errs, &super::keys::STICKY);
    let mut cfg = StickyConfig::default();
    if let Some(g) = tab.get(errs, "cookie", |v| {
        let s = string(v)?;
        if valid_header_name(&s) {
            Ok(s)
        } else {
            Err(format!(
                "\"{}\" is not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~)",
                s.escape_default()
            ))
        }
    }) {
        cfg.cookie = g.v;
    }
    if let Some(g) = tab.get(errs, "ttl", nonzero_duration) {
        cfg.ttl = Some(g.v);
    }
    if let Some(g) = tab.get(errs, "secure", boolean) {
        cfg.secure = g.v;
    }
    if let Some(g) = tab.get(errs, "http_only", boolean) {
        cfg.http_only = g.v;
    }
    if let Some(g) = tab.get(errs, "same_site", one_of(SameSite::TABLE)) {
        cfg.same_site = g.v;
        if g.v == SameSite::None && !cfg.secure {
            tab.error_at(
                errs,
                "same_site",
                "same_site = \"None\" needs secure = true (browsers drop such cookies otherwise)",
            );
        }
    }
    Some(cfg)
}
