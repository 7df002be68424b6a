"""Storage: the `Storage` protocol and its SQLite and etcd backends."""

from arktos.storage.interface import (
    Compacted,
    Conflict,
    Event,
    KeyExists,
    KeyNotFound,
    KeyValue,
    Storage,
    StorageError,
)

__all__ = ["Compacted", "Conflict", "Event", "KeyExists", "KeyNotFound", "KeyValue", "Storage",
           "StorageError"]
