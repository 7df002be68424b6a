"""Informers: list+watch into an indexed store with ordered handler calls, resync, relist after
410 Gone (also after a real server restart that lost the client's history), and the shared
InformerFactory. Protocol-level cases use a scripted ListerWatcher."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from arktos.client.config import load_config
from arktos.client.informer import Handler, Informer, InformerFactory, ListerWatcher
from arktos.client.resources import ListResult, ResourceClient
from arktos.client.rest import ApiClient, ApiError, WatchEvent
from arktos.client.store import Obj
from tests.apiserver_proc import ApiServerProcess
from tests.client.conftest import configmap, rewrite_history
from tests.waiting import eventually


def obj(name: str, rv: int | str, **extra: Any) -> Obj:
    return {"metadata": {"tenant": "t", "namespace": "ns", "name": name,
                         "resourceVersion": str(rv)}, **extra}


class Recorder(Handler):
    """Remembers every handler call as (verb, name, resourceVersion)."""

    def __init__(self) -> None:
        super().__init__(on_add=self._add, on_update=self._update, on_delete=self._delete)
        self.calls: list[tuple[str, str, str]] = []

    @staticmethod
    def _id(o: Obj) -> tuple[str, str]:
        md = o["metadata"]
        return md["name"], str(md.get("resourceVersion", ""))

    def _add(self, o: Obj) -> None:
        self.calls.append(("add", *self._id(o)))

    def _update(self, old: Obj, new: Obj) -> None:
        self.calls.append(("update", *self._id(new)))

    def _delete(self, o: Obj) -> None:
        self.calls.append(("delete", *self._id(o)))

    def verbs(self) -> list[tuple[str, str]]:
        return [(verb, name) for verb, name, _ in self.calls]


Step = WatchEvent | Exception | str


class Scripted:
    """A ListerWatcher playing back scripted lists and watches. A watch plays its steps (events,
    exceptions to raise, "END" to end normally) and then blocks until cancelled."""

    def __init__(self, lists: list[ListResult], watches: list[list[Step]]) -> None:
        self.lists = lists
        self.watches = watches
        self.list_calls = 0
        self.watch_calls: list[str] = []

    async def list(self) -> ListResult:
        self.list_calls += 1
        return self.lists.pop(0)

    async def watch(self, resource_version: str,
                    timeout_seconds: int) -> AsyncIterator[WatchEvent]:
        self.watch_calls.append(resource_version)
        for step in self.watches.pop(0) if self.watches else []:
            if isinstance(step, Exception):
                raise step
            if step == "END":
                return
            assert isinstance(step, WatchEvent)
            yield step
        await asyncio.Event().wait()


class Spy:
    """Wraps a ListerWatcher and records lists and watch errors."""

    def __init__(self, inner: ListerWatcher) -> None:
        self.inner = inner
        self.lists = 0
        self.errors: list[int] = []

    async def list(self) -> ListResult:
        self.lists += 1
        return await self.inner.list()

    async def watch(self, resource_version: str,
                    timeout_seconds: int) -> AsyncIterator[WatchEvent]:
        try:
            async for ev in self.inner.watch(resource_version, timeout_seconds):
                yield ev
        except ApiError as exc:
            self.errors.append(exc.status)
            raise


@contextlib.asynccontextmanager
async def running(informer: Informer, timeout: float = 10.0) -> AsyncIterator[Informer]:
    """Run `informer` for the block (after its first sync)."""
    task = asyncio.create_task(informer.run())
    try:
        async with asyncio.timeout(timeout):
            await informer.synced.wait()
        yield informer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled(), "the informer died instead of running until cancelled"


def when(check: Callable[[], bool]) -> Callable[[], Any]:
    async def condition() -> bool:
        return check()
    condition.__name__ = getattr(check, "__name__", "condition")
    return condition


# ---------------------------------------------------------------------------------------------
# Protocol level (scripted ListerWatcher)


async def test_relist_after_410_delivers_missed_deletes_and_updates() -> None:
    lw = Scripted(
        lists=[ListResult([obj("a", 1), obj("b", 2)], "10"),
               ListResult([obj("a", 13), obj("c", 11)], "20")],
        watches=[[WatchEvent("ADDED", obj("c", 11)), WatchEvent("MODIFIED", obj("a", 12)),
                  ApiError(410, "Expired", "too old")]])
    informer = Informer(lw)
    rec = Recorder()
    informer.add_handler(rec)
    async with running(informer):
        await eventually(when(lambda: len(lw.watch_calls) == 2))
        assert rec.calls == [("add", "a", "1"), ("add", "b", "2"), ("add", "c", "11"),
                             ("update", "a", "12"), ("delete", "b", "2"), ("update", "a", "13")]
        assert lw.watch_calls == ["10", "20"]  # the relist's version, not the stale one
        assert sorted(informer.store.keys()) == ["t/ns/a", "t/ns/c"]
        assert informer.resource_version == "20"


async def test_watch_resumes_from_each_events_resume_version() -> None:
    bookmark = WatchEvent("BOOKMARK", {"metadata": {"resourceVersion": "15"}})
    lw = Scripted(
        lists=[ListResult([], "10")],
        watches=[[bookmark, "END"],
                 [WatchEvent("ADDED", obj("x", 16), resume="opaque-1"), "END"],
                 [ApiError(500, "InternalError", "transient")],
                 [WatchEvent("DELETED", obj("x", 17))]])
    informer = Informer(lw)
    rec = Recorder()
    informer.add_handler(rec)
    async with running(informer):
        await eventually(when(lambda: informer.resource_version == "17"))
    # A transient error re-watches from the same version (no relist), a bookmark only moves
    # the version, `resume` wins over the object's resourceVersion.
    assert lw.watch_calls == ["10", "15", "opaque-1", "opaque-1"]
    assert lw.list_calls == 1
    assert rec.calls == [("add", "x", "16"), ("delete", "x", "16")]
    assert len(informer.store) == 0


async def test_unchanged_objects_on_relist_fire_nothing_and_late_handlers_get_adds() -> None:
    lw = Scripted(lists=[ListResult([obj("a", 1)], "5"), ListResult([obj("a", 1)], "6")],
                  watches=[[ApiError(410, "Expired", "gone")]])
    informer = Informer(lw)
    early = Recorder()
    informer.add_handler(early)
    async with running(informer):
        await eventually(when(lambda: lw.list_calls == 2 and len(lw.watch_calls) == 2))
        late = Recorder()
        informer.add_handler(late)
    assert early.calls == [("add", "a", "1")]
    assert late.calls == [("add", "a", "1")]


async def test_resync_announces_every_object_as_an_update() -> None:
    lw = Scripted(lists=[ListResult([obj("a", 1), obj("b", 1)], "5")], watches=[])
    informer = Informer(lw, resync_period=0.05)
    updates: list[tuple[str, bool]] = []
    informer.add_handler(Handler(on_update=lambda old, new: updates.append(
        (new["metadata"]["name"], old is new))))
    async with running(informer):
        await eventually(when(lambda: updates.count(("a", True)) >= 2
                              and updates.count(("b", True)) >= 2))
    assert all(same for _, same in updates)


async def test_failed_lists_are_retried() -> None:
    class FlakyList(Scripted):
        async def list(self) -> ListResult:
            if self.list_calls == 0:
                self.list_calls += 1
                raise ApiError(0, "ServiceUnavailable", "refused")
            return await super().list()

    lw = FlakyList(lists=[ListResult([obj("a", 1)], "5")], watches=[])
    informer = Informer(lw)
    async with running(informer):
        assert informer.store.get("t/ns/a") is not None
    assert lw.list_calls == 2


# ---------------------------------------------------------------------------------------------
# Against a real API server


async def new_namespace(api: ApiClient, name: str) -> str:
    await ResourceClient(api, "namespaces").create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


async def test_list_and_watch_fill_the_store_and_call_handlers_in_order(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    ns = await new_namespace(api, unique("inf"))
    cms = ResourceClient(api, "configmaps")
    await cms.create(configmap("pre", ns))
    informer = Informer(cms.lister_watcher(namespace=ns))
    rec = Recorder()
    informer.add_handler(rec)
    async with running(informer):
        assert rec.verbs() == [("add", "pre")]
        assert informer.store.get(f"system/{ns}/pre") is not None
        created = await cms.create(configmap("x", ns))
        changed = dict(created, data={"k": "changed"})
        await cms.update(changed)
        await cms.delete("pre", namespace=ns)
        await cms.delete("x", namespace=ns)
        await eventually(when(lambda: len(rec.calls) == 5))
        assert rec.verbs() == [("add", "pre"), ("add", "x"), ("update", "x"),
                               ("delete", "pre"), ("delete", "x")]
        assert len(informer.store) == 0


async def test_custom_index_on_node_name(api: ApiClient, unique: Callable[[str], str]) -> None:
    ns = await new_namespace(api, unique("idx"))
    pods = ResourceClient(api, "pods")

    def pod(name: str, node: str) -> Obj:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}

    def by_node(o: Obj) -> list[str]:
        node = (o.get("spec") or {}).get("nodeName")
        return [node] if node else []

    await pods.create(pod("p1", "n1"))
    await pods.create(pod("p2", "n1"))
    informer = Informer(pods.lister_watcher(namespace=ns), indexers={"node": by_node})

    def names(node: str) -> list[str]:
        return sorted(o["metadata"]["name"] for o in informer.store.by_index("node", node))

    async with running(informer):
        assert names("n1") == ["p1", "p2"]
        await pods.create(pod("p3", "n2"))
        await pods.delete("p1", namespace=ns, grace_period_seconds=0)
        await eventually(when(lambda: names("n1") == ["p2"] and names("n2") == ["p3"]))
        assert [o["metadata"]["name"] for o in informer.store.by_index("namespace",
                                                                      f"system/{ns}")]
        informer.store.add_index("phase", lambda o: [str(o.get("status", {}).get("phase"))])
        assert sorted(o["metadata"]["name"] for o in informer.store.by_index(
            "phase", "Pending")) == ["p2", "p3"]


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[ApiServerProcess]:
    proc = ApiServerProcess(tmp_path / "restartable").start()
    yield proc
    proc.stop()


async def test_relist_after_a_server_restart_lost_the_watch_history(
        restartable: ApiServerProcess) -> None:
    """The server restarts after changes made while this client was away: resuming the watch
    gets 410 Gone, and the relist delivers the delete, the add and the update it missed."""
    async with ApiClient(load_config(restartable.kubeconfig)) as api:
        cms = ResourceClient(api, "configmaps")
        for name in ("keep", "gone"):
            await cms.create(configmap(name))
        spy = Spy(cms.lister_watcher(namespace="default"))
        informer = Informer(spy)
        rec = Recorder()
        informer.add_handler(rec)
        async with running(informer):
            async def change(other: ApiClient) -> None:
                there = ResourceClient(other, "configmaps")
                await there.delete("gone", namespace="default")
                await there.create(configmap("new"))
                await there.patch("keep", {"data": {"k": "changed"}}, namespace="default")

            await rewrite_history(restartable, change)
            await eventually(when(lambda: sorted(informer.store.keys()) ==
                                  ["system/default/keep", "system/default/new"]), timeout=20)
            await eventually(when(lambda: ("update", "keep") in rec.verbs()))
        assert 410 in spy.errors and spy.lists >= 2
        assert rec.verbs()[:2] == [("add", "gone"), ("add", "keep")]
        assert sorted(rec.verbs()[2:]) == [("add", "new"), ("delete", "gone"), ("update", "keep")]
        assert informer.store.get("system/default/keep")["data"] == {"k": "changed"}  # type: ignore[index]


async def test_factory_shares_one_informer_per_selection(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    ns = await new_namespace(api, unique("fac"))
    cms = ResourceClient(api, "configmaps")
    await cms.create(configmap("a", ns, labels={"app": "x"}))
    factory = InformerFactory(api)
    first = factory.informer("configmaps", namespace=ns)
    assert factory.informer("ConfigMap", namespace=ns) is first
    assert factory.informer("configmaps", namespace=ns,
                            indexers={"app": lambda o: [o["metadata"]["labels"]["app"]]}) is first
    assert "app" in first.store.indexers
    labelled = factory.informer("configmaps", namespace=ns, label_selector="app=x")
    assert labelled is not first
    assert factory.informer("nodes", tenant="acme") is factory.informer("nodes")
    task = asyncio.create_task(factory.run())
    try:
        await factory.wait_synced(timeout=10)
        assert [o["metadata"]["name"] for o in first.store.by_index("app", "x")] == ["a"]
        late = factory.informer("configmaps", namespace=ns, field_selector="metadata.name=a")
        async with asyncio.timeout(10):
            await late.synced.wait()
        assert late.store.keys() == [f"system/{ns}/a"]
        await cms.create(configmap("b", ns, labels={"app": "y"}))
        await eventually(when(lambda: len(first.store) == 2))
        assert len(labelled.store) == 1 and len(late.store) == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
