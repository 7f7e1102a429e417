//! The autoscale keys that scale ahead: warm pool, predictive, schedule.

use super::tests::{assert_error, errors, load};

fn managed(provider: &str, autoscale: &str) -> String {
    let inst = match provider {
        "swarm" => "provider = \"swarm\"\nservice = \"web\"".to_string(),
        p => format!("provider = \"{p}\"\ncommand = [\"./app\"]"),
    };
    format!("[pools.api]\n[pools.api.instances]\n{inst}\n[pools.api.autoscale]\n{autoscale}\n")
}

#[test]
fn defaults_are_no_warm_pool_no_forecast_no_schedule() {
    let c = load(&managed("process", "max = 3"));
    let a = c.pools["api"].autoscale.clone().unwrap();
    assert_eq!(a.warm, 0);
    assert!(a.warm_freeze);
    assert!(a.warm_at_zero);
    assert!(!a.predictive);
    assert!(a.schedule.is_empty());
}

#[test]
fn reads_warm_predictive_and_schedule() {
    let c = load(&managed(
        "process",
        r#"min = 0
max = 8
target_inflight = 10
warm = 2
warm_freeze = false
warm_at_zero = false
predictive = true
[[pools.api.autoscale.schedule]]
cron = "0 9 * * 1-5"
min = 3
max = 10
until = "18:00"
tz = "Europe/Berlin"
[[pools.api.autoscale.schedule]]
cron = "30 22 * * *"
max = 1
until = "6:00""#,
    ));
    let a = c.pools["api"].autoscale.clone().unwrap();
    assert_eq!(
        (a.warm, a.warm_freeze, a.warm_at_zero, a.predictive),
        (2, false, false, true)
    );
    assert_eq!(a.schedule.len(), 2);
    assert_eq!(a.schedule[0].cron.text, "0 9 * * 1-5");
    assert_eq!((a.schedule[0].min, a.schedule[0].max), (Some(3), Some(10)));
    assert_eq!(a.schedule[0].until, (18, 0));
    assert_eq!(a.schedule[0].tz, chrono_tz::Tz::Europe__Berlin);
    assert_eq!((a.schedule[1].min, a.schedule[1].max), (None, Some(1)));
    assert_eq!(a.schedule[1].tz, chrono_tz::Tz::UTC);
    let lines = super::summary_lines(&c).join("\n");
    assert!(
        lines.contains("autoscale 0..8, warm 2, predictive, 2 schedule window(s)"),
        "{lines}"
    );
}

#[test]
fn warm_is_refused_with_swarm() {
    assert_error(
        &managed("swarm", "warm = 1"),
        "pools.api.autoscale.warm",
        "not supported with provider = \"swarm\"",
    );
}

#[test]
fn warm_keys_checked() {
    assert_error(
        &managed("process", "warm = -1"),
        "pools.api.autoscale.warm",
        "",
    );
    assert_error(
        &managed("process", "warm = 1\nwarm_freeze = \"yes\""),
        "pools.api.autoscale.warm_freeze",
        "",
    );
    assert_error(
        &managed("process", "warm_at_zero = false"),
        "pools.api.autoscale.warm_at_zero",
        "no effect without warm",
    );
}

#[test]
fn predictive_needs_a_target() {
    assert_error(
        &managed("process", "predictive = true"),
        "pools.api.autoscale.predictive",
        "needs target_inflight or target_rps",
    );
    load(&managed("process", "predictive = true\ntarget_rps = 50"));
}

#[test]
fn schedule_entries_checked_with_positions() {
    let with = |entry: &str| {
        managed(
            "process",
            &format!("max = 5\n[[pools.api.autoscale.schedule]]\n{entry}"),
        )
    };
    assert_error(
        &with("cron = \"0 9 * *\"\nmin = 2\nuntil = \"18:00\""),
        "pools.api.autoscale.schedule[0].cron",
        "five fields",
    );
    assert_error(
        &with("cron = \"0 99 * * *\"\nmin = 2\nuntil = \"18:00\""),
        "pools.api.autoscale.schedule[0].cron",
        "not a valid cron expression",
    );
    assert_error(
        &with("cron = \"0 9 * * *\"\nmin = 2\nuntil = \"25:00\""),
        "pools.api.autoscale.schedule[0].until",
        "time of day",
    );
    assert_error(
        &with("cron = \"0 9 * * *\"\nmin = 2"),
        "pools.api.autoscale.schedule[0].until",
        "required",
    );
    assert_error(
        &with("cron = \"0 9 * * *\"\nmin = 2\nuntil = \"18:00\"\ntz = \"Mars/Olympus\""),
        "pools.api.autoscale.schedule[0].tz",
        "unknown time zone",
    );
    assert_error(
        &with("cron = \"0 9 * * *\"\nuntil = \"18:00\""),
        "pools.api.autoscale.schedule[0]",
        "give min = N and/or max = N",
    );
    assert_error(
        &with("cron = \"0 9 * * *\"\nmin = 7\nuntil = \"18:00\""),
        "pools.api.autoscale.schedule[0].min",
        "greater than its max",
    );
    assert_error(
        &with("cron = \"0 9 * * *\"\nmin = 1\nuntil = \"18:00\"\nevery = 2"),
        "pools.api.autoscale.schedule[0].every",
        "",
    );
    // Line and column point at the bad value.
    let errs = errors(&with("cron = \"0 9 * * *\"\nmin = 2\nuntil = \"9\""));
    let e = errs
        .iter()
        .find(|e| e.key == "pools.api.autoscale.schedule[0].until")
        .unwrap();
    assert_eq!(e.line, Some(10), "{e}");
}
