//! Run state in the schedule database (`metronome_state`), used whenever
//! `--database` is given.
//!
//! Saving never blocks the run loop: changed entries go to a writer task
//! that coalesces them (the newest state per name wins) and writes them in
//! one transaction. While the database is unreachable the writer keeps the
//! pending states and retries; [`SqlState::close`] flushes before exit.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use sqlx::QueryBuilder;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use super::EntryState;
use crate::db::{Db, DbError};
use crate::ports::BoxFuture;
use crate::ports::store::{Loaded, StateError, StateStore, States};

/// Rows per multi-row upsert (9 parameters each, under SQLite's limit).
const CHUNK: usize = 500;
const RETRY: Duration = Duration::from_secs(1);

enum Msg {
    Put(String, EntryState),
    Delete(String),
    Flush(oneshot::Sender<()>),
}

/// A handle to the state writer task.
pub struct SqlState {
    tx: mpsc::UnboundedSender<Msg>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(sqlx::FromRow)]
struct StateRow {
    name: String,
    cursor_at: Option<String>,
    last_run: Option<String>,
    last_sent_at: Option<String>,
    total_runs: i64,
    last_error: Option<String>,
    anchor: Option<String>,
    timing_key: String,
    history: String,
}

fn ts(s: Option<String>) -> Option<Timestamp> {
    s.and_then(|s| s.parse().ok())
}

/// Every saved state.
pub async fn load(db: &Db) -> Result<BTreeMap<String, EntryState>, DbError> {
    const Q: &str = "SELECT name, cursor_at, last_run, last_sent_at, total_runs, last_error, anchor, timing_key, history FROM metronome_state";
    let rows: Vec<StateRow> = match db {
        // In a transaction with an unnamed statement, so it works through
        // PgBouncer in transaction mode (the fenced store shares this).
        Db::Postgres(p) => {
            let mut tx = p.begin().await?;
            let rows = sqlx::query_as(Q)
                .persistent(false)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            rows
        }
        Db::Sqlite(p) => sqlx::query_as(Q).fetch_all(p).await?,
    };
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.name,
                EntryState {
                    cursor: ts(r.cursor_at),
                    last_run: ts(r.last_run),
                    last_sent_at: ts(r.last_sent_at),
                    total_runs: r.total_runs.max(0) as u64,
                    last_error: r.last_error,
                    anchor: ts(r.anchor),
                    timing_key: r.timing_key.into(),
                    // Unreadable history (edited by hand) is dropped, not fatal.
                    history: serde_json::from_str(&r.history).unwrap_or_default(),
                },
            )
        })
        .collect())
}

macro_rules! write_batch {
    ($tx:expr, $puts:expr, $deletes:expr, $now_sql:expr) => {{
        for chunk in $puts.chunks(CHUNK) {
            let mut q = QueryBuilder::new(
                "INSERT INTO metronome_state (name, cursor_at, last_run, last_sent_at, total_runs, last_error, anchor, timing_key, history) ",
            );
            q.push_values(chunk, |mut b, (name, s): &(&String, &EntryState)| {
                b.push_bind((*name).clone())
                    .push_bind(s.cursor.map(|t| t.to_string()))
                    .push_bind(s.last_run.map(|t| t.to_string()))
                    .push_bind(s.last_sent_at.map(|t| t.to_string()))
                    .push_bind(s.total_runs.min(i64::MAX as u64) as i64)
                    .push_bind(s.last_error.clone())
                    .push_bind(s.anchor.map(|t| t.to_string()))
                    .push_bind(s.timing_key.to_string())
                    .push_bind(serde_json::to_string(&s.history).unwrap_or_else(|_| "[]".into()));
            });
            q.push(concat!(
                " ON CONFLICT (name) DO UPDATE SET cursor_at = excluded.cursor_at, last_run = excluded.last_run, ",
                "last_sent_at = excluded.last_sent_at, total_runs = excluded.total_runs, ",
                "last_error = excluded.last_error, anchor = excluded.anchor, timing_key = excluded.timing_key, ",
                "history = excluded.history, ",
                "updated_at = ",
                $now_sql
            ));
            q.build().persistent(false).execute(&mut *$tx).await?;
        }
        for name in $deletes {
            sqlx::query("DELETE FROM metronome_state WHERE name = $1")
                .persistent(false)
                .bind(name)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

/// Writes the pending states (`None`: delete) in one transaction.
async fn write(db: &Db, pending: &HashMap<String, Option<EntryState>>) -> Result<(), DbError> {
    let puts: Vec<(&String, &EntryState)> = pending
        .iter()
        .filter_map(|(n, s)| s.as_ref().map(|s| (n, s)))
        .collect();
    let deletes: Vec<&String> = pending
        .iter()
        .filter(|(_, s)| s.is_none())
        .map(|(n, _)| n)
        .collect();
    match db {
        Db::Postgres(p) => {
            let mut tx = p.begin().await?;
            write_batch!(tx, puts, &deletes, "now()");
            tx.commit().await?;
        }
        Db::Sqlite(p) => {
            let mut tx = p.begin().await?;
            write_batch!(tx, puts, &deletes, "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')");
            tx.commit().await?;
        }
    }
    Ok(())
}

impl SqlState {
    /// Starts the writer task.
    pub fn start(db: Db) -> SqlState {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(writer(db, rx));
        SqlState { tx, task }
    }

    /// Queues the new states of changed entries and the names removed.
    pub fn save<'a>(
        &self,
        changed: impl IntoIterator<Item = (&'a str, &'a EntryState)>,
        removed: &[String],
    ) {
        for (n, s) in changed {
            let _ = self.tx.send(Msg::Put(n.to_string(), s.clone()));
        }
        for n in removed {
            let _ = self.tx.send(Msg::Delete(n.clone()));
        }
    }

    /// Waits (at most `limit`) until everything queued is written; false if
    /// it was not.
    pub async fn close(&self, limit: Duration) -> bool {
        let (done, rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Flush(done));
        let ok = matches!(tokio::time::timeout(limit, rx).await, Ok(Ok(())));
        self.task.abort();
        ok
    }
}

impl StateStore for SqlState {
    fn describe(&self) -> String {
        "database".to_string()
    }

    /// Queues the write and never fails: the writer retries on its own
    /// while the database is down.
    fn save<'a>(
        &'a self,
        changed: States<'a>,
        removed: &'a [String],
        _fence: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        SqlState::save(self, changed, removed);
        Box::pin(async { Ok(()) })
    }

    /// Flushes what is queued, waiting at most 5 s.
    fn close<'a>(&'a self, _all: States<'a>) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            if !SqlState::close(self, Duration::from_secs(5)).await {
                error!("run state could not be written to the database before exit");
            }
            Ok(())
        })
    }
}

