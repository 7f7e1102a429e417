//! Scheduled scaling: which `[[schedule]]` windows are open at a moment, and
//! the pool bounds they set. Pure: the controller passes the wall clock.
//!
//! A window opens each time its `cron` fires (local time in `tz`) and closes
//! at the next `until` after that (so it lasts at most a day). When windows
//! overlap, the one listed last wins; `min` / `max` it does not give stay
//! the pool's own.

use chrono::{DateTime, Days, LocalResult, NaiveTime, TimeZone, Timelike, Utc};
use serde::Serialize;

use crate::config::ScheduleEntry;

/// One open window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct OpenWindow {
    /// Position of the entry in the pool's `[[schedule]]` list.
    pub index: usize,
    pub cron: String,
    /// RFC 3339 UTC.
    #[schema(value_type = String, format = DateTime)]
    pub opened: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub closes: DateTime<Utc>,
}

/// The bounds in force and the windows that set them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bounds {
    pub min: u32,
    pub max: u32,
    /// The open windows (the last one set the bounds).
    pub open: Vec<OpenWindow>,
}

/// The first `until` (local time in the entry's zone) strictly after `opened`.
fn close_after(e: &ScheduleEntry, opened: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = opened.with_timezone(&e.tz);
    let at = NaiveTime::from_hms_opt(e.until.0, e.until.1, 0)?;
    for days in 0..3 {
        let date = local.date_naive().checked_add_days(Days::new(days))?;
        let naive = date.and_time(at);
        let t = match e.tz.from_local_datetime(&naive) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t,
            // A time skipped by a daylight-saving change: an hour later.
            LocalResult::None => match e
                .tz
                .from_local_datetime(&(naive + chrono::TimeDelta::hours(1)))
            {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t,
                LocalResult::None => continue,
            },
        };
        let t = t.with_timezone(&Utc);
        if t > opened {
            return Some(t);
        }
    }
    None
}

/// The window of `e` open at `now`, if any.
pub fn window_at(e: &ScheduleEntry, index: usize, now: DateTime<Utc>) -> Option<OpenWindow> {
    // Whole seconds: a firing time is a whole minute, the same on every call.
    let local = now.with_timezone(&e.tz).with_nanosecond(0)?;
    let fired = e.cron.cron.find_previous_occurrence(&local, true).ok()?;
    let opened = fired.with_timezone(&Utc).with_nanosecond(0)?;
    if now.signed_duration_since(opened) > chrono::TimeDelta::hours(26) {
        return None;
    }
    let closes = close_after(e, opened)?;
    (now < closes).then(|| OpenWindow {
        index,
        cron: e.cron.text.clone(),
        opened,
        closes,
    })
}

/// The bounds at `now`: the pool's `min` / `max`, replaced by the last open window's.
pub fn bounds_at(entries: &[ScheduleEntry], min: u32, max: u32, now: DateTime<Utc>) -> Bounds {
    let open: Vec<OpenWindow> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| window_at(e, i, now))
        .collect();
    let (mut lo, mut hi) = (min, max);
    if let Some(w) = open.last() {
        let e = &entries[w.index];
        lo = e.min.unwrap_or(min);
        hi = e.max.unwrap_or(max);
        if lo > hi {
            // The window's min above the pool's max (or the reverse): the window wins.
            if e.min.is_some() {
                hi = lo;
            } else {
                lo = hi;
            }
        }
    }
    Bounds {
        min: lo,
        max: hi,
        open,
    }
}

