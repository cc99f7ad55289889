//! Run state in a local JSON file, for standalone (`--no-lock`) use.
//!
//! Writes go to a temporary file that is synced and renamed over the old
//! one, so a crash leaves either the old or the new state, never half. The
//! file is locked while open, so two standalone instances cannot share it.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use super::EntryState;

/// Errors of the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("state file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path} is not valid: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("state file {path} is in use by another metronome instance (lock file {lock} is held)")]
    Locked { path: PathBuf, lock: PathBuf },
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Contents {
    version: u32,
    entries: BTreeMap<String, EntryState>,
}

/// An open, locked state file.
pub struct StateFile {
    path: PathBuf,
    _lock: File,
}

impl StateFile {
    /// Opens (creating if needed) and locks the state file at `path`.
    pub fn open(path: &Path) -> Result<(StateFile, BTreeMap<String, EntryState>), StateFileError> {
        let io = |source| StateFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let lock_path = lock_path(path);
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
        let entries = match fs::read(path) {
            Ok(bytes) if bytes.is_empty() => BTreeMap::new(),
            Ok(bytes) => {
                let c: Contents =
                    serde_json::from_slice(&bytes).map_err(|source| StateFileError::Corrupt {
                        path: path.to_path_buf(),
                        source,
                    })?;
                c.entries
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(e)),
        };
        Ok((
            StateFile {
                path: path.to_path_buf(),
                _lock: lock,
            },
            entries,
        ))
    }

    /// Replaces the file's contents with `entries`, durably.
    pub fn save<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a str, &'a EntryState)>,
    ) -> Result<(), StateFileError> {
        let io = |source| StateFileError::Io {
            path: self.path.clone(),
            source,
        };
        // Serialized straight from the borrowed states (no copy of the
        // map): the same document as `Contents`, entries in the caller's order.
        struct Entries<I>(std::cell::Cell<Option<I>>);
        impl<'a, I: Iterator<Item = (&'a str, &'a EntryState)>> serde::Serialize for Entries<I> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.take().expect("serialized once"))
            }
        }
        #[derive(serde::Serialize)]
        struct Borrowed<I: serde::Serialize> {
            version: u32,
            entries: I,
        }
        let c = Borrowed {
            version: 1,
            entries: Entries(std::cell::Cell::new(Some(entries.into_iter()))),
        };
        let tmp = self.path.with_extension("tmp");
        let f = File::create(&tmp).map_err(io)?;
        let mut w = std::io::BufWriter::with_capacity(256 * 1024, f);
        serde_json::to_writer(&mut w, &c).map_err(|e| io(e.into()))?;
        let f = w.into_inner().map_err(|e| io(e.into_error()))?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Make the rename itself durable.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_locks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let (f, entries) = StateFile::open(&path).unwrap();
        assert!(entries.is_empty());
        let st = EntryState {
            total_runs: 3,
            cursor: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            ..Default::default()
        };
        f.save([("a", &st)]).unwrap();
        match StateFile::open(&path) {
            Err(StateFileError::Locked { .. }) => {}
            other => panic!("expected a lock error, got {:?}", other.map(|_| ())),
        }
        drop(f);
        let (_f, entries) = StateFile::open(&path).unwrap();
        assert_eq!(entries.get("a"), Some(&st));
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
