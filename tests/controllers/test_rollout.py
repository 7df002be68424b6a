"""Pure unit tests of the rollout math (`rollout`) and pod templates (`podtemplate`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from arktos.controllers import rollout
from arktos.controllers.podtemplate import (
    POD_TEMPLATE_HASH,
    equal_ignore_hash,
    pod_from_template,
    template_hash,
    with_hash_label,
)
from arktos.controllers.rollout import RS, Params

Obj = dict[str, Any]
NOW = 1_000_000.0


def params(replicas: int, surge: int | str = "25%", unavailable: int | str = "25%",
           **kw: Any) -> Params:
    return Params(replicas=replicas, max_surge=surge, max_unavailable=unavailable, **kw)


# --- fenceposts ----------------------------------------------------------------------------

def test_percentages_round_surge_up_and_unavailable_down() -> None:
    assert rollout.scaled_value("25%", 5, True) == 2
    assert rollout.scaled_value("25%", 5, False) == 1
    assert rollout.scaled_value("0%", 5, True) == 0
    assert rollout.scaled_value(3, 5, False) == 3
    assert rollout.fenceposts(params(10)) == (3, 2)
    assert rollout.fenceposts(params(3, "10%", 0)) == (1, 0)


def test_fenceposts_never_both_zero() -> None:
    assert rollout.fenceposts(params(3, 0, "10%")) == (0, 1)


def test_max_unavailable_is_capped_and_zero_for_recreate() -> None:
    assert rollout.max_unavailable(params(2, 1, 5)) == 2
    assert rollout.max_unavailable(params(0, 1, 1)) == 0
    assert rollout.max_unavailable(Params(replicas=4, recreate=True)) == 0
    assert rollout.max_surge(Params(replicas=4, recreate=True)) == 0


def test_params_read_a_deployment() -> None:
    p = Params.of({"metadata": {"generation": 4}, "spec": {
        "replicas": 6, "paused": True, "minReadySeconds": 5, "revisionHistoryLimit": 2,
        "progressDeadlineSeconds": 30,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2,
                                                                "maxUnavailable": "50%"}}}})
    assert p == Params(replicas=6, max_surge=2, max_unavailable="50%", min_ready_seconds=5,
                       revision_history_limit=2, progress_deadline=30, paused=True,
                       generation=4)
    assert Params.of({"spec": {"strategy": {"type": "Recreate"}}}).recreate


# --- rolling steps -------------------------------------------------------------------------

def test_new_replicaset_grows_within_surge() -> None:
    p = params(10, 3, 2)
    old = RS("old", replicas=10, pods=10, available=10)
    assert rollout.new_rs_replicas(p, [old], 0) == 3
    assert rollout.scale_new(p, [old, RS("new", 0)], RS("new", 0)) == 3
    crowded = RS("old", replicas=8, pods=10, available=10)   # deletions not seen yet
    assert rollout.new_rs_replicas(p, [crowded, RS("new", 3, pods=3)], 3) == 3
    assert rollout.scale_new(p, [RS("new", 12)], RS("new", 12)) == 10


def test_old_replicasets_shrink_to_minimum_availability() -> None:
    p = params(10, 3, 2)
    old = RS("old", replicas=10, pods=10, available=10)
    new = RS("new", replicas=3, pods=3, available=0)
    assert rollout.scale_old(p, [old], new) == {"old": 8}
    assert rollout.scale_old(p, [old], dataclasses.replace(new, available=3)) == {"old": 5}


def test_unhealthy_old_pods_go_first() -> None:
    p = params(4, 0, 1)
    broken = RS("broken", replicas=2, pods=2, available=0, created=1)
    healthy = RS("healthy", replicas=4, pods=4, available=4, created=2)
    new = RS("new", replicas=0)
    assert rollout.scale_old(p, [broken, healthy], new) == {"broken": 0, "healthy": 3}


def _simulate(p: Params, agent_per_step: int) -> None:
    """Run rolling steps against a model cluster (pods appear and go at once, unavailable
    ones are deleted first, the agent readies `agent_per_step` new pods per step) and check
    the bounds at every step."""
    surge, unavailable = rollout.max_surge(p), rollout.max_unavailable(p)
    old = RS("old", replicas=p.replicas, pods=p.replicas, available=p.replicas, created=1)
    new = RS("new", replicas=rollout.new_rs_replicas(p, [old], 0), created=2)
    for _ in range(20 * p.replicas + 20):
        new = dataclasses.replace(new, pods=new.replicas,
                                  available=min(new.replicas, new.available + agent_per_step))
        old = dataclasses.replace(old, pods=old.replicas, available=min(old.replicas,
                                                                        old.available))
        assert old.pods + new.pods <= p.replicas + surge
        assert old.available + new.available >= p.replicas - unavailable
        if new.available == p.replicas and old.pods == 0:
            return
        target = rollout.scale_new(p, [old, new], new)
        if target is not None:
            new = dataclasses.replace(new, replicas=target)
            continue
        downs = rollout.scale_old(p, [old], new)
        old = dataclasses.replace(old, replicas=downs.get("old", old.replicas))
    raise AssertionError(f"no convergence: {old} {new}")


@settings(max_examples=300, deadline=None)
@given(replicas=st.integers(1, 30),
       surge=st.one_of(st.integers(0, 5), st.sampled_from(["0%", "10%", "25%", "50%"])),
       unavailable=st.one_of(st.integers(0, 5), st.sampled_from(["0%", "25%", "100%"])),
       per_step=st.integers(1, 3))
def test_rolling_update_keeps_its_bounds_and_finishes(replicas: int, surge: int | str,
                                                      unavailable: int | str,
                                                      per_step: int) -> None:
    if surge in (0, "0%") and unavailable in (0, "0%"):
        return   # refused by validation
    _simulate(params(replicas, surge, unavailable), per_step)


def test_recreate_scales_old_down_then_waits_for_their_pods() -> None:
    p = Params(replicas=3, recreate=True)
    old = RS("old", replicas=3, pods=3, present=3)
    assert rollout.recreate_step(p, [old], None) == ({"old": 0}, False)
    going = RS("old", replicas=0, pods=0, present=1)
    assert rollout.recreate_step(p, [going], None) == ({}, False)
    gone = RS("old", replicas=0)
    assert rollout.recreate_step(p, [gone], None) == ({}, True)
    assert rollout.recreate_step(p, [gone], RS("new", 1)) == ({"new": 3}, True)
    assert rollout.new_rs_replicas(p, [gone], 0) == 3


# --- scaling -------------------------------------------------------------------------------

def test_resizing_mid_rollout_is_proportional() -> None:
    """Kubernetes' documented example: 10 replicas, maxSurge 3, mid-rollout at 8 old and 5
    new, scaled to 15: 3 more old and 2 more new."""
    p = params(15, 3, 2)
    old = RS("old", replicas=8, max_replicas=13, created=1)
    new = RS("new", replicas=5, max_replicas=13, created=2)
    assert rollout.scale_step(p, new, [old], status_replicas=13) == {"old": 11, "new": 7}
    down = params(5, 3, 2)
    assert rollout.scale_step(down, new, [old], status_replicas=13) == {"old": 5, "new": 3}
    assert rollout.scale_step(params(0, 3, 2), new, [old], 13) == {"old": 0, "new": 0}


def test_a_single_active_replicaset_takes_the_full_size() -> None:
    p = params(5)
    done = RS("new", replicas=3, desired=3)
    assert rollout.is_scaling_event(p, [done, RS("old", 0, desired=3)])
    assert rollout.scale_step(p, done, [RS("old", 0)], 3) == {"new": 5}
    assert rollout.scale_step(p, None, [RS("a", 0, created=1), RS("b", 0, created=2)],
                              0) == {"b": 5}
    saturated = RS("new", replicas=5, desired=5, available=5)
    assert rollout.scale_step(p, saturated, [RS("old", 2)], 7) == {"old": 0}
    assert not rollout.is_scaling_event(p, [saturated, RS("old", 0, desired=3)])


def test_cleanup_keeps_the_history_limit_and_busy_replicasets() -> None:
    olds = [RS(f"r{i}", 0, revision=i, created=i) for i in range(1, 5)]
    assert rollout.to_delete(params(1, revision_history_limit=2), olds) == ["r1", "r2"]
    busy = [dataclasses.replace(olds[0], pods=1), dataclasses.replace(olds[1], synced=False),
            *olds[2:]]
    assert rollout.to_delete(params(1, revision_history_limit=2), busy) == []
    assert rollout.to_delete(params(1, revision_history_limit=None), olds) == []


# --- revisions and annotations -------------------------------------------------------------

def test_new_replicaset_annotations() -> None:
    deployment = {"kubernetes.io/change-cause": "v2", rollout.REVISION: "7",
                  rollout.LAST_APPLIED: "{}"}
    fresh = rollout.new_rs_annotations(deployment, {}, 3)
    assert fresh == {"kubernetes.io/change-cause": "v2", rollout.REVISION: "3"}
    reused = rollout.new_rs_annotations(deployment, {rollout.REVISION: "1"}, 3)
    assert reused[rollout.REVISION] == "3" and reused[rollout.REVISION_HISTORY] == "1"
    again = rollout.new_rs_annotations({}, reused, 5)
    assert again[rollout.REVISION_HISTORY] == "1,3"
    assert rollout.new_rs_annotations({}, {rollout.REVISION: "9"}, 5)[rollout.REVISION] == "9"
    sized = rollout.replicas_annotations({}, params(4, 1, 1))
    assert sized == {rollout.DESIRED_REPLICAS: "4", rollout.MAX_REPLICAS: "5"}


# --- status --------------------------------------------------------------------------------

def _status(p: Params, rss: list[RS], new: RS | None, old: Obj | None = None,
            now: float = NOW) -> Obj:
    status = rollout.calculate_status(p, rss, new, old or {}, now)
    return rollout.with_progress(p, status, old or {}, "web", new.name if new else None, now)


def test_status_of_a_finished_rollout() -> None:
    p = params(3, generation=2)
    new = RS("web-abc", 3, pods=3, ready=3, available=3)
    status = _status(p, [new, RS("web-old", 0)], new)
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
        "availableReplicas": 3, "unavailableReplicas": 0}
    reasons = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert reasons == {"Available": ("True", "MinimumReplicasAvailable"),
                       "Progressing": ("True", "NewReplicaSetAvailable")}
    assert rollout.complete(p, status)
    assert rollout.requeue_after(p, status, NOW) is None


def test_progress_updates_the_condition_and_the_deadline_expires() -> None:
    p = params(4, 1, 1, progress_deadline=60)
    old = RS("old", 3, pods=4, ready=4, available=4)
    new = RS("new", 2, pods=2)
    before = _status(p, [old, new], new, now=NOW)
    started = rollout.get_condition(before, "Progressing")
    assert started is not None and started["reason"] == "ReplicaSetUpdated"
    ready_new = dataclasses.replace(new, ready=1, available=1)
    later = _status(p, [old, ready_new], ready_new, before, now=NOW + 30)
    cond = rollout.get_condition(later, "Progressing")
    assert cond is not None and cond["lastUpdateTime"] != cond["lastTransitionTime"]
    assert rollout.requeue_after(p, later, NOW + 30) == 61.0
    stuck = _status(p, [old, ready_new], ready_new, later, now=NOW + 100)
    cond = rollout.get_condition(stuck, "Progressing")
    assert cond is not None and (cond["status"], cond["reason"]) == (
        "False", "ProgressDeadlineExceeded")
    assert rollout.requeue_after(p, stuck, NOW + 100) is None
    unavailable = rollout.get_condition(_status(p, [RS("new", 4, pods=4)], None), "Available")
    assert unavailable is not None and unavailable["reason"] == "MinimumReplicasUnavailable"


def test_no_progressing_condition_without_a_deadline() -> None:
    p = params(1, progress_deadline=rollout.NO_DEADLINE)
    new = RS("new", 1, pods=1, ready=1, available=1)
    assert rollout.get_condition(_status(p, [new], new), "Progressing") is None


def test_replica_failures_of_replicasets_show_on_the_deployment() -> None:
    failure = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
               "message": "quota", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    status: Obj = {}
    rollout.set_replica_failure(status, [[], [{"type": "Other"}, failure]])
    cond = rollout.get_condition(status, "ReplicaFailure")
    assert cond is not None and (cond["reason"], cond["message"]) == ("FailedCreate", "quota")
    rollout.set_replica_failure(status, [[], []])
    assert rollout.get_condition(status, "ReplicaFailure") is None


def test_pausing_and_resuming_are_recorded() -> None:
    paused = rollout.paused_condition(params(1, paused=True), {}, NOW)
    assert paused is not None and paused["reason"] == "DeploymentPaused"
    status = {"conditions": [paused]}
    assert rollout.paused_condition(params(1, paused=True), status, NOW) is None
    resumed = rollout.paused_condition(params(1), status, NOW)
    assert resumed is not None and resumed["reason"] == "DeploymentResumed"


def test_set_condition_keeps_the_transition_time_while_the_status_stays() -> None:
    status: Obj = {}
    rollout.set_condition(status, rollout.new_condition("Available", "True", "A", "", NOW))
    rollout.set_condition(status, rollout.new_condition("Available", "True", "B", "", NOW + 9))
    [cond] = status["conditions"]
    assert cond["reason"] == "B" and cond["lastTransitionTime"] == "1970-01-12T13:46:40Z"


# --- pod templates -------------------------------------------------------------------------

TEMPLATE: Obj = {"metadata": {"labels": {"app": "web"}},
                 "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]}}


def test_template_hash_is_stable_short_and_safe() -> None:
    h = template_hash(TEMPLATE)
    assert h == template_hash({**TEMPLATE})
    assert 1 <= len(h) <= 10 and set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert h == template_hash(with_hash_label(TEMPLATE, "zzz"))
    roundtrip = {"metadata": {"labels": {"app": "web"}, "creationTimestamp": None},
                 "spec": {"containers": [{"name": "app", "image": "nginx:1.25",
                                          "resources": {}}]}}
    assert h == template_hash(roundtrip)
    assert h != template_hash(TEMPLATE, collision_count=1)
    other = {**TEMPLATE, "spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]}}
    assert h != template_hash(other)


def test_templates_compare_without_their_hash_label() -> None:
    assert equal_ignore_hash(with_hash_label(TEMPLATE, "abc"), TEMPLATE)
    other = {**TEMPLATE, "metadata": {"labels": {"app": "web", "v": "2"}}}
    assert not equal_ignore_hash(other, TEMPLATE)


def test_pod_from_template() -> None:
    rs = {"metadata": {"name": "web-abc", "namespace": "apps", "tenant": "acme",
                       "uid": "u1"},
          "spec": {"template": with_hash_label({**TEMPLATE, "metadata": {
              **TEMPLATE["metadata"], "annotations": {"a": "b"}}}, "abc")}}
    pod = pod_from_template(rs)
    md = pod["metadata"]
    assert md["generateName"] == "web-abc-"
    assert (md["tenant"], md["namespace"]) == ("acme", "apps")
    assert md["labels"] == {"app": "web", POD_TEMPLATE_HASH: "abc"}
    assert md["annotations"] == {"a": "b"}
    assert md["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                      "name": "web-abc", "uid": "u1", "controller": True,
                                      "blockOwnerDeletion": True}]
    assert pod["spec"] == TEMPLATE["spec"]
