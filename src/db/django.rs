//! django-celery-beat's tables (2.x, `django_celery_beat_*`), read as they
//! are on PostgreSQL, MySQL/MariaDB and SQLite, and what a row means as a
//! schedule entry. Never alters Django's schema.
//!
//! One query joins `periodictask` to its four schedule tables; every column
//! is selected as text, so one decoder serves the three databases (through
//! sqlx's `Any` driver). Timestamps come as UTC: PostgreSQL's `timestamptz`
//! is formatted in UTC, and Django (`USE_TZ = True`, its default) stores
//! naive UTC in MySQL's `datetime(6)` and SQLite's text.
//!
//! Invariant: a row either becomes an entry body every source validates
//! the same way ([`PeriodicTask::body`]), or the reasons it cannot.

use jiff::Timestamp;
use serde_json::{Map, Value as Json, json};
use sqlx::AnyPool;
use sqlx::Row as _;
use sqlx::any::AnyPoolOptions;

use crate::celery::mapping;
use crate::redact::mask_url;

/// The database kinds django-celery-beat runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    MySql,
    Sqlite,
}

/// Why the tables could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DjangoError {
    #[error(
        "unsupported database URL `{0}`: expected postgres://, mysql://, mariadb:// or sqlite://"
    )]
    Scheme(String),
    #[error("cannot connect to database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("reading django-celery-beat's tables: {0}")]
    Query(#[from] sqlx::Error),
}

/// A connection to the database holding django-celery-beat's tables.
#[derive(Debug, Clone)]
pub struct DjangoDb {
    pub kind: Kind,
    pub pool: AnyPool,
}

impl DjangoDb {
    pub async fn connect(url: &str) -> Result<DjangoDb, DjangoError> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
        let (kind, url) = match scheme {
            "postgres" | "postgresql" => (Kind::Postgres, url.to_string()),
            "mysql" => (Kind::MySql, url.to_string()),
            "mariadb" => (Kind::MySql, format!("mysql{}", &url[scheme.len()..])),
            "sqlite" => (Kind::Sqlite, url.to_string()),
            _ => return Err(DjangoError::Scheme(mask_url(url))),
        };
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&url)
            .await
            .map_err(|source| DjangoError::Connect {
                url: mask_url(&url),
                source,
            })?;
        Ok(DjangoDb { kind, pool })
    }

    /// Every periodic task with its schedule, by id.
    pub async fn tasks(&self) -> Result<Vec<PeriodicTask>, DjangoError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(select(self.kind)))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let cols: Vec<Option<String>> = (0..COLUMNS.len())
                    .map(|i| r.try_get(i).ok().flatten())
                    .collect();
                PeriodicTask::from_columns(&cols)
            })
            .collect())
    }
}

/// The selected columns, in order (`t` the task, `i`/`c`/`s`/`k` its
/// interval, crontab, solar and clocked schedules).
const COLUMNS: &[&str] = &[
    "t.id",
    "t.name",
    "t.task",
    "t.args",
    "t.kwargs",
    "t.queue",
    "t.exchange",
    "t.routing_key",
    "t.expires",
    "t.enabled",
    "t.last_run_at",
    "t.total_run_count",
    "t.date_changed",
    "t.description",
    "t.one_off",
    "t.start_time",
    "t.priority",
    "t.headers",
    "t.expire_seconds",
    "i.every",
    "i.period",
    "c.minute",
    "c.hour",
    "c.day_of_week",
    "c.day_of_month",
    "c.month_of_year",
    "c.timezone",
    "s.event",
    "s.latitude",
    "s.longitude",
    "k.clocked_time",
];

/// The columns holding instants.
const INSTANTS: &[&str] = &[
    "t.expires",
    "t.last_run_at",
    "t.date_changed",
    "t.start_time",
    "k.clocked_time",
];

