"""Request admission by load: global max-in-flight limits (as kube-apiserver's
--max-requests-inflight and --max-mutating-requests-inflight) and per-tenant and per-user
fair queuing, so that one tenant flooding the server cannot starve another.

Each tenant (and each user) has a fair share: requests in flight and a rate (token bucket).
A request over its share waits, briefly and in order, for a slot or a token; all tenants
together also share a pool of slots, handed out round-robin between the tenants that wait
(a tenant with a thousand waiting requests gets no more turns than one with a single
request). Requests that would wait too long, or find their tenant's queue full, get 429 with
Retry-After, after a short jittered delay so that ignoring Retry-After does not pay and
refused clients do not come back in lockstep.

Long-running requests (watches) are not counted. The tenant and user come from
authentication (`request["tenant"]`, `request["user"]`); the system tenant is exempt from the
fair shares (its components are the cluster's own) but not from the global limits.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from arktos.api import errors
from arktos.api.meta import TENANT_SYSTEM
from arktos.client.ratelimit import TokenBucket

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_READONLY = frozenset({"GET", "HEAD", "OPTIONS"})


def _long_running(request: web.Request) -> bool:
    return request.query.get("watch", "") in ("1", "true") or "/watch/" in request.path


@dataclass(frozen=True)
class FairShare:
    """Per-flow limits: requests in flight and a token bucket (qps/burst), 0 disables one;
    `queue` requests may wait for a slot, none longer than `max_wait` seconds (also for a
    rate token)."""

    inflight: int = 0
    qps: float = 0.0
    burst: int = 0
    queue: int = 0
    max_wait: float = 1.0


class Refused(Exception):
    """A request over its fair share that may not wait (any longer)."""


class FairQueue:
    """Slots for the requests of many flows (tenants, users): at most `share.inflight` per
    flow and at most `seats` over all flows (0: no overall cap). A request without a free slot
    waits in its flow's FIFO queue; freed slots go round-robin to the flows that wait."""

    def __init__(self, share: FairShare, seats: int = 0) -> None:
        self.share = share
        self.seats = seats
        self.running: dict[str, int] = {}
        self.total = 0
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}
        self._turns: deque[str] = deque()

    def waiting(self, flow: str) -> int:
        return len(self._queues.get(flow, ()))

    def _free(self, flow: str) -> bool:
        share = self.share
        return ((not share.inflight or self.running.get(flow, 0) < share.inflight)
                and (not self.seats or self.total < self.seats))

    def _take(self, flow: str) -> None:
        self.running[flow] = self.running.get(flow, 0) + 1
        self.total += 1

    async def acquire(self, flow: str) -> None:
        """Take a slot for `flow`, waiting in line if needed; raises Refused when the queue is
        full or the wait would exceed `share.max_wait`. The caller must `release` after."""
        if flow not in self._queues and self._free(flow):
            self._take(flow)
            return
        queue = self._queues.get(flow)
        if queue is None:
            queue = self._queues[flow] = deque()
            self._turns.append(flow)
        if len(queue) >= self.share.queue:
            self._forget(flow, None)
            raise Refused("too many requests in flight")
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(slot)
        try:
            async with asyncio.timeout(self.share.max_wait):
                await slot
        except BaseException as exc:
            if slot.done() and not slot.cancelled():
                self.release(flow)  # the slot came, but too late for this request
            else:
                slot.cancel()
                self._forget(flow, slot)
            if isinstance(exc, TimeoutError):
                raise Refused("too many requests in flight, waited too long") from None
            raise

    def _forget(self, flow: str, slot: asyncio.Future[None] | None) -> None:
        queue = self._queues.get(flow)
        if queue is None:
            return
        if slot is not None and slot in queue:
            queue.remove(slot)
        if not queue:
            del self._queues[flow]
            self._turns.remove(flow)

    def release(self, flow: str) -> None:
        left = self.running.get(flow, 1) - 1
        if left:
            self.running[flow] = left
        else:
            self.running.pop(flow, None)
        self.total -= 1
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand free slots to waiting flows, one per turn, in round-robin order."""
        for _ in range(len(self._turns)):
            if self.seats and self.total >= self.seats:
                return
            flow = self._turns.popleft()
            queue = self._queues[flow]
            while queue and queue[0].done():  # cancelled, not yet forgotten
                queue.popleft()
            if queue and self._free(flow):
                self._take(flow)
                queue.popleft().set_result(None)
            if queue:
                self._turns.append(flow)
            else:
                del self._queues[flow]


class RateShares:
    """A token bucket per flow; a request over the rate waits for its token if it comes
    within `share.max_wait`, and is refused otherwise."""

    def __init__(self, share: FairShare) -> None:
        self.share = share
        self._buckets: dict[str, TokenBucket] = {}

    async def pace(self, flow: str) -> None:
        share = self.share
        if not share.qps:
            return
        bucket = self._buckets.get(flow)
        if bucket is None:
            bucket = self._buckets[flow] = TokenBucket(share.qps, share.burst or 1)
        delay = bucket.reserve()
        if delay > share.max_wait:
            bucket.refund()
            raise Refused("request rate limit exceeded")
        if delay > 0:
            await asyncio.sleep(delay)


class InflightLimiter:
    """The middleware: global read-only/mutating in-flight limits (0 disables one), then the
    per-user and per-tenant fair shares, tenants sharing `tenant_seats` slots (0: no cap)."""

    def __init__(self, *, readonly: int = 400, mutating: int = 200,
                 tenant: FairShare = FairShare(), user: FairShare = FairShare(),
                 tenant_seats: int = 0, refusal_delay: float = 0.25) -> None:
        self.limits = {True: readonly, False: mutating}
        self.refusal_delay = refusal_delay
        self.inflight = {True: 0, False: 0}
        self.tenants = FairQueue(tenant, tenant_seats)
        self.users = FairQueue(user)
        self.tenant_rates = RateShares(tenant)
        self.user_rates = RateShares(user)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if _long_running(request):
            return await handler(request)
        tenant = str(request.get("tenant", TENANT_SYSTEM))
        user = f"{tenant}/{request.get('user', '')}"
        if tenant != TENANT_SYSTEM:
            await self._enter(tenant, user)
        try:
            return await self._run(request, handler)
        finally:
            if tenant != TENANT_SYSTEM:
                self.tenants.release(tenant)
                self.users.release(user)

    async def _run(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        kind = request.method in _READONLY
        limit = self.limits[kind]
        if limit and self.inflight[kind] >= limit:
            raise _too_many("Too many requests, please try again later.")
        self.inflight[kind] += 1
        try:
            return await handler(request)
        finally:
            self.inflight[kind] -= 1

    async def _enter(self, tenant: str, user: str) -> None:
        """Wait for the user's and then the tenant's share (rate, then a slot), or raise 429."""
        subject = f"user {user}"
        try:
            await self.user_rates.pace(user)
            subject = f'tenant "{tenant}"'
            await self.tenant_rates.pace(tenant)
            subject = f"user {user}"
            await self.users.acquire(user)
            subject = f'tenant "{tenant}"'
            try:
                await self.tenants.acquire(tenant)
            except BaseException:
                self.users.release(user)
                raise
        except Refused as refused:
            # A tarpit: the refusal waits a little (jittered, so that refused clients do not
            # return in lockstep) and a client ignoring Retry-After gains nothing.
            await asyncio.sleep(self.refusal_delay * random.uniform(0.5, 1.5))
            raise _too_many(f"{subject}: {refused}, please try again later.") from None


def _too_many(message: str) -> errors.StatusError:
    return errors.too_many_requests(message, retry_after=1)
