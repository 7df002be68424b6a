"""The pure parts of `arkctl`: type resolution, the three-way apply patch, JSONPath, table
alignment, flag spellings, timeouts, kubeconfig redaction."""

from __future__ import annotations

from typing import Any

import pytest

from arktos.cli.arkctl.config import redact
from arktos.cli.arkctl.create import container_name, deployment_object
from arktos.cli.arkctl.errors import CliError, describe_error
from arktos.cli.arkctl.jsonpath import render
from arktos.cli.arkctl.options import normalize_args
from arktos.cli.arkctl.output import pad_cells
from arktos.cli.arkctl.resolve import kind_name, parse_targets, resolve_type, type_words
from arktos.cli.arkctl.session import NO_LIMIT, parse_timeout
from arktos.cli.arkctl.threeway import three_way_patch, with_last_applied
from arktos.client.rest import ApiError


@pytest.mark.parametrize("word,plural", [
    ("po", "pods"), ("pod", "pods"), ("Pod", "pods"), ("pods", "pods"), ("deploy", "deployments"),
    ("deployments.apps", "deployments"), ("deploy.v1.apps", "deployments"), ("ns", "namespaces"),
    ("te", "tenants"), ("Tenant", "tenants"), ("ac", "actions"), ("clusterrole", "clusterroles"),
    ("roles.rbac.authorization.k8s.io", "roles")])
def test_resolve_type(word: str, plural: str) -> None:
    assert resolve_type(word).plural == plural


def test_targets_and_names() -> None:
    both = parse_targets(["pods,deploy", "a"])
    assert [(t.rtype.plural, t.names) for t in both] == [("pods", ("a",)),
                                                         ("deployments", ("a",))]
    slashed = parse_targets(["po/a", "deploy/b", "pod/c"])
    assert [(t.rtype.plural, t.names) for t in slashed] == [("pods", ("a", "c")),
                                                            ("deployments", ("b",))]
    assert {t.rtype.plural for t in parse_targets(["all"])} == {
        "pods", "services", "deployments", "replicasets"}
    assert kind_name(resolve_type("deploy")) == "deployment.apps"
    assert type_words("te") == ["te", "tenant", "tenants"]
    with pytest.raises(CliError, match="no need to specify a resource type"):
        parse_targets(["pods", "pod/a"])
    with pytest.raises(CliError, match='resource type "nope"'):
        parse_targets(["nope"])


LIVE_CONTAINER = {"name": "web", "image": "nginx:1", "imagePullPolicy": "IfNotPresent"}


@pytest.mark.parametrize("original,modified,current,patch", [
    # unchanged, although the server defaulted fields in list items
    ({"spec": {"c": [{"name": "web", "image": "nginx:1"}]}},
     {"spec": {"c": [{"name": "web", "image": "nginx:1"}]}},
     {"spec": {"c": [LIVE_CONTAINER]}, "status": {}}, {}),
    # a changed list item replaces the list
    ({"spec": {"c": [{"name": "web", "image": "nginx:1"}]}},
     {"spec": {"c": [{"name": "web", "image": "nginx:2"}]}},
     {"spec": {"c": [LIVE_CONTAINER]}}, {"spec": {"c": [{"name": "web", "image": "nginx:2"}]}}),
    # a field dropped from a list item since the last apply replaces the list
    ({"c": [{"name": "web", "env": "x"}]}, {"c": [{"name": "web"}]},
     {"c": [{"name": "web", "env": "x"}]}, {"c": [{"name": "web"}]}),
    # fields removed from the configuration are deleted; others' fields are kept
    ({"data": {"a": "1", "b": "2"}, "x": 1}, {"data": {"a": "1"}},
     {"data": {"a": "1", "b": "2", "c": "3"}, "x": 1}, {"data": {"b": None}, "x": None}),
    # without a last-applied configuration nothing is deleted
    (None, {"data": {"a": "1"}}, {"data": {"a": "1", "b": "2"}}, {}),
    # a field already gone from the live object needs no deletion
    ({"data": {"a": "1", "b": "2"}}, {"data": {"a": "1"}}, {"data": {"a": "1"}}, {}),
    # type-aware equality: 1 is not true
    ({"v": 1}, {"v": True}, {"v": 1}, {"v": True}),
])
def test_three_way_patch(original: Any, modified: Any, current: Any, patch: Any) -> None:
    assert three_way_patch(original, modified, current) == patch