/// The one query, as text per database.
fn select(kind: Kind) -> String {
    let text = match kind {
        Kind::MySql => "CHAR",
        _ => "TEXT",
    };
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|c| match (kind, INSTANTS.contains(c)) {
            (Kind::Postgres, true) => {
                format!(r#"to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#)
            }
            (Kind::MySql, true) => format!("DATE_FORMAT({c}, '%Y-%m-%dT%H:%i:%s.%fZ')"),
            _ => format!("CAST({c} AS {text})"),
        })
        .collect();
    format!(
        "SELECT {} FROM django_celery_beat_periodictask t \
         LEFT JOIN django_celery_beat_intervalschedule i ON i.id = t.interval_id \
         LEFT JOIN django_celery_beat_crontabschedule c ON c.id = t.crontab_id \
         LEFT JOIN django_celery_beat_solarschedule s ON s.id = t.solar_id \
         LEFT JOIN django_celery_beat_clockedschedule k ON k.id = t.clocked_id \
         ORDER BY t.id",
        cols.join(", ")
    )
}

/// One `django_celery_beat_periodictask` row with its schedule's columns,
/// as text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeriodicTask {
    pub cols: Vec<Option<String>>,
}

impl PeriodicTask {
    fn from_columns(cols: &[Option<String>]) -> PeriodicTask {
        PeriodicTask {
            cols: cols.to_vec(),
        }
    }

    /// The column `name` (as in [`COLUMNS`]), unless NULL.
    pub fn get(&self, name: &str) -> Option<&str> {
        let i = COLUMNS.iter().position(|c| *c == name)?;
        self.cols.get(i)?.as_deref()
    }

