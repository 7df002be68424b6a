"""Request admission by load: global max-in-flight limits (as kube-apiserver's
--max-requests-inflight and --max-mutating-requests-inflight) and per-tenant and per-user
fairness (in-flight and rate limits), so that one tenant flooding the server cannot starve
another. Over a limit a request gets 429 with Retry-After (a refusal by the fair shares after
a short delay, so that ignoring Retry-After does not pay).

Long-running requests (watches) are not counted. The tenant and user come from
authentication (`request["tenant"]`, `request["user"]`); the system tenant is exempt from the
per-tenant limits (its components are the cluster's own).
"""

from __future__ import annotations

import asyncio
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
    """Per-key limits: requests in flight and a token bucket (qps/burst); 0 disables one."""

    inflight: int = 0
    qps: float = 0.0
    burst: int = 0


class KeyedLimiter:
    """Counts in-flight requests and spends rate tokens per key (a tenant, a user)."""

    def __init__(self, share: FairShare) -> None:
        self.share = share
        self.inflight: dict[str, int] = {}
        self._buckets: dict[str, TokenBucket] = {}

    def admit(self, key: str) -> str | None:
        """Take a slot for `key`, or say why not (the caller must `release` after admit)."""
        share = self.share
        if share.inflight and self.inflight.get(key, 0) >= share.inflight:
            return "too many requests in flight"
        if share.qps:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(share.qps, share.burst or 1)
            if bucket.reserve() > 0:
                bucket.refund()
                return "request rate limit exceeded"
        self.inflight[key] = self.inflight.get(key, 0) + 1
        return None

    def release(self, key: str) -> None:
        left = self.inflight.get(key, 1) - 1
        if left:
            self.inflight[key] = left
        else:
            self.inflight.pop(key, None)


class InflightLimiter:
    """The middleware: global read-only/mutating in-flight limits, then per-tenant and
    per-user fair shares; 0 disables a global limit."""

    def __init__(self, *, readonly: int = 400, mutating: int = 200,
                 tenant: FairShare = FairShare(), user: FairShare = FairShare(),
                 refusal_delay: float = 0.25) -> None:
        self.limits = {True: readonly, False: mutating}
        self.refusal_delay = refusal_delay
        self.inflight = {True: 0, False: 0}
        self.tenants = KeyedLimiter(tenant)
        self.users = KeyedLimiter(user)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if _long_running(request):
            return await handler(request)
        kind = request.method in _READONLY
        limit = self.limits[kind]
        if limit and self.inflight[kind] >= limit:
            raise _too_many("Too many requests, please try again later.")
        tenant = str(request.get("tenant", TENANT_SYSTEM))
        user = f"{tenant}/{request.get('user', '')}"
        try:
            keys = self._admit_fair(tenant, user)
        except errors.StatusError:
            # A tarpit: the refusal waits a little, so a client that ignores Retry-After
            # cannot make the server spend its CPU on answering refusals.
            await asyncio.sleep(self.refusal_delay)
            raise
        self.inflight[kind] += 1
        try:
            return await handler(request)
        finally:
            self.inflight[kind] -= 1
            for limiter, key in keys:
                limiter.release(key)

    def _admit_fair(self, tenant: str, user: str) -> list[tuple[KeyedLimiter, str]]:
        if tenant == TENANT_SYSTEM:
            return []
        why = self.tenants.admit(tenant)
        if why:
            raise _too_many(f'tenant "{tenant}": {why}, please try again later.')
        why = self.users.admit(user)
        if why:
            self.tenants.release(tenant)
            raise _too_many(f"user {user}: {why}, please try again later.")
        return [(self.tenants, tenant), (self.users, user)]


def _too_many(message: str) -> errors.StatusError:
    return errors.too_many_requests(message, retry_after=1)
