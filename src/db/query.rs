//! The statements on `metronome_schedule`: reading rows (all, by name, in
//! cursor pages, by change version), their versions, and writing rows
//! (insert, upsert, delete).
//!
//! Owns the SQL text and the column list of each backend.
//!
//! **Invariant**: every statement reads or writes whole [`Row`]s or
//! [`Columns`]; the triggers, not these statements, stamp versions.

use serde_json::Value as Json;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use super::{Columns, Db, DbError, Row};

/// Rows fetched per query.
const CHUNK: usize = 1000;
/// Rows per page when loading everything at start.
pub const LOAD_PAGE: usize = 50_000;

const PG_COLUMNS: &str = "name, task, cron, crontab::text AS crontab, every, solar::text AS solar, at, timezone, \
    args::text AS args, kwargs::text AS kwargs, options::text AS options, enabled, start_at, end_at, \
    misfire, grace, jitter, dst::text AS dst, description, version";

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

    /// PostgreSQL: every row through a cursor (one snapshot), in pages of
    /// [`LOAD_PAGE`] handed to `page` as they arrive.
    pub async fn pg_pages(pool: &PgPool, mut page: impl FnMut(Vec<Row>)) -> Result<(), DbError> {
        let mut t = pool.begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DECLARE metronome_load NO SCROLL CURSOR FOR SELECT {PG_COLUMNS} FROM metronome_schedule"
        )))
        .execute(&mut *t)
        .await?;
        loop {
            let rows = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(format!(
                "FETCH {LOAD_PAGE} FROM metronome_load"
            )))
            .fetch_all(&mut *t)
            .await?;
            let last = rows.len() < LOAD_PAGE;
            if !rows.is_empty() {
                page(rows);
            }
            if last {
                break;
            }
        }
        Ok(t.commit().await?)
    }

    /// SQLite: the current change version, the rows written after `since`
    /// and the names deleted after it, read in one snapshot.
    pub async fn sqlite_changes(
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

    /// SQLite: the current change version.
    pub async fn sqlite_version(pool: &SqlitePool) -> Result<i64, DbError> {
        let (v,): (i64,) = sqlx::query_as("SELECT version FROM metronome_meta WHERE id = 1")
            .fetch_one(pool)
            .await?;
        Ok(v)
    }
}
