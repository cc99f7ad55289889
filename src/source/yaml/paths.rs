//! Schedule paths as given (`--schedule`, `METRONOME_SCHEDULE`, `check`'s
//! arguments) to the files they name: a file stands for itself, a
//! directory for its `*.yaml` and `*.yml` files in name order.
//!
//! **Invariant**: the result is deterministic for a given directory
//! content (sorted by file name), and hidden entries (a name starting
//! with `.`, such as a Kubernetes ConfigMap's `..data`) are never read.

use std::path::{Path, PathBuf};

use super::{LoadError, LoadErrors};
use crate::syntax::Pos;

/// Each path, with directories replaced by their schedule files. A
/// directory without any is an error naming it; a path that does not
/// exist is kept (loading it reports "cannot read").
pub fn expand_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<PathBuf>, LoadErrors> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        let p = p.as_ref();
        if !p.is_dir() {
            out.push(p.to_path_buf());
            continue;
        }
        match schedule_files(p) {
            Ok(files) if files.is_empty() => errors.push(error(
                p,
                "the directory holds no schedule files (*.yaml, *.yml)".into(),
            )),
            Ok(files) => out.extend(files),
            Err(e) => errors.push(error(p, format!("cannot list the directory: {e}"))),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(LoadErrors(errors))
    }
}

fn error(dir: &Path, message: String) -> LoadError {
    LoadError {
        file: dir.display().to_string(),
        pos: Pos::default(),
        message,
    }
}

/// The `*.yaml` and `*.yml` files (or links to files) directly in `dir`,
/// sorted by name.
fn schedule_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let yaml = Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
        if yaml && !name.starts_with('.') && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_stands_for_its_yaml_files_in_name_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        for f in ["b.yml", "a.yaml", "c.txt", ".hidden.yaml", "D.YAML"] {
            std::fs::write(dir.join(f), "schedules: {}\n").unwrap();
        }
        std::fs::create_dir(dir.join("sub.yaml")).unwrap();
        let single = dir.join("a.yaml");
        let got = expand_paths(&[dir.clone(), single.clone()]).unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["D.YAML", "a.yaml", "b.yml", "a.yaml"]);
        let empty = dir.join("sub.yaml");
        let err = expand_paths(std::slice::from_ref(&empty)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}:1:1: the directory holds no schedule files (*.yaml, *.yml)",
                empty.display()
            )
        );
    }
}
