//! The event kinds are one table (`drover::events::KINDS`): README lists exactly
//! those, in that order, and every kind is emitted somewhere in `src/`.

use std::path::Path;

use drover::events::KINDS;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("readable src dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn readme_lists_every_event_kind_in_table_order() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find("Event kinds: ")
        .expect("README has the sentence \"Event kinds: ...\"");
    let rest = &readme[start..];
    let end = rest.find(".\n").expect("the list ends with a full stop");
    let listed: Vec<&str> = rest[..end].split('`').skip(1).step_by(2).collect();
    let table: Vec<&str> = KINDS.iter().map(|(_, n)| *n).collect();
    assert_eq!(
        listed, table,
        "README's event kinds differ from events::KINDS"
    );
}

#[test]
fn every_event_kind_is_emitted_somewhere() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut files = Vec::new();
    rust_files(Path::new(root), &mut files);
    let sources: Vec<String> = files
        .iter()
        .filter(|p| !p.ends_with("events.rs"))
        .map(|p| std::fs::read_to_string(p).expect("readable source"))
        .collect();
    let unused: Vec<String> = KINDS
        .iter()
        .map(|(k, _)| format!("EventKind::{k:?}"))
        .filter(|name| {
            !sources.iter().any(|s| {
                s.match_indices(name.as_str()).any(|(i, _)| {
                    // `EventKind::Warm` must not count as a use of `EventKind::WarmReady`'s prefix.
                    !s[i + name.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                })
            })
        })
        .collect();
    assert!(
        unused.is_empty(),
        "kinds never emitted (drop them from events::KINDS and README): {unused:?}"
    );
}
