//! Schedule files in YAML (see `docs/schedule-file.md`).
//!
//! Loading reads every file whole, reports every problem found (not just the
//! first) as `FILE:LINE:COL: message`, and accepts nothing from a set of
//! files unless all of them are valid.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::entry::{self, Checker, Context, Entry, FieldError, Options, RoutePattern};
use crate::syntax::{self, Node, Pos, Value};

pub mod paths;
pub mod warnings;

pub use paths::expand_paths;

/// One problem in a schedule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file,
            self.pos.line.max(1),
            self.pos.col.max(1),
            self.message
        )
    }
}

/// Every problem found in a set of files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

const FILE_KEYS: &[&str] = &["timezone", "defaults", "routes", "schedules"];

/// The zone for files that name none (`METRONOME_TIMEZONE`/`CELERY_TIMEZONE`);
/// `None` means UTC.
pub type DefaultZone = Option<(String, jiff::tz::TimeZone)>;

/// Parses one file's text. `file` is the label used in errors and origins.
pub fn load_str(file: &str, text: &str, zone: &DefaultZone) -> Result<Vec<Entry>, LoadErrors> {
    load_text(file, text, zone).map(|(entries, _)| entries)
}

/// One file's `routes` patterns and where each is written.
pub type RouteGlobs = Vec<(RoutePattern, Pos)>;

/// Loaded files: the entries, and each file's label with its route globs.
pub type Loaded = (Vec<Entry>, Vec<(String, RouteGlobs)>);

/// [`load_str`], with the file's route globs.
fn load_text(
    file: &str,
    text: &str,
    zone: &DefaultZone,
) -> Result<(Vec<Entry>, RouteGlobs), LoadErrors> {
    let to_load = |e: FieldError| LoadError {
        file: file.to_string(),
        pos: e.pos,
        message: e.to_string(),
    };
    let root = match syntax::parse_parallel(text, threads()) {
        Ok(Some(root)) => root,
        Ok(None) => {
            return Err(LoadErrors(vec![LoadError {
                file: file.to_string(),
                pos: Pos { line: 1, col: 1 },
                message: "the file is empty; expected a mapping with `schedules`".into(),
            }]));
        }
        Err(errs) => {
            return Err(LoadErrors(
                errs.into_iter()
                    .map(|e| LoadError {
                        file: file.to_string(),
                        pos: e.pos,
                        message: e.message,
                    })
                    .collect(),
            ));
        }
    };
    let mut errors = Vec::new();
    let loaded = load_root(file, &root, zone, &mut errors);
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(LoadErrors(errors.into_iter().map(to_load).collect()))
    }
}

fn load_root(
    file: &str,
    root: &Node,
    zone: &DefaultZone,
    errors: &mut Vec<FieldError>,
) -> (Vec<Entry>, RouteGlobs) {
    let mut c = Checker { errors };
    if !matches!(root.value, Value::Map(_)) {
        c.err(
            root,
            "",
            format!(
                "expected a mapping with `schedules` at the top, found {}",
                root.type_name()
            ),
        );
        return Default::default();
    }
    c.known_keys(root, "", FILE_KEYS);
    let (ctx, globs) = file_context(&mut c, file, root, zone);
    let Some(pairs) = schedule_pairs(&mut c, root) else {
        return (Vec::new(), globs);
    };
    (validate_all(pairs, &ctx, c.errors), globs)
}

/// What the file says for all its entries: `timezone`, `defaults` and
/// `routes` (with where each route's glob is written).
fn file_context(
    c: &mut Checker<'_>,
    file: &str,
    root: &Node,
    zone: &DefaultZone,
) -> (Context, RouteGlobs) {
    let mut ctx = Context {
        source: file.into(),
        timezone: zone.clone(),
        ..Default::default()
    };
    if let Some(n) = root.get("timezone") {
        ctx.timezone = c.timezone(n, "timezone");
    }
    if let Some(n) = root.get("defaults") {
        ctx.defaults = c.options(n, "defaults");
    }
    let mut globs = Vec::new();
    if let Some(n) = root.get("routes") {
        routes(c, n, &mut ctx.routes, &mut globs);
    }
    (ctx, globs)
}

