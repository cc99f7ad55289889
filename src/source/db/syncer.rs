//! The [`Syncer`]: loads every row at start, then keeps the scheduler in
//! step with the table (notifications or polling, reconciles, refreshes
//! asked for by the API) by sending `Command`s to the service inbox.
//!
//! Owns what it has seen of the table: every row's last version and the
//! database entries currently in the scheduler; it writes the shared
//! [`SyncStatus`](crate::db::SyncStatus).
//!
//! **Invariant**: a row is applied only when its version differs from the
//! one last seen; an invalid row never replaces the running version.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{error, info};

use super::listener::{Event, listen};
use super::parallel::par_map;
use super::{LOG_TARGET, Rejected, check_row};
use crate::db::{Db, DbError, Refresh, Row, SOURCE, SharedStatus, SyncClient};
use crate::entry::{Context, Entry, FileOrigins};
use crate::service::inbox::{Command, Handle};

/// How often SQLite's version row is read.
pub const SQLITE_POLL: Duration = Duration::from_millis(250);
/// How often every row's version is compared, whatever the notifications said.
pub const SAFETY_RESYNC: Duration = Duration::from_secs(60);
/// Entries sent to the run loop per command, so it is never blocked long.
const UPSERT_BATCH: usize = 2000;

/// Keeps the scheduler in step with the table.
pub struct Syncer {
    db: Db,
    ctx: Context,
    /// Names defined in files, which database rows may not reuse.
    files: Arc<FileOrigins>,
    handle: Handle,
    status: SharedStatus,
    /// Version of every row last seen (valid or not).
    known: HashMap<String, i64, crate::NameHasher>,
    /// Database entries currently in the scheduler.
    applied: HashSet<String, crate::NameHasher>,
    refresh: mpsc::Receiver<Refresh>,
    /// SQLite: the change version last read.
    seen_version: i64,
}

impl Syncer {
    /// Loads every row and returns the syncer (to [`Syncer::run`] once the
    /// service loop runs), a client for the API, and the valid entries to
    /// start the scheduler with.
    pub async fn load(
        db: Db,
        ctx: Context,
        files: Arc<FileOrigins>,
        handle: Handle,
    ) -> Result<(Syncer, SyncClient, Vec<Entry>), DbError> {
        let (client, refresh) = SyncClient::channel();
        let mut s = Syncer {
            db,
            ctx,
            files,
            handle,
            status: client.status.clone(),
            known: HashMap::default(),
            applied: HashSet::default(),
            refresh,
            seen_version: 0,
        };
        if let Db::Sqlite(p) = &s.db {
            s.seen_version = Db::sqlite_version(p).await?;
        }
        let entries = s.load_all().await?;
        info!(
            target: LOG_TARGET,
            entries = entries.len(),
            invalid = s.status.read().expect("status lock").invalid.len(),
            "database schedules loaded"
        );
        Ok((s, client, entries))
    }

    /// Reads every row and validates it on every core. On PostgreSQL the
    /// rows come through a cursor in pages (one snapshot), each page
    /// validated while the next is fetched.
    async fn load_all(&mut self) -> Result<Vec<Entry>, DbError> {
        let pool = match &self.db {
            Db::Postgres(p) => p.clone(),
            Db::Sqlite(_) => {
                let rows = self.db.all_rows().await?;
                return Ok(self.absorb(rows, &[]));
            }
        };
        let (tx, rx) = std::sync::mpsc::channel::<Vec<Row>>();
        let (files, ctx) = (self.files.clone(), self.ctx.clone());
        let worker = std::thread::spawn(move || {
            rx.into_iter()
                .map(|rows| {
                    let checked = par_map(&rows, |r| check_row(&files, &ctx, r));
                    (rows, checked)
                })
                .collect::<Vec<(Vec<Row>, Vec<Result<Entry, Rejected>>)>>()
        });
        let fetched = Db::pg_pages(&pool, |page| {
            let _ = tx.send(page);
        })
        .await;
        drop(tx);
        let pages = tokio::task::spawn_blocking(move || worker.join())
            .await
            .expect("join task runs")
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        fetched?;
        let mut out = Vec::new();
        for (rows, checked) in pages {
            out.extend(self.record(rows, checked, &[]));
        }
        Ok(out)
    }

