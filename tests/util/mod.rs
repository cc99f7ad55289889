//! The harness every suite shares, one concern per module: free ports,
//! private redis-servers, spawning `metronome`, HTTP calls, database and
//! RabbitMQ fixtures, the Python venv and real Celery workers.
//!
//! Owns the few things all of them need: the bound on waits ([`PATIENCE`]),
//! the repository root, unique names and the polling loops. Invariant: each
//! helper exists once here; suites hold only what is theirs alone.

pub mod amqp;
pub mod celery;
pub mod db;
pub mod http;
pub mod port;
pub mod process;
pub mod python;
pub mod redis;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The longest any wait in these tests lasts before failing. A bound on a
/// hang, not a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether this is a CI run (`CI` set and not `false`): tools that are
/// merely skipped on a laptop must be there.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// A name unique to this process and call, safe in keys, queues and vhosts.
pub fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "mt{}-{}-{}",
        std::process::id(),
        what,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `f` every 5 ms until it returns true; panics naming `what` after
/// `limit`. Returns the time taken.
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The blocking twin of [`wait_for`]: polls `f` every 20 ms, at most
/// [`PATIENCE`]; `why` is called for the panic message.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool, why: impl Fn() -> String) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < PATIENCE,
            "timed out waiting for {what}{}",
            why()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
