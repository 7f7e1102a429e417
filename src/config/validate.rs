//! Checks across sections: routes name existing pools, the file has something to route to.

use toml::de::DeValue;

use super::error::Errors;
use super::reader::{Got, Tbl};
use super::types::Route;

/// Cross-section checks. When there are no `[[routes]]` and exactly one pool, a
/// catch-all route to that pool is added (like a single upstream in a Caddy file).
pub(crate) fn cross_check(
    root: &Tbl<'_, '_>,
    errs: &mut Errors<'_>,
    pool_names: &[String],
    route_pools: &[(usize, Got<String>)],
    routes: &mut Vec<Route>,
    route_tables: &[Tbl<'_, '_>],
) {
    if pool_names.is_empty() {
        let span = root.raw("pools").map_or(0..0, |v| v.span());
        errs.push(
            "pools",
            span,
            "no pools defined; add one, like [pools.app] with backends = [\"127.0.0.1:8001\"]",
        );
        return;
    }
    for (i, pool) in route_pools {
        if !pool_names.contains(&pool.v) {
            errs.push(
                &format!("routes[{i}].pool"),
                pool.span.clone(),
                format!(
                    "no pool named \"{}\"; pools are: {}",
                    pool.v.escape_default(),
                    pool_names.join(", ")
                ),
            );
        }
    }
    if !root.has("routes") {
        if let [only] = pool_names {
            routes.push(Route::to_pool(only));
        } else {
            errs.push(
                "routes",
                0..0,
                format!(
                    "no [[routes]]; with several pools each request needs a route: add [[routes]] with pool = \"{}\" and a host or path_prefix",
                    pool_names[0]
                ),
            );
        }
    } else if route_tables.is_empty()
        && matches!(root.raw("routes").map(|v| v.get_ref()), Some(DeValue::Array(a)) if a.is_empty())
    {
        root.error_at(errs, "routes", "no routes: every request would get 404");
    }
}