    /// Records `rows` (new versions) and `gone` (deleted names); returns
    /// the valid entries to upsert.
    fn absorb(&mut self, rows: Vec<Row>, gone: &[String]) -> Vec<Entry> {
        // Validation is pure and dominates a large load: on every core.
        let checked = par_map(&rows, |r| check_row(&self.files, &self.ctx, r));
        self.record(rows, checked, gone)
    }

    /// [`Syncer::absorb`] once the rows are checked.
    fn record(
        &mut self,
        rows: Vec<Row>,
        checked: Vec<Result<Entry, Rejected>>,
        gone: &[String],
    ) -> Vec<Entry> {
        let mut status = self.status.write().expect("status lock");
        let mut out = Vec::with_capacity(rows.len());
        self.known.reserve(rows.len());
        for (row, checked) in rows.into_iter().zip(checked) {
            self.known.insert(row.name.clone(), row.version);
            match checked {
                Ok(e) => {
                    if status.invalid.remove(&row.name).is_some() {
                        info!(target: LOG_TARGET, entry = %row.name, "database schedule is valid again");
                    }
                    self.applied.insert(row.name.clone());
                    out.push(e);
                }
                Err(rejected) => {
                    let msg = rejected.to_string();
                    error!(target: LOG_TARGET, entry = %row.name, source = SOURCE, error = %msg,
                        kept_running = self.applied.contains(&row.name), "invalid schedule row skipped");
                    status.invalid.insert(row.name.clone(), msg);
                }
            }
        }
        for name in gone {
            self.known.remove(name);
            status.invalid.remove(name);
        }
        status.entries = self.applied.len();
        out
    }

    /// Applies fetched rows and deletions to the scheduler.
    async fn apply(&mut self, rows: Vec<Row>, gone: Vec<String>) {
        let rows: Vec<Row> = rows
            .into_iter()
            .filter(|r| self.known.get(&r.name) != Some(&r.version))
            .collect();
        let gone: Vec<String> = gone
            .into_iter()
            .filter(|n| self.known.contains_key(n))
            .collect();
        if rows.is_empty() && gone.is_empty() {
            return;
        }
        let (n_rows, n_gone) = (rows.len(), gone.len());
        let upserts = self.absorb(rows, &gone);
        let removals: Vec<String> = gone
            .into_iter()
            .filter(|n| self.applied.remove(n))
            .collect();
        self.status.write().expect("status lock").entries = self.applied.len();
        let mut batch = Vec::new();
        for e in upserts {
            batch.push(Arc::new(e));
            if batch.len() >= UPSERT_BATCH {
                self.handle
                    .send(Command::Upsert(std::mem::take(&mut batch)))
                    .await;
            }
        }
        if !batch.is_empty() {
            self.handle.send(Command::Upsert(batch)).await;
        }
        if !removals.is_empty() {
            self.handle.send(Command::Remove(removals)).await;
        }
        info!(
            target: LOG_TARGET,
            changed = n_rows,
            deleted = n_gone,
            "database schedule changes applied"
        );
    }

    /// Fetches `names` and applies them; names without a row are deletions.
    async fn fetch_names(&mut self, names: Vec<String>) -> Result<(), DbError> {
        let rows = self.db.rows(&names).await?;
        let present: HashSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        let gone: Vec<String> = names
            .iter()
            .filter(|n| !present.contains(n.as_str()))
            .cloned()
            .collect();
        self.apply(rows, gone).await;
        Ok(())
    }