    pub fn id(&self) -> i64 {
        self.get("t.id").and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    pub fn name(&self) -> &str {
        self.get("t.name").unwrap_or_default()
    }

    fn flag(&self, col: &str) -> bool {
        matches!(self.get(col), Some("1" | "t" | "true"))
    }

    /// The instant in `col`, if set.
    pub fn instant(&self, col: &str) -> Result<Option<Timestamp>, String> {
        let Some(text) = self.get(col) else {
            return Ok(None);
        };
        instant(text)
            .map(Some)
            .map_err(|e| format!("{col}: `{text}`: {e}"))
    }

    pub fn enabled(&self) -> bool {
        self.flag("t.enabled")
    }

    pub fn one_off(&self) -> bool {
        self.flag("t.one_off")
    }

    /// What django-celery-beat counts the next run from: the last run,
    /// else the last change (`date_changed`, since 2.8.0).
    pub fn base(&self) -> Result<Option<Timestamp>, String> {
        Ok(self
            .instant("t.last_run_at")?
            .or(self.instant("t.date_changed")?))
    }

    pub fn total_run_count(&self) -> i64 {
        self.get("t.total_run_count")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// The entry body this row means (the keys of a schedule-file entry),
    /// or every reason it has none. `one_off` is not in it: a one-off runs
    /// once, at the first run of this body after its base ([`Self::base`]).
    pub fn body(&self) -> Result<Map<String, Json>, Vec<String>> {
        let mut why = Vec::new();
        let mut b = Map::new();
        b.insert("task".into(), json!(self.get("t.task").unwrap_or_default()));
        match self.schedule() {
            Ok(pairs) => b.extend(pairs),
            Err(w) => why.push(w),
        }
        for (k, col, shape) in [
            ("args", "t.args", "a list"),
            ("kwargs", "t.kwargs", "a mapping"),
        ] {
            match self.get(col).map(serde_json::from_str::<Json>) {
                None => {}
                Some(Ok(Json::Array(a))) if k == "args" && !a.is_empty() => {
                    b.insert(k.into(), Json::Array(a));
                }
                Some(Ok(Json::Object(m))) if k == "kwargs" && !m.is_empty() => {
                    b.insert(k.into(), Json::Object(m));
                }
                Some(Ok(Json::Array(a))) if a.is_empty() => {}
                Some(Ok(Json::Object(m))) if m.is_empty() => {}
                Some(_) => why.push(format!("{col}: not JSON {shape}")),
            }
        }
        match self.options() {
            Ok(o) if o.is_empty() => {}
            Ok(o) => {
                b.insert("options".into(), Json::Object(o));
            }
            Err(w) => why.extend(w),
        }
        if !self.enabled() {
            b.insert("enabled".into(), json!(false));
        }
        match self.bounds() {
            Ok(pairs) => b.extend(pairs),
            Err(w) => why.push(w),
        }
        if let Some(d) = self.get("t.description").filter(|d| !d.is_empty()) {
            b.insert("description".into(), json!(d));
        }
        if why.is_empty() { Ok(b) } else { Err(why) }
    }

    /// The schedule keys: the first set of interval, crontab, solar and
    /// clocked, as django-celery-beat picks it.
    fn schedule(&self) -> Result<Vec<(String, Json)>, String> {
        if let Some(every) = self.get("i.every") {
            return interval(every, self.get("i.period").unwrap_or_default());
        }
        if self.get("c.minute").is_some() {
            let mut v = mapping::crontab_keys(|f| self.get(&format!("c.{f}")).map(Json::from));
            if let Some(tz) = self.get("c.timezone") {
                v.push(("timezone".into(), json!(tz)));
            }
            return Ok(v);
        }
        if let Some(event) = self.get("s.event") {
            let coord = |c: &str| self.get(c).and_then(|v| v.parse::<f64>().ok());
            return Ok(vec![(
                "solar".into(),
                json!({"event": event, "latitude": coord("s.latitude"), "longitude": coord("s.longitude")}),
            )]);
        }
        if let Some(at) = self.instant("k.clocked_time")? {
            return Ok(vec![("at".into(), json!(at.to_string()))]);
        }
        Err("no schedule: none of interval, crontab, solar, clocked is set".into())
    }

    /// queue, exchange, routing key, priority, headers and the expiry
    /// (`expires` absolute, else `expire_seconds`).
    fn options(&self) -> Result<Map<String, Json>, Vec<String>> {
        let mut raw = Map::new();
        for k in ["queue", "exchange", "routing_key"] {
            if let Some(v) = self.get(&format!("t.{k}")).filter(|v| !v.is_empty()) {
                raw.insert(k.into(), json!(v));
            }
        }
        if let Some(p) = self.get("t.priority") {
            raw.insert(
                "priority".into(),
                p.parse::<i64>().map_or(json!(p), Json::from),
            );
        }
        match self.get("t.headers").map(serde_json::from_str::<Json>) {
            Some(Ok(Json::Object(h))) if !h.is_empty() => {
                raw.insert("headers".into(), Json::Object(h));
            }
            Some(Ok(Json::Object(_))) | None => {}
            Some(_) => return Err(vec!["t.headers: not a JSON mapping".into()]),
        }
        match (self.instant("t.expires"), self.get("t.expire_seconds")) {
            (Err(e), _) => return Err(vec![e]),
            (Ok(Some(at)), _) => {
                raw.insert("expires".into(), json!(at.to_string()));
            }
            (Ok(None), Some(s)) if s != "0" => {
                raw.insert(
                    "expires".into(),
                    s.parse::<i64>().map_or(json!(s), Json::from),
                );
            }
            _ => {}
        }
        mapping::convert(&raw)
    }

    /// `start_time` as `start_at`; an `expires` instant also ends the
    /// schedule (django-celery-beat disables the task then) as `end_at`.
    fn bounds(&self) -> Result<Vec<(String, Json)>, String> {
        let mut v = Vec::new();
        let start = self.instant("t.start_time")?;
        let interval = self.get("i.every").is_some();
        // An interval runs at last run + every: anchor there to keep its phase.
        let anchor = match (interval, self.instant("t.last_run_at")?) {
            (true, Some(last)) => Some(start.map_or(last, |s| s.max(last))),
            _ => start,
        };
        if let Some(a) = anchor {
            v.push(("start_at".into(), json!(a.to_string())));
        }
        if let Some(end) = self.instant("t.expires")? {
            v.push(("end_at".into(), json!(end.to_string())));
        }
        Ok(v)
    }
}

/// `IntervalSchedule(every, period)` as `every`.
fn interval(every: &str, period: &str) -> Result<Vec<(String, Json)>, String> {
    let n: i64 = every
        .parse()
        .map_err(|_| format!("i.every: `{every}` is not an integer"))?;
    if n < 1 {
        return Err(format!("i.every: {n} is not positive"));
    }
    let text = match period {
        "days" => format!("{n}d"),
        "hours" => format!("{n}h"),
        "minutes" => format!("{n}m"),
        "seconds" => format!("{n}s"),
        "microseconds" if n % 1000 == 0 => format!("{}ms", n / 1000),
        p => return Err(format!("i.period: `{p}` has no equivalent")),
    };
    Ok(vec![("every".into(), json!(text))])
}

/// An instant as the query gives it: RFC 3339, or a civil date-time in UTC.
pub fn instant(text: &str) -> Result<Timestamp, String> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    text.trim_end_matches('Z')
        .parse::<jiff::civil::DateTime>()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|z| z.timestamp())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> PeriodicTask {
        let mut cols = vec![None; COLUMNS.len()];
        for (k, v) in pairs {
            cols[COLUMNS.iter().position(|c| c == k).unwrap()] = Some(v.to_string());
        }
        PeriodicTask { cols }
    }

