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
        drop_blocking(async move {
            if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url()).await {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
            }
        });
    }
}

/// Runs a database's clean-up to the end on a thread and runtime of its
/// own (a `Drop` may run inside a test's runtime).
fn drop_blocking(f: impl std::future::Future<Output = ()> + Send + 'static) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    })
    .join()
    .unwrap();
}

/// The MariaDB/MySQL server's admin URL (`METRONOME_TEST_MYSQL`, default
/// `mysql://root@127.0.0.1:3306/mysql`).
pub fn mysql_admin_url() -> String {
    std::env::var("METRONOME_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/mysql".into())
}

/// A MariaDB database of its own, dropped at the end.
pub struct Maria {
    pub name: String,
    pub url: String,
}

impl Maria {
    pub async fn new() -> Maria {
        let name = format!("mt_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::MySqlConnection::connect(&mysql_admin_url())
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .unwrap();
        let base = mysql_admin_url();
        let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
        Maria { name, url }
    }
}

impl Drop for Maria {
    fn drop(&mut self) {
        let name = self.name.clone();
        drop_blocking(async move {
            if let Ok(mut c) = sqlx::MySqlConnection::connect(&mysql_admin_url()).await {
                let sql = format!("DROP DATABASE IF EXISTS {name}");
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut c)
                    .await;
            }
        });
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

/// A PgBouncer of the test's own in transaction pooling mode, in front of
/// the shared PostgreSQL, on a free port (its ini in a temp dir); killed on
/// drop. `None` if `pgbouncer` is not installed (`.ci/run` installs it).
pub struct PgBouncer {
    pub port: u16,
    _guard: super::process::Guard,
    _dir: tempfile::TempDir,
}

impl PgBouncer {
    pub fn start() -> Option<PgBouncer> {
        let bin = std::path::Path::new("/usr/sbin/pgbouncer");
        if !bin.exists() {
            eprintln!("pgbouncer not installed; skipping (apt-get install pgbouncer)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = super::port::free_port();
        let d = dir.path();
        let ini = format!(
            "[databases]\n* = host=127.0.0.1 port=5432\n\n[pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
             auth_type = trust\nauth_file = {users}\npool_mode = transaction\n\
             default_pool_size = 2\nmax_client_conn = 200\n\
             ignore_startup_parameters = extra_float_digits,options\n\
             logfile = {log}\npidfile = {pid}\n",
            users = d.join("users.txt").display(),
            log = d.join("pgbouncer.log").display(),
            pid = d.join("pgbouncer.pid").display(),
        );
        std::fs::write(d.join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        std::fs::write(d.join("pgbouncer.ini"), ini).unwrap();
        // pgbouncer refuses to run as root; it switches to `postgres`.
        let _ = std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777));
        let mut cmd = std::process::Command::new(bin);
        if nix_is_root() {
            cmd.args(["-u", "postgres"]);
        }
        cmd.arg(d.join("pgbouncer.ini"));
        let guard = super::process::Guard::spawn(&mut cmd, "pgbouncer");
        super::port::wait_listening(port, "pgbouncer");
        Some(PgBouncer {
            port,
            _guard: guard,
            _dir: dir,
        })
    }

    /// `db`'s URL through this PgBouncer.
    pub fn url(&self, db: &Pg) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, db.name)
    }
}

fn nix_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}
