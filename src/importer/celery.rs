//! `metronome import celery`: what the embedded describer ([`SCRIPT`],
//! run by the user's Python) prints about a Celery app, as an [`Import`].
//!
//! What maps to what: a number or `timedelta` schedule is `every` (with
//! `relative: true` for `relative=True`), a `crontab` is `crontab` with its
//! `_orig_*` fields verbatim, `solar` is `solar`, django-celery-beat's
//! `clocked` is `at`; `timezone`/`enable_utc` give the file's `timezone`;
//! `task_routes` (dicts, lists of routers, globs and `re.compile()` keys)
//! become `routes` in Celery's order; `task_default_queue` is
//! `defaults.queue`; `beat_cron_starting_deadline` is each crontab's
//! `grace`; a registered task's own options (`@app.task(queue=…)`,
//! `task_default_priority`) are merged under the entry's as Celery does.

use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::writer::body;
use super::{Import, ImportError, Imported, Route};
use crate::celery::mapping as options;
use crate::entry::RoutePattern;

/// The Python script that describes a Celery app as JSON.
pub const SCRIPT: &str = include_str!("celery_app.py");

/// What the describer prints.
#[derive(Debug, Deserialize)]
pub struct Described {
    pub app: String,
    pub celery_version: String,
    pub timezone_setting: Option<String>,
    pub enable_utc: bool,
    pub timezone: Option<String>,
    pub timezone_repr: String,
    pub default_queue: String,
    pub default_exchange: Option<String>,
    pub default_exchange_type: Option<String>,
    pub default_routing_key: Option<String>,
    pub default_priority: Option<Json>,
    pub queue_max_priority: Option<Json>,
    pub cron_starting_deadline: Option<f64>,
    pub default_queue_exchange: Option<Map<String, Json>>,
    pub routes: Vec<RouteItem>,
    pub entries: Vec<DescribedEntry>,
}

/// One `task_routes` key, or a router that is not a mapping.
#[derive(Debug, Deserialize)]
pub struct RouteItem {
    pub router: usize,
    pub kind: Option<String>,
    pub pattern: Option<String>,
    pub flags: Option<i64>,
    pub value: Option<Json>,
    pub unsupported: Option<String>,
}

/// One `beat_schedule` entry.
#[derive(Debug, Deserialize)]
pub struct DescribedEntry {
    pub name: String,
    pub keys: Vec<String>,
    pub task: Option<String>,
    pub schedule: Map<String, Json>,
    pub args: Json,
    pub kwargs: Json,
    pub options: Map<String, Json>,
    pub task_options: Map<String, Json>,
    pub relative: bool,
    /// What `app.amqp.router.route()` gave: queue, exchange, routing_key, priority.
    pub route: Option<Map<String, Json>>,
    pub route_error: Option<String>,
    pub queue_exchange: Option<Map<String, Json>>,
}

/// Parses the describer's output.
pub fn parse(stdout: &str) -> Result<Described, ImportError> {
    serde_json::from_str(stdout).map_err(|e| ImportError::Describe(e.to_string()))
}

/// The keys a `beat_schedule` entry may have (`ScheduleEntry`'s).
const ENTRY_KEYS: &[&str] = &["task", "schedule", "args", "kwargs", "options", "relative"];

/// The import of a described app.
pub fn convert(d: &Described) -> Import {
    let mut out = Import {
        header: header(d),
        ..Default::default()
    };
    match &d.timezone {
        Some(tz) if tz != "UTC" => out.timezone = Some(tz.clone()),
        Some(_) => {}
        None => out.unsupported(
            "timezone",
            format!(
                "the app's zone {} has no IANA name (enable_utc=False and no `timezone`: the \
                 system zone); set `timezone`",
                d.timezone_repr
            ),
        ),
    }
    if d.default_queue != "celery" {
        out.defaults.insert("queue".into(), json!(d.default_queue));
    }
    if let Some(q) = &d.default_queue_exchange {
        for k in ["exchange", "routing_key"] {
            if let Some(v) = q.get(k) {
                out.defaults.insert(k.into(), v.clone());
            }
        }
    }
    routes(d, &mut out);
    for e in &d.entries {
        entry(d, e, &mut out);
    }
    out
}

fn header(d: &Described) -> Vec<String> {
    let mut h = vec![
        format!(
            "Imported by `metronome import celery --app {}` (Celery {}).",
            d.app, d.celery_version
        ),
        format!(
            "timezone: {}, enable_utc: {} -> {}",
            Json::from(d.timezone_setting.clone()),
            d.enable_utc,
            d.timezone.as_deref().unwrap_or("(no IANA name)")
        ),
        format!(
            "task_default_queue: {}, task_default_exchange: {} ({}), task_default_routing_key: {}",
            Json::from(d.default_queue.clone()),
            Json::from(d.default_exchange.clone()),
            d.default_exchange_type.as_deref().unwrap_or("direct"),
            Json::from(d.default_routing_key.clone())
        ),
    ];
    if let Some(p) = &d.default_priority {
        h.push(format!(
            "task_default_priority: {p} (Celery applies it to registered tasks only; merged into \
             their entries' options)"
        ));
    }
    if let Some(p) = &d.queue_max_priority {
        h.push(format!(
            "task_queue_max_priority: {p}: a broker setting here; run with \
             METRONOME_AMQP_MAX_PRIORITY={p} (or ?x-max-priority={p} on the broker URL)"
        ));
    }
    if let Some(s) = d.cron_starting_deadline {
        h.push(format!(
            "beat_cron_starting_deadline: {s} -> `grace` on every crontab entry"
        ));
    }
    h
}

