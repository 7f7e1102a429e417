//! Plain-text tables with aligned columns for `drover ctl`.

use std::fmt;

/// Rows of cells under a header; numbers right-aligned.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    show_header: bool,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
            show_header: true,
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Leaves the header out (follow mode appends to an earlier table).
    pub fn no_header(&mut self) {
        self.show_header = false;
    }
}

fn numeric(s: &str) -> bool {
    !s.is_empty() && s.parse::<f64>().is_ok()
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cols = self.header.len();
        let mut width: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let line = |cells: &[String], f: &mut fmt::Formatter<'_>| -> fmt::Result {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate().take(cols) {
                let last = i + 1 == cols;
                let pad = width[i].saturating_sub(c.chars().count());
                if numeric(c) {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    if !last {
                        s.push_str(&" ".repeat(pad));
                    }
                }
                if !last {
                    s.push_str("  ");
                }
            }
            writeln!(f, "{}", s.trim_end())
        };
        if self.show_header {
            line(&self.header, f)?;
        }
        for r in &self.rows {
            line(r, f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_numbers_go_right() {
        let mut t = Table::new(&["NAME", "N", "NOTE"]);
        t.row(vec!["a".into(), "10".into(), "x".into()]);
        t.row(vec!["bbb".into(), "2".into(), "-".into()]);
        assert_eq!(t.to_string(), "NAME  N   NOTE\na     10  x\nbbb    2  -\n");
    }
}
