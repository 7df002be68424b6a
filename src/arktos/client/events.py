"""Recording Events about objects (what `kubectl describe` shows under Events).

Repeats of the same (object, type, reason, message) within the process bump the existing
Event's `count` and `lastTimestamp` instead of creating a new one, as client-go's recorder.
Recording never raises: a failed write is logged and dropped. The recorder remembers the
latest `MAX_REMEMBERED` distinct events (older ones are forgotten, so a repeat of one of those
creates a new Event rather than bumping the old one).
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient, ApiError
from arktos.client.store import Obj

log = logging.getLogger(__name__)
MAX_REMEMBERED = 4096


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(self, api: ApiClient, component: str, host: str = "") -> None:
        self.events = ResourceClient(api, "events")
        self.source = {"component": component, **({"host": host} if host else {})}
        self._seen: dict[tuple[str, str, str, str], tuple[str, str, str, int]] = {}

    async def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record that `reason: message` happened to `obj` (type Normal or Warning)."""
        md = obj.get("metadata") or {}
        tenant = md.get("tenant") or "system"
        namespace = md.get("namespace") or "default"
        ident = (str(md.get("uid", "")), type_, reason, message)
        try:
            if ident in self._seen:
                await self._bump(ident)
            else:
                await self._create(obj, ident, tenant, namespace)
        except ApiError as exc:
            log.warning("could not record event %s on %s: %s", reason, md.get("name"), exc)

    async def _create(self, obj: Obj, ident: tuple[str, str, str, str], tenant: str,
                      namespace: str) -> None:
        md = obj.get("metadata") or {}
        now = _now()
        name = f"{md.get('name', 'object')}.{secrets.token_hex(8)}"
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace, "tenant": tenant},
            "involvedObject": {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
                               "name": md.get("name", ""), "namespace": md.get("namespace", ""),
                               "tenant": md.get("tenant", ""), "uid": md.get("uid", ""),
                               "resourceVersion": md.get("resourceVersion", "")},
            "type": ident[1], "reason": ident[2], "message": ident[3], "source": self.source,
            "count": 1, "firstTimestamp": now, "lastTimestamp": now,
            "reportingComponent": self.source["component"],
        }
        await self.events.create(event, namespace=namespace, tenant=tenant)
        self._seen[ident] = (tenant, namespace, name, 1)
        while len(self._seen) > MAX_REMEMBERED:
            del self._seen[next(iter(self._seen))]  # the oldest (dicts keep insertion order)

    async def _bump(self, ident: tuple[str, str, str, str]) -> None:
        tenant, namespace, name, count = self._seen[ident]
        try:
            await self.events.patch(name, {"count": count + 1, "lastTimestamp": _now()},
                                    namespace=namespace, tenant=tenant)
        except ApiError as exc:
            if not exc.not_found:
                raise
            del self._seen[ident]
            return
        self._seen[ident] = (tenant, namespace, name, count + 1)