/// `task_routes`, flattened in Celery's order: each router's exact names,
/// then its patterns, router by router.
fn routes(d: &Described, out: &mut Import) {
    for r in &d.routes {
        let item = format!("task_routes[{}]", r.router);
        if let Some(why) = &r.unsupported {
            out.unsupported(item, why.clone());
            continue;
        }
        let (Some(kind), Some(pattern)) = (r.kind.as_deref(), r.pattern.as_deref()) else {
            continue;
        };
        let item = format!("{item} {pattern:?}");
        let key = match route_key(kind, pattern, r.flags.unwrap_or(0)) {
            Ok(k) => k,
            Err(why) => {
                out.unsupported(item, why);
                continue;
            }
        };
        let raw = r.value.as_ref().and_then(Json::as_object).cloned();
        let opts = match raw.map(|m| options::convert(&m)) {
            Some(Ok(o)) => o,
            Some(Err(why)) => {
                out.unsupported(item, why.join("; "));
                continue;
            }
            None => {
                out.unsupported(item, "the route is neither a queue name nor a mapping");
                continue;
            }
        };
        out.routes.push(Route {
            key,
            options: opts,
            comment: format!("{item} ({kind})"),
        });
    }
}

/// The `routes` key for a Celery route key.
fn route_key(kind: &str, pattern: &str, flags: i64) -> Result<String, String> {
    let re = match kind {
        "exact" if !pattern.contains(['*', '?', '[']) => return Ok(pattern.to_string()),
        "exact" => regex::escape(pattern) + "$",
        "glob" if !pattern.contains('[') && !pattern.starts_with(RoutePattern::REGEX_PREFIX) => {
            return Ok(pattern.to_string());
        }
        "glob" => glob_regex(pattern),
        _ => python_regex(pattern, flags)?,
    };
    let key = format!("{}{re}", RoutePattern::REGEX_PREFIX);
    RoutePattern::parse(&key)
        .map(|_| key)
        .map_err(|e| format!("{e} (Python's `re` has syntax metronome's regular expressions lack)"))
}

/// `fnmatch.translate`, for globs with `[…]` classes.
fn glob_regex(glob: &str) -> String {
    let mut re = String::new();
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                let class: String = chars.by_ref().take_while(|c| *c != ']').collect();
                let class = class
                    .strip_prefix('!')
                    .map_or(class.clone(), |c| format!("^{c}"));
                re.push_str(&format!("[{class}]"));
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re + "$"
}

/// A Python `re` pattern with its flags as inline flags.
fn python_regex(pattern: &str, flags: i64) -> Result<String, String> {
    const KNOWN: [(i64, char); 4] = [(2, 'i'), (8, 'm'), (16, 's'), (64, 'x')];
    const UNICODE: i64 = 32;
    let rest = flags & !UNICODE & !KNOWN.iter().map(|(f, _)| f).sum::<i64>();
    if rest != 0 {
        return Err(format!(
            "regular expression flags {rest:#x} (re.ASCII, re.LOCALE or re.DEBUG) have no equivalent"
        ));
    }
    let inline: String = KNOWN
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, c)| *c)
        .collect();
    Ok(if inline.is_empty() {
        pattern.to_string()
    } else {
        format!("(?{inline}){pattern}")
    })
}