    /// Compares every row's version with what was seen and fetches the
    /// differences: catches whatever notifications were lost.
    async fn reconcile(&mut self) -> Result<(), DbError> {
        if let Db::Sqlite(p) = &self.db {
            // Versions read before the rows: later changes are seen by the next poll.
            self.seen_version = Db::sqlite_version(p).await?;
        }
        let versions = self.db.versions().await?;
        let mut changed = Vec::new();
        let mut present = HashSet::with_capacity(versions.len());
        for (name, v) in &versions {
            if self.known.get(name) != Some(v) {
                changed.push(name.clone());
            }
            present.insert(name.as_str());
        }
        let gone: Vec<String> = self
            .known
            .keys()
            .filter(|n| !present.contains(n.as_str()))
            .cloned()
            .collect();
        let rows = self.db.rows(&changed).await?;
        self.apply(rows, gone).await;
        Ok(())
    }

    /// SQLite: applies the changes since the last poll.
    async fn poll_sqlite(&mut self) -> Result<(), DbError> {
        let Db::Sqlite(p) = &self.db else {
            return Ok(());
        };
        let (version, rows, gone) = Db::sqlite_changes(p, self.seen_version).await?;
        self.seen_version = version;
        self.apply(rows, gone).await;
        Ok(())
    }

    fn set_connected(&self, ok: bool, err: Option<&DbError>) {
        let mut st = self.status.write().expect("status lock");
        if st.connected && !ok {
            error!(target: LOG_TARGET, error = %err.map(ToString::to_string).unwrap_or_default(),
                "database unreachable; the last good schedule keeps running");
        } else if !st.connected && ok {
            info!(target: LOG_TARGET, "database reachable again; schedules resynchronised");
        }
        st.connected = ok;
    }

    /// Handles the listener's events: fetches the names notified, or marks
    /// a reconcile as needed (a TRUNCATE, a (re)subscription, a loss).
    async fn on_event(
        &mut self,
        first: Event,
        events: &mut mpsc::UnboundedReceiver<Event>,
        need_full: &mut bool,
    ) -> Result<(), DbError> {
        let Event::Names(first) = first else {
            *need_full = true;
            return Ok(());
        };
        let mut names: HashSet<String> = HashSet::from([first]);
        let mut full = false;
        while let Ok(ev) = events.try_recv() {
            match ev {
                Event::Names(n) => {
                    names.insert(n);
                }
                Event::Listening | Event::Lost => full = true,
            }
        }
        // An empty name announces a TRUNCATE.
        if full || names.remove("") {
            *need_full = true;
            Ok(())
        } else {
            self.fetch_names(names.into_iter().collect()).await
        }
    }

    /// Answers an API refresh once its rows are applied.
    async fn on_refresh(&mut self, r: Refresh) -> Result<(), DbError> {
        let res = match &self.db {
            Db::Sqlite(_) => self.poll_sqlite().await,
            Db::Postgres(_) => self.fetch_names(r.names).await,
        };
        let _ = r.done.send(());
        res
    }

    /// Runs until the service loop stops.
    pub async fn run(mut self) {
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let listener = match &self.db {
            Db::Postgres(pool) => Some(tokio::spawn(listen(pool.clone(), events_tx))),
            Db::Sqlite(_) => None,
        };
        let mut tick = tokio::time::interval(SQLITE_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_full = Instant::now();
        // After an error, changes may have been missed: reconcile when possible.
        let mut need_full = false;
        loop {
            let result = tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => self.on_event(ev, &mut events, &mut need_full).await,
                    None => Ok(()),
                },
                r = self.refresh.recv() => match r {
                    Some(r) => self.on_refresh(r).await,
                    None => break,
                },
                _ = tick.tick() => {
                    if self.handle.is_closed() { break; }
                    if need_full || last_full.elapsed() >= SAFETY_RESYNC {
                        match self.reconcile().await {
                            Ok(()) => { need_full = false; last_full = Instant::now(); Ok(()) }
                            Err(e) => Err(e),
                        }
                    } else {
                        self.poll_sqlite().await
                    }
                }
            };
            match result {
                Ok(()) => {
                    if !need_full {
                        self.set_connected(true, None);
                    }
                }
                Err(e) => {
                    self.set_connected(false, Some(&e));
                    need_full = true;
                }
            }
        }
        if let Some(l) = listener {
            l.abort();
        }
    }
}
