//! `drover ctl orphans [--remove] [--owner NAME]`: containers whose owner no
//! running drover claims (see `docker::claim`), from the Docker engine itself.

use std::io::Write;

use super::client::CtlError;
use super::table::Table;
use crate::docker::{claim, orphans};

/// Lists (and with `remove`, removes) the orphaned containers.
pub async fn run(remove: bool, owner: Option<&str>, json: bool) -> Result<(), CtlError> {
    let docker = crate::docker::connect().await.map_err(CtlError::Other)?;
    let dir = claim::claims_dir();
    let found = orphans::find(&docker, &dir, owner)
        .await
        .map_err(CtlError::Other)?;
    let errors = if remove {
        orphans::remove(&docker, &found).await
    } else {
        Vec::new()
    };
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "claims_dir": dir.display().to_string(),
            "orphans": found,
            "removed": remove && errors.is_empty(),
            "errors": errors,
        });
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
    } else if found.is_empty() {
        let _ = writeln!(out, "no orphans (claims in {})", dir.display());
    } else {
        let mut t = Table::new(&["OWNER", "POOL", "CONTAINER", "NAME", "STATE", "IMAGE"]);
        for o in &found {
            // Labels are anyone's text: no control characters reach the terminal.
            t.row(
                [
                    &o.owner,
                    &o.pool,
                    crate::docker::containers::short(&o.id),
                    &o.name,
                    &o.state,
                    &o.image,
                ]
                .iter()
                .map(|c| printable(c))
                .collect(),
            );
        }
        let _ = write!(out, "{t}");
        if remove {
            let _ = writeln!(out, "removed {}", found.len() - errors.len());
        } else {
            let _ = writeln!(
                out,
                "(claims in {}; `--remove` removes them)",
                dir.display()
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CtlError::Other(errors.join("; ")))
    }
}

/// `s` with control characters shown as `?`.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(super::printable("a\x1b[2Jb\n"), "a?[2Jb?");
        assert_eq!(super::printable("shop-prod"), "shop-prod");
    }
}
