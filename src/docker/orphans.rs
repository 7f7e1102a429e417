//! `drover ctl orphans [--remove]`: containers labelled `drover.managed=<owner>`
//! whose owner no running drover on this machine claims (see [`super::claim`]).
//!
//! drover creates no Swarm services (`provider = "swarm"` scales a service the user
//! made), so only containers can be orphaned.

use std::collections::HashMap;
use std::path::Path;

use bollard::Docker;
use serde::Serialize;

use super::claim;
use super::containers::{self, OWNER_LABEL, POOL_LABEL};

/// One container whose owner is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orphan {
    pub owner: String,
    pub pool: String,
    pub id: String,
    pub name: String,
    /// `running`, `exited`, ... as the engine says.
    pub state: String,
    pub image: String,
}

/// The containers of `list` whose owner `claimed` says no drover claims (and, with
/// `only`, of that owner alone), sorted by owner, pool and id.
pub fn unclaimed(
    list: Vec<Orphan>,
    only: Option<&str>,
    claimed: impl Fn(&str) -> bool,
) -> Vec<Orphan> {
    let mut seen: HashMap<String, bool> = HashMap::new();
    let mut out: Vec<Orphan> = list
        .into_iter()
        .filter(|o| only.is_none_or(|w| w == o.owner))
        .filter(|o| {
            !*seen
                .entry(o.owner.clone())
                .or_insert_with(|| claimed(&o.owner))
        })
        .collect();
    out.sort_by(|a, b| (&a.owner, &a.pool, &a.id).cmp(&(&b.owner, &b.pool, &b.id)));
    out
}

/// Every container carrying the owner label, running or not.
async fn managed(docker: &Docker) -> Result<Vec<Orphan>, String> {
    let list = containers::list_labelled(docker, vec![OWNER_LABEL.to_string()]).await?;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            let labels = c.labels.unwrap_or_default();
            Some(Orphan {
                owner: labels.get(OWNER_LABEL)?.clone(),
                pool: labels.get(POOL_LABEL).cloned().unwrap_or_default(),
                id: c.id?,
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                image: c.image.unwrap_or_default(),
            })
        })
        .collect())
}

/// The orphans on the engine, judged against the claims in `dir`.
pub async fn find(docker: &Docker, dir: &Path, only: Option<&str>) -> Result<Vec<Orphan>, String> {
    let all = managed(docker).await?;
    Ok(unclaimed(all, only, |owner| claim::is_claimed(dir, owner)))
}

/// Force-removes `orphans`; the errors, one per container that could not be removed.
pub async fn remove(docker: &Docker, orphans: &[Orphan]) -> Vec<String> {
    let mut errors = Vec::new();
    for o in orphans {
        if let Err(e) = containers::remove(docker, &o.id).await {
            errors.push(e);
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(owner: &str, pool: &str, id: &str) -> Orphan {
        Orphan {
            owner: owner.into(),
            pool: pool.into(),
            id: id.into(),
            name: String::new(),
            state: "running".into(),
            image: "img".into(),
        }
    }

    #[test]
    fn only_containers_of_unclaimed_owners_are_orphans_and_each_owner_is_asked_once() {
        let asked = std::cell::RefCell::new(Vec::new());
        let list = vec![
            c("b", "web", "3"),
            c("a", "web", "2"),
            c("live", "x", "9"),
            c("a", "api", "1"),
        ];
        let out = unclaimed(list, None, |o| {
            asked.borrow_mut().push(o.to_string());
            o == "live"
        });
        let ids: Vec<&str> = out.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        let mut asked = asked.into_inner();
        asked.sort();
        assert_eq!(asked, ["a", "b", "live"]);
    }

    #[test]
    fn an_owner_filter_keeps_that_owner_alone() {
        let list = vec![c("a", "web", "1"), c("b", "web", "2")];
        let out = unclaimed(list, Some("b"), |_| false);
        assert_eq!(out, vec![c("b", "web", "2")]);
    }
}
