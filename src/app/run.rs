//! `metronome run`, step by step. Before the runtime: the broker URL, the
//! schedule files, the lease, the state file and the process-wide limits.
//! In it: the database, the run state store, the lease task, the broker,
//! the signal handler, the HTTP API and the file watcher, then the service
//! loop, and only once it has stopped the lease's release.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use tokio::sync::watch;

use metronome::db::{self, Db, SyncClient};
use metronome::entry::{Entry, FileOrigins};
use metronome::lease::Role;
use metronome::ports::clock::{Clock, SystemClock};
use metronome::service::Handle;
use metronome::service::inbox::SharedStatus;
use metronome::source::yaml::{self, DefaultZone};
use metronome::state::file::StateFile;

use super::LOG_TARGET;
use super::backends::{self, States};
use super::schedules::default_zone;
use crate::RunArgs;

/// What is settled before the runtime starts.
struct Prepared {
    broker_url: String,
    /// The schedule files, directories expanded.
    schedules: Vec<PathBuf>,
    zone: DefaultZone,
    /// The entries of the schedule files (the scheduler and the file
    /// watcher share each entry).
    entries: Vec<Arc<Entry>>,
    files: Arc<FileOrigins>,
    lease: Option<backends::LeaseBackend>,
    file_state: Option<(StateFile, States)>,
    http: Option<HttpPlan>,
}

/// `metronome run`: returns once the service loop has stopped (a signal,
/// or an error).
pub fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    // Removed when `run` returns, after the service has stopped.
    let _pidfile = a
        .pidfile
        .as_deref()
        .map(super::pidfile::PidFile::create)
        .transpose()?;
    let p = prepare(&a)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    set_process_limits(&a, p.lease.is_none());
    rt.block_on(serve(a, p))?;
    Ok(ExitCode::SUCCESS)
}

/// Everything that can fail before the runtime, in the order its errors
/// are reported.
fn prepare(a: &RunArgs) -> anyhow::Result<Prepared> {
    let broker_url = broker_url(a)?;
    let zone = default_zone(&a.zone)?;
    let schedules = yaml::expand_paths(&a.schedules).map_err(|errs| {
        eprintln!("{errs}");
        anyhow::anyhow!("refusing to start: a schedule path cannot be used")
    })?;
    let entries = load_schedules(&schedules, &zone)?;
    let lease = backends::open_lease(a)?;
    let files = Arc::new(entries.iter().cloned().collect());
    let file_state = backends::open_state_file(a, lease.is_some())?;
    Ok(Prepared {
        broker_url,
        schedules,
        zone,
        entries,
        files,
        lease,
        file_state,
        http: HttpPlan::from_arg(a.http.as_deref()),
    })
}

/// `--broker`, else `CELERY_BROKER_URL`.
fn broker_url(a: &RunArgs) -> anyhow::Result<String> {
    a.broker
        .clone()
        .or_else(|| std::env::var("CELERY_BROKER_URL").ok())
        .filter(|s| !s.is_empty())
        .context("no broker: pass --broker or set METRONOME_BROKER_URL (or CELERY_BROKER_URL)")
}

/// The schedule files' entries; any error refuses the start.
fn load_schedules(paths: &[PathBuf], zone: &DefaultZone) -> anyhow::Result<Vec<Arc<Entry>>> {
    match yaml::load_files(paths, zone) {
        Ok(e) => Ok(e.into_iter().map(Arc::new).collect()),
        Err(errs) => {
            eprintln!("{errs}");
            bail!(
                "refusing to start: the schedule files have {} error(s)",
                errs.0.len()
            );
        }
    }
}

/// Process-wide settings from the flags, before anything is recorded.
fn set_process_limits(a: &RunArgs, standalone: bool) {
    metronome::state::set_history_limit(a.history);
    metronome::metrics::set_entry_limit(a.metrics_entry_limit);
    metronome::http::metrics_handle();
    // Standalone, this instance is always the one dispatching; with a
    // lease, the lease task reports the role as it changes.
    metronome::metrics::set_leader(standalone, 0);
}

