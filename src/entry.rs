//! A schedule entry and its validation.
//!
//! Every source (YAML files, the database, the HTTP API) hands an entry over
//! as a [`Node`] tree, and [`parse_entry`] turns it into an [`Entry`] or a
//! list of [`FieldError`]s naming each bad field. There is one validator, so
//! the same input is accepted or refused the same way wherever it comes from.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value as Json};

use crate::duration;
use crate::schedule::{
    Cron, Crontab, CrontabFields, DstRule, Fold, Gap, Interval, Schedule, Solar, SolarError,
    SolarEvent,
};
use crate::source::yaml::node::{Node, Pos, Value};

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

/// Where an entry was defined, for error messages and the API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Origin {
    /// A file path, or a label such as `database` or `api`.
    pub source: std::sync::Arc<str>,
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
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub task: String,
    pub schedule: Schedule,
    pub timezone_name: String,
    pub timezone: TimeZone,
    /// The DST rule in force: the entry's `dst` over the kind's default.
    pub dst: DstRule,
    pub args: Vec<Json>,
    pub kwargs: Map<String, Json>,
    /// Options after merging the entry's own over the matching route over
    /// the file's defaults.
    pub options: Options,
    pub enabled: bool,
    pub start_at: Option<Timestamp>,
    pub end_at: Option<Timestamp>,
    pub misfire: Misfire,
    pub grace: Option<SignedDuration>,
    pub jitter: Option<SignedDuration>,
    pub origin: Origin,
}

impl Entry {
    /// A key that changes whenever the entry's times change: schedule, zone,
    /// DST rule, bounds or jitter. A changed key means "a new schedule".
    /// Sixteen hex digits: small enough to keep per entry at scale.
    pub fn timing_key(&self) -> String {
        use std::fmt::Write;
        // Hashed as it is formatted: the same bytes as formatting the text
        // first, without building it.
        let mut h = Fnv1a(FNV_OFFSET);
        write!(
            h,
            "{}|{}|{:?}|{:?}|{:?}|{:?}",
            self.schedule.to_json(),
            self.timezone_name,
            self.dst,
            self.start_at,
            self.end_at,
            self.jitter
        )
        .expect("hashing cannot fail");
        format!("{:016x}", h.0)
    }

    /// The fixed delay this entry's runs get from `jitter`: a hash of the
    /// name mapped into `[0, jitter)`, whole milliseconds.
    pub fn jitter_offset(&self) -> SignedDuration {
        let Some(j) = self.jitter else {
            return SignedDuration::ZERO;
        };
        let ms = j.as_millis();
        if ms <= 0 {
            return SignedDuration::ZERO;
        }
        SignedDuration::from_millis((fnv1a(self.name.as_bytes()) % ms as u64) as i64)
    }

    /// The first nominal run time strictly after `after`, within
    /// `start_at`/`end_at`. `anchor` is the interval anchor (ignored by other
    /// kinds); `start_at` takes its place when set.
    pub fn next_after(&self, anchor: Timestamp, after: Timestamp) -> Option<Timestamp> {
        let after = match self.start_at {
            // `start_at` itself is allowed: search from just before it.
            Some(s) if s > after => s.checked_sub(SignedDuration::from_nanos(1)).ok()?,
            _ => after,
        };
        let anchor = self.start_at.unwrap_or(anchor);
        let next = self
            .schedule
            .next_after(&self.timezone, self.dst, anchor, after)?;
        match self.end_at {
            Some(end) if next >= end => None,
            _ => Some(next),
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits: stable across processes, platforms and releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a(FNV_OFFSET);
    h.add(bytes);
    h.0
}

/// FNV-1a fed by `write!`.
struct Fnv1a(u64);

impl Fnv1a {
    fn add(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl std::fmt::Write for Fnv1a {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.add(s.as_bytes());
        Ok(())
    }
}

/// A problem with one field, located in its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub pos: Pos,
    /// Dotted path of the field, e.g. `schedules.nightly.options.priority`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// File-level settings an entry inherits.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The zone for entries without their own (`None` = UTC).
    pub timezone: Option<(String, TimeZone)>,
    /// `defaults`: options merged under every entry's.
    pub defaults: Options,
    /// `routes`: task-name glob and its options; the first match applies.
    pub routes: Vec<(String, Options)>,
    /// Label used in [`Origin`].
    pub source: std::sync::Arc<str>,
}

/// Collects errors while walking a node tree.
pub(crate) struct Checker<'a> {
    pub errors: &'a mut Vec<FieldError>,
}

impl Checker<'_> {
    pub fn err(&mut self, node: &Node, path: &str, message: impl Into<String>) {
        self.err_at(node.pos, path, message);
    }

