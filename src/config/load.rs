//! Parsing a file: TOML -> environment expansion -> every section read -> cross-checks.

use std::collections::BTreeMap;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::env::{expand_table, references};
use super::error::{ConfigError, ConfigErrors, Errors};
use super::reader::{describe, Tbl};
use super::types::{Config, Route};
use super::values::owner_name;
use super::{pool, route_rules, sections, validate};

/// Parses and validates a config from a string. `file` is recorded as
/// [`Config::source`], names the file in errors and is the base for relative paths.
pub fn load_str(src: &str, file: Option<&Path>) -> Result<Config, ConfigErrors> {
    load_with_env(src, file, &|name| std::env::var(name).ok())
}

/// Reads and validates a config file; a read error is a [`ConfigErrors`] too.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(src) => load_str(&src, Some(path)),
        Err(e) => {
            let msg = e.to_string();
            // "No such file or directory (os error 2)" -> "No such file or directory"
            let msg = match msg.rfind(" (os error ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            Err(ConfigErrors::single(
                display_name(Some(path)),
                format!("cannot read {}: {msg}", path.display()),
            ))
        }
    }
}

/// The name errors are reported under.
pub(crate) fn display_name(file: Option<&Path>) -> String {
    file.map_or_else(|| "<config>".to_string(), |p| p.display().to_string())
}

/// [`load_str`] with an injectable environment (for tests).
pub(crate) fn load_with_env(
    src: &str,
    file: Option<&Path>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let name = display_name(file);
    // A syntax error is reported alone: errors after it are mostly echoes of it.
    let mut doc = DeTable::parse(src).map_err(|e| ConfigErrors {
        file: name.clone(),
        errors: vec![ConfigError::at(
            src,
            e.span(),
            "",
            format!("TOML syntax: {}", e.message()),
        )],
    })?;
    let mut errs = Errors::new(src);
    let token_vars = token_variables(doc.get_ref());
    expand_table(doc.get_mut(), "", lookup, &mut errs);
    let base = file.and_then(Path::parent);
    let root = Tbl::root(&doc);
    root.check_section(&mut errs, &super::keys::ROOT);
    let owner = root.get(&mut errs, "name", owner_name).map(|g| g.v);
    let server = sections::server(root.sub(&mut errs, "server"), &mut errs, base);
    let admin = sections::admin(root.sub(&mut errs, "admin"), &mut errs);
    let log = sections::log(root.sub(&mut errs, "log"), &mut errs, base);
    let system_resolver = !root.has("resolver");
    let resolver = super::resolver::resolver(root.sub(&mut errs, "resolver"), &mut errs);

    let mut routes: Vec<Route> = Vec::new();
    let mut route_pools = Vec::new();
    let route_tables = root.tables(&mut errs, "routes");
    for (i, t) in route_tables.iter().enumerate() {
        let (route, pool) = route_rules::route(t, &mut errs);
        if let Some(pool) = pool {
            route_pools.push((i, pool));
        }
        routes.extend(route);
    }
    route_rules::check_unique_names(&route_tables, &mut errs);

    let mut pools = BTreeMap::new();
    let mut pool_names = Vec::new();
    if let Some(pt) = root.sub(&mut errs, "pools") {
        for (k, v) in pt.table.iter() {
            let pname: &str = k.get_ref();
            pool_names.push(pname.to_string());
            let path = pt.key(pname);
            let DeValue::Table(t) = v.get_ref() else {
                errs.push(
                    &path,
                    v.span(),
                    format!(
                        "expected a table [pools.{pname}], got {}",
                        describe(v.get_ref())
                    ),
                );
                continue;
            };
            let t = Tbl {
                path,
                table: t,
                span: v.span(),
            };
            if let Some(p) = pool::pool(pname, k.span(), &t, &mut errs, base, system_resolver) {
                pools.insert(pname.to_string(), p);
            }
        }
    }
    validate::cross_check(
        &root,
        &mut errs,
        &pool_names,
        &route_pools,
        &mut routes,
        &route_tables,
    );

    if !errs.is_empty() {
        return Err(ConfigErrors {
            file: name,
            errors: errs.into_sorted(),
        });
    }
    for p in pools.values_mut() {
        p.http1_client = server.http1_codec;
    }
    for inst in pools.values_mut().filter_map(|p| p.instances.as_mut()) {
        inst.withheld_env = token_vars.clone();
    }
    Ok(Config {
        name: owner,
        server,
        admin,
        log,
        routes,
        pools,
        resolver,
        source: file.map(Path::to_path_buf),
    })
}

/// The environment variables `admin.token` names (`"${NAME}"`), read before expansion:
/// managed processes must not inherit them.
fn token_variables(doc: &DeTable<'_>) -> Vec<String> {
    let token = doc
        .get("admin")
        .and_then(|a| match a.get_ref() {
            DeValue::Table(t) => t.get("token"),
            _ => None,
        })
        .and_then(|v| match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => None,
        });
    token.map(|t| references(&t)).unwrap_or_default()
}
