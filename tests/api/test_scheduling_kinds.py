"""PriorityClass validation and a pod's priority resolution (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from arktos.api.kinds.scheduling import PRIORITY_CLASS, builtin_priority_classes, resolve_priority


def pc(name: str, value: Any, **more: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "value": value, **more}


@pytest.mark.parametrize(("obj", "field"), [
    (pc("a", None), "value"),
    (pc("a", "1"), "value"),
    (pc("a", 1_000_000_001), "value"),
    (pc("system-mine", 5), "metadata.name"),
    (pc("system-node-critical", 5), "value"),
    (pc("a", 1, preemptionPolicy="Sometimes"), "preemptionPolicy"),
    (pc("a", 1, globalDefault="yes"), "globalDefault"),
])
def test_invalid_priority_classes(obj: dict[str, Any], field: str) -> None:
    causes = PRIORITY_CLASS.validate(obj, None)
    assert field in [c.field for c in causes], causes


def test_builtin_classes_are_valid_and_value_is_immutable() -> None:
    for obj in builtin_priority_classes():
        assert PRIORITY_CLASS.validate(obj, None) == []
    old = pc("a", 1)
    assert [c.field for c in PRIORITY_CLASS.validate(pc("a", 2), old)] == ["value"]


def test_priority_comes_from_the_named_class_or_the_global_default() -> None:
    classes = {"high": pc("high", 1000), "low": pc("low", 10, globalDefault=True)}
    spec: dict[str, Any] = {"priorityClassName": "high"}
    assert resolve_priority(spec, classes) == ""
    assert spec["priority"] == 1000 and spec["preemptionPolicy"] == "PreemptLowerPriority"
    spec = {}
    assert resolve_priority(spec, classes) == ""
    assert spec["priorityClassName"] == "low" and spec["priority"] == 10
    spec = {}
    assert resolve_priority(spec, {}) == "" and spec == {"priority": 0}


def test_unknown_class_and_mismatched_priority_are_refused() -> None:
    assert "no PriorityClass with name nope" in resolve_priority(
        {"priorityClassName": "nope"}, {})
    assert "must not be provided" in resolve_priority(
        {"priorityClassName": "high", "priority": 5}, {"high": pc("high", 1000)})
    assert resolve_priority({"priorityClassName": "high", "priority": 1000},
                            {"high": pc("high", 1000)}) == ""
