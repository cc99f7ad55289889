"""What deploy/ promises beyond the Kubernetes schemas (tests/deploy.rs).

Usage: check.py kubernetes MANIFEST | compose COMPOSE_FILE
Exits 1 naming every broken promise, 0 printing "ok" otherwise.

Kubernetes: the pod passes the "restricted" Pod Security Standard (the
checks of https://kubernetes.io/docs/concepts/security/pod-security-standards/
that apply to these fields), pulls with an explicit policy, has probes on
/livez (liveness) and /readyz (readiness), requests and limits, and its PDB
lets a drain evict unready pods. Compose: lock and broker on one Redis db,
host ports for the dashboard, a worker image built once.
"""

import sys

import yaml

problems = []


def need(ok, what):
    if not ok:
        problems.append(what)


def restricted(pod):
    psc = pod.get("securityContext", {})
    need(pod.get("hostNetwork") is not True and pod.get("hostPID") is not True, "host namespaces")
    for v in pod.get("volumes", []):
        kinds = set(v) - {"name"}
        need(kinds <= {"configMap", "secret", "emptyDir", "projected", "downwardAPI",
                       "persistentVolumeClaim", "ephemeral", "csi"}, f"volume type {kinds}")
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c.get("securityContext", {})
        name = c["name"]
        need(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation must be false")
        need(sc.get("privileged") is not True, f"{name}: privileged")
        need("ALL" in sc.get("capabilities", {}).get("drop", []), f"{name}: capabilities.drop must hold ALL")
        need(not (set(sc.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}), f"{name}: added capabilities")
        non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        need(non_root is True, f"{name}: runAsNonRoot must be true")
        need(sc.get("runAsUser", psc.get("runAsUser", 1)) != 0, f"{name}: runAsUser 0")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        need(seccomp in ("RuntimeDefault", "Localhost"), f"{name}: seccompProfile must be RuntimeDefault")
        need(c.get("imagePullPolicy") in ("Always", "IfNotPresent", "Never"), f"{name}: imagePullPolicy")
        need(not c["image"].endswith(":latest") and ":" in c["image"], f"{name}: image needs a pinned tag")
        res = c.get("resources", {})
        need({"cpu", "memory"} <= set(res.get("requests", {})), f"{name}: cpu and memory requests")
        need("memory" in res.get("limits", {}), f"{name}: a memory limit")
        live = c.get("livenessProbe", {}).get("httpGet", {}).get("path")
        ready = c.get("readinessProbe", {}).get("httpGet", {}).get("path")
        need(live == "/livez", f"{name}: liveness on /livez, found {live}")
        need(ready == "/readyz", f"{name}: readiness on /readyz, found {ready}")


def kubernetes(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    kinds = {d["kind"]: d for d in docs}
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    restricted(pod)
    pdb = kinds["PodDisruptionBudget"]["spec"]
    need(pdb.get("unhealthyPodEvictionPolicy") == "AlwaysAllow", "PDB: unhealthyPodEvictionPolicy AlwaysAllow")
    need(pdb.get("maxUnavailable", 0) >= 1 or pdb.get("minAvailable", 2) < kinds["Deployment"]["spec"]["replicas"],
         "PDB: must let one pod go")


def db_of(url):
    rest = url.split("://", 1)[1].split("?", 1)[0]
    return rest.split("@")[-1], (rest.split("/", 1) + ["0"])[1] or "0"


def compose(path):
    c = yaml.safe_load(open(path))["services"]
    env = c["metronome"]["environment"]
    need(db_of(env["METRONOME_LOCK_URL"]) == db_of(env["METRONOME_BROKER_URL"]),
         "compose: lock and broker must share the same Redis server and db")
    need(bool(c["metronome"].get("ports")), "compose: metronome needs ports:")
    worker = c["worker"]
    need("build" in worker, "compose: the worker image is built")
    need("pip install" not in str(worker.get("command", "")), "compose: no pip install at start")


kind, path = sys.argv[1], sys.argv[2]
{"kubernetes": kubernetes, "compose": compose}[kind](path)
if problems:
    print("\n".join(problems))
    sys.exit(1)
print("ok")
