"""`arktos.scheduler.scores`: each score's vector on small tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from arktos.scheduler import scores as s
from arktos.scheduler.arrays import IntArray
from arktos.scheduler.nodes import NodeTable
from tests.scheduler.test_nodes import make_node, make_pod, table_of

Obj = dict[str, Any]


def every(table: NodeTable) -> IntArray:
    return np.flatnonzero(table.live[: table.size])


def values(vector: Any) -> list[float]:
    assert vector is not None
    return [round(float(v), 3) for v in vector]


def test_least_allocated_and_balanced_allocation() -> None:
    table = table_of(make_node("empty", cpu="4", memory="4Gi"),
                     make_node("half", cpu="4", memory="4Gi"),
                     make_node("nothing", cpu="0", memory="4Gi"))
    table.add_pod(make_pod("x", cpu="2", memory="1Gi"), "half")
    pod = make_pod("p", cpu="1", memory="1Gi")
    # shares used after placing p: empty (.25, .25), half (.75, .5), nothing (1, .25)
    assert values(s.least_allocated(table, pod, every(table))) == [75.0, 37.5, 37.5]
    assert values(s.balanced_allocation(table, pod, every(table))) == [100.0, 87.5, 62.5]


def test_missing_requests_are_scored_as_kubernetes_defaults() -> None:
    table = table_of(make_node("n", cpu="1", memory="1Gi"))
    # 100m of 1 cpu; 200Mi of 1Gi
    assert values(s.least_allocated(table, make_pod("p"), every(table))) == [85.234]


def test_node_affinity_scales_preferred_weights() -> None:
    table = table_of(make_node("a", labels={"disk": "ssd", "zone": "x"}),
                     make_node("b", labels={"disk": "ssd"}), make_node("c"))
    preferred = [{"weight": 1, "preference": {"matchExpressions": [
                     {"key": "disk", "operator": "In", "values": ["ssd"]}]}},
                 {"weight": 3, "preference": {"matchExpressions": [
                     {"key": "zone", "operator": "Exists"}]}}]
    pod = make_pod("p", affinity={"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": preferred}})
    assert values(s.node_affinity(table, pod, every(table))) == [100.0, 25.0, 0.0]
    assert values(s.node_affinity(table, pod, np.array([1, 2]))) == [100.0, 0.0]
    assert s.node_affinity(table, pod, np.array([2])) is None
    assert s.node_affinity(table, make_pod("q"), every(table)) is None


def test_taint_toleration_prefers_fewer_untolerated_soft_taints() -> None:
    soft = [{"key": "a", "value": "", "effect": "PreferNoSchedule"},
            {"key": "b", "value": "", "effect": "PreferNoSchedule"}]
    table = table_of(make_node("clean"), make_node("one", taints=soft[:1]),
                     make_node("two", taints=soft),
                     make_node("hard", taints=[{"key": "h", "effect": "NoSchedule"}]))
    assert values(s.taint_toleration(table, make_pod("p"), every(table))) == [
        100.0, 50.0, 0.0, 100.0]
    tolerant = make_pod("p", tolerations=[{"key": "b", "operator": "Exists"}])
    assert values(s.taint_toleration(table, tolerant, every(table))) == [
        100.0, 0.0, 0.0, 100.0]
    assert s.taint_toleration(table_of(make_node("n")), make_pod("p"), np.array([0])) is None


def test_selector_spread_by_tenant_and_owner() -> None:
    table = table_of(make_node("a"), make_node("b"), make_node("c"))
    for name, node in (("p1", "a"), ("p2", "a"), ("p3", "b")):
        table.add_pod(make_pod(name, owner="rs"), node)
    table.add_pod(make_pod("g", owner="rs", tenant="globex"), "c")
    pod = make_pod("p", owner="rs")
    assert values(s.selector_spread(table, pod, every(table))) == [0.0, 50.0, 100.0]
    assert s.selector_spread(table, make_pod("q"), every(table)) is None
    assert s.selector_spread(table, make_pod("q", owner="other"), every(table)) is None
    assert values(s.selector_spread(table, make_pod("g2", owner="rs", tenant="globex"),
                                    every(table))) == [100.0, 100.0, 0.0]


def test_inter_pod_affinity_preferences() -> None:
    table = table_of(make_node("a1", labels={"zone": "a"}), make_node("a2", labels={"zone": "a"}),
                     make_node("b1", labels={"zone": "b"}), make_node("none"))
    table.add_pod(make_pod("db", labels={"app": "db"}), "a1")
    table.add_pod(make_pod("web", labels={"app": "web"}), "b1")
    table.add_pod(make_pod("web2", labels={"app": "web"}), "b1")

    def term(app: str, weight: int) -> Obj:
        return {"weight": weight, "podAffinityTerm": {
            "labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "zone"}}
    pod = make_pod("p", affinity={
        "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [term("db", 10)]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            term("web", 5)]}})
    # raw: a1 +10, a2 +10, b1 -10, none 0 -> scaled min..max
    assert values(s.inter_pod_affinity(table, pod, every(table))) == [100.0, 100.0, 0.0, 50.0]
    assert s.inter_pod_affinity(table, make_pod("q"), every(table)) is None


def test_total_weighs_and_skips_scores() -> None:
    table = table_of(make_node("a"), make_node("b"))
    table.add_pod(make_pod("x", cpu="2", owner="rs"), "a")
    pod = make_pod("p", cpu="1", owner="rs")
    rows = every(table)
    least = s.least_allocated(table, pod, rows)
    balanced = s.balanced_allocation(table, pod, rows)
    spread = s.selector_spread(table, pod, rows)
    assert spread is not None
    expected = least + balanced + 2 * spread
    assert np.allclose(s.total(table, pod, rows), expected)
    only_spread = s.Weights(least_allocated=0, balanced_allocation=0)
    assert np.allclose(s.total(table, pod, rows, weights=only_spread), 2 * spread)


def test_default_weights() -> None:
    assert s.DEFAULT_WEIGHTS == s.Weights(1, 1, 2, 3, 2, 2)
    with pytest.raises(AttributeError):
        s.DEFAULT_WEIGHTS.node_affinity = 5  # type: ignore[misc]


def test_weights_are_parsed_over_the_defaults() -> None:
    from arktos.scheduler.scores import DEFAULT_WEIGHTS, parse_weights
    assert parse_weights("") == DEFAULT_WEIGHTS
    weights = parse_weights("least_allocated=2, selector_spread=0")
    assert weights.least_allocated == 2 and weights.selector_spread == 0
    assert weights.node_affinity == DEFAULT_WEIGHTS.node_affinity
    for bad, why in (("spread=1", "not a score weight"), ("node_affinity", "not a score"),
                     ("node_affinity=x", "must be a number"),
                     ("node_affinity=-1", "must not be negative")):
        with pytest.raises(ValueError, match=why):
            parse_weights(bad)