/// Adds the `routes` mapping's (pattern, options) pairs to `out`, and each pattern with
/// its position to `globs`; a route given as a string names the queue, a key `re:…` is a
/// regular expression.
fn routes(
    c: &mut Checker<'_>,
    n: &Node,
    out: &mut Vec<(RoutePattern, Options)>,
    globs: &mut RouteGlobs,
) {
    match &n.value {
        Value::Map(pairs) => {
            for (k, v) in pairs {
                let Some(key) = c.string(k, "routes") else {
                    continue;
                };
                let path = format!("routes.{key}");
                let glob = match RoutePattern::parse(&key) {
                    Ok(p) => p,
                    Err(e) => {
                        c.err(k, &path, e);
                        continue;
                    }
                };
                let opts = match &v.value {
                    Value::Str(q) => Options {
                        queue: Some(q.clone()),
                        ..Default::default()
                    },
                    _ => c.options(v, &path),
                };
                globs.push((glob.clone(), k.pos));
                out.push((glob, opts));
            }
        }
        _ => c.err(
            n,
            "routes",
            format!(
                "expected a mapping of task-name globs to options, found {}",
                n.type_name()
            ),
        ),
    }
}

/// The `schedules` mapping's (name, entry) pairs; `None` when it is missing, empty or not
/// a mapping (reported unless it is empty).
fn schedule_pairs<'n>(c: &mut Checker<'_>, root: &'n Node) -> Option<&'n [(Node, Node)]> {
    let Some(schedules) = root.get("schedules") else {
        c.err(
            root,
            "",
            "missing `schedules`: a mapping of schedule names to entries",
        );
        return None;
    };
    let Value::Map(pairs) = &schedules.value else {
        if !matches!(schedules.value, Value::Null) {
            c.err(
                schedules,
                "schedules",
                format!(
                    "expected a mapping of names to entries, found {}",
                    schedules.type_name()
                ),
            );
        }
        return None;
    };
    Some(pairs)
}

/// Validates the entries on every core, each thread a run of entries in order; the runs'
/// entries and errors are joined in the same order.
fn validate_all(pairs: &[(Node, Node)], ctx: &Context, errors: &mut Vec<FieldError>) -> Vec<Entry> {
    let chunk = pairs.len().div_ceil(threads()).max(MIN_ENTRIES_PER_THREAD);
    let mut runs = pairs.chunks(chunk);
    let first = runs.next().unwrap_or_default();
    let (mut out, rest) = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .map(|run| {
                s.spawn(move || {
                    let mut errors = Vec::new();
                    (validate(run, ctx, &mut errors), errors)
                })
            })
            .collect();
        let out = validate(first, ctx, errors);
        let rest: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect();
        (out, rest)
    });
    out.reserve_exact(rest.iter().map(|(e, _)| e.len()).sum());
    for (entries, errors_of_run) in rest {
        out.extend(entries);
        errors.extend(errors_of_run);
    }
    out
}

/// Below this many entries per thread, validation stays on fewer threads.
const MIN_ENTRIES_PER_THREAD: usize = 4096;

/// The threads to parse and validate on: one per core.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Validates the entries of a run of `schedules` pairs.
fn validate(pairs: &[(Node, Node)], ctx: &Context, errors: &mut Vec<FieldError>) -> Vec<Entry> {
    let mut c = Checker { errors };
    let mut out = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let Some(name) = c.string(k, "schedules") else {
            continue;
        };
        let path = format!("schedules.{name}");
        if let Some(e) = entry::parse_entry(&name, k.pos, v, ctx, &path, c.errors) {
            out.push(e);
        }
    }
    out
}

/// Loads several files; names must be unique across all of them.
pub fn load_files<P: AsRef<Path>>(
    paths: &[P],
    zone: &DefaultZone,
) -> Result<Vec<Entry>, LoadErrors> {
    load_files_with_routes(paths, zone).map(|(entries, _)| entries)
}

