//! Schedule entries in a database table (PostgreSQL or SQLite), kept in
//! step with the running scheduler.
//!
//! # Tables
//!
//! `metronome_schedule` has one row per entry and one column per key of a
//! YAML entry (JSON-shaped keys are `jsonb` on PostgreSQL, JSON text on
//! SQLite); see `migrations/`. Every row goes through
//! [`entry::parse_entry`], the validator YAML files use, after being turned
//! into a [`Node`] tree: a row that does not validate is skipped, logged and
//! listed in [`SyncStatus::invalid`]; the others keep running. A row edited
//! into an invalid state keeps its last good version running.
//!
//! # Change detection
//!
//! Triggers stamp each written row with a fresh `version`, whoever writes it
//! (raw SQL included). Only changed rows are fetched and validated again, so
//! one edit among 100k entries costs about one entry's work.
//!
//! - PostgreSQL: a trigger sends the row's name on channel
//!   `metronome_schedule`; a listener task forwards names and the syncer
//!   fetches those rows. Notifications sent while the listener is
//!   disconnected are lost, so after every (re)connection and every
//!   [`SAFETY_RESYNC`] the syncer *reconciles*: it reads every row's
//!   `(name, version)` and fetches the rows whose version differs.
//! - SQLite: triggers bump `metronome_meta.version` and record deletions in
//!   `metronome_schedule_deleted`; the syncer polls the version every
//!   [`SQLITE_POLL`] and fetches rows (and deletions) newer than the last
//!   version seen. Writes are serialised, so versions follow commit order.
//!
//! While the database is unreachable the scheduler keeps running the last
//! good schedule; the syncer retries and reconciles when it is back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Map, Value as Json};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::broker::mask_url;
use crate::entry::{self, Context, ENTRY_KEYS, Entry, FileOrigins};
use crate::service::inbox::{Command, Handle};

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The label of database entries in origins, errors and the API.
pub const SOURCE: &str = "database";
/// PostgreSQL channel the triggers notify on.
pub const CHANNEL: &str = "metronome_schedule";
/// How often SQLite's version row is read.
pub const SQLITE_POLL: Duration = Duration::from_millis(250);
/// How often every row's version is compared, whatever the notifications said.
pub const SAFETY_RESYNC: Duration = Duration::from_secs(60);
/// Rows fetched per query.
const CHUNK: usize = 1000;
/// Entries sent to the run loop per command, so it is never blocked long.
const UPSERT_BATCH: usize = 2000;

/// Database errors.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL `{0}`: expected postgres://, postgresql:// or sqlite://")]
    Scheme(String),
    #[error("cannot connect to database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Query(#[from] sqlx::Error),
}

impl DbError {
    /// True if the write broke a uniqueness rule (the name exists).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Query(e) if e.as_database_error().is_some_and(|d| d.is_unique_violation()))
    }

    /// True if the write broke a CHECK constraint.
    pub fn is_check_violation(&self) -> bool {
        matches!(self, DbError::Query(e) if e.as_database_error().is_some_and(|d| d.is_check_violation()))
    }
}

/// A connection pool to the schedule database.
#[derive(Clone, Debug)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// One row of `metronome_schedule`, JSON columns as text.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub name: String,
    #[sqlx(flatten)]
    pub cols: Columns,
    pub version: i64,
}

const PG_COLUMNS: &str = "name, task, cron, crontab::text AS crontab, every, solar::text AS solar, at, timezone, \
    args::text AS args, kwargs::text AS kwargs, options::text AS options, enabled, start_at, end_at, \
    misfire, grace, jitter, dst::text AS dst, description, version";

impl Row {
    /// The entry as written: the keys of a YAML entry, defaults left out.
    pub fn to_json(&self) -> Result<Map<String, Json>, String> {
        self.cols.to_json()
    }

    /// Validates the row with the shared validator. Errors name the field.
    pub fn to_entry(&self, ctx: &Context) -> Result<Entry, String> {
        let body = self.to_json()?;
        entry::validate_json(&self.name, &Json::Object(body), ctx)
            .map_err(|errs| entry::render_errors(&errs))
    }
}

