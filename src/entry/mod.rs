//! A schedule entry and its validation.
//!
//! Every source (YAML files, the database, the HTTP API) hands an entry over
//! as a [`Node`] tree, and [`parse_entry`] turns it into an [`Entry`] or a
//! list of [`FieldError`]s naming each bad field. There is one validator, so
//! the same input is accepted or refused the same way wherever it comes from.

use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value as Json};

use crate::duration;
use crate::schedule::{
    Cron, Crontab, CrontabFields, DstRule, Fold, Gap, Interval, Schedule, Solar, SolarError,
    SolarEvent,
};
use crate::syntax::{Node, Pos, Value};

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
    /// A key that changes whenever the entry's times change: schedule, zone,
    /// DST rule, bounds or jitter. A changed key means "a new schedule".
    ///
    /// It is the 64-bit FNV-1a hash of the text
    /// `{schedule.to_json()}|{zone}|{dst:?}|{start_at:?}|{end_at:?}|{jitter:?}`
    /// (stored as sixteen hex digits), fed piece by piece without building
    /// the JSON value or the text.
    pub fn timing_key(&self) -> u64 {
        use std::fmt::Write;
        let mut h = Fnv1a(FNV_OFFSET);
        hash_schedule_json(&mut h, &self.schedule);
        h.add(b"|");
        h.add(self.timezone_name.as_bytes());
        h.add(b"|");
        h.add(match (self.dst.gap, self.dst.fold) {
            (Gap::Shift, Fold::First) => b"DstRule { gap: Shift, fold: First }",
            (Gap::Shift, Fold::Both) => b"DstRule { gap: Shift, fold: Both }",
            (Gap::Skip, Fold::First) => b"DstRule { gap: Skip, fold: First }",
            (Gap::Skip, Fold::Both) => b"DstRule { gap: Skip, fold: Both }",
        });
        let t = &*self.timing;
        let opt = |h: &mut Fnv1a, v: Option<&dyn std::fmt::Debug>| match v {
            None => h.add(b"|None"),
            Some(v) => write!(h, "|Some({v:?})").expect("hashing cannot fail"),
        };
        opt(&mut h, t.start_at.as_ref().map(|v| v as _));
        opt(&mut h, t.end_at.as_ref().map(|v| v as _));
        opt(&mut h, t.jitter.as_ref().map(|v| v as _));
        h.0
    }

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
        SignedDuration::from_millis((fnv1a(self.name.as_bytes()) % ms as u64) as i64)
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

