"""The real `kubectl` binary against the server, on both storage backends.

kubectl is used as a user would: tables, output formats, apply, patch, scale, delete, watch,
discovery (`api-resources`, `explain`) and error output. Each test works in its own namespace
because the server is shared by the whole session.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.apiserver_proc import ApiServerProcess
from tests.e2e.rest import Rest

_MISSING = "kubectl not found: install it (make test installs Debian's kubernetes-client)"


class Kubectl:
    """`kubectl --kubeconfig <admin.kubeconfig> ...` for one API server."""

    def __init__(self, server: ApiServerProcess) -> None:
        binary = shutil.which("kubectl")
        if binary is None:
            pytest.fail(_MISSING)
        self.base = [binary, "--kubeconfig", str(server.kubeconfig),
                     "--cache-dir", str(server.data_dir / "kubectl-cache")]

    def __call__(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.base, *args], input=input, capture_output=True, text=True,
                              check=False, timeout=60)

    def ok(self, *args: str, input: str | None = None) -> str:
        """stdout of a command that must succeed."""
        done = self(*args, input=input)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json"))


@pytest.fixture
def kubectl(apiserver: ApiServerProcess) -> Kubectl:
    return Kubectl(apiserver)


@pytest.fixture
def kns(kubectl: Kubectl) -> str:
    """A fresh namespace of the system tenant, created by `kubectl create namespace`."""
    name = f"kc-{uuid.uuid4().hex[:8]}"
    assert kubectl.ok("create", "namespace", name).strip() == f"namespace/{name} created"
    return name


def table(out: str) -> list[list[str]]:
    """kubectl's table output as rows of cells (columns are separated by 2+ spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.strip()]


def manifests(ns: str, color: str = "blue", image: str = "nginx:1.25") -> str:
    return f"""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  namespace: {ns}
data:
  color: {color}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels: {{app: web}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: {image}
        ports:
        - containerPort: 80
      - name: sidecar
        image: busybox:1.36
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {ns}
spec:
  selector: {{app: web}}
  ports:
  - port: 80
    targetPort: 80
"""


# -- get: tables and output formats ------------------------------------------------------------


