"""deploy/kubernetes, read as ``kubectl apply -k`` reads it, checked against the code it runs: every
container's arguments parse with its actor's own options; ZeroMQ between pods is CurveZMQ; the probes
match the launcher's bounds; the grace periods fit each actor's stop; the workers' total is the
StatefulSet's replicas. (deploy/test/run.sh runs the same files in containers.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from actors import runtime
from actors.algorithm.actor import DRAIN_TIMEOUT
from actors.algorithm.options import AlgorithmOptions, with_worker_from_env
from actors.api_server.actor import SHUTDOWN_TIMEOUT as API_SHUTDOWN
from actors.api_server.options import APIServerOptions
from actors.dashboard.actor import SHUTDOWN_TIMEOUT as DASHBOARD_SHUTDOWN
from actors.dashboard.options import DashboardOptions
from actors.data_manager.options import DataManagerOptions
from actors.kinds import BY_NAME
from actors.ledger.options import LedgerOptions
from actors.scheduler.options import SchedulerOptions
from deploy.test import kube
from deploy.test.run import POD_ROLES
from repricer_supervisor.policy import RestartPolicy
from tests.helpers import REPO
from transport.endpoints import is_loopback

OPTIONS: dict[str, type[Any]] = {"scheduler": SchedulerOptions, "datamanager": DataManagerOptions,
                                 "apiserver": APIServerOptions, "ledger": LedgerOptions, "algorithm": AlgorithmOptions,
                                 "dashboard": DashboardOptions}
DOCS = kube.load(REPO / "deploy" / "kubernetes")
PODS = [doc for doc in DOCS if kube.pod_spec(doc) is not None]
CONTAINERS = [(doc, container) for doc in PODS for container in kube.containers(doc)]


def parsed(container: dict[str, Any]) -> tuple[Any, runtime.RuntimeOptions]:
    actor, *argv = container["args"]
    return runtime.parse_options(BY_NAME[actor], OPTIONS[actor], None, argv)


def test_one_workload_per_actor_with_the_image() -> None:
    actors = sorted(container["args"][0] for _, container in CONTAINERS)
    assert actors == sorted(OPTIONS)
    assert {container["image"] for _, container in CONTAINERS} == {"book-repricer:0.1.0"}  # kustomize's images


@pytest.mark.parametrize(("doc", "container"), CONTAINERS,
                         ids=[f"{doc['metadata']['name']}/{container['name']}" for doc, container in CONTAINERS])
def test_the_arguments_parse_and_zeromq_between_pods_is_encrypted(doc: dict[str, Any], container: dict[str, Any],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    options, run = parsed(container)
    names = ("ticks_endpoint", "data_endpoint", "ledger_endpoint")
    endpoints = [value for name in names if isinstance(value := getattr(options, name, None), str)
                 and value.startswith("tcp://")]
    assert "warning" not in capsys.readouterr().err  # no deprecated flag name
    if endpoints:
        assert not any(is_loopback(e) for e in endpoints)
        assert run.keys == "/var/run/repricer/keys" and run.authorized_keys == "/var/run/repricer/authorized"
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert {run.keys, run.authorized_keys} <= set(mounts)
        # Issue 20: each pod holds its own role's key pair only (a Secret per role), and the public keys.
        spec = kube.pod_spec(doc)
        assert spec is not None
        secrets = {v["name"]: v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
        assert secrets[mounts[run.keys]] == f"repricer-curve-{container['args'][0]}"
        assert secrets[mounts[run.authorized_keys]] == "repricer-curve-authorized"
    assert run.health_port is not None and run.health_host == "0.0.0.0"
    probes = {name: container[name] for name in ("startupProbe", "livenessProbe", "readinessProbe")}
    for probe in probes.values():
        port = probe["httpGet"]["port"]
        named = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        assert named.get(port, port) == run.health_port
    live, start = probes["livenessProbe"], probes["startupProbe"]
    policy = RestartPolicy()  # the launcher's bounds, kept by the orchestrator
    assert live["httpGet"]["path"] == "/livez" and probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert live["timeoutSeconds"] == live["periodSeconds"] == 1
    assert live["periodSeconds"] * live["failureThreshold"] == policy.time_to_dead
    assert start["periodSeconds"] * start["failureThreshold"] == policy.startup_timeout
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert kube.pod_spec(doc)["securityContext"]["runAsNonRoot"] is True  # type: ignore[index]


def test_the_dashboard_reads_the_ledger_over_its_service_not_its_volume() -> None:
    dashboard = kube.containers(kube.find(DOCS, "Deployment", "dashboard"))[0]
    options, _ = parsed(dashboard)
    ledger = kube.find(DOCS, "Service", "ledger")["spec"]["ports"][0]["port"]
    assert options.ledger_endpoint == f"tcp://ledger:{ledger}"
    assert not any(m["name"] == "db" for m in dashboard["volumeMounts"])  # another node may run it


def test_the_workers_total_is_the_replicas_and_the_index_the_pod_name() -> None:
    workers = kube.find(DOCS, "StatefulSet", "algorithm")
    options, _ = parsed(kube.containers(workers)[0])
    assert options.workers_total == workers["spec"]["replicas"]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in kube.containers(workers)[0]["env"]}
    assert env[options.worker_from_env] == "metadata.name"
    last = with_worker_from_env(options, {"POD_NAME": f"algorithm-{workers['spec']['replicas'] - 1}"})
    assert last.worker == options.workers_total - 1
    assert kube.find(DOCS, "StatefulSet", "ledger")["spec"]["replicas"] == 1  # one writer


def grace(name: str) -> int:
    for doc in PODS:
        if doc["metadata"]["name"] == name:
            value: int = kube.pod_spec(doc)["terminationGracePeriodSeconds"]  # type: ignore[index]
            return value
    raise KeyError(name)


def test_each_grace_period_fits_the_actors_stop() -> None:
    # The Algorithm's stop: decisions in flight, then the spool, the Ledger's outbox, then stdout, each
    # bounded by its drain timeout (actors.algorithm.actor.Algorithm.run); the others stop in about a second.
    assert grace("algorithm") >= 4 * DRAIN_TIMEOUT + 3
    assert grace("apiserver") >= 2 * API_SHUTDOWN + 3
    assert grace("dashboard") >= DASHBOARD_SHUTDOWN + 3
    assert min(grace(name) for name in ("scheduler", "datamanager", "ledger")) >= 3


def test_the_rendering_for_podman_keeps_what_the_test_relies_on() -> None:
    secrets = {f"repricer-curve-{role}": Path(f"/k/{role}") for role in POD_ROLES}
    pods = kube.render_for_podman(DOCS, {**secrets, "repricer-curve-authorized": Path("/a")})
    names = [doc["metadata"]["name"] for doc in pods if doc["kind"] == "Pod"]
    assert names == ["scheduler", "datamanager", "apiserver", "ledger", "algorithm-0", "algorithm-1", "dashboard"]
    worker = next(doc for doc in pods if doc["metadata"]["name"] == "algorithm-1")
    assert worker["metadata"]["labels"][kube.POD_INDEX_LABEL] == "1"
    assert "livenessProbe" not in worker["spec"]["containers"][0]
    ledger = next(doc for doc in pods if doc["metadata"]["name"] == "ledger")
    volumes = {v["name"]: v for v in ledger["spec"]["volumes"]}
    assert volumes["db"] == {"name": "db", "persistentVolumeClaim": {"claimName": "db-ledger-0"}}
    assert volumes["keys"]["hostPath"]["path"] == "/k/ledger"  # its own role's key pair, no other


def test_the_lock_pins_every_dependency_of_the_project() -> None:
    """deploy/requirements.lock is regenerated when pyproject.toml's dependencies change
    (docs/kubernetes.md says how): the image installs only what the lock pins, with --no-deps."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = {canonical(re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}
    lock = (REPO / "deploy" / "requirements.lock").read_text(encoding="utf-8")
    pinned = {canonical(line.split("==")[0]) for line in lock.splitlines() if "==" in line and not line.startswith(" ")}
    assert wanted <= pinned, sorted(wanted - pinned)
    assert all("--hash=sha256:" in block for block in lock.split("==")[1:])  # every pin with its hashes


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
