"""One resource listed and watched across several API servers, as one `ListerWatcher`.

Arktos partitions API servers by tenant, so a client that spans tenants may have to list and
watch the same resource on several servers. `MergedListWatch` makes those servers look like one
source to an `Informer`:

- `list()` lists every part concurrently and concatenates the items. Its resourceVersion is a
  *composite*: the JSON array of the parts' resourceVersions, in part order (for two parts
  `["812","95"]`). It is opaque to callers and only meaningful to the same `MergedListWatch`
  (same parts, same order); parts may themselves be merged (their composite is one string).
- `watch(rv, timeout)` splits the composite, watches every part from its own version and yields
  their events as they come (each part's events in that part's order). Every event's `resume`
  is the composite advanced by that event (a part's BOOKMARK advances only that part), so an
  informer resumes each part exactly where it left off.
- The merged watch ends when any part's watch ends (the informer then re-watches all parts from
  the composite); an error of any part (e.g. 410 Gone after that server restarted) closes the
  other parts' watches and is raised, so the informer relists every part. A composite that is
  not ours (wrong shape or number of parts) is answered with a 410 `ApiError` for the same
  reason.

The parts must serve disjoint objects (as tenant partitions do): an object key served by two
parts would be one entry in an informer's store, overwritten by whichever part spoke last.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import TypeVar

import orjson

from arktos.api.resources import ResourceType
from arktos.client.informer import Informer, ListerWatcher
from arktos.client.resources import ALL_TENANTS, ListResult, ResourceClient, resource_type
from arktos.client.rest import ApiClient, ApiError, WatchEvent
from arktos.client.store import IndexFunc

T = TypeVar("T")
_QUEUE_SIZE = 256
"""Events buffered between the part watches and the consumer (backpressure beyond that)."""

_Item = tuple[int, WatchEvent | Exception | None]


def join_versions(versions: Sequence[str]) -> str:
    """The composite resourceVersion of the parts' versions (a JSON array of strings)."""
    return orjson.dumps(list(versions)).decode()


def split_versions(composite: str, parts: int) -> list[str]:
    """The parts' versions in `composite`; "" means "" for every part.

    Raises a 410 `ApiError` when `composite` is not a composite of `parts` versions."""
    if composite == "":
        return [""] * parts
    try:
        versions = orjson.loads(composite)
    except orjson.JSONDecodeError:
        versions = None
    if (not isinstance(versions, list) or len(versions) != parts
            or not all(isinstance(v, str) for v in versions)):
        raise ApiError(410, "Expired", f"resource version {composite!r} is not a composite "
                       f"of {parts} API servers' versions; relist")
    return list(versions)


class MergedListWatch:
    """A `ListerWatcher` over several `ListerWatcher`s (typically one per API server)."""

    def __init__(self, parts: Sequence[ListerWatcher]) -> None:
        if not parts:
            raise ValueError("MergedListWatch needs at least one part")
        self.parts: tuple[ListerWatcher, ...] = tuple(parts)

    async def list(self) -> ListResult:
        results = await _all([part.list() for part in self.parts])
        items = [obj for result in results for obj in result.items]
        return ListResult(items, join_versions([r.resource_version for r in results]))

    async def watch(self, resource_version: str,
                    timeout_seconds: int) -> AsyncIterator[WatchEvent]:
        versions = split_versions(resource_version, len(self.parts))
        queue: asyncio.Queue[_Item] = asyncio.Queue(_QUEUE_SIZE)
        tasks = [asyncio.create_task(_pump(i, part, versions[i], timeout_seconds, queue))
                 for i, part in enumerate(self.parts)]
        try:
            while True:
                index, item = await queue.get()
                if item is None:
                    return
                if isinstance(item, Exception):
                    raise item
                versions[index] = item.resume_version or versions[index]
                yield WatchEvent(item.type, item.object, join_versions(versions))
        finally:
            await _cancel(tasks)


async def _pump(index: int, part: ListerWatcher, version: str, timeout_seconds: int,
                queue: asyncio.Queue[_Item]) -> None:
    """Forward one part's events, then None (it ended) or the exception that ended it."""
    events = part.watch(version, timeout_seconds)
    end: Exception | None = None
    try:
        async for event in events:
            await queue.put((index, event))
    except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it
        end = exc
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    await queue.put((index, end))


async def _cancel(tasks: Sequence[asyncio.Task[T]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _all(aws: Sequence[Awaitable[T]]) -> list[T]:
    """Await all concurrently; on the first failure cancel the rest and raise it as it is."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            exc = task.exception() if task.done() and not task.cancelled() else None
            if exc is not None:
                raise exc
        return [task.result() for task in tasks]
    finally:
        await _cancel(tasks)


def merged_lister_watcher(clients: Sequence[ApiClient], resource: str | ResourceType, *,
                          namespace: str = "", tenant: str | None = None,
                          label_selector: str = "", field_selector: str = "") -> MergedListWatch:
    """One resource and selection on every client's API server, merged (client order).

    The scope arguments are those of `ResourceClient.lister_watcher` (tenant None: each
    client's context tenant)."""
    return MergedListWatch([
        ResourceClient(client, resource).lister_watcher(
            namespace=namespace, tenant=tenant, label_selector=label_selector,
            field_selector=field_selector)
        for client in clients])


def informer_over(clients: Sequence[ApiClient], resource: str | ResourceType, *,
                  tenant: str = ALL_TENANTS, namespace: str = "", label_selector: str = "",
                  field_selector: str = "", indexers: dict[str, IndexFunc] | None = None,
                  resync_period: float = 0.0, name: str = "") -> Informer:
    """An informer over `resource` on several API servers (defaults as
    `InformerFactory.informer`: every tenant). Run it with `await informer.run()`."""
    lw = merged_lister_watcher(clients, resource, namespace=namespace,
                               tenant=tenant or None, label_selector=label_selector,
                               field_selector=field_selector)
    return Informer(lw, indexers=indexers, resync_period=resync_period,
                    name=name or resource_type(resource).qualified)
