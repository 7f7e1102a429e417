//! The cron expression of a `[[pools.NAME.autoscale.schedule]]` entry, parsed
//! with `croner` (five fields: minute hour day-of-month month day-of-week).

use std::fmt;
use std::str::FromStr;

/// A parsed cron expression and the text it was parsed from.
#[derive(Clone)]
pub struct CronSpec {
    pub text: String,
    pub cron: croner::Cron,
}

impl CronSpec {
    /// Parses a five-field cron expression (`"0 9 * * 1-5"`).
    pub fn parse(text: &str) -> Result<CronSpec, String> {
        if text.split_whitespace().count() != 5 {
            return Err(format!(
                "\"{text}\" is not a cron expression of five fields (minute hour day-of-month month day-of-week), like \"0 9 * * 1-5\""
            ));
        }
        let cron = croner::Cron::from_str(text)
            .map_err(|e| format!("\"{text}\" is not a valid cron expression: {e}"))?;
        Ok(CronSpec {
            text: text.to_string(),
            cron,
        })
    }
}

impl PartialEq for CronSpec {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Debug for CronSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSpec({:?})", self.text)
    }
}

/// `"18:00"` → `(18, 0)`.
pub fn parse_time_of_day(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("\"{s}\" is not a time of day like \"18:00\" (HH:MM, 24-hour)");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok((h, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_five_field_cron_and_refuses_others() {
        assert_eq!(CronSpec::parse("0 9 * * 1-5").unwrap().text, "0 9 * * 1-5");
        assert!(CronSpec::parse("0 9 * *").is_err());
        assert!(CronSpec::parse("0 0 9 * * 1-5").is_err());
        assert!(CronSpec::parse("0 25 * * *").is_err());
        assert!(CronSpec::parse("x 9 * * *").is_err());
    }

    #[test]
    fn times_of_day() {
        assert_eq!(parse_time_of_day("18:00"), Ok((18, 0)));
        assert_eq!(parse_time_of_day("7:05"), Ok((7, 5)));
        for bad in [
            "24:00", "12:60", "1200", "12:5", ":30", "ab:cd", "-1:00", "",
        ] {
            assert!(parse_time_of_day(bad).is_err(), "{bad}");
        }
    }
}
