"""The event TTL controller: deletes Events, in every tenant, once `settings.event_ttl` seconds
have passed since they last happened (lastTimestamp, else eventTime, firstTimestamp or
creationTimestamp).

One key per event: a reconcile deletes an expired event, or requeues its key for when it
expires. Events are bumped (count, lastTimestamp) by recorders, and every bump reconciles the
key again; so that each bump does not start another timer, a key keeps at most one pending
requeue (`Timers`). Deletion has the event's resourceVersion as precondition: an event bumped
meanwhile is not deleted but looked at again. Level-triggered: after a restart the informer's
initial list reconciles every event.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from arktos.api.meta import parse_time
from arktos.client.informer import Handler
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiError
from arktos.client.store import Obj, key_of
from arktos.controllers.base import Context, Controller

log = logging.getLogger(__name__)
_SLACK = 0.5
"""Seconds a pending timer may be early before another one is armed."""


def last_seen(event: Obj) -> datetime | None:
    """When the event last happened (None: it carries no usable time at all)."""
    md = event.get("metadata") or {}
    for value in (event.get("lastTimestamp"), event.get("eventTime"),
                  event.get("firstTimestamp"), md.get("creationTimestamp")):
        when = parse_time(value)
        if when is not None:
            return when
    return None


def expires_in(event: Obj, ttl: float, now: datetime) -> float:
    """Seconds until the event expires (<= 0: expired; an event without times has)."""
    seen = last_seen(event)
    return 0.0 if seen is None else ttl - (now - seen).total_seconds()


class Timers:
    """At most one pending requeue per key, on a monotonic clock."""

    def __init__(self) -> None:
        self.pending: dict[str, float] = {}

    def arm(self, key: str, delay: float, now: float) -> bool:
        """Whether to requeue `key` after `delay`: not when a timer is pending that fires no
        later (a due or past timer counts as fired). Records the new timer when it says yes."""
        due = now + delay
        pending = self.pending.get(key)
        if pending is not None and now < pending <= due + _SLACK:
            return False
        self.pending[key] = due
        return True

    def drop(self, key: str) -> None:
        self.pending.pop(key, None)


class EventTTLController(Controller):
    name = "event-ttl"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.events_api = ResourceClient(ctx.api, "events")
        self.events = ctx.informers.informer("events")
        self.timers = Timers()
        self.events.add_handler(Handler(on_add=self.enqueue,
                                        on_update=lambda _o, n: self.enqueue(n),
                                        on_delete=lambda o: self.timers.drop(key_of(o))))

    async def reconcile(self, key: str) -> float | None:
        event = self.events.store.get(key)
        if event is None:
            self.timers.drop(key)
            return None
        remaining = expires_in(event, self.ctx.settings.event_ttl, datetime.now(UTC))
        if remaining > 0:
            return remaining if self.timers.arm(key, remaining, time.monotonic()) else None
        self.timers.drop(key)
        await self._delete(event)
        return None

    async def _delete(self, event: Obj) -> None:
        md = event["metadata"]
        version = str(md.get("resourceVersion") or "")
        pre = {"resourceVersion": version} if version else None
        try:
            await self.events_api.delete(md["name"], namespace=md["namespace"],
                                         tenant=md["tenant"], preconditions=pre)
        except ApiError as exc:
            if not exc.not_found:
                raise  # 409: bumped meanwhile; the retry sees the new version
            return
        log.debug("deleted expired event %s/%s/%s", md["tenant"], md["namespace"], md["name"])
