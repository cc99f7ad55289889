//! Production features end to end, on the real binary over loopback:
//! `metronome healthcheck`, readiness following the broker, the reload status in the API and metrics, run
//! history (state file and SQLite), Prometheus series, masked secrets in
//! logs, the example deployment files, and the dashboard in headless
//! Chromium driven over the DevTools protocol.
//!
//! Waits poll with a generous bound ([`PATIENCE`]): a bound on a hang, not a
//! timing assertion.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::db::sqlite_url;
use crate::util::http::{client, get, get_blocking, metrics};
use crate::util::port::free_port;
use crate::util::process::{Metronome, metronome, output_text, run_ok};
use crate::util::python::{have_python, python};
use crate::util::redis::RedisServer;
use crate::util::{PATIENCE, ci, repo, wait_for, wait_until};

const TOKEN: &str = "dash-token";

/// `metronome run` serving the API with [`TOKEN`]; `args` follow `run`.
fn start(args: &[&str]) -> Metronome {
    Metronome::serve(args, Some(TOKEN))
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// `wait_for` bounded by [`PATIENCE`].
async fn wait<F, Fut>(what: &str, f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_for(what, PATIENCE, f).await;
}

fn healthcheck(args: &[&str]) -> (bool, String) {
    let out = metronome().arg("healthcheck").args(args).output().unwrap();
    (out.status.success(), output_text(&out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_probes_a_running_instance() {
    let dir = tempfile::tempdir().unwrap();
    let sched = dir.path().join("s.yaml");
    write(&sched, "schedules:\n  a: {task: t, cron: \"0 3 * * *\"}\n");
    let state = dir.path().join("state.json");
    let mut i = start(&[
        "--schedule",
        sched.to_str().unwrap(),
        "--state-file",
        state.to_str().unwrap(),
    ]);
    let (ok, out) = healthcheck(&["--http", &i.addr]);
    assert!(ok, "{out}");
    let (ok, out) = healthcheck(&["--http", &i.addr, "--ready"]);
    assert!(ok, "{out}");
    // An unspecified address is probed on loopback.
    let port = i.addr.rsplit_once(':').unwrap().1.to_string();
    let (ok, out) = healthcheck(&["--http", &format!("0.0.0.0:{port}")]);
    assert!(ok, "{out}");
    // The environment works as the flag does (config entirely from env).
    let out = metronome()
        .arg("healthcheck")
        .env("METRONOME_HTTP_ADDR", &i.addr)
        .output()
        .unwrap();
    assert!(out.status.success());
    i.terminate();
    // Nothing listening: exit 1 with the reason.
    let (ok, out) = healthcheck(&["--http", &format!("127.0.0.1:{port}"), "--timeout", "2"]);
    assert!(!ok, "{out}");
    assert!(out.contains(&port), "{out}");
    let (ok, out) = healthcheck(&["--http", "off"]);
    assert!(!ok && out.contains("disabled"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let sched = dir.path().join("s.yaml");
    write(&sched, "schedules:\n  a: {task: t, cron: \"0 3 * * *\"}\n");
    let state = dir.path().join("state.json");
    let port = free_port();
    let broker = format!("redis://127.0.0.1:{port}/0");
    // Nothing listens on the broker's port yet: alive, loaded, not ready.
    let mut i = start(&[
        "--broker",
        &broker,
        "--schedule",
        sched.to_str().unwrap(),
        "--state-file",
        state.to_str().unwrap(),
    ]);
    let (code, body) = get(&i, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["status"], "broker unreachable", "{body}");
    assert_eq!(body["broker"], "unreachable", "{body}");
    assert_eq!(body["schedules"], 1, "{body}");
    let why = body["broker_error"].as_str().unwrap();
    assert!(why.contains(&port.to_string()), "{why}");
    assert_eq!(get(&i, "/healthz").await.0, 200, "alive all the same");
    let (ok, out) = healthcheck(&["--http", &i.addr, "--ready"]);
    assert!(!ok, "{out}");

    let mut redis = RedisServer::on_port(port);
    wait("ready once the broker answers", || async {
        get(&i, "/readyz").await.0 == 200
    })
    .await;
    let (_, body) = get(&i, "/readyz").await;
    assert_eq!(
        (&body["status"], &body["broker"]),
        (&json!("ready"), &json!("connected"))
    );
    assert!(body.get("broker_error").is_none(), "{body}");

    redis.kill();
    wait("not ready once the broker is gone", || async {
        get(&i, "/readyz").await.0 == 503
    })
    .await;
    i.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_reload_is_visible_while_the_old_schedule_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let sched = dir.path().join("s.yaml");
    write(&sched, "schedules:\n  tick: {task: app.tick, every: 1s}\n");
    let state = dir.path().join("state.json");
    let i = start(&[
        "--schedule",
        sched.to_str().unwrap(),
        "--state-file",
        state.to_str().unwrap(),
    ]);
    let (s, v) = get(&i, "/api/v1/reload").await;
    assert_eq!(s, 200);
    assert_eq!(v["enabled"], true);
    assert_eq!(v["ok"], true);
    assert_eq!(v["failures"], 0);
    assert!(v["files"][0].as_str().unwrap().ends_with("s.yaml"), "{v}");

    // An accepted change.
    write(
        &sched,
        "schedules:\n  tick: {task: app.tick, every: 1s}\n  tock: {task: app.tock, cron: \"0 3 * * *\"}\n",
    );
    wait("the reload", || async {
        get(&i, "/api/v1/reload").await.1["reloads"] == 1
    })
    .await;
    assert_eq!(get(&i, "/api/v1/schedules/tock").await.0, 200);

    // A broken version: rejected, visible, and the old schedule runs on.
    write(
        &sched,
        "schedules:\n  tick: {task: app.tick, every: 1s}\n  tock: {task: app.tock, cron: \"99 3 * * *\"}\n",
    );
    wait("the rejection", || async {
        get(&i, "/api/v1/reload").await.1["failures"] == 1
    })
    .await;
    let (_, v) = get(&i, "/api/v1/reload").await;
    assert_eq!(v["ok"], false);
    let errors = v["errors"].to_string();
    assert!(errors.contains("s.yaml:3:"), "{v}");
    assert!(v["last_success"].is_string() && v["last_attempt"].is_string());
    let (s, t) = get(&i, "/api/v1/schedules/tock").await;
    assert_eq!(s, 200);
    assert_eq!(t["schedule"]["cron"], "0 3 * * *", "old version kept");
    let text = metrics(&i).await;
    for needle in [
        "metronome_reloads_total 1",
        "metronome_reload_errors_total 1",
        "metronome_reload_ok 0",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let before = i.published().len();
    wait("runs after the rejection", || async {
        i.published().len() >= before + 2
    })
    .await;
    assert!(i.logs().contains("schedule reload rejected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_metrics_and_skip_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let sched = dir.path().join("s.yaml");
    write(
        &sched,
        concat!(
            "schedules:\n",
            "  tick: {task: app.tick, every: 1s}\n",
            "  stale: {task: app.stale, every: 1s, options: {expires: \"2020-01-01T00:00:00Z\"}}\n",
            "  off: {task: app.off, every: 1s, enabled: false}\n",
        ),
    );
    let state = dir.path().join("state.json");
    let args = [
        "--schedule",
        sched.to_str().unwrap(),
        "--state-file",
        state.to_str().unwrap(),
        "--history",
        "3",
    ];
    let mut i = start(&args);
    wait("history to fill", || async {
        let n = |v: &Value| v.as_array().map_or(0, Vec::len);
        n(&get(&i, "/api/v1/schedules/tick/history").await.1) == 3
            && n(&get(&i, "/api/v1/schedules/stale/history").await.1) >= 1
            && n(&get(&i, "/api/v1/schedules/off/history").await.1) >= 1
    })
    .await;
    let (_, h) = get(&i, "/api/v1/schedules/tick/history").await;
    let first = &h[0];
    assert_eq!(first["outcome"], "sent", "{h}");
    assert!(
        first["task_id"].is_string() && first["lateness_ms"].is_i64(),
        "{h}"
    );
    // Newest first.
    assert!(
        h[0]["scheduled"].as_str() > h[1]["scheduled"].as_str(),
        "{h}"
    );
    // The task id is the one published.
    let ids: Vec<String> = i
        .published()
        .iter()
        .filter_map(|m| m["headers"]["id"].as_str().map(str::to_string))
        .collect();
    assert!(
        ids.iter()
            .any(|id| id == first["task_id"].as_str().unwrap()),
        "{first} not among {ids:?}"
    );
    let (_, h) = get(&i, "/api/v1/schedules/stale/history").await;
    assert_eq!(h[0]["outcome"], "skipped");
    assert_eq!(h[0]["reason"], "expired");
    let (_, h) = get(&i, "/api/v1/schedules/off/history").await;
    assert_eq!(h[0]["reason"], "disabled", "{h}");
    assert_eq!(get(&i, "/api/v1/schedules/nope/history").await.0, 404);
    // Nothing of the expired or disabled entries was published.
    assert!(
        i.published()
            .iter()
            .all(|m| m["headers"]["task"] == "app.tick"),
        "only tick is sent"
    );

    let text = metrics(&i).await;
    for needle in [
        "metronome_runs_dispatched_total{entry=\"tick\"}",
        "metronome_runs_skipped_total{entry=\"stale\",reason=\"expired\"}",
        "metronome_runs_skipped_total{entry=\"off\",reason=\"disabled\"}",
        "metronome_dispatch_lateness_seconds_bucket{le=\"0.001\"}",
        "metronome_dispatch_lateness_seconds_bucket{le=\"60\"}",
        "metronome_schedule_next_run_timestamp_seconds{entry=\"tick\"}",
        "metronome_schedule_next_run_min_timestamp_seconds ",
        "metronome_schedules{source=\"file\"} 3",
        "metronome_leader 1",
        "metronome_lease_fence 0",
        "metronome_lease_renew_failures_total 0",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    assert!(
        !text.contains("next_run_timestamp_seconds{entry=\"off\"}"),
        "a disabled entry has no next run"
    );

    // The dispatch log line carries entry, task, scheduled, lateness, task id.
    let line = i
        .log_events("dispatched")
        .into_iter()
        .next()
        .expect("a dispatch line");
    for k in ["entry", "task", "scheduled", "lateness_ms", "task_id"] {
        assert!(!line[k].is_null(), "{k} missing from {line}");
    }

    // History survives a restart (kept in the state file), bounded.
    i.terminate();
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let kept = saved["entries"]["tick"]["history"].as_array().unwrap();
    assert!(!kept.is_empty() && kept.len() <= 3, "{saved}");
    let i = start(&args);
    let (_, h) = get(&i, "/api/v1/schedules/tick/history").await;
    assert!(!h.as_array().unwrap().is_empty(), "{h}");
    let (_, doc) = get(&i, "/api/v1/openapi.json").await;
    for p in ["/api/v1/schedules/{name}/history", "/api/v1/reload"] {
        assert!(
            doc["paths"].get(p).is_some(),
            "{p} not in the OpenAPI document"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_kept_in_the_database() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let mut i = start(&["--database", &url]);
    let r = client()
        .post(i.url("/api/v1/schedules"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "db-tick", "task": "app.tick", "every": "1s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let r = client()
        .post(i.url("/api/v1/schedules/db-tick/run"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let requested: Value = r.json().await.unwrap();
    wait("two sent runs", || async {
        let (_, h) = get(&i, "/api/v1/schedules/db-tick/history").await;
        h.as_array()
            .is_some_and(|a| a.iter().filter(|x| x["outcome"] == "sent").count() >= 2)
    })
    .await;
    let (_, h) = get(&i, "/api/v1/schedules/db-tick/history").await;
    assert!(
        h.as_array()
            .unwrap()
            .iter()
            .any(|x| x["outcome"] == "requested" && x["task_id"] == requested["task_id"]),
        "{h}"
    );
    i.terminate();
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let (text,): (String,) =
        sqlx::query_as("SELECT history FROM metronome_state WHERE name = 'db-tick'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert!(saved.as_array().unwrap().len() >= 3, "{saved}");
    let i = start(&["--database", &url]);
    let (_, h) = get(&i, "/api/v1/schedules/db-tick/history").await;
    assert!(h.as_array().unwrap().len() >= 3, "{h}");
}

#[test]
fn secrets_in_urls_are_masked_in_logs() {
    let dir = tempfile::tempdir().unwrap();
    let sched = dir.path().join("s.yaml");
    write(&sched, "schedules:\n  a: {task: t, every: 1s}\n");
    // A broker nobody listens on, with a password: the scheduler keeps
    // retrying and logs why; no line shows the password.
    let mut cmd = metronome();
    cmd.args(["--log-format", "json", "run", "--http", "off"])
        .args(["--broker", "redis://user:hunter2-secret@127.0.0.1:1/0"])
        .arg("--schedule")
        .arg(&sched)
        .arg("--state-file")
        .arg(dir.path().join("state.json"))
        .env("METRONOME_LOG", "debug");
    let mut m = Metronome::spawn(cmd);
    wait_until(
        "a publish failure in the log",
        || m.logs().contains("publish failed"),
        || format!(":\n{}", m.logs()),
    );
    m.kill();
    let text = m.logs();
    assert!(text.contains("redis://user:***@127.0.0.1:1/0"), "{text}");
    assert!(!text.contains("hunter2"), "password leaked:\n{text}");
    // Likewise a database URL with a password (PostgreSQL on a closed port).
    let out = metronome()
        .args(["--log-format", "json", "migrate"])
        .args(["--database", "postgres://app:hunter2-secret@127.0.0.1:1/db"])
        .env("METRONOME_LOG", "debug")
        .output()
        .unwrap();
    let all = output_text(&out);
    assert!(!out.status.success());
    assert!(all.contains("app:***@"), "{all}");
    assert!(!all.contains("hunter2"), "password leaked:\n{all}");
}

#[test]
fn deployment_files_parse_and_their_schedules_check() {
    if !have_python("deployment YAML check") {
        return;
    }
    let python = python();
    let files = [
        "deploy/docker-compose.yml",
        "deploy/kubernetes/metronome.yaml",
        "deploy/schedule.yaml",
    ];
    // Parse every document and pull out the ConfigMap's schedule file.
    let script = r#"
import sys, yaml
docs = {}
for f in sys.argv[1:]:
    docs[f] = list(yaml.safe_load_all(open(f)))
compose = docs["deploy/docker-compose.yml"][0]
assert {"redis", "worker", "metronome"} <= set(compose["services"]), compose["services"].keys()
assert compose["services"]["metronome"]["deploy"]["replicas"] == 2
kinds = {d["kind"]: d for d in docs["deploy/kubernetes/metronome.yaml"]}
assert {"ConfigMap", "Deployment", "PodDisruptionBudget"} <= set(kinds), kinds.keys()
dep = kinds["Deployment"]["spec"]
assert dep["replicas"] == 2
c = dep["template"]["spec"]["containers"][0]
assert "livenessProbe" in c and "readinessProbe" in c
sys.stdout.write(kinds["ConfigMap"]["data"]["schedule.yaml"])
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(files)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("`{python}` runs: {e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("No module named 'yaml'") && !ci() {
        eprintln!("\n!!! SKIPPING deployment YAML check: PyYAML missing !!!\n");
        return;
    }
    assert!(out.status.success(), "{err}");
    let configmap = String::from_utf8(out.stdout).unwrap();
    let file = std::fs::read_to_string(repo().join("deploy/schedule.yaml")).unwrap();
    assert_eq!(
        configmap, file,
        "the ConfigMap carries deploy/schedule.yaml"
    );
    run_ok(
        metronome()
            .arg("check")
            .arg(repo().join("deploy/schedule.yaml")),
    );
}

/// Headless Chromium, installed with apt-get under CI when missing.
fn chromium() -> Option<PathBuf> {
    let path =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    if path.exists() {
        return Some(path);
    }
    if !ci() {
        eprintln!(
            "\n!!! SKIPPING dashboard browser test: {} not found (apt-get install -y chromium) !!!\n",
            path.display()
        );
        return None;
    }
    let ok = Command::new("sh")
        .arg("-c")
        .arg("apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium")
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok && path.exists(), "CI: could not install chromium");
    Some(path)
}

/// A headless Chromium with a DevTools websocket to its one page.
struct Browser {
    child: Child,
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch(exe: &Path, url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
        let err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(rest) = l.split("DevTools listening on ws://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_string());
                }
            }
        });
        let host = rx
            .recv_timeout(PATIENCE)
            .expect("chromium's DevTools address");
        // The page target's websocket.
        let start = Instant::now();
        let ws_url = loop {
            let list = get_blocking(&host, "/json/list", Duration::from_secs(5))
                .and_then(|(code, v)| (code == 200).then_some(v))
                .unwrap_or(Value::Null);
            if let Some(u) = list.as_array().and_then(|a| {
                a.iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_string))
            }) {
                break u;
            }
            assert!(start.elapsed() < PATIENCE, "no page target in chromium");
            std::thread::sleep(Duration::from_millis(100));
        };
        let (ws, _) = tungstenite::connect(ws_url.as_str()).unwrap();
        Browser {
            child,
            ws,
            next_id: 1,
            _profile: profile,
        }
    }

    /// Sends one DevTools command and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(tungstenite::Message::text(msg)).unwrap();
        loop {
            let m = self.ws.read().unwrap();
            let Ok(text) = m.to_text() else { continue };
            let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `js` in the page (awaiting promises) and returns its value.
    fn eval(&mut self, js: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r["exceptionDetails"].is_null(), "{js}: {r}");
        r["result"]["value"].clone()
    }

    /// Polls `js` until it evaluates to true.
    fn wait_js(&mut self, what: &str, js: &str) {
        let start = Instant::now();
        while self.eval(js) != Value::Bool(true) {
            assert!(
                start.elapsed() < PATIENCE,
                "timed out waiting in the page for {what}; body:\n{}",
                self.eval("document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_next_runs_and_toggles_in_chromium() {
    let Some(exe) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sched = dir.path().join("s.yaml");
    write(
        &sched,
        "schedules:\n  from-file: {task: app.file, cron: \"0 3 * * *\", timezone: America/New_York}\n",
    );
    let url = sqlite_url(dir.path());
    let i = start(&["--database", &url, "--schedule", sched.to_str().unwrap()]);
    let r = client()
        .post(i.url("/api/v1/schedules"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "nightly", "task": "app.nightly", "cron": "30 2 * * *", "timezone": "Europe/Berlin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let (_, v) = get(&i, "/api/v1/schedules/nightly").await;
    let next_local = v["next_run_local"].as_str().unwrap().to_string();
    assert!(
        next_local.ends_with("+01:00") || next_local.ends_with("+02:00"),
        "{v}"
    );

    let page = i.url("/");
    let mut b = tokio::task::spawn_blocking(move || Browser::launch(&exe, &page))
        .await
        .unwrap();
    let next_js = format!(
        "(document.querySelector('tr[data-name=\"nightly\"] td.next')||{{}}).textContent === {}",
        json!(next_local)
    );
    let (b_, _) = tokio::task::spawn_blocking(move || {
        b.wait_js("the next run of `nightly`", &next_js);
        b.wait_js(
            "the leader badge",
            "document.getElementById('role').textContent === 'leader'",
        );
        // The file entry is read-only, with the reason.
        let ro = b.eval(
            "document.querySelector('tr[data-name=\"from-file\"] td.actions').textContent",
        );
        assert!(ro.as_str().unwrap().contains("read-only"), "{ro}");
        assert!(ro.as_str().unwrap().contains("s.yaml"), "{ro}");
        // No token yet: no toggle.
        assert_eq!(
            b.eval("document.querySelectorAll('button.toggle').length"),
            json!(0)
        );
        // Type the token; the toggle appears; disable.
        b.eval(&format!(
            "document.getElementById('token').value = {}; document.getElementById('save-token').click(); true",
            json!(TOKEN)
        ));
        b.wait_js(
            "the toggle button",
            "!!document.querySelector('tr[data-name=\"nightly\"] button.toggle')",
        );
        assert_eq!(
            b.eval("sessionStorage.getItem('metronome-token')"),
            json!(TOKEN)
        );
        b.eval("document.querySelector('tr[data-name=\"nightly\"] button.toggle').click(); true");
        b.wait_js(
            "the row to show disabled",
            "(document.querySelector('tr[data-name=\"nightly\"]')||{dataset:{}}).dataset.enabled === 'false' && document.querySelector('tr[data-name=\"nightly\"] td.next').textContent === 'disabled'",
        );
        (b, ())
    })
    .await
    .unwrap();
    let (s, v) = get(&i, "/api/v1/schedules/nightly").await;
    assert_eq!(s, 200);
    assert_eq!(v["enabled"], false, "{v}");
    assert!(v["next_run"].is_null(), "{v}");
    drop(b_);
}
