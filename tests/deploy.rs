//! The deploy files work as written: the Kubernetes manifests validate
//! against the Kubernetes OpenAPI schemas (`kubernetes-validate --strict`,
//! PyPI), the pod meets the "restricted" Pod Security Standard with probes
//! on `/livez` and `/readyz` and a PDB that lets drains evict unready pods,
//! and docker-compose puts the lock on the broker's Redis db, publishes
//! the dashboard's ports and builds the worker once (`tests/deploy/check.py`).
//! Each check is also run on a broken copy, which it must refuse.

use std::path::Path;
use std::process::Command;

use crate::util::process::output_text;
use crate::util::python::venv_bin;
use crate::util::repo;

const MANIFEST: &str = "deploy/kubernetes/metronome.yaml";
const COMPOSE: &str = "deploy/docker-compose.yml";

/// Runs `tool args... file`: (success, output).
fn run(tool: &Path, args: &[&str], file: &Path) -> (bool, String) {
    let out = Command::new(tool)
        .current_dir(repo())
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", tool.display()));
    (out.status.success(), output_text(&out))
}

/// `file`'s text with `from` replaced by `to`, written to a temporary file.
fn broken(dir: &tempfile::TempDir, file: &str, from: &str, to: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    assert!(text.contains(from), "{file} lacks {from:?}");
    let p = dir.path().join(Path::new(file).file_name().unwrap());
    std::fs::write(&p, text.replace(from, to)).unwrap();
    p
}

/// `check` passes `file` as it is and refuses each broken copy (`from`
/// replaced by `to`) with output containing `says`.
fn passes_and_refuses(
    check: impl Fn(&Path) -> (bool, String),
    file: &str,
    broken_copies: &[(&str, &str, &str)],
) {
    let (ok, out) = check(&repo().join(file));
    assert!(ok, "{out}");
    let dir = tempfile::tempdir().unwrap();
    for (from, to, says) in broken_copies {
        let (ok, out) = check(&broken(&dir, file, from, to));
        assert!(
            !ok && out.contains(says),
            "{from:?} -> {to:?} passed: {out}"
        );
    }
}

#[test]
fn kubernetes_manifests_validate_against_the_openapi_schemas() {
    let Some(validate) = venv_bin("kubernetes-validate", "manifest validation") else {
        return;
    };
    let strict = ["--strict", "--quiet"];
    passes_and_refuses(
        |f| run(&validate, &strict, f),
        MANIFEST,
        &[
            (
                "imagePullPolicy:",
                "imagePullPolcy:",
                "'imagePullPolcy' was unexpected",
            ),
            (
                "replicas: 2",
                "replicas: two",
                "'two' is not of type 'integer'",
            ),
        ],
    );
}

#[test]
fn the_pod_is_restricted_its_probes_split_and_its_pdb_lets_drains_through() {
    let Some(python) = venv_bin("python", "deploy file checks") else {
        return;
    };
    let check = repo().join("tests/deploy/check.py");
    let kube = |file: &Path| {
        let check = check.display().to_string();
        run(&python, &[&check, "kubernetes"], file)
    };
    passes_and_refuses(
        kube,
        MANIFEST,
        &[
            (
                "seccompProfile: {type: RuntimeDefault}",
                "seccompProfile: {type: Unconfined}",
                "seccompProfile must be RuntimeDefault",
            ),
            (
                "unhealthyPodEvictionPolicy: AlwaysAllow",
                "unhealthyPodEvictionPolicy: IfHealthyBudget",
                "AlwaysAllow",
            ),
            (
                "path: /livez, port: http}\n            periodSeconds: 10",
                "path: /readyz, port: http}\n            periodSeconds: 10",
                "liveness on /livez",
            ),
            (
                "imagePullPolicy: IfNotPresent",
                "imagePullPolicy: Sometimes",
                "imagePullPolicy",
            ),
            (
                "allowPrivilegeEscalation: false",
                "allowPrivilegeEscalation: true",
                "allowPrivilegeEscalation",
            ),
        ],
    );
}

#[test]
fn compose_shares_the_broker_db_publishes_ports_and_builds_the_worker() {
    let Some(python) = venv_bin("python", "deploy file checks") else {
        return;
    };
    let check = repo().join("tests/deploy/check.py").display().to_string();
    let compose = |file: &Path| run(&python, &[&check, "compose"], file);
    passes_and_refuses(
        compose,
        COMPOSE,
        &[
            (
                "METRONOME_LOCK_URL: redis://redis:6379/0",
                "METRONOME_LOCK_URL: redis://redis:6379/1",
                "same Redis",
            ),
            (
                "build: ./celery",
                "image: python:3.12-slim\n    command: pip install celery",
                "built",
            ),
        ],
    );
}
