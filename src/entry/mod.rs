//! A schedule entry: the data model, and where each part of it lives.
//!
//! Every source (YAML files, the database, the HTTP API) hands an entry over
//! as a [`Node`](crate::syntax::Node) tree, and [`parse_entry`] turns it
//! into an [`Entry`] or a list of [`FieldError`]s naming each bad field.
//! There is one validator, so the same input is accepted or refused the
//! same way wherever it comes from.
//!
//! This file holds the data ([`Entry`], [`Options`], [`Misfire`],
//! [`Expires`], [`Timing`], [`Origin`]) and the run times of an entry; the
//! rest is split by concept:
//!
//! - `validate`: [`parse_entry`] and its per-key steps, [`Context`],
//!   [`check_name`], [`validate_json`];
//! - `kind`: the schedule kinds of an entry (`cron`, `crontab`, …);
//! - `checker`: [`Checker`], the per-value checks, and [`FieldError`];
//! - `hints`: "did you mean" suggestions;
//! - `timing_key`: [`Entry::timing_key`] and the FNV-1a hash;
//! - `compact`: [`Sparse`], the one-pointer layout of rarely set parts;
//! - `intern`: [`SharedStr`] and the pool of task and zone names;
//! - `names`: [`ByName`] and [`FileOrigins`], sets keyed by entry name.
//!
//! Invariant: `entry` depends only on `crate::syntax`, `crate::schedule`,
//! `crate::duration` and `crate::NameHasher`. It never imports the sources,
//! the engine, the service, HTTP or the broker adapters; they import it.

mod checker;
mod compact;
mod hints;
mod intern;
mod kind;
mod names;
mod timing_key;
mod validate;

use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value as Json};

use crate::schedule::{DstRule, Schedule};
use crate::syntax::Pos;

pub(crate) use checker::Checker;
pub use checker::{FieldError, OPTION_KEYS};
pub use compact::{Rare, Sparse};
pub use intern::SharedStr;
pub use names::{ByName, FileOrigins};
pub use validate::{
    Context, ENTRY_KEYS, NameError, RoutePattern, check_name, glob_match, parse_entry,
    render_errors, validate_json,
};

/// What to do with runs missed while no leader was dispatching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Misfire {
    /// Fire none of them.
    Skip,
    /// Fire one, for the latest missed time (Celery beat's behaviour).
    #[default]
    Once,
    /// Fire each, oldest first, up to [`MISFIRE_ALL_LIMIT`].
    All,
}

/// `misfire: all` fires at most this many missed runs per entry; beyond
/// that only the latest fires and the rest are logged as skipped.
pub const MISFIRE_ALL_LIMIT: usize = 1000;

/// `options.expires`: relative to the scheduled time, or absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expires {
    After(SignedDuration),
    At(Timestamp),
}

/// Celery `apply_async` options that travel with every message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    pub queue: Option<String>,
    pub exchange: Option<String>,
    pub routing_key: Option<String>,
    pub priority: Option<u8>,
    pub expires: Option<Expires>,
    pub time_limit: Option<f64>,
    pub soft_time_limit: Option<f64>,
    pub headers: Map<String, Json>,
}

impl Options {
    /// `self` over `base`: fields set here win, headers merge key by key.
    pub fn over(&self, base: &Options) -> Options {
        let mut headers = base.headers.clone();
        headers.extend(self.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        Options {
            queue: self.queue.clone().or_else(|| base.queue.clone()),
            exchange: self.exchange.clone().or_else(|| base.exchange.clone()),
            routing_key: self
                .routing_key
                .clone()
                .or_else(|| base.routing_key.clone()),
            priority: self.priority.or(base.priority),
            expires: self.expires.or(base.expires),
            time_limit: self.time_limit.or(base.time_limit),
            soft_time_limit: self.soft_time_limit.or(base.soft_time_limit),
            headers,
        }
    }
}

impl Options {
    /// The options as a schedule file writes them: only those set,
    /// `expires` in seconds after the run or as an RFC 3339 instant.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Json>| {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        };
        put("queue", self.queue.clone().map(Json::from));
        put("exchange", self.exchange.clone().map(Json::from));
        put("routing_key", self.routing_key.clone().map(Json::from));
        put("priority", self.priority.map(Json::from));
        put(
            "expires",
            self.expires.map(|e| match e {
                Expires::After(d) if d.subsec_nanos() == 0 => Json::from(d.as_secs()),
                Expires::After(d) => Json::from(d.as_secs_f64()),
                Expires::At(t) => Json::from(t.to_string()),
            }),
        );
        put("time_limit", self.time_limit.map(Json::from));
        put("soft_time_limit", self.soft_time_limit.map(Json::from));
        if !self.headers.is_empty() {
            m.insert("headers".into(), Json::Object(self.headers.clone()));
        }
        Json::Object(m)
    }
}

