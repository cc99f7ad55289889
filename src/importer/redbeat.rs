//! `metronome import redbeat`: RedBeat's Redis keys as an [`Import`].
//!
//! RedBeat keeps each entry in the hash `<prefix><name>` (`definition`: JSON
//! `{name, task, args, kwargs, options, schedule, enabled}`; `meta`:
//! `{last_run_at, total_run_count}`) and lists them in the sorted set
//! `<prefix>:schedule`; its JSON marks values with `__type__`
//! (`redbeat/decoder.py`): `interval {every, relative}`, `crontab` (the
//! `_orig_*` fields), `rrule` (dateutil's fields, `dtstart`/`until` as UNIX
//! seconds with a fixed offset), `datetime`. Crontabs run in the Celery
//! app's zone, which RedBeat does not store: `--timezone` gives it.

use jiff::{SignedDuration, Timestamp};
use redis::AsyncCommands;
use serde_json::{Map, Value as Json, json};

use super::writer::body;
use super::{Import, ImportError, Imported};
use crate::celery::mapping;
use crate::redact::mask_url;

/// One stored entry: its key, and the `definition` and `meta` fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub key: String,
    pub definition: Option<String>,
    pub meta: Option<String>,
}

/// Every entry listed in `<prefix>:schedule`, in score order.
pub async fn read(url: &str, prefix: &str) -> Result<Vec<Stored>, ImportError> {
    let err = |e: redis::RedisError| ImportError::Redis(format!("{}: {e}", mask_url(url)));
    let client = redis::Client::open(url).map_err(err)?;
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .map_err(err)?;
    let keys: Vec<String> = con
        .zrange(format!("{prefix}:schedule"), 0, -1)
        .await
        .map_err(err)?;
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.hget(k, "definition").hget(k, "meta");
        }
        let fields: Vec<Option<String>> = pipe.query_async(&mut con).await.map_err(err)?;
        for (k, pair) in chunk.iter().zip(fields.chunks(2)) {
            out.push(Stored {
                key: k.clone(),
                definition: pair[0].clone(),
                meta: pair[1].clone(),
            });
        }
    }
    Ok(out)
}

/// The import of `stored`, read at `url` under `prefix`; `timezone` is the
/// Celery app's zone, in which RedBeat's crontabs run.
pub fn convert(stored: &[Stored], url: &str, prefix: &str, timezone: Option<&str>) -> Import {
    let mut out = Import {
        header: vec![
            format!(
                "Imported by `metronome import redbeat --redis {} --key-prefix {prefix}`.",
                mask_url(url)
            ),
            "RedBeat stores no zone: crontabs run in the app's zone, given with --timezone.".into(),
        ],
        timezone: timezone.map(str::to_string),
        ..Default::default()
    };
    for s in stored {
        let item = format!(
            "{} ({})",
            s.key,
            s.key.strip_prefix(prefix).unwrap_or(&s.key)
        );
        match entry(s) {
            Ok(e) => out.entries.push(e),
            Err(why) => out.unsupported(item, why.join("; ")),
        }
    }
    out
}

