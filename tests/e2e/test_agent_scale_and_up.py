"""Whole-system runs: 1,000 hollow nodes register, stay Ready and run scheduled pods; and
`arktos up` (with its own agent) runs a real busybox pod end to end, as `make up` does."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.apiserver_proc import ApiServerProcess, ComponentProcess
from tests.e2e.rest import Rest
from tests.e2e.test_controller_manager import wait_for

pytestmark = [pytest.mark.e2e]
HOLLOW = 1000


def ready_nodes(rest: Rest, prefix: str) -> int:
    items = rest.ok(rest.get("/api/v1/nodes"))["items"]
    return sum(1 for n in items if n["metadata"]["name"].startswith(prefix) and {
        c["type"]: c["status"] for c in n.get("status", {}).get("conditions", [])
    }.get("Ready") == "True")


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {
        "containers": [{"name": "c", "image": "localhost/busybox:latest",
                        "resources": {"requests": {"cpu": "10m"}}}], **spec}}


@pytest.mark.xdist_group("hollow-scale")
def test_thousand_hollow_nodes_stay_ready_and_run_pods(tmp_path: Path) -> None:
    server = ApiServerProcess(tmp_path, command="up", extra_args=("--no-agent",)).start()
    prefix = "hollow-k-"
    agent = ComponentProcess("hollow", [
        "agent", "--kubeconfig", str(server.kubeconfig), "--hollow", "--count", str(HOLLOW),
        "--name-prefix", prefix, "--lease-renew-interval", "2"], tmp_path).start()
    rest = Rest(server.url)
    try:
        wait_for(lambda: ready_nodes(rest, prefix) == HOLLOW, timeout=90,
                 what=f"{HOLLOW} hollow nodes Ready")
        for i in range(200):
            rest.ok(rest.post("/api/v1/namespaces/default/pods", pod(f"p{i}")))

        def all_running() -> bool:
            items = rest.ok(rest.get("/api/v1/namespaces/default/pods"))["items"]
            return len(items) == 200 and all(
                p.get("status", {}).get("phase") == "Running"
                and p["spec"].get("nodeName", "").startswith(prefix) for p in items)
        wait_for(all_running, timeout=90, what="200 pods Running on hollow nodes")
        time.sleep(5)  # a few lease renewals later, every node is still Ready
        assert ready_nodes(rest, prefix) == HOLLOW
        lease = rest.ok(rest.get(
            "/apis/coordination.k8s.io/v1/tenants/system/namespaces/kube-node-lease/leases/"
            "hollow-k-999"))
        assert lease["spec"]["holderIdentity"] == "hollow-k-999"
    finally:
        assert agent.stop() == 0, agent.log_text()[-3000:]
        server.stop()


@pytest.mark.xdist_group("podman")
def test_arktos_up_runs_a_real_workload(tmp_path: Path) -> None:
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: apt-get install podman runc iptables catatonit")
    server = ApiServerProcess(tmp_path, command="up").start()
    node = socket.gethostname().lower()
    rest = Rest(server.url)
    try:
        wait_for(lambda: ready_nodes(rest, node) == 1, timeout=120, what="the node Ready")
        kubectl = ["kubectl", "--kubeconfig", str(server.kubeconfig)]
        subprocess.run([*kubectl, "run", "hello", "--image", "localhost/busybox:latest",
                        "--restart", "Never", "--", "echo", "hello from make up"],
                       check=True, capture_output=True, timeout=60)

        def succeeded() -> bool:
            got = rest.ok(rest.get("/api/v1/namespaces/default/pods/hello"))
            return bool(got.get("status", {}).get("phase") == "Succeeded")
        wait_for(succeeded, timeout=90, what="pod hello Succeeded")
        logs = subprocess.run([*kubectl, "logs", "hello"], capture_output=True, text=True,
                              timeout=60, check=False)
        assert logs.stdout == "hello from make up\n", logs
        subprocess.run([*kubectl, "delete", "pod", "hello"], check=True, capture_output=True,
                       timeout=60)
    finally:
        server.stop()
