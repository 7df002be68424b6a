"""`arktos scheduler` against a real API server: placement of container and VM pods, the
unschedulable report and the retry when a node appears, fairness between tenants, and leader
election (two schedulers never both bind)."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.apiserver_proc import ApiServerProcess, ComponentProcess
from tests.e2e.rest import Rest
from tests.e2e.test_controller_manager import wait_for

pytestmark = pytest.mark.xdist_group("scheduler")


def node(name: str, *, cpu: str = "4", vm_ready: bool = True,
         labels: dict[str, str] | None = None) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True"},
                  {"type": "ContainerRuntimeReady", "status": "True"},
                  {"type": "VmRuntimeReady", "status": "True" if vm_ready else "False"}]
    resources = {"cpu": cpu, "memory": "16Gi", "pods": "110"}
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  **(labels or {})}},
            "status": {"capacity": resources, "allocatable": resources,
                       "conditions": conditions}}


def container_pod(name: str, cpu: str = "100m", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [
        {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}], **spec}}


def vm_pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"virtualMachine": {
        "name": "vm", "image": "tinyvm", "keyPairName": "key",
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}}}


def scheduler(server: ApiServerProcess, name: str = "scheduler",
              *extra: str) -> ComponentProcess:
    return ComponentProcess(name, ["scheduler", "--kubeconfig", str(server.kubeconfig),
                                   "--metrics-port", "0", *extra], server.data_dir).start()


def metrics(sched: ComponentProcess) -> dict[str, float]:
    """The scheduler's /metrics samples by name and labels."""
    url = wait_for(lambda: re.search(r"serving metrics on (\S+)", sched.log_text()),
                   what="metrics address").group(1)
    text = requests.get(url, timeout=5).text
    return {f"{s.name}{sorted(s.labels.items())}": s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ApiServerProcess]:
    server = ApiServerProcess(tmp_path).start()
    yield server
    server.stop()


def placements(rest: Rest, path: str = "/api/v1/namespaces/default/pods") -> dict[str, str]:
    return {p["metadata"]["name"]: p["spec"].get("nodeName", "")
            for p in rest.get(path).json()["items"]}


def test_pods_are_placed_where_they_fit(cluster: ApiServerProcess) -> None:
    rest = Rest(cluster.url)
    rest.ok(rest.post("/api/v1/nodes", node("vm-host", vm_ready=True)))
    for name in ("plain-1", "plain-2"):
        rest.ok(rest.post("/api/v1/nodes", node(name, vm_ready=False, labels={"disk": "ssd"})))
    pods = [vm_pod("vm-1"), vm_pod("vm-2"), container_pod("big", cpu="6"),
            container_pod("ssd", nodeSelector={"disk": "ssd"})]
    pods += [container_pod(f"c{i}", cpu="1") for i in range(6)]
    for pod in pods:
        rest.ok(rest.post("/api/v1/namespaces/default/pods", pod))
    sched = scheduler(cluster, "scheduler", "--no-leader-elect")
    try:
        wait_for(lambda: sum(1 for n in placements(rest).values() if n) == 9, what="9 bound")
        placed = placements(rest)
        assert placed["vm-1"] == placed["vm-2"] == "vm-host"
        assert placed["ssd"] in ("plain-1", "plain-2") and placed["big"] == ""
        big = rest.ok(rest.get("/api/v1/namespaces/default/pods/big"))
        [cond] = [c for c in big["status"]["conditions"] if c["type"] == "PodScheduled"]
        assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
        assert cond["message"] == "0/3 nodes are available: 3 Insufficient cpu."
        wait_for(lambda: any(e["reason"] == "FailedScheduling" and e["involvedObject"]["name"]
                             == "big" for e in rest.get("/api/v1/namespaces/default/events")
                             .json()["items"]), what="FailedScheduling event")
        rest.ok(rest.post("/api/v1/nodes", node("huge", cpu="16", vm_ready=False)))
        wait_for(lambda: placements(rest)["big"] == "huge", what="big placed on the new node")
        samples = metrics(sched)
        attempts = "scheduler_schedule_attempts_total[('profile', 'default-scheduler'), "
        assert samples[attempts + "('result', 'scheduled')]"] == 10
        assert samples[attempts + "('result', 'unschedulable')]"] >= 1
        assert samples["scheduler_pending_pods[('queue', 'active')]"] == 0
    finally:
        sched.stop()


def test_one_tenants_burst_does_not_starve_another(cluster: ApiServerProcess) -> None:
    rest = Rest(cluster.url)
    for i in range(100):
        rest.ok(rest.post("/api/v1/nodes", node(f"n{i}", cpu="64")))
    for tenant in ("burst", "calm"):
        rest.create_tenant(tenant)
    burst = "/api/v1/tenants/burst/namespaces/default/pods"
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: rest.ok(Rest(cluster.url).post(
            burst, container_pod(f"b{i}", cpu="10m"))), range(10_000)))
    calm = "/api/v1/tenants/calm/namespaces/default/pods"
    rest.ok(rest.post(calm, container_pod("single")))
    sched = scheduler(cluster, "scheduler", "--no-leader-elect")
    try:
        wait_for(lambda: placements(rest, calm)["single"], 30, "the calm tenant's pod")
        bound_burst = sum(1 for n in placements(rest, burst).values() if n)
        assert bound_burst < 2_000, f"{bound_burst} burst pods went before the calm one"
    finally:
        sched.stop()


def test_two_schedulers_never_both_bind(cluster: ApiServerProcess) -> None:
    rest = Rest(cluster.url)
    for i in range(5):
        rest.ok(rest.post("/api/v1/nodes", node(f"n{i}", cpu="100")))
    lease = ("--leader-elect-lease-duration", "3", "--leader-elect-renew-deadline", "2",
             "--leader-elect-retry-period", "0.5")
    first = scheduler(cluster, "sched-a", *lease)
    wait_for(lambda: "became leader" in first.log_text(), what="first leader")
    second = scheduler(cluster, "sched-b", *lease)
    try:
        for i in range(100):
            rest.ok(rest.post("/api/v1/namespaces/default/pods", container_pod(f"p{i}")))
        wait_for(lambda: all(placements(rest).values()), what="100 pods bound")
        assert "became leader" not in second.log_text()
        first.stop(signal.SIGKILL)
        wait_for(lambda: "became leader" in second.log_text(), 15, "takeover")
        for i in range(100, 150):
            rest.ok(rest.post("/api/v1/namespaces/default/pods", container_pod(f"p{i}")))
        wait_for(lambda: len(placements(rest)) == 150 and all(placements(rest).values()),
                 what="150 pods bound")
        time.sleep(0.5)
        for log in (first.log_text(), second.log_text()):
            assert "conflict" not in log, "a pod was bound twice"
    finally:
        second.stop()