def test_get_pods_table_and_output_formats(kubectl: Kubectl, kns: str) -> None:
    out = kubectl.ok("-n", kns, "run", "p1", "--image=busybox:1.36", "--labels=app=web")
    assert out.strip() == "pod/p1 created"
    rows = table(kubectl.ok("-n", kns, "get", "pods"))
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert rows[1][:4] == ["p1", "0/1", "Pending", "0"] and len(rows) == 2
    wide = table(kubectl.ok("-n", kns, "get", "pods", "-o", "wide"))
    assert wide[0][:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert wide[1][0] == "p1" and wide[1][6] == "<none>"
    assert kubectl.ok("-n", kns, "get", "pods", "-o", "name") == "pod/p1\n"
    obj = kubectl.json("-n", kns, "get", "pod", "p1")
    assert obj["kind"] == "Pod" and obj["apiVersion"] == "v1"
    md = obj["metadata"]
    assert (md["name"], md["namespace"], md["tenant"]) == ("p1", kns, "system")
    assert md["labels"] == {"app": "web"}
    assert obj["spec"]["containers"][0]["image"] == "busybox:1.36"
    doc = yaml.safe_load(kubectl.ok("-n", kns, "get", "pod", "p1", "-o", "yaml"))
    assert doc["metadata"]["uid"] == md["uid"] and doc["status"]["phase"] == "Pending"
    listed = kubectl.json("-n", kns, "get", "pods")
    assert listed["kind"] == "List" and [i["metadata"]["name"] for i in listed["items"]] == ["p1"]
    jp = kubectl.ok("-n", kns, "get", "pod", "p1", "-o", "jsonpath={.metadata.resourceVersion}")
    assert int(jp) > 0


def test_label_and_field_selectors(kubectl: Kubectl, kns: str) -> None:
    for name, tier in (("a", "front"), ("b", "back"), ("c", "front")):
        kubectl.ok("-n", kns, "run", name, "--image=busybox", f"--labels=tier={tier}")
    names = kubectl.ok("-n", kns, "get", "pods", "-l", "tier=front", "-o", "name").split()
    assert names == ["pod/a", "pod/c"]
    names = kubectl.ok("-n", kns, "get", "pods", "-l", "tier notin (front)", "-o", "name").split()
    assert names == ["pod/b"]
    rows = table(kubectl.ok("-n", kns, "get", "pods", "-l", "tier=back"))
    assert [r[0] for r in rows] == ["NAME", "b"]
    fs = kubectl.ok("-n", kns, "get", "pods", "--field-selector", "metadata.name=c", "-o", "name")
    assert fs.split() == ["pod/c"]
    pending = kubectl.ok("-n", kns, "get", "pods", "--field-selector", "status.phase=Pending",
                         "-o", "name")
    assert pending.split() == ["pod/a", "pod/b", "pod/c"]
    none = kubectl("-n", kns, "get", "pods", "--field-selector", "status.phase=Running")
    assert none.returncode == 0 and none.stdout == ""
    assert f"No resources found in {kns} namespace." in none.stderr
    bad = kubectl("-n", kns, "get", "pods", "--field-selector", "spec.nosuch=x")
    assert bad.returncode == 1 and "Error from server (BadRequest)" in bad.stderr


def test_namespaces_create_get_and_tenant_isolation(kubectl: Kubectl, kns: str,
                                                    rest: Rest) -> None:
    rows = table(kubectl.ok("get", "ns"))
    assert rows[0] == ["NAME", "STATUS", "AGE"]
    status = {r[0]: r[1] for r in rows[1:]}
    for name in ("default", "kube-system", "kube-public", "kube-node-lease", kns):
        assert status[name] == "Active"
    again = kubectl("create", "namespace", kns)
    assert again.returncode == 1
    assert f'Error from server (AlreadyExists): namespaces "{kns}" already exists' in again.stderr
    # Another tenant's namespaces are invisible on the short paths kubectl uses.
    tenant = f"kt-{uuid.uuid4().hex[:8]}"
    rest.create_tenant(tenant)
    rest.ok(rest.post(f"/api/v1/tenants/{tenant}/namespaces", {"metadata": {"name": "hidden"}}))
    assert "namespace/hidden" not in kubectl.ok("get", "ns", "-o", "name").split()
    raw = json.loads(kubectl.ok("get", "--raw", f"/api/v1/tenants/{tenant}/namespaces"))
    assert sorted(i["metadata"]["name"] for i in raw["items"]) == ["default", "hidden"]
    tenants = table(kubectl.ok("get", "tenants"))
    assert tenants[0][0] == "NAME" and tenant in [r[0] for r in tenants[1:]]


def test_create_deployment_and_wide_table(kubectl: Kubectl, kns: str) -> None:
    out = kubectl.ok("-n", kns, "create", "deployment", "web", "--image=nginx:1.25",
                     "--replicas=2")
    assert out.strip() == "deployment.apps/web created"
    rows = table(kubectl.ok("-n", kns, "get", "deployments", "-o", "wide"))
    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES",
                       "SELECTOR"]
    assert rows[1][0] == "web" and rows[1][1] == "0/2"
    assert rows[1][5:] == ["nginx", "nginx:1.25", "app=web"]
    dep = kubectl.json("-n", kns, "get", "deploy", "web")
    assert dep["spec"]["replicas"] == 2 and dep["metadata"]["generation"] == 1
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"


# -- apply ------------------------------------------------------------------------------------