/// Windows that opened and closed between two evaluations (by entry index;
/// an entry that fires again while its window is open stays open).
pub fn changes(before: &[OpenWindow], now: &[OpenWindow]) -> (Vec<usize>, Vec<usize>) {
    let had = |ws: &[OpenWindow], w: &OpenWindow| ws.iter().any(|x| x.index == w.index);
    let opened = now
        .iter()
        .filter(|w| !had(before, w))
        .map(|w| w.index)
        .collect();
    let closed = before
        .iter()
        .filter(|w| !had(now, w))
        .map(|w| w.index)
        .collect();
    (opened, closed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schedule::CronSpec;

    fn entry(
        cron: &str,
        min: Option<u32>,
        max: Option<u32>,
        until: (u32, u32),
        tz: &str,
    ) -> ScheduleEntry {
        ScheduleEntry {
            cron: CronSpec::parse(cron).unwrap(),
            min,
            max,
            until,
            tz: tz.parse().unwrap(),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn weekday_business_hours_window() {
        let e = [entry("0 9 * * 1-5", Some(3), Some(10), (18, 0), "UTC")];
        // 2026-11-30 is a Monday.
        let b = bounds_at(&e, 1, 5, at("2026-11-30T08:59:00Z"));
        assert_eq!((b.min, b.max), (1, 5));
        assert!(b.open.is_empty());
        let b = bounds_at(&e, 1, 5, at("2026-11-30T09:00:00Z"));
        assert_eq!((b.min, b.max), (3, 10));
        assert_eq!(b.open[0].opened, at("2026-11-30T09:00:00Z"));
        assert_eq!(b.open[0].closes, at("2026-11-30T18:00:00Z"));
        let b = bounds_at(&e, 1, 5, at("2026-11-30T17:59:59Z"));
        assert_eq!((b.min, b.max), (3, 10));
        let b = bounds_at(&e, 1, 5, at("2026-11-30T18:00:00Z"));
        assert_eq!((b.min, b.max), (1, 5));
        // Saturday 10:00: no window.
        let b = bounds_at(&e, 1, 5, at("2026-12-05T10:00:00Z"));
        assert!(b.open.is_empty());
    }

    #[test]
    fn window_past_midnight_closes_the_next_day() {
        let e = [entry("0 22 * * *", Some(0), Some(1), (6, 0), "UTC")];
        let b = bounds_at(&e, 2, 8, at("2026-12-01T03:00:00Z"));
        assert_eq!((b.min, b.max), (0, 1));
        assert_eq!(b.open[0].closes, at("2026-12-01T06:00:00Z"));
        assert!(bounds_at(&e, 2, 8, at("2026-12-01T07:00:00Z"))
            .open
            .is_empty());
    }

    #[test]
    fn time_zone_is_applied() {
        // 09:00 in Berlin (UTC+1 in winter) is 08:00 UTC.
        let e = [entry("0 9 * * *", Some(4), None, (12, 0), "Europe/Berlin")];
        assert!(bounds_at(&e, 1, 10, at("2026-12-01T07:59:00Z"))
            .open
            .is_empty());
        let b = bounds_at(&e, 1, 10, at("2026-12-01T08:00:00Z"));
        assert_eq!((b.min, b.max), (4, 10));
        assert_eq!(b.open[0].closes, at("2026-12-01T11:00:00Z"));
    }

    #[test]
    fn later_entry_wins_and_bounds_stay_ordered() {
        let e = [
            entry("0 8 * * *", Some(2), None, (20, 0), "UTC"),
            entry("0 12 * * *", None, Some(1), (13, 0), "UTC"),
        ];
        let b = bounds_at(&e, 1, 10, at("2026-12-01T12:30:00Z"));
        assert_eq!(b.open.len(), 2);
        assert_eq!((b.min, b.max), (1, 1));
        let b = bounds_at(&e, 1, 10, at("2026-12-01T13:30:00Z"));
        assert_eq!((b.min, b.max), (2, 10));
        let e = [entry("0 8 * * *", Some(12), None, (20, 0), "UTC")];
        let b = bounds_at(&e, 1, 10, at("2026-12-01T09:00:00Z"));
        assert_eq!((b.min, b.max), (12, 12));
    }

    #[test]
    fn changes_name_windows_opening_and_closing() {
        let e = [entry("0 9 * * *", Some(3), None, (10, 0), "UTC")];
        let before = bounds_at(&e, 1, 10, at("2026-12-01T08:59:00Z")).open;
        let during = bounds_at(&e, 1, 10, at("2026-12-01T09:00:30Z")).open;
        let after = bounds_at(&e, 1, 10, at("2026-12-01T10:00:30Z")).open;
        assert_eq!(changes(&before, &during), (vec![0], vec![]));
        assert_eq!(changes(&during, &during), (vec![], vec![]));
        assert_eq!(changes(&during, &after), (vec![], vec![0]));
    }

    #[test]
    fn every_minute_cron_opens_at_the_latest_firing() {
        let e = [entry("* * * * *", Some(2), None, (23, 59), "UTC")];
        let b = bounds_at(&e, 1, 10, at("2026-12-01T10:15:30Z"));
        assert_eq!(b.open[0].opened, at("2026-12-01T10:15:00Z"));
        // Sub-second clocks give the same window on every evaluation (no
        // open/close events in between).
        let a = bounds_at(&e, 1, 10, at("2026-12-01T10:15:30.123456789Z")).open;
        let b = bounds_at(&e, 1, 10, at("2026-12-01T10:15:30.987654321Z")).open;
        assert_eq!(a[0].opened, at("2026-12-01T10:15:00Z"));
        assert_eq!(changes(&a, &b), (vec![], vec![]));
        // Firing again a minute later: still the same open window.
        let c = bounds_at(&e, 1, 10, at("2026-12-01T10:16:30Z")).open;
        assert_eq!(changes(&b, &c), (vec![], vec![]));
    }
}
