"""Leader election over a `coordination.k8s.io/v1` Lease (as client-go's leaderelection).

Contract: `run(lead)` tries to acquire the lease; while it holds it, `lead()` runs; when a
renewal has not succeeded within `renew_deadline`, `lead()` is cancelled and `run` returns
(the process should then exit or start over). On the way out the lease is released. A lease counts as free once
`renewTime + leaseDurationSeconds` has passed. All writes are compare-and-swap on
resourceVersion, so two candidates can never both hold the lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from arktos.api.meta import parse_time
from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiClient, ApiError

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(ts: str) -> float:
    when = parse_time(ts)
    return when.timestamp() if when is not None else 0.0


class LeaderElector:
    def __init__(self, api: ApiClient, *, name: str, identity: str,
                 namespace: str = "kube-system", tenant: str = "system",
                 lease_duration: float = 15.0, renew_deadline: float = 10.0,
                 retry_period: float = 2.0) -> None:
        self.leases = ResourceClient(api, "leases")
        self.name, self.identity = name, identity
        self.namespace, self.tenant = namespace, tenant
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.is_leader = False

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Acquire, lead until leadership is lost (or `lead` returns), then return."""
        while True:
            started = time.monotonic()
            if await self._try_acquire_or_renew():
                break
            await asyncio.sleep(self.retry_period)
        log.info("%s became leader of %s", self.identity, self.name)
        self.is_leader = True
        try:
            async with asyncio.TaskGroup() as tg:
                leading = tg.create_task(lead())
                await self._renew_until_lost(leading, started)
                leading.cancel()
        finally:
            self.is_leader = False
            log.info("%s stopped leading %s", self.identity, self.name)
            await self.release()

    async def release(self) -> None:
        """Give the lease up (if still ours) so a successor need not wait for it to expire.
        Bounded by the renew deadline: an unreachable server must not keep `run` from
        returning."""
        try:
            async with asyncio.timeout(self.renew_deadline):
                lease = await self.leases.get(self.name, namespace=self.namespace,
                                              tenant=self.tenant)
                spec = lease.get("spec") or {}
                if spec.get("holderIdentity") != self.identity:
                    return
                lease["spec"] = {**spec, "holderIdentity": "", "renewTime": _now(),
                                 "leaseDurationSeconds": 1}
                await self.leases.update(lease)
        except (ApiError, TimeoutError, asyncio.CancelledError):
            log.info("%s could not release %s; it expires by itself", self.identity, self.name)

    async def _renew_until_lost(self, leading: asyncio.Task[None], last_ok: float) -> None:
        """`last_ok`: when the last successful attempt started (its renewTime is later). An
        attempt may not outlast the renew deadline, so a leader cut off from the server stops
        leading before others can see the lease expire."""
        while not leading.done():
            await asyncio.sleep(self.retry_period)
            started = time.monotonic()
            try:
                async with asyncio.timeout(max(0.0, last_ok + self.renew_deadline - started)):
                    renewed = await self._try_acquire_or_renew()
            except TimeoutError:
                renewed = False
            if renewed:
                last_ok = started
            elif time.monotonic() - last_ok > self.renew_deadline:
                return

    def _record(self, transitions: int, acquire: str) -> dict[str, Any]:
        return {"holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.lease_duration),
                "acquireTime": acquire, "renewTime": _now(), "leaseTransitions": transitions}

    async def _try_acquire_or_renew(self) -> bool:
        try:
            lease = await self.leases.get(self.name, namespace=self.namespace,
                                          tenant=self.tenant)
        except ApiError as exc:
            if not exc.not_found:
                return False
            return await self._create()
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity", "")
        if holder and holder != self.identity:
            expires = _parse(spec.get("renewTime", "")) + float(
                spec.get("leaseDurationSeconds") or self.lease_duration)
            if time.time() < expires:
                return False
        transitions = int(spec.get("leaseTransitions") or 0) + (holder != self.identity)
        acquire = spec.get("acquireTime") if holder == self.identity else _now()
        lease["spec"] = self._record(transitions, acquire or _now())
        try:
            await self.leases.update(lease)
        except ApiError:
            return False
        return True

    async def _create(self) -> bool:
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": self.name, "namespace": self.namespace,
                              "tenant": self.tenant},
                 "spec": self._record(0, _now())}
        try:
            await self.leases.create(lease)
        except ApiError:
            return False
        return True
