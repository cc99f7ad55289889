//! Real Celery workers and what they record: a worker subprocess on a
//! broker (killed on drop), the Redis list the test tasks push to, test
//! messages built from YAML, and the end-to-end scenarios every broker
//! suite runs. Invariant: each worker records under a key of its own.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use metronome::celery::message::{self, Message, Publisher};
use metronome::entry::Entry;
use serde_json::Value as Json;

use super::process::{Guard, Metronome};
use super::python::celery;
use super::redis::{delete_prefixed, lrange, redis_conn, redis_url};
use super::{PATIENCE, repo, unique};

/// A Celery worker subprocess; SIGKILLed on drop.
pub struct Worker {
    _child: Guard,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

pub struct WorkerConfig<'a> {
    pub broker: &'a str,
    pub queues: &'a str,
    pub record_key: &'a str,
    pub max_priority: Option<u8>,
    pub key_prefix: Option<&'a str>,
}

impl Worker {
    pub fn start(celery: &Path, c: &WorkerConfig) -> Worker {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("worker.log");
        let logf = File::create(&log).unwrap();
        let mut cmd = Command::new(celery);
        cmd.current_dir(repo().join("tests/celery_app"))
            .args([
                "-A", "tasks", "worker", "-P", "solo", "-c", "1", "-l", "INFO",
            ])
            .args([
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ])
            .args(["--prefetch-multiplier", "1", "-Q", c.queues])
            .arg("-n")
            .arg(format!("{}@%h", unique("w")))
            .env("METRONOME_TEST_BROKER", c.broker)
            .env("METRONOME_TEST_RECORD_URL", redis_url())
            .env("METRONOME_TEST_RECORD_KEY", c.record_key)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf);
        if let Some(p) = c.max_priority {
            cmd.env("METRONOME_TEST_MAX_PRIORITY", p.to_string());
        }
        if let Some(p) = c.key_prefix {
            cmd.env("METRONOME_TEST_KEYPREFIX", p);
        }
        let child = cmd.spawn().expect("start celery worker");
        Worker {
            _child: Guard(child),
            log,
            _dir: dir,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The rows the test tasks pushed to `key`.
pub async fn records(key: &str) -> Vec<Json> {
    lrange(&redis_url(), key)
        .await
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect()
}

/// Waits until `key` holds at least `n` rows; panics with the worker's log
/// if that takes longer than [`PATIENCE`].
pub async fn wait_records(key: &str, n: usize, worker: &Worker) -> Vec<Json> {
    let start = Instant::now();
    loop {
        let rows = records(key).await;
        if rows.len() >= n {
            return rows;
        }
        if start.elapsed() > PATIENCE {
            panic!(
                "waited {PATIENCE:?} for {n} records, have {}: {rows:#?}\nworker log:\n{}",
                rows.len(),
                worker.log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn delete_key(key: &str) {
    let mut c = redis_conn().await;
    let _: () = redis::cmd("DEL")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap();
}

/// Entries from a YAML schedule text.
pub fn entries(yaml: &str) -> Vec<Entry> {
    metronome::source::yaml::load_str("test.yaml", yaml, &None)
        .unwrap_or_else(|e| panic!("test schedule invalid: {e}"))
}

/// The message for entry `name` scheduled at `scheduled`.
pub fn message(entries: &[Entry], name: &str, scheduled: Timestamp) -> Message {
    let e = entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no entry {name}"));
    message::build(
        &std::sync::Arc::new(e.clone()),
        Some(scheduled),
        Timestamp::now(),
        &Publisher::for_this_process(),
    )
}

/// Asserts that `scheduled` (RFC 3339 strings) are distinct and exactly
/// `step` apart, i.e. every run between the first and the last appears once.
pub fn assert_contiguous(scheduled: &[String], step: jiff::SignedDuration) {
    let mut ts: Vec<Timestamp> = scheduled.iter().map(|s| s.parse().unwrap()).collect();
    ts.sort();
    for w in ts.windows(2) {
        assert_eq!(
            w[0].duration_until(w[1]),
            step,
            "runs not exactly once each between {} and {}: {scheduled:?}",
            w[0],
            w[1]
        );
    }
}

/// One broker under test: the URL metronome publishes to and how the worker
/// must be configured to consume the same queues.
pub struct Target {
    /// The URL metronome uses.
    pub url: String,
    /// The URL the worker uses (the same broker, without metronome's options).
    pub worker_url: String,
    pub key_prefix: Option<String>,
    pub max_priority: Option<u8>,
}

/// A Redis target deletes every key under its prefix when dropped, the
/// worker's `_kombu.binding*` sets included, whether the test passed or not.
impl Drop for Target {
    fn drop(&mut self) {
        if let Some(p) = &self.key_prefix {
            delete_prefixed(p);
        }
    }
}

impl Target {
    pub fn worker(&self, celery: &Path, queues: &str, record_key: &str) -> Worker {
        Worker::start(
            celery,
            &WorkerConfig {
                broker: &self.worker_url,
                queues,
                record_key,
                max_priority: self.max_priority,
                key_prefix: self.key_prefix.as_deref(),
            },
        )
    }
}

pub async fn publish_all(url: &str, msgs: &[Message]) {
    let mut b = metronome::broker::connect(url, None).await.unwrap();
    let results = b.publish(msgs).await;
    assert_eq!(results.len(), msgs.len());
    for r in results {
        r.expect("published");
    }
}

fn row<'a>(rows: &'a [Json], name: &str) -> &'a Json {
    rows.iter()
        .find(|r| r["headers"]["periodic_task_name"] == name)
        .unwrap_or_else(|| panic!("no record for {name}: {rows:#?}"))
}

/// Args and kwargs (unicode, nesting, ~100 KB), custom headers, time limits
/// and a second queue arrive exactly as metronome sent them.
pub async fn scenario_roundtrip(t: &Target) {
    let Some(celery) = celery() else { return };
    let big = "metronome ✓ 日本語 ".repeat(6_000);
    let yaml = format!(
        r#"
schedules:
  unicode:
    task: tasks.record
    every: 1h
    args: ["héllo wörld ✓ 日本語 🎉 \"quoted\" \\ back", 1, -2, 2.5, true, null, [1, [2, {{"a": "b"}}]]]
    kwargs: {{nested: {{list: [1, 2, {{"deep": ["x", {{"y": null}}]}}]}}, "ünï": "çødé", n: 4294967296}}
    options: {{headers: {{tenant: acme}}, time_limit: 30, soft_time_limit: 20, expires: 3600}}
  large:
    task: tasks.record
    every: 1h
    args: ["{big}"]
    kwargs: {{size: {}}}
  second:
    task: tasks.record
    every: 1h
    args: ["to the second queue"]
    options: {{queue: second}}
"#,
        big.chars().count()
    );
    let es = entries(&yaml);
    // `expires` counts from the scheduled time, so schedule "just now".
    let at = Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap()
        .checked_sub(jiff::SignedDuration::from_secs(1))
        .unwrap();
    let msgs: Vec<Message> = es.iter().map(|e| message(&es, &e.name, at)).collect();
    publish_all(&t.url, &msgs).await;
    let key = unique("rec");
    let w = t.worker(&celery, "celery,second", &key);
    let rows = wait_records(&key, 3, &w).await;
    delete_key(&key).await;
    assert_eq!(rows.len(), 3, "{rows:#?}");
    for (e, m) in es.iter().zip(&msgs) {
        let r = row(&rows, &e.name);
        assert_eq!(r["args"], Json::Array(e.args.clone()), "{}", e.name);
        assert_eq!(r["kwargs"], Json::Object((*e.kwargs).clone()), "{}", e.name);
        assert_eq!(r["id"], m.task_id.to_string());
        assert_eq!(r["task"], "tasks.record");
        assert_eq!(r["headers"]["scheduled_at"], at.to_string());
        assert_eq!(r["headers"]["celery_beat_task"], true);
        assert_eq!(r["headers"]["root_id"], m.task_id.to_string());
        let queue = if e.name == "second" {
            "second"
        } else {
            "celery"
        };
        assert_eq!(r["queue"], queue, "{}", e.name);
    }
    let u = row(&rows, "unicode");
    assert_eq!(u["headers"]["tenant"], "acme");
    assert_eq!(u["headers"]["timelimit"], serde_json::json!([30.0, 20.0]));
    assert!(
        u["headers"]["expires"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{u:#?}"
    );
    assert_eq!(
        row(&rows, "second")["headers"]["timelimit"],
        serde_json::json!([null, null])
    );
}

/// Messages published while no worker consumes are executed in priority
/// order by a worker taking one at a time. `order` lists entry priorities
/// from the first expected to run to the last.
pub async fn scenario_priorities(t: &Target, publish: &[u8], expected: &[u8]) {
    let Some(celery) = celery() else { return };
    let mut yaml = String::from("schedules:\n");
    for p in publish {
        yaml.push_str(&format!(
            "  p{p}:\n    task: tasks.record\n    every: 1h\n    args: [{p}]\n    options: {{priority: {p}}}\n"
        ));
    }
    let es = entries(&yaml);
    let at = Timestamp::now();
    let msgs: Vec<Message> = publish
        .iter()
        .map(|p| message(&es, &format!("p{p}"), at))
        .collect();
    publish_all(&t.url, &msgs).await;
    let key = unique("rec");
    let w = t.worker(&celery, "celery", &key);
    let rows = wait_records(&key, publish.len(), &w).await;
    delete_key(&key).await;
    let ran: Vec<u8> = rows
        .iter()
        .map(|r| r["args"][0].as_u64().unwrap() as u8)
        .collect();
    assert_eq!(ran, expected, "execution order by priority");
}

/// A run whose `expires` is already past is discarded by the worker; the
/// run published after it executes.
pub async fn scenario_expired(t: &Target) {
    let Some(celery) = celery() else { return };
    let es = entries(
        r#"
schedules:
  stale:
    task: tasks.record
    every: 1h
    options: {expires: "2020-01-01T00:00:00Z"}
  fresh:
    task: tasks.record
    every: 1h
    options: {expires: 3600}
"#,
    );
    let at = Timestamp::now();
    let stale = message(&es, "stale", at);
    let fresh = message(&es, "fresh", at);
    assert_eq!(stale.expiration_ms, Some(0));
    publish_all(&t.url, &[stale.clone(), fresh]).await;
    let key = unique("rec");
    let w = t.worker(&celery, "celery", &key);
    let rows = wait_records(&key, 1, &w).await;
    delete_key(&key).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["headers"]["periodic_task_name"], "fresh");
    assert!(
        !rows.iter().any(|r| r["id"] == stale.task_id.to_string()),
        "the expired run executed"
    );
}

/// `metronome run` with an `every: 1s` entry for a few seconds: the worker
/// executes each scheduled time exactly once. With `disrupt`, it is called
/// after the third dispatch (e.g. to cut the broker connection) and the run
/// goes on for four more; `misfire: all` makes every missed second owed.
/// Returns the stopped metronome (for its log), `None` if skipped.
pub async fn scenario_binary_exactly_once(
    t: &Target,
    disrupt: Option<&dyn Fn()>,
) -> Option<Metronome> {
    let celery = celery()?;
    let mut m = Metronome::run(
        &t.url,
        "schedules:\n  tick:\n    task: tasks.record\n    every: 1s\n    misfire: all\n    args: [tick]\n",
    );
    let wait_dispatched = |n: usize| {
        let start = Instant::now();
        let m = &m;
        async move {
            while m.log_events("dispatched").len() < n {
                assert!(start.elapsed() < PATIENCE, "no dispatches:\n{}", m.logs());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait_dispatched(3).await;
    if let Some(d) = disrupt {
        d();
        wait_dispatched(7).await;
    } else {
        wait_dispatched(4).await;
    }
    m.stop();
    let dispatched = m.log_events("dispatched");
    let n = dispatched.len();
    assert!(
        m.log_events("publish outcome unknown; counted as sent and not retried")
            .is_empty(),
        "an outcome was unknown (a run may be lost):\n{}",
        m.logs()
    );
    let key = unique("rec");
    let w = t.worker(&celery, "celery", &key);
    let rows = wait_records(&key, n, &w).await;
    drop(w);
    let rows_after = records(&key).await;
    delete_key(&key).await;
    assert_eq!(
        rows_after.len(),
        n,
        "more executions than dispatches: {rows:#?}"
    );
    let scheduled: Vec<String> = rows
        .iter()
        .map(|r| r["headers"]["scheduled_at"].as_str().unwrap().to_string())
        .collect();
    assert_contiguous(&scheduled, jiff::SignedDuration::from_secs(1));
    let ids: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), n);
    Some(m)
}
