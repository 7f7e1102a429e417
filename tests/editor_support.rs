//! `drover schema`, `drover completions` and `drover man`: the schema says
//! what the reader accepts (key by key), validates the starter config and
//! README's examples with a real JSON Schema validator (Python `jsonschema`),
//! and what it rejects `drover check` rejects too.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use common::BIN;

/// A key no section accepts.
const PROBE: &str = "zz_probe_unknown";

/// Where a table sits in the document: keys, `[0]` for an array item.
#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Item,
}

/// Every table (object with `properties`) the schema describes, with its path
/// and title.
fn tables(node: &Value, path: &[Seg], out: &mut Vec<(Vec<Seg>, Value)>) {
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        out.push((path.to_vec(), node.clone()));
        for (k, sub) in props {
            let mut p = path.to_vec();
            p.push(Seg::Key(k.clone()));
            tables(sub, &p, out);
        }
    }
    if let Some(items) = node.get("items") {
        let mut p = path.to_vec();
        p.push(Seg::Item);
        tables(items, &p, out);
    }
    for alt in node
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        tables(alt, path, out);
    }
    if let Some(named) = node.get("additionalProperties").filter(|v| v.is_object()) {
        let mut p = path.to_vec();
        p.push(Seg::Key("p".into()));
        tables(named, &p, out);
    }
}

/// The TOML document with `{ PROBE = 1 }` at `path`, and the probe's key path
/// as the reader reports it.
fn probe_doc(path: &[Seg]) -> (String, String) {
    let object = |k: &str, v: Value| {
        let mut m = serde_json::Map::new();
        m.insert(k.to_string(), v);
        Value::Object(m)
    };
    let mut v = object(PROBE, json!(1));
    for seg in path.iter().rev() {
        v = match seg {
            Seg::Key(k) => object(k, v),
            Seg::Item => json!([v]),
        };
    }
    let mut key = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if key.is_empty() => key.push_str(k),
            Seg::Key(k) => key.push_str(&format!(".{k}")),
            Seg::Item => key.push_str("[0]"),
        }
    }
    let key = if key.is_empty() {
        PROBE.to_string()
    } else {
        format!("{key}.{PROBE}")
    };
    (toml::to_string(&v).expect("probe serialises"), key)
}

