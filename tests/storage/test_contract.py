"""The `Storage` contract, run against every backend (see conftest.py), plus a few
backend-specific checks at the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from arktos.storage._common import StoreClosed, WatchOverflow, prefix_end
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
from arktos.storage.sqlite import SqliteStorage
from arktos.storage.url import open_storage
from tests.etcd_server import EtcdProcess, start_etcd
from tests.storage.conftest import Backend


async def take(events: AsyncIterator[Event], n: int, timeout: float = 5.0) -> list[Event]:
    """The next `n` events, failing if they do not arrive within `timeout` seconds."""
    got: list[Event] = []
    async with asyncio.timeout(timeout):
        while len(got) < n:
            got.append(await anext(events))
    return got


@asynccontextmanager
async def watching(store: Storage, prefix: str,
                   from_revision: int) -> AsyncIterator[AsyncIterator[Event]]:
    """`store.watch(...)`, closed (`aclose`) on exit."""
    events = store.watch(prefix, from_revision=from_revision)
    try:
        yield events
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


def keys(items: list[KeyValue]) -> list[str]:
    return [kv.key for kv in items]


# -- single-key operations ----------------------------------------------------------------

async def test_create_then_get(store: Storage, prefix: str) -> None:
    rev = await store.create(prefix + "a", b"one")
    assert await store.get(prefix + "a") == KeyValue(prefix + "a", b"one", rev, rev)
    assert await store.get(prefix + "missing") is None


async def test_create_existing_key_raises_key_exists(store: Storage, prefix: str) -> None:
    await store.create(prefix + "a", b"one")
    with pytest.raises(KeyExists):
        await store.create(prefix + "a", b"two")
    assert (await store.get(prefix + "a")) is not None


async def test_update_with_current_revision(store: Storage, prefix: str) -> None:
    r1 = await store.create(prefix + "a", b"one")
    r2 = await store.update(prefix + "a", b"two", expected_revision=r1)
    assert r2 > r1
    assert await store.get(prefix + "a") == KeyValue(prefix + "a", b"two", r1, r2)


async def test_update_with_stale_revision_conflicts(store: Storage, prefix: str) -> None:
    r1 = await store.create(prefix + "a", b"one")
    r2 = await store.update(prefix + "a", b"two", expected_revision=r1)
    with pytest.raises(Conflict) as info:
        await store.update(prefix + "a", b"three", expected_revision=r1)
    assert info.value.current == KeyValue(prefix + "a", b"two", r1, r2)
    with pytest.raises(Conflict):
        await store.delete(prefix + "a", expected_revision=r1)
    assert (await store.get(prefix + "a")) == info.value.current


async def test_missing_key_raises_key_not_found(store: Storage, prefix: str) -> None:
    with pytest.raises(KeyNotFound):
        await store.update(prefix + "nope", b"x", expected_revision=1)
    with pytest.raises(KeyNotFound):
        await store.delete(prefix + "nope")
    with pytest.raises(KeyNotFound):
        await store.delete(prefix + "nope", expected_revision=5)


async def test_delete(store: Storage, prefix: str) -> None:
    r1 = await store.create(prefix + "a", b"one")
    r2 = await store.delete(prefix + "a", expected_revision=r1)
    assert r2 > r1 and await store.get(prefix + "a") is None
    r3 = await store.create(prefix + "a", b"again")
    assert await store.get(prefix + "a") == KeyValue(prefix + "a", b"again", r3, r3)
    r4 = await store.delete(prefix + "a")
    assert r4 > r3 and await store.get(prefix + "a") is None


async def test_revisions_strictly_increase(store: Storage, prefix: str) -> None:
    revs = [await store.create(prefix + "a", b"0")]
    for i in range(5):
        revs.append(await store.update(prefix + "a", b"%d" % i, expected_revision=revs[-1]))
    revs.append(await store.delete(prefix + "a"))
    assert revs == sorted(set(revs))
    assert await store.current_revision() == revs[-1]


async def test_concurrent_creates_get_distinct_revisions(store: Storage, prefix: str) -> None:
    names = [f"{prefix}k{i:03d}" for i in range(200)]
    revs = await asyncio.gather(*(store.create(name, b"v") for name in names))
    assert len(set(revs)) == 200
    items, _, _ = await store.range(prefix)
    assert keys(items) == names
    assert {kv.mod_revision for kv in items} == set(revs)


# -- range --------------------------------------------------------------------------------

async def test_range_larger_than_grpc_default_message_limit(store: Storage,
                                                             prefix: str) -> None:
    big = b"x" * 200_000
    await asyncio.gather(*(store.create(f"{prefix}{i:02d}", big) for i in range(30)))
    items, _, _ = await store.range(prefix)
    assert len(items) == 30 and all(kv.value == big for kv in items)


async def test_range_prefix_limit_and_continue(store: Storage, prefix: str) -> None:
    names = [prefix + s for s in ("a", "b", "c", "d", "é")]
    for name in reversed(names):
        last = await store.create(name, name.encode())
    await store.create(prefix[:-1] + "0", b"sibling, not under the prefix")
    items, rev, more = await store.range(prefix)
    assert (keys(items), more) == (names, False) and rev >= last + 1
    assert [kv.value for kv in items] == [n.encode() for n in names]
    page, _, more = await store.range(prefix, limit=2)
    assert (keys(page), more) == (names[:2], True)
    page, _, more = await store.range(prefix, limit=2, start_after=names[1])
    assert (keys(page), more) == (names[2:4], True)
    page, _, more = await store.range(prefix, limit=2, start_after=names[3])
    assert (keys(page), more) == (names[4:], False)
    page, _, more = await store.range(prefix, limit=5)
    assert (keys(page), more) == (names, False)
    assert (await store.range(prefix + "z"))[0] == []


async def test_range_at_past_revision(store: Storage, prefix: str) -> None:
    a, b = prefix + "a", prefix + "b"
    r1 = await store.create(a, b"a1")
    r2 = await store.create(b, b"b1")
    r3 = await store.update(a, b"a2", expected_revision=r1)
    r4 = await store.delete(b)
    assert await store.range(prefix, revision=r1) == ([KeyValue(a, b"a1", r1, r1)], r1, False)
    assert (await store.range(prefix, revision=r2))[0] == [KeyValue(a, b"a1", r1, r1),
                                                           KeyValue(b, b"b1", r2, r2)]
    page, rev, more = await store.range(prefix, revision=r3, limit=1)
    assert (page, rev, more) == ([KeyValue(a, b"a2", r1, r3)], r3, True)
    assert (await store.range(prefix, revision=r3, start_after=a))[0] == [
        KeyValue(b, b"b1", r2, r2)]
    assert (await store.range(prefix, revision=r4))[0] == [KeyValue(a, b"a2", r1, r3)]
    with pytest.raises(StorageError):
        await store.range(prefix, revision=r4 + 1000)


# -- compaction ---------------------------------------------------------------------------

async def test_compaction(store: Storage, prefix: str) -> None:
    a = prefix + "a"
    r1 = await store.create(a, b"1")
    r2 = await store.update(a, b"2", expected_revision=r1)
    r3 = await store.create(prefix + "b", b"b")
    r4 = await store.update(a, b"4", expected_revision=r2)
    await store.compact(r3)
    with pytest.raises(Compacted) as info:
        await store.range(prefix, revision=r2)
    assert info.value.revision == r3
    assert keys((await store.range(prefix, revision=r3))[0]) == [a, prefix + "b"]
    assert (await store.range(prefix, revision=r3))[0][0] == KeyValue(a, b"2", r1, r2)
    with pytest.raises(Compacted):
        async with watching(store, prefix, r2) as events:
            await take(events, 1)
    async with watching(store, prefix, r3) as events:
        got = await take(events, 2)
    assert [e.revision for e in got] == [r3, r4]
    assert got[1].prev == KeyValue(a, b"2", r1, r2)
    await store.compact(r2)  # below the compacted revision: nothing to do
    with pytest.raises(StorageError):
        await store.compact(r4 + 1000)


# -- watch --------------------------------------------------------------------------------

async def test_watch_replays_history_then_live(store: Storage, prefix: str) -> None:
    a, b = prefix + "a", prefix + "b"
    r1 = await store.create(a, b"1")
    r2 = await store.update(a, b"2", expected_revision=r1)
    r3 = await store.delete(a)
    async with watching(store, prefix, r1) as events:
        history = await take(events, 3)
        r4 = await store.create(b, b"b")
        r5 = await store.delete(b, expected_revision=r4)
        live = await take(events, 2)
    assert history == [
        Event("PUT", KeyValue(a, b"1", r1, r1), None),
        Event("PUT", KeyValue(a, b"2", r1, r2), KeyValue(a, b"1", r1, r1)),
        Event("DELETE", KeyValue(a, b"2", r1, r3), KeyValue(a, b"2", r1, r2)),
    ]
    assert live == [Event("PUT", KeyValue(b, b"b", r4, r4), None),
                    Event("DELETE", KeyValue(b, b"b", r4, r5), KeyValue(b, b"b", r4, r4))]


async def test_watch_filters_by_prefix(store: Storage, prefix: str) -> None:
    start = await store.current_revision() + 1
    async with watching(store, prefix + "x/", start) as events:
        await store.create(prefix + "y/1", b"no")
        await store.create(prefix + "x", b"no")
        rev = await store.create(prefix + "x/1", b"yes")
        await store.create(prefix + "x0", b"no")
        rev2 = await store.create(prefix + "x/2", b"yes")
        got = await take(events, 2)
    assert [(e.kv.key, e.revision) for e in got] == [(prefix + "x/1", rev),
                                                     (prefix + "x/2", rev2)]


async def test_watch_during_writes_has_no_gaps_or_duplicates(store: Storage,
                                                              prefix: str) -> None:
    first = await store.create(prefix + "first", b"")

    async def writer(i: int) -> int:
        await asyncio.sleep(0.001 * i)
        return await store.create(f"{prefix}k{i}", b"v")

    writes = asyncio.gather(*(writer(i) for i in range(60)))
    await asyncio.sleep(0.02)  # some writes land before the watch starts, some after
    async with watching(store, prefix, first) as events:
        revs = [first, *await writes]
        got = await take(events, len(revs))
    assert [e.revision for e in got] == sorted(revs)


async def test_watch_from_future_revision_skips_until_then(store: Storage,
                                                           prefix: str) -> None:
    now = await store.current_revision()
    async with watching(store, prefix, now + 2) as events:
        await store.create(prefix + "a", b"skipped")
        rev = await store.create(prefix + "b", b"seen")
        got = await take(events, 1)
    assert got[0].revision == rev and got[0].kv.key == prefix + "b"


# -- persistence --------------------------------------------------------------------------

async def test_data_and_revision_survive_reopen(backend: Backend, prefix: str) -> None:
    store = await backend.open()
    r1 = await store.create(prefix + "a", b"1")
    r2 = await store.update(prefix + "a", b"2", expected_revision=r1)
    await store.close()
    with pytest.raises(StoreClosed):
        await store.get(prefix + "a")
    store = await backend.open()
    assert await store.current_revision() == r2
    assert await store.get(prefix + "a") == KeyValue(prefix + "a", b"2", r1, r2)
    assert (await store.range(prefix, revision=r1))[0] == [KeyValue(prefix + "a", b"1", r1, r1)]
    assert await store.create(prefix + "b", b"") > r2


async def test_close_ends_watches(backend: Backend, prefix: str) -> None:
    store = await backend.open()
    rev = await store.create(prefix + "a", b"")
    async with watching(store, prefix, rev) as events:
        assert (await take(events, 1))[0].kv.key == prefix + "a"
        await store.close()
        with pytest.raises(StoreClosed):
            await take(events, 1)
    with pytest.raises(StoreClosed):
        await store.create(prefix + "b", b"")


# -- backend-specific ---------------------------------------------------------------------

async def test_sqlite_slow_watcher_overflows_instead_of_blocking(tmp_path: Path) -> None:
    store = await SqliteStorage.open(tmp_path / "s.db", watch_queue_limit=10)
    try:
        async with watching(store, "/", 1) as events:
            await store.create("/first", b"")
            await take(events, 1)  # the watch is live now
            revs = await asyncio.gather(*(store.create(f"/k{i}", b"") for i in range(30)))
            assert len(revs) == 30  # writers were not held up by the idle watcher
            with pytest.raises(WatchOverflow):
                await take(events, 30)
    finally:
        await store.close()




async def test_etcd_fails_over_to_a_reachable_endpoint(etcd_server: EtcdProcess) -> None:
    store = await open_storage(f"etcd://127.0.0.1:1,{etcd_server.endpoint}")
    try:
        rev = await store.create(f"/t/failover/{id(store)}", b"x")
        assert await store.current_revision() >= rev
    finally:
        await store.close()
    with pytest.raises(StorageError, match="no etcd endpoint reachable"):
        await open_storage("etcd://127.0.0.1:1")


async def test_etcd_fails_over_when_its_endpoint_dies(tmp_path: Path) -> None:
    with start_etcd(tmp_path / "a") as first, start_etcd(tmp_path / "b") as second:
        store = await open_storage(f"etcd://{first.endpoint},{second.endpoint}")
        try:
            rev = await store.create("/only-on-first", b"")
            events = store.watch("/", from_revision=rev)
            assert (await take(events, 1))[0].revision == rev
            first.stop()
            with pytest.raises(StorageError):  # the watch ends; the consumer restarts it
                await take(events, 1)
            # reads are retried on the next endpoint (a write in flight to a dying server
            # would rather raise StorageError: its outcome is unknown)
            assert await store.get("/only-on-first") is None
            rev = await store.create("/k", b"")
            assert await store.get("/k") == KeyValue("/k", b"", rev, rev)
        finally:
            await store.close()


async def test_sqlite_file_is_locked_while_open(tmp_path: Path) -> None:
    store = await SqliteStorage.open(tmp_path / "s.db")
    with pytest.raises(StorageError, match="locked"):
        await SqliteStorage.open(tmp_path / "s.db")
    await store.close()
    await (await SqliteStorage.open(tmp_path / "s.db")).close()


@pytest.mark.parametrize("url", ["postgres://x", "sqlite://relative.db", "state.db",
                                 "etcd://hostonly", "etcd://h:1,"])
async def test_open_storage_rejects_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        await open_storage(url)


def test_prefix_end() -> None:
    assert prefix_end("/a/") == "/a0"
    assert prefix_end("") is None
    assert prefix_end("a\U0010ffff") == "b"
    assert prefix_end("\ud7ff") == "\ue000"
