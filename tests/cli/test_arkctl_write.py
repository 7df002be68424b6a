"""`arkctl apply`, `create`, `delete` and `edit` against a real API server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.apiserver_proc import ApiServerProcess
from tests.cli import Arkctl, configmap, new_namespace, pod

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@pytest.fixture
def ark(apiserver: ApiServerProcess) -> Arkctl:
    return Arkctl(apiserver.kubeconfig)


@pytest.fixture
def ns(apiserver: ApiServerProcess) -> str:
    return new_namespace(apiserver.url, "write")


def _deployment(ns: str, image: str, extra_label: bool) -> str:
    labels = {"app": "web", **({"tier": "front"} if extra_label else {})}
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                     {"name": "web", "image": image, "ports": [{"containerPort": 80}]},
                     {"name": "side", "image": "busybox:1.36"}]}}}})


def test_apply_created_unchanged_configured_and_removed_fields(ark: Arkctl, ns: str,
                                                               tmp_path: Path) -> None:
    first = configmap("cfg", ns, {"color": "blue", "size": "big"}) + "\n---\n" + \
        _deployment(ns, "nginx:1.25", True)
    assert ark.ok("apply", "-f", "-", input=first).splitlines() == [
        "configmap/cfg created", "deployment.apps/web created"]
    assert ark.ok("apply", "-f", "-", input=first).splitlines() == [
        "configmap/cfg unchanged", "deployment.apps/web unchanged"]
    second = configmap("cfg", ns, {"color": "green"}) + "\n---\n" + \
        _deployment(ns, "nginx:1.27", False)
    assert ark.ok("apply", "-f", "-", input=second).splitlines() == [
        "configmap/cfg configured", "deployment.apps/web configured"]
    cm, dep = (json.loads(out) for out in ark.ok_many(
        ("-n", ns, "get", "cm", "cfg", "-o", "json"),
        ("-n", ns, "get", "deploy", "web", "-o", "json")))
    assert cm["data"] == {"color": "green"}  # `size` was removed from the config
    applied = json.loads(cm["metadata"]["annotations"][LAST_APPLIED])
    assert applied["data"] == {"color": "green"} and applied["metadata"]["namespace"] == ns
    assert dep["metadata"]["labels"] == {"app": "web"} and dep["metadata"]["generation"] == 2
    images = [c["image"] for c in dep["spec"]["template"]["spec"]["containers"]]
    assert images == ["nginx:1.27", "busybox:1.36"]


def test_apply_folder_and_adopting_created_objects(ark: Arkctl, ns: str, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(configmap("a", ns, {"k": "1"}))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json").write_text(configmap("b", ns, {"k": "2"}))
    (tmp_path / "notes.txt").write_text("not a manifest")
    assert ark.ok("apply", "-f", str(tmp_path)) == "configmap/a created\n"
    assert ark.ok("apply", "-R", "-f", str(tmp_path)).splitlines() == [
        "configmap/a unchanged", "configmap/b created"]
    ark.ok("-n", ns, "create", "-f", "-", input=pod("p1"))
    done = ark("-n", ns, "apply", "-f", "-", input=pod("p1", labels={"x": "y"}))
    assert done.returncode == 0 and done.stdout == "pod/p1 configured\n"
    assert "missing the kubectl.kubernetes.io/last-applied-configuration" in done.stderr
    assert ark.json("-n", ns, "get", "pod", "p1")["metadata"]["labels"] == {"x": "y"}


def test_create_generators_and_duplicates(ark: Arkctl, ns: str) -> None:
    doc = configmap("cfg", ns, {"k": "v"})
    assert ark.ok_many(("-n", ns, "create", "deployment", "web", "--image=nginx:1.25",
                        "--replicas=3"), ("create", "-f", "-"), inputs=[None, doc]) == [
        "deployment.apps/web created\n", "configmap/cfg created\n"]
    got, dup, dup_ns = ark.many(("-n", ns, "get", "deployment", "web", "-o", "json"),
                                ("create", "-f", "-"), ("create", "namespace", ns),
                                inputs=[None, doc])
    dep = json.loads(got.stdout)
    assert dep["spec"]["replicas"] == 3 and dep["spec"]["selector"]["matchLabels"] == {
        "app": "web"}
    assert dep["spec"]["template"]["spec"]["containers"][0]["name"] == "nginx"
    assert dup.returncode == 1 and dup.stderr.strip() == (
        'Error from server (AlreadyExists): error when creating "STDIN": configmaps "cfg" '
        "already exists")
    assert dup_ns.returncode == 1 and dup_ns.stderr.strip() == (
        f'Error from server (AlreadyExists): namespaces "{ns}" already exists')


def test_delete_forms_wait_and_cascade(ark: Arkctl, ns: str) -> None:
    docs = [configmap(n, ns, {"k": n}, {"grp": g})
            for n, g in (("a", "x"), ("b", "x"), ("c", "y"), ("d", "y"), ("e", "z"))]
    ark.ok("-n", ns, "apply", "-f", "-", input="\n---\n".join([*docs, pod("p1"), pod("p2")]))
    by_name, by_label, by_file, everything, no_name, missing = ark.many(
        ("-n", ns, "delete", "cm/a", "configmap/b"),
        ("-n", ns, "delete", "cm", "-l", "grp=y", "--cascade=orphan", "--wait=false"),
        ("delete", "-f", "-"), ("-n", ns, "delete", "pods", "--all", "--grace-period=0",
                                "--force"),
        ("-n", ns, "delete", "pods"), ("-n", ns, "delete", "pod", "nosuch", "--ignore-not-found"),
        inputs=[None, None, docs[-1]])
    assert by_name.stdout == 'configmap "a" deleted\nconfigmap "b" deleted\n'
    assert by_label.stdout == 'configmap "c" deleted\nconfigmap "d" deleted\n'
    assert by_file.stdout == 'configmap "e" deleted\n'
    assert everything.stdout == 'pod "p1" force deleted\npod "p2" force deleted\n'
    assert "Immediate deletion does not wait" in everything.stderr
    assert no_name.returncode == 1 and no_name.stderr.strip() == \
        "error: resource(s) were provided, but no name was specified"
    assert (missing.returncode, missing.stdout, missing.stderr) == (0, "", "")
    held, timed, left = ark.many(("-n", ns, "get", "cm", "c", "-o", "json"),
                                 ("-n", ns, "delete", "cm", "d", "--timeout", "0.5"),
                                 ("-n", ns, "get", "cm,pods", "-o", "name"))
    meta = json.loads(held.stdout)["metadata"]
    assert meta["deletionTimestamp"] and "orphan" in meta["finalizers"]  # Orphan was sent
    assert timed.returncode == 1 and "timed out waiting for the deletion of configmap/d" \
        in timed.stderr
    assert left.stdout.split() == ["configmap/c", "configmap/d"]


def test_edit_with_scripted_editor(ark: Arkctl, ns: str, tmp_path: Path) -> None:
    ark.ok("create", "-f", "-", input=configmap("cfg", ns, {"color": "blue"}))
    script = tmp_path / "editor.py"
    script.write_text("import sys, pathlib\np = pathlib.Path(sys.argv[1])\n"
                      "p.write_text(p.read_text().replace('blue', 'red'))\n")
    editor = {"EDITOR": f"{sys.executable} {script}"}
    assert ark.ok("-n", ns, "edit", "cm", "cfg", env=editor) == "configmap/cfg edited\n"
    assert ark.json("-n", ns, "get", "cm", "cfg")["data"] == {"color": "red"}
    same = ark("-n", ns, "edit", "configmap/cfg", env={"EDITOR": "true"})
    assert same.returncode == 0 and same.stderr.strip() == "Edit cancelled, no changes made."
    bad = ark("-n", ns, "edit", "cm", "cfg", env={"EDITOR": f"{sys.executable} -c "
              "\"import sys; open(sys.argv[1], 'a').write('data: {n: 1}\\n')\""})
    assert bad.returncode == 1 and "could not be saved" in bad.stderr
