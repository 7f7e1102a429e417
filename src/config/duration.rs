//! Human-friendly durations (`"250ms"`, `"2s"`, `"1m30s"`) and memory sizes (`"256m"`).

use std::time::Duration;

/// Parses a duration: a number and a unit (`ms`, `s`, `m`, `h`, also `us`, `d`),
/// several of them in a row (`"1m30s"`), fractions (`"1.5s"`), or a bare `"0"`.
///
/// The error reads `expected a duration like "2s", got "2 seconds"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "expected a duration like \"2s\", got \"{}\"",
            s.escape_default()
        )
    };
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(bad());
        }
        let num: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic() && c != 'µ')
            .unwrap_or(rest.len());
        let secs_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += num * secs_per_unit;
    }
    if !total.is_finite() || total > 1e12 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

/// Parses a memory size in bytes: plain bytes (`"1048576"`) or a number with a binary
/// unit `k`, `m`, `g`, `t` (optionally followed by `b` / `ib`, any case): `"256m"`, `"1g"`, `"1.5G"`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "expected a size like \"256m\" or \"1g\" (units k, m, g, t or plain bytes), got \"{}\"",
            s.escape_default()
        )
    };
    let t = s.trim();
    let num_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    if num_len == 0 {
        return Err(bad());
    }
    let num: f64 = t[..num_len].parse().map_err(|_| bad())?;
    let unit = t[num_len..].trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = num * mult as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 || (mult == 1 && num.fract() != 0.0) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
    }

    #[test]
    fn rejects_bad_durations_with_a_hint() {
        for bad in ["2 seconds", "", "2", "s", "-1s", "1.2.3s", "2sec", "5M"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(
                err.starts_with("expected a duration like \"2s\""),
                "{bad}: {err}"
            );
        }
        assert!(parse_duration("2 seconds")
            .unwrap_err()
            .ends_with("got \"2 seconds\""));
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("256m"), Ok(256 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2mb"), Ok(2 << 20));
    }

    #[test]
    fn rejects_bad_sizes() {
        for bad in ["", "m", "12x", "1.5", "-1m", "lots"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
