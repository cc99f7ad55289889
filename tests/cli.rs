//! The `metronome` binary: `check`, `next` and `run` as a user calls them.

use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::util::process::{Metronome, metronome as bin, run_ok, write_file};
use crate::util::wait_until;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    write_file(dir.path(), name, text)
}

/// The messages `stdout://` printed: every line must be one.
fn messages(m: &Metronome) -> Vec<Value> {
    m.stdout_lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `run --schedule schedule --broker stdout:// --no-lock --state-file state`.
fn run(schedule: &std::path::Path, state: &std::path::Path) -> Metronome {
    let mut cmd = bin();
    cmd.arg("run")
        .arg("--schedule")
        .arg(schedule)
        .args(["--broker", "stdout://", "--no-lock", "--state-file"])
        .arg(state);
    Metronome::spawn(cmd)
}

#[test]
fn check_accepts_the_example_and_summarises() {
    let stdout = run_ok(bin().args(["check", "schedules/example.yaml"]));
    assert!(
        stdout.starts_with("ok: 7 schedules in 1 file ("),
        "{stdout}"
    );
}

#[test]
fn check_reports_every_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "bad.yaml",
        "schedules:\n  a:\n    task: t\n    cron: '61 * * * *'\n  b:\n    task: t\n    every: -5s\n",
    );
    let out = bin().arg("check").arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let f = f.display();
    assert!(
        stderr.contains(&format!(
            "{f}:4:11: schedules.a.cron: invalid cron expression"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{f}:7:12: schedules.b.every: interval must be positive"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("2 errors found"), "{stderr}");
}

#[test]
fn next_json_lists_runs_with_offsets_across_a_dst_change() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "s.yaml",
        "timezone: America/New_York\nschedules:\n  nightly-cleanup:\n    task: app.tasks.cleanup\n    cron: '0 3 * * *'\n  half:\n    task: app.tasks.half\n    cron: '30 2 * * *'\n",
    );
    let out = run_ok(bin().arg("next").arg(&f).args([
        "--json",
        "--from",
        "2026-03-07T00:00:00Z",
        "--count",
        "4",
    ]));
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected = [
        ("half", "2026-03-07T02:30:00-05:00", "2026-03-07T07:30:00Z"),
        (
            "nightly-cleanup",
            "2026-03-07T03:00:00-05:00",
            "2026-03-07T08:00:00Z",
        ),
        // 02:30 does not exist on 03-08: it runs at 03:00 EDT, as does 03:00 itself.
        // Equal times keep the file's order.
        (
            "nightly-cleanup",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T07:00:00Z",
        ),
        ("half", "2026-03-08T03:00:00-04:00", "2026-03-08T07:00:00Z"),
    ];
    assert_eq!(lines.len(), 4);
    for (l, (name, at, utc)) in lines.iter().zip(expected) {
        assert_eq!(l["schedule"], name);
        assert_eq!(l["at"], at);
        assert_eq!(l["utc"], utc);
    }
    assert_eq!(lines[1]["task"], "app.tasks.cleanup");
}

