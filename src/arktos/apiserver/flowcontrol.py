"""Max-in-flight limits (as kube-apiserver's --max-requests-inflight and
--max-mutating-requests-inflight): beyond them a request gets 429 with Retry-After at once.

Long-running requests (watches) are not counted. Per-tenant fairness builds on this later.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from arktos.api import errors

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_READONLY = frozenset({"GET", "HEAD", "OPTIONS"})


def _long_running(request: web.Request) -> bool:
    return request.query.get("watch", "") in ("1", "true") or "/watch/" in request.path


class InflightLimiter:
    """Counts requests in flight, read-only and mutating apart; 0 disables a limit."""

    def __init__(self, *, readonly: int = 400, mutating: int = 200) -> None:
        self.limits = {True: readonly, False: mutating}
        self.inflight = {True: 0, False: 0}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if _long_running(request):
            return await handler(request)
        kind = request.method in _READONLY
        limit = self.limits[kind]
        if limit and self.inflight[kind] >= limit:
            raise errors.too_many_requests(
                "Too many requests, please try again later.", retry_after=1)
        self.inflight[kind] += 1
        try:
            return await handler(request)
        finally:
            self.inflight[kind] -= 1