fn entry(s: &Stored) -> Result<Imported, Vec<String>> {
    let def: Map<String, Json> = s
        .definition
        .as_deref()
        .ok_or("the hash has no `definition`")
        .and_then(|d| serde_json::from_str(d).map_err(|_| "`definition` is not JSON"))
        .map_err(|e| vec![e.to_string()])?;
    let meta: Map<String, Json> = s
        .meta
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    let name = def.get("name").and_then(Json::as_str).unwrap_or_default();
    let last = meta.get("last_run_at").and_then(|d| datetime(d).ok());
    let mut why = Vec::new();
    let mut b = body([("task", def.get("task").cloned().unwrap_or(Json::Null))]);
    match schedule(def.get("schedule").unwrap_or(&Json::Null), last) {
        Ok(pairs) => b.extend(pairs),
        Err(w) => why.push(w),
    }
    for k in ["args", "kwargs"] {
        match def.get(k) {
            Some(Json::Array(a)) if a.is_empty() => {}
            Some(Json::Object(m)) if m.is_empty() => {}
            Some(v @ (Json::Array(_) | Json::Object(_))) => {
                b.insert(k.into(), v.clone());
            }
            None | Some(Json::Null) => {}
            Some(v) => why.push(format!("{k}: expected a list or mapping, found {v}")),
        }
    }
    let options = def
        .get("options")
        .and_then(Json::as_object)
        .cloned()
        .unwrap_or_default();
    match mapping::convert(&options) {
        Ok(o) if o.is_empty() => {}
        Ok(o) => {
            b.insert("options".into(), Json::Object(o));
        }
        Err(w) => why.extend(w),
    }
    if def.get("enabled") == Some(&Json::Bool(false)) {
        b.insert("enabled".into(), json!(false));
    }
    if let Err(e) = crate::entry::check_name(name) {
        why.push(e.to_string());
    }
    if !why.is_empty() {
        return Err(why);
    }
    let mut comments = vec![format!("from the RedBeat key {}", s.key)];
    if !meta.is_empty() {
        comments.push(format!("meta: {}", Json::Object(meta)));
    }
    Ok(Imported {
        name: name.to_string(),
        comments,
        body: b,
    })
}

/// The schedule keys for RedBeat's `schedule`; an interval is anchored at
/// its last run so it keeps its phase (RedBeat runs it at last + every).
fn schedule(s: &Json, last: Option<Timestamp>) -> Result<Vec<(String, Json)>, String> {
    let get = |k: &str| s.get(k).cloned().unwrap_or(Json::Null);
    match s.get("__type__").and_then(Json::as_str) {
        Some("interval") => {
            let every = get("every")
                .as_f64()
                .filter(|e| *e > 0.0)
                .ok_or("an interval that never runs")?;
            let mut v = vec![("every".into(), json!(every))];
            if get("relative") == Json::Bool(true) {
                v.push(("relative".into(), json!(true)));
            } else if let Some(l) = last {
                v.push(("start_at".into(), json!(l.to_string())));
            }
            Ok(v)
        }
        Some("crontab") => {
            let v = mapping::crontab_keys(|f| s.get(f).cloned());
            Ok(v)
        }
        Some("rrule") => rrule(s),
        other => Err(format!(
            "schedule type {} has no equivalent",
            other.map_or("(none)".to_string(), |t| format!("`{t}`"))
        )),
    }
}

/// A plain rrule (a frequency, an interval, a start, and a count or an
/// end) is an anchored `every`; `count: 1` is `at`. One with any `by*` rule
/// or a calendar frequency (monthly, yearly) has no equivalent.
fn rrule(s: &Json) -> Result<Vec<(String, Json)>, String> {
    let by = [
        "bysetpos",
        "bymonth",
        "bymonthday",
        "byyearday",
        "byeaster",
        "byweekno",
        "byweekday",
        "byhour",
        "byminute",
        "bysecond",
    ];
    if let Some(k) = by.iter().find(|k| s.get(**k).is_some_and(|v| !v.is_null())) {
        return Err(format!(
            "an rrule with `{k}` has no equivalent; write it as a crontab"
        ));
    }
    // dateutil: YEARLY=0 … SECONDLY=6.
    let unit = match s.get("freq").and_then(Json::as_i64) {
        Some(3) => 86_400,
        Some(4) => 3600,
        Some(5) => 60,
        Some(6) => 1,
        Some(2) => 7 * 86_400,
        f => {
            return Err(format!(
                "an rrule of frequency {f:?} (monthly or yearly) has no equivalent"
            ));
        }
    };
    let interval = s.get("interval").and_then(Json::as_i64).unwrap_or(1).max(1);
    let step = SignedDuration::from_secs(unit * interval);
    let start = s
        .get("dtstart")
        .and_then(Json::as_f64)
        .ok_or("an rrule without dtstart starts when it was built; it has no stored anchor")?;
    let start = Timestamp::from_second(start as i64).map_err(|e| e.to_string())?;
    let count = s.get("count").and_then(Json::as_i64);
    if count == Some(1) {
        return Ok(vec![("at".into(), json!(start.to_string()))]);
    }
    let mut v = vec![
        ("every".into(), json!(step.as_secs())),
        ("start_at".into(), json!(start.to_string())),
    ];
    let last = match (count, s.get("until").and_then(Json::as_f64)) {
        (Some(n), _) => start.checked_add(step * (n.max(1) - 1) as i32).ok(),
        (None, Some(u)) => Timestamp::from_second(u as i64).ok(),
        (None, None) => None,
    };
    if let Some(l) = last {
        // rrule's end is inclusive, `end_at` is not.
        let end = l
            .checked_add(SignedDuration::from_secs(1))
            .map_err(|e| e.to_string())?;
        v.push(("end_at".into(), json!(end.to_string())));
    }
    Ok(v)
}

