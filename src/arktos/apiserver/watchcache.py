"""The API server's watch cache: current state and a window of recent events per resource,
fed by one storage watch over `/registry/`, so lists and watches are served from memory.

Contract:
- `revision` is the storage revision of the newest event applied; it only goes up.
- Every event with a revision in (`window_start`, `revision`] of a resource is in its window;
  a watch from an older revision raises `Compacted` (the client gets 410 Gone and relists).
- Objects are decoded and serialized once per change (`Entry.raw` carries resourceVersion).
- A watcher whose queue overflows (a consumer too slow for the event rate) is closed; its
  client re-watches from its last resourceVersion.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from arktos.api.resources import Registry, ResourceType
from arktos.storage import Compacted, KeyValue, Storage, StorageError

log = logging.getLogger(__name__)
ROOT = "/registry/"
WATCHER_QUEUE_LIMIT = 100_000


@dataclass(slots=True)
class Entry:
    """One object as served: the decoded dict (never mutate it) and its JSON bytes."""

    obj: dict[str, Any]
    raw: bytes
    rev: int


def decode(kv: KeyValue, rev: int | None = None) -> Entry:
    """Decode a stored value and stamp `metadata.resourceVersion` (default: its mod revision)."""
    obj = orjson.loads(kv.value)
    rv = kv.mod_revision if rev is None else rev
    obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
    return Entry(obj, orjson.dumps(obj), rv)


@dataclass(slots=True)
class CacheEvent:
    type: str
    key: str
    entry: Entry
    prev: Entry | None
    _lines: dict[str, bytes] = field(default_factory=dict)

    @property
    def rev(self) -> int:
        return self.entry.rev

    def line(self, type_: str) -> bytes:
        """The watch-stream line for this event shown as `type_` (cached per type)."""
        line = self._lines.get(type_)
        if line is None:
            line = b'{"type":"' + type_.encode() + b'","object":' + self.entry.raw + b"}\n"
            self._lines[type_] = line
        return line


class Watcher:
    """A subscription to one resource under a key prefix; call `batch()` until it returns None.

    `push` is cheap (a deque append) because it runs once per watcher per event."""

    def __init__(self, cache: ResourceCache, prefix: str) -> None:
        self._cache = cache
        self.prefix = prefix
        self._buf: deque[CacheEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False

    def push(self, event: CacheEvent | None) -> None:
        """Queue an event; None closes the watcher (cache reset)."""
        if event is None or len(self._buf) >= WATCHER_QUEUE_LIMIT:
            self.close()
        else:
            self._buf.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def batch(self) -> list[CacheEvent] | None:
        """Every queued event (waiting for at least one); None once closed."""
        while not self._buf and not self.closed:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        if self.closed:
            return None
        out = list(self._buf)
        self._buf.clear()
        return out

    def close(self) -> None:
        self.closed = True
        self._cache.watchers.discard(self)


class ResourceCache:
    """State and event window of one resource type."""

    def __init__(self, rtype: ResourceType, window: int) -> None:
        self.rtype = rtype
        self.entries: dict[str, Entry] = {}
        self.events: deque[CacheEvent] = deque()
        self.window = window
        self.window_start = 0
        self.watchers: set[Watcher] = set()

    def reset(self, entries: dict[str, Entry], revision: int) -> None:
        self.entries = entries
        self.events.clear()
        self.window_start = revision
        for w in list(self.watchers):
            w.push(None)

    def apply(self, event: CacheEvent) -> None:
        if event.type == "DELETED":
            self.entries.pop(event.key, None)
        else:
            self.entries[event.key] = event.entry
        self.events.append(event)
        if len(self.events) > self.window:
            self.window_start = self.events.popleft().rev
        for w in list(self.watchers):
            if event.key.startswith(w.prefix):
                w.push(event)

    def items(self, prefix: str, start_after: str = "") -> Iterator[tuple[str, Entry]]:
        """(key, entry) under `prefix` and after `start_after`, sorted by key."""
        keys = sorted(k for k in self.entries if k.startswith(prefix) and k > start_after)
        return ((k, self.entries[k]) for k in keys)

    def subscribe(self, prefix: str, from_rev: int | None) -> tuple[Watcher, list[CacheEvent]]:
        """A watcher plus the window's events after `from_rev` (None: no replay).

        Raises `Compacted` when events after `from_rev` are no longer all in the window."""
        replay: list[CacheEvent] = []
        if from_rev is not None:
            if from_rev < self.window_start:
                raise Compacted(self.window_start)
            replay = [e for e in self.events if e.rev > from_rev and e.key.startswith(prefix)]
        watcher = Watcher(self, prefix)
        self.watchers.add(watcher)
        return watcher, replay


class WatchCache:
    """All resource caches, kept current from one storage watch."""

    def __init__(self, storage: Storage, registry: Registry, *, window: int = 20_000) -> None:
        self._storage = storage
        self._caches = {rt.key_root: ResourceCache(rt, window) for rt in registry}
        self.revision = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = 0
        self.ready = asyncio.Event()

    def cache(self, rtype: ResourceType) -> ResourceCache:
        return self._caches[rtype.key_root]

    def _cache_for_key(self, key: str) -> ResourceCache | None:
        parts = key.split("/", 4)
        if len(parts) < 4:
            return None
        return (self._caches.get(f"/registry/{parts[2]}/")
                or self._caches.get(f"/registry/{parts[2]}/{parts[3]}/"))

    async def run(self, started: Callable[[], None] = lambda: None) -> None:
        """Load everything, then follow the storage watch forever (relisting when needed)."""
        await self._relist()
        self.ready.set()
        started()
        while True:
            try:
                await self._follow()
            except Compacted:
                log.warning("watch cache fell behind compaction; relisting")
                await self._relist()
            except (StorageError, OSError, ConnectionError) as exc:
                log.warning("storage watch broke (%s); resuming", exc)
                await asyncio.sleep(0.5)

    async def _relist(self) -> None:
        kvs, rev, _ = await self._storage.range(ROOT)
        grouped: dict[str, dict[str, Entry]] = {root: {} for root in self._caches}
        for kv in kvs:
            cache = self._cache_for_key(kv.key)
            if cache is not None:
                grouped[cache.rtype.key_root][kv.key] = decode(kv)
        for root, cache in self._caches.items():
            cache.reset(grouped[root], rev)
        self._advance(rev)

    async def _follow(self) -> None:
        # The whole key space, not just ROOT: the revision then tracks every write to the
        # store (also other users of a shared etcd), which `wait_fresh` relies on.
        async for ev in self._storage.watch("", from_revision=self.revision + 1):
            cache = self._cache_for_key(ev.kv.key)
            if cache is not None:
                cache.apply(self._to_cache_event(ev.type, ev.kv, ev.prev))
            self._advance(ev.revision)

    @staticmethod
    def _to_cache_event(type_: str, kv: KeyValue, prev: KeyValue | None) -> CacheEvent:
        prev_entry = decode(prev) if prev is not None else None
        if type_ == "DELETE":
            entry = decode(prev or kv, kv.mod_revision)
            return CacheEvent("DELETED", kv.key, entry, prev_entry)
        kind = "ADDED" if prev is None else "MODIFIED"
        return CacheEvent(kind, kv.key, decode(kv), prev_entry)

    def _advance(self, rev: int) -> None:
        if rev <= self.revision:
            return
        self.revision = rev
        while self._waiters and self._waiters[0][0] <= rev:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    async def wait_for(self, rev: int, timeout: float = 10.0) -> None:
        """Wait until the cache has applied revision `rev`; TimeoutError after `timeout` s."""
        if rev <= self.revision:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._waiters, (rev, self._seq, fut))
        await asyncio.wait_for(fut, timeout)

    async def wait_fresh(self, timeout: float = 10.0) -> None:
        """Wait until the cache holds every write acknowledged before this call."""
        await self.wait_for(await self._storage.current_revision(), timeout)
