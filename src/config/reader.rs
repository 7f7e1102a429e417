//! The raw layer: typed access to the span-preserving TOML document.
//!
//! Each getter converts one value and records an error (with the key path and the
//! value's span) instead of stopping, so one pass finds every problem in a file.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::duration::{parse_duration, parse_size};
use super::error::Errors;

/// A converted value and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Got<T> {
    pub v: T,
    pub span: Range<usize>,
}

/// One table of the document, with its key path.
#[derive(Clone)]
pub(crate) struct Tbl<'a, 'i> {
    pub path: String,
    pub table: &'a DeTable<'i>,
    pub span: Range<usize>,
}

/// `path.key`, quoting keys that are not bare TOML keys.
pub(crate) fn join_key(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

impl<'a, 'i> Tbl<'a, 'i> {
    pub fn root(doc: &'a Spanned<DeTable<'i>>) -> Self {
        Tbl {
            path: String::new(),
            table: doc.get_ref(),
            span: doc.span(),
        }
    }

    /// The key path of `key` in this table.
    pub fn key(&self, key: &str) -> String {
        join_key(&self.path, key)
    }

    /// Records every key of this table that is not in `accepted`.
    pub fn check_keys(&self, errs: &mut Errors<'_>, accepted: &[&str]) {
        for k in self.table.keys() {
            let name: &str = k.get_ref();
            if !accepted.contains(&name) {
                errs.push(
                    &self.key(name),
                    k.span(),
                    format!(
                        "unknown key \"{}\"; accepted here: {}",
                        name.escape_default(),
                        accepted.join(", ")
                    ),
                );
            }
        }
    }

    /// Records every key of this table that `section`'s key table does not list.
    pub fn check_section(&self, errs: &mut Errors<'_>, section: &super::keys::Section) {
        self.check_keys(errs, &section.names());
    }

    pub fn raw(&self, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.table.get(key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// Converts `key` with `conv` when present; a failed conversion is recorded.
    pub fn get<T>(
        &self,
        errs: &mut Errors<'_>,
        key: &str,
        conv: impl FnOnce(&DeValue<'i>) -> Result<T, String>,
    ) -> Option<Got<T>> {
        let v = self.raw(key)?;
        match conv(v.get_ref()) {
            Ok(x) => Some(Got {
                v: x,
                span: v.span(),
            }),
            Err(msg) => {
                errs.push(&self.key(key), v.span(), msg);
                None
            }
        }
    }

    /// Like [`Tbl::get`], but a missing key is an error too.
    pub fn require<T>(
        &self,
        errs: &mut Errors<'_>,
        key: &str,
        what: &str,
        conv: impl FnOnce(&DeValue<'i>) -> Result<T, String>,
    ) -> Option<Got<T>> {
        if !self.has(key) {
            errs.push(
                &self.key(key),
                self.span.clone(),
                format!("required: {what}"),
            );
            return None;
        }
        self.get(errs, key, conv)
    }

    /// Records `message` at `key`'s value (or at this table when `key` is absent).
    pub fn error_at(&self, errs: &mut Errors<'_>, key: &str, message: impl Into<String>) {
        let span = self.raw(key).map_or(self.span.clone(), |v| v.span());
        errs.push(&self.key(key), span, message);
    }

    /// A sub-table; anything else is recorded as an error.
    pub fn sub(&self, errs: &mut Errors<'_>, key: &str) -> Option<Tbl<'a, 'i>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(Tbl {
                path: self.key(key),
                table: t,
                span: v.span(),
            }),
            other => {
                errs.push(
                    &self.key(key),
                    v.span(),
                    format!("expected a table, got {}", describe(other)),
                );
                None
            }
        }
    }

    /// An array of tables (`[[key]]` or `key = [{...}]`), each with path `key[i]`.
    pub fn tables(&self, errs: &mut Errors<'_>, key: &str) -> Vec<Tbl<'a, 'i>> {
        let Some(v) = self.raw(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            errs.push(
                &self.key(key),
                v.span(),
                format!("expected an array of tables, got {}", describe(v.get_ref())),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", self.key(key));
            match item.get_ref() {
                DeValue::Table(t) => out.push(Tbl {
                    path,
                    table: t,
                    span: item.span(),
                }),
                other => errs.push(
                    &path,
                    item.span(),
                    format!("expected a table, got {}", describe(other)),
                ),
            }
        }
        out
    }
}

/// How a value is shown in "got ..." messages.
pub(crate) fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("\"{}\"", s.escape_default()),
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("datetime {d}"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

pub(crate) fn string(v: &DeValue<'_>) -> Result<String, String> {
    match v {
        DeValue::String(s) => Ok(s.to_string()),
        other => Err(format!("expected a string, got {}", describe(other))),
    }
}

/// A string that must not be empty.
pub(crate) fn nonempty_string(v: &DeValue<'_>) -> Result<String, String> {
    let s = string(v)?;
    if s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(s)
}

pub(crate) fn boolean(v: &DeValue<'_>) -> Result<bool, String> {
    match v {
        DeValue::Boolean(b) => Ok(*b),
        other => Err(format!("expected true or false, got {}", describe(other))),
    }
}

fn integer(v: &DeValue<'_>) -> Result<i128, String> {
    match v {
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
            .map_err(|_| format!("integer {i} is out of range")),
        other => Err(format!("expected a whole number, got {}", describe(other))),
    }
}

/// A non-negative integer that fits `T`.
pub(crate) fn uint<T: TryFrom<i128>>(v: &DeValue<'_>) -> Result<T, String> {
    let n = integer(v)?;
    if n < 0 {
        return Err(format!("expected a whole number >= 0, got {n}"));
    }
    T::try_from(n).map_err(|_| format!("{n} is too large"))
}

/// A non-negative integer >= `min`.
pub(crate) fn uint_min<T: TryFrom<i128>>(min: i128) -> impl Fn(&DeValue<'_>) -> Result<T, String> {
    move |v| {
        let n = integer(v)?;
        if n < min {
            return Err(format!("must be at least {min}, got {n}"));
        }
        T::try_from(n).map_err(|_| format!("{n} is too large"))
    }
}

/// A number (integer or float).
pub(crate) fn number(v: &DeValue<'_>) -> Result<f64, String> {
    match v {
        DeValue::Integer(_) => Ok(integer(v)? as f64),
        DeValue::Float(f) => f
            .as_str()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("expected a finite number, got {f}")),
        other => Err(format!("expected a number, got {}", describe(other))),
    }
}

/// A number > 0.
pub(crate) fn positive(v: &DeValue<'_>) -> Result<f64, String> {
    let x = number(v)?;
    if x <= 0.0 {
        return Err(format!("must be greater than 0, got {x}"));
    }
    Ok(x)
}

pub(crate) fn duration(v: &DeValue<'_>) -> Result<std::time::Duration, String> {
    match v {
        DeValue::String(s) => parse_duration(s),
        other => Err(format!(
            "expected a duration like \"2s\", got {} (durations are strings)",
            describe(other)
        )),
    }
}

/// A duration that must be greater than zero.
pub(crate) fn nonzero_duration(v: &DeValue<'_>) -> Result<std::time::Duration, String> {
    let d = duration(v)?;
    if d.is_zero() {
        return Err("must be greater than 0s".into());
    }
    Ok(d)
}

/// A memory size: `"256m"`, `"1g"` or an integer number of bytes.
pub(crate) fn size(v: &DeValue<'_>) -> Result<u64, String> {
    match v {
        DeValue::String(s) => parse_size(s),
        DeValue::Integer(_) => uint(v),
        other => Err(format!(
            "expected a size like \"256m\", got {}",
            describe(other)
        )),
    }
}

/// An array of strings.
pub(crate) fn string_list(v: &DeValue<'_>) -> Result<Vec<String>, String> {
    match v {
        DeValue::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.get_ref() {
                DeValue::String(s) => Ok(s.to_string()),
                other => Err(format!(
                    "expected a list of strings; item {i} is {}",
                    describe(other)
                )),
            })
            .collect(),
        other => Err(format!(
            "expected a list of strings like [\"a\", \"b\"], got {}",
            describe(other)
        )),
    }
}

/// A table of string values (`{ NAME = "value" }`), in key order.
pub(crate) fn string_map(v: &DeValue<'_>) -> Result<Vec<(String, String)>, String> {
    match v {
        DeValue::Table(t) => t
            .iter()
            .map(|(k, item)| match item.get_ref() {
                DeValue::String(s) => Ok((k.get_ref().to_string(), s.to_string())),
                other => Err(format!(
                    "expected string values; \"{}\" is {}",
                    k.get_ref(),
                    describe(other)
                )),
            })
            .collect(),
        other => Err(format!(
            "expected a table of strings like {{ NAME = \"value\" }}, got {}",
            describe(other)
        )),
    }
}

/// One of the listed spellings.
pub(crate) fn one_of<'c, T: Copy>(
    choices: &'c [(&'static str, T)],
) -> impl Fn(&DeValue<'_>) -> Result<T, String> + 'c {
    move |v| {
        let s = string(v)?;
        choices
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown \"{}\"; expected one of {}",
                    s.escape_default(),
                    names.join(", ")
                )
            })
    }
}