#[test]
fn next_filters_by_name_and_until_and_prints_a_table() {
    let out = bin()
        .args([
            "next",
            "schedules/example.yaml",
            "--from",
            "2026-06-01T00:00:00Z",
            "--until",
            "2026-06-01T00:02:00Z",
        ])
        .args(["--name", "health-check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let rows: Vec<&str> = stdout.lines().collect();
    assert!(rows[0].starts_with("AT (LOCAL)"), "{stdout}");
    assert_eq!(
        rows.len(),
        1 + 3,
        "30 s interval anchored at --from: 00:30, 01:00, 01:30\n{stdout}"
    );
    assert!(
        rows.iter()
            .skip(1)
            .all(|r| r.contains("health-check") && r.contains("+02:00 Europe/Berlin")),
        "{stdout}"
    );
    let out = bin()
        .args(["next", "schedules/example.yaml", "--name", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no schedule named `nope`"));
}

/// Runs the scheduler to stdout for `secs`, then SIGTERM; returns the
/// messages printed and the exit status.
fn run_for(
    schedule: &std::path::Path,
    state: &std::path::Path,
    secs: f64,
) -> (Vec<Value>, std::process::ExitStatus) {
    let mut m = run(schedule, state);
    std::thread::sleep(Duration::from_secs_f64(secs));
    let status = m.terminate();
    (messages(&m), status)
}

fn scheduled_times(msgs: &[Value]) -> Vec<jiff::Timestamp> {
    msgs.iter()
        .map(|m| {
            m["headers"]["scheduled_at"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[test]
fn run_prints_celery_messages_and_restarts_without_repeats_or_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "s.yaml",
        "schedules:\n  tick:\n    task: app.tasks.tick\n    every: 1s\n    misfire: all\n    args: [1, \"zwei\", {\"drei\": 3}]\n",
    );
    let state = dir.path().join("state.json");
    let (first, status) = run_for(&f, &state, 3.5);
    assert!(status.success(), "SIGTERM stops cleanly: {status:?}");
    assert!(first.len() >= 2, "{first:?}");
    let m = &first[0];
    assert_eq!(m["headers"]["task"], "app.tasks.tick");
    assert_eq!(m["headers"]["periodic_task_name"], "tick");
    assert_eq!(m["headers"]["argsrepr"], "[1, 'zwei', {'drei': 3}]");
    assert_eq!(m["properties"]["delivery_info"]["routing_key"], "celery");
    let body = base64::engine::general_purpose::STANDARD
        .decode(m["body"].as_str().unwrap())
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body[0], serde_json::json!([1, "zwei", {"drei": 3}]));
    assert!(state.exists(), "state saved");

    // Down for about 2 s, then up again: every second is sent exactly once.
    std::thread::sleep(Duration::from_secs(2));
    let (second, status) = run_for(&f, &state, 2.5);
    assert!(status.success());
    let mut all = scheduled_times(&first);
    all.extend(scheduled_times(&second));
    let secs: Vec<i64> = all.iter().map(|t| t.as_second()).collect();
    for w in secs.windows(2) {
        assert_eq!(
            w[1] - w[0],
            1,
            "consecutive seconds, no repeat, no gap: {secs:?}"
        );
    }
    let st: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(st["entries"]["tick"]["total_runs"], all.len());
}

#[test]
fn run_refuses_an_invalid_file_and_a_second_instance_on_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(&dir, "bad.yaml", "schedules:\n  a:\n    task: t\n");
    let out = bin()
        .arg("run")
        .arg("--schedule")
        .arg(&bad)
        .args(["--broker", "stdout://"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no schedule") && stderr.contains("refusing to start"),
        "{stderr}"
    );

    let good = write(
        &dir,
        "good.yaml",
        "schedules:\n  a:\n    task: t\n    every: 1h\n",
    );
    let state = dir.path().join("state.json");
    let mut first = run(&good, &state);
    wait_until("the state file", || state.exists(), || first.logs());
    let out = bin()
        .arg("run")
        .arg("--schedule")
        .arg(&good)
        .args(["--broker", "stdout://", "--no-lock", "--state-file"])
        .arg(&state)
        .output()
        .unwrap();
    first.kill();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another metronome instance"));
    let out = bin()
        .arg("run")
        .arg("--schedule")
        .arg(&good)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no broker"));
}

#[test]
fn run_reloads_on_change_and_keeps_the_old_schedule_on_a_bad_version() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "s.yaml",
        "schedules:\n  tick:\n    task: app.first\n    every: 1s\n",
    );
    let state = dir.path().join("state.json");
    let mut child = run(&f, &state);
    std::thread::sleep(Duration::from_millis(2500));
    // A valid change: a different task.
    std::fs::write(
        &f,
        "schedules:\n  tick:\n    task: app.second\n    every: 1s\n",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    // An invalid version is rejected whole; app.second keeps running.
    std::fs::write(
        &f,
        "schedules:\n  tick:\n    task: app.third\n    every: 1s\n  broken:\n    task: x\n",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    // SIGHUP re-reads the (still invalid) file; then fix it and send SIGHUP.
    std::fs::write(
        &f,
        "schedules:\n  tock:\n    task: app.fourth\n    every: 1s\n",
    )
    .unwrap();
    child.signal("-HUP");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(child.terminate().success());
    let msgs = messages(&child);
    let logs = child.logs();
    let tasks: Vec<&str> = msgs
        .iter()
        .map(|m| m["headers"]["task"].as_str().unwrap())
        .collect();
    let first_second = tasks
        .iter()
        .position(|t| *t == "app.second")
        .expect("the change was applied");
    assert!(
        tasks[..first_second].iter().all(|t| *t == "app.first"),
        "{tasks:?}"
    );
    assert!(
        !tasks.contains(&"app.third"),
        "the invalid version never ran: {tasks:?}"
    );
    assert!(tasks.last() == Some(&"app.fourth"), "{tasks:?}");
    assert!(logs.contains("schedule reload rejected"), "{logs}");
    assert!(logs.contains("schedules.broken: no schedule"), "{logs}");
    assert!(logs.contains("schedule reloaded"), "{logs}");
    // The removed entry stopped: after the first app.fourth there is no `tick`.
    let first_fourth = tasks.iter().position(|t| *t == "app.fourth").unwrap();
    assert!(
        msgs[first_fourth..]
            .iter()
            .all(|m| m["headers"]["periodic_task_name"] == "tock")
    );
}

/// A renew period that cannot keep the lease is refused before anything
/// starts, naming the rule; `--lock` and `--no-lock` exclude each other.
#[test]
fn run_refuses_a_lease_timing_that_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "s.yaml",
        "schedules:\n  a:\n    task: t\n    every: 1s\n",
    );
    let out = bin()
        .args(["run", "--broker", "stdout://", "--http", "off"])
        .args(["--lock", "redis://127.0.0.1:1/0", "--lock-ttl", "2s"])
        .args(["--lock-renew", "1s", "--schedule"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("less than half the TTL"), "{err}");
    let out = bin()
        .args(["run", "--broker", "stdout://", "--no-lock"])
        .args(["--lock", "redis://127.0.0.1:1/0", "--schedule"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