def test_last_applied_annotation_as_kubectl_writes_it() -> None:
    obj = {"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
    sent = with_last_applied(obj)
    assert sent["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration":
            '{"data":{"k":"v"},"kind":"ConfigMap","metadata":{"annotations":{},"name":"a"}}\n'}
    assert obj == {"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}


DOC = {"kind": "List", "items": [
    {"metadata": {"name": "a", "labels": {"app.k8s.io/name": "x"}},
     "status": {"conditions": [{"type": "Ready", "status": "True"}], "n": 2}},
    {"metadata": {"name": "b"}, "status": {"conditions": [{"type": "Ready", "status": "False"}],
                                          "ok": False}}]}


@pytest.mark.parametrize("template,text", [
    ("{.items[*].metadata.name}", "a b"),
    ("{.items[0].metadata.name}", "a"), ("{.items[-1].metadata.name}", "b"),
    ("{.items[0:1].metadata.name}", "a"),
    ('{range .items[*]}{.metadata.name}{"\\t"}{.status.n}{"\\n"}{end}', "a\t2\nb\t\n"),
    ('{.items[?(@.status.conditions[0].status=="False")].metadata.name}', "b"),
    ("{.items[0].metadata.labels['app.k8s.io/name']}", "x"),
    ("{..name}", "a b"), ("{.items[1].status.ok}", "false"),
    ("{.items[0].status.conditions[0]}", '{"type":"Ready","status":"True"}'),
    ("kind={.kind}{.missing}", "kind=List"),
])
def test_jsonpath(template: str, text: str) -> None:
    assert render(template, DOC) == text


def test_table_alignment_like_kubectl() -> None:
    widths: list[int] = []
    assert pad_cells([["NAME", "READY", "AGE"], ["p", "0/1", "5s"]], widths=widths) == [
        "NAME   READY   AGE", "p      0/1     5s"]
    assert pad_cells([["longer-name", "1/1", "1s"]], widths=widths) == [
        "longer-name   1/1     1s"]
    assert widths == [14, 8]  # kept growing for later rows of a watch


def test_flag_spellings_and_timeouts() -> None:
    flags = {"--wait": "--no-wait", "--watch": None}
    assert normalize_args(["delete", "--wait=false", "--watch=true", "--cascade", "x", "--",
                           "--wait=false"], flags) == [
        "delete", "--no-wait", "--watch", "--cascade=background", "x", "--", "--wait=false"]
    assert normalize_args(["--cascade", "orphan", "--watch=false"], flags) == [
        "--cascade", "orphan"]
    assert parse_timeout("") is None and parse_timeout("0") == NO_LIMIT
    assert parse_timeout("30") == 30 and parse_timeout("1m30s") == 90
    assert parse_timeout("500ms") == 0.5
    with pytest.raises(CliError):
        parse_timeout("5x")


def test_error_wording() -> None:
    invalid = ApiError(422, "Invalid", "x", {"details": {"kind": "Pod", "name": "p", "causes": [
        {"field": "spec.a", "message": "Required value"},
        {"field": "spec.b", "message": "bad"}]}})
    assert describe_error(invalid) == \
        'The Pod "p" is invalid: \n* spec.a: Required value\n* spec.b: bad'
    missing = ApiError(404, "NotFound", 'pods "x" not found')
    assert describe_error(missing, context='error when creating "f.yaml"') == \
        'Error from server (NotFound): error when creating "f.yaml": pods "x" not found'
    timeout = ApiError(0, "ServiceUnavailable", "the connection to the server http://h:1 "
                       "timed out")
    assert describe_error(timeout, "http://h:1").startswith("Unable to connect to the server")


def test_generators_and_redaction() -> None:
    assert container_name("registry.io:5000/team/my_app:1.2@sha256:abc") == "my-app"
    dep = deployment_object("web", ["nginx", "busybox:1"], 2, 80)
    containers = dep["spec"]["template"]["spec"]["containers"]
    assert containers == [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]},
                          {"name": "busybox", "image": "busybox:1"}]
    config: dict[str, Any] = {
        "users": [{"name": "u", "user": {"password": "p", "username": "me"}}],
        "clusters": [{"name": "c", "cluster": {"server": "s"}}]}
    assert redact(config)["users"][0]["user"] == {"password": "REDACTED", "username": "me"}
    assert config["users"][0]["user"]["password"] == "p"