/// The service inside the runtime, from the sources to the shutdown.
async fn serve(a: RunArgs, p: Prepared) -> anyhow::Result<()> {
    let Prepared {
        broker_url,
        schedules,
        zone,
        mut entries,
        files,
        lease,
        file_state,
        http,
    } = p;
    // One clock for the loop, the API and the reloads.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let yaml_entries = entries.clone();
    let (handle, commands) = metronome::service::channel();
    metronome::metrics::spawn_upkeep();
    let database = open_database(&a, &zone, &files, &handle, &mut entries).await?;
    let db = database.as_ref().map(|d| &d.db);
    let (store, states) = backends::open_state_store(file_state, db, lease.as_ref()).await?;
    let (ha, lease_task, broker) = backends::start_dispatch(lease, &broker_url).await?;
    let role = ha
        .as_ref()
        .map(|h| (h.role.clone(), h.lease.token().to_string()));
    let (tx, rx) = watch::channel(false);
    spawn_shutdown_signal(tx);
    let (db, sync) = match database {
        Some(d) => {
            tokio::spawn(d.syncer.run());
            (Some(d.db), Some(d.sync))
        }
        None => (None, None),
    };
    let reload = reload_status(&schedules);
    // Kept to the end: the syncer runs while a client of it is alive.
    let api = ApiParts {
        handle: handle.clone(),
        db,
        sync,
        files,
        zone: zone.clone(),
        token: a.api_token.clone().filter(|t| !t.is_empty()),
        role,
        reload: reload.clone(),
        broker_url,
        clock: clock.clone(),
    };
    if let Some(plan) = http {
        start_http(plan, &api, rx.clone()).await?;
    }
    if let Some(status) = reload {
        tokio::spawn(metronome::source::watch::run(
            schedules,
            zone,
            yaml_entries,
            handle.clone(),
            status,
            clock.clone(),
            rx.clone(),
        ));
    }
    tokio::spawn(super::announce::next_runs(handle.clone()));
    let parts = metronome::service::Parts {
        entries,
        store,
        states,
        broker,
        ha,
        clock,
    };
    let result = metronome::service::run(parts, rx, commands).await;
    // Only now, with dispatch stopped, is the lease released.
    if let Some(t) = lease_task {
        t.stop().await;
    }
    result?;
    Ok(())
}

/// `--database`: connected and migrated; its valid rows join `entries`.
async fn open_database(
    a: &RunArgs,
    zone: &DefaultZone,
    files: &Arc<FileOrigins>,
    handle: &Handle,
    entries: &mut Vec<Arc<Entry>>,
) -> anyhow::Result<Option<backends::Database>> {
    let Some(url) = &a.database else {
        return Ok(None);
    };
    let (d, db_entries) = backends::connect_database(url, zone, files, handle).await?;
    entries.extend(db_entries.into_iter().map(Arc::new));
    Ok(Some(d))
}

/// Sets `tx` on SIGTERM or SIGINT.
fn spawn_shutdown_signal(tx: watch::Sender<bool>) {
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(target: LOG_TARGET, "shutdown requested");
        let _ = tx.send(true);
    });
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

/// With schedule files: the reload status the watcher keeps and the API
/// serves.
fn reload_status(schedules: &[PathBuf]) -> Option<SharedStatus> {
    (!schedules.is_empty()).then(|| {
        let s = SharedStatus::default();
        s.lock().expect("fresh lock").files =
            schedules.iter().map(|p| p.display().to_string()).collect();
        s
    })
}

/// `--http`: the API's address, and whether failing to bind it is an error.
struct HttpPlan {
    addr: String,
    /// Given explicitly (else the default, which may be taken).
    required: bool,
}

impl HttpPlan {
    /// `None`: the default address, not required; `off` or empty: no API.
    fn from_arg(arg: Option<&str>) -> Option<HttpPlan> {
        match arg {
            None => Some(HttpPlan {
                addr: "127.0.0.1:8080".to_string(),
                required: false,
            }),
            Some("off") | Some("") => None,
            Some(addr) => Some(HttpPlan {
                addr: addr.to_string(),
                required: true,
            }),
        }
    }
}

/// What the API is built from, once its address is bound.
struct ApiParts {
    handle: Handle,
    db: Option<Db>,
    sync: Option<SyncClient>,
    files: Arc<FileOrigins>,
    zone: DefaultZone,
    token: Option<String>,
    role: Option<(watch::Receiver<Role>, String)>,
    reload: Option<SharedStatus>,
    broker_url: String,
    clock: Arc<dyn Clock>,
}

impl ApiParts {
    fn state(&self) -> anyhow::Result<metronome::http::AppState> {
        Ok(metronome::http::AppState {
            handle: self.handle.clone(),
            db: self.db.clone(),
            sync: self.sync.clone(),
            files: self.files.clone(),
            ctx: db::context(self.zone.clone()),
            token: self.token.clone(),
            role: self.role.clone(),
            reload: self.reload.clone(),
            broker: tokio::sync::Mutex::new(backends::api_broker(&self.broker_url)?),
            clock: self.clock.clone(),
        })
    }
}

/// Binds the API's address and serves it until shutdown. A taken default
/// address only warns: the service then runs without the API.
async fn start_http(
    plan: HttpPlan,
    api: &ApiParts,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let addr = plan.addr;
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(e) if !plan.required => {
            tracing::warn!(target: LOG_TARGET, addr = %addr, error = %e, "http api not started: the default address is taken (pass --http ADDR)");
            return Ok(());
        }
        Err(e) => return Err(anyhow::anyhow!("cannot listen on {addr}: {e}")),
    };
    let local = listener.local_addr()?;
    tracing::info!(target: LOG_TARGET, addr = %local, "http api listening");
    let state = Arc::new(api.state()?);
    tokio::spawn(async move {
        if let Err(e) = metronome::http::serve(listener, state, shutdown).await {
            tracing::error!(target: LOG_TARGET, error = %e, "http api stopped");
        }
    });
    Ok(())
}
