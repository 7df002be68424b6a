"""Server-side printing: meta.k8s.io/v1 Tables and kubectl's HumanDuration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from arktos.api.kinds import REGISTRY
from arktos.api.resources import Column, ResourceType, Scope
from arktos.apiserver.table import age, human_duration, to_table

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _ready(pod: dict[str, Any]) -> str:
    statuses = pod["status"]["containerStatuses"]
    return f"{sum(s['ready'] for s in statuses)}/{len(statuses)}"


def _fail(pod: dict[str, Any]) -> Any:
    raise KeyError("nope")


POD_LIKE = ResourceType("", "v1", "Pod", "pods", Scope.NAMESPACE, columns=(
    Column("Ready", _ready),
    Column("Status", lambda o: o["status"].get("phase")),
    Column("Restarts", lambda o: o["status"].get("restarts"), type="integer"),
    Column("IP", lambda o: o["status"].get("podIP"), priority=1),
    Column("Node", _fail, priority=1),
    Column("Started", lambda o: o["status"].get("startTime"), type="date", priority=1),
))


def _pod(name: str, created: datetime | None, **status: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "tenant": "system",
                            "uid": f"uid-{name}"}
    if created is not None:
        meta["creationTimestamp"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": {},
            "status": {"containerStatuses": [{"ready": True}, {"ready": False}], **status}}


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-1.5, "0s"), (-1, "0s"), (0, "0s"), (0.9, "0s"), (1, "1s"),
    (70, "70s"), (119.9, "119s"), (120, "2m"), (190, "3m10s"), (599, "9m59s"),
    (600, "10m"), (70 * 60, "70m"), (179 * 60 + 59, "179m"), (3 * 3600, "3h"),
    (3 * 3600 + 4 * 60 + 59, "3h4m"), (8 * 3600, "8h"), (47 * 3600, "47h"),
    (48 * 3600, "2d"), (49 * 3600, "2d1h"), ((8 * 24 - 1) * 3600, "7d23h"),
    ((8 * 24 + 2) * 3600, "8d"), (367 * 24 * 3600, "367d"), (729 * 24 * 3600, "729d"),
    ((365 * 2 * 24 + 25) * 3600, "2y1d"), (365 * 3 * 24 * 3600, "3y"),
    ((365 * 8 * 24 + 2) * 3600, "8y"),
])
def test_human_duration_matches_kubectl(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_age() -> None:
    assert age("2026-03-01T11:55:00Z", NOW) == "5m"
    assert age("2026-03-01T11:55:00+00:00", NOW.replace(tzinfo=None)) == "5m"
    assert age(None, NOW) == age("", NOW) == age("yesterday", NOW) == "<unknown>"


def test_column_definitions_name_columns_age_then_wide() -> None:
    table = to_table(POD_LIKE, [], now=NOW)
    defs = table["columnDefinitions"]
    assert [(d["name"], d["priority"]) for d in defs] == [
        ("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1),
        ("Node", 1), ("Started", 1)]
    assert defs[0] == {"name": "Name", "type": "string", "format": "name",
                       "description": defs[0]["description"], "priority": 0}
    assert defs[0]["description"] and defs[4]["type"] == "string"
    assert defs[3]["type"] == "integer"
    assert set(defs[1]) == {"name", "type", "format", "description", "priority"}
    assert table["rows"] == []


def test_rows_match_objects() -> None:
    pods = [_pod("a", NOW - timedelta(seconds=42), phase="Running", restarts=0,
                 podIP="10.0.0.5", startTime="2026-03-01T11:00:00Z"),
            _pod("b", None, phase="", restarts=None)]
    table = to_table(POD_LIKE, pods, now=NOW)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [r["cells"] for r in table["rows"]] == [
        ["a", "1/2", "Running", 0, "42s", "10.0.0.5", "<none>", "60m"],
        ["b", "1/2", "<none>", "<none>", "<unknown>", "<none>", "<none>", "<none>"]]
    for row, pod in zip(table["rows"], pods, strict=True):
        assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                 "metadata": pod["metadata"]}


def test_include_object() -> None:
    pod = _pod("a", NOW)
    assert to_table(POD_LIKE, [pod], now=NOW, include_object="Object")["rows"][0]["object"] \
        is pod
    assert "object" not in to_table(POD_LIKE, [pod], now=NOW, include_object="None")["rows"][0]
    with pytest.raises(ValueError, match="includeObject"):
        to_table(POD_LIKE, [pod], now=NOW, include_object="metadata")


def test_list_metadata() -> None:
    table = to_table(POD_LIKE, [], now=NOW, list_meta={
        "resourceVersion": "17", "continue": "tok", "remainingItemCount": 3, "selfLink": "x"})
    assert table["metadata"] == {"resourceVersion": "17", "continue": "tok",
                                 "remainingItemCount": 3}
    assert to_table(POD_LIKE, [], now=NOW, list_meta={"resourceVersion": "5", "continue": ""})[
        "metadata"] == {"resourceVersion": "5"}
    assert to_table(POD_LIKE, [], now=NOW)["metadata"] == {}


def test_kind_declared_name_and_age_columns_are_not_duplicated() -> None:
    rtype = ResourceType("x.io", "v1", "Thing", "things", Scope.TENANT, columns=(
        Column("NAME", lambda o: o["metadata"]["name"]), Column("Age", lambda o: "1d"),
        Column("Flag", lambda o: o.get("flag"), type="boolean")))
    table = to_table(rtype, [{"metadata": {"name": "t"}, "flag": False}], now=NOW)
    assert [d["name"] for d in table["columnDefinitions"]] == ["Name", "Flag", "Age"]
    assert table["rows"][0]["cells"] == ["t", False, "<unknown>"]


@pytest.mark.parametrize("rtype", list(REGISTRY), ids=lambda t: t.qualified)
def test_registry_kinds_print_name_first_and_age(rtype: ResourceType) -> None:
    obj = {"kind": rtype.kind, "apiVersion": rtype.group_version,
           "metadata": {"name": "x", "creationTimestamp": "2026-03-01T11:59:00Z"}}
    table = to_table(rtype, [obj], now=NOW)
    names = [d["name"] for d in table["columnDefinitions"]]
    assert names[0] == "Name" and "Age" in names
    own = [c.name for c in rtype.columns if c.name.lower() not in ("name", "age")]
    assert sorted(names[1:]) == sorted([*own, "Age"])
    [row] = table["rows"]
    assert len(row["cells"]) == len(names)
    assert row["cells"][0] == "x" and row["cells"][names.index("Age")] == "60s"
