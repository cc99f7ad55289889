//! The validator: an entry's node tree to an [`Entry`], or the list of
//! [`FieldError`]s naming each bad field.
//!
//! [`parse_entry`] reads the keys of one entry in a fixed order (name,
//! task, zone, schedule, arguments, options, bounds, policies, DST rule),
//! so the same input reports the same errors in the same order wherever it
//! comes from.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value as Json};

use super::checker::{Checker, FieldError, join};
use super::intern::SharedStr;
use super::kind::parse_kind;
use super::{Entry, Misfire, Options, Origin, Sparse, Timing};
use crate::schedule::{DstRule, Fold, Gap, Schedule};
use crate::syntax::{Node, Pos, Value};

/// File-level settings an entry inherits.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The zone for entries without their own (`None` = UTC).
    pub timezone: Option<(String, TimeZone)>,
    /// `defaults`: options merged under every entry's.
    pub defaults: Options,
    /// `routes`: task-name pattern and its options; the first match applies.
    pub routes: Vec<(RoutePattern, Options)>,
    /// Label used in [`Origin`].
    pub source: std::sync::Arc<str>,
}

impl Context {
    /// The options an entry of `task` sends with: its `own` over the first
    /// matching route over the defaults.
    fn options_for(&self, task: Option<&str>, own: &Options) -> Options {
        let route = task
            .and_then(|t| self.routes.iter().find(|(p, _)| p.matches(t)))
            .map(|(_, o)| o.over(&self.defaults))
            .unwrap_or_else(|| self.defaults.clone());
        own.over(&route)
    }
}

/// A `routes` key: a glob, or (written `re:PATTERN`) a regular expression
/// matched from the start of the task name, as Celery's `task_routes`
/// matches a `re.compile()` key with `re.match`.
#[derive(Debug, Clone)]
pub enum RoutePattern {
    Glob(String),
    /// The key as written (`re:…`) and the expression anchored at the start.
    Regex(String, regex::Regex),
}

impl std::fmt::Display for RoutePattern {
    /// The key as written in the file.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoutePattern::Glob(k) | RoutePattern::Regex(k, _) => f.write_str(k),
        }
    }
}

impl RoutePattern {
    /// The prefix that makes a `routes` key a regular expression.
    pub const REGEX_PREFIX: &str = "re:";

    /// The pattern a `routes` key gives; a bad expression's error says why.
    pub fn parse(key: &str) -> Result<RoutePattern, String> {
        match key.strip_prefix(Self::REGEX_PREFIX) {
            Some(re) => regex::Regex::new(&format!("^(?:{re})"))
                .map(|r| RoutePattern::Regex(key.to_string(), r))
                .map_err(|e| {
                    // The parser's message draws a caret over the pattern; its last line says why.
                    let text = e.to_string();
                    let why = text
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim_start_matches("error: ");
                    format!("invalid regular expression `{re}`: {why}")
                }),
            None => Ok(RoutePattern::Glob(key.to_string())),
        }
    }

    pub fn matches(&self, task: &str) -> bool {
        match self {
            RoutePattern::Glob(g) => glob_match(g, task),
            RoutePattern::Regex(_, r) => r.is_match(task),
        }
    }
}

impl PartialEq for RoutePattern {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (RoutePattern::Glob(a), RoutePattern::Glob(b)) => a == b,
            (RoutePattern::Regex(a, _), RoutePattern::Regex(b, _)) => a == b,
            _ => false,
        }
    }
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
    "relative",
];

/// Why [`check_name`] refuses a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("schedule name must not be empty")]
    Empty,
    #[error("schedule name is longer than 200 characters")]
    TooLong,
    #[error("schedule name {0:?} contains `/` or a control character")]
    Unprintable(String),
}

