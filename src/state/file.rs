//! Run state in local files, for standalone (`--no-lock`) use: a snapshot
//! plus an append-only journal.
//!
//! `state.json` is a snapshot of every entry's state; `state.json.journal`
//! lists, one JSON line each, the states written (or entries removed) since
//! that snapshot. A save appends the changed entries to the journal and
//! syncs it, so its cost follows what changed, not how many entries there
//! are. When the journal outgrows the snapshot, a new snapshot is written
//! (temporary file, sync, rename) and the journal starts over.
//!
//! Crash safety: a snapshot is replaced whole by rename, so it is either
//! the old or the new one. The snapshot names its journal's generation; a
//! journal of another generation is left over from before the last
//! snapshot and is ignored. A journal line cut short by a crash (the last
//! one, without its newline) was never acknowledged and is dropped. Any
//! other damage is reported, never overwritten.
//!
//! All file I/O happens on one writer thread, in the order requested, so
//! the async run loop never blocks on `fsync`, and a snapshot requested in
//! the background (at start) is on disk before any later save is
//! acknowledged. The files are locked while open, so two standalone
//! instances cannot share them.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use super::EntryState;
use crate::ports::BoxFuture;
use crate::ports::store::{StateError, StateStore, States};

/// Errors of the state files.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StateFileError {
    #[error("state file {path}: {source}")]
    Io {
        path: PathBuf,
        source: Arc<std::io::Error>,
    },
    #[error("state file {path} is not valid: {source}")]
    Corrupt {
        path: PathBuf,
        source: Arc<serde_json::Error>,
    },
    #[error("state journal {path} is not valid at line {line}: {source}")]
    CorruptJournal {
        path: PathBuf,
        line: usize,
        source: Arc<serde_json::Error>,
    },
    #[error("state file {path} is in use by another metronome instance (lock file {lock} is held)")]
    Locked { path: PathBuf, lock: PathBuf },
    #[error("state file {path}: the writer thread has stopped")]
    WriterGone { path: PathBuf },
}

/// The snapshot document.
#[derive(serde::Deserialize, Default)]
struct Contents {
    #[allow(dead_code)]
    version: u32,
    entries: BTreeMap<String, EntryState>,
    /// Generation of the journal that continues this snapshot; absent in
    /// files written before the journal existed (generation 0).
    #[serde(default)]
    journal: u64,
}

/// A journal line: a state written, or an entry removed.
#[derive(serde::Deserialize)]
struct Record {
    entry: String,
    #[serde(default)]
    state: Option<EntryState>,
    #[serde(default)]
    removed: bool,
}

/// The journal's first line.
#[derive(serde::Deserialize, serde::Serialize)]
struct Header {
    generation: u64,
}

/// The journal is rewritten into a snapshot once it is larger than the
/// last snapshot, and never while it is smaller than this.
const MIN_COMPACT_BYTES: u64 = 1 << 20;

/// An open, locked pair of state files.
pub struct StateFile {
    path: PathBuf,
    tx: mpsc::Sender<Job>,
    sizes: Mutex<Sizes>,
    _lock: File,
}

/// What the loop has asked the writer to write, for deciding when to
/// compact (counted when requested, so no round trip is needed).
struct Sizes {
    generation: u64,
    journal: u64,
    snapshot: u64,
}

enum Job {
    Append {
        bytes: Vec<u8>,
        done: Option<tokio::sync::oneshot::Sender<Result<(), StateFileError>>>,
    },
    Snapshot {
        generation: u64,
        bytes: Vec<u8>,
        done: Option<tokio::sync::oneshot::Sender<Result<(), StateFileError>>>,
    },
}

