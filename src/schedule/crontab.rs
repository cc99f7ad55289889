//! The `crontab` schedule kind: Celery's `crontab()` with Celery's parser
//! rules, so schedules move over from `beat_schedule` unchanged.
//!
//! Differences from [`super::cron`] that users of Celery rely on:
//!
//! * day-of-month AND day-of-week must both match;
//! * day-of-week runs 0–6 with 0 = Sunday; 7 is an error;
//! * a reversed range wraps around (`fri-mon`, hour `22-2`);
//! * steps slice the expanded list (`1-10/3` is 1, 4, 7, 10);
//! * a number with a step but no range (`5/15`) is an error;
//! * names (`mon`, `jan`, matched on their first three letters) are accepted
//!   in any field, as Celery's `_expand_number` does.

use super::calendar::{CalendarSpec, DayRule};
use super::cron::{DAY_NAMES, MONTH_NAMES};

/// The five fields as written; each defaults to `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct CrontabFields {
    pub minute: String,
    pub hour: String,
    pub day_of_week: String,
    pub day_of_month: String,
    pub month_of_year: String,
}

impl Default for CrontabFields {
    fn default() -> Self {
        let star = || "*".to_string();
        CrontabFields {
            minute: star(),
            hour: star(),
            day_of_week: star(),
            day_of_month: star(),
            month_of_year: star(),
        }
    }
}

/// A crontab field that does not parse; `field` is Celery's argument name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} `{text}`: {message}")]
pub struct CrontabError {
    pub field: &'static str,
    pub text: String,
    pub message: String,
}

/// A parsed Celery crontab.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Crontab {
    pub spec: CalendarSpec,
}

