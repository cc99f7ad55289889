//! Database-backed schedules and the HTTP API, end to end: the real binary,
//! real PostgreSQL (127.0.0.1:5432, database per test, dropped after) and
//! real SQLite files, HTTP over loopback.
//!
//! Set `METRONOME_TEST_PG` to point at another server (default
//! `postgres://postgres@127.0.0.1:5432/test`, trust auth).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::util::db::{Pg, admin_url, migrate, sqlite_url};
use crate::util::http::{client, get, metrics, send, send_json};
use crate::util::process::Metronome as Instance;
use crate::util::wait_for;

const TOKEN: &str = "s3cret-token";

/// `metronome run` serving the API, its state file in a directory of its
/// own; `args` follow `run`.
fn start(args: &[&str], token: Option<&str>) -> Instance {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let mut all = vec!["--state-file", state.to_str().unwrap()];
    all.extend_from_slice(args);
    Instance::serve(&all, token).keeping(dir)
}

/// `POST /api/v1/schedules` with `body`.
async fn create(i: &Instance, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    send_json(i, reqwest::Method::POST, "/api/v1/schedules", token, body).await
}

/// `POST /api/v1/schedules` with `text` as the body, JSON or not.
async fn create_raw(i: &Instance, token: Option<&str>, text: &str) -> (StatusCode, Value) {
    send(
        i,
        reqwest::Method::POST,
        "/api/v1/schedules",
        token,
        Some(text.into()),
    )
    .await
}

/// The status of `method path` without a body.
async fn status(
    i: &Instance,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> StatusCode {
    send(i, method, path, token, None).await.0
}

async fn task_of(i: &Instance, name: &str) -> Option<String> {
    let (s, v) = get(i, &format!("/api/v1/schedules/{name}")).await;
    (s == StatusCode::OK).then(|| v["task"].as_str().map(str::to_string))?
}

fn yaml_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let p = dir.path().join("file.yaml");
    std::fs::write(
        &p,
        "schedules:\n  from-file:\n    task: app.tasks.file\n    cron: \"0 3 * * *\"\n",
    )
    .unwrap();
    p
}

/// Asserts that the database behind connection `$c` refuses every
/// statement of `$bad` (a macro: PostgreSQL and SQLite connections share
/// no executor type here).
macro_rules! rejects_all {
    ($c:expr, $bad:expr, $db:expr) => {
        for q in $bad {
            assert!(
                sqlx::query(sqlx::AssertSqlSafe(q))
                    .execute(&mut $c)
                    .await
                    .is_err(),
                "{} accepted: {q}",
                $db
            );
        }
    };
}

/// Runs the statement `$q` on connection `$c`; it must succeed.
macro_rules! exec {
    ($c:expr, $q:expr) => {
        sqlx::query($q).execute(&mut $c).await.unwrap()
    };
}

