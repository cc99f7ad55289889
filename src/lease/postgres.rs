//! The PostgreSQL lease (`--lock postgres://…`), for stacks without Redis.
//!
//! One row of `metronome_lease` per lease name (the `--state-prefix`)
//! holds the holder's token, the epoch (the fence) and the expiry on the
//! *database's* clock (`now()`). Acquire, renew and release are each one
//! compare-and-set statement in autocommit:
//!
//! - **acquire**: `INSERT … ON CONFLICT DO UPDATE … WHERE` the row is free,
//!   expired or ours: the epoch grows by one and the expiry is `now() +
//!   ttl`; the row lock serialises contenders, so two can never take the
//!   same epoch;
//! - **renew**: `UPDATE … SET expires_at = now() + ttl WHERE` holder and
//!   epoch are ours and the row has not expired;
//! - **release**: the same condition, clearing the holder (SIGTERM).
//!
//! Every statement goes out in the simple query protocol with its values
//! as quoted literals: no prepared statements, no session state, no
//! advisory locks, so the lease works through PgBouncer in transaction
//! pooling mode. The table is created by the lease itself (`CREATE TABLE
//! IF NOT EXISTS`, also one simple statement), because the lease database
//! need not be the schedule database and sqlx's migrator (session advisory
//! lock, prepared statements) does not work through such a pooler.
//!
//! The timing rules are the Redis lease's ([`super::LeaseConfig`],
//! [`super::keeper`]): the database applies the TTL after it receives the
//! statement, so measuring from when we sent it is safe the same way.
//!
//! **Invariant:** an epoch is taken by one holder only, and a row's holder
//! changes only when it was free or expired by the database's clock.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Row};

use super::LeaseConfig;
use crate::ports::BoxFuture;
use crate::ports::lease::{Lease, LeaseError};
use crate::redact::mask_url;
use crate::redis_link::LockUrlError;

/// The lease table.
pub const TABLE: &str = "metronome_lease";

const CREATE: &str = "CREATE TABLE IF NOT EXISTS metronome_lease (\
 name text PRIMARY KEY,\
 holder text,\
 epoch bigint NOT NULL,\
 expires_at timestamptz NOT NULL)";

/// A string as an SQL literal (standard-conforming: quotes doubled). NUL
/// cannot occur in a PostgreSQL text value, so it is refused earlier.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The acquire statement: returns the new epoch, or no row if another
/// holder's term is still running.
pub fn acquire_sql(name: &str, token: &str, ttl_ms: u64) -> String {
    let (n, t) = (literal(name), literal(token));
    format!(
        "INSERT INTO metronome_lease AS l (name, holder, epoch, expires_at) \
         VALUES ({n}, {t}, 1, now() + {ttl_ms} * interval '1 millisecond') \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = l.epoch + 1, \
         expires_at = excluded.expires_at \
         WHERE l.holder IS NULL OR l.expires_at <= now() OR l.holder = excluded.holder \
         RETURNING epoch"
    )
}

/// The condition "we hold term `epoch` and it has not expired".
fn ours(name: &str, token: &str, epoch: u64) -> String {
    format!(
        "name = {} AND holder = {} AND epoch = {epoch} AND expires_at > now()",
        literal(name),
        literal(token)
    )
}

/// The renew statement: one row updated if the term is still ours.
pub fn renew_sql(name: &str, token: &str, epoch: u64, ttl_ms: u64) -> String {
    format!(
        "UPDATE metronome_lease SET expires_at = now() + {ttl_ms} * interval '1 millisecond' WHERE {}",
        ours(name, token, epoch)
    )
}

/// The release statement: one row updated if the term is still ours.
pub fn release_sql(name: &str, token: &str, epoch: u64) -> String {
    format!(
        "UPDATE metronome_lease SET holder = NULL, expires_at = now() WHERE {}",
        ours(name, token, epoch)
    )
}

/// The current holder's `token:epoch`, if the term has not expired.
pub fn holder_sql(name: &str) -> String {
    format!(
        "SELECT holder || ':' || epoch AS v FROM metronome_lease \
         WHERE name = {} AND holder IS NOT NULL AND expires_at > now()",
        literal(name)
    )
}

/// One process's handle on a PostgreSQL lease.
pub struct PgLease {
    pool: PgPool,
    name: String,
    token: String,
    config: LeaseConfig,
    masked: String,
    created: tokio::sync::OnceCell<()>,
}

/// A database error of the lease.
fn lease_error(e: sqlx::Error) -> LeaseError {
    LeaseError(Box::new(e))
}

