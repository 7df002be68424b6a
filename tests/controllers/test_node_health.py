"""Pure decisions of the node lifecycle controller (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from arktos.controllers import node_health as nh

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
GRACE = 40.0


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def node(ready: str | None = "True", beat: float | None = 5, *, extra: list[Any] | None = None,
         taints: list[Any] | None = None, created: float = 3600) -> dict[str, Any]:
    conds: list[dict[str, Any]] = []
    if ready is not None:
        cond: dict[str, Any] = {"type": "Ready", "status": ready, "reason": "KubeletReady"}
        if beat is not None:
            cond["lastHeartbeatTime"] = nh.format_time(ago(beat))
        conds.append(cond)
    conds += extra or []
    return {"metadata": {"name": "n1", "creationTimestamp": nh.format_time(ago(created))},
            "spec": {"taints": taints} if taints is not None else {},
            "status": {"conditions": conds}}


def lease(renewed: float) -> dict[str, Any]:
    return {"spec": {"renewTime": nh.format_micro_time(ago(renewed)),
                     "leaseDurationSeconds": 40}}


def taint_ids(taints: list[dict[str, Any]] | None) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in taints or []}


UNREACHABLE = {(nh.UNREACHABLE, nh.NO_SCHEDULE), (nh.UNREACHABLE, nh.NO_EXECUTE)}


# --- time and heartbeat ---------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("2024-05-01T12:00:00Z", NOW),
    ("2024-05-01T12:00:00.250000Z", NOW + timedelta(milliseconds=250)),
    ("2024-05-01T14:00:00+02:00", NOW),
    ("2024-05-01T12:00:00", NOW),
    ("yesterday", None), ("", None), (None, None), (17, None),
])
def test_parse_time(text: object, expected: datetime | None) -> None:
    assert nh.parse_time(text) == expected


def test_time_formats_round_trip() -> None:
    when = NOW + timedelta(microseconds=123456)
    assert nh.format_micro_time(when) == "2024-05-01T12:00:00.123456Z"
    assert nh.parse_time(nh.format_micro_time(when)) == when
    assert nh.format_time(when) == "2024-05-01T12:00:00Z"


def test_heartbeat_is_the_newest_of_lease_and_ready_condition() -> None:
    assert nh.last_heartbeat(node(beat=100), lease(3)) == nh.parse_time(
        nh.format_micro_time(ago(3)))
    assert nh.last_heartbeat(node(beat=3), lease(100)) == nh.parse_time(nh.format_time(ago(3)))
    assert nh.last_heartbeat(node(beat=7), None) == ago(7)


def test_heartbeat_falls_back_to_creation() -> None:
    assert nh.last_heartbeat(node(ready=None, created=10), None) == ago(10)


@pytest.mark.parametrize("n, lz, stale", [
    (node(beat=5), None, False),
    (node(beat=100), None, True),
    (node(beat=100), lease(5), False),
    (node(beat=None), lease(41), True),
    (node(ready=None, created=5), None, False),
    (node(ready=None, created=50), None, True),
])
def test_is_stale(n: dict[str, Any], lz: dict[str, Any] | None, stale: bool) -> None:
    assert nh.is_stale(n, lz, NOW, GRACE) is stale


@pytest.mark.parametrize("n, expected", [
    (node("True"), "True"), (node("False"), "False"), (node("Unknown"), "Unknown"),
    (node("True", beat=100), "Unknown"), (node(None, created=5), None), (node("Bogus"), None),
])
def test_effective_ready(n: dict[str, Any], expected: str | None) -> None:
    assert nh.effective_ready(n, None, NOW, GRACE) == expected


# --- conditions -----------------------------------------------------------------------------

def test_silent_node_conditions_go_unknown_others_kept() -> None:
    extra = [{"type": "MemoryPressure", "status": "False"},
             {"type": "VmRuntimeReady", "status": "True"},
             {"type": "NetworkUnavailable", "status": "False"}]
    out = nh.unknown_conditions(node("True", beat=100, extra=extra), NOW)
    assert out is not None
    by_type = {c["type"]: c for c in out}
    for t in ("Ready", "MemoryPressure", "VmRuntimeReady"):
        assert by_type[t]["status"] == "Unknown"
        assert by_type[t]["reason"] == "NodeStatusUnknown"
        assert by_type[t]["message"] == "Kubelet stopped posting node status."
        assert by_type[t]["lastTransitionTime"] == "2024-05-01T12:00:00Z"
    assert by_type["Ready"]["lastHeartbeatTime"] == nh.format_time(ago(100))
    assert by_type["NetworkUnavailable"] == {"type": "NetworkUnavailable", "status": "False"}


def test_unknown_conditions_no_change_when_already_unknown() -> None:
    assert nh.unknown_conditions(node("Unknown", beat=100), NOW) is None


def test_missing_ready_is_added_as_never_updated() -> None:
    out = nh.unknown_conditions(node(None), NOW)
    assert out is not None and out[0]["type"] == "Ready"
    assert (out[0]["status"], out[0]["reason"]) == ("Unknown", "NodeStatusNeverUpdated")


def test_input_is_not_mutated() -> None:
    n = node("True", beat=100, taints=[])
    before = repr(n)
    nh.assess(n, None, NOW, GRACE)
    assert repr(n) == before


# --- taints ---------------------------------------------------------------------------------

def test_unknown_adds_unreachable_taints_with_time() -> None:
    out = nh.planned_taints([], "Unknown", NOW)
    assert taint_ids(out) == UNREACHABLE
    assert all(t["timeAdded"] == "2024-05-01T12:00:00Z" for t in out or [])


def test_existing_taints_are_kept_with_their_time() -> None:
    old = {"key": nh.UNREACHABLE, "effect": nh.NO_EXECUTE, "timeAdded": "2024-05-01T11:00:00Z"}
    foreign = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    out = nh.planned_taints([foreign, old], "Unknown", NOW)
    assert out is not None and out[:2] == [foreign, old]
    assert taint_ids(out[2:]) == {(nh.UNREACHABLE, nh.NO_SCHEDULE)}
    assert nh.planned_taints(out, "Unknown", NOW) is None


def test_ready_again_removes_only_our_taints() -> None:
    foreign = {"key": "dedicated", "effect": "NoExecute"}
    current = [foreign, *(nh.planned_taints([], "Unknown", NOW) or [])]
    assert nh.planned_taints(current, "True", NOW) == [foreign]
    assert nh.planned_taints([foreign], "True", NOW) is None


def test_not_ready_swaps_unreachable_for_not_ready() -> None:
    current = nh.planned_taints([], "Unknown", NOW) or []
    assert taint_ids(nh.planned_taints(current, "False", NOW)) == {
        (nh.NOT_READY, nh.NO_SCHEDULE)}


def test_unknown_readiness_leaves_taints() -> None:
    assert nh.planned_taints([], None, NOW) is None


# --- assess ---------------------------------------------------------------------------------

def test_assess_healthy_node_changes_nothing() -> None:
    verdict = nh.assess(node("True"), lease(1), NOW, GRACE)
    assert verdict == nh.NodeVerdict(None, None, went_unknown=False)


def test_assess_silent_node() -> None:
    verdict = nh.assess(node("True", beat=100, taints=[]), lease(100), NOW, GRACE)
    assert verdict.went_unknown
    assert verdict.conditions is not None and verdict.conditions[0]["status"] == "Unknown"
    assert taint_ids(verdict.taints) == UNREACHABLE


def test_assess_silent_node_already_marked() -> None:
    marked = node("Unknown", beat=100, taints=nh.planned_taints([], "Unknown", ago(50)))
    assert nh.assess(marked, lease(100), NOW, GRACE) == nh.NodeVerdict(None, None)


def test_assess_renewed_lease_but_still_unknown_keeps_taints() -> None:
    marked = node("Unknown", beat=100, taints=nh.planned_taints([], "Unknown", ago(50)))
    assert nh.assess(marked, lease(1), NOW, GRACE) == nh.NodeVerdict(None, None)


def test_assess_recovered_node_loses_taints() -> None:
    marked = node("True", beat=1, taints=nh.planned_taints([], "Unknown", ago(50)))
    assert nh.assess(marked, lease(1), NOW, GRACE) == nh.NodeVerdict(None, [])


def test_unreachable_since() -> None:
    assert nh.unreachable_since(node()) is None
    marked = node("Unknown", taints=nh.planned_taints([], "Unknown", ago(50)))
    assert nh.unreachable_since(marked) == ago(50)


# --- eviction -------------------------------------------------------------------------------

def pod(*tolerations: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"nodeName": "n1", "tolerations": list(tolerations)}}


@pytest.mark.parametrize("tol, matches", [
    ({"key": nh.UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}, True),
    ({"key": nh.UNREACHABLE, "operator": "Exists"}, True),
    ({"operator": "Exists"}, True),
    ({"key": nh.UNREACHABLE, "effect": "NoSchedule", "operator": "Exists"}, False),
    ({"key": nh.NOT_READY, "operator": "Exists"}, False),
    ({"key": nh.UNREACHABLE, "operator": "Equal", "value": ""}, True),
    ({"key": nh.UNREACHABLE, "value": "x"}, False),
])
def test_tolerates(tol: dict[str, Any], matches: bool) -> None:
    assert nh.tolerates(tol, nh.UNREACHABLE, nh.NO_EXECUTE) is matches


def test_eviction_delay() -> None:
    forever = {"key": nh.UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}
    short = {**forever, "tolerationSeconds": 30}
    shorter = {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}
    negative = {**forever, "tolerationSeconds": -5}
    assert nh.eviction_delay(pod(), 300) == 300
    assert nh.eviction_delay({"spec": {}}, 300) == 300
    assert nh.eviction_delay(pod(forever), 300) is None
    assert nh.eviction_delay(pod(short), 300) == 30
    assert nh.eviction_delay(pod(forever, short, shorter), 300) == 10
    assert nh.eviction_delay(pod(negative), 300) == 0
    assert nh.eviction_delay(pod({"key": "other", "operator": "Exists"}), 300) == 300


def test_eviction_due() -> None:
    assert not nh.eviction_due(pod(), ago(299), NOW, 300)
    assert nh.eviction_due(pod(), ago(300), NOW, 300)
    forever = {"operator": "Exists"}
    assert not nh.eviction_due(pod(forever), ago(10**6), NOW, 300)


@pytest.mark.parametrize("states, paused", [
    ([], False), (["True"], False), (["True", "Unknown"], False), (["Unknown"], True),
    (["Unknown", "False"], True), ([None], False), ([None, "Unknown"], True),
])
def test_full_disruption(states: list[str | None], paused: bool) -> None:
    assert nh.full_disruption(states) is paused


def test_node_name_index() -> None:
    assert nh.node_name_index(pod()) == ["n1"]
    assert nh.node_name_index({"spec": {}}) == []
    assert nh.node_name_index({}) == []
