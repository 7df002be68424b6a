"""Pod subresources (`logs`, `action`), discovery and error output of `arkctl` against a
real API server."""

from __future__ import annotations

import json

import pytest

from tests.apiserver_proc import ApiServerProcess
from tests.cli import Arkctl, new_namespace, pod, table

NO_AGENT = "Error from server (BadRequest): pod p1 is not scheduled to a node yet"


@pytest.fixture
def ark(apiserver: ApiServerProcess) -> Arkctl:
    return Arkctl(apiserver.kubeconfig)


@pytest.fixture
def ns(ark: Arkctl, apiserver: ApiServerProcess) -> str:
    name = new_namespace(apiserver.url, "pods")
    ark.ok("-n", name, "create", "-f", "-", input=pod("p1", "main", "side"))
    return name


def test_logs_are_wired_to_the_node_agent(ark: Arkctl, ns: str) -> None:
    plain, follow, wrong, missing = ark.many(
        ("-n", ns, "logs", "p1"), ("-n", ns, "logs", "pod/p1", "-c", "side", "-f",
                                   "--tail", "5", "--previous"),
        ("-n", ns, "logs", "p1", "-c", "nope"), ("-n", ns, "logs", "nosuch"))
    assert plain.returncode == 1 and plain.stderr.splitlines() == [
        'Defaulted container "main" out of: main, side', NO_AGENT]
    assert follow.returncode == 1 and follow.stderr.strip() == NO_AGENT
    assert wrong.returncode == 1 and wrong.stderr.strip() == \
        "error: container nope is not valid for pod p1"
    assert missing.stderr.strip() == 'Error from server (NotFound): pods "nosuch" not found'


def test_vm_actions_create_action_objects(ark: Arkctl, ns: str) -> None:
    reboot, snap, restore, bad, nosnap = ark.many(
        ("-n", ns, "action", "reboot", "p1", "--delay", "5", "--no-wait"),
        ("-n", ns, "action", "snapshot", "p1", "--snapshot", "s1", "--no-wait"),
        ("-n", ns, "action", "restore", "pod/p1", "--snapshot", "snap-id", "--no-wait"),
        ("-n", ns, "action", "explode", "p1"), ("-n", ns, "action", "snapshot", "p1"))
    for done in (reboot, snap, restore):
        assert done.returncode == 0 and done.stdout.startswith("action/") and \
            done.stdout.endswith(" created\n"), done
    assert bad.returncode == 1 and "explode" in bad.stderr
    assert nosnap.returncode == 1 and nosnap.stderr.strip() == \
        "error: --snapshot is required for snapshot"
    actions = ark.json("-n", ns, "get", "actions")["items"]
    by_name = {a["metadata"]["name"]: a["spec"] for a in actions}
    assert by_name[reboot.stdout[7:-9]] == {"podName": "p1", "nodeName": "",
                                            "rebootAction": {"delayInSeconds": 5}}
    assert by_name[snap.stdout[7:-9]]["snapshotAction"] == {"snapshotName": "s1"}
    assert by_name[restore.stdout[7:-9]]["restoreAction"] == {"snapshotID": "snap-id"}


def test_action_waits_for_the_agent_and_times_out(ark: Arkctl, ns: str) -> None:
    done = ark("-n", ns, "action", "reboot", "p1", "--timeout", "1")
    assert done.returncode == 1 and "timed out waiting for action/" in done.stderr


def test_server_errors_and_discovery(ark: Arkctl, ns: str) -> None:
    bad_pod = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"},
                          "spec": {"containers": []}})
    selector, resources, version = ark.many(
        ("-n", ns, "get", "pods", "--field-selector", "spec.nosuch=x"), ("api-resources",),
        ("version",))
    invalid = ark("-n", ns, "apply", "-f", "-", input=bad_pod)
    assert invalid.returncode == 1
    assert invalid.stderr.strip() == 'The Pod "bad" is invalid: spec.containers: Required value'
    assert selector.returncode == 1 and selector.stderr.startswith(
        "Error from server (BadRequest): ")
    rows = {r[0]: r for r in table(resources.stdout)}
    assert rows["NAME"] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "TENANTED", "KIND"]
    assert rows["pods"][1:] == ["po", "v1", "true", "true", "Pod"]
    assert rows["namespaces"][1:] == ["ns", "v1", "false", "true", "Namespace"]
    assert rows["tenants"][1:] == ["te", "v1", "false", "false", "Tenant"]
    assert version.stdout.splitlines()[1] == "Server Version: v1.31.0+arktos"
