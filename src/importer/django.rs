//! `metronome import django-celery-beat`: the rows of django-celery-beat's
//! tables ([`crate::db::django`]) as an [`Import`].
//!
//! Each row becomes the entry its columns mean (the mapping lives in
//! `db::django`, shared with the live source); a `one_off` task that is not
//! `clocked` becomes `at` its single run: the first run of its schedule
//! after its last run (or last change), as django-celery-beat computes it.

use serde_json::{Value as Json, json};

use super::{Import, Imported};
use crate::db::django::PeriodicTask;
use crate::entry::{Context, validate_json};
use crate::redact::mask_url;

/// The schedule keys an `at` replaces.
const KINDS: &[&str] = &[
    "every", "crontab", "solar", "relative", "dst", "start_at", "end_at",
];

/// The import of `rows`, read from `url`.
pub fn convert(rows: &[PeriodicTask], url: &str) -> Import {
    let mut out = Import {
        header: vec![format!(
            "Imported by `metronome import django-celery-beat --database {}` ({} rows).",
            mask_url(url),
            rows.len()
        )],
        ..Default::default()
    };
    for r in rows {
        let item = format!("periodictask id {} {:?}", r.id(), r.name());
        match entry(r) {
            Ok(e) => out.entries.push(e),
            Err(why) => out.unsupported(item, why.join("; ")),
        }
    }
    out
}

fn entry(r: &PeriodicTask) -> Result<Imported, Vec<String>> {
    let mut body = r.body()?;
    crate::entry::check_name(r.name()).map_err(|e| vec![e.to_string()])?;
    let mut comments = vec![format!(
        "from django_celery_beat_periodictask id {}: last_run_at {}, total_run_count {}",
        r.id(),
        r.instant("t.last_run_at")
            .ok()
            .flatten()
            .map_or("null".into(), |t| t.to_string()),
        r.total_run_count()
    )];
    if r.one_off() && !body.contains_key("at") {
        let e = validate_json(r.name(), &Json::Object(body.clone()), &Context::default())
            .map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        let base = r
            .base()
            .map_err(|e| vec![e])?
            .unwrap_or_else(jiff::Timestamp::now);
        let at = e.next_after(base, base).ok_or_else(|| {
            vec!["one_off: its schedule has no run after its last run".to_string()]
        })?;
        for k in KINDS {
            body.remove(*k);
        }
        body.insert("at".into(), json!(at.to_string()));
        comments.push(format!(
            "one_off: its single run, the first after {base}, is `at` (the schedule was {})",
            r.get("i.every").map_or("a calendar".into(), |e| format!(
                "every {e} {}",
                r.get("i.period").unwrap_or("")
            ))
        ));
    }
    Ok(Imported {
        name: r.name().to_string(),
        comments,
        body,
    })
}