/// Checks an entry name: used in URLs and logs, so printable and bounded.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > 200 {
        return Err(NameError::TooLong);
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err(NameError::Unprintable(name.to_string()));
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
    if let Err(e) = check_name(name) {
        c.err_at(name_pos, path, e.to_string());
    }
    if !matches!(node.value, Value::Map(_)) {
        c.mismatch(node, path, "a mapping with `task` and a schedule");
        return None;
    }
    c.known_keys(node, path, ENTRY_KEYS);
    let f = Fields { node, path };
    let task = task(&mut c, &f, name_pos);
    let (tz_name, tz) = zone(&mut c, &f, ctx);
    let schedule = parse_kind(&mut c, node, name_pos, path, &tz);
    let (args, kwargs) = arguments(&mut c, &f);
    let own = f
        .get("options")
        .map(|n| c.options(n, &f.path("options")))
        .unwrap_or_default();
    let options = ctx.options_for(task.as_deref(), &own);
    let enabled = f
        .get("enabled")
        .map(|n| c.bool(n, &f.path("enabled")).unwrap_or(true))
        .unwrap_or(true);
    let (start_at, end_at) = bounds(&mut c, &f, &tz);
    let misfire = misfire(&mut c, &f);
    let grace = duration_where(
        &mut c,
        &f,
        "grace",
        |d| !d.is_negative(),
        "must not be negative",
    );
    let jitter = duration_where(
        &mut c,
        &f,
        "jitter",
        |d| d.is_positive(),
        "must be positive",
    );
    let dst = dst(&mut c, &f, schedule.as_ref());
    if let Some(n) = f.get("description") {
        c.string(n, &f.path("description"));
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

/// The fields of one entry's mapping, and the paths that name them in
/// errors.
struct Fields<'a> {
    node: &'a Node,
    path: &'a str,
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Node> {
        self.node.get(key)
    }

    fn path(&self, key: &str) -> String {
        join(self.path, key)
    }
}

/// `task`: the Celery task name, required and not blank. A missing one is
/// reported at `name_pos`.
fn task(c: &mut Checker, f: &Fields, name_pos: Pos) -> Option<String> {
    let Some(t) = f.get("task") else {
        c.err_at(
            name_pos,
            f.path,
            "missing `task`: the registered Celery task name",
        );
        return None;
    };
    let task = c.string(t, &f.path("task"))?;
    if task.trim().is_empty() {
        c.err(f.node, &f.path("task"), "task name must not be empty");
        return None;
    }
    Some(task)
}

/// `timezone`, else the file's, else UTC (also after an error, so later
/// fields are still checked).
fn zone(c: &mut Checker, f: &Fields, ctx: &Context) -> (String, TimeZone) {
    let utc = || ("UTC".into(), TimeZone::UTC);
    match f.get("timezone") {
        Some(n) => c.timezone(n, &f.path("timezone")).unwrap_or_else(utc),
        None => ctx.timezone.clone().unwrap_or_else(utc),
    }
}

/// `args` and `kwargs`: a list and a mapping, passed on as JSON.
fn arguments(c: &mut Checker, f: &Fields) -> (Vec<Json>, Map<String, Json>) {
    let args = json_field(c, f, "args", "a list", |_, j| match j {
        Json::Array(a) => Some(a),
        _ => None,
    });
    let kwargs = json_field(c, f, "kwargs", "a mapping", |n, j| match j {
        Json::Object(m) if matches!(n.value, Value::Map(_)) => Some(m),
        _ => None,
    });
    (args, kwargs)
}

/// A field passed on to the task as JSON (`args`, `kwargs`): `take` picks
/// the value of the right shape, anything else is reported as not `what`.
/// The default when absent or wrong.
fn json_field<T: Default>(
    c: &mut Checker,
    f: &Fields,
    key: &str,
    what: &str,
    take: impl FnOnce(&Node, Json) -> Option<T>,
) -> T {
    let Some(n) = f.get(key) else {
        return T::default();
    };
    take(n, n.to_json()).unwrap_or_else(|| {
        c.mismatch(n, &f.path(key), what);
        T::default()
    })
}

