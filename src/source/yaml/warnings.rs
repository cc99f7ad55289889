//! What `metronome check` warns about in files that load: things that are
//! valid but rarely what was meant.
//!
//! - A route of one file that an entry of another file matches: `routes`
//!   and `defaults` apply to the file that declares them only (unlike
//!   Celery's app-wide `task_routes`), so that entry does not get it.
//! - Priorities on a Redis broker: kombu's Redis transport serves lower
//!   numbers first, in the steps 0–2, 3–5, 6–8, 9 (its `PRIORITY_STEPS =
//!   [0, 3, 6, 9]`, `BRPOP` over the lists in that order), the reverse of
//!   RabbitMQ, where a higher number is served first.
//!
//! **Invariant**: warnings never change what is loaded; each names the
//! file, line and column of the entry it is about, and its message starts
//! with `warning: `.

use super::{LoadError, RouteGlobs};
use crate::entry::Entry;

/// Warnings shown one by one before the rest is counted.
pub const SHOWN: usize = 20;

/// Entries matching a route declared in another file (and none of their
/// own file's).
pub fn foreign_routes(entries: &[Entry], routes: &[(String, RouteGlobs)]) -> Vec<LoadError> {
    if routes.iter().filter(|(_, g)| !g.is_empty()).count() == 0 {
        return Vec::new();
    }
    let globs_of = |file: &str| routes.iter().find(|(f, _)| f == file).map(|(_, g)| g);
    let mut out = Vec::new();
    for e in entries {
        let own = globs_of(&e.origin.source);
        if own.is_some_and(|g| g.iter().any(|(glob, _)| glob.matches(&e.task))) {
            continue;
        }
        let foreign = routes
            .iter()
            .filter(|(f, _)| **f != *e.origin.source)
            .find_map(|(f, g)| {
                g.iter()
                    .find(|(glob, _)| glob.matches(&e.task))
                    .map(|(glob, pos)| (f, glob, pos))
            });
        if let Some((file, glob, pos)) = foreign {
            out.push(LoadError {
                file: e.origin.source.to_string(),
                pos: e.origin.pos,
                message: format!(
                    "warning: schedules.{}: task `{}` matches route `{glob}` of {file}:{}:{}, which does not apply here: routes and defaults apply to the entries of their own file only (copy the route into this file)",
                    e.name, e.task, pos.line, pos.col
                ),
            });
        }
    }
    out
}

/// Entries sending a priority, for a broker on Redis.
pub fn redis_priorities(entries: &[Entry]) -> Vec<LoadError> {
    entries
        .iter()
        .filter_map(|e| Some((e, e.options.priority?)))
        .map(|(e, p)| LoadError {
            file: e.origin.source.to_string(),
            pos: e.origin.pos,
            message: format!(
                "warning: schedules.{}: priority {p} on Redis: kombu's Redis transport serves LOWER numbers first (steps 0-2, 3-5, 6-8, 9; above 9 counts as 9), the reverse of RabbitMQ{}",
                e.name,
                if p > 9 { "; this one is served last" } else { "" }
            ),
        })
        .collect()
}

/// Whether `url` names a broker on Redis (kombu's Redis transport).
pub fn is_redis(url: &str) -> bool {
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    matches!(
        scheme.to_ascii_lowercase().as_str(),
        "redis" | "rediss" | "sentinel" | "redis+socket"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[(&str, &str)]) -> (Vec<Entry>, Vec<(String, RouteGlobs)>) {
        let mut entries = Vec::new();
        let mut routes = Vec::new();
        for (f, text) in files {
            let (e, g) = super::super::load_text(f, text, &None).unwrap();
            entries.extend(e);
            routes.push((f.to_string(), g));
        }
        (entries, routes)
    }

    #[test]
    fn an_entry_matching_another_files_route_is_named() {
        let (entries, routes) = load(&[
            (
                "a.yaml",
                "routes:\n  \"app.email.*\": email\nschedules:\n  mine: {task: app.email.x, every: 1h}\n",
            ),
            (
                "b.yaml",
                "schedules:\n  other: {task: app.email.y, every: 1h}\n  plain: {task: app.z, every: 1h}\n",
            ),
            (
                "c.yaml",
                "routes:\n  \"app.*\": c\nschedules:\n  own: {task: app.email.w, every: 1h}\n",
            ),
        ]);
        let w: Vec<String> = foreign_routes(&entries, &routes)
            .iter()
            .map(|w| w.to_string())
            .collect();
        // `mine` and `own` match routes of their own files: no warning.
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("b.yaml:2:3: warning: schedules.other: task `app.email.y` matches route `app.email.*` of a.yaml:2:3, which does not apply here"),
            "{}",
            w[0]
        );
        assert!(
            w[1].starts_with(
                "b.yaml:3:3: warning: schedules.plain: task `app.z` matches route `app.*` of c.yaml:2:3"
            ),
            "{}",
            w[1]
        );
    }

    #[test]
    fn priorities_are_flagged_for_redis_only() {
        let (entries, _) = load(&[(
            "p.yaml",
            "defaults: {priority: 12}\nschedules:\n  a: {task: t, every: 1h, options: {priority: 7}}\n  b: {task: t, every: 1h}\n",
        )]);
        let w = redis_priorities(&entries);
        assert_eq!(w.len(), 2);
        assert!(w[0].message.contains("priority 7 on Redis"), "{}", w[0]);
        assert!(w[1].message.ends_with("served last"), "{}", w[1]);
        assert!(
            is_redis("redis://h:6379/0") && is_redis("SENTINEL://h;x") && is_redis("rediss://h")
        );
        assert!(!is_redis("amqp://h") && !is_redis("stdout://") && !is_redis("sqs://"));
    }
}
