//! The defaults the starter config (`drover init`) and README state are the
//! code's: each is compared with the default `drover schema` shows, which is
//! read from a config that sets nothing (so from `defaults.rs`).
//!
//! What counts as a stated default:
//! - in TOML (the starter, README's ```toml blocks): a commented-out
//!   `# key = value` line (the starter's rule: "commented-out lines show the
//!   default value"), unless its comment says `(default X)` or `X (default)`,
//!   which is the claim then (the line shows an example);
//! - in README's `| key | default | ... |` tables: the backticked values of
//!   the default cell, one per backticked key.
//!
//! Keys whose default the schema does not give (no default, or one that
//! depends on other keys) are skipped; a key the schema does not know fails.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{json_schema, parse_duration, STARTER_CONFIG};

const README: &str = include_str!("../../README.md");

/// Every key path (`pools.*.health.interval`) with its schema default, if any.
fn schema_keys() -> BTreeMap<String, Option<Value>> {
    fn walk(v: &Value, path: &str, out: &mut BTreeMap<String, Option<Value>>) {
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            for (k, p) in props {
                let kp = join(path, k);
                out.entry(kp.clone())
                    .or_insert_with(|| p.get("default").cloned());
                walk(p, &kp, out);
            }
        }
        if let Some(items) = v.get("items") {
            walk(items, path, out);
        }
        if let Some(ap) = v.get("additionalProperties").filter(|a| a.is_object()) {
            walk(ap, &join(path, "*"), out);
        }
        for x in v
            .get("anyOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            walk(x, path, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(&json_schema(), "", &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `pools.app.health` -> `pools.*.health`.
fn normalize(section: &str) -> String {
    let mut parts: Vec<&str> = section.split('.').collect();
    if parts.first() == Some(&"pools") && parts.len() > 1 {
        parts[1] = "*";
    }
    parts.join(".")
}

/// One stated default: where, which key, the value as written.
#[derive(Debug)]
struct Stated {
    place: String,
    key: String,
    value: Value,
}

/// A TOML value as written (`"5s"`, `1024`, `[]`, `true`); a bare word is taken as a string.
fn value(text: &str) -> Value {
    let text = text.trim();
    match toml::from_str::<toml::Table>(&format!("v = {text}")) {
        Ok(mut t) => serde_json::to_value(t.remove("v")).expect("a TOML value is JSON"),
        Err(_) => Value::String(text.trim_matches('"').to_string()),
    }
}

/// `(default X)` (up to `)`, `;` or `,`) or `X (default)` in a comment.
fn claimed_in(comment: &str) -> Option<Value> {
    if let Some(i) = comment.find("(default ") {
        let rest = &comment[i + "(default ".len()..];
        return rest.split([')', ';', ',']).next().map(value);
    }
    let i = comment.find(" (default)")?;
    comment[..i].split_whitespace().last().map(value)
}

/// The defaults stated in TOML text (`# key = value` lines and `(default X)` comments).
fn stated_in_toml(text: &str, place: &str, out: &mut Vec<Stated>) {
    let mut section = String::new();
    for (n, line) in text.lines().enumerate() {
        let commented = line.starts_with('#');
        let body = line.trim_start_matches('#').trim();
        if let Some(h) = body.strip_prefix('[') {
            let name = h.trim_start_matches('[');
            if let Some(end) = name.find(']') {
                section = normalize(&name[..end]);
            }
            continue;
        }
        let Some((key, rest)) = body.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let (written, comment) = match rest.find(" #") {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let value = match (claimed_in(comment), commented) {
            (Some(v), _) => v,
            (None, true) => value(written),
            (None, false) => continue,
        };
        out.push(Stated {
            place: format!("{place}:{}", n + 1),
            key: join(&section, key),
            value,
        });
    }
}

/// README's ```toml blocks.
fn readme_toml(out: &mut Vec<Stated>) {
    let mut block: Option<(usize, String)> = None;
    for (n, line) in README.lines().enumerate() {
        match (&mut block, line.trim_end()) {
            (None, "```toml") => block = Some((n + 1, String::new())),
            (Some((start, text)), "```") => {
                let mut found = Vec::new();
                stated_in_toml(text, "README.md", &mut found);
                for mut s in found {
                    let (_, line) = s.place.split_once(':').expect("place has a line");
                    let line: usize = line.parse().expect("a line number");
                    s.place = format!("README.md:{}", *start + line);
                    out.push(s);
                }
                block = None;
            }
            (Some((_, text)), l) => {
                text.push_str(l);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
}

/// The config section a README table's bare keys belong to, from the heading above it.
fn table_section(heading: &str, header_row: &str) -> String {
    for text in [header_row, heading] {
        if let Some(i) = text.find("`[") {
            let inner = &text[i + 2..];
            if let Some(end) = inner.find(']') {
                return normalize(&inner[..end]);
            }
        }
    }
    let known = [
        ("Routes: rate limits, headers, redirects", "routes"),
        ("Connection limits and the queue", "pools.*"),
        ("HTTP/2 and h2c backends", "pools.*"),
        ("gRPC", "pools.*"),
        ("Slow start and sticky sessions", "pools.*.sticky"),
        ("Limits and hardening", ""),
    ];
    let title = heading.trim_start_matches('#').trim();
    known
        .iter()
        .find(|(h, _)| *h == title)
        .map(|(_, s)| s.to_string())
        .unwrap_or_else(|| {
            panic!("README table under \"{title}\": add its section to table_section")
        })
}

/// The backticked items of a table cell.
fn ticked(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// README's `| key | default | ... |` tables.
fn readme_tables(out: &mut Vec<Stated>) {
    let mut heading = "";
    let mut section: Option<String> = None;
    for (n, line) in README.lines().enumerate() {
        if line.starts_with('#') {
            heading = line;
            continue;
        }
        if !line.starts_with('|') {
            section = None;
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.get(2) == Some(&"default") && cells[1].starts_with("key") {
            section = Some(table_section(heading, cells[1]));
            continue;
        }
        let (Some(section), Some(keys), Some(defaults)) = (&section, cells.get(1), cells.get(2))
        else {
            continue;
        };
        let keys = ticked(keys);
        let defaults = ticked(defaults);
        // `pools.*.max_queue`, `queue_timeout`: a bare key after a dotted one is its sibling.
        let mut parent = section.clone();
        for (key, default) in keys.iter().zip(defaults) {
            let absolute = ["server.", "admin.", "log.", "pools."]
                .iter()
                .any(|p| key.starts_with(p));
            let path = if absolute {
                parent = key.rsplit_once('.').map_or("", |(p, _)| p).to_string();
                key.to_string()
            } else {
                join(&parent, key)
            };
            out.push(Stated {
                place: format!("README.md:{}", n + 1),
                key: path,
                value: value(default),
            });
        }
    }
}

/// Equal as config values: durations by length, the rest as JSON.
fn same(stated: &Value, code: &Value) -> bool {
    match (stated, code) {
        (Value::String(a), Value::String(b)) => match (parse_duration(a), parse_duration(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        },
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => stated == code,
    }
}

fn check(stated: &[Stated]) -> (usize, Vec<String>) {
    let keys = schema_keys();
    let mut compared = 0;
    let mut wrong = Vec::new();
    for s in stated {
        match keys.get(&s.key) {
            None => wrong.push(format!("{}: {} is not a config key", s.place, s.key)),
            Some(None) => {}
            Some(Some(code)) => {
                compared += 1;
                if !same(&s.value, code) {
                    wrong.push(format!(
                        "{}: {} states {} but the code's default is {}",
                        s.place, s.key, s.value, code
                    ));
                }
            }
        }
    }
    (compared, wrong)
}

#[test]
fn the_starter_states_the_code_defaults() {
    let mut stated = Vec::new();
    stated_in_toml(STARTER_CONFIG, "starter.rs STARTER_CONFIG", &mut stated);
    let (compared, wrong) = check(&stated);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(compared >= 50, "only {compared} defaults compared");
}

#[test]
fn the_readme_states_the_code_defaults() {
    let mut stated = Vec::new();
    readme_toml(&mut stated);
    readme_tables(&mut stated);
    let (compared, wrong) = check(&stated);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(compared >= 30, "only {compared} defaults compared");
}

#[test]
fn a_wrong_stated_default_is_caught() {
    let mut stated = Vec::new();
    let toml = "[pools.x.health]\n# interval = \"3s\"\n# rise = 2\n[pools.x.autoscale]\n# warm = 1   # (default 1)\n# nosuch = 1\n";
    stated_in_toml(toml, "t", &mut stated);
    let (compared, wrong) = check(&stated);
    assert_eq!(compared, 3);
    assert_eq!(wrong.len(), 3, "{wrong:?}");
    assert!(wrong[0].contains("pools.*.health.interval states \"3s\""));
    assert!(wrong[1].contains("pools.*.autoscale.warm states 1"));
    assert!(wrong[2].contains("nosuch is not a config key"));
}
