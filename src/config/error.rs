//! Config errors: every problem found, each with its key path and position.

use std::fmt;
use std::ops::Range;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path like `pools.api.health.interval` or `routes[0].pool`; `""` for the whole file.
    pub key: String,
    /// 1-based line of the offending key or value, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the offending key or value, when known.
    pub column: Option<usize>,
    /// What was wrong and what would be accepted.
    pub message: String,
}

impl ConfigError {
    /// An error at a byte offset of `src`.
    pub(crate) fn at(src: &str, span: Option<Range<usize>>, key: &str, message: String) -> Self {
        let (line, column) = match span {
            Some(span) => {
                let (l, c) = line_col(src, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            key: key.to_string(),
            line,
            column,
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "{line}:")?;
            if let Some(col) = self.column {
                write!(f, "{col}:")?;
            }
            f.write_str(" ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Every error found in one config file. `Display` prints one line per error:
/// `drover.toml:12:3: pools.api.health.interval: expected a duration like "2s", got "2 seconds"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// Display name of the file (`"<config>"` when there is none).
    pub file: String,
    /// Sorted by position; never empty.
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// A single whole-file error.
    pub(crate) fn single(file: String, message: String) -> Self {
        ConfigErrors {
            file,
            errors: vec![ConfigError {
                key: String::new(),
                line: None,
                column: None,
                message,
            }],
        }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if e.line.is_some() {
                write!(f, "{}:{e}", self.file)?;
            } else {
                write!(f, "{}: {e}", self.file)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// 1-based line and column (in characters) of byte offset `pos` in `src`.
pub(crate) fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(src.len());
    while !src.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &src[..pos];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Collects errors while a document is read.
pub(crate) struct Errors<'s> {
    src: &'s str,
    pub(crate) list: Vec<(usize, ConfigError)>,
}

impl<'s> Errors<'s> {
    pub(crate) fn new(src: &'s str) -> Self {
        Errors {
            src,
            list: Vec::new(),
        }
    }

    /// Records `message` for `key` at `span`.
    pub(crate) fn push(&mut self, key: &str, span: Range<usize>, message: impl Into<String>) {
        let start = span.start;
        let e = ConfigError::at(self.src, Some(span), key, message.into());
        self.list.push((start, e));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The errors sorted by position (stable for equal positions).
    pub(crate) fn into_sorted(mut self) -> Vec<ConfigError> {
        self.list.sort_by_key(|(pos, _)| *pos);
        self.list.into_iter().map(|(_, e)| e).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_is_one_based_in_chars() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        // after "bé " (é is two bytes)
        assert_eq!(line_col(src, 10), (2, 4));
    }

    #[test]
    fn display_prints_file_line_column_key_message() {
        let errs = ConfigErrors {
            file: "drover.toml".into(),
            errors: vec![
                ConfigError {
                    key: "pools.api.health.interval".into(),
                    line: Some(12),
                    column: Some(3),
                    message: "expected a duration like \"2s\", got \"2 seconds\"".into(),
                },
                ConfigError {
                    key: String::new(),
                    line: None,
                    column: None,
                    message: "cannot read".into(),
                },
            ],
        };
        assert_eq!(
            errs.to_string(),
            "drover.toml:12:3: pools.api.health.interval: expected a duration like \"2s\", got \"2 seconds\"\ndrover.toml: cannot read"
        );
    }
}
