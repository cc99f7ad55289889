//! `metronome import redbeat` and `metronome import django-celery-beat`
//! against the real stores: RedBeat's own `RedBeatSchedulerEntry.save()`
//! writes the keys, Django's `migrate` creates django-celery-beat's tables
//! and its ORM writes the rows, on SQLite, PostgreSQL and MariaDB.

use std::path::{Path, PathBuf};
use std::process::Command;

use metronome::entry::{Entry, Expires};
use metronome::schedule::Schedule;

use crate::importer::venv_python;
use crate::util::db::{Maria, Pg};
use crate::util::process::{metronome as bin, output_text, run_ok};
use crate::util::redis::RedisServer;
use crate::util::repo;

/// `metronome import ARGS -o DIR/out.yaml`: the output and the file's path.
fn import(args: &[&str], dir: &Path) -> (std::process::Output, PathBuf) {
    let file = dir.join("out.yaml");
    let out = bin()
        .arg("import")
        .args(args)
        .arg("-o")
        .arg(&file)
        .output()
        .unwrap();
    (out, file)
}

fn load(file: &Path) -> Vec<Entry> {
    run_ok(bin().arg("check").arg(file));
    metronome::source::yaml::load_files(&[file], &None).unwrap()
}

fn by<'a>(entries: &'a [Entry], name: &str) -> &'a Entry {
    entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

#[test]
fn redbeat_entries_saved_by_redbeat_import_with_their_options() {
    let Some(py) = venv_python() else { return };
    let redis = RedisServer::start();
    let url = redis.url().replace("/0", "/3");
    let prefix = "rbtest:";
    run_ok(
        Command::new(&py)
            .arg(repo().join("tests/fixtures/redbeat/seed.py"))
            .args([&url, prefix]),
    );
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "redbeat",
        "--redis",
        &url,
        "--key-prefix",
        prefix,
        "--timezone",
        "Europe/Berlin",
    ];
    let (out, file) = import(&args, dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "not converted: rbtest:mondays (mondays): an rrule with `byweekday` has no equivalent"
        ),
        "{stderr}"
    );
    assert!(!file.exists());
    let mut args = args.to_vec();
    args.push("--skip-unsupported");
    let (out, file) = import(&args, dir.path());
    assert!(out.status.success(), "{}", output_text(&out));
    let entries = load(&file);
    assert_eq!(entries.len(), 7);
    let e = by(&entries, "every-10m");
    assert_eq!(
        e.schedule,
        Schedule::Every(metronome::schedule::Interval {
            every: jiff::SignedDuration::from_secs(600)
        })
    );
    assert_eq!(e.args, [serde_json::json!(1), serde_json::json!(2)]);
    assert_eq!(e.kwargs.get("z"), Some(&serde_json::json!("é")));
    assert_eq!(e.options.queue.as_deref(), Some("q1"));
    assert_eq!(e.options.priority, Some(3));
    assert_eq!(
        e.options.expires,
        Some(Expires::After(jiff::SignedDuration::from_secs(30)))
    );
    assert_eq!(
        e.options.headers.get("tenant"),
        Some(&serde_json::json!("acme"))
    );
    // RedBeat's save() stores last_run_at = now: the interval keeps that phase.
    assert!(e.timing.start_at.is_some());
    let c = by(&entries, "every-3h");
    assert_eq!(c.schedule.kind(), "crontab");
    assert_eq!(&*c.timezone_name, "Europe/Berlin");
    let w = by(&entries, "weekday-930");
    assert_eq!(w.options.exchange.as_deref(), Some("media"));
    assert_eq!(w.options.routing_key.as_deref(), Some("media.video"));
    assert!(!by(&entries, "paused").enabled);
    assert!(by(&entries, "every-3h").enabled);
    assert_eq!(
        by(&entries, "relative-hour").schedule.to_json(),
        serde_json::json!({"every": "1h", "relative": true})
    );
    assert_eq!(
        by(&entries, "once").schedule,
        Schedule::At(ts("2030-01-01T09:00:00Z"))
    );
    let q = by(&entries, "quarter-4x");
    assert_eq!(q.timing.start_at, Some(ts("2030-01-01T09:00:00Z")));
    let runs: Vec<_> = std::iter::successors(
        q.next_after(ts("2030-01-01T09:00:00Z"), ts("2029-01-01T00:00:00Z")),
        |t| q.next_after(ts("2030-01-01T09:00:00Z"), *t),
    )
    .collect();
    assert_eq!(
        runs,
        [
            "2030-01-01T09:00:00Z",
            "2030-01-01T09:15:00Z",
            "2030-01-01T09:30:00Z",
            "2030-01-01T09:45:00Z"
        ]
        .map(ts),
        "an rrule with count=4 runs 4 times"
    );
}

