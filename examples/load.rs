//! The load tool: runs the real `metronome` binary against real Redis (and
//! PostgreSQL) with N generated entries and prints each scale measure with
//! min / median / max over repeated runs.
//!
//! ```text
//! cargo build --release --bin metronome
//! cargo run --release --example load -- [--n 1000,10000,100000,1000000] [--runs 3]
//!     [--measure startup,memory,idle,burst,lateness,startup-pg]
//!     [--redis redis://127.0.0.1:6379/0] [--pg postgres://postgres@127.0.0.1:5432/postgres]
//!     [--idle-secs 30] [--lateness-secs 65] [--ha]
//! ```
//!
//! Each N starts and ends with the machine's load average and the same-run
//! reference `redis-benchmark -t lpush -P 64 -d 700 -n 100000 -q` (the
//! physical limit the burst is compared with). With `--ha`, `burst` runs
//! with `--lock` on the same Redis, so runs go out through the fenced Lua
//! publish (one script per 1000 runs, which also writes the run state).
//!
//! | measure | how |
//! |---|---|
//! | `startup` | N yearly cron entries in a YAML file; spawn to `GET /readyz` = 200 |
//! | `memory` | the same process: VmRSS once ready, divided by N; and marginal: minus the VmRSS of an N = 0 process |
//! | `idle` | the same process: CPU time of all its threads (`schedstat`, ns) over `--idle-secs`, as % of one core |
//! | `burst` | N one-off entries due the same second; from that second until `LLEN` of the queue is N |
//! | `lateness` | N entries spread over the minute (`S * * * * *`); publish lateness from the `dispatched` log lines over `--lateness-secs` |
//! | `startup-pg` | N rows in a fresh PostgreSQL database; spawn to ready |
//!
//! Every run uses its own kombu key prefix (and database), removed afterwards.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

struct Opts {
    sizes: Vec<usize>,
    runs: usize,
    measures: Vec<String>,
    redis: String,
    pg: String,
    idle_secs: u64,
    lateness_secs: u64,
    ha: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        sizes: vec![1_000, 10_000, 100_000, 1_000_000],
        runs: 3,
        measures: [
            "startup",
            "memory",
            "idle",
            "burst",
            "lateness",
            "startup-pg",
        ]
        .map(String::from)
        .to_vec(),
        redis: "redis://127.0.0.1:6379/0".into(),
        pg: "postgres://postgres@127.0.0.1:5432/postgres".into(),
        idle_secs: 30,
        lateness_secs: 65,
        ha: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--n" => {
                o.sizes = v()
                    .split(',')
                    .map(|s| s.replace('_', "").parse().expect("--n takes numbers"))
                    .collect()
            }
            "--runs" => o.runs = v().parse().expect("--runs takes a number"),
            "--measure" => o.measures = v().split(',').map(String::from).collect(),
            "--redis" => o.redis = v(),
            "--pg" => o.pg = v(),
            "--idle-secs" => o.idle_secs = v().parse().expect("--idle-secs takes a number"),
            "--ha" => o.ha = true,
            "--lateness-secs" => {
                o.lateness_secs = v().parse().expect("--lateness-secs takes a number")
            }
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/release/examples/load -> target/release/metronome
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("metronome");
    assert!(
        bin.exists(),
        "build it first: cargo build --release --bin metronome ({} missing)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// True once `/readyz` answers 200 (and, with `leader`, names this
/// instance the leader).
fn ready(port: u16, leader: bool) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = "GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200") && (!leader || buf.contains("\"role\":\"leader\""))
}