    #[test]
    fn a_row_means_an_entry() {
        let r = row(&[
            ("t.name", "n"),
            ("t.task", "proj.add"),
            ("t.args", "[1, 2]"),
            ("t.kwargs", "{}"),
            ("t.enabled", "0"),
            ("t.queue", "q1"),
            ("t.priority", "3"),
            ("t.headers", r#"{"h": 1}"#),
            ("t.expire_seconds", "30"),
            ("t.last_run_at", "2026-01-01 10:00:00.5"),
            ("i.every", "10"),
            ("i.period", "seconds"),
        ]);
        assert_eq!(
            Json::Object(r.body().unwrap()),
            json!({"task": "proj.add", "every": "10s", "args": [1, 2],
                "options": {"queue": "q1", "priority": 3, "headers": {"h": 1}, "expires": 30},
                "enabled": false, "start_at": "2026-01-01T10:00:00.5Z"})
        );
        let cron = row(&[
            ("t.task", "t"),
            ("t.enabled", "true"),
            ("t.expires", "2027-01-01T00:00:00.000000Z"),
            ("c.minute", "*/15"),
            ("c.hour", "9-17"),
            ("c.day_of_week", "mon-fri"),
            ("c.day_of_month", "*"),
            ("c.month_of_year", "*"),
            ("c.timezone", "Europe/Berlin"),
        ]);
        assert_eq!(
            Json::Object(cron.body().unwrap()),
            json!({"task": "t", "crontab": {"minute": "*/15", "hour": "9-17", "day_of_week": "mon-fri"},
                "timezone": "Europe/Berlin", "dst": {"gap": "later", "fold": "first"},
                "options": {"expires": "2027-01-01T00:00:00Z"}, "end_at": "2027-01-01T00:00:00Z"})
        );
        let bad = row(&[("t.task", "t"), ("t.args", "nope"), ("t.headers", "{}")]);
        let why = bad.body().unwrap_err();
        assert_eq!(
            why,
            [
                "no schedule: none of interval, crontab, solar, clocked is set",
                "t.args: not JSON a list"
            ]
        );
    }

    #[test]
    fn the_query_formats_instants_per_database() {
        assert!(select(Kind::Postgres).contains(r#"to_char(t.expires AT TIME ZONE 'UTC'"#));
        assert!(select(Kind::MySql).contains("CAST(t.id AS CHAR)"));
        assert!(select(Kind::Sqlite).contains("CAST(k.clocked_time AS TEXT)"));
    }
}