impl Crontab {
    /// Parses the five fields with Celery's rules.
    pub fn parse(f: &CrontabFields) -> Result<Crontab, CrontabError> {
        let field = |name: &'static str, text: &str, min: u32, max: u32| {
            parse_field(text, min, max).map_err(|message| CrontabError {
                field: name,
                text: text.to_string(),
                message,
            })
        };
        let minutes = field("minute", &f.minute, 0, 59)?;
        let hours = field("hour", &f.hour, 0, 23)?;
        let dow = field("day_of_week", &f.day_of_week, 0, 6)?;
        let dom = field("day_of_month", &f.day_of_month, 1, 31)?;
        let months = field("month_of_year", &f.month_of_year, 1, 12)?;
        let spec = CalendarSpec {
            seconds: 1,
            minutes,
            hours: hours as u32,
            days_of_month: dom as u32,
            months: months as u16,
            days_of_week: dow as u8,
            day_rule: DayRule::And,
            fixed_time: !f.minute.trim().starts_with('*') && !f.hour.trim().starts_with('*'),
        };
        if !spec.can_match() {
            return Err(CrontabError {
                field: "day_of_month",
                text: f.day_of_month.clone(),
                message: format!(
                    "never matches: no month in month_of_year `{}` has such a day",
                    f.month_of_year
                ),
            });
        }
        Ok(Crontab { spec })
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Celery's `_expand_number`: an integer, else a month name, else a weekday
/// name, then checked against the field's range.
fn expand_number(s: &str, min: u32, max: u32) -> Result<u32, String> {
    let n = match s.parse::<i64>() {
        Ok(n) if !s.starts_with('+') => n,
        _ => {
            let key = s.to_ascii_lowercase();
            let key = key.get(..3).unwrap_or(&key);
            if let Some(i) = MONTH_NAMES.iter().position(|m| *m == key) {
                i as i64 + 1
            } else if let Some(i) = DAY_NAMES.iter().position(|d| *d == key) {
                i as i64
            } else {
                return Err(format!("`{s}` is not a number, month name or weekday name"));
            }
        }
    };
    if n < min as i64 || n > max as i64 {
        return Err(format!("{n} is out of range {min}-{max}"));
    }
    Ok(n as u32)
}

fn parse_step(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("step must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("step `{s}` is not a number")),
    }
}

/// Celery's `_range_steps`/`_expand_range`: an inclusive range that wraps
/// around the field's end when reversed.
fn expand_range(a: u32, b: u32, min: u32, max: u32) -> Vec<u32> {
    if a <= b {
        (a..=b).collect()
    } else {
        (a..=max).chain(min..=b).collect()
    }
}

fn parse_field(text: &str, min: u32, max: u32) -> Result<u64, String> {
    let text = text.trim();
    let mut bits = 0u64;
    for part in text.split(',') {
        if part.is_empty() {
            return Err("empty list item".into());
        }
        let values: Vec<u32> = if part == "*" {
            (min..=max).collect()
        } else if let Some(step) = part.strip_prefix("*/") {
            let step = parse_step(step)?;
            (min..=max).step_by(step).collect()
        } else if let Some((range, step)) = part.split_once('/') {
            let Some((a, b)) = range
                .split_once('-')
                .filter(|(a, b)| is_word(a) && is_word(b))
            else {
                return Err(format!(
                    "a step needs a range or `*` (Celery rejects `{part}`); write `{range}-{max}/{step}` or `*/{step}`"
                ));
            };
            let step = parse_step(step)?;
            let (a, b) = (expand_number(a, min, max)?, expand_number(b, min, max)?);
            expand_range(a, b, min, max)
                .into_iter()
                .step_by(step)
                .collect()
        } else if let Some((a, b)) = part
            .split_once('-')
            .filter(|(a, b)| is_word(a) && is_word(b))
        {
            let (a, b) = (expand_number(a, min, max)?, expand_number(b, min, max)?);
            expand_range(a, b, min, max)
        } else if is_word(part) {
            vec![expand_number(part, min, max)?]
        } else {
            return Err(format!("`{part}` is not valid crontab syntax"));
        };
        for v in values {
            bits |= 1 << v;
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

    fn tab(
        minute: &str,
        hour: &str,
        dow: &str,
        dom: &str,
        moy: &str,
    ) -> Result<Crontab, CrontabError> {
        Crontab::parse(&CrontabFields {
            minute: minute.into(),
            hour: hour.into(),
            day_of_week: dow.into(),
            day_of_month: dom.into(),
            month_of_year: moy.into(),
        })
    }

    #[test]
    fn defaults_are_every_minute() {
        let c = Crontab::parse(&CrontabFields::default()).unwrap();
        assert_eq!(c.spec.minutes, (1u64 << 60) - 1);
        assert_eq!(c.spec.day_rule, DayRule::And);
        assert!(!c.spec.fixed_time);
    }

    #[test]
    fn steps_slice_the_expanded_list() {
        assert_eq!(
            tab("*/15", "*", "*", "*", "*").unwrap().spec.minutes,
            bits(&[0, 15, 30, 45])
        );
        assert_eq!(
            tab("1-10/3", "*", "*", "*", "*").unwrap().spec.minutes,
            bits(&[1, 4, 7, 10])
        );
        let dom = tab("0", "0", "*", "*/10", "*").unwrap().spec.days_of_month as u64;
        assert_eq!(dom, bits(&[1, 11, 21, 31]));
    }

    #[test]
    fn reversed_ranges_wrap() {
        assert_eq!(
            tab("0", "22-2", "*", "*", "*").unwrap().spec.hours as u64,
            bits(&[22, 23, 0, 1, 2])
        );
        assert_eq!(
            tab("0", "0", "fri-mon", "*", "*")
                .unwrap()
                .spec
                .days_of_week as u64,
            bits(&[5, 6, 0, 1])
        );
        assert_eq!(
            tab("0", "0", "*", "*", "nov-feb").unwrap().spec.months as u64,
            bits(&[11, 12, 1, 2])
        );
    }

    #[test]
    fn names_match_on_three_letters_in_any_field() {
        assert_eq!(
            tab("0", "0", "Monday,TUE", "*", "*")
                .unwrap()
                .spec
                .days_of_week as u64,
            bits(&[1, 2])
        );
        assert_eq!(
            tab("mon", "*", "*", "*", "*").unwrap().spec.minutes,
            bits(&[1]),
            "as Celery does"
        );
        assert_eq!(
            tab("0", "0", "*", "*", "January").unwrap().spec.months as u64,
            bits(&[1])
        );
    }

    #[test]
    fn celery_rejections() {
        let e = tab("5/15", "*", "*", "*", "*").unwrap_err();
        assert_eq!(e.field, "minute");
        assert!(e.message.contains("needs a range"), "{e}");
        let e = tab("0", "0", "7", "*", "*").unwrap_err();
        assert_eq!(e.field, "day_of_week");
        assert_eq!(e.message, "7 is out of range 0-6");
        assert!(tab("60", "*", "*", "*", "*").is_err());
        assert!(tab("*", "24", "*", "*", "*").is_err());
        assert!(tab("*", "*", "*", "0", "*").is_err());
        assert!(tab("*", "*", "*", "*", "13").is_err());
        assert!(tab("*/0", "*", "*", "*", "*").is_err());
        assert!(tab("1,,2", "*", "*", "*", "*").is_err());
        assert!(tab("-1", "*", "*", "*", "*").is_err());
        assert!(tab("1-", "*", "*", "*", "*").is_err());
        let e = tab("0", "0", "*", "31", "feb").unwrap_err();
        assert!(e.message.contains("never matches"), "{e}");
    }

    #[test]
    fn fixed_time_is_decided_by_minute_and_hour() {
        assert!(tab("30", "2", "*", "*", "*").unwrap().spec.fixed_time);
        assert!(!tab("30", "*", "*", "*", "*").unwrap().spec.fixed_time);
        assert!(!tab("*/5", "2", "*", "*", "*").unwrap().spec.fixed_time);
    }
}
