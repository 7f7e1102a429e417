//! The keys of `[pools.NAME.autoscale]` that scale ahead of the load: the
//! warm pool (`warm`, `warm_freeze`, `warm_at_zero`), `predictive`, and the
//! `[[schedule]]` windows.

use super::error::Errors;
use super::reader::{boolean, nonempty_string, uint, Tbl};
use super::schedule::{parse_time_of_day, CronSpec};
use super::types::{AutoscaleConfig, ScheduleEntry};

/// Reads the keys of [`KEYS`] into `cfg` (whose `min` / `max` are read already).
pub(crate) fn read(t: &Tbl<'_, '_>, errs: &mut Errors<'_>, cfg: &mut AutoscaleConfig) {
    if let Some(g) = t.get(errs, "warm", uint::<u32>) {
        cfg.warm = g.v;
    }
    if let Some(g) = t.get(errs, "warm_freeze", boolean) {
        cfg.warm_freeze = g.v;
    }
    if let Some(g) = t.get(errs, "warm_at_zero", boolean) {
        cfg.warm_at_zero = g.v;
    }
    if cfg.warm == 0 {
        for key in ["warm_freeze", "warm_at_zero"] {
            if t.has(key) {
                t.error_at(errs, key, "has no effect without warm = N (N ≥ 1)");
            }
        }
    }
    if let Some(g) = t.get(errs, "predictive", boolean) {
        cfg.predictive = g.v;
        if g.v && cfg.target_inflight.is_none() && cfg.target_rps.is_none() {
            t.error_at(
                errs,
                "predictive",
                "forecasts the target metric: needs target_inflight or target_rps",
            );
        }
    }
    for s in t.tables(errs, "schedule") {
        if let Some(e) = entry(&s, errs, cfg) {
            cfg.schedule.push(e);
        }
    }
}

fn entry(t: &Tbl<'_, '_>, errs: &mut Errors<'_>, pool: &AutoscaleConfig) -> Option<ScheduleEntry> {
    let before = errs.list.len();
    t.check_section(errs, &super::keys::SCHEDULE);
    let cron = t.require(
        errs,
        "cron",
        "when the window opens, a cron expression like \"0 9 * * 1-5\"",
        |v| nonempty_string(v).and_then(|s| CronSpec::parse(&s)),
    );
    let until = t.require(
        errs,
        "until",
        "when the window closes, a time of day like \"18:00\"",
        |v| nonempty_string(v).and_then(|s| parse_time_of_day(&s)),
    );
    let tz = match t.get(errs, "tz", |v| {
        nonempty_string(v).and_then(|s| {
            s.parse::<chrono_tz::Tz>().map_err(|_| {
                format!("unknown time zone \"{s}\"; give an IANA name like \"Europe/Berlin\" or \"UTC\"")
            })
        })
    }) {
        Some(g) => g.v,
        None => chrono_tz::Tz::UTC,
    };
    let min = t.get(errs, "min", uint::<u32>).map(|g| g.v);
    let max = t
        .get(errs, "max", super::reader::uint_min::<u32>(1))
        .map(|g| g.v);
    if !t.has("min") && !t.has("max") {
        errs.push(
            &t.path,
            t.span.clone(),
            "sets nothing: give min = N and/or max = N for the window",
        );
    }
    let (lo, hi) = (min.unwrap_or(pool.min), max.unwrap_or(pool.max));
    if lo > hi && errs.list.len() == before {
        let key = if t.has("min") { "min" } else { "max" };
        t.error_at(
            errs,
            key,
            format!("the window's min ({lo}) is greater than its max ({hi})"),
        );
    }
    if errs.list.len() != before {
        return None;
    }
    Some(ScheduleEntry {
        cron: cron?.v,
        min,
        max,
        until: until?.v,
        tz,
    })
}