impl Columns {
    /// The entry as written: the keys of a YAML entry, defaults left out.
    pub fn to_json(&self) -> Result<Map<String, Json>, String> {
        let mut m = Map::new();
        let text = |v: &Option<String>| v.clone().map(Json::String);
        let json = |k: &str, v: &str| {
            serde_json::from_str::<Json>(v)
                .map_err(|e| format!("{k}: the column is not valid JSON: {e}"))
        };
        m.insert("task".into(), Json::String(self.task.clone()));
        for (k, v) in [
            ("cron", text(&self.cron)),
            ("every", text(&self.every)),
            ("at", text(&self.at)),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        for (k, v) in [("crontab", &self.crontab), ("solar", &self.solar)] {
            if let Some(v) = v {
                m.insert(k.into(), json(k, v)?);
            }
        }
        if let Some(v) = text(&self.timezone) {
            m.insert("timezone".into(), v);
        }
        for (k, v) in [
            ("args", &self.args),
            ("kwargs", &self.kwargs),
            ("options", &self.options),
        ] {
            let v = json(k, v)?;
            let empty = matches!(&v, Json::Array(a) if a.is_empty())
                || matches!(&v, Json::Object(o) if o.is_empty());
            if !empty {
                m.insert(k.into(), v);
            }
        }
        if !self.enabled {
            m.insert("enabled".into(), Json::Bool(false));
        }
        for (k, v) in [
            ("start_at", &self.start_at),
            ("end_at", &self.end_at),
            ("misfire", &self.misfire),
            ("grace", &self.grace),
            ("jitter", &self.jitter),
        ] {
            if let Some(v) = text(v) {
                m.insert(k.into(), v);
            }
        }
        if let Some(v) = &self.dst {
            m.insert("dst".into(), json("dst", v)?);
        }
        if let Some(v) = text(&self.description) {
            m.insert("description".into(), v);
        }
        Ok(m)
    }
}

/// The columns of an entry (everything but its name and version): read
/// into a [`Row`], written from a validated body.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct Columns {
    pub task: String,
    pub cron: Option<String>,
    pub crontab: Option<String>,
    pub every: Option<String>,
    pub solar: Option<String>,
    pub at: Option<String>,
    pub timezone: Option<String>,
    pub args: String,
    pub kwargs: String,
    pub options: String,
    pub enabled: bool,
    pub start_at: Option<String>,
    pub end_at: Option<String>,
    pub misfire: Option<String>,
    pub grace: Option<String>,
    pub jitter: Option<String>,
    pub dst: Option<String>,
    pub description: Option<String>,
}

impl Columns {
    /// Splits a body that has passed [`validate`] into columns.
    pub fn from_body(body: &Map<String, Json>) -> Columns {
        let text = |k: &str| {
            body.get(k).and_then(|v| match v {
                Json::String(s) => Some(s.clone()),
                Json::Null => None,
                other => Some(other.to_string()),
            })
        };
        let json = |k: &str| body.get(k).filter(|v| !v.is_null()).map(Json::to_string);
        Columns {
            task: text("task").unwrap_or_default(),
            cron: text("cron"),
            crontab: json("crontab"),
            every: text("every"),
            solar: json("solar"),
            at: text("at"),
            timezone: text("timezone"),
            args: json("args").unwrap_or_else(|| "[]".into()),
            kwargs: json("kwargs").unwrap_or_else(|| "{}".into()),
            options: json("options").unwrap_or_else(|| "{}".into()),
            enabled: body.get("enabled").and_then(Json::as_bool).unwrap_or(true),
            start_at: text("start_at"),
            end_at: text("end_at"),
            misfire: text("misfire"),
            grace: text("grace"),
            jitter: text("jitter"),
            dst: json("dst"),
            description: text("description"),
        }
    }
}

const PG_INSERT: &str = "INSERT INTO metronome_schedule (name, task, cron, crontab, every, solar, at, timezone, \
    args, kwargs, options, enabled, start_at, end_at, misfire, grace, jitter, dst, description) \
    VALUES ($1, $2, $3, $4::text::jsonb, $5, $6::text::jsonb, $7, $8, $9::text::jsonb, $10::text::jsonb, \
    $11::text::jsonb, $12, $13, $14, $15, $16, $17, $18::text::jsonb, $19)";
const SQLITE_INSERT: &str = "INSERT INTO metronome_schedule (name, task, cron, crontab, every, solar, at, timezone, \
    args, kwargs, options, enabled, start_at, end_at, misfire, grace, jitter, dst, description) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)";
