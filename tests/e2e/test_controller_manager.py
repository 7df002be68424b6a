"""The controller manager as a process against a real API server, driven with kubectl."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apiserver_proc import ApiServerProcess, ComponentProcess
from tests.e2e.rest import Rest, configmap


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ApiServerProcess]:
    server = ApiServerProcess(tmp_path).start()
    yield server
    server.stop()


def manager(server: ApiServerProcess, name: str = "cm", *extra: str) -> ComponentProcess:
    return ComponentProcess(name, ["controller-manager", "--kubeconfig", str(server.kubeconfig),
                                   "--leader-elect-lease-duration", "3",
                                   "--leader-elect-renew-deadline", "2",
                                   "--leader-elect-retry-period", "0.5", *extra],
                            server.data_dir).start()


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.2)


class FakeAgent(threading.Thread):
    """Plays the node agent for pods of one namespace: marks every pod Running and Ready."""

    def __init__(self, rest: Rest, namespace: str) -> None:
        super().__init__(daemon=True)
        self.rest, self.namespace, self.running = rest, namespace, True

    def run(self) -> None:
        while self.running:
            pods = self.rest.get(f"/api/v1/namespaces/{self.namespace}/pods").json()
            for pod in pods.get("items", []):
                if (pod.get("status") or {}).get("phase") != "Running":
                    pod["status"] = {"phase": "Running", "conditions": [
                        {"type": "Ready", "status": "True"}]}
                    self.rest.put(f"/api/v1/namespaces/{self.namespace}/pods/"
                                  f"{pod['metadata']['name']}/status", pod)
            time.sleep(0.2)


def kubectl(server: ApiServerProcess, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["kubectl", "--kubeconfig", str(server.kubeconfig), *args],
                          input=stdin, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: apps}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.25"}]}
"""


