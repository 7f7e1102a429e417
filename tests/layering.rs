//! The module layering of ARCHITECTURE.md, checked: a module may use only
//! modules of a lower layer. Reads every file under `src/`, finds each
//! `crate::MODULE` it names (in `use` lines and inline paths), and fails on an
//! edge that goes sideways or up, naming the file.
//!
//! `DEBT` lists edges allowed to break the layering (empty since issue 16,
//! point 1); the test also fails when one of them no longer exists, so the
//! list only shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules by layer, lowest first. Keep in step with
/// ARCHITECTURE.md. `tools` are entry points that may use anything below the
/// application but nothing uses them.
const LAYERS: &[(&str, &[&str])] = &[
    ("config", &["config"]),
    ("foundation", &["rate_limit", "notify", "h2wire"]),
    ("access log", &["access_log"]),
    ("events", &["events"]),
    ("balancing", &["balance"]),
    ("pool state", &["pool"]),
    ("autoscale decisions", &["autoscale"]),
    ("upstream client", &["upstream"]),
    ("data plane and health", &["proxy", "health"]),
    ("instances and discovery", &["instances", "discovery"]),
    ("providers and discovery", &["docker"]),
    ("admin", &["admin"]),
    ("config watch", &["watch"]),
    ("application", &["app"]),
    ("tools", &["backend_app", "fuzz_api"]),
    ("tools", &["cli"]),
    ("tools", &["ctl"]),
];

/// Edges that break the layering today (from, to), each to be removed.
/// Empty since issue 16 point 1: kept so a new exception has to be written
/// here, with its reason.
const DEBT: &[(&str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

/// `crate::X` names in `src`: for `crate::{a::b, c}` both `a` and `c`.
fn crate_refs(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = src;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: after `{` or a `,` at depth 0.
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        rest = &group[j..];
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && (c.is_alphanumeric() || c == '_') => {
                        let name: String = group[j..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        out.insert(name);
                        start = false;
                    }
                    c if c.is_whitespace() => {}
                    _ => start = false,
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// `text` without its inline test modules: from `#[cfg(test)]` + `mod NAME {`
/// to the next line that is a lone `}` (rustfmt closes a top-level module
/// there). Code after a test module is still checked, and `#[cfg(test)] mod
/// NAME;` (a test file of its own, skipped by name) is kept.
fn without_inline_tests(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("#[cfg(test)]\nmod ") {
        let line = rest[i..].lines().nth(1).unwrap_or("");
        if !line.trim_end().ends_with('{') {
            let next = i + "#[cfg(test)]\n".len();
            out.push_str(&rest[..next]);
            rest = &rest[next..];
            continue;
        }
        out.push_str(&rest[..i]);
        rest = match rest[i..].find("\n}\n") {
            Some(end) => &rest[i + end + 3..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn crate_refs_reads_groups_and_paths() {
    let r = crate_refs("use crate::{a::{b, c}, d as e, self};\nlet x = crate::f::g();");
    let want: BTreeSet<String> = ["a", "d", "f", "self"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(r, want);
}

#[test]
fn only_the_inline_test_module_is_cut() {
    let text = "use a;\n#[cfg(test)]\nmod tests_x;\nuse b;\n#[cfg(test)]\nmod tests {\n    use c;\n}\nuse d;\n";
    assert_eq!(
        without_inline_tests(text),
        "use a;\n#[cfg(test)]\nmod tests_x;\nuse b;\nuse d;\n"
    );
    assert_eq!(without_inline_tests("use a;\n"), "use a;\n");
}

#[test]
fn lower_layers_never_use_higher_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // (from, to) -> files
    let mut edges: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut unknown = BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        let top = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        if layer_of(&top).is_none() {
            unknown.insert(top.clone());
        }
        // Unit tests may use fixtures from any layer (the built-in backend,
        // say): test modules are not part of the layering.
        let name = f.file_name().unwrap().to_string_lossy();
        if name == "tests.rs" || name.starts_with("tests_") || name.ends_with("_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        let text = without_inline_tests(&text);
        // Comments name other modules (doc links) without using them.
        let text: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for to in crate_refs(&text) {
            if to == top || to == "self" {
                continue;
            }
            if layer_of(&to).is_none() {
                unknown.insert(to.clone());
            }
            edges
                .entry((top.clone(), to))
                .or_default()
                .push(rel.clone());
        }
    }
    assert!(
        unknown.is_empty(),
        "modules with no layer: {unknown:?}: add them to LAYERS in tests/layering.rs and to ARCHITECTURE.md"
    );
    let mut wrong = Vec::new();
    for ((from, to), files) in &edges {
        let (lf, lt) = (layer_of(from).unwrap(), layer_of(to).unwrap());
        let tool = LAYERS[lf].0 == "tools";
        let allowed = if tool {
            LAYERS[lt].0 != "tools" || lt < lf
        } else {
            lt < lf
        };
        if !allowed && !DEBT.contains(&(from.as_str(), to.as_str())) {
            wrong.push(format!(
                "{from} ({}) uses {to} ({}) in {files:?}",
                LAYERS[lf].0, LAYERS[lt].0
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "a lower layer uses a higher or sibling one (see ARCHITECTURE.md):\n{}",
        wrong.join("\n")
    );
    let stale: Vec<_> = DEBT
        .iter()
        .filter(|(a, b)| !edges.contains_key(&(a.to_string(), b.to_string())))
        .collect();
    assert!(
        stale.is_empty(),
        "these DEBT edges are gone: remove them from tests/layering.rs: {stale:?}"
    );
}