const UPSERT_TAIL: &str = " ON CONFLICT (name) DO UPDATE SET task = excluded.task, cron = excluded.cron, \
    crontab = excluded.crontab, every = excluded.every, solar = excluded.solar, at = excluded.at, \
    timezone = excluded.timezone, args = excluded.args, kwargs = excluded.kwargs, options = excluded.options, \
    enabled = excluded.enabled, start_at = excluded.start_at, end_at = excluded.end_at, \
    misfire = excluded.misfire, grace = excluded.grace, jitter = excluded.jitter, dst = excluded.dst, \
    description = excluded.description";

macro_rules! bind_columns {
    ($q:expr, $name:expr, $c:expr) => {
        $q.bind($name)
            .bind(&$c.task)
            .bind(&$c.cron)
            .bind(&$c.crontab)
            .bind(&$c.every)
            .bind(&$c.solar)
            .bind(&$c.at)
            .bind(&$c.timezone)
            .bind(&$c.args)
            .bind(&$c.kwargs)
            .bind(&$c.options)
            .bind($c.enabled)
            .bind(&$c.start_at)
            .bind(&$c.end_at)
            .bind(&$c.misfire)
            .bind(&$c.grace)
            .bind(&$c.jitter)
            .bind(&$c.dst)
            .bind(&$c.description)
    };
}

