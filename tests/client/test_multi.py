"""MergedListWatch: one resource listed and watched across several API servers. Protocol cases
with scripted parts; then an informer over two real API servers, one of them restarted with
history it never served."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from arktos.client.config import load_config
from arktos.client.informer import Informer
from arktos.client.multi import (
    MergedListWatch,
    informer_over,
    join_versions,
    merged_lister_watcher,
    split_versions,
)
from arktos.client.resources import ListResult, ResourceClient, ScopedListWatch
from arktos.client.rest import ApiClient, ApiError, WatchEvent
from arktos.client.store import Obj
from tests.apiserver_proc import ApiServerProcess
from tests.client.conftest import configmap, make_tenant, rewrite_history
from tests.client.test_informer import Recorder, Spy, running, when
from tests.waiting import eventually


def obj(name: str, rv: int, tenant: str = "t") -> Obj:
    return {"metadata": {"tenant": tenant, "namespace": "ns", "name": name,
                         "resourceVersion": str(rv)}}


def bookmark(rv: int) -> WatchEvent:
    return WatchEvent("BOOKMARK", {"metadata": {"resourceVersion": str(rv)}})


class Part:
    """A scripted part: `list()` returns `listed`; a watch yields what is put into `feed`
    (a WatchEvent, an exception to raise, or None to end) and records its life."""

    def __init__(self, listed: ListResult | None = None) -> None:
        self.listed = listed or ListResult([], "0")
        self.list_gate: asyncio.Event | None = None
        self.list_started = asyncio.Event()
        self.list_cancelled = False
        self.feed: asyncio.Queue[WatchEvent | Exception | None] = asyncio.Queue()
        self.watched: list[str] = []
        self.open_watches = 0

    async def list(self) -> ListResult:
        self.list_started.set()
        try:
            if self.list_gate is not None:
                await self.list_gate.wait()
        except asyncio.CancelledError:
            self.list_cancelled = True
            raise
        if isinstance(self.listed, Exception):
            raise self.listed
        return self.listed

    async def watch(self, resource_version: str,
                    timeout_seconds: int) -> AsyncIterator[WatchEvent]:
        self.watched.append(resource_version)
        self.open_watches += 1
        try:
            while (item := await self.feed.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.open_watches -= 1


async def take(events: AsyncIterator[WatchEvent], n: int) -> list[WatchEvent]:
    out: list[WatchEvent] = []
    async with asyncio.timeout(5):
        while len(out) < n:
            out.append(await anext(events))
    return out


def test_composite_versions_round_trip_and_refuse_foreign_ones() -> None:
    composite = join_versions(["812", "95", ""])
    assert split_versions(composite, 3) == ["812", "95", ""]
    assert split_versions("", 2) == ["", ""]
    nested = join_versions([join_versions(["1", "2"]), "3"])
    assert split_versions(split_versions(nested, 2)[0], 2) == ["1", "2"]
    for foreign, parts in [("812", 2), (composite, 2), ("not json", 1), ('{"a": 1}', 1),
                           ("[1, 2]", 2)]:
        with pytest.raises(ApiError) as gone:
            split_versions(foreign, parts)
        assert gone.value.status == 410


def test_needs_a_part() -> None:
    with pytest.raises(ValueError):
        MergedListWatch([])


async def test_list_runs_parts_concurrently_and_concatenates_in_part_order() -> None:
    a = Part(ListResult([obj("a1", 5), obj("a2", 6)], "7"))
    b = Part(ListResult([obj("b1", 40, "u")], "41"))
    # a's list only finishes once b's has started: a sequential list would never finish.
    a.list_gate = b.list_started
    async with asyncio.timeout(5):
        result = await MergedListWatch([a, b]).list()
    assert [o["metadata"]["name"] for o in result.items] == ["a1", "a2", "b1"]
    assert split_versions(result.resource_version, 2) == ["7", "41"]


async def test_a_failing_list_cancels_the_others_and_raises_as_it_is() -> None:
    slow, failing = Part(), Part(ApiError(503, "ServiceUnavailable", "down"))  # type: ignore[arg-type]
    slow.list_gate = asyncio.Event()  # never set
    with pytest.raises(ApiError) as err:
        async with asyncio.timeout(5):
            await MergedListWatch([slow, failing]).list()
    assert err.value.status == 503
    assert slow.list_cancelled


async def test_watch_merges_events_with_advancing_composite_resume() -> None:
    a, b = Part(), Part()
    merged = MergedListWatch([a, b])
    events = merged.watch(join_versions(["10", "100"]), 60)
    try:
        a.feed.put_nowait(WatchEvent("ADDED", obj("x", 11)))
        first = await take(events, 1)
        assert (a.watched, b.watched) == (["10"], ["100"])
        b.feed.put_nowait(WatchEvent("MODIFIED", obj("y", 105, "u")))
        b.feed.put_nowait(bookmark(107))
        a.feed.put_nowait(WatchEvent("DELETED", obj("x", 12)))
        a.feed.put_nowait(WatchEvent("ADDED", obj("z", 13), resume="inner-composite"))
        rest = await take(events, 4)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    got = first + rest
    assert got[0].resume == join_versions(["11", "100"])
    assert got[-1].resume == join_versions(["inner-composite", "107"])  # all events seen
    # Between parts the order is whatever arrived first; within a part it is kept, and each
    # event moves only its own part's version of the composite.
    own = {"x": 0, "z": 0, "y": 1, None: 1}
    per_part: list[list[tuple[str, str]]] = [[], []]
    for ev in got:
        part = own[ev.object["metadata"].get("name")]
        version = split_versions(ev.resume, 2)[part]
        per_part[part].append((ev.type, version))
    assert per_part == [[("ADDED", "11"), ("DELETED", "12"), ("ADDED", "inner-composite")],
                        [("MODIFIED", "105"), ("BOOKMARK", "107")]]
    assert a.open_watches == b.open_watches == 0


async def test_an_error_of_one_part_closes_the_others_and_propagates() -> None:
    a, b = Part(), Part()
    events = MergedListWatch([a, b]).watch(join_versions(["1", "2"]), 60)
    a.feed.put_nowait(WatchEvent("ADDED", obj("x", 3)))
    await take(events, 1)
    b.feed.put_nowait(ApiError(410, "Expired", "too old resource version"))
    with pytest.raises(ApiError) as gone:
        await take(events, 1)
    assert gone.value.status == 410
    assert a.open_watches == 0 and b.open_watches == 0


async def test_one_part_ending_ends_the_merged_watch() -> None:
    a, b = Part(), Part()
    events = MergedListWatch([a, b]).watch(join_versions(["1", "2"]), 60)
    b.feed.put_nowait(bookmark(5))
    b.feed.put_nowait(None)
    async with asyncio.timeout(5):
        got = [ev async for ev in events]
    assert [e.resume for e in got] == [join_versions(["1", "5"])]
    assert a.open_watches == 0


async def test_a_foreign_version_makes_the_informer_relist() -> None:
    a, b = Part(ListResult([obj("a", 1)], "1")), Part(ListResult([obj("b", 1, "u")], "1"))
    events = MergedListWatch([a, b]).watch("123", 60)
    with pytest.raises(ApiError) as gone:
        await take(events, 1)
    assert gone.value.status == 410 and a.watched == b.watched == []


async def test_informer_over_scripted_parts_relists_all_parts_after_one_410() -> None:
    a = Part(ListResult([obj("a", 1)], "1"))
    b = Part(ListResult([obj("b", 1, "u"), obj("gone", 1, "u")], "1"))
    informer = Informer(MergedListWatch([a, b]))
    rec = Recorder()
    informer.add_handler(rec)
    async with running(informer):
        assert sorted(informer.store.keys()) == ["t/ns/a", "u/ns/b", "u/ns/gone"]
        a.feed.put_nowait(WatchEvent("MODIFIED", obj("a", 2)))
        await eventually(when(lambda: informer.resource_version == join_versions(["2", "1"])))
        a.listed = ListResult([obj("a", 2)], "9")
        b.listed = ListResult([obj("b", 3, "u")], "7")
        b.feed.put_nowait(ApiError(410, "Expired", "too old"))
        await eventually(when(lambda: informer.resource_version == join_versions(["9", "7"])))
        await eventually(when(lambda: a.watched[-1:] == ["9"] and b.watched[-1:] == ["7"]))
    assert a.watched == ["1", "9"] and b.watched == ["1", "7"]
    assert sorted(rec.verbs()) == sorted([("add", "a"), ("add", "b"), ("add", "gone"),
                                          ("update", "a"), ("delete", "gone"),
                                          ("update", "b")])
    assert sorted(informer.store.keys()) == ["t/ns/a", "u/ns/b"]


# ---------------------------------------------------------------------------------------------
# Two real API servers


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ApiServerProcess]]:
    procs = [ApiServerProcess(Path(tmp_path_factory.mktemp(f"multi-{i}"))).start()
             for i in range(2)]
    yield procs
    for proc in procs:
        proc.stop()


@contextlib.asynccontextmanager
async def clients(servers: list[ApiServerProcess]) -> AsyncIterator[list[ApiClient]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(ApiClient(load_config(s.kubeconfig)))
               for s in servers]


def names(informer: Informer) -> list[str]:
    return sorted(f"{o['metadata']['tenant']}/{o['metadata']['name']}"
                  for o in informer.store.objects())


async def test_merged_lister_watcher_builds_one_part_per_client(
        servers: list[ApiServerProcess]) -> None:
    async with clients(servers) as apis:
        lw = merged_lister_watcher(apis, "configmaps", namespace="default", tenant="all",
                                   label_selector="a=b")
        assert len(lw.parts) == 2
        for part, api in zip(lw.parts, apis, strict=True):
            assert isinstance(part, ScopedListWatch)
            assert part.resource.api is api
            assert (part.namespace, part.tenant, part.label_selector) == ("default", "all", "a=b")
        assert informer_over(apis, "ConfigMap").name == "configmaps"


async def test_one_informer_over_two_servers(servers: list[ApiServerProcess],
                                             unique: Callable[[str], str]) -> None:
    label = unique("two")
    tenants = [f"{label}-a", f"{label}-b"]  # one tenant per server, as partitions are
    async with clients(servers) as apis:
        for api, tenant in zip(apis, tenants, strict=True):
            await make_tenant(api, tenant)
        rcs = [ResourceClient(api, "configmaps") for api in apis]
        await rcs[0].create(configmap("before", labels={"suite": label}), tenant=tenants[0])
        informer = informer_over(apis, "configmaps", label_selector=f"suite={label}")
        rec = Recorder()
        informer.add_handler(rec)
        async with running(informer):
            assert names(informer) == [f"{tenants[0]}/before"]
            assert len(split_versions(informer.resource_version, 2)) == 2
            await rcs[1].create(configmap("b1", labels={"suite": label}), tenant=tenants[1])
            await rcs[0].create(configmap("a1", labels={"suite": label}), tenant=tenants[0])
            await rcs[1].patch("b1", {"data": {"k": "2"}}, namespace="default",
                               tenant=tenants[1])
            await eventually(when(lambda: names(informer) == sorted(
                [f"{tenants[0]}/before", f"{tenants[0]}/a1", f"{tenants[1]}/b1"])))
            await eventually(when(lambda: ("update", "b1") in rec.verbs()))
            await rcs[0].delete("before", namespace="default", tenant=tenants[0])
            await rcs[1].delete("b1", namespace="default", tenant=tenants[1])
            await eventually(when(lambda: names(informer) == [f"{tenants[0]}/a1"]))
        assert ("delete", "before") in rec.verbs() and ("delete", "b1") in rec.verbs()


async def test_restart_of_one_server_leads_to_a_relist_that_converges(
        tmp_path: Path, unique: Callable[[str], str]) -> None:
    label = unique("restart")
    procs = [ApiServerProcess(tmp_path / f"s{i}").start() for i in range(2)]
    try:
        async with clients(procs) as apis:
            rcs = [ResourceClient(api, "configmaps") for api in apis]
            for api, tenant in zip(apis, ["left", "right"], strict=True):
                await make_tenant(api, tenant)
            await rcs[0].create(configmap("l1", labels={"s": label}), tenant="left")
            await rcs[1].create(configmap("r1", labels={"s": label}), tenant="right")
            await rcs[1].create(configmap("r2", labels={"s": label}), tenant="right")
            informer = informer_over(apis, "configmaps", label_selector=f"s={label}")
            spy = Spy(informer.lw)
            informer.lw = spy
            rec = Recorder()
            informer.add_handler(rec)
            async with running(informer):
                assert names(informer) == ["left/l1", "right/r1", "right/r2"]

                async def change(other: ApiClient) -> None:
                    there = ResourceClient(other, "configmaps")
                    await there.delete("r1", namespace="default", tenant="right")
                    await there.create(configmap("r3", labels={"s": label}), tenant="right")

                await rewrite_history(procs[1], change)
                # Meanwhile the other server keeps serving.
                await rcs[0].create(configmap("l2", labels={"s": label}), tenant="left")
                await eventually(when(lambda: names(informer) == [
                    "left/l1", "left/l2", "right/r2", "right/r3"]), timeout=20)
                await rcs[1].create(configmap("r4", labels={"s": label}), tenant="right")
                await eventually(when(lambda: "right/r4" in names(informer)))
            assert 410 in spy.errors and spy.lists >= 2
            assert ("delete", "r1") in rec.verbs() and ("add", "r3") in rec.verbs()
            assert [v for v in rec.verbs() if v[0] == "delete"] == [("delete", "r1")]
    finally:
        for proc in procs:
            proc.stop()
