//! `--pidfile`, as celery beat's: the process id written at start, the
//! start refused while the file names a live process (a stale file is
//! replaced), and the file removed at exit.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::LOG_TARGET;

/// The pid file, removed when dropped if it still holds this process's id.
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes this process's id to `path`; fails if the file names
    /// another process that is alive.
    pub fn create(path: &Path) -> anyhow::Result<PidFile> {
        let me = std::process::id();
        if let Ok(text) = std::fs::read_to_string(path) {
            match text.trim().parse::<u32>() {
                Ok(pid) if pid != me && alive(pid) => bail!(
                    "pid file {} names process {pid}, which is running: is another metronome running? (remove the file if not)",
                    path.display()
                ),
                _ => {
                    tracing::warn!(target: LOG_TARGET, pidfile = %path.display(), "replacing a stale pid file")
                }
            }
        }
        // Written beside it and renamed: a reader never sees half a pid.
        let tmp = path.with_extension("pid.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            writeln!(f, "{me}")?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().with_context(|| format!("cannot write pid file {}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            == Some(std::process::id());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether process `pid` exists. Without `/proc` (not Linux) every pid
/// counts as alive, so a leftover file must be removed by hand.
fn alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}
