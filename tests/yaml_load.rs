//! Schedule files: what is accepted, and every error reported as
//! `FILE:LINE:COL: message`.

use metronome::entry::{Expires, Misfire};
use metronome::schedule::Schedule;
use metronome::source::yaml::{load_files, load_str};

fn errors(yaml: &str) -> Vec<String> {
    match load_str("s.yaml", yaml, &None) {
        Ok(e) => panic!("expected errors, loaded {} entries", e.len()),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn has(errs: &[String], needle: &str) {
    assert!(
        errs.iter().any(|e| e.contains(needle)),
        "no error containing {needle:?} in {errs:#?}"
    );
}

#[test]
fn the_example_file_loads() {
    let entries = load_files(&["schedules/example.yaml"], &None).unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<&str> = entries.iter().map(|e| e.schedule.kind()).collect();
    for k in ["cron", "crontab", "every", "solar", "at"] {
        assert!(kinds.contains(&k), "example lacks {k}");
    }
    let digest = entries.iter().find(|e| e.name == "weekly-digest").unwrap();
    assert_eq!(
        digest.options.queue.as_deref(),
        Some("email"),
        "routes apply"
    );
    assert_eq!(digest.options.priority, Some(3));
    let cleanup = entries
        .iter()
        .find(|e| e.name == "nightly-cleanup")
        .unwrap();
    assert_eq!(cleanup.timezone_name, "America/New_York");
    assert_eq!(
        cleanup.options.queue.as_deref(),
        Some("celery"),
        "defaults apply"
    );
    assert_eq!(
        cleanup.options.expires,
        Some(Expires::After(jiff::SignedDuration::from_secs(300)))
    );
    let sync = entries.iter().find(|e| e.name == "weekday-sync").unwrap();
    assert_eq!(sync.timezone_name, "Europe/Berlin", "file zone applies");
    let paused = entries.iter().find(|e| e.name == "paused-thing").unwrap();
    assert!(!paused.enabled);
    assert_eq!(paused.misfire, Misfire::All);
}

#[test]
fn routes_match_first_glob_and_entry_options_win() {
    let e = load_str(
        "s.yaml",
        "routes:\n  'a.*': {queue: first, priority: 1}\n  'a.b': {queue: second}\nschedules:\n  x:\n    task: a.b\n    every: 1s\n    options: {priority: 9}\n",
        &None,
    )
    .unwrap();
    assert_eq!(e[0].options.queue.as_deref(), Some("first"));
    assert_eq!(e[0].options.priority, Some(9));
}

#[test]
fn unknown_key_with_suggestion_and_position() {
    let errs = errors("schedules:\n  a:\n    task: t\n    cronn: '* * * * *'\n");
    assert!(errs.contains(&"s.yaml:4:5: schedules.a.cronn: unknown key `cronn`; did you mean `cron`? (expected one of: task, cron, crontab, every, solar, at, timezone, args, kwargs, options, enabled, start_at, end_at, misfire, grace, jitter, dst, description, relative)".to_string()), "{errs:#?}");
    has(&errs, "s.yaml:2:3: schedules.a: no schedule");
}

#[test]
fn two_kinds_or_none() {
    let errs = errors(
        "schedules:\n  a:\n    task: t\n    cron: '* * * * *'\n    every: 5s\n  b:\n    task: t\n",
    );
    has(
        &errs,
        "s.yaml:5:12: schedules.a: more than one schedule kind (cron, every)",
    );
    has(&errs, "s.yaml:6:3: schedules.b: no schedule");
}

#[test]
fn bad_field_values_are_all_reported_with_positions() {
    let yaml = "\
timezone: Mars/Olympus
schedules:
  a:
    task: t
    cron: '61 * * * *'
  b:
    task: t
    every: 0s
  c:
    task: t
    every: 10s
    options: {priority: 300}
    kwargs: [1, 2]
  d:
    task: t
    every: 1m
    start_at: '2026-02-01T00:00:00Z'
    end_at: '2026-01-01T00:00:00Z'
    misfire: sometimes
  e:
    task: t
    crontab: {minute: '5/15'}
  f:
    task: t
    crontab: {day_of_week: '7'}
  g:
    task: t
    cron: '0 0 31 2 *'
  h:
    task: t
    every: 5x
    timezone: Europe/Berln
";
    let errs = errors(yaml);
    has(
        &errs,
        "s.yaml:1:11: timezone: unknown time zone `Mars/Olympus`",
    );
    has(
        &errs,
        "s.yaml:5:11: schedules.a.cron: invalid cron expression `61 * * * *`: minute field `61`: 61 is out of range 0-59",
    );
    has(
        &errs,
        "s.yaml:8:12: schedules.b.every: interval must be positive",
    );
    has(
        &errs,
        "s.yaml:12:25: schedules.c.options.priority: priority 300 is out of range 0..=255",
    );
    has(
        &errs,
        "s.yaml:13:13: schedules.c.kwargs: expected a mapping, found a list",
    );
    has(
        &errs,
        "s.yaml:18:13: schedules.d.end_at: end_at 2026-01-01T00:00:00Z is not after start_at",
    );
    has(
        &errs,
        "s.yaml:19:14: schedules.d.misfire: unknown misfire policy `sometimes`",
    );
    has(
        &errs,
        "s.yaml:22:23: schedules.e.crontab.minute: invalid crontab: minute `5/15`: a step needs a range",
    );
    has(
        &errs,
        "s.yaml:25:28: schedules.f.crontab.day_of_week: invalid crontab: day_of_week `7`: 7 is out of range 0-6",
    );
    has(
        &errs,
        "s.yaml:28:11: schedules.g.cron: invalid cron expression `0 0 31 2 *`: day-of-month field `31`: never matches",
    );
    has(
        &errs,
        "s.yaml:31:12: schedules.h.every: invalid duration `5x`",
    );
    has(
        &errs,
        "s.yaml:32:15: schedules.h.timezone: unknown time zone `Europe/Berln`",
    );
    assert_eq!(errs.len(), 12, "{errs:#?}");
}

#[test]
fn duplicate_names_in_one_file_and_across_files() {
    let errs =
        errors("schedules:\n  a:\n    task: t\n    every: 1s\n  a:\n    task: t\n    every: 2s\n");
    has(
        &errs,
        "s.yaml:5:3: duplicate key \"a\" (first defined at line 2)",
    );
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2) = (dir.path().join("one.yaml"), dir.path().join("two.yaml"));
    std::fs::write(&p1, "schedules:\n  shared:\n    task: t\n    every: 1s\n").unwrap();
    std::fs::write(
        &p2,
        "schedules:\n  other:\n    task: t\n    every: 1s\n  shared:\n    task: u\n    every: 2s\n",
    )
    .unwrap();
    let errs: Vec<String> = load_files(&[&p1, &p2], &None)
        .unwrap_err()
        .0
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0],
        format!(
            "{}:5:3: duplicate schedule name `shared`: already defined at {}:2:3",
            p2.display(),
            p1.display()
        )
    );
}

