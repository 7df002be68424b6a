"""The storage contract the API server is written against.

A store is a flat, ordered key space of byte values with one global revision counter, shaped
like etcd v3: every successful write gets the next revision; revisions only go up, also across
restarts. Keys are `str` (UTF-8), values opaque `bytes`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol


class StorageError(Exception):
    """Base of the named storage errors."""


class KeyExists(StorageError):
    """`create` of a key that is present."""


class KeyNotFound(StorageError):
    """`update`/`delete` of a key that is absent."""


class Conflict(StorageError):
    """`update`/`delete` whose expected revision is not the key's current mod revision.

    `current` holds the key's present value (None if the key is gone)."""

    def __init__(self, current: KeyValue | None) -> None:
        super().__init__("revision mismatch")
        self.current = current


class Compacted(StorageError):
    """A read or watch at a revision older than the compacted revision.

    `revision` is the oldest revision still available."""

    def __init__(self, revision: int) -> None:
        super().__init__(f"required revision has been compacted (oldest: {revision})")
        self.revision = revision


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """One change. For PUT, `kv` is the new value and `prev` the previous one (None on create).

    For DELETE, `kv.value` is the deleted value, `kv.mod_revision` the revision of the delete,
    and `prev` the value before deletion (same bytes, old mod revision)."""

    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


class Storage(Protocol):
    """What every backend provides. All methods are safe to call concurrently from one loop."""

    async def get(self, key: str) -> KeyValue | None:
        """The current value of `key`, or None."""
        ...

    async def range(self, prefix: str, *, revision: int = 0, start_after: str = "",
                    limit: int = 0) -> tuple[list[KeyValue], int, bool]:
        """Keys starting with `prefix` (sorted by key, only keys > `start_after`), as of
        `revision` (0 = now). Returns (items, the revision read at, more items remain).

        `limit` 0 means no limit. Raises `Compacted` for a revision older than the compacted one,
        and `StorageError` for a revision in the future."""
        ...

    async def create(self, key: str, value: bytes) -> int:
        """Store a new key; returns its revision. Raises `KeyExists`."""
        ...

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> int:
        """Replace a key if its mod revision is `expected_revision`; returns the new revision.
        Raises `KeyNotFound` or `Conflict`."""
        ...

    async def delete(self, key: str, *, expected_revision: int = 0) -> int:
        """Delete a key (if `expected_revision` is non-zero, only at that mod revision);
        returns the revision of the delete. Raises `KeyNotFound` or `Conflict`."""
        ...

    def watch(self, prefix: str, *, from_revision: int) -> AsyncIterator[Event]:
        """Every change under `prefix` with revision >= `from_revision`, in revision order,
        first the history then live changes, until the consumer stops iterating (`aclose`).

        Raises `Compacted` (on first iteration) when `from_revision` is older than the compacted
        revision."""
        ...

    async def current_revision(self) -> int:
        """The revision of the latest write (0 for an empty, never-written store)."""
        ...

    async def compact(self, revision: int) -> None:
        """Forget history before `revision`; reads and watches below it raise `Compacted`."""
        ...

    async def close(self) -> None:
        """Release connections, threads and files. Acknowledged writes are durable already."""
        ...
