//! Schedule kinds and the one question they answer: given an instant, when
//! is the next run? Everything here is pure: no clock reads, no I/O.
//!
//! | kind | module | rule |
//! |---|---|---|
//! | `cron` | [`cron`] | Vixie cron, 5 or 6 fields, OR of day fields |
//! | `crontab` | [`crontab`] | Celery's `crontab()`, AND of day fields |
//! | `every` | [`interval`] | anchored interval, no drift; `relative` rounds to its resolution |
//! | `solar` | [`solar`] | Celery's nine sun events |
//! | `at` | here | one instant, once |
//!
//! Calendar kinds share [`calendar`], which owns the daylight-saving rules.

pub mod calendar;
pub mod cron;
pub mod crontab;
pub mod interval;
pub mod solar;

use jiff::Timestamp;
use jiff::tz::TimeZone;

pub use calendar::{CalendarSpec, DstRule, Fold, Gap};
pub use cron::Cron;
pub use crontab::{Crontab, CrontabFields};
pub use interval::{Interval, Relative};
pub use solar::{Solar, SolarError, SolarEvent};

/// One schedule, as parsed from any source.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// A cron expression and its parsed form.
    Cron { expr: String, cron: Cron },
    /// Celery crontab fields and their parsed form.
    Crontab {
        /// Boxed: five strings, rarely used, would double every schedule.
        fields: Box<CrontabFields>,
        crontab: Crontab,
    },
    /// An anchored interval.
    Every(Interval),
    /// An interval rounded to its resolution (Celery's `relative=True`).
    Relative(Relative),
    /// A solar event at a place.
    Solar(Solar),
    /// A single instant.
    At(Timestamp),
}

impl Schedule {
    /// The kind's name as written in a schedule file.
    pub fn kind(&self) -> &'static str {
        match self {
            Schedule::Cron { .. } => "cron",
            Schedule::Crontab { .. } => "crontab",
            Schedule::Every(_) | Schedule::Relative(_) => "every",
            Schedule::Solar(_) => "solar",
            Schedule::At(_) => "at",
        }
    }

    /// The calendar pattern, for `cron` and `crontab`.
    pub fn calendar(&self) -> Option<&CalendarSpec> {
        match self {
            Schedule::Cron { cron, .. } => Some(&cron.spec),
            Schedule::Crontab { crontab, .. } => Some(&crontab.spec),
            _ => None,
        }
    }

    /// The first run strictly after `after`. `tz` and `dst` matter for
    /// calendar kinds; `anchor` for intervals.
    pub fn next_after(
        &self,
        tz: &TimeZone,
        dst: DstRule,
        anchor: Timestamp,
        after: Timestamp,
    ) -> Option<Timestamp> {
        match self {
            Schedule::Cron { cron, .. } => cron.spec.next_after(tz, dst, after),
            Schedule::Crontab { crontab, .. } => crontab.spec.next_after(tz, dst, after),
            Schedule::Every(i) => i.next_after(anchor, after),
            Schedule::Relative(r) => r.next_after(tz, anchor, after),
            Schedule::Solar(s) => s.next_after(after),
            Schedule::At(at) => (*at > after).then_some(*at),
        }
    }

    /// The schedule as written, for listings and the API.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Schedule::Cron { expr, .. } => json!({ "cron": expr }),
            Schedule::Crontab { fields, .. } => json!({ "crontab": fields }),
            Schedule::Every(i) => json!({ "every": crate::duration::format(i.every) }),
            Schedule::Relative(r) => {
                json!({ "every": crate::duration::format(r.every), "relative": true })
            }
            Schedule::Solar(s) => json!({ "solar": {
                "event": s.event.name(), "latitude": s.latitude, "longitude": s.longitude } }),
            Schedule::At(at) => json!({ "at": at.to_string() }),
        }
    }
}