impl Db {
    /// Connects to `url` (`postgres://…`, `postgresql://…` or `sqlite://PATH`;
    /// a SQLite file is created if missing).
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let err = |source| DbError::Connect {
            url: mask_url(url),
            source,
        };
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
        match scheme {
            "postgres" | "postgresql" => {
                let opts = sqlx::postgres::PgConnectOptions::from_str(url)
                    .map_err(err)?
                    .application_name("metronome");
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(3))
                    .connect_with(opts)
                    .await
                    .map_err(err)?;
                Ok(Db::Postgres(pool))
            }
            "sqlite" => {
                let opts = SqliteConnectOptions::from_str(url)
                    .map_err(err)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5));
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(3))
                    .connect_with(opts)
                    .await
                    .map_err(err)?;
                Ok(Db::Sqlite(pool))
            }
            _ => Err(DbError::Scheme(mask_url(url))),
        }
    }

    /// Creates or upgrades the tables (idempotent; PostgreSQL takes a lock,
    /// so instances starting together do not race).
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Db::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await?,
            Db::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await?,
        }
        Ok(())
    }

    /// Every row.
    pub async fn all_rows(&self) -> Result<Vec<Row>, DbError> {
        Ok(match self {
            Db::Postgres(p) => {
                sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(format!(
                    "SELECT {PG_COLUMNS} FROM metronome_schedule"
                )))
                .fetch_all(p)
                .await?
            }
            Db::Sqlite(p) => {
                sqlx::query_as::<_, Row>("SELECT * FROM metronome_schedule")
                    .fetch_all(p)
                    .await?
            }
        })
    }

    /// The rows with these names (absent names are simply missing).
    pub async fn rows(&self, names: &[String]) -> Result<Vec<Row>, DbError> {
        let mut out = Vec::with_capacity(names.len());
        for chunk in names.chunks(CHUNK) {
            match self {
                Db::Postgres(p) => {
                    out.extend(
                        sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(format!(
                            "SELECT {PG_COLUMNS} FROM metronome_schedule WHERE name = ANY($1)"
                        )))
                        .bind(chunk)
                        .fetch_all(p)
                        .await?,
                    );
                }
                Db::Sqlite(p) => {
                    let list = Json::from(chunk.to_vec()).to_string();
                    out.extend(
                        sqlx::query_as::<_, Row>(
                            "SELECT * FROM metronome_schedule WHERE name IN (SELECT value FROM json_each($1))",
                        )
                        .bind(list)
                        .fetch_all(p)
                        .await?,
                    );
                }
            }
        }
        Ok(out)
    }

    /// One row.
    pub async fn row(&self, name: &str) -> Result<Option<Row>, DbError> {
        Ok(self.rows(&[name.to_string()]).await?.pop())
    }

    /// `(name, version)` of every row.
    pub async fn versions(&self) -> Result<Vec<(String, i64)>, DbError> {
        const Q: &str = "SELECT name, version FROM metronome_schedule";
        Ok(match self {
            Db::Postgres(p) => sqlx::query_as(Q).fetch_all(p).await?,
            Db::Sqlite(p) => sqlx::query_as(Q).fetch_all(p).await?,
        })
    }

    /// Inserts a row; fails with a unique violation if the name exists.
    pub async fn insert(&self, name: &str, c: &Columns) -> Result<(), DbError> {
        match self {
            Db::Postgres(p) => {
                bind_columns!(sqlx::query(PG_INSERT), name, c)
                    .execute(p)
                    .await?;
            }
            Db::Sqlite(p) => {
                bind_columns!(sqlx::query(SQLITE_INSERT), name, c)
                    .execute(p)
                    .await?;
            }
        }
        Ok(())
    }

    /// Inserts or replaces a row; true if it was created.
    pub async fn upsert(&self, name: &str, c: &Columns) -> Result<bool, DbError> {
        let existed = self.row(name).await?.is_some();
        match self {
            Db::Postgres(p) => {
                bind_columns!(
                    sqlx::query(sqlx::AssertSqlSafe(format!("{PG_INSERT}{UPSERT_TAIL}"))),
                    name,
                    c
                )
                .execute(p)
                .await?;
            }
            Db::Sqlite(p) => {
                bind_columns!(
                    sqlx::query(sqlx::AssertSqlSafe(format!("{SQLITE_INSERT}{UPSERT_TAIL}"))),
                    name,
                    c
                )
                .execute(p)
                .await?;
            }
        }
        Ok(!existed)
    }

    /// Deletes a row; false if there was none.
    pub async fn delete(&self, name: &str) -> Result<bool, DbError> {
        const Q: &str = "DELETE FROM metronome_schedule WHERE name = $1";
        let n = match self {
            Db::Postgres(p) => sqlx::query(Q).bind(name).execute(p).await?.rows_affected(),
            Db::Sqlite(p) => sqlx::query(Q).bind(name).execute(p).await?.rows_affected(),
        };
        Ok(n > 0)
    }

    /// SQLite: the current change version, the rows written after `since`
    /// and the names deleted after it, read in one snapshot.
    async fn sqlite_changes(
        pool: &SqlitePool,
        since: i64,
    ) -> Result<(i64, Vec<Row>, Vec<String>), DbError> {
        let mut tx = pool.begin().await?;
        let (version,): (i64,) = sqlx::query_as("SELECT version FROM metronome_meta WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        if version == since {
            tx.commit().await?;
            return Ok((version, Vec::new(), Vec::new()));
        }
        let rows = sqlx::query_as::<_, Row>("SELECT * FROM metronome_schedule WHERE version > $1")
            .bind(since)
            .fetch_all(&mut *tx)
            .await?;
        let gone: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM metronome_schedule_deleted WHERE version > $1")
                .bind(since)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok((version, rows, gone.into_iter().map(|(n,)| n).collect()))
    }

    async fn sqlite_version(pool: &SqlitePool) -> Result<i64, DbError> {
        let (v,): (i64,) = sqlx::query_as("SELECT version FROM metronome_meta WHERE id = 1")
            .fetch_one(pool)
            .await?;
        Ok(v)
    }
}

/// What the syncer reports to the API.
#[derive(Debug, Default, Clone)]
pub struct SyncStatus {
    /// Rows that do not validate (or clash with a file's name): name → error.
    pub invalid: BTreeMap<String, String>,
    /// False while the database is unreachable.
    pub connected: bool,
    /// Number of valid database entries in the scheduler.
    pub entries: usize,
}

/// Shared view of the syncer's status.
pub type SharedStatus = Arc<RwLock<SyncStatus>>;

/// A request to fetch some rows now (after an API write), answered once
/// they are applied to the scheduler.
pub struct Refresh {
    pub names: Vec<String>,
    pub done: oneshot::Sender<()>,
}

/// Asks a running syncer for immediate refreshes.
#[derive(Clone)]
pub struct SyncClient {
    tx: mpsc::Sender<Refresh>,
    pub status: SharedStatus,
}