/// Django's migrate and ORM on `url`, then the import; returns the entries
/// and the file's text without its header.
fn django_roundtrip(py: &Path, url: &str) -> (Vec<Entry>, String) {
    let dcb = repo().join("tests/fixtures/django_beat/dcb.py");
    for step in ["migrate", "seed"] {
        run_ok(
            Command::new(py)
                .arg(&dcb)
                .arg(step)
                .env("DCB_DATABASE", url),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, file) = import(&["django-celery-beat", "--database", url], dir.path());
    assert!(out.status.success(), "{url}: {}", output_text(&out));
    let text = std::fs::read_to_string(&file).unwrap();
    let body: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    (load(&file), body)
}

/// What the seeded rows must import as, whatever the database.
fn assert_seeded(entries: &[Entry]) {
    assert_eq!(entries.len(), 6);
    let e = by(entries, "every-10s");
    assert_eq!(e.schedule.to_json(), serde_json::json!({"every": "10s"}));
    assert_eq!(e.kwargs.get("a"), Some(&serde_json::json!("é")));
    assert_eq!(
        (e.options.queue.as_deref(), e.options.priority),
        (Some("q1"), Some(3))
    );
    assert_eq!(e.options.headers.get("h"), Some(&serde_json::json!(1)));
    assert_eq!(
        e.options.expires,
        Some(Expires::After(jiff::SignedDuration::from_secs(30)))
    );
    let w = by(entries, "weekdays");
    assert_eq!(&*w.timezone_name, "Europe/Berlin");
    assert_eq!(w.timing.start_at, Some(ts("2026-01-01T00:00:00Z")));
    assert_eq!(w.options.exchange.as_deref(), Some("media"));
    let n = by(entries, "nightly-off");
    assert!(!n.enabled, "disabled rows are kept, disabled");
    assert_eq!(n.timing.end_at, Some(ts("2031-01-01T00:00:00Z")));
    assert_eq!(
        n.options.expires,
        Some(Expires::At(ts("2031-01-01T00:00:00Z")))
    );
    assert_eq!(by(entries, "sunrise").schedule.kind(), "solar");
    assert_eq!(
        by(entries, "launch").schedule,
        Schedule::At(ts("2030-12-01T08:00:00Z"))
    );
    assert_eq!(
        by(entries, "hourly-once").schedule,
        Schedule::At(ts("2030-01-01T11:00:00Z")),
        "a one-off interval runs once, one interval after its last run"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn django_celery_beat_rows_import_alike_on_sqlite_postgres_and_mariadb() {
    let Some(py) = venv_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("django.db").display());
    let pg = Pg::new().await;
    let maria = Maria::new().await;
    let (a, text_sqlite) = django_roundtrip(&py, &sqlite);
    assert_seeded(&a);
    let (b, text_pg) = django_roundtrip(&py, &pg.url);
    assert_seeded(&b);
    let (c, text_maria) = django_roundtrip(&py, &maria.url);
    assert_seeded(&c);
    assert_eq!(text_sqlite, text_pg);
    assert_eq!(text_sqlite, text_maria);
}
