//! The schedule database connection layer (PostgreSQL or SQLite): the
//! connection pool ([`Db`]), its errors ([`DbError`]), connecting and
//! migrating, the rows of `metronome_schedule` ([`row`]), the statements on
//! that table ([`query`]) and the handle asking the syncer for a refresh
//! ([`sync`]).
//!
//! `metronome_schedule` has one row per entry and one column per key of a
//! YAML entry (JSON-shaped keys are `jsonb` on PostgreSQL, JSON text on
//! SQLite); see `migrations/`. Triggers stamp each written row with a fresh
//! `version`, whoever writes it (raw SQL included): on PostgreSQL they
//! notify on [`CHANNEL`]; on SQLite they bump `metronome_meta.version` and
//! record deletions in `metronome_schedule_deleted`.
//!
//! **Invariant**: knows nothing of schedule sources, the service loop or
//! HTTP; it depends only on `entry` (the validation context of rows) and
//! `redact::mask_url`.

pub mod django;
pub mod query;
pub mod row;
pub mod sync;

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::entry::Context;
use crate::redact::mask_url;

pub use row::{Columns, Row, RowError};
pub use sync::{Refresh, SharedStatus, SyncClient, SyncStatus};

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The label of database entries in origins, errors and the API.
pub const SOURCE: &str = "database";
/// PostgreSQL channel the triggers notify on.
pub const CHANNEL: &str = "metronome_schedule";

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

    /// True if every migration this build knows is applied (PostgreSQL),
    /// asked in one simple-protocol statement: then [`Db::migrate`] (which
    /// takes a session advisory lock, impossible through PgBouncer in
    /// transaction mode) can be skipped. False on any error.
    pub async fn is_current(&self) -> bool {
        let Db::Postgres(p) = self else {
            return false;
        };
        let latest = POSTGRES_MIGRATIONS.iter().map(|m| m.version).max();
        let q = "SELECT max(version) FROM _sqlx_migrations WHERE success";
        match sqlx::raw_sql(q).fetch_optional(p).await {
            Ok(Some(row)) => {
                use sqlx::Row;
                row.try_get::<Option<i64>, _>(0).ok().flatten() == latest
            }
            _ => false,
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
