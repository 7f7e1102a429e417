//! `[pools.NAME.instances]`, `[pools.NAME.autoscale]` and its `[[rules]]`.

use std::time::Duration;

use super::error::Errors;
use super::keys;
use super::reader::{
    boolean, duration, nonempty_string, nonzero_duration, one_of, positive, size, string,
    string_list, string_map, uint, uint_min, Tbl,
};
use super::types::{
    AutoscaleConfig, DockerAddress, InstancesConfig, Metric, OnShutdown, ProviderKind, ScaleAction,
    ScaleRule, Threshold,
};

/// Keys that only some providers use.
const PROVIDER_KEYS: &[(&str, &[ProviderKind])] = &[
    ("command", &[ProviderKind::Process, ProviderKind::Docker]),
    ("env", &[ProviderKind::Process, ProviderKind::Docker]),
    (
        "on_shutdown",
        &[ProviderKind::Process, ProviderKind::Docker],
    ),
    ("image", &[ProviderKind::Docker]),
    ("container_port", &[ProviderKind::Docker]),
    ("args", &[ProviderKind::Docker]),
    ("network", &[ProviderKind::Docker]),
    ("address", &[ProviderKind::Docker]),
    ("memory", &[ProviderKind::Docker]),
    ("cpus", &[ProviderKind::Docker]),
    ("pull", &[ProviderKind::Docker]),
    ("service", &[ProviderKind::Swarm]),
    ("owner", &[ProviderKind::DockerLabels]),
    ("name", &[ProviderKind::Dns]),
    ("port", &[ProviderKind::Dns]),
];

/// Why a discovering provider's pool cannot have `[autoscale]`.
pub(crate) fn not_scaled(p: ProviderKind) -> &'static str {
    match p {
        ProviderKind::Dns => "drover does not start or stop the members a DNS name answers; remove [autoscale] or use provider = \"docker\"",
        _ => "drover does not start or stop docker_labels containers; remove [autoscale] or use provider = \"docker\"",
    }
}

pub(crate) fn instances(t: &Tbl<'_, '_>, errs: &mut Errors<'_>) -> Option<InstancesConfig> {
    let before = errs.list.len();
    t.check_section(errs, &keys::INSTANCES);
    let provider = t.require(
        errs,
        "provider",
        &ProviderKind::one_of(),
        one_of(ProviderKind::TABLE),
    );
    let mut cfg =
        InstancesConfig::with_provider(provider.as_ref().map_or(ProviderKind::Process, |g| g.v));
    read_keys(t, errs, &mut cfg);
    if let Some(p) = provider.map(|g| g.v) {
        provider_check(t, errs, p);
    }
    (errs.list.len() == before).then_some(cfg)
}

/// Every key but `provider`, into `cfg`.
fn read_keys(t: &Tbl<'_, '_>, errs: &mut Errors<'_>, cfg: &mut InstancesConfig) {
    if let Some(g) = t.get(errs, "count", uint::<u32>) {
        cfg.count = g.v;
    }
    if let Some(g) = t.get(errs, "command", string_list) {
        if g.v.is_empty() || g.v[0].trim().is_empty() {
            errs.push(&t.key("command"), g.span, "must not be empty; give the program and its arguments, like [\"./app\", \"--port\", \"{port}\"]");
        } else {
            cfg.command = g.v;
        }
    }
    cfg.image = t.get(errs, "image", nonempty_string).map(|g| g.v);
    cfg.container_port = t
        .get(errs, "container_port", uint_min::<u16>(1))
        .map(|g| g.v);
    if let Some(g) = t.get(errs, "args", string_list) {
        cfg.args = g.v;
    }
    cfg.network = t.get(errs, "network", nonempty_string).map(|g| g.v);
    if let Some(g) = t.get(errs, "address", one_of(DockerAddress::TABLE)) {
        cfg.address = g.v;
    }
    cfg.memory = t.get(errs, "memory", size).map(|g| g.v);
    cfg.cpus = t.get(errs, "cpus", positive).map(|g| g.v);
    if let Some(g) = t.get(errs, "pull", boolean) {
        cfg.pull = g.v;
    }
    if let Some(g) = t.get(errs, "on_shutdown", one_of(OnShutdown::TABLE)) {
        cfg.on_shutdown = g.v;
    }
    cfg.service = t.get(errs, "service", nonempty_string).map(|g| g.v);
    cfg.owner = t.get(errs, "owner", nonempty_string).map(|g| g.v);
    cfg.name = t
        .get(errs, "name", |v| super::values::parse_dns_name(&string(v)?))
        .map(|g| g.v);
    cfg.port = t.get(errs, "port", uint_min::<u16>(1)).map(|g| g.v);
    if let Some(g) = t.get(errs, "env", string_map) {
        cfg.env = g.v.into_iter().collect();
    }
    if let Some(g) = t.get(errs, "start_timeout", nonzero_duration) {
        cfg.start_timeout = g.v;
    }
    if let Some(g) = t.get(errs, "drain_timeout", duration) {
        cfg.drain_timeout = g.v;
    }
    if let Some(g) = t.get(errs, "stop_timeout", duration) {
        cfg.stop_timeout = g.v;
    }
}

