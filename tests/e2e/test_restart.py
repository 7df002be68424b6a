"""Durability: a clean restart keeps everything; kill -9 loses no acknowledged write."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest
import requests

from tests.apiserver_proc import ApiServerProcess
from tests.e2e.rest import Rest, configmap


@pytest.mark.parametrize("backend", ["sqlite", "etcd"])
def test_restart_keeps_objects_and_versions(tmp_path: Path, backend: str,
                                            request: pytest.FixtureRequest) -> None:
    storage = request.getfixturevalue("etcd") if backend == "etcd" else ""
    server = ApiServerProcess(tmp_path, storage, command="up",
                            extra_args=("--no-agent",)).start()
    rest = Rest(server.url)
    rest.ok(rest.post("/api/v1/namespaces", {"metadata": {"name": "keep"}}))
    before = rest.ok(rest.post("/api/v1/namespaces/keep/configmaps", configmap("c")))
    list_rv = int(rest.ok(rest.get("/api/v1/namespaces/keep/configmaps"))["metadata"]
                  ["resourceVersion"])
    assert server.stop() == 0
    assert server.kubeconfig.exists()
    server.start()
    after = rest.ok(rest.get("/api/v1/namespaces/keep/configmaps/c"))
    assert after == before
    new = rest.ok(rest.post("/api/v1/namespaces/keep/configmaps", configmap("d")))
    assert int(new["metadata"]["resourceVersion"]) > list_rv
    gone = list(rest.watch("/api/v1/namespaces/keep/configmaps", resourceVersion="1",
                           timeoutSeconds=1))
    assert gone[0]["type"] == "ERROR" and gone[0]["object"]["code"] == 410
    server.stop()


def test_kill_during_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    server = ApiServerProcess(tmp_path).start()
    acked: list[str] = []
    stop = threading.Event()

    def writer(idx: int) -> None:
        rest = Rest(server.url)
        n = 0
        while not stop.is_set():
            name = f"w{idx}-{n}"
            try:
                resp = rest.post("/api/v1/namespaces/default/configmaps", configmap(name))
            except requests.RequestException:
                return
            if resp.status_code == 201:
                acked.append(name)
            n += 1

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    while len(acked) < 300:
        threading.Event().wait(0.05)
    server.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join()
    server.start()
    rest = Rest(server.url)
    present = set(rest.names("/api/v1/namespaces/default/configmaps"))
    assert set(acked) <= present
    server.stop()


def test_a_restart_restores_the_default_roles_unless_told_not_to(tmp_path: Path) -> None:
    server = ApiServerProcess(tmp_path).start()
    rest = Rest(server.url)
    roles = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    original = rest.ok(rest.get(f"{roles}/system:node"))["rules"]
    rest.ok(rest.patch(f"{roles}/system:node", {"rules": original[:1]}))
    rest.ok(rest.patch(f"{roles}/system:kube-scheduler", {
        "metadata": {"annotations": {"rbac.authorization.kubernetes.io/autoupdate": "false"}},
        "rules": original[:1]}))
    server.stop()
    server.start()
    assert rest.ok(rest.get(f"{roles}/system:node"))["rules"] == original
    assert rest.ok(rest.get(f"{roles}/system:kube-scheduler"))["rules"] == original[:1]
    server.stop()
