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
        stdout.starts_with("ok: 8 schedules in 1 file ("),
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

/// `GLOBAL... run --no-lock --http HTTP --state-file STATE`; `--broker stdout://` unless `broker` is false (the test gives
/// it otherwise).
fn standalone(
    global: &[&str],
    http: &str,
    state: &std::path::Path,
    broker: bool,
) -> std::process::Command {
    let mut cmd = bin();
    cmd.args(global)
        .args(["run", "--no-lock", "--http", http, "--state-file"])
        .arg(state);
    if broker {
        cmd.args(["--broker", "stdout://"]);
    }
    cmd
}

/// `run --no-lock --broker stdout://` on an `every: 1s` entry in a
/// directory of its own, with `global` flags before `run`, extra `args`
/// after it and `env`; stopped once the first message is out.
fn run_until_first_message(global: &[&str], args: &[&str], env: &[(&str, &str)]) -> Metronome {
    let dir = tempfile::tempdir().unwrap();
    let s = write(&dir, "s.yaml", "schedules:\n  tick: {task: t, every: 1s}\n");
    let mut cmd = standalone(global, "127.0.0.1:0", &dir.path().join("state.json"), true);
    cmd.arg("--schedule")
        .arg(&s)
        .args(args)
        .envs(env.iter().copied());
    let mut m = Metronome::spawn(cmd).keeping(dir);
    wait_until(
        "a first message",
        || !m.stdout_lines().is_empty(),
        || m.logs(),
    );
    m.stop();
    m
}

/// JSON log lines of `m` at `level`.
fn lines_at(m: &Metronome, level: &str) -> Vec<Value> {
    m.logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|j| j["level"] == level)
        .collect()
}

#[test]
fn loglevel_takes_celerys_names_in_any_case_and_help_names_metronome_log() {
    let help = run_ok(bin().arg("--help"));
    assert!(help.contains("-l, --loglevel <LOGLEVEL>"), "{help}");
    assert!(help.contains("METRONOME_LOG "), "{help}");
    for l in ["debug", "info", "warning", "error", "critical"] {
        assert!(help.contains(l), "{l} missing from --help:\n{help}");
    }
    let out = bin()
        .args(["-l", "verbose", "check", "x.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid value 'verbose'") && err.contains("critical"),
        "{err}"
    );
    // WARNING hides the info lines that Info (and the default) show.
    let quiet = run_until_first_message(&["--log-format", "json", "-l", "WARNING"], &[], &[]);
    assert!(lines_at(&quiet, "INFO").is_empty(), "{}", quiet.logs());
    let info = run_until_first_message(&["--log-format", "json", "--loglevel", "Info"], &[], &[]);
    assert!(!lines_at(&info, "INFO").is_empty(), "{}", info.logs());
    // The flag wins over METRONOME_LOG.
    let both = run_until_first_message(
        &["--log-format", "json", "-l", "error"],
        &[],
        &[("METRONOME_LOG", "debug")],
    );
    assert!(lines_at(&both, "INFO").is_empty() && lines_at(&both, "DEBUG").is_empty());
}

/// By default only metronome's own lines reach INFO; METRONOME_LOG as a
/// full filter brings the dependencies' back (so the check can fail).
#[test]
fn dependency_noise_stays_below_info_unless_asked_for() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("m.db").display());
    let foreign = |m: &Metronome| -> Vec<String> {
        m.logs()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|j| !j["target"].as_str().unwrap_or("").starts_with("metronome"))
            .map(|j| j.to_string())
            .collect()
    };
    let quiet = run_until_first_message(&["--log-format", "json"], &["--database", &url], &[]);
    assert_eq!(foreign(&quiet), Vec::<String>::new());
    let noisy = run_until_first_message(
        &["--log-format", "json"],
        &["--database", &url],
        &[("METRONOME_LOG", "debug")],
    );
    assert!(
        foreign(&noisy).iter().any(|l| l.contains("sqlx")),
        "{}",
        noisy.logs()
    );
}

#[test]
fn no_colours_when_stderr_is_not_a_terminal() {
    let m = run_until_first_message(&[], &[], &[]);
    let logs = m.logs();
    assert!(logs.contains("http api listening"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "ANSI escapes in piped logs: {logs:?}"
    );
}

#[test]
fn pidfile_is_written_refuses_a_second_start_and_is_removed_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("beat.pid");
    let s = write(&dir, "s.yaml", "schedules:\n  a: {task: t, every: 1h}\n");
    let start = |state: &str| {
        let mut cmd = standalone(&[], "off", &dir.path().join(state), true);
        cmd.arg("--schedule").arg(&s).arg("--pidfile").arg(&pidfile);
        cmd
    };
    let mut first = Metronome::spawn(start("one.json"));
    let pid = first.id().to_string();
    wait_until(
        "the pid file",
        || std::fs::read_to_string(&pidfile).is_ok_and(|t| t.trim() == pid),
        || first.logs(),
    );
    let out = start("two.json").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("names process {pid}, which is running")),
        "{err}"
    );
    first.stop();
    assert!(!pidfile.exists(), "the pid file outlived the process");
    // A stale file (a pid that is not running) is replaced.
    std::fs::write(&pidfile, "999999999\n").unwrap();
    let mut again = Metronome::spawn(start("one.json"));
    let pid = again.id().to_string();
    wait_until(
        "the pid file replaced",
        || std::fs::read_to_string(&pidfile).is_ok_and(|t| t.trim() == pid),
        || again.logs(),
    );
    again.stop();
}