def test_apply_multi_document_created_unchanged_configured(kubectl: Kubectl, kns: str) -> None:
    first = kubectl.ok("apply", "-f", "-", input=manifests(kns))
    assert first.splitlines() == ["configmap/cfg created", "deployment.apps/web created",
                                  "service/web created"]
    second = kubectl.ok("apply", "-f", "-", input=manifests(kns))
    assert second.splitlines() == ["configmap/cfg unchanged", "deployment.apps/web unchanged",
                                   "service/web unchanged"]
    third = kubectl.ok("apply", "-f", "-", input=manifests(kns, "green", "nginx:1.27"))
    assert third.splitlines() == ["configmap/cfg configured", "deployment.apps/web configured",
                                  "service/web unchanged"]
    color = kubectl.ok("-n", kns, "get", "cm", "cfg", "-o", "jsonpath={.data.color}")
    assert color == "green"
    dep = kubectl.json("-n", kns, "get", "deploy", "web")
    images = {c["name"]: c["image"] for c in dep["spec"]["template"]["spec"]["containers"]}
    assert images == {"web": "nginx:1.27", "sidecar": "busybox:1.36"}
    assert dep["metadata"]["generation"] == 2
    applied = json.loads(dep["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"])
    assert applied["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    svc = kubectl.json("-n", kns, "get", "svc", "web")
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["selector"] == {"app": "web"}


def test_diff_uses_dry_run_and_changes_nothing(kubectl: Kubectl, kns: str) -> None:
    kubectl.ok("apply", "-f", "-", input=manifests(kns))
    diff = kubectl("diff", "-f", "-", input=manifests(kns, "red"))
    assert diff.returncode == 1, diff.stderr  # 1: differences found
    changed = [ln for ln in diff.stdout.splitlines()
               if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    # A server-side dry run of a patch answers with the live resourceVersion (kube-apiserver
    # does), so the only difference is the data itself.
    assert changed == ["-  color: blue", "+  color: red"], diff.stdout
    assert kubectl.ok("-n", kns, "get", "cm", "cfg", "-o", "jsonpath={.data.color}") == "blue"


# -- raw tenant paths --------------------------------------------------------------------------


def test_get_raw_full_tenant_paths(kubectl: Kubectl, kns: str) -> None:
    kubectl.ok("-n", kns, "run", "rp", "--image=busybox")
    kubectl.ok("-n", kns, "create", "deployment", "rd", "--image=nginx")
    pods = json.loads(kubectl.ok("get", "--raw", f"/api/v1/tenants/system/namespaces/{kns}/pods"))
    assert pods["kind"] == "PodList" and [i["metadata"]["name"] for i in pods["items"]] == ["rp"]
    assert pods["items"][0]["metadata"]["tenant"] == "system"
    one = json.loads(kubectl.ok("get", "--raw",
                                f"/api/v1/tenants/system/namespaces/{kns}/pods/rp"))
    assert one["kind"] == "Pod" and one["metadata"]["namespace"] == kns
    nss = json.loads(kubectl.ok("get", "--raw", "/api/v1/tenants/system/namespaces"))
    assert nss["kind"] == "NamespaceList"
    assert {kns, "default", "kube-system"} <= {i["metadata"]["name"] for i in nss["items"]}
    deps = json.loads(kubectl.ok(
        "get", "--raw", f"/apis/apps/v1/tenants/system/namespaces/{kns}/deployments"))
    assert deps["kind"] == "DeploymentList"
    assert [i["metadata"]["name"] for i in deps["items"]] == ["rd"]
    tenant_pods = json.loads(kubectl.ok("get", "--raw", "/api/v1/tenants/system/pods"))
    assert ("rp", kns) in {(i["metadata"]["name"], i["metadata"]["namespace"])
                           for i in tenant_pods["items"]}
    missing = kubectl("get", "--raw", f"/api/v1/tenants/system/namespaces/{kns}/pods/nosuch")
    assert missing.returncode == 1 and "NotFound" in missing.stderr


# -- patch and scale ---------------------------------------------------------------------------


def test_patch_strategic_merge_and_json(kubectl: Kubectl, kns: str) -> None:
    kubectl.ok("apply", "-f", "-", input=manifests(kns))
    smp = '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:2"}]}}}}'
    out = kubectl.ok("-n", kns, "patch", "deployment", "web", "-p", smp)
    assert out.strip() == "deployment.apps/web patched"
    dep = kubectl.json("-n", kns, "get", "deployment", "web")
    images = [(c["name"], c["image"]) for c in dep["spec"]["template"]["spec"]["containers"]]
    assert images == [("web", "nginx:2"), ("sidecar", "busybox:1.36")]  # merged by name
    assert dep["metadata"]["generation"] == 2
    kubectl.ok("-n", kns, "patch", "deployment", "web", "--type=merge",
               "-p", '{"metadata":{"labels":{"team":"blue"}}}')
    kubectl.ok("-n", kns, "patch", "deployment", "web", "--type=json",
               "-p", '[{"op":"replace","path":"/spec/replicas","value":4},'
                     '{"op":"remove","path":"/spec/template/spec/containers/1"}]')
    dep = kubectl.json("-n", kns, "get", "deployment", "web")
    assert dep["metadata"]["labels"] == {"app": "web", "team": "blue"}
    assert dep["spec"]["replicas"] == 4
    assert [c["name"] for c in dep["spec"]["template"]["spec"]["containers"]] == ["web"]
    assert dep["metadata"]["generation"] == 3  # the label patch did not touch the spec
    bad = kubectl("-n", kns, "patch", "deployment", "web", "--type=json",
                  "-p", '[{"op":"replace","path":"/spec/replicas","value":-1}]')
    assert bad.returncode == 1 and "is invalid" in bad.stderr
    assert kubectl.json("-n", kns, "get", "deployment", "web")["spec"]["replicas"] == 4


def test_noop_patch_reports_no_change(kubectl: Kubectl, kns: str) -> None:
    kubectl.ok("-n", kns, "create", "deployment", "web", "--image=nginx", "--replicas=3")
    before = kubectl.json("-n", kns, "get", "deployment", "web")["metadata"]["resourceVersion"]
    out = kubectl.ok("-n", kns, "patch", "deployment", "web", "-p", '{"spec":{"replicas":3}}')
    # kubectl compares the object it read with the patch response: kube-apiserver returns the
    # unchanged object, resourceVersion included, for a write that changes nothing.
    assert out.strip() == "deployment.apps/web patched (no change)"
    after = kubectl.json("-n", kns, "get", "deployment", "web")["metadata"]["resourceVersion"]
    assert after == before


def test_scale(kubectl: Kubectl, kns: str) -> None:
    kubectl.ok("-n", kns, "create", "deployment", "web", "--image=nginx")
    assert kubectl.ok("-n", kns, "scale", "deployment", "web",
                      "--replicas=5").strip() == "deployment.apps/web scaled"
    replicas = kubectl.ok("-n", kns, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}")
    assert replicas == "5"
    stale = kubectl("-n", kns, "scale", "deployment", "web", "--current-replicas=2",
                    "--replicas=7")
    assert stale.returncode == 1 and "expected" in stale.stderr.lower()
    assert kubectl.json("-n", kns, "get", "deploy", "web")["spec"]["replicas"] == 5
    kubectl.ok("-n", kns, "scale", "deployment/web", "--current-replicas=5", "--replicas=2")
    assert kubectl.json("-n", kns, "get", "deploy", "web")["spec"]["replicas"] == 2
    kubectl.ok("-n", kns, "scale", "deployment/web", "--replicas=0")
    assert kubectl.json("-n", kns, "get", "deploy", "web")["spec"]["replicas"] == 0


def test_scale_to_zero_with_precondition(kubectl: Kubectl, kns: str) -> None:
    kubectl.ok("-n", kns, "create", "deployment", "web", "--image=nginx", "--replicas=3")
    # With a precondition kubectl PUTs the Scale it read with spec.replicas set to 0, which Go
    # omits (`replicas,omitempty`): the body has `"spec": {}`, meaning zero replicas.
    out = kubectl.ok("-n", kns, "scale", "deployment/web", "--current-replicas=3",
                     "--replicas=0")
    assert out.strip() == "deployment.apps/web scaled"
    assert kubectl.json("-n", kns, "get", "deploy", "web")["spec"]["replicas"] == 0


# -- delete ------------------------------------------------------------------------------------


def test_delete_pods(kubectl: Kubectl, kns: str, rest: Rest) -> None:
    kubectl.ok("-n", kns, "run", "gone", "--image=busybox")
    # An unbound pod goes at once, so kubectl's wait for the deletion ends at once.
    assert kubectl.ok("-n", kns, "delete", "pod", "gone").strip() == 'pod "gone" deleted'
    missing = kubectl("-n", kns, "get", "pod", "gone")
    assert missing.returncode == 1 and "NotFound" in missing.stderr
    # A pod bound to a node stays Terminating until its node agent confirms.
    kubectl.ok("-n", kns, "run", "bound", "--image=busybox")
    rest.ok(rest.post(f"/api/v1/namespaces/{kns}/pods/bound/binding",
                      {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bound"},
                       "target": {"kind": "Node", "name": "node-1"}}))
    out = kubectl.ok("-n", kns, "delete", "pod", "bound", "--wait=false")
    assert out.strip() == 'pod "bound" deleted'
    rows = table(kubectl.ok("-n", kns, "get", "pods", "-o", "wide"))
    assert rows[1][0] == "bound" and rows[1][2] == "Terminating" and rows[1][6] == "node-1"
    on_node = kubectl.ok("-n", kns, "get", "pods", "--field-selector", "spec.nodeName=node-1",
                         "-o", "name")
    assert on_node.split() == ["pod/bound"]
    kubectl.ok("-n", kns, "delete", "pod", "bound", "--grace-period=0", "--force")
    assert kubectl.ok("-n", kns, "get", "pods", "-o", "name") == ""


def test_delete_held_by_finalizer(kubectl: Kubectl, kns: str) -> None:
    cm = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: " + kns +
          "\n  finalizers: [example.com/hold]\n")
    kubectl.ok("apply", "-f", "-", input=cm)
    assert kubectl.ok("-n", kns, "delete", "cm", "held", "--wait=false").strip() == \
        'configmap "held" deleted'
    obj = kubectl.json("-n", kns, "get", "cm", "held")
    assert obj["metadata"]["deletionTimestamp"]
    kubectl.ok("-n", kns, "patch", "cm", "held", "--type=merge",
               "-p", '{"metadata":{"finalizers":null}}')
    assert "NotFound" in kubectl("-n", kns, "get", "cm", "held").stderr


def test_delete_namespace_shows_terminating(kubectl: Kubectl, kns: str) -> None:
    out = kubectl.ok("delete", "ns", kns, "--wait=false")
    assert out.strip() == f'namespace "{kns}" deleted'
    rows = table(kubectl.ok("get", "ns", kns))
    assert rows[1][:2] == [kns, "Terminating"]
    refused = kubectl("-n", kns, "run", "late", "--image=busybox")
    assert refused.returncode == 1
    assert "Error from server (Forbidden)" in refused.stderr
    assert "being terminated" in refused.stderr


# -- discovery ---------------------------------------------------------------------------------


def test_api_resources_and_explain(kubectl: Kubectl) -> None:
    rows = table(kubectl.ok("api-resources"))
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    by_name = {r[0]: r for r in rows[1:]}
    for name, version, namespaced, kind in (
            ("pods", "v1", "true", "Pod"), ("tenants", "v1", "false", "Tenant"),
            ("actions", "v1", "true", "Action"), ("namespaces", "v1", "false", "Namespace"),
            ("nodes", "v1", "false", "Node"), ("deployments", "apps/v1", "true", "Deployment"),
            ("leases", "coordination.k8s.io/v1", "true", "Lease"),
            ("clusterroles", "rbac.authorization.k8s.io/v1", "false", "ClusterRole")):
        assert by_name[name][-3:] == [version, namespaced, kind], by_name[name]
    assert by_name["pods"][1] == "po" and by_name["deployments"][1] == "deploy"
    cluster = kubectl.ok("api-resources", "--namespaced=false", "-o", "name").split()
    assert {"tenants", "namespaces", "nodes"} <= set(cluster) and "pods" not in cluster
    explain = kubectl.ok("explain", "pod.spec")
    assert "KIND:       Pod" in explain and "VERSION:    v1" in explain
    assert "FIELD: spec <Object>" in explain
    fields = kubectl.ok("explain", "tenants")
    assert "KIND:       Tenant" in fields and "FIELDS:" in fields
    assert "spec\t<Object>" in fields and "status\t<Object>" in fields


# -- watch -------------------------------------------------------------------------------------


class Watcher:
    """A running `kubectl get -w` whose output lines arrive on a queue."""

    def __init__(self, kubectl: Kubectl, *args: str) -> None:
        self.proc = subprocess.Popen([*kubectl.base, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def row(self, name: str, timeout: float = 15) -> list[str]:
        """The next row printed for `name`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                cells = table(self.lines.get(timeout=left))
            except queue.Empty:
                break
            if cells and cells[0][0] == name:
                return cells[0]
        raise AssertionError(f"kubectl printed no row for {name} within {timeout}s")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def watching(kubectl: Kubectl, kns: str) -> Iterator[Watcher]:
    kubectl.ok("-n", kns, "run", "before", "--image=busybox")
    watcher = Watcher(kubectl, "-n", kns, "get", "pods", "-w", "--request-timeout=30s")
    yield watcher
    watcher.stop()


def test_get_pods_watch_shows_new_pod(kubectl: Kubectl, kns: str, watching: Watcher) -> None:
    assert watching.row("before")[:3] == ["before", "0/1", "Pending"]
    kubectl.ok("-n", kns, "run", "during", "--image=busybox")
    assert watching.row("during")[:3] == ["during", "0/1", "Pending"]
    kubectl.ok("-n", kns, "label", "pod", "during", "seen=yes")
    assert watching.row("during")[0] == "during"  # the MODIFIED event prints the row again
    assert watching.proc.poll() is None  # still watching


# -- error output ------------------------------------------------------------------------------


def test_error_output(kubectl: Kubectl, kns: str) -> None:
    missing = kubectl("-n", kns, "get", "pod", "nosuch")
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): pods "nosuch" not found'
    bad = kubectl("apply", "-f", "-", input=_bad_pod(kns))
    assert bad.returncode == 1 and "is invalid" in bad.stderr
    assert 'The Pod "bad" is invalid' in bad.stderr
    assert "NotFound" in kubectl("-n", kns, "get", "pod", "bad").stderr  # nothing stored
    kubectl.ok("apply", "-f", "-", input=manifests(kns))
    dup = kubectl("create", "-f", "-", input=manifests(kns))
    assert dup.returncode == 1
    assert 'Error from server (AlreadyExists): error when creating "STDIN": configmaps "cfg" ' \
        'already exists' in dup.stderr
    nons = kubectl("-n", f"{kns}-nope", "run", "x", "--image=busybox")
    assert nons.returncode == 1 and "Error from server (NotFound)" in nons.stderr
    unknown = kubectl("get", "nosuchkinds")
    assert unknown.returncode == 1
    assert 'the server doesn\'t have a resource type "nosuchkinds"' in unknown.stderr


def test_invalid_object_message_names_each_field_once(kubectl: Kubectl, kns: str) -> None:
    bad = kubectl("apply", "-f", "-", input=_bad_pod(kns))
    # kube-apiserver puts the field in causes[].field and only the error in causes[].message;
    # kubectl prints "<field>: <message>" for each cause.
    assert bad.stderr.strip() == 'The Pod "bad" is invalid: spec.containers: Required value'


def _bad_pod(ns: str) -> str:
    return f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n  namespace: {ns}\n" \
           "spec:\n  containers: []\n"
