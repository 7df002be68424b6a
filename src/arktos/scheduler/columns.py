"""Per-row indexes of node labels and taints, kept incrementally by `NodeTable`.

`LabelColumns` stores, for every label key, an int32 column of value codes (-1: the node has
no such label), so a requirement on a label becomes one comparison or one table lookup over
the column. `TaintIndex` stores one boolean row mask per distinct taint. Both cost
O(labels or taints of the node) per node change. Arrays have the table's capacity; callers
slice them to the rows in use.

No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from arktos.scheduler.arrays import BoolArray, CodeArray
from arktos.scheduler.podinfo import Taint

__all__ = ["LabelColumn", "LabelColumns", "TaintIndex"]


class LabelColumn:
    """One label key. Invariant: `codes[v] == c` iff `values[c] == v` and `counts[c] > 0`
    (rows with the value); codes of values no row has any more are reused."""

    __slots__ = ("codes", "column", "counts", "free", "values")

    def __init__(self, capacity: int) -> None:
        self.column: CodeArray = np.full(capacity, -1, dtype=np.int32)
        self.codes: dict[str, int] = {}
        self.values: list[str | None] = []
        self.counts: list[int] = []
        self.free: list[int] = []

    def add(self, row: int, value: str) -> None:
        """Give `row` the label value (the row must have none for this key)."""
        code = self.codes.get(value)
        if code is None:
            code = self.free.pop() if self.free else len(self.values)
            if code == len(self.values):
                self.values.append(value)
                self.counts.append(0)
            self.values[code] = value
            self.codes[value] = code
        self.counts[code] += 1
        self.column[row] = code

    def discard(self, row: int) -> None:
        """Take the label off `row` (no-op if it has none)."""
        code = int(self.column[row])
        if code < 0:
            return
        self.column[row] = -1
        self.counts[code] -= 1
        if self.counts[code] == 0:
            value = self.values[code]
            assert value is not None
            del self.codes[value]
            self.values[code] = None
            self.free.append(code)

    def lookup(self, codes: list[int]) -> BoolArray:
        """A table indexed by code (+1 trailing False slot, so code -1 maps to False)."""
        table = np.zeros(len(self.values) + 1, dtype=np.bool_)
        table[codes] = True
        return table

    def rows_in(self, values: tuple[str, ...], size: int) -> BoolArray:
        """Rows (< size) whose value is one of `values`."""
        codes = [c for v in values if (c := self.codes.get(v)) is not None]
        col = self.column[:size]
        if not codes:
            return np.zeros(size, dtype=np.bool_)
        rows: BoolArray = col == codes[0] if len(codes) == 1 else self.lookup(codes)[col]
        return rows

    def items(self) -> Iterator[tuple[str, int]]:
        """(value, code) for every value some row has."""
        return iter(self.codes.items())


class LabelColumns:
    """Label columns by key; a column exists once any node had the key."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.columns: dict[str, LabelColumn] = {}

    def grow(self, capacity: int) -> None:
        """Extend every column to `capacity` rows (new rows have no labels)."""
        for col in self.columns.values():
            grown = np.full(capacity, -1, dtype=np.int32)
            grown[: self.capacity] = col.column
            col.column = grown
        self.capacity = capacity

    def add(self, row: int, labels: Mapping[str, str]) -> None:
        """Index the labels of a row that has none indexed."""
        for key, value in labels.items():
            col = self.columns.get(key)
            if col is None:
                col = self.columns[key] = LabelColumn(self.capacity)
            col.add(row, value)

    def discard(self, row: int, labels: Mapping[str, str]) -> None:
        """Un-index the labels `row` was indexed with."""
        for key in labels:
            col = self.columns.get(key)
            if col is not None:
                col.discard(row)

    def get(self, key: str) -> LabelColumn | None:
        """The column of `key`, if any node ever had it."""
        return self.columns.get(key)


class TaintIndex:
    """Rows per distinct taint. Invariant: `rows[t][r]` iff live row r has taint t, and
    `counts[t]` is the number of such rows (a taint leaves the index at zero)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rows: dict[Taint, BoolArray] = {}
        self.counts: dict[Taint, int] = {}

    def grow(self, capacity: int) -> None:
        """Extend every mask to `capacity` rows."""
        for taint, mask in self.rows.items():
            grown = np.zeros(capacity, dtype=np.bool_)
            grown[: self.capacity] = mask
            self.rows[taint] = grown
        self.capacity = capacity

    def add(self, row: int, taints: tuple[Taint, ...]) -> None:
        """Index the (distinct) taints of a row."""
        for taint in set(taints):
            mask = self.rows.get(taint)
            if mask is None:
                mask = self.rows[taint] = np.zeros(self.capacity, dtype=np.bool_)
                self.counts[taint] = 0
            mask[row] = True
            self.counts[taint] += 1

    def discard(self, row: int, taints: tuple[Taint, ...]) -> None:
        """Un-index the taints `row` was indexed with."""
        for taint in set(taints):
            self.rows[taint][row] = False
            self.counts[taint] -= 1
            if self.counts[taint] == 0:
                del self.rows[taint], self.counts[taint]

    def taints(self) -> Iterator[tuple[Taint, BoolArray]]:
        """Every taint some live row has, with its full-capacity row mask."""
        return iter(self.rows.items())
