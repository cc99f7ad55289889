//! The `cron` schedule kind: a 5-field Vixie cron expression (or 6 fields
//! with leading seconds), with names, `0`–`7` for the day of the week and the
//! `@daily`-style macros.
//!
//! Day-of-month and day-of-week combine as in Vixie cron: when both are
//! restricted a day matches if *either* matches; a field is unrestricted
//! exactly when its text starts with `*`.

use super::calendar::{CalendarSpec, DayRule};

/// A cron expression that does not parse. `column` is the 0-based character
/// offset of the offending field in the expression, for error reporting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} field `{text}`: {message}")]
pub struct CronError {
    pub field: &'static str,
    pub text: String,
    pub column: usize,
    pub message: String,
}

/// One field's rules: name, range and the names it accepts.
pub(crate) struct Field {
    pub name: &'static str,
    pub min: u32,
    pub max: u32,
    pub names: &'static [&'static str],
    /// The first name's value (`jan` = 1, `sun` = 0).
    pub names_base: u32,
}

pub(crate) const MONTH_NAMES: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
pub(crate) const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
    names_base: 0,
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_base: 0,
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_base: 0,
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    names_base: 0,
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTH_NAMES,
    names_base: 1,
};
// 7 is accepted as Sunday and folded onto 0 after parsing.
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &DAY_NAMES,
    names_base: 0,
};

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cron {
    pub spec: CalendarSpec,
}

fn expand_macro(expr: &str) -> Option<&'static str> {
    Some(match expr.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

impl Cron {
    /// Parses a cron expression.
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let fields = split_fields(expand(expr.trim())?);
        let lead = expr.len() - expr.trim_start().len();
        let (sec, rest) = match fields.len() {
            5 => (None, &fields[..]),
            6 => (Some(fields[0]), &fields[1..]),
            n => return Err(field_count_error(expr, n)),
        };
        let at = |(col, t): (usize, &str), f: &Field| {
            parse_field(t, f).map_err(|message| CronError {
                field: f.name,
                text: t.to_string(),
                column: lead + col,
                message,
            })
        };
        let seconds = match sec {
            Some(s) => at(s, &SECOND)?,
            None => 1,
        };
        let minutes = at(rest[0], &MINUTE)?;
        let hours = at(rest[1], &HOUR)?;
        let dom = at(rest[2], &DAY_OF_MONTH)?;
        let months = at(rest[3], &MONTH)?;
        let mut dow = at(rest[4], &DAY_OF_WEEK)?;
        if dow & (1 << 7) != 0 {
            dow = (dow & 0x7f) | 1;
        }
        let day_rule = if rest[2].1.starts_with('*') || rest[4].1.starts_with('*') {
            DayRule::And
        } else {
            DayRule::Or
        };
        let fixed_time = !rest[0].1.starts_with('*') && !rest[1].1.starts_with('*');
        let spec = CalendarSpec {
            seconds,
            minutes,
            hours: hours as u32,
            days_of_month: dom as u32,
            months: months as u16,
            days_of_week: dow as u8,
            day_rule,
            fixed_time,
        };
        if !spec.can_match() {
            return Err(CronError {
                field: "day-of-month",
                text: rest[2].1.to_string(),
                column: lead + rest[2].0,
                message: "never matches: no month in the month field has such a day".into(),
            });
        }
        Ok(Cron { spec })
    }
}

/// The expression with a macro (`@daily`) replaced by the fields it stands for.
fn expand(trimmed: &str) -> Result<&str, CronError> {
    if !trimmed.starts_with('@') {
        return Ok(trimmed);
    }
    expand_macro(trimmed).ok_or_else(|| CronError {
        field: "macro",
        text: trimmed.to_string(),
        column: 0,
        message: "unknown macro; expected one of @yearly, @annually, @monthly, @weekly, \
                  @daily, @midnight, @hourly"
            .into(),
    })
}