/// Where an entry was defined, for error messages and the API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Origin {
    /// A file path, or a label such as `database` or `api`.
    pub source: Arc<str>,
    pub pos: Pos,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pos.line == 0 {
            write!(f, "{}", self.source)
        } else {
            write!(f, "{}:{}:{}", self.source, self.pos.line, self.pos.col)
        }
    }
}

/// A validated schedule entry.
///
/// Kept small because there is one per entry, a million at scale: parts
/// most entries leave unset (kwargs, options, bounds) are [`Sparse`] (one
/// pointer, no allocation when unset), and the task and zone names are
/// [`SharedStr`]s shared by every entry that names the same one.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub task: SharedStr,
    pub schedule: Schedule,
    pub timezone_name: SharedStr,
    pub timezone: TimeZone,
    /// The DST rule in force: the entry's `dst` over the kind's default.
    pub dst: DstRule,
    pub enabled: bool,
    pub misfire: Misfire,
    pub args: Vec<Json>,
    pub kwargs: Sparse<Map<String, Json>>,
    /// Options after merging the entry's own over the matching route over
    /// the file's defaults.
    pub options: Sparse<Options>,
    /// `start_at`, `end_at`, `grace` and `jitter`.
    pub timing: Sparse<Timing>,
    pub origin: Origin,
}

/// The rarely set bounds and tolerances of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    pub start_at: Option<Timestamp>,
    pub end_at: Option<Timestamp>,
    pub grace: Option<SignedDuration>,
    pub jitter: Option<SignedDuration>,
}

impl Entry {
    /// The fixed delay this entry's runs get from `jitter`: a hash of the
    /// name mapped into `[0, jitter)`, whole milliseconds.
    pub fn jitter_offset(&self) -> SignedDuration {
        let Some(j) = self.timing.jitter else {
            return SignedDuration::ZERO;
        };
        let ms = j.as_millis();
        if ms <= 0 {
            return SignedDuration::ZERO;
        }
        SignedDuration::from_millis((timing_key::fnv1a(self.name.as_bytes()) % ms as u64) as i64)
    }

