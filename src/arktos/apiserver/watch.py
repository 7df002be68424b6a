"""Streaming watches: newline-delimited JSON events from the watch cache.

Semantics (as kube-apiserver): no resourceVersion or "0" starts with synthetic ADDED events
for the current state; a resourceVersion N streams every change after N, or a 410 ERROR event
when N is older than the cache window. With selectors, an object moving out of the selection
is sent as DELETED and one moving in as ADDED. Bookmarks are sent while idle when asked for.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from arktos.api import errors
from arktos.apiserver import codec
from arktos.apiserver.lists import (
    ListOptions,
    Predicate,
    make_predicate,
    parse_revision,
    scope_prefix,
)
from arktos.apiserver.request import RequestInfo
from arktos.apiserver.store import Where
from arktos.apiserver.table import to_table
from arktos.apiserver.watchcache import CacheEvent, Entry
from arktos.storage import Compacted

if TYPE_CHECKING:
    from arktos.apiserver.resources import ResourceHandler

DEFAULT_TIMEOUT = 1800
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def shown_type(event: CacheEvent, pred: Predicate | None) -> str | None:
    """The event type a watcher with filter `pred` sees, or None to skip the event."""
    if pred is None:
        return event.type
    now = pred(event.entry.obj)
    if event.type == "MODIFIED":
        before = event.prev is not None and pred(event.prev.obj)
        if now and before:
            return "MODIFIED"
        if now:
            return "ADDED"
        return "DELETED" if before else None
    return event.type if now else None


class _Stream:
    """One watch connection: encodes events (JSON or Table rows) and writes them."""

    def __init__(self, handler: ResourceHandler, request: web.Request, info: RequestInfo,
                 pred: Predicate | None) -> None:
        self.handler = handler
        self.info = info
        self.pred = pred
        self.table = codec.wants_table(request)
        self.response = web.StreamResponse(headers={"Content-Type": codec.JSON})
        self.response.enable_chunked_encoding()

    def encode(self, type_: str, event: CacheEvent | None, entry: Entry) -> bytes:
        if self.table:
            obj = to_table(self.info.rtype, [entry.obj], now=datetime.now(UTC),
                           include_object="Object")
            return orjson.dumps({"type": type_, "object": obj}) + b"\n"
        if event is not None:
            return event.line(type_)
        return b'{"type":"' + type_.encode() + b'","object":' + entry.raw + b"}\n"

    def lines(self, events: list[CacheEvent]) -> list[bytes]:
        out = []
        for ev in events:
            type_ = shown_type(ev, self.pred)
            if type_ is not None:
                out.append(self.encode(type_, ev, ev.entry))
        return out

    def bookmark(self, rev: int, annotations: dict[str, str] | None = None) -> bytes:
        rt = self.info.rtype
        md: dict[str, Any] = {"resourceVersion": str(rev)}
        if annotations:
            md["annotations"] = annotations
        obj = {"kind": rt.kind, "apiVersion": rt.group_version, "metadata": md}
        return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


async def serve_watch(handler: ResourceHandler, request: web.Request, info: RequestInfo,
                      where: Where, opts: ListOptions) -> web.StreamResponse:
    """Run one watch until its timeout, the client leaving, or the cache closing it."""
    cache = handler.cache.cache(info.rtype)
    pred = make_predicate(info.rtype, opts)
    prefix = scope_prefix(where)
    initial = opts.resource_version in ("", "0") or opts.send_initial_events
    if opts.resource_version not in ("", "0"):
        await handler.wait_fresh(opts.resource_version)
    stream = _Stream(handler, request, info, pred)
    from_rev = None if initial else parse_revision(opts.resource_version)
    try:
        watcher, replay = cache.subscribe(prefix, from_rev)
    except Compacted:
        await stream.response.prepare(request)
        status = errors.gone(f"too old resource version: {from_rev} "
                             f"({cache.window_start + 1})").to_status()
        await stream.response.write(orjson.dumps({"type": "ERROR", "object": status}) + b"\n")
        return stream.response
    start_rev = handler.cache.revision
    first: list[bytes] = []
    if initial:
        first = [stream.encode("ADDED", None, e) for _, e in cache.items(prefix)
                 if pred is None or pred(e.obj)]
        if opts.send_initial_events and opts.allow_bookmarks:
            first.append(stream.bookmark(start_rev, {INITIAL_EVENTS_END: "true"}))
    first += stream.lines(replay)
    await stream.response.prepare(request)
    try:
        if first:
            await stream.response.write(b"".join(first))
        await _pump(stream, watcher, opts, handler)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        watcher.close()
    return stream.response


async def _pump(stream: _Stream, watcher: Any, opts: ListOptions,
                handler: ResourceHandler) -> None:
    timeout = opts.timeout_seconds or DEFAULT_TIMEOUT
    deadline = time.monotonic() + timeout
    interval = handler.bookmark_interval if opts.allow_bookmarks else None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        wait = min(left, interval) if interval else left
        try:
            batch = await asyncio.wait_for(watcher.batch(), wait)
        except TimeoutError:
            if interval and time.monotonic() < deadline:
                await stream.response.write(stream.bookmark(handler.cache.revision))
            continue
        if batch is None:
            return
        lines = stream.lines(batch)
        if lines:
            await stream.response.write(b"".join(lines))
