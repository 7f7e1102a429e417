//! `"${NAME}"` environment references, expanded in every string value before use.
//!
//! `$${` writes a literal `${`; a `$` not followed by `{` is kept as is.
//! `${client_ip}`, `${request_id}` and `${host}` are reserved: they are left as
//! written, for header rules to fill per request
//! ([`super::route_types::HEADER_PLACEHOLDERS`]); they never read the environment.

use std::borrow::Cow;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::error::Errors;
use super::reader::join_key;

/// Expands `${NAME}` references in `s` with `lookup`.
/// Errors name the variable (`environment variable "X" is not set`).
pub(crate) fn expand_str(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(escaped) = after.strip_prefix("${") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                "unterminated \"${\" (write \"$${\" for a literal \"${\")".to_string()
            })?;
            let name = &body[..end];
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(format!(
                    "\"${{{name}}}\" is not a valid environment reference; names are letters, digits and _"
                ));
            }
            if super::route_types::HEADER_PLACEHOLDERS.contains(&name) {
                out.push_str("${");
                out.push_str(name);
                out.push('}');
                rest = &body[end + 1..];
                continue;
            }
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => return Err(format!("environment variable \"{name}\" is not set")),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The variable names `s` refers to (`"${A}-${B}"` -> `["A", "B"]`); malformed
/// references are left to [`expand_str`] to report.
pub(crate) fn references(s: &str) -> Vec<String> {
    let names = std::cell::RefCell::new(Vec::new());
    let _ = expand_str(s, &|name| {
        names.borrow_mut().push(name.to_string());
        Some(String::new())
    });
    names.into_inner()
}

/// Expands every string value in the document in place, recording errors with the
/// string's key path and span.
pub(crate) fn expand_table(
    table: &mut DeTable<'_>,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors<'_>,
) {
    for (k, v) in table.iter_mut() {
        let key = join_key(path, k.get_ref());
        expand_value(v, &key, lookup, errs);
    }
}

fn expand_value(
    v: &mut Spanned<DeValue<'_>>,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors<'_>,
) {
    let span = v.span();
    match v.get_mut() {
        DeValue::String(s) if s.contains('$') => match expand_str(s, lookup) {
            Ok(new) => *s = Cow::Owned(new),
            Err(msg) => errs.push(path, span, msg),
        },
        DeValue::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_value(item, &format!("{path}[{i}]"), lookup, errs);
            }
        }
        DeValue::Table(t) => expand_table(t, path, lookup, errs),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "PORT" => Some("8001".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_references() {
        assert_eq!(expand_str("${TOKEN}", &env).unwrap(), "s3cret");
        assert_eq!(
            expand_str("127.0.0.1:${PORT}/x${PORT}", &env).unwrap(),
            "127.0.0.1:8001/x8001"
        );
        assert_eq!(expand_str("no refs $5 $x", &env).unwrap(), "no refs $5 $x");
        assert_eq!(expand_str("$${TOKEN}", &env).unwrap(), "${TOKEN}");
    }

    #[test]
    fn header_placeholders_are_left_for_request_time() {
        let s = "${client_ip} ${request_id} ${host} ${TOKEN}";
        assert_eq!(
            expand_str(s, &env).unwrap(),
            "${client_ip} ${request_id} ${host} s3cret"
        );
        assert_eq!(references(s), vec!["TOKEN"]);
    }

    #[test]
    fn references_are_listed_in_order() {
        assert_eq!(references("${A}-x-${B_2}"), vec!["A", "B_2"]);
        assert_eq!(references("$${NOT} plain $x"), Vec::<String>::new());
        assert_eq!(references("${A}${"), vec!["A"]);
    }

    #[test]
    fn unset_variable_is_named() {
        assert_eq!(
            expand_str("${NOPE}", &env).unwrap_err(),
            "environment variable \"NOPE\" is not set"
        );
        assert!(expand_str("${TOKEN", &env)
            .unwrap_err()
            .contains("unterminated"));
        assert!(expand_str("${}", &env).unwrap_err().contains("not a valid"));
    }
}
