//! The schedule of an entry: which kind it gives (`cron`, `crontab`,
//! `every`, `solar` or `at`) and that kind's value.

use jiff::tz::TimeZone;

use super::checker::{Checker, join, render_scalar};
use super::hints::suggest;
use crate::duration;
use crate::schedule::{
    Cron, Crontab, CrontabFields, Interval, Relative, Schedule, Solar, SolarError, SolarEvent,
};
use crate::syntax::{Node, Pos, Value};

/// The keys that give an entry's schedule, one per kind.
pub(super) const KINDS: &[&str] = &["cron", "crontab", "every", "solar", "at"];

/// The schedule of the entry `node` (a mapping), which must give exactly
/// one of [`KINDS`]. A missing one is reported at `name_pos`.
pub(super) fn parse_kind(
    c: &mut Checker,
    node: &Node,
    name_pos: Pos,
    path: &str,
    tz: &TimeZone,
) -> Option<Schedule> {
    let kinds: Vec<&str> = KINDS
        .iter()
        .copied()
        .filter(|k| node.get(k).is_some())
        .collect();
    match kinds.as_slice() {
        [] => {
            c.err_at(
                name_pos,
                path,
                "no schedule: give exactly one of cron, crontab, every, solar, at",
            );
            None
        }
        [kind] => {
            let n = node.get(kind).expect("present");
            let schedule = parse_schedule(c, kind, n, &join(path, kind), tz);
            relative(c, node, path, schedule)
        }
        many => {
            let second = node.get(many[1]).expect("present");
            c.err(
                second,
                path,
                format!(
                    "more than one schedule kind ({}): give exactly one",
                    many.join(", ")
                ),
            );
            None
        }
    }
}

/// `relative: true` (Celery's `relative=True`) turns an `every` into a
/// [`Relative`]; it applies to nothing else.
fn relative(c: &mut Checker, node: &Node, path: &str, s: Option<Schedule>) -> Option<Schedule> {
    let Some(n) = node.get("relative") else {
        return s;
    };
    let p = join(path, "relative");
    match (c.bool(n, &p)?, s) {
        (false, s) => s,
        (true, Some(Schedule::Every(i))) => Some(Schedule::Relative(Relative { every: i.every })),
        (true, Some(_)) => {
            c.err(n, &p, "relative applies only to `every` schedules");
            None
        }
        (true, None) => None,
    }
}

/// The value `n` of the schedule key `kind`; `at` is read in `tz`.
fn parse_schedule(
    c: &mut Checker,
    kind: &str,
    n: &Node,
    path: &str,
    tz: &TimeZone,
) -> Option<Schedule> {
    match kind {
        "cron" => cron(c, n, path),
        "crontab" => crontab(c, n, path),
        "every" => every(c, n, path),
        "solar" => solar(c, n, path),
        _ => c.instant(n, path, tz).map(Schedule::At),
    }
}

/// `cron`: an expression of five or six fields, or a macro.
fn cron(c: &mut Checker, n: &Node, path: &str) -> Option<Schedule> {
    let expr = c.string(n, path)?;
    match Cron::parse(&expr) {
        Ok(cron) => Some(Schedule::Cron { expr, cron }),
        Err(e) => {
            c.err(n, path, format!("invalid cron expression `{expr}`: {e}"));
            None
        }
    }
}

/// The fields of a Celery `crontab`, by name.
const CRONTAB_KEYS: &[&str] = &[
    "minute",
    "hour",
    "day_of_week",
    "day_of_month",
    "month_of_year",
];

/// `crontab`: Celery's crontab fields, each a string, number or list.
fn crontab(c: &mut Checker, n: &Node, path: &str) -> Option<Schedule> {
    let Value::Map(_) = &n.value else {
        c.mismatch(n, path, "a mapping of crontab fields");
        return None;
    };
    c.known_keys(n, path, CRONTAB_KEYS);
    let f = crontab_fields(c, n, path)?;
    match Crontab::parse(&f) {
        Ok(crontab) => Some(Schedule::Crontab {
            fields: Box::new(f),
            crontab,
        }),
        Err(e) => {
            let at = n.get(e.field).unwrap_or(n);
            c.err(at, &join(path, e.field), format!("invalid crontab: {e}"));
            None
        }
    }
}

/// The crontab fields of `n` as text (a list joined by commas); `None`
/// when any is not a string, number or list.
fn crontab_fields(c: &mut Checker, n: &Node, path: &str) -> Option<CrontabFields> {
    let mut f = CrontabFields::default();
    let mut bad = false;
    for key in CRONTAB_KEYS {
        let Some(v) = n.get(key) else { continue };
        let text = match &v.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Seq(items) => {
                let parts: Vec<String> = items.iter().map(render_scalar).collect();
                parts.join(",")
            }
            _ => {
                c.mismatch(v, &join(path, key), "a string or number");
                bad = true;
                continue;
            }
        };
        match *key {
            "minute" => f.minute = text,
            "hour" => f.hour = text,
            "day_of_week" => f.day_of_week = text,
            "day_of_month" => f.day_of_month = text,
            _ => f.month_of_year = text,
        }
    }
    (!bad).then_some(f)
}

/// `every`: a positive duration.
fn every(c: &mut Checker, n: &Node, path: &str) -> Option<Schedule> {
    let d = c.duration(n, path)?;
    if !d.is_positive() {
        c.err(
            n,
            path,
            format!("interval must be positive, found {}", duration::format(d)),
        );
        return None;
    }
    Some(Schedule::Every(Interval { every: d }))
}

/// `solar`: an event at a latitude and longitude.
fn solar(c: &mut Checker, n: &Node, path: &str) -> Option<Schedule> {
    let Value::Map(_) = &n.value else {
        c.mismatch(n, path, "a mapping {event, latitude, longitude}");
        return None;
    };
    c.known_keys(n, path, &["event", "latitude", "longitude"]);
    let event = solar_event(c, n, path);
    let mut coord = |key: &str| match n.get(key) {
        Some(v) => c.number(v, &join(path, key)).map(|x| (x, v)),
        None => {
            c.err(n, path, format!("missing `{key}`"));
            None
        }
    };
    let lat = coord("latitude");
    let lon = coord("longitude");
    let (event, (lat, lat_node), (lon, lon_node)) = (event?, lat?, lon?);
    match Solar::new(event, lat, lon) {
        Ok(s) => Some(Schedule::Solar(s)),
        Err(e) => {
            let (node, key) = match e {
                SolarError::Latitude(_) => (lat_node, "latitude"),
                SolarError::Longitude(_) => (lon_node, "longitude"),
            };
            c.err(node, &join(path, key), e.to_string());
            None
        }
    }
}

/// `solar.event`, by name, with a hint for a misspelt one.
fn solar_event(c: &mut Checker, n: &Node, path: &str) -> Option<SolarEvent> {
    let Some(e) = n.get("event") else {
        c.err(n, path, "missing `event`");
        return None;
    };
    let s = c.string(e, &join(path, "event"))?;
    let ev = SolarEvent::from_name(&s);
    if ev.is_none() {
        let names: Vec<&str> = SolarEvent::ALL.iter().map(|e| e.name()).collect();
        let hint = suggest(&s, &names)
            .map(|h| format!("did you mean `{h}`? "))
            .unwrap_or_default();
        c.err(
            e,
            &join(path, "event"),
            format!(
                "unknown solar event `{s}`; {hint}expected one of: {}",
                names.join(", ")
            ),
        );
    }
    ev
}
