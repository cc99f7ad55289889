//! `metronome import celery`: real Celery apps (tests/fixtures/celery_apps),
//! imported with the test venv's Python; the imported runs and routes are
//! compared with Celery's own computation of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use jiff::Timestamp;
use serde_json::Value as Json;

use crate::util::process::{metronome, output_text, run_ok};
use crate::util::{python, repo};

/// The venv's Python, or `None` (loudly) when there is no Python at all.
pub fn venv_python() -> Option<PathBuf> {
    python::celery().map(|c| c.with_file_name("python"))
}

fn apps() -> PathBuf {
    repo().join("tests/fixtures/celery_apps")
}

/// `metronome import celery --app APP` in the apps' directory.
fn import(py: &Path, app: &str, extra: &[&str]) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let out = metronome()
        .current_dir(apps())
        .args(["import", "celery", "--app", app, "--python"])
        .arg(py)
        .arg("-o")
        .arg(dir.path().join("beat.yaml"))
        .args(extra)
        .output()
        .unwrap();
    (out, dir)
}

/// Celery's next `count` runs per entry of `app`, from a fresh start at `now`.
fn celery_runs(py: &Path, app: &str, now: &str, count: usize) -> BTreeMap<String, Vec<String>> {
    let text = run_ok(Command::new(py).current_dir(apps()).args([
        "celery_next.py",
        app,
        now,
        &count.to_string(),
    ]));
    serde_json::from_str(&text).unwrap()
}

/// metronome's next `count` runs of `name` in `file` from `now`.
fn metronome_runs(file: &Path, name: &str, now: &str, count: usize) -> Vec<Timestamp> {
    let text = run_ok(metronome().arg("next").arg(file).args([
        "--from",
        now,
        "--count",
        &count.to_string(),
        "--name",
        name,
        "--json",
    ]));
    text.lines()
        .map(|l| {
            let v: Json = serde_json::from_str(l).unwrap();
            v["utc"].as_str().unwrap().parse().unwrap()
        })
        .collect()
}

/// The documented exception: a fixed-time crontab whose wall time is in a
/// DST gap. Celery fires one gap late (celery#9653); metronome at the first
/// instant after the gap. Returns whether `(celery, ours)` is that case.
fn dst_gap_exception(celery: Timestamp, ours: Timestamp, zone: &str) -> bool {
    let tz = jiff::tz::TimeZone::get(zone).unwrap();
    let before = ours
        .checked_sub(jiff::SignedDuration::from_secs(1))
        .unwrap();
    let gap = tz.to_offset(before) != tz.to_offset(ours);
    gap && celery.duration_since(ours) == jiff::SignedDuration::from_secs(1800)
}

/// Every entry of `app`, 50 runs from each `now` (before the spring and the
/// autumn change in `zone`), equal to Celery's; solar within a minute (as
/// the spec promises against PyEphem); the DST-gap case as documented.
fn compare_runs(py: &Path, app: &str, zone: &str, nows: &[&str], exceptions: &[&str]) {
    let (out, dir) = import(py, app, &[]);
    assert!(out.status.success(), "{}", output_text(&out));
    let file = dir.path().join("beat.yaml");
    run_ok(metronome().arg("check").arg(&file));
    let mut compared = 0;
    let mut excepted = Vec::new();
    for now in nows {
        let celery = celery_runs(py, app, now, 50);
        assert!(!celery.is_empty());
        for (name, runs) in &celery {
            let ours = metronome_runs(&file, name, now, 50);
            assert_eq!(ours.len(), runs.len(), "{name} from {now}");
            for (c, m) in runs.iter().zip(&ours) {
                // With beat_cron_starting_deadline Celery even drops the
                // shifted run of a DST gap: the same documented exception.
                let skipped = c.ends_with("!skipped");
                let c: Timestamp = c.trim_end_matches("!skipped").parse().unwrap();
                assert!(
                    !skipped || c != *m,
                    "{name}: Celery skips {c} but metronome runs it"
                );
                let diff = c.duration_since(*m).abs();
                if name.starts_with("sunrise") || name.starts_with("sun-") {
                    assert!(
                        diff.as_secs() < 60,
                        "{name} from {now}: celery {c}, metronome {m}"
                    );
                } else if c != *m {
                    assert!(
                        exceptions.contains(&name.as_str()) && dst_gap_exception(c, *m, zone),
                        "{name} from {now}: celery {c}, metronome {m}\n{}",
                        std::fs::read_to_string(&file).unwrap()
                    );
                    excepted.push(name.clone());
                }
                compared += 1;
            }
        }
    }
    for e in exceptions {
        assert!(
            excepted.iter().any(|x| x == e),
            "{e} was expected to hit the DST gap"
        );
    }
    assert!(compared >= 50 * nows.len() * 5, "{compared}");
}

#[test]
fn tutorial_app_runs_as_celery_computes_them_across_dst() {
    let Some(py) = venv_python() else { return };
    compare_runs(
        &py,
        "tutorial:app",
        "Europe/Berlin",
        &["2026-03-28T20:00:00Z", "2026-10-24T20:00:00Z"],
        &["dst-gap"],
    );
}

#[test]
fn new_york_app_runs_as_celery_computes_them_across_dst() {
    let Some(py) = venv_python() else { return };
    compare_runs(
        &py,
        "newyork:app",
        "America/New_York",
        &["2026-03-07T20:00:00Z", "2026-10-31T20:00:00Z"],
        &["dst-gap-ny"],
    );
}