#[test]
fn yaml_1_1_traps_keep_their_text() {
    let e = load_str(
        "s.yaml",
        "schedules:\n  a:\n    task: t\n    every: 1s\n    args: [NO, yes, on, 0755, 1_000, 1.50, ~, 12]\n    kwargs: {country: NO, mode: 0644}\n",
        &None,
    )
    .unwrap();
    assert_eq!(
        serde_json::Value::Array(e[0].args.clone()),
        serde_json::json!(["NO", "yes", "on", "0755", "1_000", 1.5, null, 12])
    );
    assert_eq!(e[0].kwargs["country"], "NO");
    assert_eq!(e[0].kwargs["mode"], "0644");
    // `enabled` only takes real booleans.
    has(
        &errors("schedules:\n  a:\n    task: t\n    every: 1s\n    enabled: yes\n"),
        "s.yaml:5:14: schedules.a.enabled: expected true or false, found a string",
    );
}

#[test]
fn invalid_yaml_and_wrong_shapes() {
    has(&errors("schedules:\n  a: [unclosed\n"), "s.yaml:");
    has(&errors(""), "s.yaml:1:1: the file is empty");
    has(
        &errors("- a\n- b\n"),
        "s.yaml:1:1: expected a mapping with `schedules` at the top, found a list",
    );
    has(
        &errors("schedules:\n  a: 5\n"),
        "s.yaml:2:6: schedules.a: expected a mapping with `task` and a schedule, found an integer",
    );
    has(
        &errors("schedules:\n  a:\n    every: 5s\n"),
        "schedules.a: missing `task`",
    );
    has(
        &errors("schedules:\n  a:\n    task: t\n    every: 5s\n    args: {a: 1}\n"),
        "s.yaml:5:11: schedules.a.args: expected a list, found a mapping",
    );
    has(
        &errors(
            "schedules:\n  a:\n    task: t\n    solar: {event: sunrize, latitude: 1, longitude: 2}\n",
        ),
        "did you mean `sunrise`?",
    );
    has(
        &errors(
            "schedules:\n  a:\n    task: t\n    solar: {event: sunrise, latitude: 91, longitude: 2}\n",
        ),
        "s.yaml:4:39: schedules.a.solar.latitude: latitude 91 is out of range -90..=90",
    );
    has(
        &errors(
            "schedules:\n  a:\n    task: t\n    solar: {event: sunrise, latitude: 1, longitude: -200}\n",
        ),
        "s.yaml:4:53: schedules.a.solar.longitude: longitude -200 is out of range -180..=180",
    );
    has(
        &errors("schedules:\n  a:\n    task: t\n    at: tomorrow\n"),
        "s.yaml:4:9: schedules.a.at: invalid instant `tomorrow`",
    );
    has(
        &errors("schedules:\n  a:\n    task: t\n    every: 1s\n    dst: {gap: jump}\n"),
        "unknown gap rule `jump`",
    );
}

