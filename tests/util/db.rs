//! Database fixtures: a PostgreSQL database made per test on the shared
//! server (`METRONOME_TEST_PG`, default
//! `postgres://postgres@127.0.0.1:5432/test`, trust auth) and dropped after,
//! SQLite file URLs, and `metronome migrate`. Invariant: no test touches a
//! database it did not create.

use std::path::Path;

use sqlx::Connection;

use super::process::{metronome, run_ok};

/// The shared server's admin database.
pub fn admin_url() -> String {
    std::env::var("METRONOME_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A PostgreSQL database of its own, dropped at the end.
pub struct Pg {
    pub name: String,
    pub url: String,
}

impl Pg {
    pub async fn new() -> Pg {
        let name = format!("mt_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .unwrap();
        let base = admin_url();
        let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
        Pg { name, url }
    }

    pub async fn conn(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url).await.unwrap()
    }

    /// Runs `sql` (several statements allowed) in this database.
    pub async fn exec(&self, sql: &str) {
        let mut c = self.conn().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut c)
            .await
            .unwrap();
    }

    /// Runs `sql` from the admin database (for statements about this one;
    /// `$DB` stands for its name).
    pub async fn admin(&self, sql: &str) {
        let mut c = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.replace("$DB", &self.name)))
            .execute(&mut c)
            .await
            .unwrap();
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let name = self.name.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            });
        })
        .join()
        .unwrap();
    }
}

/// A SQLite database file in `dir`.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("metronome.db").display())
}

/// `metronome migrate --database url`, which must succeed.
pub fn migrate(url: &str) {
    run_ok(metronome().args(["migrate", "--database", url]));
}