#[test]
fn tutorial_app_routes_as_celery_routes() {
    let Some(py) = venv_python() else { return };
    compare_routes(&py, "tutorial:app", 10);
}

#[test]
fn new_york_app_routes_as_celery_routes() {
    let Some(py) = venv_python() else { return };
    compare_routes(&py, "newyork:app", 9);
}

/// Unconvertible items are listed one by one and nothing is written (exit
/// 1); `--skip-unsupported` writes the rest and lists the skipped in the file.
#[test]
fn unsupported_items_are_listed_and_refused_unless_skipped() {
    let Some(py) = venv_python() else { return };
    let (out, dir) = import(&py, "unsupported:app", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in [
        "not converted: task_routes[1]: task_routes[1] is a router function",
        "not converted: beat_schedule[\"custom\"]: its schedule is a custom class (unsupported.every_other_day)",
        "not converted: beat_schedule[\"delayed\"]: options.countdown: `countdown` delays",
        "3 items not converted; nothing written",
    ] {
        assert!(stderr.contains(want), "{want}\n{stderr}");
    }
    assert!(!dir.path().join("beat.yaml").exists());
    let (out, dir) = import(&py, "unsupported:app", &["--skip-unsupported"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let file = dir.path().join("beat.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("#   beat_schedule[\"custom\"]: its schedule is a custom class"),
        "{text}"
    );
    let entries = metronome::source::yaml::load_files(&[file], &None).unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["fine"]);
    assert_eq!(
        entries[0].options.queue.as_deref(),
        Some("fixed"),
        "the dict router before the function is kept"
    );
}

/// The route metronome publishes each imported entry with (the broker's
/// own routing function) equals what `app.amqp.router.route()` gives.
fn compare_routes(py: &Path, app: &str, count: usize) {
    let (out, dir) = import(py, app, &[]);
    assert!(out.status.success(), "{}", output_text(&out));
    let described: Json = serde_json::from_str(&run_ok(
        Command::new(py)
            .current_dir(apps())
            .arg(repo().join("src/importer/celery_app.py"))
            .arg(app),
    ))
    .unwrap();
    let entries =
        metronome::source::yaml::load_files(&[dir.path().join("beat.yaml")], &None).unwrap();
    let mut seen = 0;
    for d in described["entries"].as_array().unwrap() {
        let name = d["name"].as_str().unwrap();
        let e = entries.iter().find(|e| e.name == name).unwrap();
        let r = metronome::celery::message::route(e);
        let ours = serde_json::json!({
            "queue": r.queue, "exchange": r.exchange, "routing_key": r.routing_key,
            "priority": e.options.priority.unwrap_or(0),
        });
        assert_eq!(ours, d["route"], "{name}");
        seen += 1;
    }
    assert_eq!(seen, count);
}

/// `GET /api/v1/schedules/{name}` shows an imported entry's args, kwargs and
/// effective options, and they are what Celery sends for it.
#[tokio::test(flavor = "multi_thread")]
async fn the_api_shows_what_celery_would_send() {
    let Some(py) = venv_python() else { return };
    let (out, dir) = import(&py, "tutorial:app", &[]);
    assert!(out.status.success(), "{}", output_text(&out));
    let described: Json = serde_json::from_str(&run_ok(
        Command::new(&py)
            .current_dir(apps())
            .arg(repo().join("src/importer/celery_app.py"))
            .arg("tutorial:app"),
    ))
    .unwrap();
    let file = dir.path().join("beat.yaml");
    let state = dir.path().join("state.json");
    let m = crate::util::process::Metronome::serve(
        &[
            "--schedule",
            file.to_str().unwrap(),
            "--no-lock",
            "--state-file",
            state.to_str().unwrap(),
        ],
        None,
    );
    for d in described["entries"].as_array().unwrap() {
        let name = d["name"].as_str().unwrap();
        let (status, v) = crate::util::http::get(&m, &format!("/api/v1/schedules/{name}")).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["args"], d["args"], "{name}");
        assert_eq!(v["kwargs"], d["kwargs"], "{name}");
        assert_eq!(v["options"]["queue"], d["route"]["queue"], "{name}");
        let priority = v["options"]
            .get("priority")
            .cloned()
            .unwrap_or(Json::from(0));
        assert_eq!(priority, d["route"]["priority"], "{name}");
        let celery_opts = d["options"].as_object().unwrap();
        for k in ["expires", "headers"] {
            assert_eq!(v["options"].get(k), celery_opts.get(k), "{name} {k}");
        }
    }
    let (_, all) = crate::util::http::get(&m, "/api/v1/schedules").await;
    let listed = all.as_array().unwrap();
    assert!(
        listed
            .iter()
            .all(|v| v["options"].is_object() && v["args"].is_array()),
        "{all}"
    );
    let (_, doc) = crate::util::http::get(&m, "/api/v1/openapi.json").await;
    let props = &doc["components"]["schemas"]["ScheduleView"]["properties"];
    for k in ["args", "kwargs", "options"] {
        assert!(
            props[k]["description"].is_string(),
            "{k} undocumented: {props}"
        );
    }
    assert!(
        props["options"]["description"]
            .as_str()
            .unwrap()
            .contains("routes")
    );
}