/// One `beat_schedule` entry into `out` (or its reasons into `unsupported`).
fn entry(d: &Described, e: &DescribedEntry, out: &mut Import) {
    let item = format!("beat_schedule[{:?}]", e.name);
    let mut why: Vec<String> = e
        .keys
        .iter()
        .filter(|k| !ENTRY_KEYS.contains(&k.as_str()))
        .map(|k| format!("unknown key `{k}` (Celery's ScheduleEntry refuses it too)"))
        .collect();
    let task = e.task.clone().unwrap_or_default();
    if task.is_empty() {
        why.push("no `task`".into());
    }
    let mut b = body([("task", json!(task))]);
    match schedule(&e.schedule, e.relative) {
        Ok(pairs) => b.extend(pairs),
        Err(w) => why.push(w),
    }
    if d.cron_starting_deadline.is_some() && b.contains_key("crontab") {
        b.insert("grace".into(), json!(d.cron_starting_deadline));
    }
    for (k, v) in [("args", &e.args), ("kwargs", &e.kwargs)] {
        match v {
            Json::Array(a) if a.is_empty() => {}
            Json::Object(m) if m.is_empty() => {}
            v if contains_marker(v) => why.push(format!("{k}: holds a value JSON cannot carry")),
            v => {
                b.insert(k.into(), v.clone());
            }
        }
    }
    let mut merged = e.task_options.clone();
    merged.extend(e.options.clone());
    if let Some(q) = &e.queue_exchange {
        for (k, v) in q {
            merged.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    match options::convert(&merged) {
        Ok(o) if o.is_empty() => {}
        Ok(o) => {
            b.insert("options".into(), Json::Object(o));
        }
        Err(w) => why.extend(w),
    }
    if let Some(err) = &e.route_error {
        why.push(format!("routing it raised {err}"));
    }
    if let Err(err) = crate::entry::check_name(&e.name) {
        why.push(err.to_string());
    }
    if !why.is_empty() {
        out.unsupported(item, why.join("; "));
        return;
    }
    let mut comments = vec![format!("from {item} of {}", d.app)];
    if !e.task_options.is_empty() {
        comments.push(format!(
            "options include the registered task's own: {}",
            Json::Object(e.task_options.clone())
        ));
    }
    if let Some(r) = &e.route {
        comments.push(format!("Celery routes it to {}", Json::Object(r.clone())));
    }
    out.entries.push(Imported {
        name: e.name.clone(),
        comments,
        body: b,
    });
}

/// The schedule keys for a described schedule, or why there are none.
fn schedule(s: &Map<String, Json>, relative: bool) -> Result<Vec<(String, Json)>, String> {
    let get = |k: &str| s.get(k).cloned().unwrap_or(Json::Null);
    if let Some(f) = s.get("nowfun").and_then(Json::as_str) {
        return Err(format!(
            "its schedule has a custom nowfun ({f}); give the zone as `timezone` instead"
        ));
    }
    match s.get("type").and_then(Json::as_str) {
        Some("interval") => {
            let secs = get("seconds").as_f64().unwrap_or(0.0);
            if secs <= 0.0 {
                return Err(format!("an interval of {secs} s never runs"));
            }
            let mut v = vec![("every".into(), json!(secs))];
            if relative || get("relative") == Json::Bool(true) {
                v.push(("relative".into(), json!(true)));
            }
            Ok(v)
        }
        Some("crontab") => {
            let mut v = options::crontab_keys(|f| s.get(f).cloned());
            match s.get("timezone") {
                Some(Json::String(tz)) => v.push(("timezone".into(), json!(tz))),
                Some(_) => return Err("its crontab class has a zone with no IANA name".into()),
                None => {}
            }
            Ok(v)
        }
        Some("solar") => Ok(vec![(
            "solar".into(),
            json!({"event": get("event"), "latitude": get("latitude"), "longitude": get("longitude")}),
        )]),
        Some("clocked") => {
            let at = options::expires(&get("at")).map_err(|e| format!("clocked_time: {e}"))?;
            Ok(vec![("at".into(), at)])
        }
        _ => Err(format!(
            "its schedule is a custom class ({}) with no equivalent",
            s.get("class").and_then(Json::as_str).unwrap_or("?")
        )),
    }
}

/// Whether `v` holds a describer marker anywhere.
fn contains_marker(v: &Json) -> bool {
    match v {
        Json::Array(a) => a.iter().any(contains_marker),
        Json::Object(m) => {
            m.keys().any(|k| k.starts_with("__") && k.ends_with("__"))
                || m.values().any(contains_marker)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys_keep_celery_semantics() {
        assert_eq!(route_key("exact", "a.b", 0).unwrap(), "a.b");
        assert_eq!(route_key("exact", "a?b", 0).unwrap(), r"re:a\?b$");
        assert_eq!(route_key("glob", "a.*", 0).unwrap(), "a.*");
        assert_eq!(route_key("glob", "a.[!x]*", 0).unwrap(), r"re:a\.[^x].*$");
        assert_eq!(
            route_key("regex", r"a\.(b|c)", 2 | 32).unwrap(),
            r"re:(?i)a\.(b|c)"
        );
        assert!(
            route_key("regex", r"(?P<x>a)(?P=x)", 32)
                .unwrap_err()
                .contains("lack")
        );
        assert!(
            route_key("regex", "a", 256)
                .unwrap_err()
                .contains("re.ASCII")
        );
    }

    #[test]
    fn schedules_map_or_say_why() {
        let m = |v: Json| v.as_object().unwrap().clone();
        assert_eq!(
            schedule(
                &m(json!({"type": "interval", "seconds": 3600.0, "relative": false})),
                true
            )
            .unwrap(),
            vec![
                ("every".into(), json!(3600.0)),
                ("relative".into(), json!(true))
            ]
        );
        let cron = schedule(
            &m(json!({"type": "crontab", "minute": 0, "hour": 0,
            "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"})),
            false,
        )
        .unwrap();
        assert_eq!(
            cron,
            vec![("crontab".into(), json!({"minute": 0, "hour": 0}))]
        );
        assert!(
            schedule(&m(json!({"type": "unsupported", "class": "x.Y"})), false)
                .unwrap_err()
                .contains("custom class (x.Y)")
        );
    }
}