    /// The first nominal run time strictly after `after`, within
    /// `start_at`/`end_at`. `anchor` is the interval anchor (ignored by other
    /// kinds); `start_at` takes its place when set.
    pub fn next_after(&self, anchor: Timestamp, after: Timestamp) -> Option<Timestamp> {
        let t = &*self.timing;
        let after = match t.start_at {
            // `start_at` itself is allowed: search from just before it.
            Some(s) if s > after => s.checked_sub(SignedDuration::from_nanos(1)).ok()?,
            _ => after,
        };
        let anchor = t.start_at.unwrap_or(anchor);
        let next = self
            .schedule
            .next_after(&self.timezone, self.dst, anchor, after)?;
        match t.end_at {
            Some(end) if next >= end => None,
            _ => Some(next),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::schedule::Interval;

    #[test]
    fn options_merge_entry_over_route_over_defaults() {
        let defaults = Options {
            queue: Some("celery".into()),
            priority: Some(1),
            ..Default::default()
        };
        let route = Options {
            queue: Some("email".into()),
            ..Default::default()
        };
        let mut own = Options {
            priority: Some(9),
            ..Default::default()
        };
        own.headers.insert("a".into(), Json::from(1));
        let merged = own.over(&route.over(&defaults));
        assert_eq!(merged.queue.as_deref(), Some("email"));
        assert_eq!(merged.priority, Some(9));
        assert_eq!(merged.headers.get("a"), Some(&Json::from(1)));
    }

    /// One entry of each kind and most optional fields, for the tests of
    /// the timing key, the name pool and the name sets.
    pub(crate) const EVERY_KIND: &str = r#"
schedules:
  cron: {task: t, cron: '0 9 * * mon-fri'}
  cron-seconds: {task: t, cron: '*/5 * * * * *', timezone: Europe/Berlin}
  cron-macro: {task: t, cron: '@yearly', timezone: America/New_York, dst: {gap: skip, fold: both}}
  cron-names: {task: t, cron: '30 2 1,15 jan-jun sun', timezone: Australia/Lord_Howe, dst: {gap: shift}}
  crontab: {task: t, crontab: {minute: [0, 30], hour: '*/3', day_of_week: mon-fri}}
  crontab-all: {task: t, crontab: {minute: 5, hour: 22-2, day_of_week: '*', day_of_month: 1-10/3, month_of_year: jan}}
  every: {task: t, every: 1h30m}
  every-ms: {task: t, every: 500ms, jitter: 30s}
  every-bounded: {task: t, every: 90, start_at: '2026-01-01T00:00:00Z', end_at: '2026-06-01T12:30:00.5+02:00', grace: 10m}
  solar: {task: t, solar: {event: sunrise, latitude: 52.52, longitude: 13.405}, timezone: Europe/Berlin}
  solar-int: {task: t, solar: {event: dusk_astronomical, latitude: -33, longitude: 151}}
  at: {task: t, at: '2026-12-01T09:00:00.123456789+01:00'}
  at-civil: {task: t, at: '2026-03-29 02:30:00', timezone: Europe/Berlin, jitter: 1h2m3s4ms}
  zoned-file-bounds: {task: t, cron: '0 0 * * *', start_at: '2026-01-01 00:00:00', timezone: Asia/Kolkata}
"#;

    #[test]
    fn jitter_is_stable_and_bounded() {
        let mut e = sample();
        e.timing.jitter = Some(SignedDuration::from_secs(30));
        let a = e.jitter_offset();
        assert_eq!(a, e.clone().jitter_offset());
        assert!(a >= SignedDuration::ZERO && a < SignedDuration::from_secs(30));
        e.name = "other".into();
        assert_ne!(a, e.jitter_offset(), "different names spread differently");
    }

    pub(crate) fn sample() -> Entry {
        Entry {
            name: "n".into(),
            task: "t".into(),
            schedule: Schedule::Every(Interval {
                every: SignedDuration::from_secs(60),
            }),
            timezone_name: "UTC".into(),
            timezone: TimeZone::UTC,
            dst: DstRule::default_for(false),
            enabled: true,
            misfire: Misfire::Once,
            args: vec![],
            kwargs: Sparse::default(),
            options: Sparse::default(),
            timing: Sparse::default(),
            origin: Origin::default(),
        }
    }

    #[test]
    fn start_and_end_bound_the_runs() {
        let mut e = sample();
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        e.timing.start_at = Some(t("2026-01-01T00:00:30Z"));
        e.timing.end_at = Some(t("2026-01-01T00:02:30Z"));
        let anchor = t("2025-01-01T00:00:00Z");
        assert_eq!(
            e.next_after(anchor, t("2025-06-01T00:00:00Z")),
            Some(t("2026-01-01T00:00:30Z"))
        );
        assert_eq!(
            e.next_after(anchor, t("2026-01-01T00:01:30Z")),
            None,
            "end_at is exclusive"
        );
        assert_eq!(
            e.next_after(anchor, t("2026-01-01T00:00:30Z")),
            Some(t("2026-01-01T00:01:30Z"))
        );
    }
}