#[tokio::test]
async fn secrets_come_from_files_and_flags_with_secrets_are_warned_about() {
    use crate::util::http::send;
    let dir = tempfile::tempdir().unwrap();
    let token = write(&dir, "token", "s3cret-token\n");
    let broker = write(&dir, "broker", "stdout://\r\n");
    let s = write(&dir, "s.yaml", "schedules:\n  a: {task: t, every: 1h}\n");
    let mut cmd = standalone(
        &["--log-format", "json"],
        "127.0.0.1:0",
        &dir.path().join("state.json"),
        false,
    );
    cmd.arg("--schedule")
        .arg(&s)
        .env("METRONOME_API_TOKEN_FILE", &token)
        .env("METRONOME_BROKER_URL_FILE", &broker);
    let mut m = Metronome::spawn(cmd);
    m.wait_http();
    let post = |t: &'static str| {
        send(
            &m,
            reqwest::Method::POST,
            "/api/v1/schedules/a/run",
            Some(t),
            None,
        )
    };
    assert_eq!(post("wrong").await.0, 401);
    assert_eq!(
        post("s3cret-token").await.0,
        200,
        "the token is the file's text without its line break"
    );
    m.stop();
    assert!(!m.logs().contains("s3cret"), "{}", m.logs());
    // Both the variable and its file: refused, naming both.
    let out = bin()
        .args(["check", "x.yaml"])
        .env("METRONOME_BROKER_URL", "stdout://")
        .env("METRONOME_BROKER_URL_FILE", &broker)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("both METRONOME_BROKER_URL and METRONOME_BROKER_URL_FILE"),
        "{err}"
    );
    // A token and a URL with a password as flags are warned about; a URL
    // without one is not.
    let m = run_until_first_message(
        &["--log-format", "json"],
        &[
            "--api-token",
            "flag-token",
            "--database",
            &format!("sqlite://{}", dir.path().join("m.db").display()),
        ],
        &[],
    );
    let warned: Vec<String> = lines_at(&m, "WARN")
        .iter()
        .filter(|j| j["flag"].is_string())
        .map(|j| j["flag"].to_string())
        .collect();
    assert_eq!(warned, ["\"--api-token\""], "{}", m.logs());
    assert!(!m.logs().contains("flag-token"), "{}", m.logs());
    let out = bin()
        .args([
            "--log-format",
            "json",
            "check",
            "--broker",
            "redis://:pw@127.0.0.1:1/0",
        ])
        .arg(&s)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--broker on the command line is visible")
            && err.contains("METRONOME_BROKER_URL_FILE"),
        "{err}"
    );
    assert!(!err.contains(":pw@"), "{err}");
}

#[test]
fn schedule_paths_take_directories_and_comma_lists() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("beat.d");
    std::fs::create_dir(&d).unwrap();
    write_file(&d, "b.yml", "schedules:\n  b: {task: t, every: 1h}\n");
    write_file(&d, "a.yaml", "schedules:\n  a: {task: t, every: 1h}\n");
    write_file(&d, "README.txt", "not a schedule");
    let c = write(&dir, "c.yaml", "schedules:\n  c: {task: t, every: 1h}\n");
    let out = run_ok(bin().arg("check").arg(&d).arg(&c));
    assert!(out.starts_with("ok: 3 schedules in 3 files"), "{out}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = bin().arg("check").arg(&empty).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no schedule files"));
    // METRONOME_SCHEDULE: a directory and a file, comma-separated.
    let mut cmd = standalone(
        &["--log-format", "json"],
        "127.0.0.1:0",
        &dir.path().join("state.json"),
        true,
    );
    cmd.env(
        "METRONOME_SCHEDULE",
        format!("{},{}", d.display(), c.display()),
    );
    let mut m = Metronome::spawn(cmd);
    m.wait_http();
    let (_, list) =
        crate::util::http::get_blocking(&m.addr, "/api/v1/schedules", Duration::from_secs(10))
            .unwrap();
    let locations: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["location"].as_str().unwrap())
        .collect();
    assert_eq!(locations.len(), 3, "{list}");
    assert!(
        locations[0].contains("beat.d/a.yaml") && locations[1].contains("beat.d/b.yml"),
        "{locations:?}"
    );
    assert!(locations[2].contains("c.yaml"), "{locations:?}");
    m.stop();
}

