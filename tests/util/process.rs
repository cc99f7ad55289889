//! Child processes: the `metronome` binary as a command with a clean
//! environment, a running instance whose output is captured line by line
//! (waiting for its readiness, stopping it), and a guard that kills any
//! other helper process on drop. Invariant: every test spawns the binary
//! through [`metronome`]; no child outlives its test.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::Value as Json;

use super::PATIENCE;

/// The binary under test with every `METRONOME_*` and `CELERY_*` variable
/// of the caller's environment removed, so only what the test sets counts.
pub fn metronome() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_metronome"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("METRONOME_") || k.starts_with("CELERY_") {
            c.env_remove(&*k);
        }
    }
    c
}

/// stdout and stderr of a finished command, concatenated.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` to its end; it must succeed. Returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?} runs: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        output_text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Kills and reaps the child on drop.
pub struct Guard(pub Child);

impl Guard {
    pub fn spawn(cmd: &mut Command, what: &str) -> Guard {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{what} runs: {e}"));
        Guard(child)
    }

    /// SIGKILL and reap now.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
    }
}

type Lines = Arc<Mutex<Vec<String>>>;

fn collect(stream: impl Read + Send + 'static) -> (Lines, JoinHandle<()>) {
    let lines = Lines::default();
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for l in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    (lines, reader)
}

/// A running `metronome` with stdout (published messages with
/// `stdout://`) and stderr (logs) captured; SIGKILLed on drop.
pub struct Metronome {
    child: Child,
    stdout: Lines,
    stderr: Lines,
    readers: Vec<JoinHandle<()>>,
    /// The API's address once [`Metronome::wait_http`] saw it.
    pub addr: String,
    _dir: Option<tempfile::TempDir>,
}

impl Metronome {
    /// Spawns `cmd` (built from [`metronome`]) with both streams captured.
    pub fn spawn(mut cmd: Command) -> Metronome {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start metronome");
        let (stdout, out) = collect(child.stdout.take().unwrap());
        let (stderr, err) = collect(child.stderr.take().unwrap());
        Metronome {
            child,
            stdout,
            stderr,
            readers: vec![out, err],
            addr: String::new(),
            _dir: None,
        }
    }

    /// `metronome run` with JSON logs and the API on a free loopback port,
    /// waited for until it listens. `args` follow `run` (`--broker
    /// stdout://` unless they name a broker); `token` is the API token.
    pub fn serve(args: &[&str], token: Option<&str>) -> Metronome {
        let mut cmd = metronome();
        cmd.args(["--log-format", "json", "run"]);
        if !args.contains(&"--broker") {
            cmd.args(["--broker", "stdout://"]);
        }
        cmd.args(["--http", "127.0.0.1:0"])
            .args(args)
            .env("METRONOME_LOG", "info,tower_http=warn,sqlx=warn");
        if let Some(t) = token {
            cmd.env("METRONOME_API_TOKEN", t);
        }
        let mut m = Metronome::spawn(cmd);
        m.wait_http();
        m
    }

    /// `metronome run --no-lock` publishing `schedule_yaml` to `broker`,
    /// with its schedule and state file in a directory of its own.
    pub fn run(broker: &str, schedule_yaml: &str) -> Metronome {
        let dir = tempfile::tempdir().unwrap();
        let sched = dir.path().join("schedule.yaml");
        std::fs::write(&sched, schedule_yaml).unwrap();
        let mut cmd = metronome();
        cmd.args([
            "--log-format",
            "json",
            "run",
            "--no-lock",
            "--broker",
            broker,
        ])
        .arg("--schedule")
        .arg(&sched)
        .arg("--state-file")
        .arg(dir.path().join("state.json"))
        .env("METRONOME_LOG", "info");
        Metronome::spawn(cmd).keeping(dir)
    }

    /// Keeps `dir` (say, the state file's) until this instance is dropped.
    pub fn keeping(mut self, dir: tempfile::TempDir) -> Metronome {
        self._dir = Some(dir);
        self
    }

    /// Waits for the `http api listening` line and records its address.
    pub fn wait_http(&mut self) -> &str {
        let start = std::time::Instant::now();
        loop {
            if let Some(v) = self.log_events("http api listening").first() {
                self.addr = v["addr"].as_str().unwrap_or_default().to_string();
                return &self.addr;
            }
            if self.exited() || start.elapsed() > PATIENCE {
                self.kill();
                panic!("metronome did not start:\n{}", self.logs());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// `http://ADDR{path}` on the API.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The log (stderr) so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The JSON log lines whose message is `msg`.
    pub fn log_events(&self, msg: &str) -> Vec<Json> {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Json>(l).ok())
            .filter(|j| j["message"] == msg)
            .collect()
    }

    /// The stdout lines so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// The JSON lines on stdout (the messages `stdout://` published).
    pub fn published(&self) -> Vec<Json> {
        self.stdout_lines()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Sends `sig` (`-TERM`, `-HUP`, `-KILL`, …) with `kill`.
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status();
    }

    /// Waits for the exit, then for the output to be read to its end.
    pub fn wait(&mut self) -> ExitStatus {
        let status = self.child.wait().unwrap();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        status
    }

    /// SIGTERM and wait for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("-TERM");
        self.wait()
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        let status = self.terminate();
        assert!(
            status.success(),
            "metronome exited with {status}:\n{}",
            self.logs()
        );
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Metronome {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