/// Splits on whitespace, remembering where each field starts.
fn split_fields(text: &str) -> Vec<(usize, &str)> {
    let mut fields: Vec<(usize, &str)> = Vec::with_capacity(6);
    let mut start = None;
    for (i, ch) in text.char_indices() {
        match (ch.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                fields.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        fields.push((s, &text[s..]));
    }
    fields
}

/// The error for an expression with `n` fields, neither 5 nor 6.
fn field_count_error(expr: &str, n: usize) -> CronError {
    CronError {
        field: "expression",
        text: expr.to_string(),
        column: 0,
        message: format!(
            "expected 5 fields (minute hour day-of-month month day-of-week) \
             or 6 with leading seconds, found {n}"
        ),
    }
}

fn parse_value(s: &str, f: &Field) -> Result<u32, String> {
    if let Ok(n) = s.parse::<u32>() {
        if s.starts_with('+') {
            return Err(format!("`{s}` is not a number"));
        }
        if n < f.min || n > f.max {
            return Err(format!("{n} is out of range {}-{}", f.min, f.max));
        }
        return Ok(n);
    }
    let lower = s.to_ascii_lowercase();
    if let Some(i) = f.names.iter().position(|n| *n == lower) {
        return Ok(f.names_base + i as u32);
    }
    if f.names.is_empty() {
        Err(format!("`{s}` is not a number"))
    } else {
        Err(format!(
            "`{s}` is neither a number in {}-{} nor a name ({})",
            f.min,
            f.max,
            f.names.join(", ")
        ))
    }
}

/// Parses one field into a bit set.
fn parse_field(text: &str, f: &Field) -> Result<u64, String> {
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err("empty list item".into());
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| format!("step `{s}` is not a number"))?;
                if step == 0 {
                    return Err("step must be at least 1".into());
                }
                (r, Some(step))
            }
            None => (item, None),
        };
        let (lo, hi) = if range == "*" {
            (f.min, f.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (parse_value(a, f)?, parse_value(b, f)?);
            if a > b {
                return Err(format!(
                    "range {range} runs backwards; write {b}-{a} or a list"
                ));
            }
            (a, b)
        } else {
            let v = parse_value(range, f)?;
            if step.is_some() {
                return Err(format!(
                    "a step needs a range or `*`; write `{range}-{}/{}` or `*/{}`",
                    f.max,
                    step.unwrap_or(1),
                    step.unwrap_or(1)
                ));
            }
            (v, v)
        };
        let step = step.unwrap_or(1);
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(v: &[u32]) -> u64 {
        v.iter().fold(0, |a, b| a | (1 << b))
    }

    #[test]
    fn parses_lists_ranges_steps_and_names() {
        let c = Cron::parse("*/15 9-17 * jan,jul mon-fri").unwrap();
        assert_eq!(c.spec.minutes, bits(&[0, 15, 30, 45]));
        assert_eq!(
            c.spec.hours as u64,
            bits(&[9, 10, 11, 12, 13, 14, 15, 16, 17])
        );
        assert_eq!(c.spec.months as u64, bits(&[1, 7]));
        assert_eq!(c.spec.days_of_week as u64, bits(&[1, 2, 3, 4, 5]));
        assert_eq!(c.spec.day_rule, DayRule::And);
        assert!(!c.spec.fixed_time);
        let c = Cron::parse("10-40/10 0 1 * *").unwrap();
        assert_eq!(c.spec.minutes, bits(&[10, 20, 30, 40]));
        assert!(c.spec.fixed_time);
    }

    #[test]
    fn sunday_is_zero_and_seven() {
        let a = Cron::parse("0 0 * * 0").unwrap();
        let b = Cron::parse("0 0 * * 7").unwrap();
        let c = Cron::parse("0 0 * * SUN").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(
            Cron::parse("0 0 * * 5-7").unwrap().spec.days_of_week as u64,
            bits(&[0, 5, 6])
        );
    }

    #[test]
    fn vixie_or_only_when_both_day_fields_are_restricted() {
        assert_eq!(
            Cron::parse("0 0 13 * fri").unwrap().spec.day_rule,
            DayRule::Or
        );
        assert_eq!(
            Cron::parse("0 0 */2 * fri").unwrap().spec.day_rule,
            DayRule::And
        );
        assert_eq!(
            Cron::parse("0 0 1-31 * fri").unwrap().spec.day_rule,
            DayRule::Or
        );
        assert_eq!(
            Cron::parse("0 0 13 * *").unwrap().spec.day_rule,
            DayRule::And
        );
    }

    #[test]
    fn macros_expand() {
        assert_eq!(
            Cron::parse("@daily").unwrap(),
            Cron::parse("0 0 * * *").unwrap()
        );
        assert_eq!(
            Cron::parse("@midnight").unwrap(),
            Cron::parse("0 0 * * *").unwrap()
        );
        assert_eq!(
            Cron::parse("@yearly").unwrap(),
            Cron::parse("0 0 1 1 *").unwrap()
        );
        assert_eq!(
            Cron::parse("@annually").unwrap(),
            Cron::parse("0 0 1 1 *").unwrap()
        );
        assert_eq!(
            Cron::parse("@monthly").unwrap(),
            Cron::parse("0 0 1 * *").unwrap()
        );
        assert_eq!(
            Cron::parse("@weekly").unwrap(),
            Cron::parse("0 0 * * 0").unwrap()
        );
        assert!(!Cron::parse("@hourly").unwrap().spec.fixed_time);
        assert!(Cron::parse("@daily").unwrap().spec.fixed_time);
        assert!(Cron::parse("@reboot").is_err());
    }

    #[test]
    fn six_fields_have_leading_seconds() {
        let c = Cron::parse("*/10 * * * * *").unwrap();
        assert_eq!(c.spec.seconds, bits(&[0, 10, 20, 30, 40, 50]));
        assert_eq!(Cron::parse("* * * * *").unwrap().spec.seconds, 1);
    }

    #[test]
    fn errors_name_the_field_and_column() {
        let e = Cron::parse("61 * * * *").unwrap_err();
        assert_eq!((e.field, e.column), ("minute", 0));
        assert_eq!(e.to_string(), "minute field `61`: 61 is out of range 0-59");
        let e = Cron::parse("0 0 * * 8").unwrap_err();
        assert_eq!((e.field, e.column), ("day-of-week", 8));
        let e = Cron::parse("0 0 * foo *").unwrap_err();
        assert!(e.message.contains("neither a number"), "{e}");
        assert!(Cron::parse("*/0 * * * *").is_err());
        assert!(
            Cron::parse("5/15 * * * *")
                .unwrap_err()
                .message
                .contains("needs a range")
        );
        assert!(
            Cron::parse("0 0 * *")
                .unwrap_err()
                .message
                .contains("found 4")
        );
        assert!(Cron::parse("1,,2 * * * *").is_err());
        assert!(
            Cron::parse("30-10 * * * *")
                .unwrap_err()
                .message
                .contains("backwards")
        );
        assert!(Cron::parse("-1 * * * *").is_err());
    }

    #[test]
    fn impossible_dates_are_rejected() {
        let e = Cron::parse("0 0 31 2 *").unwrap_err();
        assert_eq!(e.field, "day-of-month");
        assert!(e.message.contains("never matches"), "{e}");
        assert!(Cron::parse("0 0 30 2 *").is_err());
        assert!(Cron::parse("0 0 31 4,6,9,11 *").is_err());
        assert!(Cron::parse("0 0 29 2 *").is_ok());
        assert!(
            Cron::parse("0 0 31 2 mon").is_ok(),
            "OR: every Monday in February"
        );
    }
}