#[test]
fn check_warns_about_routes_of_other_files_and_priorities_on_redis() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        &dir,
        "a.yaml",
        "routes:\n  \"app.email.*\": {queue: email}\nschedules:\n  digest: {task: app.email.digest, every: 1h}\n",
    );
    let b = write(
        &dir,
        "b.yaml",
        "schedules:\n  reminder: {task: app.email.remind, every: 1h, options: {priority: 9}}\n",
    );
    let check = |broker: Option<&str>| {
        let mut cmd = bin();
        cmd.arg("check").arg(&a).arg(&b);
        if let Some(url) = broker {
            cmd.env("CELERY_BROKER_URL", url);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            crate::util::process::output_text(&out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = check(None);
    let b = b.display();
    assert!(
        err.contains(&format!(
            "{b}:2:3: warning: schedules.reminder: task `app.email.remind` matches route `app.email.*` of {}:2:3, which does not apply here",
            a.display()
        )),
        "{err}"
    );
    assert!(err.ends_with("1 warning\n"), "{err}");
    let err = check(Some("redis://127.0.0.1:6379/0"));
    assert!(
        err.contains(&format!("{b}:2:3: warning: schedules.reminder: priority 9 on Redis: kombu's Redis transport serves LOWER numbers first")),
        "{err}"
    );
    assert!(err.ends_with("2 warnings\n"), "{err}");
    assert!(check(Some("amqp://guest:guest@127.0.0.1//")).ends_with("1 warning\n"));
}

/// README's "Try it", from a directory of its own: the example prints a
/// message within seconds (its `heartbeat`), the log lists each entry's
/// next run, soonest first, and the run state lands in `.metronome/`,
/// which the repository's .gitignore ignores.
#[test]
fn try_it_prints_at_once_lists_next_runs_and_keeps_state_where_git_ignores_it() {
    let cwd = tempfile::tempdir().unwrap();
    let example = crate::util::repo().join("schedules/example.yaml");
    let mut cmd = bin();
    cmd.current_dir(cwd.path())
        .args(["--log-format", "json", "run", "--schedule"])
        .arg(&example)
        .args(["--broker", "stdout://", "--no-lock", "--http", "off"]);
    let mut m = Metronome::spawn(cmd);
    wait_until(
        "a first message",
        || !m.stdout_lines().is_empty(),
        || m.logs(),
    );
    m.stop();
    assert_eq!(messages(&m)[0]["headers"]["task"], "app.tasks.heartbeat");
    let next: Vec<Value> = m.log_events("next run");
    let names: Vec<&str> = next.iter().map(|e| e["entry"].as_str().unwrap()).collect();
    // Every enabled entry, soonest first (`launch` is a 2027 one-off).
    assert_eq!(names.len(), 7, "{names:?}");
    assert_eq!(names[0], "heartbeat");
    assert_eq!(names[6], "launch");
    let utc: Vec<jiff::Timestamp> = next
        .iter()
        .map(|e| e["utc"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(utc.windows(2).all(|w| w[0] <= w[1]), "{utc:?}");
    assert!(
        m.logs().contains("\"entries\":1"),
        "paused-thing has no next run: {}",
        m.logs()
    );
    let state = cwd.path().join(".metronome");
    for f in ["state.json", "state.json.journal", "state.json.lock"] {
        assert!(state.join(f).exists(), "{f} missing");
        let ignored = std::process::Command::new("git")
            .current_dir(crate::util::repo())
            .args(["check-ignore", "-q", &format!(".metronome/{f}")])
            .status()
            .unwrap();
        assert!(
            ignored.success(),
            ".metronome/{f} is not ignored by .gitignore"
        );
    }
}

#[test]
fn next_runs_logged_at_start_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("schedules:\n");
    for i in 0..60 {
        yaml.push_str(&format!("  e{i:02}: {{task: t, every: {}s}}\n", 100 + i));
    }
    let s = write(&dir, "s.yaml", &yaml);
    let mut cmd = standalone(
        &["--log-format", "json"],
        "off",
        &dir.path().join("state.json"),
        true,
    );
    cmd.arg("--schedule").arg(&s);
    let mut m = Metronome::spawn(cmd);
    wait_until(
        "the summary",
        || m.logs().contains("more entries not listed"),
        || m.logs(),
    );
    m.stop();
    let next = m.log_events("next run");
    assert_eq!(next.len(), 50);
    assert_eq!(next[0]["entry"], "e00");
    assert_eq!(next[49]["entry"], "e49");
    assert!(m.logs().contains("\"more\":10"), "{}", m.logs());
}