/// The one `BIGINT` that query `$q` returns on connection `$c`.
macro_rules! scalar {
    ($c:expr, $q:expr) => {
        sqlx::query_as::<_, (i64,)>($q)
            .fetch_one(&mut $c)
            .await
            .unwrap()
            .0
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_from_empty_create_tables_whose_constraints_reject_invalid_rows() {
    let pg = Pg::new().await;
    migrate(&pg.url);
    migrate(&pg.url); // idempotent
    let mut c = pg.conn().await;
    let bad = [
        "INSERT INTO metronome_schedule (name, task) VALUES ('none', 't')",
        "INSERT INTO metronome_schedule (name, task, cron, every) VALUES ('two', 't', '* * * * *', '1s')",
        "INSERT INTO metronome_schedule (name, task, every, options) VALUES ('prio', 't', '1s', '{\"priority\": 300}')",
        "INSERT INTO metronome_schedule (name, task, every, kwargs) VALUES ('kw', 't', '1s', '[1]')",
        "INSERT INTO metronome_schedule (name, task, every, misfire) VALUES ('mf', 't', '1s', 'sometimes')",
        "INSERT INTO metronome_schedule (name, task, every) VALUES ('a/b', 't', '1s')",
    ];
    rejects_all!(c, bad, "PostgreSQL");
    exec!(
        c,
        "INSERT INTO metronome_schedule (name, task, every, options) VALUES ('ok', 't', '1s', '{\"priority\": 9}')"
    );
    let v1 = scalar!(
        c,
        "SELECT version FROM metronome_schedule WHERE name = 'ok'"
    );
    exec!(
        c,
        "UPDATE metronome_schedule SET task = 'u' WHERE name = 'ok'"
    );
    let v2 = scalar!(
        c,
        "SELECT version FROM metronome_schedule WHERE name = 'ok'"
    );
    assert!(v2 > v1, "an update must bump the row's version");

    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    migrate(&url);
    migrate(&url);
    let mut s = sqlx::SqliteConnection::connect(&url).await.unwrap();
    rejects_all!(s, bad, "SQLite");
    exec!(
        s,
        "INSERT INTO metronome_schedule (name, task, every) VALUES ('ok', 't', '1s')"
    );
    exec!(
        s,
        "UPDATE metronome_schedule SET task = 'u' WHERE name = 'ok'"
    );
    exec!(s, "DELETE FROM metronome_schedule WHERE name = 'ok'");
    let meta = scalar!(s, "SELECT version FROM metronome_meta");
    assert_eq!(meta, 3, "insert, update and delete each bump the version");
    let gone = scalar!(
        s,
        "SELECT version FROM metronome_schedule_deleted WHERE name = 'ok'"
    );
    assert_eq!(gone, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_with_errors_and_auth_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let file = yaml_file(&dir);
    let url = sqlite_url(dir.path());
    let i = start(
        &["--database", &url, "--schedule", file.to_str().unwrap()],
        Some(TOKEN),
    );
    use reqwest::Method;
    let t = Some(TOKEN);

    let (s, v) = get(&i, "/healthz").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = get(&i, "/readyz").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["role"], "leader");

    // Create.
    let body = json!({"name": "db-one", "task": "app.tasks.one", "every": "1h",
        "kwargs": {"x": 1}, "options": {"queue": "q1", "priority": 5}})
    .to_string();
    let (s, v) = send(&i, Method::POST, "/api/v1/schedules", t, Some(body.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["source"], "database");
    assert_eq!(v["schedule"], json!({"every": "1h"}));
    assert!(v["next_run"].is_string());
    // Duplicate, and a name that a file defines.
    let (s, v) = send(&i, Method::POST, "/api/v1/schedules", t, Some(body)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = create(
        &i,
        t,
        json!({"name": "from-file", "task": "x", "every": "1s"}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        v["error"].as_str().unwrap().contains("file.yaml:2:3"),
        "{v}"
    );

    // Bad input: 400 unparseable, 422 invalid naming the field, 413 too large.
    let (s, v) = create_raw(&i, t, "{not json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].is_string());
    let (s, v) = create(
        &i,
        t,
        json!({"name": "bad", "task": "t", "cron": "61 * * * *"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"].as_str().unwrap().starts_with("cron: "), "{v}");
    let (s, v) = create(
        &i,
        t,
        json!({"name": "bad", "task": "t", "every": "1s", "options": {"priority": 300}}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"].as_str().unwrap().contains("options.priority"),
        "{v}"
    );
    let (s, v) = create(
        &i,
        t,
        json!({"name": "bad", "task": "t", "every": "1s", "cron": "* * * * *"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = create(&i, t, json!({"name": "bad", "task": "t", "evry": "1s"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("did you mean `every`"),
        "{v}"
    );
    let (s, _) = create_raw(&i, t, "[1, 2]").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = create(&i, t, json!({"task": "t", "every": "1s"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"].as_str().unwrap().starts_with("name:"), "{v}");
    let big =
        json!({"name": "big", "task": "t", "every": "1s", "description": "x".repeat(300 * 1024)});
    let (s, _) = send(
        &i,
        Method::POST,
        "/api/v1/schedules",
        t,
        Some(big.to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);

    // Auth: missing and wrong tokens.
    let (s, _) = create(&i, None, json!({"name": "n", "task": "t", "every": "1s"})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let s = status(
        &i,
        Method::DELETE,
        "/api/v1/schedules/db-one",
        Some("wrong"),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let s = status(
        &i,
        Method::POST,
        "/api/v1/schedules/db-one/run",
        Some("wrong"),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Read.
    let (s, v) = get(&i, "/api/v1/schedules").await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db-one", "from-file"]);
    let (s, v) = get(&i, "/api/v1/schedules/from-file").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["source"], "file");
    assert!(
        v["location"].as_str().unwrap().ends_with("file.yaml:2:3"),
        "{v}"
    );
    let (s, v) = get(&i, "/api/v1/schedules/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().unwrap().contains("nope"));

    // Replace (PUT): existing → 200, new → 201; name must match the URL.
    let (s, v) = send_json(
        &i,
        Method::PUT,
        "/api/v1/schedules/db-one",
        t,
        json!({"task": "app.tasks.one", "cron": "30 4 * * *", "timezone": "Europe/Berlin"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["schedule"], json!({"cron": "30 4 * * *"}));
    assert_eq!(v["timezone"], "Europe/Berlin");
    let (s, _) = send_json(
        &i,
        Method::PUT,
        "/api/v1/schedules/db-two",
        t,
        json!({"task": "app.tasks.two", "every": "1s"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = send_json(
        &i,
        Method::PUT,
        "/api/v1/schedules/db-two",
        t,
        json!({"name": "other", "task": "t", "every": "1s"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = send_json(
        &i,
        Method::PUT,
        "/api/v1/schedules/from-file",
        t,
        json!({"task": "t", "every": "1s"}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Next runs: all, per entry, bad `from`.
    let (s, v) = get(&i, "/api/v1/next-runs?count=5&from=2030-01-01T00:00:00Z").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let runs = v.as_array().unwrap();
    assert_eq!(runs.len(), 5);
    let from: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
    assert!(runs.iter().all(|r| {
        r["utc"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
            > from
    }));
    let (s, v) = get(
        &i,
        "/api/v1/schedules/db-one/next-runs?count=2&from=2030-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!([
            {"schedule": "db-one", "task": "app.tasks.one", "at": "2030-01-01T04:30:00+01:00", "utc": "2030-01-01T03:30:00Z"},
            {"schedule": "db-one", "task": "app.tasks.one", "at": "2030-01-02T04:30:00+01:00", "utc": "2030-01-02T03:30:00Z"}
        ])
    );
    let (s, _) = get(&i, "/api/v1/schedules/nope/next-runs").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = get(&i, "/api/v1/next-runs?from=yesterday").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().starts_with("from:"), "{v}");

    // Patch: disable; invalid patch → 422; unknown → 404; file → 409.
    let (s, v) = send_json(
        &i,
        Method::PATCH,
        "/api/v1/schedules/db-two",
        t,
        json!({"enabled": false}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["enabled"], false);
    assert!(v["next_run"].is_null());
    let (s, v) = send_json(
        &i,
        Method::PATCH,
        "/api/v1/schedules/db-two",
        t,
        json!({"every": "-5s"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"].as_str().unwrap().starts_with("every:"), "{v}");
    let (s, v) = send_json(
        &i,
        Method::PATCH,
        "/api/v1/schedules/db-one",
        t,
        json!({"cron": null, "every": "2h", "kwargs": {"x": null, "y": 2}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["schedule"], json!({"every": "2h"}));
    let (s, _) = send(
        &i,
        Method::PATCH,
        "/api/v1/schedules/nope",
        t,
        Some("{}".into()),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = send_json(
        &i,
        Method::PATCH,
        "/api/v1/schedules/from-file",
        t,
        json!({"enabled": false}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Run now: a fresh task id, published.
    let (s, v) = send(&i, Method::POST, "/api/v1/schedules/from-file/run", t, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = v["task_id"].as_str().unwrap().to_string();
    wait_for("the run-now message", Duration::from_secs(10), || {
        let found = i.published().iter().any(|m| m.to_string().contains(&id));
        async move { found }
    })
    .await;
    let s = status(&i, Method::POST, "/api/v1/schedules/nope/run", t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Delete: database entry → 204, then 404; file entry → 409 naming the file.
    let (s, v) = send(&i, Method::DELETE, "/api/v1/schedules/from-file", t, None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(v["error"].as_str().unwrap().contains("file.yaml"), "{v}");
    let s = status(&i, Method::DELETE, "/api/v1/schedules/db-two", t).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let s = status(&i, Method::DELETE, "/api/v1/schedules/db-two", t).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = get(&i, "/api/v1/schedules/db-two").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Metrics and the OpenAPI document.
    let r = client().get(i.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    for needle in [
        "metronome_runs_dispatched_total",
        "metronome_runs_requested_total 1",
        "metronome_schedules{source=\"file\"} 1",
        "metronome_schedules{source=\"database\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let (s, v) = get(&i, "/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/schedules",
        "/api/v1/schedules/{name}",
        "/api/v1/schedules/{name}/next-runs",
        "/api/v1/schedules/{name}/run",
        "/api/v1/next-runs",
    ] {
        assert!(
            v["paths"].get(p).is_some(),
            "{p} missing from the OpenAPI document"
        );
    }
    for m in ["get", "put", "patch", "delete"] {
        assert!(
            v["paths"]["/api/v1/schedules/{name}"].get(m).is_some(),
            "{m}"
        );
    }
    assert!(!i.logs().contains(TOKEN), "the token must not be logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_without_a_configured_token_are_forbidden() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let i = start(&["--database", &url], None);
    let body = json!({"name": "n", "task": "t", "every": "1s"}).to_string();
    let (s, v) = send(
        &i,
        reqwest::Method::POST,
        "/api/v1/schedules",
        Some("anything"),
        Some(body),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let s = status(&i, reqwest::Method::DELETE, "/api/v1/schedules/n", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = get(&i, "/api/v1/schedules").await;
    assert_eq!(s, StatusCode::OK);
}

/// Edits by raw SQL, timed until both instances show them.
async fn live_edit_latency(label: &str, a: &Instance, b: &Instance, edit: impl AsyncFn(usize)) {
    let mut samples = Vec::new();
    for n in 0..20 {
        let task = format!("app.tasks.v{n}");
        // Spread the edits over the polling period, not right after a poll.
        tokio::time::sleep(Duration::from_millis((n as u64 * 37) % 250)).await;
        let start = Instant::now();
        edit(n).await;
        for i in [a, b] {
            wait_for("a live edit", Duration::from_secs(30), || {
                let task = task.clone();
                async move { task_of(i, "live").await.as_deref() == Some(task.as_str()) }
            })
            .await;
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "live edit ({label}, 2 instances, 20 edits by raw SQL): median {:.1} ms, max {:.1} ms",
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_edits_reach_every_instance_postgres() {
    let pg = Pg::new().await;
    migrate(&pg.url);
    pg.exec("INSERT INTO metronome_schedule (name, task, every) VALUES ('live', 'app.tasks.start', '1h')")
        .await;
    // Many other rows: an edit must cost one row's work, not a reload.
    pg.exec("INSERT INTO metronome_schedule (name, task, every) SELECT 'bulk-' || g, 'app.tasks.bulk', '1h' FROM generate_series(1, 5000) g")
        .await;
    let a = start(&["--database", &pg.url], Some(TOKEN));
    let b = start(&["--database", &pg.url], Some(TOKEN));
    let mut c = pg.conn().await;
    let c = tokio::sync::Mutex::new(&mut c);
    live_edit_latency("PostgreSQL LISTEN/NOTIFY", &a, &b, async |n| {
        sqlx::query("UPDATE metronome_schedule SET task = $1 WHERE name = 'live'")
            .bind(format!("app.tasks.v{n}"))
            .execute(&mut **c.lock().await)
            .await
            .unwrap();
    })
    .await;
    // Deletion by raw SQL is seen too.
    pg.exec("DELETE FROM metronome_schedule WHERE name = 'live'")
        .await;
    for i in [&a, &b] {
        wait_for("the deletion", Duration::from_secs(30), || async {
            get(i, "/api/v1/schedules/live").await.0 == StatusCode::NOT_FOUND
        })
        .await;
    }
    assert!(a.logs().contains("\"changed\":1"), "{}", a.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_edits_reach_every_instance_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    migrate(&url);
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    exec!(
        c,
        "INSERT INTO metronome_schedule (name, task, every) VALUES ('live', 'app.tasks.start', '1h')"
    );
    let a = start(&["--database", &url], Some(TOKEN));
    let b = start(&["--database", &url], Some(TOKEN));
    let c = tokio::sync::Mutex::new(&mut c);
    live_edit_latency("SQLite version polling", &a, &b, async |n| {
        sqlx::query("UPDATE metronome_schedule SET task = $1 WHERE name = 'live'")
            .bind(format!("app.tasks.v{n}"))
            .execute(&mut **c.lock().await)
            .await
            .unwrap();
    })
    .await;
    sqlx::query("DELETE FROM metronome_schedule WHERE name = 'live'")
        .execute(&mut **c.lock().await)
        .await
        .unwrap();
    for i in [&a, &b] {
        wait_for("the deletion", Duration::from_secs(30), || async {
            get(i, "/api/v1/schedules/live").await.0 == StatusCode::NOT_FOUND
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_rows_are_skipped_listed_and_conflicts_name_both_places() {
    let pg = Pg::new().await;
    migrate(&pg.url);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml_file(&dir);
    pg.exec(
        "INSERT INTO metronome_schedule (name, task, every) VALUES ('good', 'app.tasks.good', '1s');
         INSERT INTO metronome_schedule (name, task, cron) VALUES ('bad-cron', 't', '99 * * * *');
         INSERT INTO metronome_schedule (name, task, every) VALUES ('from-file', 't', '1s');",
    )
    .await;
    let i = start(
        &["--database", &pg.url, "--schedule", file.to_str().unwrap()],
        Some(TOKEN),
    );
    let (_, v) = get(&i, "/api/v1/schedules").await;
    let by_name = |v: &Value, n: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == n)
            .cloned()
            .unwrap()
    };
    assert!(
        by_name(&v, "bad-cron")["error"]
            .as_str()
            .unwrap()
            .starts_with("cron: "),
        "{v}"
    );
    let clash = by_name(&v, "from-file");
    assert_eq!(clash["source"], "file", "the file's entry runs");
    let err = clash["error"].as_str().unwrap();
    assert!(
        err.contains("file.yaml:2:3") && err.contains("database"),
        "{err}"
    );
    assert!(by_name(&v, "good")["error"].is_null());
    assert!(i.logs().contains("invalid schedule row skipped"));
    // The valid row runs.
    wait_for("a dispatch of `good`", Duration::from_secs(10), || {
        let n = i.published().len();
        async move { n > 0 }
    })
    .await;

    // Edited into an invalid state by raw SQL: the last good version keeps running.
    pg.exec("UPDATE metronome_schedule SET every = '-1s' WHERE name = 'good'")
        .await;
    wait_for("the error", Duration::from_secs(10), || async {
        get(&i, "/api/v1/schedules/good").await.1["error"].is_string()
    })
    .await;
    let (_, v) = get(&i, "/api/v1/schedules/good").await;
    assert_eq!(v["schedule"], json!({"every": "1s"}), "{v}");
    let before = i.published().len();
    wait_for("dispatches to continue", Duration::from_secs(10), || {
        let n = i.published().len();
        async move { n > before + 1 }
    })
    .await;
    // Fixed: the error clears.
    pg.exec("UPDATE metronome_schedule SET every = '2s' WHERE name = 'good'")
        .await;
    wait_for("the fix", Duration::from_secs(10), || async {
        let v = get(&i, "/api/v1/schedules/good").await.1;
        v["error"].is_null() && v["schedule"] == json!({"every": "2s"})
    })
    .await;
    let text = metrics(&i).await;
    assert!(text.contains("metronome_schedules_invalid 2"), "{text}");
}

async fn listener_pid(pg: &Pg) -> Option<i32> {
    let mut c = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
    sqlx::query_as::<_, (i32,)>(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'metronome-listener'",
    )
    .bind(&pg.name)
    .fetch_optional(&mut c)
    .await
    .unwrap()
    .map(|(p,)| p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_made_while_the_listener_reconnects_are_applied_after_resync() {
    let pg = Pg::new().await;
    migrate(&pg.url);
    pg.exec(
        "INSERT INTO metronome_schedule (name, task, every) VALUES ('live', 'app.tasks.v0', '1h')",
    )
    .await;
    let i = start(&["--database", &pg.url], Some(TOKEN));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pid = listener_pid(&pg).await;
    while pid.is_none() {
        assert!(Instant::now() < deadline, "no listener connection");
        tokio::time::sleep(Duration::from_millis(20)).await;
        pid = listener_pid(&pg).await;
    }
    let mut admin = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
    let mut c = pg.conn().await;
    for n in 1..=5 {
        // Kill the listener and edit in the gap before it is back.
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid.unwrap())
            .execute(&mut admin)
            .await
            .unwrap();
        let start = Instant::now();
        sqlx::query("UPDATE metronome_schedule SET task = $1 WHERE name = 'live'")
            .bind(format!("app.tasks.v{n}"))
            .execute(&mut c)
            .await
            .unwrap();
        let want = format!("app.tasks.v{n}");
        wait_for("the edit after resync", Duration::from_secs(30), || async {
            task_of(&i, "live").await.as_deref() == Some(want.as_str())
        })
        .await;
        println!(
            "edit during listener reconnect #{n} applied after {:.1} ms",
            start.elapsed().as_secs_f64() * 1000.0
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let p = listener_pid(&pg).await;
            if p.is_some() && p != pid {
                pid = p;
                break;
            }
            assert!(Instant::now() < deadline, "the listener did not come back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(
        i.logs().contains("database listener disconnected")
            || i.logs().contains("database listener failed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_keeps_the_schedule_running_and_resyncs() {
    let pg = Pg::new().await;
    migrate(&pg.url);
    pg.exec(
        "INSERT INTO metronome_schedule (name, task, every) VALUES ('tick', 'app.tasks.tick', '1s');
         INSERT INTO metronome_schedule (name, task, every) VALUES ('edited', 'app.tasks.before', '1h');",
    )
    .await;
    let i = start(&["--database", &pg.url], Some(TOKEN));
    // After the start-up reconcile (the syncer ticks every 250 ms): the
    // outage must be found through the listener's lost connection.
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Outage: no new connections, every existing one terminated.
    pg.admin(
        "ALTER DATABASE $DB ALLOW_CONNECTIONS false;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$DB';",
    )
    .await;
    wait_for(
        "readiness to report the outage",
        Duration::from_secs(30),
        || async { get(&i, "/readyz").await.1["database"] == "unreachable" },
    )
    .await;
    let (s, v) = get(&i, "/readyz").await;
    assert_eq!(
        s,
        StatusCode::OK,
        "still dispatching the last good schedule: {v}"
    );
    let before = i.published().len();
    wait_for(
        "dispatches during the outage",
        Duration::from_secs(15),
        || {
            let n = i.published().len();
            async move { n >= before + 2 }
        },
    )
    .await;
    let (s, _) = send_json(
        &i,
        reqwest::Method::PATCH,
        "/api/v1/schedules/edited",
        Some(TOKEN),
        json!({"enabled": false}),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::SERVICE_UNAVAILABLE,
        "writes fail while the database is down"
    );

    // Back: an edit made right after is applied, and run state is written.
    pg.admin("ALTER DATABASE $DB ALLOW_CONNECTIONS true").await;
    pg.exec("UPDATE metronome_schedule SET task = 'app.tasks.after' WHERE name = 'edited'")
        .await;
    wait_for(
        "the edit after the outage",
        Duration::from_secs(60),
        || async { task_of(&i, "edited").await.as_deref() == Some("app.tasks.after") },
    )
    .await;
    wait_for(
        "readiness to report the database back",
        Duration::from_secs(30),
        || async { get(&i, "/readyz").await.1["database"] == "connected" },
    )
    .await;
    let mut c = pg.conn().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = scalar!(
            c,
            "SELECT total_runs FROM metronome_state WHERE name = 'tick'"
        );
        if n >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "run state not written after the outage ({n} runs)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(i.logs().contains("database unreachable"), "{}", i.logs());
}
