"""The informer's in-memory store: objects by key, plus named secondary indexes.

Keys are `tenant/namespace/name` (empty parts for cluster- and tenant-scoped objects).
Objects handed out are the stored ones: callers must copy before changing them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str]]


def key_of(obj: Obj) -> str:
    md = obj.get("metadata") or {}
    return f"{md.get('tenant', '')}/{md.get('namespace', '')}/{md.get('name', '')}"


def make_key(tenant: str, namespace: str, name: str) -> str:
    return f"{tenant}/{namespace}/{name}"


def split_key(key: str) -> tuple[str, str, str]:
    tenant, namespace, name = key.split("/", 2)
    return tenant, namespace, name


def by_namespace(obj: Obj) -> list[str]:
    md = obj.get("metadata") or {}
    return [f"{md.get('tenant', '')}/{md.get('namespace', '')}"]


def by_tenant(obj: Obj) -> list[str]:
    return [str((obj.get("metadata") or {}).get("tenant", ""))]


def by_owner_uid(obj: Obj) -> list[str]:
    return [r["uid"] for r in (obj.get("metadata") or {}).get("ownerReferences") or []
            if isinstance(r, dict) and "uid" in r]


DEFAULT_INDEXES: dict[str, IndexFunc] = {"namespace": by_namespace, "tenant": by_tenant}


class Indexer:
    """Objects by key with secondary indexes; `index[name][value]` is a set of keys."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self.indexers = {**DEFAULT_INDEXES, **(indexers or {})}
        self._items: dict[str, Obj] = {}
        self._index: dict[str, dict[str, set[str]]] = {n: {} for n in self.indexers}

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Add an index (built from the current objects); a known name is kept as it is."""
        if name in self.indexers:
            return
        self.indexers[name] = fn
        self._index[name] = {}
        for key, obj in self._items.items():
            for value in fn(obj):
                self._index[name].setdefault(value, set()).add(key)

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def keys(self) -> list[str]:
        return list(self._items)

    def objects(self) -> list[Obj]:
        return list(self._items.values())

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def by_index(self, name: str, value: str) -> list[Obj]:
        return [self._items[k] for k in self._index[name].get(value, ())]

    def put(self, obj: Obj) -> Obj | None:
        """Insert or replace; returns the previous object."""
        key = key_of(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name, fn in self.indexers.items():
            for value in fn(obj):
                self._index[name].setdefault(value, set()).add(key)
        return old

    def remove(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, fn in self.indexers.items():
            for value in fn(obj):
                keys = self._index[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._index[name][value]