impl StateFile {
    /// Opens (creating if needed) and locks the state files at `path`, and
    /// returns the state they hold: the snapshot with its journal applied.
    pub fn open(path: &Path) -> Result<(StateFile, BTreeMap<String, EntryState>), StateFileError> {
        let io = |source| StateFileError::Io {
            path: path.to_path_buf(),
            source: Arc::new(source),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let lock_path = sibling(path, ".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io)?;
        if lock.try_lock().is_err() {
            return Err(StateFileError::Locked {
                path: path.to_path_buf(),
                lock: lock_path,
            });
        }
        let (mut entries, generation, snapshot) = match fs::read(path) {
            Ok(bytes) if bytes.is_empty() => (BTreeMap::new(), 0, 0),
            Ok(bytes) => {
                let c: Contents =
                    serde_json::from_slice(&bytes).map_err(|source| StateFileError::Corrupt {
                        path: path.to_path_buf(),
                        source: Arc::new(source),
                    })?;
                (c.entries, c.journal, bytes.len() as u64)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (BTreeMap::new(), 0, 0),
            Err(e) => return Err(io(e)),
        };
        let journal_path = sibling(path, ".journal");
        let journal = replay(&journal_path, generation, &mut entries)?;
        let journal = match journal {
            Some(j) => j,
            None => start_journal(&journal_path, generation)?,
        };
        let len = journal.1;
        let writer = Writer {
            path: path.to_path_buf(),
            journal_path,
            journal: journal.0,
            failed: None,
        };
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("state-file".into())
            .spawn(move || writer.run(rx))
            .map_err(io)?;
        Ok((
            StateFile {
                path: path.to_path_buf(),
                tx,
                sizes: Mutex::new(Sizes {
                    generation,
                    journal: len,
                    snapshot,
                }),
                _lock: lock,
            },
            entries,
        ))
    }

    /// Appends the states of `changed` and the removal of `removed` to the
    /// journal and returns once they are durable.
    pub async fn append<'a>(
        &self,
        changed: impl IntoIterator<Item = (&'a str, &'a EntryState)>,
        removed: &[String],
    ) -> Result<(), StateFileError> {
        let mut bytes = Vec::new();
        for (name, st) in changed {
            write_record(&mut bytes, name, Some(st));
        }
        for name in removed {
            write_record(&mut bytes, name, None);
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.sizes().journal += bytes.len() as u64;
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(Job::Append {
            bytes,
            done: Some(done),
        })?;
        self.wait(wait).await
    }

    /// True once the journal has grown past the last snapshot: time for
    /// [`StateFile::snapshot`].
    pub fn wants_snapshot(&self) -> bool {
        let s = self.sizes();
        s.journal > s.snapshot.max(MIN_COMPACT_BYTES)
    }

    /// Replaces the snapshot with `entries` (every entry) and starts a new
    /// journal. With `wait`, returns once that is durable; without, returns
    /// at once and the writer does it before any later request (a failure
    /// is then reported by the next request that waits).
    pub async fn snapshot<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a str, &'a EntryState)>,
        wait: bool,
    ) -> Result<(), StateFileError> {
        let generation = self.sizes().generation + 1;
        let bytes = snapshot_bytes(entries, generation);
        {
            let mut sizes = self.sizes();
            sizes.generation = generation;
            sizes.snapshot = bytes.len() as u64;
            sizes.journal = 0;
        }
        if !wait {
            return self.send(Job::Snapshot {
                generation,
                bytes,
                done: None,
            });
        }
        let (done, rx) = tokio::sync::oneshot::channel();
        self.send(Job::Snapshot {
            generation,
            bytes,
            done: Some(done),
        })?;
        self.wait(rx).await
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sizes(&self) -> std::sync::MutexGuard<'_, Sizes> {
        self.sizes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, job: Job) -> Result<(), StateFileError> {
        self.tx.send(job).map_err(|_| StateFileError::WriterGone {
            path: self.path.clone(),
        })
    }

    async fn wait(
        &self,
        rx: tokio::sync::oneshot::Receiver<Result<(), StateFileError>>,
    ) -> Result<(), StateFileError> {
        rx.await.unwrap_or_else(|_| {
            Err(StateFileError::WriterGone {
                path: self.path.clone(),
            })
        })
    }
}

/// The writer thread's side: owns the open journal.
struct Writer {
    path: PathBuf,
    journal_path: PathBuf,
    journal: File,
    /// The first failure; every later request reports it (the service
    /// stops on a state-file error, so nothing is written after one).
    failed: Option<StateFileError>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        while let Ok(job) = rx.recv() {
            let (result, done) = match job {
                Job::Append { bytes, done } => (self.checked(|w| w.append(&bytes)), done),
                Job::Snapshot {
                    generation,
                    bytes,
                    done,
                } => (self.checked(|w| w.snapshot(generation, &bytes)), done),
            };
            if let Some(done) = done {
                let _ = done.send(result);
            }
        }
    }

    fn checked(
        &mut self,
        f: impl FnOnce(&mut Writer) -> Result<(), StateFileError>,
    ) -> Result<(), StateFileError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = f(self);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), StateFileError> {
        let io = |source| StateFileError::Io {
            path: self.journal_path.clone(),
            source: Arc::new(source),
        };
        self.journal.write_all(bytes).map_err(io)?;
        self.journal.sync_data().map_err(io)
    }

