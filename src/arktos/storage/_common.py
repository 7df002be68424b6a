"""Helpers shared by the storage backends: key-range arithmetic and event construction."""

from __future__ import annotations

from arktos.storage.interface import Event, KeyValue, StorageError

_MAX_CHAR = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


class StoreClosed(StorageError):
    """An operation on a store after `close()`, or a watch ended because the store closed."""


class WatchOverflow(StorageError):
    """A watcher fell too far behind: its buffer of undelivered events hit the bound.

    The watch ends with this error instead of buffering without limit; the consumer should
    restart it from the revision after the last event it processed (or relist)."""


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix`.

    None means "no upper bound" (empty prefix, or a prefix of only U+10FFFF). Strings compare
    by code point, which is also the byte order of their UTF-8 encoding, so the result is
    valid for SQLite TEXT (BINARY collation) and for etcd's byte keys alike."""
    chars = prefix
    while chars:
        last = ord(chars[-1])
        if last < _MAX_CHAR:
            nxt = last + 1
            if nxt in _SURROGATES:
                nxt = _SURROGATES.stop
            return chars[:-1] + chr(nxt)
        chars = chars[:-1]
    return None


def range_start(prefix: str, start_after: str) -> str:
    """The inclusive lower bound of "keys with `prefix` that are > `start_after`"."""
    if not start_after:
        return prefix
    return max(prefix, start_after + "\x00")


def put_event(kv: KeyValue, prev: KeyValue | None) -> Event:
    """A PUT event: `kv` is the new value, `prev` the replaced one (None on create)."""
    return Event("PUT", kv, prev)


def delete_event(prev: KeyValue, revision: int) -> Event:
    """A DELETE event at `revision` of the key whose last value was `prev`."""
    kv = KeyValue(prev.key, prev.value, prev.create_revision, revision)
    return Event("DELETE", kv, prev)
