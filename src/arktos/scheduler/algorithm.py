"""One scheduling decision: filter, sample, score, pick (Kubernetes' generic scheduler).

1. `filters.feasible`: the nodes passing every filter, as one mask (node-only filters come
   cached per pod signature, so a pod costs a few array operations however many filters).
2. Sample: like Kubernetes' `percentageOfNodesToScore`, only `nodes_to_score` feasible nodes
   are scored, taken in row order from a rotating start (`table.next_start`), so successive
   pods look at different parts of a large cluster.
3. `scores.total` over the sample; the highest wins, ties going to the first in rotation
   order. The start then moves past the examined rows (past the chosen row when every
   feasible node was scored), so equal nodes take turns.
4. No node fits: `Decision.reasons` counts nodes per reason (`filters.rejections`) and
   `message` is Kubernetes' "0/5 nodes are available: 3 Insufficient cpu, 2 VM runtime not
   ready." with the reasons sorted by their text.

`schedule` only reads the table (and moves its rotation cursor); `assume` records the pod on
its node so the next decision sees it; `schedule_all` does both for a batch.

No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from arktos.scheduler.arrays import IntArray
from arktos.scheduler.filters import feasible, rejections
from arktos.scheduler.nodes import NodeTable
from arktos.scheduler.podinfo import PodInfo
from arktos.scheduler.scores import DEFAULT_WEIGHTS, Weights, total

__all__ = [
    "MIN_NODES_TO_SCORE", "NO_NODES", "Decision", "assume", "fit_error_message", "forget",
    "nodes_to_score", "schedule", "schedule_all",
]

MIN_NODES_TO_SCORE = 100
MIN_PERCENTAGE_TO_SCORE = 5
BASE_PERCENTAGE_TO_SCORE = 50
NO_NODES = "no nodes available to schedule pods"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one pod: `node` None when no node fits. `feasible` is how many nodes
    passed every filter; `reasons` (only when none did) counts nodes per rejection reason."""

    node: str | None
    feasible: int
    reasons: dict[str, int] = field(default_factory=dict)
    message: str = ""


def nodes_to_score(num_nodes: int, percentage: int = 0) -> int:
    """Kubernetes' `numFeasibleNodesToFind`: all nodes below 100 or at 100%; else
    `percentage` of them (0: adaptive, 50% minus 1% per 125 nodes, at least 5%), at
    least 100."""
    if num_nodes < MIN_NODES_TO_SCORE or percentage >= 100:
        return num_nodes
    if percentage <= 0:
        percentage = max(BASE_PERCENTAGE_TO_SCORE - num_nodes // 125, MIN_PERCENTAGE_TO_SCORE)
    return max(num_nodes * percentage // 100, MIN_NODES_TO_SCORE)


def fit_error_message(num_nodes: int, reasons: Mapping[str, int]) -> str:
    """`0/<n> nodes are available: <count> <reason>, ....` with reasons sorted by text."""
    if num_nodes == 0:
        return NO_NODES
    listed = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    return f"0/{num_nodes} nodes are available: {listed}."


def _sample(rows: IntArray, count: int, start: int) -> tuple[IntArray, int | None]:
    """Up to `count` of the sorted `rows`, in rotation order from the first row >= `start`;
    and the row to start the next search at (None: all rows were taken)."""
    first = int(np.searchsorted(rows, start))
    if len(rows) <= count:
        if first in (0, len(rows)):
            return rows, None
        return np.concatenate((rows[first:], rows[:first])), None
    taken = rows[first:first + count]
    if len(taken) < count:
        taken = np.concatenate((taken, rows[:count - len(taken)]))
    return taken, int(taken[-1]) + 1


def schedule(table: NodeTable, pod: PodInfo, *, weights: Weights = DEFAULT_WEIGHTS,
             percentage_of_nodes_to_score: int = 0, start: int | None = None) -> Decision:
    """Pick a node for `pod`, which must not be recorded in the table (`forget` it first).
    The table is not changed but for its rotation cursor, used and moved only when `start`
    is None; an explicit `start` row makes the decision reproducible."""
    rows = np.flatnonzero(feasible(table, pod))
    if not len(rows):
        reasons = rejections(table, pod)
        return Decision(None, 0, reasons, fit_error_message(len(table), reasons))
    begin = table.next_start if start is None else start
    count = nodes_to_score(len(table), percentage_of_nodes_to_score)
    sample, after = _sample(rows, count, begin)
    best = int(sample[0])
    if len(sample) > 1:
        best = int(sample[int(np.argmax(total(table, pod, sample, weights=weights)))])
    if start is None:
        table.next_start = (best + 1 if after is None else after) % max(table.size, 1)
    return Decision(table.name_of(best), len(rows))


def assume(table: NodeTable, pod: PodInfo, node: str) -> None:
    """Record `pod` on `node` before it is bound, so later decisions count it."""
    table.add_pod(pod, node)


def forget(table: NodeTable, pod: PodInfo) -> None:
    """Undo `assume` (e.g. the binding failed)."""
    table.remove_pod(pod.key)


def schedule_all(table: NodeTable, pods: Iterable[PodInfo], *,
                 weights: Weights = DEFAULT_WEIGHTS,
                 percentage_of_nodes_to_score: int = 0) -> list[Decision]:
    """`schedule` each pod in turn and `assume` it where it goes; one decision per pod."""
    out = []
    for pod in pods:
        decision = schedule(table, pod, weights=weights,
                            percentage_of_nodes_to_score=percentage_of_nodes_to_score)
        if decision.node is not None:
            assume(table, pod, decision.node)
        out.append(decision)
    return out
