//! `drover schema`: a JSON Schema (draft-07, read by Taplo / "Even Better
//! TOML") generated from the key tables in [`super::keys`], with the defaults
//! the reader fills in.

use serde_json::{json, Map, Value};

use super::keys::{Section, Ty, ROOT};
use super::types::Config;

/// A config with every defaulted section present and nothing else set: the
/// values the reader fills in are the defaults the schema shows.
const DEFAULTS_PROBE: &str = r#"
[server]
[admin]
[log]
[[routes]]
pool = "p"
[pools.p]
backends = ["127.0.0.1:1"]
[pools.p.health]
[pools.p.passive]
[pools.p.instances]
provider = "process"
command = ["app"]
[pools.p.autoscale]
"#;

/// Matches a `"${NAME}"` reference, which is expanded before the value is read.
const ENV_REF: &str = r"\$\{";

/// The JSON Schema of `drover.toml`.
pub fn json_schema() -> Value {
    let defaults = super::load_str(DEFAULTS_PROBE, None)
        .unwrap_or_else(|e| panic!("the defaults probe config is valid: {e}"));
    let mut root = section(&ROOT, &defaults);
    if let Value::Object(m) = &mut root {
        m.insert(
            "$schema".into(),
            json!("http://json-schema.org/draft-07/schema#"),
        );
        m.insert(
            "$id".into(),
            json!("https://github.com/drover-proxy/drover/drover.schema.json"),
        );
        m.insert("title".into(), json!("drover.toml"));
    }
    root
}

fn section(s: &Section, defaults: &Config) -> Value {
    let mut props = Map::new();
    for k in s.keys {
        let mut v = ty(&k.ty, defaults);
        if let Value::Object(m) = &mut v {
            m.insert("description".into(), json!(k.doc));
            if let Some(d) = k.default {
                m.insert("default".into(), d(defaults));
            }
        }
        props.insert(k.name.into(), v);
    }
    let mut out = json!({
        "type": "object",
        "title": s.title,
        "description": s.doc,
        "properties": props,
        "additionalProperties": false,
    });
    if !s.required.is_empty() {
        out["required"] = json!(s.required);
    }
    if !s.required_any.is_empty() {
        let any: Vec<Value> = s
            .required_any
            .iter()
            .map(|k| json!({ "required": [k] }))
            .collect();
        out["anyOf"] = Value::Array(any);
    }
    out
}

fn string_pattern(pattern: &str) -> Value {
    json!({ "type": "string", "pattern": format!("{pattern}|{ENV_REF}") })
}

fn ty(t: &Ty, defaults: &Config) -> Value {
    match t {
        Ty::Bool => json!({ "type": "boolean" }),
        Ty::Str => json!({ "type": "string" }),
        Ty::NonEmpty => json!({ "type": "string", "pattern": r"\S" }),
        Ty::AbsPath => string_pattern("^/"),
        Ty::Uint(min) => json!({ "type": "integer", "minimum": min }),
        Ty::Positive => json!({ "type": "number", "exclusiveMinimum": 0 }),
        Ty::Number => json!({ "type": "number" }),
        Ty::Duration => {
            string_pattern(r"^\s*(0|(([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|ms|s|m|h|d))+)\s*$")
        }
        Ty::Size => json!({
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                string_pattern(r"^\s*([0-9]+\.?[0-9]*|\.[0-9]+)\s*([kKmMgGtT]([iI]?[bB])?)?\s*$"),
            ]
        }),
        Ty::Addr => string_pattern(r"^\s*\S+:[0-9]{1,5}\s*$"),
        Ty::AddrList => json!({
            "anyOf": [
                ty(&Ty::Addr, defaults),
                { "type": "array", "items": ty(&Ty::Addr, defaults) },
            ]
        }),
        Ty::StrList => json!({ "type": "array", "items": { "type": "string" } }),
        Ty::StrMap => json!({ "type": "object", "additionalProperties": { "type": "string" } }),
        Ty::Choice(names) => json!({ "type": "string", "enum": names() }),
        Ty::StatusRanges => json!({
            "anyOf": [
                { "type": "integer", "minimum": 100, "maximum": 999 },
                string_pattern(r"^[0-9 ,-]+$"),
            ]
        }),
        Ty::Table(s) => section(s, defaults),
        Ty::Tables(s) => json!({ "type": "array", "items": section(s, defaults) }),
        Ty::Named(s) => json!({
            "type": "object",
            "propertyNames": { "pattern": "^[A-Za-z0-9._-]+$" },
            "additionalProperties": section(s, defaults),
        }),
        Ty::AnyOf(ts) => json!({ "anyOf": ts.iter().map(|t| ty(t, defaults)).collect::<Vec<_>>() }),
        Ty::ListOf(ts) => json!({
            "type": "array",
            "items": { "anyOf": ts.iter().map(|t| ty(t, defaults)).collect::<Vec<_>>() },
        }),
    }
}
