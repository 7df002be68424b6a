"""Liveness and readiness probes of running containers (exec, httpGet, tcpSocket), as the
kubelet's: a probe runs every `periodSeconds` after `initialDelaySeconds`; `failureThreshold`
failures in a row make a container unready (readiness) or get it killed (liveness: the
restart policy then restarts it), `successThreshold` successes make it ready again.

One task per probed container instance; tasks end when the instance is no longer running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from arktos.agent.runtime import ContainerState, ExecRuntime, Obj, PodRuntimeStatus, Runtime

log = logging.getLogger(__name__)
KINDS = ("readinessProbe", "livenessProbe")


@dataclass(frozen=True)
class ProbeSpec:
    """A probe's timing (Kubernetes defaults)."""

    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def of(cls, probe: Obj) -> ProbeSpec:
        return cls(float(probe.get("initialDelaySeconds") or 0),
                   float(probe.get("periodSeconds") or 10),
                   float(probe.get("timeoutSeconds") or 1),
                   int(probe.get("successThreshold") or 1),
                   int(probe.get("failureThreshold") or 3))


class Verdict:
    """Counts results in a row; `result` flips after the thresholds. Pure."""

    def __init__(self, spec: ProbeSpec, start: bool) -> None:
        self.spec = spec
        self.result = start
        self._run = 0
        self._last: bool | None = None

    def add(self, ok: bool) -> bool:
        """Record one probe result; whether `result` changed."""
        self._run = self._run + 1 if ok == self._last else 1
        self._last = ok
        needed = self.spec.success_threshold if ok else self.spec.failure_threshold
        if ok != self.result and self._run >= needed:
            self.result = ok
            return True
        return False


def _port(value: Any, container: Obj) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(value, int):
        return value
    for port in container.get("ports") or ():
        if port.get("name") == value:
            return int(port.get("containerPort", 0))
    return int(value)


async def probe_once(probe: Obj, container: Obj, runtime: Runtime, rs: PodRuntimeStatus,
                     timeout: float, http: aiohttp.ClientSession | None = None) -> bool:
    """Run a probe once; True on success (exec: exit 0; httpGet: 200-399, through `http`
    or a session of its own; tcpSocket: connects). An unknown probe kind fails."""
    try:
        if isinstance(probe.get("exec"), dict):
            command = [str(a) for a in probe["exec"].get("command") or ()]
            code, _ = await _exec(runtime, rs.uid, str(container.get("name")), command, timeout)
            return code == 0
        if isinstance(probe.get("httpGet"), dict):
            if http is not None:
                return await _http(http, probe["httpGet"], container, rs.ip, timeout)
            async with aiohttp.ClientSession() as session:
                return await _http(session, probe["httpGet"], container, rs.ip, timeout)
        if isinstance(probe.get("tcpSocket"), dict):
            port = _port(probe["tcpSocket"].get("port"), container)
            host = str(probe["tcpSocket"].get("host") or rs.ip)
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            writer.close()
            return True
    except (OSError, TimeoutError, aiohttp.ClientError, RuntimeError) as exc:
        log.debug("probe of %s/%s failed: %s", rs.uid, container.get("name"), exc)
    return False


async def _exec(runtime: Runtime, uid: str, name: str, command: list[str],
                timeout: float) -> tuple[int, bytes]:
    if not hasattr(runtime, "exec"):
        raise RuntimeError(f"runtime {runtime.name} cannot exec")
    runner: ExecRuntime = runtime  # type: ignore[assignment]
    return await runner.exec(uid, name, command, timeout)


async def _http(session: aiohttp.ClientSession, get: Obj, container: Obj, ip: str,
                timeout: float) -> bool:
    scheme = str(get.get("scheme") or "HTTP").lower()
    host = str(get.get("host") or ip)
    url = f"{scheme}://{host}:{_port(get.get('port'), container)}{get.get('path') or '/'}"
    headers = {str(h.get("name")): str(h.get("value")) for h in get.get("httpHeaders") or ()}
    async with session.get(url, headers=headers, ssl=False,
                           timeout=aiohttp.ClientTimeout(total=timeout)) as response:
        return 200 <= response.status < 400


class Prober:
    """Probes the running containers of the pods it is shown (`watch`)."""

    def __init__(self, *, changed: Callable[[str], None], kill: Callable[[str, str], None]
                 ) -> None:
        self.changed = changed
        """Called with a pod uid when a container's readiness changed."""
        self.kill = kill
        """Called with (uid, container) when a liveness probe failed."""
        self.ready: dict[tuple[str, str], bool] = {}
        self._tasks: dict[tuple[str, str, str, str], asyncio.Task[None]] = {}
        self._http: aiohttp.ClientSession | None = None
        """One connection pool for every httpGet probe (made in the prober's loop)."""

    def session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    async def close(self) -> None:
        """Stop every probe and close the connection pool."""
        for key in list(self._tasks):
            self._tasks.pop(key).cancel()
        if self._http is not None:
            await self._http.close()

    def readiness(self, uid: str) -> dict[str, bool]:
        return {name: ok for (u, name), ok in self.ready.items() if u == uid}

    def watch(self, pod: Obj, rs: PodRuntimeStatus | None, runtime: Runtime) -> None:
        """Start probing the pod's running probed containers; stop probing the others."""
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        wanted = set()
        for spec in (pod.get("spec") or {}).get("containers") or ():
            c = rs.container(str(spec.get("name"))) if rs else None
            if c is None or c.state != "running":
                continue
            for kind in KINDS:
                if isinstance(spec.get(kind), dict):
                    key = (uid, c.name, c.container_id, kind)
                    wanted.add(key)
                    if key not in self._tasks:
                        self._start(key, spec, c, rs, runtime)
        for key in [k for k in self._tasks if k[0] == uid and k not in wanted]:
            self._tasks.pop(key).cancel()
            if key[3] == "readinessProbe":
                self.ready.pop((uid, key[1]), None)

    def forget(self, uid: str) -> None:
        for key in [k for k in self._tasks if k[0] == uid]:
            self._tasks.pop(key).cancel()
        for ready in [k for k in self.ready if k[0] == uid]:
            del self.ready[ready]

    def _start(self, key: tuple[str, str, str, str], spec: Obj, c: ContainerState,
               rs: PodRuntimeStatus | None, runtime: Runtime) -> None:
        assert rs is not None
        if key[3] == "readinessProbe":
            self.ready[(key[0], c.name)] = False
        self._tasks[key] = asyncio.get_running_loop().create_task(
            self._loop(key, spec, rs, runtime))

    async def _loop(self, key: tuple[str, str, str, str], spec: Obj, rs: PodRuntimeStatus,
                    runtime: Runtime) -> None:
        uid, name, _, kind = key
        probe = spec[kind]
        timing = ProbeSpec.of(probe)
        verdict = Verdict(timing, start=kind == "livenessProbe")
        await asyncio.sleep(timing.initial_delay)
        while True:
            ok = await probe_once(probe, spec, runtime, rs, timing.timeout, self.session())
            if verdict.add(ok):
                if kind == "readinessProbe":
                    self.ready[(uid, name)] = verdict.result
                    self.changed(uid)
                elif not verdict.result:
                    log.info("liveness probe of %s/%s failed; killing it", uid, name)
                    self.kill(uid, name)
                    return
            await asyncio.sleep(timing.period)