/// RedBeat's `datetime`: fields, and a zone as an IANA name, an offset in
/// seconds, or `UTC`.
fn datetime(d: &Json) -> Result<Timestamp, String> {
    let n = |k: &str| d.get(k).and_then(Json::as_i64).unwrap_or(0);
    let civil = jiff::civil::DateTime::new(
        n("year") as i16,
        n("month") as i8,
        n("day") as i8,
        n("hour") as i8,
        n("minute") as i8,
        n("second") as i8,
        (n("microsecond") * 1000) as i32,
    )
    .map_err(|e| e.to_string())?;
    let tz = match d.get("timezone") {
        Some(Json::String(z)) => jiff::tz::TimeZone::get(z).map_err(|e| e.to_string())?,
        Some(Json::Number(secs)) => jiff::tz::TimeZone::fixed(
            jiff::tz::Offset::from_seconds(secs.as_f64().unwrap_or(0.0) as i32)
                .map_err(|e| e.to_string())?,
        ),
        _ => jiff::tz::TimeZone::UTC,
    };
    civil
        .to_zoned(tz)
        .map(|z| z.timestamp())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrules_that_are_intervals_convert_and_others_say_why() {
        let r =
            rrule(&json!({"freq": 5, "interval": 15, "dtstart": 1767225600, "count": 4})).unwrap();
        assert_eq!(
            r,
            vec![
                ("every".into(), json!(900)),
                ("start_at".into(), json!("2026-01-01T00:00:00Z")),
                ("end_at".into(), json!("2026-01-01T00:45:01Z")),
            ]
        );
        assert_eq!(
            rrule(&json!({"freq": 3, "dtstart": 1767225600, "count": 1})).unwrap(),
            vec![("at".into(), json!("2026-01-01T00:00:00Z"))]
        );
        assert!(
            rrule(&json!({"freq": 1, "dtstart": 1}))
                .unwrap_err()
                .contains("monthly")
        );
        assert!(
            rrule(&json!({"freq": 3, "byweekday": [{"__type__": "weekday", "wkday": 0}]}))
                .unwrap_err()
                .contains("byweekday")
        );
    }

    #[test]
    fn datetimes_in_every_zone_form() {
        let base = json!({"year": 2026, "month": 1, "day": 1, "hour": 10, "minute": 0,
            "second": 0, "microsecond": 0});
        let with = |tz: Json| {
            let mut d = base.clone();
            d["timezone"] = tz;
            datetime(&d).unwrap().to_string()
        };
        assert_eq!(with(json!("Europe/Berlin")), "2026-01-01T09:00:00Z");
        assert_eq!(with(json!(7200.0)), "2026-01-01T08:00:00Z");
        assert_eq!(with(json!("UTC")), "2026-01-01T10:00:00Z");
    }
}