/// The 1-minute load average.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `redis-benchmark -t lpush -P 64 -d 700 -n 100000 -q` against `url`'s
/// host and port: requests per second.
fn redis_reference(url: &str) -> Option<f64> {
    let info = redis::Client::open(url).ok()?.get_connection_info().clone();
    let (host, port) = match info.addr() {
        redis::ConnectionAddr::Tcp(h, p) => (h.clone(), *p),
        _ => return None,
    };
    let out = Command::new("redis-benchmark")
        .args(["-h", &host, "-p", &port.to_string()])
        .args(["-t", "lpush", "-P", "64", "-d", "700", "-n", "100000", "-q"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.rsplit('\r').next()?.trim();
    last.split_whitespace().nth(1).and_then(|v| v.parse().ok())
}

fn reference_line(o: &Opts) -> String {
    let rps = redis_reference(&o.redis);
    format!(
        "load average {}; redis-benchmark LPUSH -P 64 -d 700: {}",
        loadavg(),
        rps.map(|r| format!(
            "{r:.0} req/s (100 000 in {:.3} s; the burst target is twice that)",
            100_000.0 / r
        ))
        .unwrap_or_else(|| "not available".into())
    )
}

struct Instance {
    child: Child,
    port: u16,
    started: Instant,
    _dir: tempfile::TempDir,
    logs: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Instance {
    fn spawn(args: &[String], dir: tempfile::TempDir, capture_logs: bool) -> Instance {
        let port = free_port();
        let mut cmd = Command::new(binary());
        cmd.arg("run").args(args).args([
            "--http",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ]);
        cmd.env("METRONOME_LOG", "info").stdout(Stdio::null());
        cmd.stderr(if capture_logs {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn metronome");
        let logs = child.stderr.take().map(|e| {
            std::thread::spawn(move || {
                BufReader::new(e)
                    .lines()
                    .map_while(Result::ok)
                    .filter(|l| l.contains("\"dispatched\""))
                    .collect()
            })
        });
        Instance {
            child,
            port,
            started,
            _dir: dir,
            logs,
        }
    }

    /// Waits for readiness; the time from spawn.
    fn wait_ready(&mut self, limit: Duration) -> Duration {
        self.wait_until(limit, false)
    }

    /// Waits until this instance leads (`--lock`); the time from spawn.
    fn wait_leader(&mut self, limit: Duration) -> Duration {
        self.wait_until(limit, true)
    }

    fn wait_until(&mut self, limit: Duration, leader: bool) -> Duration {
        loop {
            if ready(self.port, leader) {
                return self.started.elapsed();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("metronome exited before it was ready: {status}");
            }
            assert!(self.started.elapsed() < limit, "not ready after {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    /// CPU time of all threads so far, in nanoseconds (`schedstat`, far
    /// finer than the 10 ms ticks of `stat`). Threads that exited are
    /// missed; the process keeps its threads while idle.
    fn cpu_ns(&self) -> u64 {
        let dir = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|t| {
                let p = t.ok()?.path().join("schedstat");
                std::fs::read_to_string(p)
                    .ok()?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    }

    fn stop(mut self) -> Vec<String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.logs
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default()
    }
}

fn yaml_file(dir: &Path, n: usize, entry: impl Fn(usize) -> String) -> PathBuf {
    let p = dir.join("load.yaml");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    writeln!(f, "schedules:{}", if n == 0 { " {}" } else { "" }).unwrap();
    for i in 0..n {
        writeln!(f, "  job-{i}:\n    task: app.tasks.load\n{}", entry(i)).unwrap();
    }
    f.flush().unwrap();
    p
}

fn redis_conn(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

fn cleanup(url: &str, prefix: &str) {
    let mut c = redis_conn(url);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut c)
        .unwrap_or_default();
    for k in keys {
        let _: () = redis::cmd("DEL").arg(k).query(&mut c).unwrap_or(());
    }
}

fn broker_for(o: &Opts, prefix: &str) -> String {
    let sep = if o.redis.contains('?') { '&' } else { '?' };
    format!("{}{sep}global_keyprefix={prefix}", o.redis)
}

fn common_args(schedule: &Path, dir: &Path, broker: &str) -> Vec<String> {
    vec![
        "--schedule".into(),
        schedule.display().to_string(),
        "--broker".into(),
        broker.into(),
        "--no-lock".into(),
        "--state-file".into(),
        dir.join("state.json").display().to_string(),
    ]
}

/// Startup, memory (bytes) and idle CPU from one process with N yearly
/// entries.
fn startup_memory_idle(o: &Opts, n: usize, run: usize, idle: bool) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let sched = yaml_file(dir.path(), n, |i| {
        format!("    cron: '{} {} 1 1 *'", i % 60, i % 24)
    });
    let prefix = format!("load{}-{run}-{n}:", std::process::id());
    let args = common_args(&sched, dir.path(), &broker_for(o, &prefix));
    let mut inst = Instance::spawn(&args, dir, false);
    let startup = inst.wait_ready(Duration::from_secs(600)).as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let rss = inst.rss_kib() as f64 * 1024.0;
    let mut pct = f64::NAN;
    if idle {
        let t0 = (inst.cpu_ns(), Instant::now());
        std::thread::sleep(Duration::from_secs(o.idle_secs));
        let ns = inst.cpu_ns() - t0.0;
        pct = ns as f64 / 1e9 / t0.1.elapsed().as_secs_f64() * 100.0;
    }
    inst.stop();
    cleanup(&o.redis, &prefix);
    (startup, rss, pct)
}

/// Seconds from the due second until all N messages are in Redis.
fn burst(o: &Opts, n: usize, run: usize, startup_hint: f64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let lead = SignedDuration::from_secs_f64(startup_hint * 2.0 + 3.0);
    let secs = Timestamp::now().checked_add(lead).unwrap().as_second() + 1;
    let due = Timestamp::from_second(secs).unwrap();
    let sched = yaml_file(dir.path(), n, |_| format!("    at: '{due}'"));
    let prefix = format!("load{}-{run}-{n}:", std::process::id());
    let mut args = common_args(&sched, dir.path(), &broker_for(o, &prefix));
    if o.ha {
        // Lease, fencing and run state on the broker's Redis: the fenced
        // Lua publish. `--no-lock --state-file …` give way to `--lock`.
        args.truncate(4);
        args.extend([
            "--lock".into(),
            o.redis.clone(),
            "--state-prefix".into(),
            format!("{prefix}metronome:"),
        ]);
    }
    let mut inst = Instance::spawn(&args, dir, false);
    if o.ha {
        inst.wait_leader(Duration::from_secs(600));
    } else {
        inst.wait_ready(Duration::from_secs(600));
    }
    assert!(
        Timestamp::now() < due,
        "ready after the burst time; raise the lead"
    );
    let mut c = redis_conn(&o.redis);
    let key = format!("{prefix}celery");
    while Timestamp::now() < due {
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = loop {
        let len: usize = redis::cmd("LLEN").arg(&key).query(&mut c).unwrap();
        if len >= n {
            break Timestamp::now().duration_since(due).as_secs_f64();
        }
        assert!(
            Timestamp::now().duration_since(due) < SignedDuration::from_secs(120),
            "only {len} of {n} arrived"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    inst.stop();
    cleanup(&o.redis, &prefix);
    took
}

/// Publish lateness (ms) percentiles of N entries spread over the minute.
fn lateness(o: &Opts, n: usize, run: usize) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let sched = yaml_file(dir.path(), n, |i| {
        format!("    cron: '{} * * * * *'", i % 60)
    });
    let prefix = format!("load{}-{run}-{n}:", std::process::id());
    let args = common_args(&sched, dir.path(), &broker_for(o, &prefix));
    let mut inst = Instance::spawn(&args, dir, true);
    inst.wait_ready(Duration::from_secs(600));
    let mut c = redis_conn(&o.redis);
    let key = format!("{prefix}celery");
    let until = Instant::now() + Duration::from_secs(o.lateness_secs);
    while Instant::now() < until {
        // Drain, as workers would, so the list does not grow without bound.
        let _: () = redis::cmd("DEL").arg(&key).query(&mut c).unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    let logs = inst.stop();
    cleanup(&o.redis, &prefix);
    let mut late: Vec<f64> = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["missed"] == false)
        .filter_map(|v| v["lateness_ms"].as_f64())
        .collect();
    assert!(!late.is_empty(), "no dispatch logged");
    late.sort_by(f64::total_cmp);
    let pct = |p: f64| late[((late.len() as f64 * p).ceil() as usize).clamp(1, late.len()) - 1];
    (pct(0.5), pct(0.99), *late.last().unwrap())
}

/// Startup with N rows in a fresh PostgreSQL database.
fn startup_pg(o: &Opts, n: usize, run: usize) -> f64 {
    let db = format!("metronome_load_{}_{run}_{n}", std::process::id());
    let psql = |url: &str, sql: &str| {
        let out = Command::new("psql")
            .args([url, "-v", "ON_ERROR_STOP=1", "-qc", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql(&o.pg, &format!("CREATE DATABASE {db}"));
    let url = format!("{}/{db}", o.pg.rsplit_once('/').unwrap().0);
    let out = Command::new(binary())
        .args(["migrate", "--database", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    psql(
        &url,
        &format!(
            "INSERT INTO metronome_schedule (name, task, cron) \
             SELECT 'job-' || i, 'app.tasks.load', (i % 60) || ' ' || (i % 24) || ' 1 1 *' \
             FROM generate_series(0, {}) AS i",
            n - 1
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("loadpg{}-{run}-{n}:", std::process::id());
    let args = vec![
        "--database".into(),
        url.clone(),
        "--broker".into(),
        broker_for(o, &prefix),
        "--no-lock".into(),
    ];
    let mut inst = Instance::spawn(&args, dir, false);
    let t = inst.wait_ready(Duration::from_secs(600)).as_secs_f64();
    inst.stop();
    psql(&o.pg, &format!("DROP DATABASE {db} WITH (FORCE)"));
    t
}

fn summary(v: &[f64], unit: &str, scale: f64) -> String {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let f = |x: f64| format!("{:.3}", x * scale);
    format!(
        "{} / {} / {} {unit}",
        f(s[0]),
        f(s[s.len() / 2]),
        f(s[s.len() - 1])
    )
}

fn main() {
    let o = opts();
    let m = |name: &str| o.measures.iter().any(|x| x == name);
    println!(
        "metronome load: {} run(s) each; figures are min / median / max",
        o.runs
    );
    // Resident memory of a process with no entries, for the marginal cost.
    let baseline = m("memory").then(|| startup_memory_idle(&o, 0, 0, false).1);
    if let Some(b) = baseline {
        println!("N = 0: resident memory {:.1} MiB", b / 1048576.0);
    }
    for &n in &o.sizes {
        let mut marginal = vec![];
        let (mut st, mut mem, mut idle, mut bu, mut p50, mut p99, mut max, mut pg) = (
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        );
        println!("N = {n}: before: {}", reference_line(&o));
        for run in 0..o.runs {
            if m("startup") || m("memory") || m("idle") {
                let (a, b, c) = startup_memory_idle(&o, n, run, m("idle"));
                st.push(a);
                mem.push(b / n as f64);
                if let Some(base) = baseline {
                    marginal.push((b - base) / n as f64);
                }
                if m("idle") {
                    idle.push(c);
                }
            }
            if m("burst") {
                let hint = st.last().copied().unwrap_or(n as f64 / 100_000.0 * 2.0);
                bu.push(burst(&o, n, run, hint));
            }
            if m("lateness") {
                let (a, b, c) = lateness(&o, n, run);
                p50.push(a);
                p99.push(b);
                max.push(c);
            }
            if m("startup-pg") {
                pg.push(startup_pg(&o, n, run));
            }
        }
        println!("N = {n}: after:  {}", reference_line(&o));
        let show = |label: &str, v: &[f64], unit: &str, scale: f64| {
            if !v.is_empty() {
                println!("  {label:<34} {}", summary(v, unit, scale));
            }
        };
        show("startup to ready (YAML)", &st, "s", 1.0);
        show("resident memory per entry", &mem, "B", 1.0);
        show("  marginal over N = 0", &marginal, "B", 1.0);
        show("idle CPU (% of one core)", &idle, "%", 1.0);
        let burst_label = if o.ha {
            "burst (--lock, fenced Lua publish)"
        } else {
            "burst: due second to all in Redis"
        };
        show(burst_label, &bu, "s", 1.0);
        show("lateness p50", &p50, "ms", 1.0);
        show("lateness p99", &p99, "ms", 1.0);
        show("lateness max", &max, "ms", 1.0);
        show("startup to ready (PostgreSQL)", &pg, "s", 1.0);
        std::io::stdout().flush().unwrap();
    }
}