/// Feeds `h` the bytes of `s.to_json().to_string()` without building either.
fn hash_schedule_json(h: &mut Fnv1a, s: &Schedule) {
    let json = |h: &mut Fnv1a, v: &dyn erased::Ser| v.write(h);
    match s {
        Schedule::Cron { expr, .. } => {
            h.add(br#"{"cron":"#);
            json(h, expr);
        }
        Schedule::Crontab { fields, .. } => {
            h.add(br#"{"crontab":"#);
            json(h, &**fields);
        }
        Schedule::Every(i) => {
            h.add(br#"{"every":"#);
            json(h, &crate::duration::format(i.every));
        }
        Schedule::Solar(s) => {
            h.add(br#"{"solar":{"event":"#);
            json(h, &s.event.name());
            h.add(br#","latitude":"#);
            json(h, &s.latitude);
            h.add(br#","longitude":"#);
            json(h, &s.longitude);
            h.add(b"}");
        }
        Schedule::At(at) => {
            h.add(br#"{"at":"#);
            json(h, &at.to_string());
        }
    }
    h.add(b"}");
}

/// Serializing a value as compact JSON into the hasher, through one
/// non-generic signature.
mod erased {
    pub trait Ser {
        fn write(&self, h: &mut super::Fnv1a);
    }
    impl<T: serde::Serialize + ?Sized> Ser for T {
        fn write(&self, h: &mut super::Fnv1a) {
            serde_json::to_writer(h, self).expect("hashing cannot fail");
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

/// FNV-1a fed by `write!` or as an `io::Write`.
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

impl std::io::Write for Fnv1a {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.add(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An immutable string shared by every holder (an `Arc<str>` that reads,
/// compares, prints and serializes as the text). [`SharedStr::interned`]
/// gives equal texts one allocation.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SharedStr(Arc<str>);

impl SharedStr {
    /// The pooled copy of `s`: entries naming the same task or zone share
    /// it. The pool forgets texts no entry holds any more whenever it has
    /// doubled since it last looked, so it stays within twice the texts in
    /// use.
    pub fn interned(s: &str) -> SharedStr {
        let mut pool = POOL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(a) = pool.texts.get(s) {
            return SharedStr(a.clone());
        }
        if pool.texts.len() >= pool.prune_at {
            pool.texts.retain(|a| Arc::strong_count(a) > 1);
            pool.prune_at = (2 * pool.texts.len()).max(POOL_MIN);
        }
        let a: Arc<str> = s.into();
        pool.texts.insert(a.clone());
        SharedStr(a)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

struct Pool {
    texts: std::collections::HashSet<Arc<str>, crate::NameHasher>,
    prune_at: usize,
}

const POOL_MIN: usize = 1024;

static POOL: std::sync::LazyLock<std::sync::Mutex<Pool>> = std::sync::LazyLock::new(|| {
    std::sync::Mutex::new(Pool {
        texts: Default::default(),
        prune_at: POOL_MIN,
    })
});

impl std::ops::Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> SharedStr {
        SharedStr(s.into())
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> SharedStr {
        SharedStr(s.into())
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl std::fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for SharedStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for SharedStr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A value most entries leave at its default: one pointer, allocated only
/// when set. Reads see the default when unset; writes through `DerefMut`
/// allocate.
#[derive(Clone)]
pub struct Sparse<T: Rare>(Option<Box<T>>);

/// Types kept in a [`Sparse`]: a shared, immutable default.
pub trait Rare: Default + PartialEq + 'static {
    fn empty() -> &'static Self;
}

impl<T: Rare> Sparse<T> {
    /// `v`, stored only if it is not the default.
    pub fn new(v: T) -> Sparse<T> {
        if v == *T::empty() {
            Sparse(None)
        } else {
            Sparse(Some(Box::new(v)))
        }
    }
}

impl<T: Rare> Default for Sparse<T> {
    fn default() -> Self {
        Sparse(None)
    }
}

impl<T: Rare> From<T> for Sparse<T> {
    fn from(v: T) -> Sparse<T> {
        Sparse::new(v)
    }
}

impl<T: Rare> std::ops::Deref for Sparse<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_deref().unwrap_or(T::empty())
    }
}

impl<T: Rare> std::ops::DerefMut for Sparse<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Default::default)
    }
}

impl<T: Rare> PartialEq for Sparse<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Rare + std::fmt::Debug> std::fmt::Debug for Sparse<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: Rare + serde::Serialize> serde::Serialize for Sparse<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl Rare for Options {
    fn empty() -> &'static Options {
        static EMPTY: std::sync::LazyLock<Options> = std::sync::LazyLock::new(Options::default);
        &EMPTY
    }
}

impl Rare for Map<String, Json> {
    fn empty() -> &'static Map<String, Json> {
        static EMPTY: std::sync::LazyLock<Map<String, Json>> = std::sync::LazyLock::new(Map::new);
        &EMPTY
    }
}

impl Rare for Timing {
    fn empty() -> &'static Timing {
        static EMPTY: Timing = Timing {
            start_at: None,
            end_at: None,
            grace: None,
            jitter: None,
        };
        &EMPTY
    }
}

/// An entry in a set keyed by its name: maps from name to entry without a
/// second copy of each name.
#[derive(Debug, Clone)]
pub struct ByName(pub Arc<Entry>);

impl PartialEq for ByName {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for ByName {}

impl std::hash::Hash for ByName {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.name.as_str().hash(h)
    }
}

impl std::borrow::Borrow<str> for ByName {
    fn borrow(&self) -> &str {
        &self.0.name
    }
}

/// Where the entries defined in files come from, by name (the API and the
/// database syncer refuse to write those names).
#[derive(Debug, Default)]
pub struct FileOrigins(std::collections::HashSet<ByName, crate::NameHasher>);

impl FileOrigins {
    pub fn get(&self, name: &str) -> Option<&Origin> {
        self.0.get(name).map(|e| &e.0.origin)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Arc<Entry>> for FileOrigins {
    fn from_iter<I: IntoIterator<Item = Arc<Entry>>>(it: I) -> Self {
        FileOrigins(it.into_iter().map(ByName).collect())
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
        task: SharedStr::interned(&task?),
        schedule: schedule?,
        timezone_name: SharedStr::interned(&tz_name),
        timezone: tz,
        dst,
        enabled,
        misfire,
        args,
        kwargs: Sparse::new(kwargs),
        options: Sparse::new(options),
        timing: Sparse::new(Timing {
            start_at,
            end_at,
            grace,
            jitter,
        }),
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

/// Validates an entry given as JSON (an object with the keys of a YAML
/// entry) exactly as the YAML loader would.
pub fn validate_json(
    name: &str,
    body: &serde_json::Value,
    ctx: &Context,
) -> Result<Entry, Vec<FieldError>> {
    let node = Node::from_json(body);
    let mut errors = Vec::new();
    match parse_entry(name, Pos::default(), &node, ctx, "", &mut errors) {
        Some(e) if errors.is_empty() => Ok(e),
        _ => Err(errors),
    }
}

/// Errors as one line: `field: message; field: message`.
pub fn render_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
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

    /// The formula of every earlier release: FNV-1a over the formatted
    /// text. Keys in saved state must not change on upgrade.
    fn timing_key_as_before(e: &Entry) -> String {
        let t = &*e.timing;
        let text = format!(
            "{}|{}|{:?}|{:?}|{:?}|{:?}",
            e.schedule.to_json(),
            e.timezone_name,
            e.dst,
            t.start_at,
            t.end_at,
            t.jitter
        );
        format!("{:016x}", fnv1a(text.as_bytes()))
    }

    const EVERY_KIND: &str = r#"
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
    fn timing_key_is_the_hash_of_its_old_text_for_every_kind() {
        let entries =
            crate::source::yaml::load_str("k.yaml", EVERY_KIND, &None).expect("valid entries");
        assert_eq!(entries.len(), 14);
        let kinds: std::collections::BTreeSet<&str> =
            entries.iter().map(|e| e.schedule.kind()).collect();
        assert_eq!(kinds.len(), 5, "every kind is covered");
        for e in &entries {
            assert_eq!(
                format!("{:016x}", e.timing_key()),
                timing_key_as_before(e),
                "{}",
                e.name
            );
        }
        // Fixed values, so a change to `Schedule::to_json` (which the old
        // formula follows) cannot move both sides at once.
        let key = |name: &str| {
            let e = entries.iter().find(|e| e.name == name).expect("entry");
            format!("{:016x}", e.timing_key())
        };
        assert_eq!(key("cron"), GOLDEN_CRON);
        assert_eq!(key("crontab-all"), GOLDEN_CRONTAB);
        assert_eq!(key("every-bounded"), GOLDEN_EVERY);
        assert_eq!(key("solar"), GOLDEN_SOLAR);
        assert_eq!(key("at-civil"), GOLDEN_AT);
    }

    const GOLDEN_CRON: &str = "c1d0a620c8b10238";
    const GOLDEN_CRONTAB: &str = "35711a6eeb854d64";
    const GOLDEN_EVERY: &str = "c17993e06da7f574";
    const GOLDEN_SOLAR: &str = "f1f595ed49cb7432";
    const GOLDEN_AT: &str = "59cafd9af423f5a8";

    #[test]
    fn the_timing_key_changes_with_each_timing_field() {
        let base = sample();
        let mut keys = vec![base.timing_key()];
        let mut e = base.clone();
        e.timing.start_at = Some(Timestamp::UNIX_EPOCH);
        keys.push(e.timing_key());
        let mut e = base.clone();
        e.timing.end_at = Some(Timestamp::UNIX_EPOCH);
        keys.push(e.timing_key());
        let mut e = base.clone();
        e.timing.jitter = Some(SignedDuration::from_secs(1));
        keys.push(e.timing_key());
        let mut e = base.clone();
        e.dst = DstRule::default_for(true);
        keys.push(e.timing_key());
        let mut e = base.clone();
        e.timezone_name = "Europe/Berlin".into();
        keys.push(e.timing_key());
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "each field moves the key");
        let mut e = base.clone();
        e.timing.grace = Some(SignedDuration::from_secs(1));
        e.task = "other".into();
        assert_eq!(e.timing_key(), base.timing_key(), "grace and task do not");
    }

    #[test]
    fn entries_share_task_and_zone_names() {
        let entries = crate::source::yaml::load_str("k.yaml", EVERY_KIND, &None).expect("valid");
        let a = entries.iter().find(|e| e.name == "cron").unwrap();
        let b = entries.iter().find(|e| e.name == "every").unwrap();
        assert!(Arc::ptr_eq(&a.task.0, &b.task.0));
        assert!(Arc::ptr_eq(&a.timezone_name.0, &b.timezone_name.0));
        let berlin: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.timezone_name == "Europe/Berlin")
            .collect();
        assert_eq!(berlin.len(), 3);
        assert!(Arc::ptr_eq(
            &berlin[0].timezone_name.0,
            &berlin[2].timezone_name.0
        ));
    }

    #[test]
    fn the_pool_forgets_texts_no_one_holds() {
        let held: Vec<SharedStr> = (0..10)
            .map(|i| SharedStr::interned(&format!("pool-test-held-{i}")))
            .collect();
        for i in 0..5 * POOL_MIN {
            drop(SharedStr::interned(&format!("pool-test-dropped-{i}")));
        }
        let pool = POOL.lock().unwrap();
        assert!(pool.texts.len() <= pool.prune_at.max(2 * POOL_MIN));
        for h in &held {
            assert!(pool.texts.contains(h.as_str()), "held texts stay pooled");
        }
    }

    #[test]
    fn sparse_parts_allocate_only_when_set() {
        let e = sample();
        assert!(e.options.0.is_none() && e.kwargs.0.is_none() && e.timing.0.is_none());
        assert_eq!(*e.options, Options::default());
        let mut o = Options::default();
        assert!(
            Sparse::new(o.clone()).0.is_none(),
            "a default is not stored"
        );
        o.priority = Some(3);
        let s = Sparse::new(o.clone());
        assert_eq!(s.priority, Some(3));
        assert_eq!(s, Sparse::from(o));
        let mut k: Sparse<Map<String, Json>> = Sparse::default();
        k.insert("a".into(), Json::from(1));
        assert_eq!(serde_json::to_string(&k).unwrap(), r#"{"a":1}"#);
    }

    #[test]
    fn file_origins_find_entries_by_name() {
        let entries = crate::source::yaml::load_str("k.yaml", EVERY_KIND, &None).expect("valid");
        let files: FileOrigins = entries.into_iter().map(Arc::new).collect();
        assert_eq!(files.len(), 14);
        assert_eq!(files.get("solar").unwrap().to_string(), "k.yaml:12:3");
        assert!(files.get("nope").is_none());
    }

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
