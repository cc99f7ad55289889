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

#[test]
fn kubernetes_manifests_validate_against_the_openapi_schemas() {
    let Some(validate) = venv_bin("kubernetes-validate", "manifest validation") else {
        return;
    };
    let strict = ["--strict", "--quiet"];
    let (ok, out) = run(&validate, &strict, &repo().join(MANIFEST));
    assert!(ok, "{out}");
    let dir = tempfile::tempdir().unwrap();
    for (from, to, says) in [
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
    ] {
        let (ok, out) = run(&validate, &strict, &broken(&dir, MANIFEST, from, to));
        assert!(!ok && out.contains(says), "{from} -> {to} passed: {out}");
    }
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
    let (ok, out) = kube(&repo().join(MANIFEST));
    assert!(ok, "{out}");
    let dir = tempfile::tempdir().unwrap();
    for (from, to, says) in [
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
    ] {
        let (ok, out) = kube(&broken(&dir, MANIFEST, from, to));
        assert!(
            !ok && out.contains(says),
            "{from:?} -> {to:?} passed: {out}"
        );
    }
}

#[test]
fn compose_shares_the_broker_db_publishes_ports_and_builds_the_worker() {
    let Some(python) = venv_bin("python", "deploy file checks") else {
        return;
    };
    let check = repo().join("tests/deploy/check.py").display().to_string();
    let compose = |file: &Path| run(&python, &[&check, "compose"], file);
    let (ok, out) = compose(&repo().join(COMPOSE));
    assert!(ok, "{out}");
    let dir = tempfile::tempdir().unwrap();
    for (from, to, says) in [
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
    ] {
        let (ok, out) = compose(&broken(&dir, COMPOSE, from, to));
        assert!(
            !ok && out.contains(says),
            "{from:?} -> {to:?} passed: {out}"
        );
    }
}