impl SyncClient {
    /// Fetches `names` now and waits until the scheduler has them.
    pub async fn refresh(&self, names: Vec<String>) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Refresh { names, done }).await.is_ok() {
            let _ = rx.await;
        }
    }
}

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
        let (tx, refresh) = mpsc::channel(64);
        let status: SharedStatus = Arc::new(RwLock::new(SyncStatus {
            connected: true,
            ..Default::default()
        }));
        let mut s = Syncer {
            db,
            ctx,
            files,
            handle,
            status: status.clone(),
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
            entries = entries.len(),
            invalid = s.status.read().expect("status lock").invalid.len(),
            "database schedules loaded"
        );
        Ok((s, SyncClient { tx, status }, entries))
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
                .collect::<Vec<(Vec<Row>, Vec<Result<Entry, String>>)>>()
        });
        let fetched: Result<(), sqlx::Error> = async {
            let mut t = pool.begin().await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DECLARE metronome_load NO SCROLL CURSOR FOR SELECT {PG_COLUMNS} FROM metronome_schedule"
            )))
            .execute(&mut *t)
            .await?;
            loop {
                let page = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(format!(
                    "FETCH {LOAD_PAGE} FROM metronome_load"
                )))
                .fetch_all(&mut *t)
                .await?;
                let last = page.len() < LOAD_PAGE;
                if !page.is_empty() {
                    let _ = tx.send(page);
                }
                if last {
                    break;
                }
            }
            t.commit().await
        }
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
        checked: Vec<Result<Entry, String>>,
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
                        info!(entry = %row.name, "database schedule is valid again");
                    }
                    self.applied.insert(row.name.clone());
                    out.push(e);
                }
                Err(msg) => {
                    error!(entry = %row.name, source = SOURCE, error = %msg,
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
            batch.push(std::sync::Arc::new(e));
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
            error!(error = %err.map(ToString::to_string).unwrap_or_default(),
                "database unreachable; the last good schedule keeps running");
        } else if !st.connected && ok {
            info!("database reachable again; schedules resynchronised");
        }
        st.connected = ok;
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
                    Some(Event::Names(first)) => {
                        let mut names: HashSet<String> = HashSet::from([first]);
                        let mut full = false;
                        while let Ok(ev) = events.try_recv() {
                            match ev {
                                Event::Names(n) => { names.insert(n); }
                                Event::Listening | Event::Lost => full = true,
                            }
                        }
                        // An empty name announces a TRUNCATE.
                        if full || names.remove("") { need_full = true; Ok(()) }
                        else { self.fetch_names(names.into_iter().collect()).await }
                    }
                    Some(Event::Listening | Event::Lost) => { need_full = true; Ok(()) }
                    None => Ok(()),
                },
                r = self.refresh.recv() => match r {
                    Some(r) => {
                        let res = match &self.db {
                            Db::Sqlite(_) => self.poll_sqlite().await,
                            Db::Postgres(_) => self.fetch_names(r.names).await,
                        };
                        let _ = r.done.send(());
                        res
                    }
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

enum Event {
    /// A row changed (its name; empty after a TRUNCATE).
    Names(String),
    /// The listener is (re)subscribed: notifications may have been lost.
    Listening,
    /// The listener lost its connection (or cannot get one): the syncer
    /// reconciles at its next tick, which finds out whether the database
    /// itself is unreachable (readiness says so) or only the listener was.
    Lost,
}

/// Forwards notifications; reconnects (with backoff) when the connection is
/// lost and says so, so the syncer reconciles.
async fn listen(pool: PgPool, tx: mpsc::UnboundedSender<Event>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut l = match subscribe(&pool).await {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "database listener cannot connect");
                if tx.send(Event::Lost).is_err() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if tx.send(Event::Listening).is_err() {
            return;
        }
        loop {
            match l.try_recv().await {
                Ok(Some(n)) => {
                    if tx.send(Event::Names(n.payload().to_string())).is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    warn!("database listener disconnected; reconnecting and resynchronising");
                    break;
                }
                Err(e) => {
                    warn!(error = %e, "database listener failed; reconnecting and resynchronising");
                    break;
                }
            }
        }
        if tx.send(Event::Lost).is_err() {
            return;
        }
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect_with(pool).await?;
    // Our own try_recv loop reconnects, so the resync always follows LISTEN.
    l.eager_reconnect(false);
    sqlx::query("SET application_name = 'metronome-listener'")
        .execute(&mut l)
        .await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}

/// The context database rows are validated in: no file defaults or routes;
/// `zone` is the process default zone.
pub fn context(zone: Option<(String, jiff::tz::TimeZone)>) -> Context {
    Context {
        timezone: zone,
        source: SOURCE.into(),
        ..Default::default()
    }
}

/// Checks a name given in a URL or body.
pub fn check_name(name: &str) -> Result<(), String> {
    entry::check_name(name).map_err(|e| e.to_string())
}

/// Keys allowed in an entry body sent to the API (the YAML keys plus `name`).
pub fn body_keys() -> Vec<&'static str> {
    let mut k = vec!["name"];
    k.extend_from_slice(ENTRY_KEYS);
    k
}

