//! Redis for tests: the shared server's URL and connection, small list
//! queries, and [`RedisServer`], the one launcher of private
//! `redis-server`s (plain, durable, TLS-only, Sentinel) on free ports.
//! Invariant: a private server is killed when its value is dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::port::{free_port, wait_listening};
use super::process::Guard;

/// The shared test Redis, host, port and database: `METRONOME_TEST_REDIS_URL`
/// (default `redis://127.0.0.1:6379`, database 0 by Redis's default). Every
/// suite reaches the shared server through this; none names a database.
pub fn redis_url() -> String {
    std::env::var("METRONOME_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

/// [`redis_url`] with `query` (`k=v&…`) added.
pub fn redis_url_with(query: &str) -> String {
    let url = redis_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// A connection to the shared test Redis.
pub async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("test Redis reachable")
}

/// Deletes every key of the shared test Redis that starts with `prefix`
/// (kombu's `_kombu.binding*` sets under a `global_keyprefix` included);
/// returns how many there were. Blocking, so it can run in a `Drop`.
pub fn delete_prefixed(prefix: &str) -> usize {
    let Ok(mut c) = redis::Client::open(redis_url()).and_then(|c| c.get_connection()) else {
        return 0;
    };
    let pattern = format!("{}*", glob_escape(prefix));
    let keys: Vec<String> = match redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg(&pattern)
        .arg("COUNT")
        .arg(1000)
        .clone()
        .iter(&mut c)
    {
        Ok(iter) => iter.filter_map(Result::ok).collect(),
        Err(_) => return 0,
    };
    for chunk in keys.chunks(500) {
        let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(chunk).query(&mut c);
    }
    keys.len()
}

/// `s` with Redis glob characters escaped.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// `LLEN key` at `url`; `None` while the server cannot be reached.
pub async fn llen(url: &str, key: &str) -> Option<usize> {
    let client = redis::Client::open(url).ok()?;
    let mut c = client.get_multiplexed_async_connection().await.ok()?;
    redis::cmd("LLEN").arg(key).query_async(&mut c).await.ok()
}

/// `LRANGE key 0 -1` at `url`.
pub async fn lrange(url: &str, key: &str) -> Vec<String> {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query_async(&mut c)
        .await
        .unwrap()
}

/// A `redis-server` of the test's own on 127.0.0.1, started and waited for.
pub struct RedisServer {
    child: Guard,
    pub port: u16,
    args: Vec<String>,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl RedisServer {
    /// Nothing kept on disk, on a free port.
    pub fn start() -> RedisServer {
        RedisServer::on_port(free_port())
    }

    /// Nothing kept on disk, on `port`.
    pub fn on_port(port: u16) -> RedisServer {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        RedisServer::launch(port, plain(port, &["--appendonly", "no"]), dir, Some(tmp))
    }

    /// An append-only file fsynced on every write, in a directory of its
    /// own, so a SIGKILL loses nothing acknowledged and a restart keeps it.
    pub fn durable() -> RedisServer {
        let port = free_port();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut args = plain(port, &["--appendonly", "yes", "--appendfsync", "always"]);
        args.extend(["--dir".into(), dir.display().to_string()]);
        RedisServer::launch(port, args, dir, Some(tmp))
    }

    /// TLS only, on a free port, with `server.crt`, `server.key` and
    /// `ca.crt` from `certs` (clients are not asked for certificates).
    pub fn tls(certs: &Path) -> RedisServer {
        let port = free_port();
        let args = [
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.crt",
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        let args = args.iter().map(|a| a.to_string()).collect();
        RedisServer::launch(port, args, certs.to_path_buf(), None)
    }

    /// A Sentinel on a free port monitoring `master` as `mymaster`.
    pub fn sentinel(master: &RedisServer) -> RedisServer {
        let port = free_port();
        let tmp = tempfile::tempdir().unwrap();
        let conf = tmp.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {} 1\n",
                master.port
            ),
        )
        .unwrap();
        let args = vec![conf.display().to_string(), "--sentinel".into()];
        let dir = tmp.path().to_path_buf();
        RedisServer::launch(port, args, dir, Some(tmp))
    }

    fn launch(
        port: u16,
        args: Vec<String>,
        dir: PathBuf,
        tmp: Option<tempfile::TempDir>,
    ) -> RedisServer {
        let child = spawn(&args, &dir);
        wait_listening(port, "redis-server");
        RedisServer {
            child,
            port,
            args,
            dir,
            _tmp: tmp,
        }
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// One command over a blocking connection.
    pub fn cmd(&self, args: &[&str]) -> redis::Value {
        let mut c = redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut c).unwrap()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// Starts the same server again (same port, same directory).
    pub fn restart(&mut self) {
        self.child = spawn(&self.args, &self.dir);
        wait_listening(self.port, "redis-server");
    }
}

fn plain(port: u16, persistence: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(persistence.iter().map(|a| a.to_string()));
    args
}

fn spawn(args: &[String], dir: &Path) -> Guard {
    Guard::spawn(
        Command::new("redis-server").args(args).current_dir(dir),
        "redis-server",
    )
}