/// `start_at` and `end_at`, instants read in `tz`; `end_at` must be later.
fn bounds(c: &mut Checker, f: &Fields, tz: &TimeZone) -> (Option<Timestamp>, Option<Timestamp>) {
    let start_at = f
        .get("start_at")
        .and_then(|n| c.instant(n, &f.path("start_at"), tz));
    let end_at = f
        .get("end_at")
        .and_then(|n| c.instant(n, &f.path("end_at"), tz));
    if let (Some(s), Some(e), Some(n)) = (start_at, end_at, f.get("end_at"))
        && e <= s
    {
        c.err(
            n,
            &f.path("end_at"),
            format!("end_at {e} is not after start_at {s}"),
        );
    }
    (start_at, end_at)
}

/// `misfire`: skip, once or all; once when absent or wrong.
fn misfire(c: &mut Checker, f: &Fields) -> Misfire {
    let policies = [
        ("skip", Misfire::Skip),
        ("once", Misfire::Once),
        ("all", Misfire::All),
    ];
    f.get("misfire")
        .and_then(|n| c.word(n, &f.path("misfire"), "misfire policy", &policies))
        .unwrap_or_default()
}

/// The duration `key` if `ok` holds for it; else "{key} {rule}".
fn duration_where(
    c: &mut Checker,
    f: &Fields,
    key: &str,
    ok: fn(&SignedDuration) -> bool,
    rule: &str,
) -> Option<SignedDuration> {
    let n = f.get(key)?;
    let p = f.path(key);
    let d = c.duration(n, &p)?;
    if !ok(&d) {
        c.err(n, &p, format!("{key} {rule}"));
        return None;
    }
    Some(d)
}

/// The DST rule: `dst` over the default of the schedule's kind.
fn dst(c: &mut Checker, f: &Fields, schedule: Option<&Schedule>) -> DstRule {
    let fixed = schedule
        .and_then(|s| s.calendar())
        .map(|s| s.fixed_time)
        .unwrap_or(false);
    let mut dst = DstRule::default_for(fixed);
    if let Some(n) = f.get("dst") {
        parse_dst(c, n, &f.path("dst"), &mut dst);
    }
    dst
}

/// `dst: {gap, fold}`: sets in `dst` the rules it gives.
fn parse_dst(c: &mut Checker, n: &Node, path: &str, dst: &mut DstRule) {
    if !matches!(n.value, Value::Map(_)) {
        c.mismatch(n, path, "a mapping like {gap: shift, fold: first}");
        return;
    }
    c.known_keys(n, path, &["gap", "fold"]);
    let gaps = [
        ("shift", Gap::Shift),
        ("skip", Gap::Skip),
        ("later", Gap::Later),
    ];
    if let Some(g) = n.get("gap")
        && let Some(rule) = c.word(g, &join(path, "gap"), "gap rule", &gaps)
    {
        dst.gap = rule;
    }
    let folds = [("first", Fold::First), ("both", Fold::Both)];
    if let Some(x) = n.get("fold")
        && let Some(rule) = c.word(x, &join(path, "fold"), "fold rule", &folds)
    {
        dst.fold = rule;
    }
}

/// Validates an entry given as JSON (an object with the keys of a YAML
/// entry) exactly as the YAML loader would.
pub fn validate_json(name: &str, body: &Json, ctx: &Context) -> Result<Entry, Vec<FieldError>> {
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
mod tests {
    use super::*;

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
    fn regex_routes_match_from_the_start_like_re_match() {
        let r = RoutePattern::parse(r"re:app\.(email|sms)\.").unwrap();
        assert!(r.matches("app.email.send"));
        assert!(!r.matches("x.app.email.send"), "anchored at the start");
        assert!(
            RoutePattern::parse("re:(")
                .unwrap_err()
                .contains("invalid regular expression")
        );
        assert!(RoutePattern::parse("app.*").unwrap().matches("app.x"));
    }
}
