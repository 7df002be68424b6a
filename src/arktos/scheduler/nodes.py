"""The scheduler cache: nodes as rows of numpy arrays, and the pods placed on them.

Row layout. Every node owns one row `r < size` of each column; `live[r]` says whether the
row holds a node. A removed node's row is zeroed and reused by the next new node (free
list); when none is free the arrays double. Invariants, for every row:

* `free == allocatable - requested`, and all three are 0 on dead rows (so a dead row never
  fits a pod: it has no room for one more pod);
* `requested` is the sum of `PodInfo.request` of the pods attached to the row, assumed ones
  included; `nonzero_requested` the same for `score_request`.

`version` changes whenever anything the static filters read changes (a node added or
removed, its labels, taints, `unschedulable` or runtime readiness); `memo` keeps values
computed from node state until then. Capacity changes (allocatable) and pods do not bump it.

Pods are recorded by key with their node's name even while that node is unknown (informer
events may arrive in any order); they are attached to the node's row while it exists.
Callers record only pods that use resources (not Succeeded/Failed ones).

No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from arktos.api.quantity import int_value, milli_value
from arktos.api.quota import quantities
from arktos.scheduler.arrays import BoolArray, FloatArray
from arktos.scheduler.columns import LabelColumns, TaintIndex
from arktos.scheduler.podindex import PodIndex
from arktos.scheduler.podinfo import (
    CPU,
    RESOURCES,
    NodeRequirement,
    NodeTerm,
    PodInfo,
    Taint,
    parse_int,
)

__all__ = ["MAX_MEMO", "NodeState", "NodeTable", "node_state"]

T = TypeVar("T")
MAX_MEMO = 8192
"""Memoized values kept per `version`; past this the memo is cleared."""
_CONTAINER_READY = "ContainerRuntimeReady"
_VM_READY = "VmRuntimeReady"


@dataclass(frozen=True, slots=True)
class NodeState:
    """What the scheduler reads from a Node object."""

    name: str
    labels: dict[str, str]
    taints: tuple[Taint, ...]
    unschedulable: bool
    container_ready: bool
    vm_ready: bool
    allocatable: tuple[float, ...]

    def same_filters(self, other: NodeState) -> bool:
        """Whether the static filters see both states the same (allocatable aside)."""
        return (self.labels == other.labels and self.taints == other.taints
                and self.unschedulable == other.unschedulable
                and self.container_ready == other.container_ready
                and self.vm_ready == other.vm_ready)


def _runtime_ready(conditions: Any) -> tuple[bool, bool]:
    """(container, VM) readiness: a condition counts when its status is "True"; without a
    `ContainerRuntimeReady` condition the node runs containers, never VMs without its own."""
    found = {c.get("type"): c.get("status") == "True"
             for c in conditions if isinstance(c, dict)} if isinstance(conditions, list) else {}
    return found.get(_CONTAINER_READY, True), found.get(_VM_READY, False)


def _allocatable(status: dict[str, Any]) -> tuple[float, ...]:
    """`status.allocatable`, per resource falling back to `status.capacity`; 0 if neither."""
    allocatable, capacity = quantities(status.get("allocatable")), quantities(
        status.get("capacity"))
    out = []
    for i, name in enumerate(RESOURCES):
        amount = allocatable.get(name, capacity.get(name))
        if amount is None:
            out.append(0.0)
        else:
            out.append(float(milli_value(amount) if i == CPU else int_value(amount)))
    return tuple(out)


def _taints(spec: dict[str, Any]) -> tuple[Taint, ...]:
    raw = spec.get("taints")
    items = [t for t in raw if isinstance(t, dict)] if isinstance(raw, list) else []
    return tuple(Taint(str(t.get("key") or ""), str(t.get("value") or ""),
                       str(t.get("effect") or "")) for t in items)


def node_state(node: dict[str, Any]) -> NodeState:
    """Parse a Node object (malformed parts read as absent)."""
    meta, spec, status = (node.get(k) or {} for k in ("metadata", "spec", "status"))
    raw = meta.get("labels")
    labels: dict[Any, Any] = raw if isinstance(raw, dict) else {}
    container_ready, vm_ready = _runtime_ready(status.get("conditions"))
    return NodeState(
        name=str(meta.get("name") or ""),
        labels={k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)},
        taints=_taints(spec), unschedulable=spec.get("unschedulable") is True,
        container_ready=container_ready, vm_ready=vm_ready,
        allocatable=_allocatable(status))


class NodeTable:
    """Nodes as rows (see the module doc). Not thread-safe: one owner mutates it."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = max(1, capacity)
        self.size = 0
        """Rows ever used; every row >= size is dead. Masks have this length."""
        self.version = 0
        self.next_start = 0
        """Rotation cursor of `algorithm.schedule`: the row its next search starts at."""
        self.allocatable = self._floats(len(RESOURCES))
        self.requested = self._floats(len(RESOURCES))
        self.free = self._floats(len(RESOURCES))
        self.nonzero_requested = self._floats(2)
        self.live = np.zeros(self.capacity, dtype=np.bool_)
        self.unschedulable = np.zeros(self.capacity, dtype=np.bool_)
        self.container_ready = np.zeros(self.capacity, dtype=np.bool_)
        self.vm_ready = np.zeros(self.capacity, dtype=np.bool_)
        self.labels = LabelColumns(self.capacity)
        self.taints = TaintIndex(self.capacity)
        self.pods = PodIndex()
        self.states: list[NodeState | None] = []
        """Per row: the node's parsed state, None for dead rows."""
        self._rows: dict[str, int] = {}
        self._free_rows: list[int] = []
        self._records: dict[str, tuple[PodInfo, str]] = {}
        self._on_node: dict[str, set[str]] = {}
        self._memo: dict[Hashable, Any] = {}
        self._memo_version = 0

    def _floats(self, columns: int) -> FloatArray:
        # Column-major, so one resource over all rows is contiguous.
        return np.zeros((self.capacity, columns), dtype=np.float64, order="F")

    # --- nodes --------------------------------------------------------------------------------

    def __len__(self) -> int:
        """The number of nodes."""
        return len(self._rows)

    def __contains__(self, name: object) -> bool:
        """Whether a node of that name is known."""
        return name in self._rows

    def node_names(self) -> list[str]:
        """Names of the nodes, in row order."""
        return [s.name for s in self.states if s is not None]

    def row_of(self, name: str) -> int | None:
        """The row of node `name`, if known."""
        return self._rows.get(name)

    def name_of(self, row: int) -> str:
        """The name of the node on a live `row`."""
        state = self.states[row]
        assert state is not None, f"row {row} is dead"
        return state.name

    def upsert_node(self, node: dict[str, Any]) -> None:
        """Add a node or apply its new state. Ignores a node without a name."""
        state = node_state(node)
        if not state.name:
            return
        row = self._rows.get(state.name)
        if row is None:
            self._add_row(state)
            return
        old = self.states[row]
        assert old is not None
        if not state.same_filters(old):
            self._unindex(row, old)
            self._index(row, state)
            self.version += 1
        self.states[row] = state
        self._set_allocatable(row, state.allocatable)

    def remove_node(self, name: str) -> bool:
        """Forget node `name` (its pods stay recorded, detached). False if unknown."""
        row = self._rows.pop(name, None)
        if row is None:
            return False
        for key in self._on_node.get(name, ()):
            self._detach(self._records[key][0], row)
        state = self.states[row]
        assert state is not None
        self._unindex(row, state)
        self._set_allocatable(row, (0.0,) * len(RESOURCES))
        self.live[row] = False
        self.states[row] = None
        self._free_rows.append(row)
        self.version += 1
        return True

    def _add_row(self, state: NodeState) -> None:
        if self._free_rows:
            row = self._free_rows.pop()
        else:
            if self.size == self.capacity:
                self._grow(2 * self.capacity)
            row = self.size
            self.size += 1
            self.states.append(None)
        self._rows[state.name] = row
        self.states[row] = state
        self.live[row] = True
        self._index(row, state)
        self._set_allocatable(row, state.allocatable)
        for key in self._on_node.get(state.name, ()):
            self._attach(self._records[key][0], row)
        self.version += 1

    def _index(self, row: int, state: NodeState) -> None:
        self.labels.add(row, state.labels)
        self.taints.add(row, state.taints)
        self.unschedulable[row] = state.unschedulable
        self.container_ready[row] = state.container_ready
        self.vm_ready[row] = state.vm_ready

    def _unindex(self, row: int, state: NodeState) -> None:
        self.labels.discard(row, state.labels)
        self.taints.discard(row, state.taints)
        self.unschedulable[row] = self.container_ready[row] = self.vm_ready[row] = False

    def _set_allocatable(self, row: int, allocatable: tuple[float, ...]) -> None:
        new = np.array(allocatable)
        self.free[row] += new - self.allocatable[row]
        self.allocatable[row] = new

    def _grow(self, capacity: int) -> None:
        for name in ("allocatable", "requested", "free", "nonzero_requested"):
            old: FloatArray = getattr(self, name)
            grown = np.zeros((capacity, old.shape[1]), dtype=np.float64, order="F")
            grown[: self.capacity] = old
            setattr(self, name, grown)
        for name in ("live", "unschedulable", "container_ready", "vm_ready"):
            old_mask: BoolArray = getattr(self, name)
            grown_mask = np.zeros(capacity, dtype=np.bool_)
            grown_mask[: self.capacity] = old_mask
            setattr(self, name, grown_mask)
        self.labels.grow(capacity)
        self.taints.grow(capacity)
        self.capacity = capacity

    # --- pods ---------------------------------------------------------------------------------

    def add_pod(self, info: PodInfo, node_name: str) -> None:
        """Record `info` as running (or assumed) on `node_name`; replaces an earlier record
        of the same key."""
        if info.key in self._records:
            self.remove_pod(info.key)
        self._records[info.key] = (info, node_name)
        self._on_node.setdefault(node_name, set()).add(info.key)
        row = self._rows.get(node_name)
        if row is not None:
            self._attach(info, row)

    def remove_pod(self, key: str) -> PodInfo | None:
        """Forget the pod `key`; returns its record's info, None if unknown."""
        record = self._records.pop(key, None)
        if record is None:
            return None
        info, node_name = record
        on_node = self._on_node[node_name]
        on_node.discard(key)
        if not on_node:
            del self._on_node[node_name]
        row = self._rows.get(node_name)
        if row is not None:
            self._detach(info, row)
        return info

    def pod(self, key: str) -> tuple[PodInfo, str] | None:
        """The recorded (pod, node name) of `key`."""
        return self._records.get(key)

    def pods_on(self, name: str) -> list[PodInfo]:
        """The pods recorded on node `name`."""
        return [self._records[k][0] for k in self._on_node.get(name, ())]

    def _attach(self, info: PodInfo, row: int) -> None:
        self.requested[row] += info.request
        self.free[row] -= info.request
        self.nonzero_requested[row] += info.score_request
        self.pods.attach(info, row)

    def _detach(self, info: PodInfo, row: int) -> None:
        self.requested[row] -= info.request
        self.free[row] += info.request
        self.nonzero_requested[row] -= info.score_request
        self.pods.detach(info, row)

    # --- queries the filters and scores need --------------------------------------------------

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()`, remembered under `key` until `version` changes. Only for values that
        depend on node state alone (never on pods)."""
        if self._memo_version != self.version or len(self._memo) >= MAX_MEMO:
            self._memo.clear()
            self._memo_version = self.version
        try:
            value: T = self._memo[key]
        except KeyError:
            value = self._memo[key] = compute()
        return value

    def live_rows(self) -> BoolArray:
        """A fresh mask of the live rows."""
        return self.live[: self.size].copy()

    def none(self) -> BoolArray:
        """A fresh all-False mask."""
        return np.zeros(self.size, dtype=np.bool_)

    def label_rows(self, key: str, values: tuple[str, ...]) -> BoolArray:
        """Rows whose label `key` has one of `values`."""
        col = self.labels.get(key)
        return col.rows_in(values, self.size) if col is not None else self.none()

    def has_label(self, key: str) -> BoolArray:
        """Rows with label `key`."""
        col = self.labels.get(key)
        return col.column[: self.size] >= 0 if col is not None else self.none()

    def requirement_rows(self, req: NodeRequirement) -> BoolArray:
        """Rows (live or not) matching one node-selector requirement."""
        if req.field:
            rows = self.none()
            rows[[r for n in req.values if (r := self._rows.get(n)) is not None]] = True
            return rows if req.op == "In" else ~rows
        if req.op in ("In", "NotIn"):
            rows = self.label_rows(req.key, req.values)
            return rows if req.op == "In" else ~rows
        if req.op in ("Exists", "DoesNotExist"):
            rows = self.has_label(req.key)
            return rows if req.op == "Exists" else ~rows
        return self._compare_rows(req)

    def _compare_rows(self, req: NodeRequirement) -> BoolArray:
        """Gt/Lt: rows whose label is an integer above/below the requirement's."""
        col = self.labels.get(req.key)
        if col is None:
            return self.none()
        bound = parse_int(req.values[0])
        assert bound is not None  # pod_info keeps only valid Gt/Lt requirements
        codes = []
        for value, code in col.items():
            number = parse_int(value)
            if number is not None and ((number > bound) if req.op == "Gt" else (number < bound)):
                codes.append(code)
        return col.lookup(codes)[col.column[: self.size]]

    def term_rows(self, term: NodeTerm) -> BoolArray:
        """Live rows matching every requirement of `term` (none for an empty term)."""
        rows = self.live_rows() if term.requirements else self.none()
        for req in term.requirements:
            rows &= self.requirement_rows(req)
        return rows