/// REQUIRED by the integrator: fails when the reader accepts a key the schema
/// lacks, or the schema lists a key the reader rejects, naming the key and the
/// file to edit.
#[test]
fn schema_lists_exactly_the_keys_the_reader_accepts() {
    let schema = drover::config::json_schema();
    let mut all = Vec::new();
    tables(&schema, &[], &mut all);
    assert!(all.len() >= 14, "found only {} tables", all.len());
    let mut problems = Vec::new();
    for (path, node) in &all {
        let (doc, key) = probe_doc(path);
        let title = node["title"].as_str().unwrap_or("?");
        let errs = match drover::config::load_str(&doc, None) {
            Ok(_) => {
                problems.push(format!(
                    "{key}: the reader accepted an unknown key in {title}"
                ));
                continue;
            }
            Err(e) => e.errors,
        };
        let Some(err) = errs.iter().find(|e| e.key == key) else {
            problems.push(format!(
                "{key}: the reader does not check the keys of {title} (errors: {errs:?})"
            ));
            continue;
        };
        let accepted: BTreeSet<String> = err
            .message
            .split_once("accepted here: ")
            .map(|(_, list)| list.split(", ").map(str::to_string).collect())
            .unwrap_or_default();
        let listed: BTreeSet<String> = node["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        for k in accepted.difference(&listed) {
            problems.push(format!(
                "the reader accepts {title} key \"{k}\" but the schema lacks it: add it to the \
                 section's key table in src/config/keys.rs (the table the reader's unknown-key \
                 check and `drover schema` share) with its type and description"
            ));
        }
        for k in listed.difference(&accepted) {
            problems.push(format!(
                "the schema lists {title} key \"{k}\" but the reader rejects it: the reader must \
                 check keys with `check_section(&keys::...)` (src/config/keys.rs)"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn schema_shows_defaults_enums_and_descriptions_from_the_config_code() {
    let out = Command::new(BIN).arg("schema").output().unwrap();
    assert!(out.status.success());
    let s: Value = serde_json::from_slice(&out.stdout).expect("drover schema prints JSON");
    assert_eq!(s["$schema"], "http://json-schema.org/draft-07/schema#");
    let server = &s["properties"]["server"]["properties"];
    assert_eq!(server["shutdown_timeout"]["default"], "30s");
    assert_eq!(server["max_header_bytes"]["default"], 65536);
    assert_eq!(server["max_header_bytes"]["minimum"], 8192);
    assert_eq!(server["listen"]["default"], json!(["127.0.0.1:8080"]));
    let pool = &s["properties"]["pools"]["additionalProperties"]["properties"];
    let balances = pool["balance"]["enum"].as_array().unwrap();
    assert!(balances.contains(&json!("least_conn")) && balances.contains(&json!("p2c_ewma")));
    assert_eq!(pool["balance"]["default"], "round_robin");
    assert_eq!(pool["upstream_idle_timeout"]["default"], "50s");
    assert_eq!(
        pool["autoscale"]["properties"]["idle_timeout"]["default"],
        "5m"
    );
    assert_eq!(
        pool["instances"]["properties"]["provider"]["enum"],
        json!(["process", "docker", "docker_labels", "swarm", "dns"])
    );
    let log = &s["properties"]["log"]["properties"];
    assert_eq!(log["access"]["default"], "stdout");
    assert_eq!(log["access_format"]["enum"], json!(["json", "combined"]));
    assert!(log["access"]["description"]
        .as_str()
        .unwrap()
        .contains("SIGUSR1"));
}

/// A Python with `jsonschema` — `python3` on the PATH, else Debian's (where
/// `.ci/run`'s `apt-get install python3-jsonschema` puts it when `python3` is
/// another install) — or `None` (a loud skip outside CI).
fn python_with_jsonschema() -> Option<&'static str> {
    for python in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(python)
            .args(["-c", "import jsonschema, tomllib"])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(python);
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "python3 with jsonschema is required under CI (.ci/run installs python3-jsonschema)"
    );
    eprintln!("SKIPPED: python3 -c 'import jsonschema' failed; install python3-jsonschema");
    None
}

/// Validates each TOML text against the schema with Python's `jsonschema`
/// (draft-07): the list of error messages per text.
fn validate(python: &str, schema: &Path, docs: &[String]) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import json, sys, tomllib, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
v = jsonschema.Draft7Validator(schema)
out = []
for path in sys.argv[2:]:
    doc = tomllib.loads(open(path).read())
    out.append(["/".join(map(str, e.absolute_path)) + ": " + e.message for e in v.iter_errors(doc)])
print(json.dumps(out))
"#;
    let mut args = vec!["-c".to_string(), script.to_string()];
    args.push(schema.display().to_string());
    for (i, d) in docs.iter().enumerate() {
        let p = dir.path().join(format!("doc{i}.toml"));
        std::fs::write(&p, d).unwrap();
        args.push(p.display().to_string());
    }
    let out = Command::new(python).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "validator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn schema_file(dir: &Path) -> std::path::PathBuf {
    let out = Command::new(BIN).arg("schema").output().unwrap();
    assert!(out.status.success());
    let p = dir.join("drover.schema.json");
    std::fs::write(&p, &out.stdout).unwrap();
    p
}

/// Every ```toml block of README.md.
fn readme_toml_blocks() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in readme.lines() {
        match &mut cur {
            None if line.trim_start().starts_with("```toml") => cur = Some(String::new()),
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(cur.take()),
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn starter_config_and_readme_examples_pass_the_schema() {
    let Some(py) = python_with_jsonschema() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let schema = schema_file(dir.path());
    let mut docs = vec![drover::config::STARTER_CONFIG.to_string()];
    let readme = readme_toml_blocks();
    assert!(readme.len() >= 5, "README has {} toml blocks", readme.len());
    docs.extend(readme);
    let results = validate(py, &schema, &docs);
    let bad: Vec<String> = results
        .iter()
        .zip(&docs)
        .enumerate()
        .filter(|(_, (errs, _))| !errs.is_empty())
        .map(|(i, (errs, doc))| {
            let which = if i == 0 {
                "the starter config".to_string()
            } else {
                format!("README toml block {i}")
            };
            format!("{which}: {errs:?}\n{doc}")
        })
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}

#[test]
fn what_the_schema_rejects_drover_check_rejects() {
    let Some(py) = python_with_jsonschema() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let schema = schema_file(dir.path());
    let pool = "[pools.app]\nbackends = [\"127.0.0.1:8001\"]\n";
    let bad: Vec<String> = [
        "[server]\nlisten = [\"127.0.0.1:8080\"]\nshutdown_timout = \"30s\"\n",
        "[server]\nmax_header_bytes = \"big\"\n",
        "[server]\nmax_header_bytes = 100\n",
        "[server]\nidle_timeout = 60\n",
        "[server]\nidle_timeout = \"60 seconds\"\n",
        "[log]\naccess = 1\n",
        "[log]\naccess_format = \"common\"\n",
        "[pools.app]\nbackends = [\"127.0.0.1:8001\"]\nbalance = \"fastest\"\n",
        "[pools.app]\nbackends = [{ addr = \"127.0.0.1:8001\" }]\n",
        "[pools.app]\nbackends = [\"127.0.0.1:8001\"]\n[pools.app.health]\nrise = 0\n",
        "[pools.app]\nbackends = [\"127.0.0.1:8001\"]\n[pools.app.instances]\ncount = 1\n",
        "[[routes]]\npath_prefix = \"api\"\npool = \"app\"\n",
        "[[routes]]\npath_prefix = \"/\"\n",
        "[admin]\nlisten = \"nowhere\"\n",
    ]
    .iter()
    .map(|d| {
        if d.contains("[pools.app]") {
            d.to_string()
        } else {
            format!("{d}{pool}")
        }
    })
    .collect();
    let results = validate(py, &schema, &bad);
    for (doc, errs) in bad.iter().zip(&results) {
        assert!(!errs.is_empty(), "the schema accepted:\n{doc}");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, doc).unwrap();
        let out = Command::new(BIN)
            .args(["check", "-c", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "the schema rejects ({errs:?}) but drover check accepts:\n{doc}"
        );
    }
    // And a valid one passes both.
    let good = format!("[log]\naccess = \"./access.log\"\naccess_format = \"combined\"\n{pool}");
    assert_eq!(
        validate(py, &schema, std::slice::from_ref(&good)),
        vec![Vec::<String>::new()]
    );
    let path = dir.path().join("good.toml");
    std::fs::write(&path, &good).unwrap();
    let out = Command::new(BIN)
        .args(["check", "-c", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The visible subcommands, from `drover --help`.
const SUBCOMMANDS: &[&str] = &[
    "run",
    "check",
    "init",
    "backend",
    "schema",
    "completions",
    "man",
    "ctl",
];

#[test]
fn bash_completion_completes_a_subcommand() {
    let out = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("drover.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let complete = |line: &str| -> String {
        let words: Vec<&str> = line.split(' ').collect();
        let cmd = format!(
            "source {}; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT={}; \
             _drover drover \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            words.join(" "),
            words.len() - 1,
            line.len()
        );
        let out = Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &cmd])
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(complete("drover che").trim(), "check");
    let subs = complete("drover ");
    for s in SUBCOMMANDS {
        assert!(subs.lines().any(|l| l == *s), "{s} not offered: {subs}");
    }
    assert!(!subs.contains("__supervise"), "hidden commands stay hidden");
    let ctl = complete("drover ctl ev");
    assert_eq!(ctl.trim(), "events");
    let shells = complete("drover completions ");
    assert!(
        shells.contains("zsh") && shells.contains("fish"),
        "{shells}"
    );
}

#[test]
fn zsh_and_fish_scripts_name_every_subcommand() {
    for shell in ["zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let s = String::from_utf8(out.stdout).unwrap();
        for sub in SUBCOMMANDS {
            assert!(s.contains(sub), "{shell} script lacks {sub}");
        }
    }
    let bad = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn man_page_is_roff_with_every_subcommand_and_renders() {
    let out = Command::new(BIN).arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH drover 1"),
        "{page}"
    );
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!(".SH \"DROVER {}\"", sub.to_uppercase())),
            "no section for {sub}"
        );
    }
    for ctl in ["status", "pools", "drain", "scale", "events", "reload"] {
        assert!(
            page.contains(&format!(".SH \"DROVER CTL {}\"", ctl.to_uppercase())),
            "no section for ctl {ctl}"
        );
    }
    assert!(!page.contains("__supervise"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drover.1");
    std::fs::write(&file, &page).unwrap();
    let rendered = Command::new("man")
        .args(["-P", "cat", "-l", file.to_str().unwrap()])
        .env("MANWIDTH", "100")
        .output();
    match rendered {
        Ok(r) if r.status.success() && !r.stdout.is_empty() => {
            let text = String::from_utf8_lossy(&r.stdout);
            assert!(text.contains("DROVER CHECK"), "{text}");
            assert!(text.contains("--config"), "{text}");
            assert!(
                !String::from_utf8_lossy(&r.stderr).contains("warning"),
                "{}",
                String::from_utf8_lossy(&r.stderr)
            );
        }
        other => eprintln!("SKIPPED rendering: man -l unavailable ({other:?}); roff checked above"),
    }
}
