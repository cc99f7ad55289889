//! The `metronome` command line. Parsing flags and printing results only;
//! the work is done by the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use metronome::broker::{Broker, mask_url};
use metronome::engine::upcoming;
use metronome::lease::{self, LeaseConfig, Role};
use metronome::source::sql::{self, Db, Syncer};
use metronome::source::yaml::{self, DefaultZone};
use metronome::state::StateStore;
use metronome::state::file::StateFile;
use metronome::state::redis::RedisState;

#[derive(Parser)]
#[command(
    name = "metronome",
    version,
    about = "A periodic task scheduler for Celery: a drop-in replacement for celery beat"
)]
struct Cli {
    /// Log format: `text` (default) or `json`.
    #[arg(
        long,
        global = true,
        env = "METRONOME_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scheduler: load schedules, dispatch runs to the broker.
    Run(RunArgs),
    /// Validate schedule files; exit 1 with FILE:LINE:COL messages on errors.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        zone: ZoneArg,
    },
    /// List upcoming runs, merged across entries in time order.
    Next(NextArgs),
    /// Create or upgrade the schedule tables in a database.
    Migrate {
        /// postgres://… or sqlite://PATH (the file is created if missing).
        #[arg(long, env = "METRONOME_DATABASE_URL")]
        database: String,
    },
    /// Probe a running instance over loopback: exit 0 if `/healthz` (or
    /// `/readyz` with --ready) answers 200, else 1. For container health checks.
    Healthcheck(HealthArgs),
}

#[derive(clap::Args)]
struct HealthArgs {
    /// The instance's HTTP address (its --http); 0.0.0.0/[::] are probed on loopback.
    #[arg(
        long = "http",
        env = "METRONOME_HTTP_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    http: String,
    /// Probe readiness (`/readyz`) instead of liveness (`/healthz`).
    #[arg(long)]
    ready: bool,
    /// Seconds to wait for connect, send and answer, each.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
}

#[derive(clap::Args)]
struct ZoneArg {
    /// Zone for files that set no `timezone` (falls back to CELERY_TIMEZONE, then UTC).
    #[arg(long, env = "METRONOME_TIMEZONE")]
    timezone: Option<String>,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Schedule file (repeatable; optional with --database).
    #[arg(
        long = "schedule",
        env = "METRONOME_SCHEDULE",
        value_delimiter = ',',
        required_unless_present = "database"
    )]
    schedules: Vec<PathBuf>,
    /// Schedule database: postgres://… or sqlite://PATH. Holds schedules
    /// (writable through the API) and the run state of every entry; its
    /// tables are created or upgraded on start.
    #[arg(long, env = "METRONOME_DATABASE_URL")]
    database: Option<String>,
    /// HTTP API address (default 127.0.0.1:8080; `off` to disable). If the
    /// default address is taken the service runs without the API.
    #[arg(long = "http", env = "METRONOME_HTTP_ADDR")]
    http: Option<String>,
    /// Bearer token for API writes; without it writes answer 403.
    #[arg(long, env = "METRONOME_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Broker URL: redis://, rediss://, amqp://, amqps:// or stdout:// (falls back to CELERY_BROKER_URL).
    #[arg(long, env = "METRONOME_BROKER_URL")]
    broker: Option<String>,
    /// Lease store for running several instances (one dispatches, the others
    /// stand by): redis://, rediss:// or sentinel://h:p[;sentinel://h:p]/db?master_name=M.
    /// Run state is then kept there too. Without --lock or --no-lock the
    /// service runs standalone and says so.
    #[arg(long, env = "METRONOME_LOCK_URL", conflicts_with = "no_lock")]
    lock: Option<String>,
    /// Run without a lease, keeping run state in --state-file (or the database).
    #[arg(long, env = "METRONOME_NO_LOCK")]
    no_lock: bool,
    /// Lease time-to-live: how long a dead leader blocks failover (min 1s).
    #[arg(long, env = "METRONOME_LOCK_TTL", default_value = "10s", value_parser = parse_std_duration)]
    lock_ttl: std::time::Duration,
    /// Lease renewal period (default TTL/3; must be under TTL/2).
    #[arg(long, env = "METRONOME_LOCK_RENEW", value_parser = parse_std_duration)]
    lock_renew: Option<std::time::Duration>,
    /// Key prefix for the lease and run state in the lock's Redis.
    #[arg(long, env = "METRONOME_STATE_PREFIX", default_value = "metronome:")]
    state_prefix: String,
    /// Outcomes kept per entry (run history, served at
    /// /api/v1/schedules/{name}/history; 0 keeps none).
    #[arg(long, env = "METRONOME_HISTORY", default_value_t = metronome::state::DEFAULT_HISTORY_LIMIT)]
    history: usize,
    /// Entries that get Prometheus series of their own (next-run gauge,
    /// per-entry counters); the rest are counted as entry="_other".
    #[arg(long, env = "METRONOME_METRICS_ENTRY_LIMIT", default_value_t = metronome::metrics::DEFAULT_ENTRY_LIMIT)]
    metrics_entry_limit: usize,
    /// Local run-state file for standalone mode (unused with --database).
    #[arg(
        long,
        env = "METRONOME_STATE_FILE",
        default_value = "metronome-state.json"
    )]
    state_file: PathBuf,
    #[command(flatten)]
    zone: ZoneArg,
}