/// [`load_files`], with each file's route globs (label, globs), for the
/// warnings of `check` ([`warnings`]).
pub fn load_files_with_routes<P: AsRef<Path>>(
    paths: &[P],
    zone: &DefaultZone,
) -> Result<Loaded, LoadErrors> {
    let mut errors = Vec::new();
    let mut all = Vec::new();
    let mut routes = Vec::new();
    for p in paths {
        let label = p.as_ref().display().to_string();
        match std::fs::read_to_string(p) {
            Ok(text) => match load_text(&label, &text, zone) {
                Ok((entries, globs)) => {
                    if all.is_empty() {
                        all = entries;
                    } else {
                        all.extend(entries);
                    }
                    routes.push((label, globs));
                }
                Err(LoadErrors(e)) => errors.extend(e),
            },
            Err(e) => errors.push(LoadError {
                file: label,
                pos: Pos::default(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    errors.extend(duplicate_names(&all));
    // The parse trees are gone; hand their memory back to the system.
    trim_heap();
    if errors.is_empty() {
        Ok((all, routes))
    } else {
        Err(LoadErrors(errors))
    }
}

/// Returns freed heap memory to the system. glibc's malloc keeps what a
/// large parse freed (hundreds of MB for a million entries) mapped,
/// counting as resident memory for the life of the process.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: glibc's malloc_trim only releases free pages; it takes
        // the allocator's locks itself and touches no live allocation.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Errors for names defined more than once across sources.
pub fn duplicate_names(entries: &[Entry]) -> Vec<LoadError> {
    let mut seen: HashMap<&str, &Entry, crate::NameHasher> =
        HashMap::with_capacity_and_hasher(entries.len(), Default::default());
    let mut out = Vec::new();
    for e in entries {
        if let Some(first) = seen.get(e.name.as_str()) {
            out.push(LoadError {
                file: e.origin.source.to_string(),
                pos: e.origin.pos,
                message: format!(
                    "duplicate schedule name `{}`: already defined at {}",
                    e.name, first.origin
                ),
            });
        } else {
            seen.insert(&e.name, e);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Validation runs on several threads over runs of entries; the entries
    /// and the errors come out in document order, as one thread gives them.
    #[test]
    fn parallel_validation_keeps_document_order() {
        let n = MIN_ENTRIES_PER_THREAD * 3 + 7;
        let bad = [3, MIN_ENTRIES_PER_THREAD - 1, MIN_ENTRIES_PER_THREAD, n - 1];
        let mut text = String::from("schedules:\n");
        for i in 0..n {
            if bad.contains(&i) {
                text.push_str(&format!(
                    "  job-{i}: {{task: t, bogus: 1, every: nope, cron: '* * * * *'}}\n"
                ));
            } else {
                text.push_str(&format!("  job-{i}: {{task: t, every: {}s}}\n", i + 1));
            }
        }
        let errors = load_str("f.yaml", &text, &None).unwrap_err().0;
        let lines: Vec<usize> = errors.iter().map(|e| e.pos.line).collect();
        let mut want = Vec::new();
        for i in bad {
            // An unknown key, then two schedule kinds.
            want.extend([i + 2, i + 2]);
        }
        assert_eq!(lines, want, "{errors:?}");
        assert!(
            errors[0].message.contains("unknown key `bogus`"),
            "{errors:?}"
        );
        assert!(
            errors[7].message.contains("job-12294: more than one"),
            "{errors:?}"
        );
        text = text.replace("bogus: 1, every: nope, cron: '* * * * *'", "every: 1h");
        let entries = load_str("f.yaml", &text, &None).unwrap();
        let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
        let want: Vec<String> = (0..n).map(|i| format!("job-{i}")).collect();
        assert_eq!(names, want);
        assert_eq!(
            entries[n - 1].origin.pos,
            Pos {
                line: n + 1,
                col: 3
            }
        );
    }
}