    fn snapshot(&mut self, generation: u64, bytes: &[u8]) -> Result<(), StateFileError> {
        write_durably(&self.path, bytes)?;
        // The snapshot now names the new generation: the old journal is
        // ignored from here on, even if replacing it fails below.
        self.journal = start_journal(&self.journal_path, generation)?.0;
        Ok(())
    }
}

/// Applies the journal at `path` to `entries` if it continues the snapshot
/// (`generation`); returns it open for appending, with its length, or
fn fatal(e: StateFileError) -> StateError {
    StateError::Fatal(Box::new(e))
}

impl StateStore for StateFile {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    /// Appends to the journal; returns once durable.
    fn save<'a>(
        &'a self,
        changed: States<'a>,
        removed: &'a [String],
        _fence: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move { self.append(changed, removed).await.map_err(fatal) })
    }

    fn wants_save_all(&self) -> bool {
        self.wants_snapshot()
    }

    /// A new snapshot, written in the background; a later save waits for
    /// it, as the writer keeps requests in order.
    fn save_all<'a>(
        &'a self,
        all: States<'a>,
        _removed: &'a [String],
        _fence: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move { self.snapshot(all, false).await.map_err(fatal) })
    }

    /// A clean stop leaves the whole state in the snapshot and the journal
    /// empty, after anything still queued.
    fn close<'a>(&'a self, all: States<'a>) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move { self.snapshot(all, true).await.map_err(fatal) })
    }
}

/// `None` if it is missing or stale.
fn replay(
    path: &Path,
    generation: u64,
    entries: &mut BTreeMap<String, EntryState>,
) -> Result<Option<(File, u64)>, StateFileError> {
    let io = |source| StateFileError::Io {
        path: path.to_path_buf(),
        source: Arc::new(source),
    };
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let corrupt = |line: usize, source| StateFileError::CorruptJournal {
        path: path.to_path_buf(),
        line,
        source: Arc::new(source),
    };
    // Only complete lines count: a last line without its newline was cut
    // short by a crash before its sync returned.
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut lines = bytes[..complete].split(|b| *b == b'\n');
    let header: Header = match lines.next().filter(|l| !l.is_empty()) {
        Some(l) => serde_json::from_slice(l).map_err(|e| corrupt(1, e))?,
        None => return Ok(None),
    };
    if header.generation != generation {
        return Ok(None);
    }
    for (i, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        let r: Record = serde_json::from_slice(line).map_err(|e| corrupt(i + 2, e))?;
        match r.state {
            Some(st) if !r.removed => {
                entries.insert(r.entry, st);
            }
            _ => {
                entries.remove(&r.entry);
            }
        }
    }
    let f = OpenOptions::new().write(true).open(path).map_err(io)?;
    if complete < bytes.len() {
        f.set_len(complete as u64).map_err(io)?;
    }
    let mut f = f;
    std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)).map_err(io)?;
    Ok(Some((f, complete as u64)))
}

/// Replaces the journal with an empty one of `generation`.
fn start_journal(path: &Path, generation: u64) -> Result<(File, u64), StateFileError> {
    let mut header = serde_json::to_vec(&Header { generation }).expect("header serializes");
    header.push(b'\n');
    write_durably(path, &header)?;
    let f = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|source| StateFileError::Io {
            path: path.to_path_buf(),
            source: Arc::new(source),
        })?;
    Ok((f, header.len() as u64))
}