impl PgLease {
    /// Validates `url` and sets up a small pool (connecting lazily); `name`
    /// is the lease's row (the state prefix).
    pub fn open(url: &str, name: &str, config: LeaseConfig) -> Result<PgLease, LockUrlError> {
        let masked = mask_url(url);
        let bad = |reason: String| LockUrlError {
            url: masked.clone(),
            reason,
        };
        if name.contains('\0') {
            return Err(bad("the state prefix contains NUL".into()));
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        // The token names the connections, so an operator (or a test) can
        // tell which instance a backend serves.
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| bad(e.to_string()))?
            .application_name(&format!("metronome lease {token}"));
        let pool = PgPoolOptions::new()
            .max_connections(3)
            .acquire_timeout(config.op_timeout().max(Duration::from_millis(500)))
            // No maintenance task (it would need the runtime here); a
            // broken connection is found by the ping before each use.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(opts);
        Ok(PgLease {
            pool,
            name: name.to_string(),
            token,
            config,
            masked,
            created: tokio::sync::OnceCell::new(),
        })
    }

    pub fn config(&self) -> LeaseConfig {
        self.config
    }

    /// The lease's row name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pool, to share with the fenced run state.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates the lease table once per process (retried until it works).
    async fn ensure_table(&self) -> Result<(), sqlx::Error> {
        self.created
            .get_or_try_init(|| async {
                sqlx::raw_sql(CREATE).execute(&self.pool).await.map(|_| ())
            })
            .await
            .map(|_| ())
    }

    /// Runs `sql` (one simple-protocol statement); the rows it changed.
    async fn exec(&self, sql: String) -> Result<u64, sqlx::Error> {
        self.ensure_table().await?;
        let r = sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Runs `sql`; its first column of its first row, as text or bigint.
    async fn fetch<T>(&self, sql: String) -> Result<Option<T>, sqlx::Error>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        self.ensure_table().await?;
        let row = sqlx::raw_sql(AssertSqlSafe(sql))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get(0)).transpose()
    }

    fn ttl_ms(&self) -> u64 {
        self.config.ttl.as_millis() as u64
    }
}

impl Lease for PgLease {
    fn token(&self) -> &str {
        &self.token
    }

    fn try_acquire(&self) -> BoxFuture<'_, Result<Option<u64>, LeaseError>> {
        Box::pin(async move {
            let sql = acquire_sql(&self.name, &self.token, self.ttl_ms());
            let epoch: Option<i64> = self.fetch(sql).await.map_err(lease_error)?;
            Ok(epoch.map(|e| e as u64))
        })
    }

    fn renew(&self, fence: u64) -> BoxFuture<'_, Result<bool, LeaseError>> {
        Box::pin(async move {
            let sql = renew_sql(&self.name, &self.token, fence, self.ttl_ms());
            Ok(self.exec(sql).await.map_err(lease_error)? == 1)
        })
    }

    fn release(&self, fence: u64) -> BoxFuture<'_, Result<bool, LeaseError>> {
        Box::pin(async move {
            let sql = release_sql(&self.name, &self.token, fence);
            Ok(self.exec(sql).await.map_err(lease_error)? == 1)
        })
    }

    fn check<'a>(&'a self, value: &'a str) -> BoxFuture<'a, Result<bool, LeaseError>> {
        Box::pin(async move {
            let v: Option<String> = self
                .fetch(holder_sql(&self.name))
                .await
                .map_err(lease_error)?;
            Ok(v.as_deref() == Some(value))
        })
    }

    fn holder(&self) -> BoxFuture<'_, Result<Option<String>, LeaseError>> {
        Box::pin(async move {
            self.fetch(holder_sql(&self.name))
                .await
                .map_err(lease_error)
        })
    }

    fn describe(&self) -> &str {
        &self.masked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_quotes() {
        assert_eq!(literal("metronome:"), "'metronome:'");
        assert_eq!(literal("a'b"), "'a''b'");
        assert_eq!(literal("'; DROP TABLE x; --"), "'''; DROP TABLE x; --'");
    }

    #[test]
    fn statements_compare_holder_epoch_and_database_clock() {
        let a = acquire_sql("p:", "tok", 2000);
        assert!(a.contains("VALUES ('p:', 'tok', 1, now() + 2000 * interval '1 millisecond')"));
        assert!(a.contains("epoch = l.epoch + 1"));
        assert!(
            a.contains("l.holder IS NULL OR l.expires_at <= now() OR l.holder = excluded.holder")
        );
        assert!(a.ends_with("RETURNING epoch"));
        let cond = "name = 'p:' AND holder = 'tok' AND epoch = 7 AND expires_at > now()";
        assert!(renew_sql("p:", "tok", 7, 2000).ends_with(cond));
        assert!(renew_sql("p:", "tok", 7, 2000).contains("now() + 2000 * interval"));
        assert!(release_sql("p:", "tok", 7).ends_with(cond));
        assert!(release_sql("p:", "tok", 7).contains("holder = NULL"));
        assert!(holder_sql("p'x").contains("name = 'p''x'"));
    }

    #[test]
    fn bad_urls_are_masked() {
        let cfg = LeaseConfig::new(Duration::from_secs(2), None).unwrap();
        let e = PgLease::open("postgres://u:secret@h:notaport/db", "p", cfg)
            .err()
            .unwrap();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(PgLease::open("postgres://h/db", "p\0", cfg).is_err());
    }
}