/// Provider `p` is given every key it needs and no key it does not use.
fn provider_check(t: &Tbl<'_, '_>, errs: &mut Errors<'_>, p: ProviderKind) {
    let name = p.as_str();
    for (key, providers) in PROVIDER_KEYS {
        if t.has(key) && !providers.contains(&p) {
            let users: Vec<&str> = providers.iter().map(|p| p.as_str()).collect();
            t.error_at(
                errs,
                key,
                format!(
                    "not used with provider \"{name}\" (only with {})",
                    users.join(", ")
                ),
            );
        }
    }
    for (key, what) in required_keys(p) {
        if !t.has(key) {
            errs.push(
                &t.key(key),
                t.span.clone(),
                format!("required for provider \"{name}\": {what}"),
            );
        }
    }
}

/// The keys provider `p` needs, with what each is.
fn required_keys(p: ProviderKind) -> &'static [(&'static str, &'static str)] {
    match p {
        ProviderKind::Process => &[(
            "command",
            "the program to run, like [\"./app\", \"--port\", \"{port}\"]",
        )],
        ProviderKind::Docker => &[
            ("image", "the local image to run, like \"myapp:latest\""),
            (
                "container_port",
                "the port the app listens on inside the container",
            ),
        ],
        ProviderKind::Swarm => &[("service", "the name of an existing swarm service")],
        ProviderKind::DockerLabels => &[],
        ProviderKind::Dns => &[
            (
                "name",
                "the host name to resolve, like \"api.internal\" (a compose service name)",
            ),
            ("port", "the port to dial on every address the name answers"),
        ],
    }
}

pub(crate) fn autoscale(t: &Tbl<'_, '_>, errs: &mut Errors<'_>) -> Option<AutoscaleConfig> {
    let before = errs.list.len();
    t.check_section(errs, &keys::AUTOSCALE);
    let mut cfg = AutoscaleConfig::default();
    let min = t.get(errs, "min", uint::<u32>);
    let max = t.get(errs, "max", uint_min::<u32>(1));
    if let Some(g) = &min {
        cfg.min = g.v;
    }
    if let Some(g) = &max {
        cfg.max = g.v;
    }
    if cfg.min > cfg.max && (t.has("min") || t.has("max")) {
        let key = if t.has("min") { "min" } else { "max" };
        t.error_at(
            errs,
            key,
            format!("min ({}) is greater than max ({})", cfg.min, cfg.max),
        );
    }
    if let Some(g) = t.get(errs, "interval", nonzero_duration) {
        cfg.interval = g.v;
    }
    cfg.target_inflight = t.get(errs, "target_inflight", positive).map(|g| g.v);
    cfg.target_rps = t.get(errs, "target_rps", positive).map(|g| g.v);
    if t.has("target_inflight") && t.has("target_rps") {
        t.error_at(
            errs,
            "target_rps",
            "give target_inflight or target_rps, not both",
        );
    }
    if let Some(g) = t.get(errs, "scale_up_cooldown", duration) {
        cfg.scale_up_cooldown = g.v;
    }
    if let Some(g) = t.get(errs, "scale_down_cooldown", duration) {
        cfg.scale_down_cooldown = g.v;
    }
    if let Some(g) = t.get(errs, "idle_timeout", nonzero_duration) {
        cfg.idle_timeout = g.v;
    }
    if let Some(g) = t.get(errs, "hold_timeout", nonzero_duration) {
        cfg.hold_timeout = g.v;
    }
    super::scaling_ahead::read(t, errs, &mut cfg);
    for r in t.tables(errs, "rules") {
        if let Some(rule) = rule(&r, errs) {
            cfg.rules.push(rule);
        }
    }
    (errs.list.len() == before).then_some(cfg)
}

fn rule(t: &Tbl<'_, '_>, errs: &mut Errors<'_>) -> Option<ScaleRule> {
    t.check_section(errs, &keys::RULE);
    let metric = t.require(errs, "metric", &Metric::one_of(), one_of(Metric::TABLE));
    let above = t.get(errs, "above", super::reader::number);
    let below = t.get(errs, "below", super::reader::number);
    let threshold = match (t.has("above"), t.has("below")) {
        (true, true) => {
            t.error_at(errs, "below", "give above or below, not both");
            None
        }
        (false, false) => {
            errs.push(
                &t.path,
                t.span.clone(),
                "needs a threshold: above = N or below = N",
            );
            None
        }
        _ => above
            .map(|g| Threshold::Above(g.v))
            .or(below.map(|g| Threshold::Below(g.v))),
    };
    let for_ = t.get(errs, "for", duration).map_or(Duration::ZERO, |g| g.v);
    let given: Vec<&str> = ["add", "remove", "factor"]
        .into_iter()
        .filter(|k| t.has(k))
        .collect();
    let add = t.get(errs, "add", uint_min::<u32>(1));
    let remove = t.get(errs, "remove", uint_min::<u32>(1));
    let factor = t.get(errs, "factor", positive);
    let action = match given.len() {
        0 => {
            errs.push(
                &t.path,
                t.span.clone(),
                "needs an action: add = N, remove = N or factor = X",
            );
            None
        }
        1 => add
            .map(|g| ScaleAction::Add(g.v))
            .or(remove.map(|g| ScaleAction::Remove(g.v)))
            .or(factor.map(|g| ScaleAction::Factor(g.v))),
        _ => {
            t.error_at(
                errs,
                given[1],
                format!(
                    "give one of add, remove, factor (this rule has {})",
                    given.join(", ")
                ),
            );
            None
        }
    };
    Some(ScaleRule {
        metric: metric?.v,
        threshold: threshold?,
        for_,
        action: action?,
    })
}