/// Writes `bytes` to a temporary file, syncs it and renames it over `path`.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StateFileError> {
    let io = |source| StateFileError::Io {
        path: path.to_path_buf(),
        source: Arc::new(source),
    };
    let tmp = sibling(path, ".tmp");
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Make the rename itself durable.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The snapshot document for `entries`, serialized straight from the
/// borrowed states (no copy of the map), entries in the caller's order.
fn snapshot_bytes<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a EntryState)>,
    generation: u64,
) -> Vec<u8> {
    struct Entries<I>(std::cell::Cell<Option<I>>);
    impl<'a, I: Iterator<Item = (&'a str, &'a EntryState)>> serde::Serialize for Entries<I> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.take().expect("serialized once"))
        }
    }
    #[derive(serde::Serialize)]
    struct Borrowed<I: serde::Serialize> {
        version: u32,
        journal: u64,
        entries: I,
    }
    let c = Borrowed {
        version: 1,
        journal: generation,
        entries: Entries(std::cell::Cell::new(Some(entries.into_iter()))),
    };
    serde_json::to_vec(&c).expect("state serializes")
}

/// One journal line.
fn write_record(out: &mut Vec<u8>, name: &str, state: Option<&EntryState>) {
    #[derive(serde::Serialize)]
    struct Borrowed<'a> {
        entry: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        state: Option<&'a EntryState>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        removed: bool,
    }
    let r = Borrowed {
        entry: name,
        state,
        removed: state.is_none(),
    };
    serde_json::to_writer(&mut *out, &r).expect("state serializes");
    out.push(b'\n');
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(runs: u64) -> EntryState {
        EntryState {
            total_runs: runs,
            cursor: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            ..Default::default()
        }
    }

    fn journal(path: &Path) -> String {
        fs::read_to_string(sibling(path, ".journal")).unwrap()
    }

    #[tokio::test]
    async fn round_trips_and_locks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let (f, entries) = StateFile::open(&path).unwrap();
        assert!(entries.is_empty());
        f.append([("a", &state(3))], &[]).await.unwrap();
        match StateFile::open(&path) {
            Err(StateFileError::Locked { .. }) => {}
            other => panic!("expected a lock error, got {:?}", other.map(|_| ())),
        }
        drop(f);
        let (_f, entries) = StateFile::open(&path).unwrap();
        assert_eq!(entries.get("a"), Some(&state(3)));
    }

    #[tokio::test]
    async fn journal_applies_over_the_snapshot_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let (f, _) = StateFile::open(&path).unwrap();
        f.snapshot([("a", &state(1)), ("b", &state(1)), ("c", &state(1))], true)
            .await
            .unwrap();
        f.append([("a", &state(2))], &[]).await.unwrap();
        f.append([("a", &state(3)), ("d", &state(1))], &["b".to_string()])
            .await
            .unwrap();
        // Only the three appended records and a removal are in the journal.
        assert_eq!(journal(&path).lines().count(), 1 + 4);
        drop(f);
        let (_f, entries) = StateFile::open(&path).unwrap();
        let runs: Vec<(&str, u64)> = entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.total_runs))
            .collect();
        assert_eq!(runs, [("a", 3), ("c", 1), ("d", 1)]);
    }

    #[tokio::test]
    async fn a_line_cut_short_is_dropped_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let (f, _) = StateFile::open(&path).unwrap();
        f.append([("a", &state(1))], &[]).await.unwrap();
        f.append([("a", &state(2))], &[]).await.unwrap();
        drop(f);
        // A crash in the middle of the third append.
        let j = sibling(&path, ".journal");
        let mut bytes = fs::read(&j).unwrap();
        let whole = bytes.len();
        bytes.extend_from_slice(br#"{"entry":"a","state":{"total_ru"#);
        fs::write(&j, &bytes).unwrap();
        let (f, entries) = StateFile::open(&path).unwrap();
        assert_eq!(entries["a"].total_runs, 2);
        assert_eq!(
            fs::metadata(&j).unwrap().len() as usize,
            whole,
            "torn tail cut"
        );
        f.append([("a", &state(4))], &[]).await.unwrap();
        drop(f);
        let (_f, entries) = StateFile::open(&path).unwrap();
        assert_eq!(entries["a"].total_runs, 4);
    }

    #[tokio::test]
    async fn damage_before_the_last_line_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let (f, _) = StateFile::open(&path).unwrap();
        f.append([("a", &state(1))], &[]).await.unwrap();
        drop(f);
        let j = sibling(&path, ".journal");
        let mut text = fs::read_to_string(&j).unwrap();
        text.push_str("{garbage\n");
        text.push_str(journal(&path).lines().nth(1).unwrap());
        text.push('\n');
        fs::write(&j, &text).unwrap();
        match StateFile::open(&path) {
            Err(e @ StateFileError::CorruptJournal { line: 3, .. }) => {
                assert!(e.to_string().contains("at line 3"), "{e}");
            }
            other => panic!("expected a journal error, got {:?}", other.map(|_| ())),
        }
        assert_eq!(fs::read_to_string(&j).unwrap(), text);
    }

    #[tokio::test]
    async fn a_journal_older_than_the_snapshot_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let (f, _) = StateFile::open(&path).unwrap();
        f.append([("a", &state(1))], &[]).await.unwrap();
        let old_journal = fs::read(sibling(&path, ".journal")).unwrap();
        f.snapshot([("a", &state(5))], true).await.unwrap();
        drop(f);
        // A crash after the snapshot's rename, before the journal was
        // replaced: the old generation's records must not apply.
        fs::write(sibling(&path, ".journal"), &old_journal).unwrap();
        let (f, entries) = StateFile::open(&path).unwrap();
        assert_eq!(entries["a"].total_runs, 5);
        f.append([("b", &state(1))], &[]).await.unwrap();
        drop(f);
        let (_f, entries) = StateFile::open(&path).unwrap();
        assert_eq!((entries["a"].total_runs, entries["b"].total_runs), (5, 1));
    }

    #[tokio::test]
    async fn a_snapshot_without_a_journal_generation_still_loads() {
        // The format written before the journal existed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(
            &path,
            br#"{"version":1,"entries":{"a":{"cursor":"2026-01-01T00:00:00Z","total_runs":7}}}"#,
        )
        .unwrap();
        let (f, entries) = StateFile::open(&path).unwrap();
        assert_eq!(entries["a"].total_runs, 7);
        f.append([("a", &state(8))], &[]).await.unwrap();
        drop(f);
        let (_f, entries) = StateFile::open(&path).unwrap();
        assert_eq!(entries["a"].total_runs, 8);
    }

    #[tokio::test]
    async fn the_journal_asks_for_a_snapshot_once_it_outgrows_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let (f, _) = StateFile::open(&path).unwrap();
        let names: Vec<String> = (0..2000).map(|i| format!("entry-{i}")).collect();
        let all = |runs| {
            let st = state(runs);
            names
                .iter()
                .map(move |n| (n.clone(), st.clone()))
                .collect::<Vec<_>>()
        };
        let first = all(1);
        f.snapshot(first.iter().map(|(n, s)| (n.as_str(), s)), false)
            .await
            .unwrap();
        let mut rounds = 0;
        while !f.wants_snapshot() {
            rounds += 1;
            let next = all(rounds + 1);
            f.append(next.iter().map(|(n, s)| (n.as_str(), s)), &[])
                .await
                .unwrap();
        }
        // Past 1 MiB (the snapshot of 2000 small states is smaller).
        assert!(rounds > 1, "{rounds}");
        assert!(fs::metadata(sibling(&path, ".journal")).unwrap().len() > MIN_COMPACT_BYTES);
        let last = all(rounds + 1);
        f.snapshot(last.iter().map(|(n, s)| (n.as_str(), s)), true)
            .await
            .unwrap();
        assert!(!f.wants_snapshot());
        assert_eq!(journal(&path).lines().count(), 1, "journal starts over");
        drop(f);
        let (_f, entries) = StateFile::open(&path).unwrap();
        assert_eq!(entries.len(), 2000);
        assert!(entries.values().all(|s| s.total_runs == rounds + 1));
    }

    #[test]
    fn corrupt_file_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            StateFile::open(&path),
            Err(StateFileError::Corrupt { .. })
        ));
        assert_eq!(fs::read(&path).unwrap(), b"{not json");
    }
}