#[test]
fn schedules_keep_their_written_form() {
    let e = load_str(
        "s.yaml",
        "schedules:\n  a:\n    task: t\n    crontab: {minute: 0, hour: [1, 2]}\n  b:\n    task: t\n    every: 90\n  c:\n    task: t\n    at: '2026-12-01 09:00'\n    timezone: Europe/Berlin\n",
        &None,
    )
    .unwrap();
    assert_eq!(
        e[0].schedule.to_json(),
        serde_json::json!({"crontab": {"minute": "0", "hour": "1,2", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}})
    );
    assert_eq!(
        e[1].schedule.to_json(),
        serde_json::json!({"every": "1m30s"})
    );
    match e[2].schedule {
        Schedule::At(t) => assert_eq!(
            t.to_string(),
            "2026-12-01T08:00:00Z",
            "civil time read in the entry's zone"
        ),
        _ => panic!(),
    }
}

/// `relative` (Celery's `relative=True`) applies to `every` only; `re:`
/// route keys are regular expressions, checked when the file loads.
#[test]
fn relative_and_regex_routes_are_validated() {
    let errs = errors(
        "routes:\n  're:a(': q\nschedules:\n  a: {task: t, cron: '* * * * *', relative: true}\n  b: {task: t, every: 1h, relative: 1}\n",
    );
    has(
        &errs,
        "s.yaml:2:3: routes.re:a(: invalid regular expression `a(`: unclosed group",
    );
    has(
        &errs,
        "s.yaml:4:45: schedules.a.relative: relative applies only to `every` schedules",
    );
    has(
        &errs,
        "s.yaml:5:37: schedules.b.relative: expected true or false",
    );
    let e = metronome::source::yaml::load_str(
        "s.yaml",
        "routes:\n  're:(?i)APP\\.(x|y)$': {queue: xy}\n  'app.*': other\nschedules:\n  a: {task: app.X, every: 1h, relative: true}\n  b: {task: app.xz, every: 1h}\n",
        &None,
    )
    .unwrap();
    assert_eq!(e[0].options.queue.as_deref(), Some("xy"));
    assert_eq!(
        e[0].schedule.to_json(),
        serde_json::json!({"every": "1h", "relative": true})
    );
    assert_eq!(e[1].options.queue.as_deref(), Some("other"));
}