async fn writer(db: Db, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut pending: HashMap<String, Option<EntryState>> = HashMap::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    let mut failing = false;
    let take = |m: Msg, pending: &mut HashMap<_, _>, flushes: &mut Vec<_>| match m {
        Msg::Put(n, s) => {
            pending.insert(n, Some(s));
        }
        Msg::Delete(n) => {
            pending.insert(n, None);
        }
        Msg::Flush(f) => flushes.push(f),
    };
    while let Some(m) = rx.recv().await {
        take(m, &mut pending, &mut flushes);
        loop {
            while let Ok(m) = rx.try_recv() {
                take(m, &mut pending, &mut flushes);
            }
            if pending.is_empty() {
                break;
            }
            match write(&db, &pending).await {
                Ok(()) => {
                    if failing {
                        info!(entries = pending.len(), "run state written again");
                        failing = false;
                    }
                    pending.clear();
                    break;
                }
                Err(e) => {
                    if !failing {
                        error!(error = %e, entries = pending.len(), "cannot save run state; retrying");
                        failing = true;
                    } else {
                        warn!(error = %e, entries = pending.len(), "run state still not saved");
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
        for f in flushes.drain(..) {
            let _ = f.send(());
        }
    }
}

/// Run state in PostgreSQL shared by instances under a PostgreSQL lease
/// (`--lock postgres://…`): every write is one transaction that first
/// locks the lease row `FOR SHARE` where it still holds this leader's
/// holder and epoch unexpired, and writes nothing otherwise. A successor's
/// acquisition (an update of that row) waits for such a transaction, so a
/// write is either committed before the next epoch exists or refused.
/// Saves are synchronous (a refusal pauses dispatch); statements are
/// unnamed and inside the transaction, so they work through PgBouncer in
/// transaction mode.
pub struct FencedSqlState {
    pool: sqlx::PgPool,
    lease_name: String,
}

/// A fenced write refused: the lease is no longer this leader's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("run state not written: this instance no longer holds the lease")]
pub struct Deposed;

const FENCE_CHECK: &str = "SELECT 1 FROM metronome_lease WHERE name = $1 AND holder = $2 \
     AND epoch = $3 AND expires_at > now() FOR SHARE";

impl FencedSqlState {
    /// `pool`'s database holds both `metronome_state` and the lease row
    /// `lease_name`.
    pub fn new(pool: sqlx::PgPool, lease_name: &str) -> FencedSqlState {
        FencedSqlState {
            pool,
            lease_name: lease_name.to_string(),
        }
    }

    /// Writes `puts` and deletes `deletes` if the lease still holds
    /// `holder:epoch`; Ok(false) if it does not (nothing written).
    pub async fn write(
        &self,
        holder: &str,
        epoch: u64,
        puts: &[(&String, &EntryState)],
        deletes: &[&String],
    ) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query(FENCE_CHECK)
            .persistent(false)
            .bind(&self.lease_name)
            .bind(holder)
            .bind(epoch as i64)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !held {
            tx.rollback().await?;
            return Ok(false);
        }
        write_batch!(tx, puts, deletes, "now()");
        tx.commit().await?;
        Ok(true)
    }
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StateError {
    StateError::Unavailable(Box::new(e))
}

impl StateStore for FencedSqlState {
    fn describe(&self) -> String {
        "database (fenced by the lease)".to_string()
    }

    /// Writes only under `fence` (`token:epoch`), nothing without one.
    fn save<'a>(
        &'a self,
        changed: States<'a>,
        removed: &'a [String],
        fence: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let Some(v) = fence else { return Ok(()) };
            let (holder, epoch) = crate::ports::lease::split_value(v)
                .ok_or(Deposed)
                .map_err(unavailable)?;
            let names: Vec<String> = changed.iter().map(|(n, _)| n.to_string()).collect();
            let puts: Vec<(&String, &EntryState)> =
                names.iter().zip(changed.iter().map(|(_, s)| *s)).collect();
            let deletes: Vec<&String> = removed.iter().collect();
            match self.write(holder, epoch, &puts, &deletes).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(unavailable(Deposed)),
                Err(e) => Err(unavailable(e)),
            }
        })
    }

    /// What the previous leader committed.
    fn reload(&self) -> BoxFuture<'_, Result<Option<Loaded>, StateError>> {
        Box::pin(async move {
            load(&Db::Postgres(self.pool.clone()))
                .await
                .map(Some)
                .map_err(unavailable)
        })
    }

    fn close<'a>(&'a self, _all: States<'a>) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async { Ok(()) })
    }
}
