"""Where the placed pods are, indexed for spreading and inter-pod affinity.

`NodeTable` attaches a pod to the row of its node (and detaches it) and this index keeps,
incrementally and per tenant (pods of one tenant never see another's):

* `spread[(tenant, owner)]`: pods of a controller per row (SelectorSpread);
* `selected(pod_selector)`: pods matching an affinity term's selector per row, built on first
  use and then kept up to date by every attach/detach (anchored on one `key=value` of the
  selector, so a pod is only checked against selectors that can match it);
* `holders[tenant][term]`: the rows of pods that state the required anti-affinity `term`
  (the "existing pods' anti-affinity" check of an incoming pod).

Row counts are sparse `{row: count}` dicts holding only positive counts: their size is the
number of rows with such pods, never the number of nodes.

No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable

from arktos.scheduler.podinfo import PodInfo, PodSelector, PodTerm

__all__ = ["MAX_SELECTORS", "PodIndex", "RowCounts", "Selected"]

RowCounts = dict[int, int]
LabelKey = tuple[str, str, str]
"""(tenant, label key, label value)"""
MAX_SELECTORS = 4096
"""Selector entries kept; past this all are dropped and rebuilt on demand."""


def _inc(counts: RowCounts, row: int) -> None:
    counts[row] = counts.get(row, 0) + 1


def _dec(counts: RowCounts, row: int) -> None:
    left = counts[row] - 1
    if left:
        counts[row] = left
    else:
        del counts[row]


class Selected:
    """The placed pods one `PodSelector` selects: `rows` per row, `total` overall."""

    __slots__ = ("pods", "rows", "total")

    def __init__(self, pods: PodSelector) -> None:
        self.pods = pods
        self.rows: RowCounts = {}
        self.total = 0

    def add(self, row: int) -> None:
        _inc(self.rows, row)
        self.total += 1

    def remove(self, row: int) -> None:
        _dec(self.rows, row)
        self.total -= 1


def _anchors(pods: PodSelector) -> list[LabelKey]:
    """Label keys every selected pod has one of (empty: no such requirement)."""
    reqs = pods.selector.requirements if pods.selector is not None else ()
    for op in ("=", "in"):
        for req in reqs:
            if req.op == op:
                return [(pods.tenant, req.key, v) for v in req.values]
    return []


class PodIndex:
    """Indexes of attached pods (see the module doc). A pod is attached to at most one row."""

    def __init__(self) -> None:
        self.placed: dict[str, dict[str, tuple[PodInfo, int]]] = {}
        """tenant -> pod key -> (pod, row)"""
        self.by_label: dict[LabelKey, set[str]] = {}
        self.spread: dict[tuple[str, str], RowCounts] = {}
        self.holders: dict[str, dict[PodTerm, RowCounts]] = {}
        self.holders_version = 0
        """Bumped whenever a term enters or leaves `holders` (not on count changes)."""
        self._selected: dict[PodSelector, Selected] = {}
        self._anchored: dict[LabelKey, list[Selected]] = {}
        self._unanchored: dict[str, list[Selected]] = {}
        self._matching: dict[tuple[str, str, frozenset[tuple[str, str]]], tuple[PodTerm, ...]]
        self._matching = {}
        self._matching_version = 0

    # --- attach / detach ------------------------------------------------------------------

    def attach(self, info: PodInfo, row: int) -> None:
        """Count `info` on `row` everywhere."""
        tenant = info.tenant
        self.placed.setdefault(tenant, {})[info.key] = (info, row)
        for key, value in info.labels.items():
            self.by_label.setdefault((tenant, key, value), set()).add(info.key)
        if info.owner:
            _inc(self.spread.setdefault((tenant, info.owner), {}), row)
        for sel in self._candidates(info):
            if sel.pods.matches(tenant, info.namespace, info.labels):
                sel.add(row)
        for term in info.anti_affinity:
            terms = self.holders.setdefault(tenant, {})
            if term not in terms:
                terms[term] = {}
                self.holders_version += 1
            _inc(terms[term], row)

    def detach(self, info: PodInfo, row: int) -> None:
        """Undo `attach(info, row)`."""
        tenant = info.tenant
        del self.placed[tenant][info.key]
        for key, value in info.labels.items():
            keys = self.by_label[(tenant, key, value)]
            keys.discard(info.key)
            if not keys:
                del self.by_label[(tenant, key, value)]
        if info.owner:
            owned = self.spread[(tenant, info.owner)]
            _dec(owned, row)
            if not owned:
                del self.spread[(tenant, info.owner)]
        for sel in self._candidates(info):
            if sel.pods.matches(tenant, info.namespace, info.labels):
                sel.remove(row)
        for term in info.anti_affinity:
            terms = self.holders[tenant]
            _dec(terms[term], row)
            if not terms[term]:
                del terms[term]
                self.holders_version += 1

    def _candidates(self, info: PodInfo) -> list[Selected]:
        out = list(self._unanchored.get(info.tenant, ()))
        for key, value in info.labels.items():
            out += self._anchored.get((info.tenant, key, value), ())
        return out

    # --- queries ----------------------------------------------------------------------------

    def selected(self, pods: PodSelector) -> Selected:
        """The attached pods `pods` selects (built from the placed pods on first use)."""
        sel = self._selected.get(pods)
        if sel is not None:
            return sel
        if len(self._selected) >= MAX_SELECTORS:
            self._selected.clear()
            self._anchored.clear()
            self._unanchored.clear()
        sel = self._selected[pods] = Selected(pods)
        anchors = _anchors(pods)
        for anchor in anchors:
            self._anchored.setdefault(anchor, []).append(sel)
        if not anchors:
            self._unanchored.setdefault(pods.tenant, []).append(sel)
        self._fill(sel, anchors)
        return sel

    def _fill(self, sel: Selected, anchors: list[LabelKey]) -> None:
        placed = self.placed.get(sel.pods.tenant, {})
        keys: Iterable[str] = placed
        if anchors:
            keys = set().union(*(self.by_label.get(a, set()) for a in anchors))
        for key in keys:
            info, row = placed[key]
            if sel.pods.matches(info.tenant, info.namespace, info.labels):
                sel.add(row)

    def spread_counts(self, tenant: str, owner: str) -> RowCounts:
        """Pods of `owner` (a controller uid) in `tenant` per row."""
        return self.spread.get((tenant, owner), {})

    def has_holders(self, tenant: str) -> bool:
        """Whether any attached pod of `tenant` states a required anti-affinity term."""
        return bool(self.holders.get(tenant))

    def holders_selecting(self, info: PodInfo) -> list[tuple[PodTerm, RowCounts]]:
        """The anti-affinity terms of attached pods that select `info`, with their rows."""
        terms = self.holders.get(info.tenant)
        if not terms:
            return []
        if self._matching_version != self.holders_version:
            self._matching.clear()
            self._matching_version = self.holders_version
        key = (info.tenant, info.namespace, frozenset(info.labels.items()))
        matching = self._matching.get(key)
        if matching is None:
            if len(self._matching) >= MAX_SELECTORS:
                self._matching.clear()
            matching = tuple(t for t in terms
                             if t.pods.matches(info.tenant, info.namespace, info.labels))
            self._matching[key] = matching
        return [(t, terms[t]) for t in matching]
