//! Python for tests: which interpreter (`PYTHON`, default `python3`), and
//! the Celery venv built once by `.ci/celery-venv.sh` under a file lock.
//! Invariant: a missing Python is a loud skip on a laptop, a failure in CI.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::process::run_ok;
use super::{ci, repo};

/// The Python interpreter to run.
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether [`python`] runs; if not, asserts this is not CI and prints a
/// loud message naming `what` is skipped.
pub fn have_python(what: &str) -> bool {
    let python = python();
    let ok = Command::new(&python)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !ci(),
            "CI is set but `{python}` is missing: {what} cannot run"
        );
        eprintln!(
            "\n\n!!! SKIPPING {what}: `{python}` not found. Install Python 3 to run it. !!!\n"
        );
    }
    ok
}

/// The venv's `celery` executable, creating the venv with
/// `.ci/celery-venv.sh` if needed. `None` (with a loud message) only when
/// Python is missing entirely and CI is not set; any other failure panics.
pub fn celery() -> Option<PathBuf> {
    venv_bin("celery", "Celery end-to-end test")
}

/// The venv's executable `name` (`python`, `kubernetes-validate`, …), as
/// [`celery`] for `what`.
pub fn venv_bin(name: &str, what: &str) -> Option<PathBuf> {
    if !have_python(what) {
        return None;
    }
    let venv = repo().join(".venv-celery");
    let lock = File::create(repo().join("target").join(".celery-venv.lock"))
        .or_else(|_| File::create(std::env::temp_dir().join("metronome-celery-venv.lock")))
        .expect("lock file for the venv");
    lock.lock().expect("lock the venv lock file");
    run_ok(
        Command::new("bash")
            .arg(repo().join(".ci/celery-venv.sh"))
            .arg(&venv),
    );
    drop(lock);
    Some(venv.join("bin").join(name))
}
