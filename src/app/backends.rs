//! The construction of each backend `metronome run` wires together: the
//! lease, the run state store, the schedule database and the broker. Each
//! is one small function, so that changing how a backend is chosen or
//! built touches only that function.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use metronome::broker::{self, Broker, mask_url, redis::FenceKeys};
use metronome::db::{self, Db, SyncClient};
use metronome::entry::{Entry, FileOrigins};
use metronome::lease::{LeaseConfig, PgLease, RedisLease, Role};
use metronome::ports::lease::Lease;
use metronome::ports::store::StateStore;
use metronome::redis_link::{Keys, RedisLink};
use metronome::service::{Ha, Handle};
use metronome::source::db::Syncer;
use metronome::source::yaml::DefaultZone;
use metronome::state::EntryState;
use metronome::state::file::StateFile;
use metronome::state::redis::RedisState;
use metronome::state::sql::{FencedSqlState, SqlState};

use super::LOG_TARGET;
use crate::RunArgs;

/// Every entry's remembered run state, by name.
pub type States = BTreeMap<String, EntryState>;

/// The lease `--lock` names, by kind.
pub enum LeaseBackend {
    /// `redis://`, `rediss://`, `sentinel://`: lease and run state in Redis.
    Redis(Arc<RedisLease>),
    /// `postgres://`, `postgresql://`: lease and run state in PostgreSQL.
    Postgres(Arc<PgLease>),
}

impl LeaseBackend {
    fn config(&self) -> LeaseConfig {
        match self {
            LeaseBackend::Redis(l) => l.config(),
            LeaseBackend::Postgres(l) => l.config(),
        }
    }

    fn port(&self) -> Arc<dyn Lease> {
        match self {
            LeaseBackend::Redis(l) => l.clone(),
            LeaseBackend::Postgres(l) => l.clone(),
        }
    }

    fn redis(&self) -> Option<&RedisLease> {
        match self {
            LeaseBackend::Redis(l) => Some(l),
            LeaseBackend::Postgres(_) => None,
        }
    }
}

/// `--lock`: the lease (several instances, one dispatching), by URL
/// scheme, else `None`: standalone, with a warning unless `--no-lock` says
/// so.
pub fn open_lease(a: &RunArgs) -> anyhow::Result<Option<LeaseBackend>> {
    let Some(url) = a.lock.as_deref().filter(|u| !u.is_empty()) else {
        if !a.no_lock {
            tracing::warn!(target: LOG_TARGET,
                "no --lock given: running standalone; do not start a second instance (pass --no-lock to silence this)"
            );
        }
        return Ok(None);
    };
    let config = LeaseConfig::new(a.lock_ttl, a.lock_renew)?;
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    if matches!(scheme, "postgres" | "postgresql") {
        let l = PgLease::open(url, &a.state_prefix, config)?;
        return Ok(Some(LeaseBackend::Postgres(Arc::new(l))));
    }
    let link = Arc::new(RedisLink::open(url, config.op_timeout())?);
    let keys = Keys::new(&a.state_prefix);
    Ok(Some(LeaseBackend::Redis(Arc::new(RedisLease::new(
        link, keys, config,
    )))))
}

/// The lease task, kept until the run loop has stopped.
pub struct LeaseTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl LeaseTask {
    /// Releases the lease (after SIGTERM a standby takes over at its next
    /// poll), waiting up to 3 s for the task to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), self.task).await;
    }
}

/// The keys a Redis broker fences its publish with: only when the lease
/// is a Redis lease on the broker's own server and db (then the lease
/// check, the publish and the state write are one script).
pub fn fence_keys(lease: Option<&RedisLease>, broker_url: &str) -> Option<FenceKeys> {
    let l = lease.filter(|l| l.link().same_server_as(broker_url))?;
    Some(FenceKeys {
        lease: l.keys().lock.clone(),
        state: l.keys().state.clone(),
    })
}

/// Starts the task that keeps `lease` and publishes this instance's role;
/// the run loop dispatches only while it leads.
pub fn start_lease(backend: &LeaseBackend, atomic: bool) -> (Ha, LeaseTask) {
    let config = backend.config();
    let lease = backend.port();
    tracing::info!(target: LOG_TARGET,
        lock = %lease.describe(), instance = %lease.token(), ttl_ms = config.ttl.as_millis() as u64,
        renew_ms = config.renew.as_millis() as u64, atomic_dispatch = atomic,
        "high availability: standing by until the lease is acquired"
    );
    let (stop, rx_stop) = watch::channel(false);
    let (tx, role) = watch::channel(Role::Standby);
    let task = tokio::spawn(metronome::lease::run(lease.clone(), config, tx, rx_stop));
    (Ha { role, lease }, LeaseTask { stop, task })
}

