//! The `metronome` command line: its flags, subcommands and help texts,
//! parsed here and handed to [`app`], the composition root, which does
//! the wiring (and the library the work).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use jiff::Timestamp;

mod app;

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
    /// Log level, as Celery spells it: debug, info, warning, error or
    /// critical (any case). Dependencies (sqlx, lapin, hyper, …) log at
    /// warning at most. Without it, METRONOME_LOG takes a tracing filter
    /// (e.g. `info,metronome::http=debug,sqlx=info`); the default is info.
    #[arg(
        short = 'l',
        long,
        global = true,
        env = "METRONOME_LOGLEVEL",
        ignore_case = true
    )]
    loglevel: Option<LogLevel>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// `-l/--loglevel`: Celery's level names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogLevel {
    Debug,
    Info,
    #[value(alias = "warn")]
    Warning,
    Error,
    #[value(alias = "fatal")]
    Critical,
}

impl LogLevel {
    /// The tracing level it is (tracing has nothing above error).
    fn directive(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warn",
            LogLevel::Error | LogLevel::Critical => "error",
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the scheduler: load schedules, dispatch runs to the broker.
    Run(RunArgs),
    /// Validate schedule files; exit 1 with FILE:LINE:COL messages on errors.
    Check(CheckArgs),
    /// List upcoming runs, merged across entries in time order.
    Next(NextArgs),
    /// Create or upgrade the schedule tables in a database.
    Migrate {
        /// postgres://… or sqlite://PATH (the file is created if missing).
        #[arg(long, env = "METRONOME_DATABASE_URL")]
        database: String,
    },
    /// Write a schedule file from celery beat's config, RedBeat's keys or
    /// django-celery-beat's tables; lists what cannot be converted and
    /// exits 1 (unless --skip-unsupported).
    Import(ImportArgs),
    /// Probe a running instance over loopback: exit 0 if `/livez` (or
    /// `/readyz` with --ready) answers 200, else 1. For container health checks.
    Healthcheck(HealthArgs),
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Schedule files, or directories (their *.yaml and *.yml files, sorted).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The broker the schedules will run on (falls back to CELERY_BROKER_URL):
    /// on redis:// `check` warns about priorities, whose order there is the
    /// reverse of RabbitMQ's.
    #[arg(long, env = "METRONOME_BROKER_URL", hide_env_values = true)]
    broker: Option<String>,
    #[command(flatten)]
    zone: ZoneArg,
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
    /// Probe readiness (`/readyz`) instead of liveness (`/livez`).
    #[arg(long)]
    ready: bool,
    /// Seconds to wait for connect, send and answer, each.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
}

#[derive(clap::Args)]
struct ImportArgs {
    #[command(subcommand)]
    source: ImportSource,
}

#[derive(Subcommand)]
enum ImportSource {
    /// A Celery app's beat_schedule, timezone and task_routes, read by
    /// importing the app with its own Python (as `celery -A` does).
    Celery {
        /// The app: MODULE or MODULE:ATTR, as for `celery -A`.
        #[arg(long)]
        app: String,
        /// The Python to import it with (default: $VIRTUAL_ENV/bin/python, else python3).
        #[arg(long)]
        python: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// RedBeat's entries: the `<prefix>:schedule` set and each entry's hash.
    Redbeat {
        /// The Redis RedBeat uses (its redbeat_redis_url).
        #[arg(long)]
        redis: String,
        /// RedBeat's redbeat_key_prefix.
        #[arg(long, default_value = "redbeat:")]
        key_prefix: String,
        /// The Celery app's timezone, in which RedBeat's crontabs run (default UTC).
        #[arg(long)]
        timezone: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// django-celery-beat's tables: postgres://, mysql:// (MariaDB too) or sqlite://.
    #[command(name = "django-celery-beat")]
    DjangoCeleryBeat {
        /// The Django database (read only).
        #[arg(long)]
        database: String,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(clap::Args)]
struct OutputArgs {
    /// Write the schedule file here (default: standard output).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Write what converts even when some items do not (they are listed).
    #[arg(long)]
    skip_unsupported: bool,
}

#[derive(clap::Args)]
struct ZoneArg {
    /// Zone for files that set no `timezone` (falls back to CELERY_TIMEZONE, then UTC).
    #[arg(long, env = "METRONOME_TIMEZONE")]
    timezone: Option<String>,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Schedule file or directory (its *.yaml and *.yml files, in name
    /// order); repeatable, and METRONOME_SCHEDULE takes a comma-separated
    /// list. Optional with --database.
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
    #[arg(long, env = "METRONOME_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
    /// HTTP API address (default 127.0.0.1:8080; `off` to disable). If the
    /// default address is taken the service runs without the API.
    #[arg(long = "http", env = "METRONOME_HTTP_ADDR")]
    http: Option<String>,
    /// Bearer token for API writes; without it writes answer 403.
    #[arg(long, env = "METRONOME_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Broker URL: redis://, rediss://, amqp://, amqps:// or stdout:// (falls back to CELERY_BROKER_URL).
    #[arg(long, env = "METRONOME_BROKER_URL", hide_env_values = true)]
    broker: Option<String>,
    /// Lease store for running several instances (one dispatches, the others
    /// stand by): redis://, rediss:// or sentinel://h:p[;sentinel://h:p]/db?master_name=M.
    /// Run state is then kept there too. Without --lock or --no-lock the
    /// service runs standalone and says so.
    #[arg(
        long,
        env = "METRONOME_LOCK_URL",
        conflicts_with = "no_lock",
        hide_env_values = true
    )]
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
    /// Local run-state file for standalone mode (unused with --database);
    /// its journal and lock file are kept beside it. The directory is
    /// created if missing.
    #[arg(
        long,
        env = "METRONOME_STATE_FILE",
        default_value = ".metronome/state.json"
    )]
    state_file: PathBuf,
    /// Write the process id here, as celery beat's --pidfile; refuses to
    /// start while the file names a live process; removed on exit.
    #[arg(long, env = "METRONOME_PIDFILE")]
    pidfile: Option<PathBuf>,
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
    // Before clap reads the environment: `*_FILE` secrets become their
    // variables.
    if let Err(e) = app::config::read_secret_files() {
        eprintln!("metronome: {e:#}");
        return ExitCode::from(2);
    }
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let logs = app::init_logging(cli.log_format, cli.loglevel);
    app::config::warn_secret_flags(&matches);
    let result = match cli.command {
        Command::Check(args) => app::check(&args),
        Command::Next(args) => app::next(&args),
        Command::Run(args) => app::run(args),
        Command::Migrate { database } => app::migrate(&database),
        Command::Healthcheck(args) => app::healthcheck(&args),
        Command::Import(args) => app::import(&args),
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