    pub fn err_at(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            pos,
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// Reports keys of `map` outside `allowed`, suggesting the closest.
    pub fn known_keys(&mut self, map: &Node, path: &str, allowed: &[&str]) {
        let Value::Map(pairs) = &map.value else {
            return;
        };
        for (k, _) in pairs {
            let key = k
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| render_scalar(k));
            if !allowed.contains(&key.as_str()) {
                let hint = suggest(&key, allowed)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                let p = join(path, &key);
                self.errors.push(FieldError {
                    pos: k.pos,
                    path: p,
                    message: format!(
                        "unknown key `{key}`{hint} (expected one of: {})",
                        allowed.join(", ")
                    ),
                });
            }
        }
    }

    pub fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.err(
                    node,
                    path,
                    format!("expected a string, found {}", node.type_name()),
                );
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            _ => {
                self.err(
                    node,
                    path,
                    format!("expected true or false, found {}", node.type_name()),
                );
                None
            }
        }
    }

    pub fn number(&mut self, node: &Node, path: &str) -> Option<f64> {
        match &node.value {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) if f.is_finite() => Some(*f),
            _ => {
                self.err(
                    node,
                    path,
                    format!("expected a number, found {}", node.type_name()),
                );
                None
            }
        }
    }

    /// A duration: a number of seconds or text like `1h30m`.
    pub fn duration(&mut self, node: &Node, path: &str) -> Option<SignedDuration> {
        let r = match &node.value {
            Value::Int(i) => Ok(SignedDuration::from_secs(*i)),
            Value::Float(f) => {
                duration::from_secs_f64(*f).ok_or_else(|| "the number is out of range".to_string())
            }
            Value::Str(s) => duration::parse(s).map_err(|e| e.to_string()),
            _ => Err(format!(
                "expected a duration such as 30s or 1h30m, found {}",
                node.type_name()
            )),
        };
        r.map_err(|m| self.err(node, path, m)).ok()
    }

    /// An instant: RFC 3339 with an offset, or a civil date-time read in `tz`.
    pub fn instant(&mut self, node: &Node, path: &str, tz: &TimeZone) -> Option<Timestamp> {
        let text = self.string(node, path)?;
        if let Ok(ts) = text.parse::<Timestamp>() {
            return Some(ts);
        }
        match text.parse::<jiff::civil::DateTime>() {
            Ok(dt) => match dt.to_zoned(tz.clone()) {
                Ok(z) => Some(z.timestamp()),
                Err(e) => {
                    self.err(node, path, format!("invalid instant `{text}`: {e}"));
                    None
                }
            },
            Err(_) => {
                self.err(
                    node,
                    path,
                    format!("invalid instant `{text}`; expected RFC 3339 such as 2026-12-01T09:00:00+01:00"),
                );
                None
            }
        }
    }

    pub fn timezone(&mut self, node: &Node, path: &str) -> Option<(String, TimeZone)> {
        let name = self.string(node, path)?;
        match TimeZone::get(&name) {
            Ok(tz) => Some((name, tz)),
            Err(_) => {
                self.err(
                    node,
                    path,
                    format!(
                        "unknown time zone `{name}`; expected an IANA name such as Europe/Berlin"
                    ),
                );
                None
            }
        }
    }

    pub fn options(&mut self, node: &Node, path: &str) -> Options {
        let mut o = Options::default();
        let Value::Map(pairs) = &node.value else {
            self.err(
                node,
                path,
                format!("expected a mapping of options, found {}", node.type_name()),
            );
            return o;
        };
        const KEYS: &[&str] = &[
            "queue",
            "exchange",
            "routing_key",
            "priority",
            "expires",
            "headers",
            "time_limit",
            "soft_time_limit",
        ];
        self.known_keys(node, path, KEYS);
        for (k, v) in pairs {
            let Some(key) = k.as_str() else { continue };
            let p = join(path, key);
            match key {
                "queue" => o.queue = self.string(v, &p),
                "exchange" => o.exchange = self.string(v, &p),
                "routing_key" => o.routing_key = self.string(v, &p),
                "priority" => match &v.value {
                    Value::Int(i) if (0..=255).contains(i) => o.priority = Some(*i as u8),
                    Value::Int(i) => {
                        self.err(v, &p, format!("priority {i} is out of range 0..=255"))
                    }
                    _ => self.err(
                        v,
                        &p,
                        format!("expected an integer 0..=255, found {}", v.type_name()),
                    ),
                },
                "expires" => {
                    o.expires = match &v.value {
                        Value::Str(s) if s.parse::<Timestamp>().is_ok() => {
                            s.parse().ok().map(Expires::At)
                        }
                        _ => self.duration(v, &p).and_then(|d| {
                            if d.is_positive() {
                                Some(Expires::After(d))
                            } else {
                                self.err(v, &p, "expires must be positive");
                                None
                            }
                        }),
                    }
                }
                "time_limit" | "soft_time_limit" => {
                    let n = self.number(v, &p);
                    if n.is_some_and(|n| n <= 0.0) {
                        self.err(v, &p, format!("{key} must be positive"));
                    }
                    if key == "time_limit" {
                        o.time_limit = n;
                    } else {
                        o.soft_time_limit = n;
                    }
                }
                "headers" => match v.to_json() {
                    Json::Object(m) => o.headers = m,
                    _ => self.err(
                        v,
                        &p,
                        format!("expected a mapping of headers, found {}", v.type_name()),
                    ),
                },
                _ => {}
            }
        }
        o
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn render_scalar(n: &Node) -> String {
    match n.to_json() {
        Json::String(s) => s,
        other => other.to_string(),
    }
}

/// The allowed word closest to `word`, if it is close enough to be a typo.
pub(crate) fn suggest<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (levenshtein(word, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Shell-style glob match with `*` and `?`, as Celery's `task_routes`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The keys an entry may have.
pub const ENTRY_KEYS: &[&str] = &[
    "task",
    "cron",
    "crontab",
    "every",
    "solar",
    "at",
    "timezone",
    "args",
    "kwargs",
    "options",
    "enabled",
    "start_at",
    "end_at",
    "misfire",
    "grace",
    "jitter",
    "dst",
    "description",
];
const KINDS: &[&str] = &["cron", "crontab", "every", "solar", "at"];

/// Checks an entry name: used in URLs and logs, so printable and bounded.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("schedule name must not be empty".into());
    }
    if name.chars().count() > 200 {
        return Err("schedule name is longer than 200 characters".into());
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err(format!(
            "schedule name {name:?} contains `/` or a control character"
        ));
    }
    Ok(())
}

/// Validates one entry. `path` prefixes field names in errors (empty for
/// the HTTP API). Returns `None` when any error was recorded.
pub fn parse_entry(
    name: &str,
    name_pos: Pos,
    node: &Node,
    ctx: &Context,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Entry> {
    let before = errors.len();
    let mut c = Checker { errors };
    if let Err(m) = check_name(name) {
        c.errors.push(FieldError {
            pos: name_pos,
            path: path.to_string(),
            message: m,
        });
    }
    if !matches!(node.value, Value::Map(_)) {
        c.err(
            node,
            path,
            format!(
                "expected a mapping with `task` and a schedule, found {}",
                node.type_name()
            ),
        );
        return None;
    }
    c.known_keys(node, path, ENTRY_KEYS);
    let field = |k: &str| node.get(k);
    let p = |k: &str| join(path, k);

    let task = match field("task") {
        Some(t) => c.string(t, &p("task")).filter(|t| {
            let ok = !t.trim().is_empty();
            if !ok {
                c.err(node, &p("task"), "task name must not be empty");
            }
            ok
        }),
        None => {
            c.err_at(
                name_pos,
                path,
                "missing `task`: the registered Celery task name",
            );
            None
        }
    };

    let (tz_name, tz) = match field("timezone") {
        Some(n) => c
            .timezone(n, &p("timezone"))
            .unwrap_or_else(|| ("UTC".into(), TimeZone::UTC)),
        None => ctx
            .timezone
            .clone()
            .unwrap_or_else(|| ("UTC".into(), TimeZone::UTC)),
    };

    let kinds: Vec<&str> = KINDS
        .iter()
        .copied()
        .filter(|k| field(k).is_some())
        .collect();
    let schedule = match kinds.as_slice() {
        [] => {
            c.err_at(
                name_pos,
                path,
                "no schedule: give exactly one of cron, crontab, every, solar, at",
            );
            None
        }
        [kind] => {
            let n = field(kind).expect("present");
            parse_schedule(&mut c, kind, n, &p(kind), &tz)
        }
        many => {
            let second = field(many[1]).expect("present");
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
    };

    let args = match field("args") {
        None => Vec::new(),
        Some(n) => match n.to_json() {
            Json::Array(a) => a,
            _ => {
                c.err(
                    n,
                    &p("args"),
                    format!("expected a list, found {}", n.type_name()),
                );
                Vec::new()
            }
        },
    };
    let kwargs = match field("kwargs") {
        None => Map::new(),
        Some(n) => match n.to_json() {
            Json::Object(m) if matches!(n.value, Value::Map(_)) => m,
            _ => {
                c.err(
                    n,
                    &p("kwargs"),
                    format!("expected a mapping, found {}", n.type_name()),
                );
                Map::new()
            }
        },
    };
    let own = field("options")
        .map(|n| c.options(n, &p("options")))
        .unwrap_or_default();
    let route = task
        .as_deref()
        .and_then(|t| ctx.routes.iter().find(|(g, _)| glob_match(g, t)))
        .map(|(_, o)| o.over(&ctx.defaults))
        .unwrap_or_else(|| ctx.defaults.clone());
    let options = own.over(&route);

    let enabled = field("enabled")
        .map(|n| c.bool(n, &p("enabled")).unwrap_or(true))
        .unwrap_or(true);
    let start_at = field("start_at").and_then(|n| c.instant(n, &p("start_at"), &tz));
    let end_at = field("end_at").and_then(|n| c.instant(n, &p("end_at"), &tz));
    if let (Some(s), Some(e), Some(n)) = (start_at, end_at, field("end_at"))
        && e <= s
    {
        c.err(
            n,
            &p("end_at"),
            format!("end_at {e} is not after start_at {s}"),
        );
    }
    let misfire = match field("misfire") {
        None => Misfire::default(),
        Some(n) => match c.string(n, &p("misfire")).as_deref() {
            Some("skip") => Misfire::Skip,
            Some("once") => Misfire::Once,
            Some("all") => Misfire::All,
            Some(other) => {
                c.err(
                    n,
                    &p("misfire"),
                    format!("unknown misfire policy `{other}`; expected skip, once or all"),
                );
                Misfire::default()
            }
            None => Misfire::default(),
        },
    };
    let grace = field("grace").and_then(|n| {
        let d = c.duration(n, &p("grace"))?;
        if d.is_negative() {
            c.err(n, &p("grace"), "grace must not be negative");
            return None;
        }
        Some(d)
    });
    let jitter = field("jitter").and_then(|n| {
        let d = c.duration(n, &p("jitter"))?;
        if !d.is_positive() {
            c.err(n, &p("jitter"), "jitter must be positive");
            return None;
        }
        Some(d)
    });
    let fixed = schedule
        .as_ref()
        .and_then(|s| s.calendar())
        .map(|s| s.fixed_time)
        .unwrap_or(false);
    let mut dst = DstRule::default_for(fixed);
    if let Some(n) = field("dst") {
        parse_dst(&mut c, n, &p("dst"), &mut dst);
    }
    if let Some(n) = field("description") {
        c.string(n, &p("description"));
    }

    if c.errors.len() > before {
        return None;
    }
    Some(Entry {
        name: name.to_string(),
        task: task?,
        schedule: schedule?,
        timezone_name: tz_name,
        timezone: tz,
        dst,
        args,
        kwargs,
        options,
        enabled,
        start_at,
        end_at,
        misfire,
        grace,
        jitter,
        origin: Origin {
            source: ctx.source.clone(),
            pos: name_pos,
        },
    })
}

fn parse_dst(c: &mut Checker, n: &Node, path: &str, dst: &mut DstRule) {
    if !matches!(n.value, Value::Map(_)) {
        c.err(
            n,
            path,
            format!(
                "expected a mapping like {{gap: shift, fold: first}}, found {}",
                n.type_name()
            ),
        );
        return;
    }
    c.known_keys(n, path, &["gap", "fold"]);
    if let Some(g) = n.get("gap") {
        match c.string(g, &join(path, "gap")).as_deref() {
            Some("shift") => dst.gap = Gap::Shift,
            Some("skip") => dst.gap = Gap::Skip,
            Some(o) => c.err(
                g,
                &join(path, "gap"),
                format!("unknown gap rule `{o}`; expected shift or skip"),
            ),
            None => {}
        }
    }
    if let Some(f) = n.get("fold") {
        match c.string(f, &join(path, "fold")).as_deref() {
            Some("first") => dst.fold = Fold::First,
            Some("both") => dst.fold = Fold::Both,
            Some(o) => c.err(
                f,
                &join(path, "fold"),
                format!("unknown fold rule `{o}`; expected first or both"),
            ),
            None => {}
        }
    }
}

fn parse_schedule(
    c: &mut Checker,
    kind: &str,
    n: &Node,
    path: &str,
    tz: &TimeZone,
) -> Option<Schedule> {
    match kind {
        "cron" => {
            let expr = c.string(n, path)?;
            match Cron::parse(&expr) {
                Ok(cron) => Some(Schedule::Cron { expr, cron }),
                Err(e) => {
                    c.err(n, path, format!("invalid cron expression `{expr}`: {e}"));
                    None
                }
            }
        }
        "crontab" => {
            let Value::Map(_) = &n.value else {
                c.err(
                    n,
                    path,
                    format!(
                        "expected a mapping of crontab fields, found {}",
                        n.type_name()
                    ),
                );
                return None;
            };
            const KEYS: &[&str] = &[
                "minute",
                "hour",
                "day_of_week",
                "day_of_month",
                "month_of_year",
            ];
            c.known_keys(n, path, KEYS);
            let mut f = CrontabFields::default();
            let mut bad = false;
            for key in KEYS {
                let Some(v) = n.get(key) else { continue };
                let text = match &v.value {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    Value::Seq(items) => {
                        let parts: Vec<String> = items.iter().map(render_scalar).collect();
                        parts.join(",")
                    }
                    _ => {
                        c.err(
                            v,
                            &join(path, key),
                            format!("expected a string or number, found {}", v.type_name()),
                        );
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
            if bad {
                return None;
            }
            match Crontab::parse(&f) {
                Ok(crontab) => Some(Schedule::Crontab { fields: f, crontab }),
                Err(e) => {
                    let at = n.get(e.field).unwrap_or(n);
                    c.err(at, &join(path, e.field), format!("invalid crontab: {e}"));
                    None
                }
            }
        }
        "every" => {
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
        "solar" => {
            let Value::Map(_) = &n.value else {
                c.err(
                    n,
                    path,
                    format!(
                        "expected a mapping {{event, latitude, longitude}}, found {}",
                        n.type_name()
                    ),
                );
                return None;
            };
            c.known_keys(n, path, &["event", "latitude", "longitude"]);
            let names: Vec<&str> = SolarEvent::ALL.iter().map(|e| e.name()).collect();
            let event = match n.get("event") {
                Some(e) => c.string(e, &join(path, "event")).and_then(|s| {
                    let ev = SolarEvent::from_name(&s);
                    if ev.is_none() {
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
                }),
                None => {
                    c.err(n, path, "missing `event`");
                    None
                }
            };
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
        _ => c.instant(n, path, tz).map(Schedule::At),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(suggest("cronn", ENTRY_KEYS), Some("cron"));
        assert_eq!(suggest("kwarg", ENTRY_KEYS), Some("kwargs"));
        assert_eq!(suggest("timzone", ENTRY_KEYS), Some("timezone"));
        assert_eq!(suggest("zzzzzzzz", ENTRY_KEYS), None);
    }

    #[test]
    fn globs_match_like_fnmatch() {
        assert!(glob_match("app.tasks.email.*", "app.tasks.email.send"));
        assert!(!glob_match("app.tasks.email.*", "app.tasks.report"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("*.send*", "app.email.send_bulk"));
        assert!(!glob_match("a*b", "acd"));
    }

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

    #[test]
    fn timing_key_is_the_hash_of_its_text() {
        let e = sample();
        let text = format!(
            "{}|{}|{:?}|{:?}|{:?}|{:?}",
            e.schedule.to_json(),
            e.timezone_name,
            e.dst,
            e.start_at,
            e.end_at,
            e.jitter
        );
        assert_eq!(e.timing_key(), format!("{:016x}", fnv1a(text.as_bytes())));
    }

    #[test]
    fn jitter_is_stable_and_bounded() {
        let mut e = sample();
        e.jitter = Some(SignedDuration::from_secs(30));
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
            args: vec![],
            kwargs: Map::new(),
            options: Options::default(),
            enabled: true,
            start_at: None,
            end_at: None,
            misfire: Misfire::Once,
            grace: None,
            jitter: None,
            origin: Origin::default(),
        }
    }

    #[test]
    fn start_and_end_bound_the_runs() {
        let mut e = sample();
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        e.start_at = Some(t("2026-01-01T00:00:30Z"));
        e.end_at = Some(t("2026-01-01T00:02:30Z"));
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