#[derive(clap::Args)]
struct NextArgs {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// How many runs to list (of the named entry with --name).
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// List runs strictly after this RFC 3339 instant (default: now).
    #[arg(long)]
    from: Option<Timestamp>,
    /// List runs strictly before this RFC 3339 instant.
    #[arg(long)]
    until: Option<Timestamp>,
    /// Only this entry.
    #[arg(long)]
    name: Option<String>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    zone: ZoneArg,
}

fn parse_std_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = metronome::duration::parse(s).map_err(|e| e.to_string())?;
    d.try_into()
        .map_err(|_| format!("`{s}` must not be negative"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = init_logging(cli.log_format);
    let result = match cli.command {
        Command::Check { files, zone } => check(&files, &zone),
        Command::Next(args) => next(&args),
        Command::Run(args) => run(args),
        Command::Migrate { database } => migrate(&database),
        Command::Healthcheck(args) => healthcheck(&args),
    };
    // Every log line is out before the error or the exit.
    drop(logs);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("metronome: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr through [`log_sink::LogSink`]: a burst's thousands of
/// `dispatched` lines cost the run loop a buffer append each, not a write
/// system call. Dropping the returned guard writes out what is buffered.
fn init_logging(format: LogFormat) -> log_sink::LogGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("METRONOME_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (sink, guard) = log_sink::LogSink::start(Box::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
}

mod log_sink {
    //! A log writer that never makes the logging thread wait for the
    //! terminal or pipe: lines are appended to a shared buffer and a thread
    //! of its own writes the buffer out, many lines per system call. Lines
    //! are never dropped: past [`MAX_PENDING`] bytes, loggers wait.

    use std::io::Write;
    use std::sync::{Arc, Condvar, Mutex};
    use std::thread::JoinHandle;

    use tracing_subscriber::fmt::MakeWriter;

    /// Buffered bytes beyond which a logger waits for the writer thread.
    pub const MAX_PENDING: usize = 8 << 20;

    #[derive(Default)]
    struct Pending {
        data: Vec<u8>,
        /// The writer thread sleeps, waiting for data.
        idle: bool,
        /// Loggers wait for the buffer to drain.
        full: usize,
        closed: bool,
    }

    #[derive(Default)]
    struct Shared {
        pending: Mutex<Pending>,
        /// Data arrived, or closing.
        ready: Condvar,
        /// The buffer was taken.
        drained: Condvar,
    }

    /// The `MakeWriter` for tracing-subscriber. Cheap to clone.
    #[derive(Clone)]
    pub struct LogSink(Arc<Shared>);

    /// Writes out what is buffered and stops the thread when dropped;
    /// later lines go straight to the output's fallback (stderr).
    pub struct LogGuard {
        shared: Arc<Shared>,
        thread: Option<JoinHandle<()>>,
    }

    impl LogSink {
        /// Starts the writer thread for `out`.
        pub fn start(mut out: Box<dyn Write + Send>) -> (LogSink, LogGuard) {
            let shared = Arc::new(Shared::default());
            let s = shared.clone();
            let thread = std::thread::Builder::new()
                .name("log-writer".into())
                .spawn(move || {
                    let mut batch = Vec::new();
                    loop {
                        let closed = {
                            let mut p = s.pending.lock().unwrap_or_else(|e| e.into_inner());
                            while p.data.is_empty() && !p.closed {
                                p.idle = true;
                                p = s.ready.wait(p).unwrap_or_else(|e| e.into_inner());
                            }
                            p.idle = false;
                            std::mem::swap(&mut p.data, &mut batch);
                            if p.full > 0 {
                                s.drained.notify_all();
                            }
                            p.closed && batch.is_empty()
                        };
                        if closed {
                            let _ = out.flush();
                            return;
                        }
                        // Nowhere to report a failed log write; drop it.
                        let _ = out.write_all(&batch);
                        let _ = out.flush();
                        batch.clear();
                    }
                })
                .expect("spawn the log writer thread");
            (
                LogSink(shared.clone()),
                LogGuard {
                    shared,
                    thread: Some(thread),
                },
            )
        }
    }

    impl Drop for LogGuard {
        fn drop(&mut self) {
            {
                let mut p = self
                    .shared
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                p.closed = true;
                self.shared.ready.notify_one();
            }
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// One log line being written.
    pub struct Line<'a>(&'a Shared);

    impl Write for Line<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut p = self.0.pending.lock().unwrap_or_else(|e| e.into_inner());
            if p.closed {
                drop(p);
                return std::io::stderr().write(buf);
            }
            while p.data.len() >= MAX_PENDING && !p.closed {
                p.full += 1;
                p = self.0.drained.wait(p).unwrap_or_else(|e| e.into_inner());
                p.full -= 1;
            }
            p.data.extend_from_slice(buf);
            if p.idle {
                p.idle = false;
                self.0.ready.notify_one();
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for LogSink {
        type Writer = Line<'a>;
        fn make_writer(&'a self) -> Line<'a> {
            Line(&self.0)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// An output that keeps what it is given.
        #[derive(Clone, Default)]
        struct Kept(Arc<Mutex<Vec<u8>>>);

        impl Write for Kept {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        /// Lines from several threads, more than the buffer holds, all
        /// arrive whole and in each thread's order by the time the guard
        /// is dropped.
        #[test]
        fn every_line_arrives_whole_and_in_order() {
            let kept = Kept::default();
            let (sink, guard) = LogSink::start(Box::new(kept.clone()));
            let pad = "x".repeat(200);
            let per_thread = (MAX_PENDING / 200) + 1000;
            std::thread::scope(|s| {
                for t in 0..3 {
                    let (sink, pad) = (sink.clone(), &pad);
                    s.spawn(move || {
                        for i in 0..per_thread {
                            let line = format!("{t} {i} {pad}\n");
                            sink.make_writer().write_all(line.as_bytes()).unwrap();
                        }
                    });
                }
            });
            drop(guard);
            let text = String::from_utf8(kept.0.lock().unwrap().clone()).unwrap();
            let mut next = [0usize; 3];
            for l in text.lines() {
                let mut f = l.split(' ');
                let t: usize = f.next().unwrap().parse().unwrap();
                let i: usize = f.next().unwrap().parse().unwrap();
                assert_eq!(f.next(), Some(pad.as_str()), "a line was cut: {l:.40}");
                assert_eq!(i, next[t], "thread {t} out of order");
                next[t] += 1;
            }
            assert_eq!(next, [per_thread; 3]);
        }
    }
}

fn default_zone(z: &ZoneArg) -> anyhow::Result<DefaultZone> {
    let name = z
        .timezone
        .clone()
        .or_else(|| std::env::var("CELERY_TIMEZONE").ok())
        .filter(|s| !s.is_empty());
    match name {
        None => Ok(None),
        Some(n) => {
            let tz = TimeZone::get(&n).with_context(|| {
                format!("unknown time zone `{n}` in --timezone/CELERY_TIMEZONE")
            })?;
            Ok(Some((n, tz)))
        }
    }
}

fn check(files: &[PathBuf], zone: &ZoneArg) -> anyhow::Result<ExitCode> {
    match yaml::load_files(files, &default_zone(zone)?) {
        Ok(entries) => {
            let mut kinds = std::collections::BTreeMap::new();
            for e in &entries {
                *kinds.entry(e.schedule.kind()).or_insert(0) += 1;
            }
            let detail: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
            println!(
                "ok: {} schedule{} in {} file{} ({})",
                entries.len(),
                if entries.len() == 1 { "" } else { "s" },
                files.len(),
                if files.len() == 1 { "" } else { "s" },
                detail.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errs) => {
            eprintln!("{errs}");
            eprintln!(
                "{} error{} found",
                errs.0.len(),
                if errs.0.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn next(a: &NextArgs) -> anyhow::Result<ExitCode> {
    let entries = match yaml::load_files(&a.files, &default_zone(&a.zone)?) {
        Ok(e) => e,
        Err(errs) => {
            eprintln!("{errs}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let from = a.from.unwrap_or_else(Timestamp::now);
    let selected: Vec<_> = match &a.name {
        Some(n) => {
            let e: Vec<_> = entries.iter().filter(|e| &e.name == n).collect();
            if e.is_empty() {
                bail!("no schedule named `{n}`");
            }
            e
        }
        None => entries.iter().collect(),
    };
    // Without run state, an interval is anchored at `--from`.
    let runs = upcoming(
        selected.into_iter().map(|e| (e, from)),
        from,
        a.until,
        a.count,
    );
    let mut out = std::io::stdout().lock();
    if a.json {
        for (e, run) in runs {
            let at = run.due.to_zoned(e.timezone.clone());
            let line = serde_json::json!({
                "schedule": e.name, "task": e.task,
                "at": at.strftime("%Y-%m-%dT%H:%M:%S%.f%:z").to_string(),
                "utc": run.due.to_string(),
            });
            writeln!(out, "{line}")?;
        }
    } else {
        let rows: Vec<[String; 4]> = runs
            .iter()
            .map(|(e, run)| {
                let at = run.due.to_zoned(e.timezone.clone());
                [
                    format!(
                        "{} {}",
                        at.strftime("%Y-%m-%d %H:%M:%S%.f %:z"),
                        e.timezone_name
                    ),
                    run.due.to_string(),
                    e.name.clone(),
                    e.task.to_string(),
                ]
            })
            .collect();
        let head = ["AT (LOCAL)", "UTC", "SCHEDULE", "TASK"];
        let mut w = head.map(str::len);
        for r in &rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |r: &[&str; 4]| {
            format!(
                "{:w0$}  {:w1$}  {:w2$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2]
            )
        };
        writeln!(out, "{}", line(&head))?;
        for r in &rows {
            writeln!(
                out,
                "{}",
                line(&[r[0].as_str(), r[1].as_str(), r[2].as_str(), r[3].as_str()])
            )?;
        }
        if rows.is_empty() {
            writeln!(out, "(no runs in range)")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn healthcheck(a: &HealthArgs) -> anyhow::Result<ExitCode> {
    use metronome::healthcheck;
    let path = if a.ready { "/readyz" } else { "/healthz" };
    let timeout = std::time::Duration::try_from_secs_f64(a.timeout)
        .context("--timeout: expected a positive number of seconds")?;
    let addr = healthcheck::probe_addr(&a.http)?;
    match healthcheck::get(addr, path, timeout) {
        Ok((200, _)) => {
            println!("ok: {addr}{path} answered 200");
            Ok(ExitCode::SUCCESS)
        }
        Ok((code, body)) => {
            eprintln!("metronome: {addr}{path} answered {code}: {}", body.trim());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("metronome: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn migrate(url: &str) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        println!("ok: database {} is up to date", mask_url(url));
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let broker_url = a
        .broker
        .clone()
        .or_else(|| std::env::var("CELERY_BROKER_URL").ok())
        .filter(|s| !s.is_empty())
        .context("no broker: pass --broker or set METRONOME_BROKER_URL (or CELERY_BROKER_URL)")?;
    let zone = default_zone(&a.zone)?;
    let entries = match yaml::load_files(&a.schedules, &zone) {
        Ok(e) => e,
        Err(errs) => {
            eprintln!("{errs}");
            bail!(
                "refusing to start: the schedule files have {} error(s)",
                errs.0.len()
            );
        }
    };
    // The scheduler and the file watcher share each entry.
    let mut entries: Vec<std::sync::Arc<metronome::entry::Entry>> =
        entries.into_iter().map(std::sync::Arc::new).collect();
    // The lease: --lock URL (HA), else standalone (--no-lock, or a warning).
    let lease = match a.lock.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => {
            let config = LeaseConfig::new(a.lock_ttl, a.lock_renew)?;
            let store = std::sync::Arc::new(lease::Store::open(url, config.op_timeout())?);
            let keys = lease::Keys::new(&a.state_prefix);
            Some(lease::Lease::new(store, keys, config))
        }
        None => {
            if !a.no_lock {
                tracing::warn!(
                    "no --lock given: running standalone; do not start a second instance (pass --no-lock to silence this)"
                );
            }
            None
        }
    };
    let yaml_entries = entries.clone();
    let files: std::sync::Arc<metronome::entry::FileOrigins> =
        std::sync::Arc::new(entries.iter().cloned().collect());
    // Standalone without a database: the state file is opened (and locked)
    // before anything else. With a lease, run state lives in its Redis.
    let file_state = match (&a.database, &lease) {
        (None, None) => Some(StateFile::open(&a.state_file)?),
        _ => None,
    };
    let (http_addr, http_required) = match a.http.as_deref() {
        None => (Some("127.0.0.1:8080".to_string()), false),
        Some("off") | Some("") => (None, false),
        Some(addr) => (Some(addr.to_string()), true),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    metronome::state::set_history_limit(a.history);
    metronome::metrics::set_entry_limit(a.metrics_entry_limit);
    metronome::http::metrics_handle();
    // Standalone, this instance is always the one dispatching; with a
    // lease, the lease task reports the role as it changes.
    metronome::metrics::set_leader(lease.is_none(), 0);
    rt.block_on(async move {
        let (handle, commands) = metronome::service::channel();
        metronome::metrics::spawn_upkeep();
        let (mut store, mut states, db, sync) = match &a.database {
            None => match file_state {
                Some((f, states)) => (Some(StateStore::File(f)), states, None, None),
                None => (None, Default::default(), None, None),
            },
            Some(url) => {
                let db = Db::connect(url).await?;
                db.migrate().await?;
                tracing::info!(database = %mask_url(url), "database connected and migrated");
                let (syncer, client, db_entries) =
                    Syncer::load(db.clone(), sql::context(zone.clone()), files.clone(), handle.clone())
                        .await?;
                entries.extend(db_entries.into_iter().map(std::sync::Arc::new));
                let (store, states) = if lease.is_some() {
                    (None, Default::default())
                } else {
                    let states = metronome::state::sql::load(&db).await?;
                    (Some(StateStore::Sql(metronome::state::sql::SqlState::start(db.clone()))), states)
                };
                (store, states, Some((db, syncer)), Some(client))
            }
        };
        // With a lease: run state in Redis (loaded at each takeover), the
        // lease kept by its own task until the run loop has stopped.
        let (tx_lease_stop, rx_lease_stop) = tokio::sync::watch::channel(false);
        let mut lease_task = None;
        let ha = match lease {
            Some(l) => {
                let atomic = l.store_same_server_as(&broker_url);
                let instance = l.token().to_string();
                tracing::info!(
                    lock = %l.store_describe(), instance = %instance, ttl_ms = l.config().ttl.as_millis() as u64,
                    renew_ms = l.config().renew.as_millis() as u64, atomic_dispatch = atomic,
                    "high availability: standing by until the lease is acquired"
                );
                store = Some(StateStore::Redis(RedisState::new(l.store(), l.keys().clone())));
                states = Default::default();
                let (tx, role) = tokio::sync::watch::channel(Role::Standby);
                lease_task = Some(tokio::spawn(lease::run(l, tx, rx_lease_stop)));
                Some(metronome::service::Ha { role, instance, atomic })
            }
            None => None,
        };
        let store = store.expect("a run state store is chosen above");
        let role = ha.as_ref().map(|h| (h.role.clone(), h.instance.clone()));
        let broker = Broker::connect(&broker_url).await?;
        tracing::info!(broker = %mask_url(&broker_url), "broker configured");
        let (tx, rx) = tokio::sync::watch::channel(false);
        let http_shutdown = rx.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested");
            let _ = tx.send(true);
        });
        let db = db.map(|(db, syncer)| {
            tokio::spawn(syncer.run());
            db
        });
        let reload = (!a.schedules.is_empty()).then(|| {
            let s = metronome::service::inbox::SharedStatus::default();
            s.lock().expect("fresh lock").files =
                a.schedules.iter().map(|p| p.display().to_string()).collect();
            s
        });
        if let Some(addr) = http_addr {
            match tokio::net::TcpListener::bind(&addr).await {
                Ok(listener) => {
                    let local = listener.local_addr()?;
                    tracing::info!(addr = %local, "http api listening");
                    let state = std::sync::Arc::new(metronome::http::AppState {
                        handle: handle.clone(),
                        db,
                        sync,
                        files,
                        ctx: sql::context(zone.clone()),
                        token: a.api_token.clone().filter(|t| !t.is_empty()),
                        role: role.clone(),
                        reload: reload.clone(),
                        broker: tokio::sync::Mutex::new(Broker::new(&broker_url)?),
                    });
                    tokio::spawn(async move {
                        if let Err(e) = metronome::http::serve(listener, state, http_shutdown).await {
                            tracing::error!(error = %e, "http api stopped");
                        }
                    });
                }
                Err(e) if !http_required => {
                    tracing::warn!(addr = %addr, error = %e, "http api not started: the default address is taken (pass --http ADDR)");
                }
                Err(e) => return Err(anyhow::anyhow!("cannot listen on {addr}: {e}")),
            }
        }
        if let Some(status) = reload {
            tokio::spawn(metronome::source::watch::run(
                a.schedules.clone(),
                zone,
                yaml_entries,
                handle.clone(),
                status,
                rx.clone(),
            ));
        }
        let result = metronome::service::run(entries, store, states, broker, rx, commands, ha).await;
        // Only now, with dispatch stopped, is the lease released (SIGTERM:
        // a standby takes over at its next poll).
        let _ = tx_lease_stop.send(true);
        if let Some(t) = lease_task {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), t).await;
        }
        result?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