/// Rows per page when loading everything at start.
const LOAD_PAGE: usize = 50_000;

/// A row as an entry, or why not (invalid, or its name is a file's).
fn check_row(files: &FileOrigins, ctx: &Context, row: &Row) -> Result<Entry, String> {
    match files.get(&row.name) {
        Some(origin) => Err(format!(
            "duplicate schedule name `{}`: defined at {origin} and in the {SOURCE}; the database row is ignored",
            row.name
        )),
        None => row.to_entry(ctx),
    }
}

/// Below this many items per thread, [`par_map`] uses fewer threads.
const MIN_PER_THREAD: usize = 4096;

/// `f` over `items` on up to one thread per core, results in order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cores.min(items.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let mut chunks = items.chunks(chunk);
        let first = chunks.next().unwrap_or_default();
        let handles: Vec<_> = chunks
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out: Vec<R> = Vec::with_capacity(items.len());
        out.extend(first.iter().map(f));
        for h in handles {
            out.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_map_keeps_order_on_every_thread_count() {
        for n in [
            0,
            1,
            MIN_PER_THREAD - 1,
            MIN_PER_THREAD * 2 + 7,
            MIN_PER_THREAD * 5,
        ] {
            let items: Vec<usize> = (0..n).collect();
            let threads = std::sync::Mutex::new(std::collections::HashSet::new());
            let out = par_map(&items, |i| {
                threads.lock().unwrap().insert(std::thread::current().id());
                i * 3
            });
            assert_eq!(
                out,
                items.iter().map(|i| i * 3).collect::<Vec<_>>(),
                "n = {n}"
            );
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            let used = threads.lock().unwrap().len();
            if n >= 2 * MIN_PER_THREAD && cores > 1 {
                assert!(used > 1, "n = {n}: one thread");
            } else if n < MIN_PER_THREAD * 2 {
                assert!(used <= 1, "n = {n}: {used} threads");
            }
        }
    }
    use serde_json::json;

    fn row_from(body: &Json) -> Row {
        let cols = Columns::from_body(body.as_object().unwrap());
        Row {
            name: "n".into(),
            cols,
            version: 1,
        }
    }

    #[test]
    fn a_body_survives_columns_and_back_and_validates_like_yaml() {
        let body = json!({"task": "app.t", "crontab": {"minute": "*/15", "hour": "9-17"},
            "timezone": "Europe/Berlin", "args": [1, "two"], "kwargs": {"force": true},
            "options": {"queue": "q", "priority": 7, "expires": 300}, "enabled": false,
            "misfire": "all", "grace": "10m", "jitter": 30, "description": "d"});
        let row = row_from(&body);
        let back = Json::Object(row.to_json().unwrap());
        let mut want = body.clone();
        want["jitter"] = json!("30"); // durations are kept as text
        assert_eq!(back, want);
        let e = row.to_entry(&context(None)).unwrap();
        assert_eq!(e.options.priority, Some(7));
        assert!(!e.enabled);
        assert_eq!(&*e.origin.source, SOURCE);
    }

    #[test]
    fn field_errors_name_the_field_without_a_prefix() {
        let errs = entry::validate_json(
            "n",
            &json!({"task": "t", "every": "1s", "options": {"priority": 256}, "kwargs": [1]}),
            &context(None),
        )
        .unwrap_err();
        let text = entry::render_errors(&errs);
        assert!(
            text.contains("options.priority: priority 256 is out of range"),
            "{text}"
        );
        assert!(text.contains("kwargs: expected a mapping"), "{text}");
    }

    #[test]
    fn json_nodes_keep_types() {
        let n = crate::syntax::Node::from_json(&json!({"a": [1, 1.5, "x", null, true]}));
        assert_eq!(n.to_json(), json!({"a": [1, 1.5, "x", null, true]}));
    }
}
