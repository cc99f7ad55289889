//! Reloading schedule files while running: on change (checked every
//! second) and on SIGHUP.
//!
//! A new version of the files is accepted whole or not at all: if any file
//! has an error, every error is logged, the old schedule keeps running, and
//! the failure is kept in [`ReloadStatus`](crate::service::inbox::ReloadStatus) for the API. An accepted version
//! is applied as a difference: only added, changed and removed entries are
//! sent to the scheduler, so unchanged entries keep their next run.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use tokio::sync::watch;
use tracing::{error, info};

use super::yaml::{self, DefaultZone, LoadErrors};
use crate::NameHasher;
use crate::entry::{ByName, Entry};
use crate::ports::clock::Clock;
use crate::service::inbox::{Command, Handle, SharedStatus};

/// How often files are checked for changes.
pub const POLL: Duration = Duration::from_secs(1);

/// What was added, changed and removed between two versions.
#[derive(Debug, Default, PartialEq)]
pub struct Diff {
    pub upsert: Vec<Arc<Entry>>,
    pub remove: Vec<String>,
}

/// The difference from `old` to `new`, by entry name.
pub fn diff(old: &HashSet<ByName, NameHasher>, new: &[Arc<Entry>]) -> Diff {
    let mut d = Diff::default();
    for e in new {
        if old.get(e.name.as_str()).map(|o| &o.0) != Some(e) {
            d.upsert.push(Arc::clone(e));
        }
    }
    let names: std::collections::HashSet<&str> = new.iter().map(|e| e.name.as_str()).collect();
    d.remove = old
        .iter()
        .map(|o| &o.0.name)
        .filter(|n| !names.contains(n.as_str()))
        .cloned()
        .collect();
    d.remove.sort();
    d
}

/// A cheap fingerprint of the files: size and modification time, or the
/// error text for files that cannot be read.
fn fingerprint(paths: &[PathBuf]) -> Vec<Result<(u64, SystemTime), String>> {
    paths
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .map_err(|e| e.to_string())
                .and_then(|m| Ok((m.len(), m.modified().map_err(|e| e.to_string())?)))
        })
        .collect()
}

/// Watches `paths` until `shutdown`, applying accepted versions through
/// `handle`. `initial` is the version the service started with; `clock`
/// stamps each attempt in `status`.
pub async fn run(
    paths: Vec<PathBuf>,
    zone: DefaultZone,
    initial: Vec<Arc<Entry>>,
    handle: Handle,
    status: SharedStatus,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            error!(error = %e, "cannot listen for SIGHUP; reloading on file change only");
            None
        }
    };
    // By name, without a copy of each name.
    let mut current: HashSet<ByName, NameHasher> = initial.into_iter().map(ByName).collect();
    let mut seen = fingerprint(&paths);
    loop {
        let forced = tokio::select! {
            _ = tokio::time::sleep(POLL) => false,
            Some(_) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
            _ = shutdown.changed() => return,
        };
        let now_seen = fingerprint(&paths);
        if !forced && now_seen == seen {
            continue;
        }
        seen = now_seen;
        let reason = if forced { "SIGHUP" } else { "file change" };
        let at = clock.now();
        let loaded = {
            let (paths, zone) = (paths.clone(), zone.clone());
            tokio::task::spawn_blocking(move || yaml::load_files(&paths, &zone)).await
        };
        let result = match loaded {
            Ok(r) => r,
            Err(e) => {
                error!(error = %e, "schedule reload task failed");
                continue;
            }
        };
        match result {
            Ok(entries) => {
                let entries: Vec<Arc<Entry>> = entries.into_iter().map(Arc::new).collect();
                if !apply(&mut current, entries, &handle, reason).await {
                    return;
                }
                let mut s = status.lock().expect("status lock");
                s.last_attempt = Some(at);
                s.last_success = Some(at);
                s.errors.clear();
                s.reloads += 1;
                crate::metrics::set_reload(s.metrics());
            }
            Err(errs) => reject(&errs, &status, reason, at),
        }
    }
}

/// Sends the difference from `current` to `entries` to the scheduler and
/// makes `entries` current. False if the scheduler is gone.
async fn apply(
    current: &mut HashSet<ByName, NameHasher>,
    entries: Vec<Arc<Entry>>,
    handle: &Handle,
    reason: &str,
) -> bool {
    let d = diff(current, &entries);
    let (added_or_changed, removed) = (d.upsert.len(), d.remove.len());
    if !d.upsert.is_empty() && !handle.send(Command::Upsert(d.upsert)).await {
        return false;
    }
    if !d.remove.is_empty() && !handle.send(Command::Remove(d.remove)).await {
        return false;
    }
    *current = entries.into_iter().map(ByName).collect();
    info!(
        reason,
        entries = current.len(),
        added_or_changed,
        removed,
        "schedule reloaded"
    );
    true
}

/// Logs a rejected version's errors and keeps them in `status`.
fn reject(errs: &LoadErrors, status: &SharedStatus, reason: &str, at: Timestamp) {
    for e in &errs.0 {
        error!(error = %e, "schedule reload rejected");
    }
    error!(
        reason,
        errors = errs.0.len(),
        "schedule reload rejected; the previous schedule keeps running"
    );
    let mut s = status.lock().expect("status lock");
    s.last_attempt = Some(at);
    s.errors = errs.0.iter().map(|e| e.to_string()).collect();
    s.failures += 1;
    crate::metrics::set_reload(s.metrics());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::yaml::load_str;

    #[test]
    fn diff_sends_only_what_changed() {
        let old = load_str("a.yaml", "schedules:\n  a: {task: t, every: 1s}\n  b: {task: t, every: 2s}\n  c: {task: t, every: 3s}\n", &None).unwrap();
        let old: HashSet<ByName, NameHasher> =
            old.into_iter().map(|e| ByName(Arc::new(e))).collect();
        let new = load_str("a.yaml", "schedules:\n  a: {task: t, every: 1s}\n  b: {task: t, every: 5s}\n  d: {task: t, every: 3s}\n", &None).unwrap();
        let new: Vec<Arc<Entry>> = new.into_iter().map(Arc::new).collect();
        let d = diff(&old, &new);
        let names: Vec<&str> = d.upsert.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["b", "d"]);
        assert_eq!(d.remove, ["c"]);
    }
}
