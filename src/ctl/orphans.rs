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
            t.row(vec![
                o.owner.clone(),
                o.pool.clone(),
                crate::docker::containers::short(&o.id).to_string(),
                o.name.clone(),
                o.state.clone(),
                o.image.clone(),
            ]);
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