def _pods(rest: Rest, ns: str = "apps") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = rest.ok(rest.get(f"/api/v1/namespaces/{ns}/pods"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def _replicasets(rest: Rest, ns: str = "apps") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = rest.ok(rest.get(
        f"/apis/apps/v1/namespaces/{ns}/replicasets"))["items"]
    return items


def test_deployment_lifecycle(cluster: ApiServerProcess) -> None:
    rest = Rest(cluster.url)
    cm = manager(cluster)
    agent = FakeAgent(rest, "apps")
    agent.start()
    try:
        kubectl(cluster, "create", "namespace", "apps")
        kubectl(cluster, "apply", "-f", "-", stdin=DEPLOYMENT)
        wait_for(lambda: len(_replicasets(rest)) == 1 and len(_pods(rest)) == 3, 5, "3 pods")
        kubectl(cluster, "scale", "deployment/web", "--replicas=5", "-n", "apps")
        wait_for(lambda: len(_pods(rest)) == 5, what="5 pods")
        kubectl(cluster, "scale", "deployment/web", "--replicas=3", "-n", "apps")
        wait_for(lambda: len(_pods(rest)) == 3, what="back to 3 pods")
        kubectl(cluster, "set", "image", "deployment/web", "web=nginx:1.26", "-n", "apps")
        out = kubectl(cluster, "rollout", "status", "deployment/web", "-n", "apps",
                      "--timeout=60s")
        assert "successfully rolled out" in out
        rsets = _replicasets(rest)
        assert len(rsets) == 2
        assert sorted(rs["spec"]["replicas"] for rs in rsets) == [0, 3]
        images = {p["spec"]["containers"][0]["image"] for p in _pods(rest)}
        assert images == {"nginx:1.26"}
        kubectl(cluster, "delete", "deployment", "web", "-n", "apps")
        wait_for(lambda: not _replicasets(rest) and not _pods(rest), what="cascade")
    finally:
        agent.running = False
        cm.stop()


def test_orphan_cascade_leaves_dependents(cluster: ApiServerProcess) -> None:
    rest = Rest(cluster.url)
    cm = manager(cluster)
    try:
        kubectl(cluster, "create", "namespace", "apps")
        kubectl(cluster, "apply", "-f", "-", stdin=DEPLOYMENT)
        wait_for(lambda: len(_pods(rest)) == 3, what="3 pods")
        kubectl(cluster, "delete", "deployment", "web", "-n", "apps", "--cascade=orphan")
        wait_for(lambda: rest.get("/apis/apps/v1/namespaces/apps/deployments/web")
                 .status_code == 404, what="deployment gone")
        rsets = wait_for(lambda: [rs for rs in _replicasets(rest)
                                  if not rs["metadata"].get("ownerReferences")], what="orphan")
        assert len(rsets) == 1 and len(_pods(rest)) == 3
    finally:
        cm.stop()


def test_tenant_lifecycle(cluster: ApiServerProcess) -> None:
    rest = Rest(cluster.url)
    cm = manager(cluster)
    try:
        for t in ("acme", "other"):
            rest.ok(rest.post("/api/v1/tenants", {"metadata": {"name": t}, "spec": {}}))
        wait_for(lambda: rest.names("/api/v1/tenants/acme/namespaces") ==
                 ["default", "kube-public", "kube-system"], what="tenant namespaces")
        rbac = "/apis/rbac.authorization.k8s.io/v1/tenants/acme"
        wait_for(lambda: rest.names(f"{rbac}/clusterroles") == ["admin", "admin-role", "edit",
                                                                 "view"])
        wait_for(lambda: rest.names(f"{rbac}/clusterrolebindings") == ["admin-role-binding"])
        wait_for(lambda: "default" in rest.names("/api/v1/tenants/other/namespaces"))
        for t in ("acme", "other"):
            rest.ok(rest.post(f"/api/v1/tenants/{t}/namespaces/default/configmaps",
                              configmap("keep")))
        rest.ok(rest.delete("/api/v1/tenants/acme"))
        wait_for(lambda: rest.get("/api/v1/tenants/acme").status_code == 404, 30,
                 "tenant removed")
        assert rest.names("/api/v1/tenants/acme/configmaps") == []
        assert rest.names("/api/v1/tenants/acme/namespaces") == []
        assert rest.names("/api/v1/tenants/other/configmaps") == ["keep"]
    finally:
        cm.stop()


def test_restart_mid_rollout_converges(cluster: ApiServerProcess) -> None:
    rest = Rest(cluster.url)
    agent = FakeAgent(rest, "apps")
    agent.start()
    cm = manager(cluster)
    try:
        kubectl(cluster, "create", "namespace", "apps")
        kubectl(cluster, "apply", "-f", "-", stdin=DEPLOYMENT.replace("replicas: 3",
                                                                        "replicas: 10"))
        wait_for(lambda: len(_pods(rest)) == 10, what="10 pods")
        kubectl(cluster, "set", "image", "deployment/web", "web=nginx:1.26", "-n", "apps")
        wait_for(lambda: len(_replicasets(rest)) == 2, what="rollout started")
        cm.stop(signal.SIGKILL)
        cm = manager(cluster, "cm2")
        out = kubectl(cluster, "rollout", "status", "deployment/web", "-n", "apps",
                      "--timeout=60s")
        assert "successfully rolled out" in out
        pods = _pods(rest)
        assert len(pods) == 10
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.26"}
    finally:
        agent.running = False
        cm.stop()


def test_two_managers_never_both_act(cluster: ApiServerProcess) -> None:
    rest = Rest(cluster.url)
    first = manager(cluster, "cm-a")
    wait_for(lambda: "became leader" in first.log_text(), what="first leader")
    second = manager(cluster, "cm-b")
    try:
        kubectl(cluster, "create", "namespace", "apps")
        kubectl(cluster, "apply", "-f", "-", stdin=DEPLOYMENT.replace("replicas: 3",
                                                                        "replicas: 20"))
        wait_for(lambda: len(_pods(rest)) == 20, what="20 pods")
        time.sleep(1.5)
        assert len(_pods(rest)) == 20 and len(_replicasets(rest)) == 1
        assert "became leader" not in second.log_text()
        first.stop(signal.SIGKILL)
        wait_for(lambda: "became leader" in second.log_text(), 15, "takeover")
        kubectl(cluster, "scale", "deployment/web", "--replicas=25", "-n", "apps")
        wait_for(lambda: len(_pods(rest)) == 25, what="25 pods")
        lease = rest.ok(rest.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/"
                                 "arktos-controller-manager"))
        assert lease["spec"]["leaseTransitions"] >= 1
    finally:
        second.stop()