/// The dispatching side: the lease task (if any) and the broker, which
/// fences its publish with the lease when both share a Redis.
pub async fn start_dispatch(
    lease: Option<LeaseBackend>,
    broker_url: &str,
) -> anyhow::Result<(Option<Ha>, Option<LeaseTask>, Box<dyn Broker>)> {
    let fence = fence_keys(lease.as_ref().and_then(|l| l.redis()), broker_url);
    let (ha, task) = match lease {
        Some(l) => {
            let (ha, task) = start_lease(&l, fence.is_some());
            (Some(ha), Some(task))
        }
        None => (None, None),
    };
    Ok((ha, task, connect_broker(broker_url, fence).await?))
}

/// Standalone without a database: the state file, opened (and locked)
/// before anything else. `None` when run state lives elsewhere.
pub fn open_state_file(a: &RunArgs, leased: bool) -> anyhow::Result<Option<(StateFile, States)>> {
    if a.database.is_some() || leased {
        return Ok(None);
    }
    Ok(Some(StateFile::open(&a.state_file)?))
}

/// The schedule database, connected and migrated, and its syncer (to run
/// once the service loop runs) with the client the API refreshes through.
pub struct Database {
    pub db: Db,
    pub syncer: Syncer,
    pub sync: SyncClient,
}

/// `--database`: connects, migrates and loads every row; returns the valid
/// rows as entries to start the scheduler with.
pub async fn connect_database(
    url: &str,
    zone: &DefaultZone,
    files: &Arc<FileOrigins>,
    handle: &Handle,
) -> anyhow::Result<(Database, Vec<Entry>)> {
    let db = Db::connect(url).await?;
    db.migrate().await?;
    tracing::info!(target: LOG_TARGET, database = %mask_url(url), "database connected and migrated");
    let (syncer, sync, entries) = Syncer::load(
        db.clone(),
        db::context(zone.clone()),
        files.clone(),
        handle.clone(),
    )
    .await?;
    Ok((Database { db, syncer, sync }, entries))
}

/// Where run state is kept, and what it holds now: with a lease, beside
/// it (its Redis, or its PostgreSQL database, migrated here), loaded at
/// each takeover, so nothing yet; else in the database; else in the
/// state file [`open_state_file`] opened.
pub async fn open_state_store(
    file: Option<(StateFile, States)>,
    db: Option<&Db>,
    lease: Option<&LeaseBackend>,
) -> anyhow::Result<(Box<dyn StateStore>, States)> {
    match lease {
        Some(LeaseBackend::Redis(l)) => {
            let store = RedisState::new(l.link(), l.keys().clone());
            return Ok((Box::new(store), States::default()));
        }
        Some(LeaseBackend::Postgres(l)) => {
            let lease_db = Db::Postgres(l.pool().clone());
            if !lease_db.is_current().await {
                lease_db.migrate().await?;
                tracing::info!(target: LOG_TARGET, lock = %l.describe(), "lease database migrated");
            }
            let store = FencedSqlState::new(l.pool().clone(), l.name());
            return Ok((Box::new(store), States::default()));
        }
        None => {}
    }
    if let Some(db) = db {
        let states = metronome::state::sql::load(db).await?;
        return Ok((Box::new(SqlState::start(db.clone())), states));
    }
    let (f, states) = file.expect("standalone without a database, the state file is opened first");
    Ok((Box::new(f), states))
}

/// The run loop's broker: set up, and tried once (an unreachable broker
/// is logged and retried; only an unusable URL fails).
pub async fn connect_broker(
    url: &str,
    fence: Option<FenceKeys>,
) -> anyhow::Result<Box<dyn Broker>> {
    let broker = broker::connect(url, fence).await?;
    tracing::info!(target: LOG_TARGET, broker = %mask_url(url), "broker configured");
    Ok(broker)
}

/// The API's own broker connection, pinged by `/readyz`.
pub fn api_broker(url: &str) -> anyhow::Result<Box<dyn Broker>> {
    Ok(broker::open(url, None)?)
}
