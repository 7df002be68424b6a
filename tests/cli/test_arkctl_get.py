"""`arkctl get` and `describe` against a real API server (SQLite and etcd): tables, output
formats, selectors, several types, watch, events."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
import yaml

from tests.apiserver_proc import ApiServerProcess
from tests.cli import Arkctl, new_namespace, pod, table
from tests.e2e.rest import Rest


@pytest.fixture
def ark(apiserver: ApiServerProcess) -> Arkctl:
    return Arkctl(apiserver.kubeconfig)


@pytest.fixture
def ns(apiserver: ApiServerProcess) -> str:
    return new_namespace(apiserver.url, "get")


def test_tables_formats_and_selectors(ark: Arkctl, ns: str) -> None:
    ark.ok_many(("-n", ns, "apply", "-f", "-"), ("create", "-f", "-", "-n", ns),
                inputs=[pod("p1", "web", "side", labels={"app": "web"}),
                        pod("p2", labels={"app": "db"})])
    jp = '{range .items[*]}{.metadata.name}:{.spec.containers[0].name}{"\\n"}{end}'
    plain, wide, bare, by_label, by_field, one, listed, jsonpath = ark.ok_many(
        ("get", "pods", "-n", ns), ("get", "po", "p1", "-o", "wide", "-n", ns, "--show-labels"),
        ("get", "pods", "p2", "--no-headers", f"--namespace={ns}"),
        ("-n", ns, "get", "pods", "-l", "app=db", "-o", "name"),
        ("-n", ns, "get", "pod", "--field-selector=metadata.name=p1", "-o", "name"),
        ("-n", ns, "get", "pod/p1", "-o", "json"), ("-n", ns, "get", "Pod", "-o", "yaml"),
        ("-n", ns, "get", "pods", "-o", f"jsonpath={jp}"))
    rows = table(plain)
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [r[:4] for r in rows[1:]] == [["p1", "0/2", "Pending", "0"],
                                        ["p2", "0/1", "Pending", "0"]]
    assert plain.splitlines()[0].startswith("NAME   READY   STATUS    RESTARTS   AGE")
    wide_rows = table(wide)
    assert wide_rows[0][5:] == ["IP", "NODE", "LABELS"]
    assert wide_rows[1][5:] == ["<none>", "<none>", "app=web"]
    assert table(bare)[0][:3] == ["p2", "0/1", "Pending"] and len(table(bare)) == 1
    assert (by_label, by_field) == ("pod/p2\n", "pod/p1\n")
    obj = json.loads(one)
    assert obj["kind"] == "Pod" and obj["metadata"]["tenant"] == "system"
    items = yaml.safe_load(listed)
    assert items["kind"] == "List" and [i["kind"] for i in items["items"]] == ["Pod", "Pod"]
    assert jsonpath == "p1:web\np2:c\n"


def test_several_types_missing_names_and_empty(ark: Arkctl, ns: str) -> None:
    deployment = json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "w"}},
                                 "template": {"metadata": {"labels": {"app": "w"}}, "spec": {
                                     "containers": [{"name": "w", "image": "nginx"}]}}}})
    ark.ok("-n", ns, "create", "-f", "-", input=pod("p1") + "\n---\n" + deployment)
    several, missing, empty, as_json, across = ark.many(
        ("-n", ns, "get", "pods,deploy"), ("-n", ns, "get", "pods", "p1", "nosuch"),
        ("-n", ns, "get", "cm,secrets"), ("-n", ns, "get", "secrets", "-o", "json"),
        ("get", "deploy", "-A"))
    pods, deps = several.stdout.split("\n\n")
    assert table(pods)[1][0] == "pod/p1"
    assert table(deps)[0][:2] == ["NAME", "READY"] and table(deps)[1][:2] == [
        "deployment.apps/web", "0/2"]
    assert missing.returncode == 1 and table(missing.stdout)[1][0] == "p1"
    assert missing.stderr.strip() == 'Error from server (NotFound): pods "nosuch" not found'
    assert empty.returncode == 0 and empty.stdout == ""
    assert empty.stderr.strip() == f"No resources found in {ns} namespace."
    assert json.loads(as_json.stdout)["items"] == []
    rows = table(across.stdout)
    assert rows[0][:2] == ["NAMESPACE", "NAME"] and [ns, "web"] in [r[:2] for r in rows]


def _read_until(proc: subprocess.Popen[str], name: str) -> list[str]:
    assert proc.stdout is not None
    seen = []
    while line := proc.stdout.readline():
        seen.append(line)
        if line.split()[:1] == [name]:
            return seen
    raise AssertionError(f"no row for {name}: {seen}")


def test_watch_streams_rows_until_interrupted(ark: Arkctl, ns: str) -> None:
    ark.ok("-n", ns, "create", "-f", "-", input=pod("before"))
    timed = subprocess.Popen(ark.argv("-n", ns, "get", "pods", "--watch-only",
                                      "--request-timeout=1s"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ark.env)
    proc = subprocess.Popen(ark.argv("-n", ns, "get", "pods", "-w"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ark.env)
    try:
        head = _read_until(proc, "before")
        assert head[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        ark.ok("-n", ns, "create", "-f", "-", input=pod("during"))
        assert _read_until(proc, "during")[-1].split()[:3] == ["during", "0/1", "Pending"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        # --request-timeout ends a watch cleanly; --watch-only prints no initial list
        assert timed.wait(timeout=20) == 0 and "before" not in timed.communicate()[0]
    finally:
        for started in (proc, timed):
            started.kill()
            started.communicate()


def test_describe_shows_fields_conditions_and_events(ark: Arkctl, ns: str,
                                                     apiserver: ApiServerProcess) -> None:
    ark.ok("-n", ns, "apply", "-f", "-", input=pod("vm", "main", labels={"app": "vm"}))
    bind = Rest(apiserver.url).post(f"/api/v1/namespaces/{ns}/pods/vm/binding",
                                    {"target": {"kind": "Node", "name": "node-1"}})
    assert bind.status_code == 201, bind.text
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "vm.1"},
             "involvedObject": {"kind": "Pod", "name": "vm", "namespace": ns},
             "reason": "Scheduled", "message": "assigned to node-1", "type": "Normal",
             "source": {"component": "scheduler"}}
    other = {**event, "metadata": {"name": "x.1"}, "reason": "Other",
             "involvedObject": {"kind": "Pod", "name": "x", "namespace": ns}}
    ark.ok("-n", ns, "create", "-f", "-", input=json.dumps(event) + "\n---\n" +
           json.dumps(other))
    text = ark.ok("-n", ns, "describe", "pod", "vm")
    lines = text.splitlines()
    assert lines[0].split() == ["Name:", "vm"] and ["Tenant:", "system"] in [
        ln.split() for ln in lines]
    assert ["Labels:", "app=vm"] in [ln.split() for ln in lines]
    assert "last-applied" not in text and "Node Name:" in text and "node-1" in text
    assert "Conditions:" in text and ["PodScheduled", "True"] in [ln.split() for ln in lines]
    events = lines[lines.index("Events:") + 1:]
    assert events[0].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert events[2].split()[:2] == ["Normal", "Scheduled"] and len(events) == 3
    assert events[2].split()[-3:] == ["assigned", "to", "node-1"]
