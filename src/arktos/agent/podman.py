"""The Podman container runtime: a Kubernetes pod is a Podman pod (network namespace shared
through its infra container, whose address on Podman's bridge is the pod IP), each container
instance a Podman container `<uid>_<name>_<attempt>` logging to a k8s-file log under
`root/pods/<uid>/logs/`.

Podman is driven through its libpod REST API, not its CLI: the runtime starts
`podman system service --time=0 unix://<socket>` itself (or reuses one that answers on its
socket) and talks to it with aiohttp over the Unix socket. A status poll is then one HTTP
request on a kept-alive connection (one container list for every pod) instead of a
`podman` process (~50 ms of CPU each) per call. Only `exec` runs `podman exec`: an exec
session made through the API keeps its conmon process for five minutes after it ends (and
slows the pod's removal), which exec probes would pile up. Containers belong to conmon, not
to the service, so they outlive the service and the agent: a new runtime over the same root
finds them again by their labels (re-adoption). The runtime writes its own containers.conf
(runc, cgroupfs, file events, k8s-file logs, ulimits within this process's limits) and
gives it to Podman through `CONTAINERS_CONF`; no host-global file is touched.

Needs the Debian packages podman, runc, catatonit (Podman builds its pause image from it;
no registry is needed) and iptables (netavark's firewall driver).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import resource
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from arktos.agent import crilog
from arktos.agent import podmanspec as spec
from arktos.agent import podmanstatus as status
from arktos.agent.runtime import ExecRuntime, Obj, PodRuntimeStatus, RuntimeFailure

API = "http://podman/v4.0.0/libpod"
STOP_SLACK = 30.0
"""Seconds a request may take beyond the grace period it waits for."""


def containers_conf(nofile: int, nproc: int) -> str:
    """The runtime's containers.conf. Pure."""
    return (
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        'log_driver = "k8s-file"\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        "[network]\n"
        'network_backend = "netavark"\n')


def _limit(kind: int, wanted: int) -> int:
    """`wanted`, lowered to this process's hard limit (raising it needs CAP_SYS_RESOURCE)
    and, for processes, to the kernel's `pid_max` (runc fails to set more on such hosts)."""
    hard = resource.getrlimit(kind)[1]
    limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if kind == resource.RLIMIT_NPROC:
        with contextlib.suppress(OSError, ValueError):
            limit = min(limit, int(Path("/proc/sys/kernel/pid_max").read_text()))
    return limit


def podman_env(root: Path) -> dict[str, str]:
    """The environment of `podman` commands for a runtime over `root`: `CONTAINERS_CONF`
    names its containers.conf, (re)written if missing or stale. Blocking (small file I/O)."""
    conf = root / "containers.conf"
    text = containers_conf(_limit(resource.RLIMIT_NOFILE, 65536),
                           _limit(resource.RLIMIT_NPROC, 65536))
    if not conf.exists() or conf.read_text() != text:
        root.mkdir(parents=True, exist_ok=True)
        tmp = conf.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(conf)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def socket_path(root: Path) -> Path:
    """The service's socket: `root/podman.sock`, or a short path in the temp dir when that
    would not fit a Unix socket address (108 bytes)."""
    path = root.resolve() / "podman.sock"
    if len(str(path)) < 100:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"arktos-podman-{digest}.sock"


class PodmanError(RuntimeFailure):
    """Podman answered a request with an error status."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__("PodmanError", message)
        self.status = status_code


class PodmanRuntime:
    """Runs container pods in Podman; state lives in Podman (labels) and under `root`.
    Call `close()` when done (stops the service this runtime started; containers stay)."""

    name = status.SCHEME
    runs_containers = True
    runs_vms = False

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.socket = socket_path(self.root)
        self._session: aiohttp.ClientSession | None = None
        self._service: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._healthy = False
        """The service answered and no request has failed to connect since."""
        self._env: dict[str, str] | None = None
        self._ready: tuple[float, bool] = (0.0, False)
        self._ips: dict[str, str] = {}
        self._oom: dict[str, bool] = {}

    # -- the service --------------------------------------------------------------------

    async def _connect(self) -> aiohttp.ClientSession:
        """A session to a live service, starting the service if none answers."""
        async with self._lock:
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession(
                    connector=aiohttp.UnixConnector(path=str(self.socket)))
            if self._healthy:
                return self._session
            if not await self._ping(self._session):
                await self._spawn(self._session)
            self._healthy = True
            return self._session

    @staticmethod
    async def _ping(session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(f"{API}/_ping",
                                   timeout=aiohttp.ClientTimeout(total=5)) as r:
                return r.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    async def _environment(self) -> dict[str, str]:
        if self._env is None:
            self._env = await asyncio.to_thread(podman_env, self.root)
        return self._env

    async def _spawn(self, session: aiohttp.ClientSession) -> None:
        """Start `podman system service` on the socket (in its own session: it outlives an
        agent that dies; `close` stops it) and wait until it answers."""
        env = await self._environment()
        self.socket.unlink(missing_ok=True)
        log = await asyncio.to_thread(open, self.root / "podman-service.log", "ab")
        try:
            with log:
                self._service = await asyncio.create_subprocess_exec(
                    "podman", "system", "service", "--time=0", f"unix://{self.socket}",
                    env=env, stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL, stderr=log, start_new_session=True)
        except OSError as exc:
            raise RuntimeFailure("RuntimeUnavailable", f"cannot run podman: {exc}") from exc
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if await self._ping(session):
                return
            if self._service.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise RuntimeFailure("RuntimeUnavailable", "podman system service did not start; "
                             f"see {self.root / 'podman-service.log'}")

    async def close(self) -> None:
        """Close the connection and stop the service this runtime started."""
        self._healthy = False
        if self._session is not None:
            await self._session.close()
            self._session = None
        proc, self._service = self._service, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def _call(self, method: str, path: str, *, params: dict[str, str] | None = None,
                    body: Any = None, data: Any = None, headers: dict[str, str] | None = None,
                    timeout: float = 60.0) -> Any:
        """One API request: its decoded JSON (or raw bytes) answer; `PodmanError` for an
        error status, `RuntimeFailure("RuntimeUnavailable")` if Podman cannot be reached
        (a request that could not connect is sent once more, to a restarted service)."""
        for retry in (True, False):
            session = await self._connect()
            try:
                async with session.request(
                        method, f"{API}{path}", params=params, data=data, headers=headers,
                        json=body, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                    raw = await r.read()
                    code, kind = r.status, r.content_type
                break
            except aiohttp.ClientConnectorError as exc:
                self._healthy = False
                if not retry:
                    raise RuntimeFailure("RuntimeUnavailable", f"podman: {exc}") from exc
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise RuntimeFailure("RuntimeUnavailable",
                                     f"podman {method} {path}: {exc!r}") from exc
        answer: Any = raw
        if kind == "application/json" and raw:
            with contextlib.suppress(orjson.JSONDecodeError):
                answer = orjson.loads(raw)
        if code >= 400:
            message = answer.get("message") if isinstance(answer, dict) else None
            raise PodmanError(code, str(message or raw[:500].decode(errors="replace")))
        return answer

    async def ready(self) -> bool:
        """Podman answers `_ping` (cached for a second)."""
        checked, ok = self._ready
        if time.monotonic() - checked < 1.0:
            return ok
        try:
            await self._call("GET", "/_ping", timeout=5)
            ok = True
        except RuntimeFailure:
            ok = False
        self._ready = (time.monotonic(), ok)
        return ok

    # -- queries ------------------------------------------------------------------------

    async def _list(self, uid: str | None = None) -> list[Obj]:
        """Every container (infra included) of this runtime's pods, or of pod `uid`."""
        labels = [f"{spec.LABEL_ROOT}={self.root}"]
        if uid is not None:
            labels.append(f"{spec.LABEL_UID}={uid}")
        filters = orjson.dumps({"label": labels}).decode()
        found = await self._call("GET", "/containers/json",
                                 params={"all": "true", "filters": filters})
        return list(found) if isinstance(found, list) else []

    async def _inspect(self, cid: str) -> Obj:
        found = await self._call("GET", f"/containers/{cid}/json")
        return found if isinstance(found, dict) else {}

    async def _ip(self, infra: Obj | None) -> str:
        """The pod address: the running infra container's address (cached per start)."""
        if infra is None or infra.get("State") != "running":
            return ""
        key = f"{infra.get('Id')}@{infra.get('StartedAt')}"
        if key not in self._ips:
            try:
                inspected = await self._inspect(str(infra.get("Id")))
            except PodmanError:  # removed since it was listed
                return ""
            networks = (inspected.get("NetworkSettings") or {}).get("Networks") or {}
            addresses = [str(n.get("IPAddress")) for n in networks.values() if n.get("IPAddress")]
            self._ips[key] = addresses[0] if addresses else ""
        return self._ips[key]

    async def _check_oom(self, entries: list[Obj]) -> None:
        """Inspect (once each) the instances that may have been OOM-killed."""
        for e in entries:
            cid = str(e.get("Id"))
            if status.may_be_oom(e) and cid not in self._oom:
                try:
                    state = (await self._inspect(cid)).get("State") or {}
                except PodmanError:
                    continue
                self._oom[cid] = bool(state.get("OOMKilled"))

    async def _states(self, entries: list[Obj]) -> list[PodRuntimeStatus]:
        await self._check_oom(entries)
        groups = status.by_pod(entries)
        ips = {}
        for group in groups.values():
            infra = status.infra_of(group)
            if infra is not None:
                ips[str(infra.get("Id"))] = await self._ip(infra)
        return status.pod_states(entries, ips, lambda cid: self._oom.get(cid, False))

    async def pod_status(self, uid: str) -> PodRuntimeStatus | None:
        found = await self._states(await self._list(uid))
        return found[0] if found else None

    async def list_pods(self) -> list[PodRuntimeStatus]:
        return await self._states(await self._list())

    async def adopt(self, pod: Obj) -> PodRuntimeStatus | None:
        """Podman keeps running pods while the agent is away: the pod as it is now."""
        return await self.pod_status(spec.uid_of(pod))

    # -- pods ---------------------------------------------------------------------------

    async def start_sandbox(self, pod: Obj) -> PodRuntimeStatus:
        uid = spec.uid_of(pod)
        await asyncio.to_thread(_make_dirs, spec.local_dirs(pod, self.root))
        name = spec.pod_name(uid)
        try:
            await self._call("POST", "/pods/create", body=spec.pod_request(pod, self.root))
        except PodmanError as exc:
            if exc.status != 409:  # 409: it exists already
                raise RuntimeFailure("CreatePodSandboxError", exc.message) from exc
        try:
            await self._call("POST", f"/pods/{name}/start")
        except PodmanError as exc:
            raise RuntimeFailure("CreatePodSandboxError", exc.message) from exc
        rs = await self.pod_status(uid)
        if rs is None:
            raise RuntimeFailure("CreatePodSandboxError", f"pod {name} vanished")
        return rs

    async def remove_pod(self, uid: str, grace: float) -> None:
        """Stop the containers (`grace`), remove them, the pod and `root/pods/<uid>`."""
        entries = await self._list(uid)
        await asyncio.gather(*(self._stop(e, grace) for e in entries if not e.get("IsInfra")))
        with contextlib.suppress(PodmanError):
            await self._call("DELETE", f"/pods/{spec.pod_name(uid)}",
                             params={"force": "true"}, timeout=STOP_SLACK)
        for e in await self._list(uid):  # anything the pod did not take along
            await self._remove(str(e.get("Id")))
        await asyncio.to_thread(shutil.rmtree, spec.pod_dir(self.root, uid), True)
        gone = {str(e.get("Id")) for e in entries}
        self._ips = {k: v for k, v in self._ips.items() if k.split("@")[0] not in gone}
        self._oom = {k: v for k, v in self._oom.items() if k not in gone}

    async def _stop(self, entry: Obj, grace: float) -> None:
        if entry.get("State") not in status.RUNNING:
            return
        seconds = max(0, math.ceil(grace))
        with contextlib.suppress(PodmanError):
            await self._call("POST", f"/containers/{entry.get('Id')}/stop",
                             params={"timeout": str(seconds)}, timeout=seconds + STOP_SLACK)

    async def _remove(self, cid: str) -> None:
        with contextlib.suppress(PodmanError):
            await self._call("DELETE", f"/containers/{cid}",
                             params={"force": "true", "v": "true"}, timeout=STOP_SLACK)
        self._oom.pop(cid, None)

    # -- containers ---------------------------------------------------------------------

    async def start_container(self, pod: Obj, name: str, attempt: int) -> None:
        """Create and start instance `attempt` (a previous instance still running is killed;
        it stays as `previous`). Image failures raise `ErrImagePull`/`ErrImageNeverPull`."""
        uid = spec.uid_of(pod)
        c = spec.container_spec(pod, name)
        entries = await self._list(uid)
        if status.infra_of(entries) is None:
            raise RuntimeFailure("CreateContainerError", f"pod {uid} has no sandbox")
        image = await self._image(c)
        await self._prune(uid, name, attempt, entries)
        request = spec.create_request(pod, name, attempt, root=self.root, image=image)
        await asyncio.to_thread(_make_dirs, spec.local_dirs(pod, self.root))
        try:
            created = await self._call("POST", "/containers/create", body=request)
        except PodmanError as exc:
            raise RuntimeFailure("CreateContainerError", exc.message) from exc
        try:
            await self._call("POST", f"/containers/{created['Id']}/start")
        except PodmanError as exc:
            raise RuntimeFailure("RunContainerError", exc.message) from exc

    async def _prune(self, uid: str, name: str, attempt: int, entries: list[Obj]) -> None:
        """Keep the newest instance older than `attempt` (stopped), remove all others."""
        older = [e for e in status.instances(entries, name) if status.attempt(e) < attempt]
        keep = older[0] if older else None
        if keep is not None:
            await self._stop(keep, 0)
        for e in status.instances(entries, name):
            if e is not keep:
                await self._remove(str(e.get("Id")))
                path = spec.log_path(self.root, uid, name, status.attempt(e))
                await asyncio.to_thread(path.unlink, True)

    async def _image(self, c: Obj) -> str:
        """The local image to run container `c` with, pulled or loaded as its spec says."""
        image = str(c.get("image") or "")
        archive = spec.archive_path(image)
        if archive is not None:
            return await self._load(archive)
        policy = spec.pull_policy(c)
        present = await self._exists(image)
        if policy == "Never" and not present:
            raise RuntimeFailure("ErrImageNeverPull", f"image {image!r} is not present "
                                 "and the pull policy is Never")
        if present and (policy != "Always" or spec.is_local(image)):
            return image
        await self._pull(image)
        return image

    async def _exists(self, image: str) -> bool:
        try:
            await self._call("GET", f"/images/{image}/exists")
        except PodmanError:
            return False
        return True

    async def _pull(self, image: str) -> None:
        try:
            answer = await self._call("POST", "/images/pull", timeout=600, params={
                "reference": image, "policy": "always", "quiet": "true"})
        except PodmanError as exc:
            raise RuntimeFailure("ErrImagePull", exc.message) from exc
        if error := pull_error(answer):
            raise RuntimeFailure("ErrImagePull", error)

    async def _load(self, archive: str) -> str:
        """Load an image archive; the image's name (or id) as Podman reports it."""
        try:
            tarball = await asyncio.to_thread(open, archive, "rb")
            with tarball:  # aiohttp reads file bodies in a thread
                answer = await self._call("POST", "/images/load", data=tarball, timeout=600,
                                          headers={"Content-Type": "application/x-tar"})
        except OSError as exc:
            raise RuntimeFailure("ErrImagePull", f"image archive {archive}: {exc}") from exc
        except PodmanError as exc:
            raise RuntimeFailure("ErrImagePull", exc.message) from exc
        names = answer.get("Names") if isinstance(answer, dict) else None
        if not names:
            raise RuntimeFailure("ErrImagePull", f"image archive {archive}: no image in it")
        return str(names[0])

    async def _instance(self, uid: str, name: str, previous: bool = False) -> Obj:
        found = status.instances(await self._list(uid), name)
        index = 1 if previous else 0
        if len(found) <= index:
            which = "previous instance of " if previous else ""
            raise RuntimeFailure("NotFound", f"no {which}container {name!r} in pod {uid}")
        return found[index]

    async def stop_container(self, uid: str, name: str, grace: float) -> None:
        try:
            entry = await self._instance(uid, name)
        except RuntimeFailure:
            return
        await self._stop(entry, grace)

    async def exec(self, uid: str, name: str, command: list[str],
                   timeout: float) -> tuple[int, bytes]:
        """Run `command` in the running container with `podman exec` (the REST API's exec
        sessions keep a conmon process for five minutes after they end: a leak for probes);
        `RuntimeFailure("ExecTimeout")` after `timeout` seconds."""
        entry = await self._instance(uid, name)
        if entry.get("State") != "running":
            raise RuntimeFailure("ContainerNotRunning", f"container {name!r} is not running")
        env = await self._environment()
        proc = await asyncio.create_subprocess_exec(
            "podman", "exec", str(entry["Id"]), *command, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeFailure("ExecTimeout", f"exec in {name!r} took over {timeout}s") from None
        return int(proc.returncode or 0), out

    async def logs(self, uid: str, name: str, *, previous: bool = False,
                   tail: int | None = None, follow: bool = False) -> AsyncIterator[bytes]:
        """The instance's output from its k8s-file log; with `follow`, polls the file every
        0.2 s until the container has terminated."""
        entry = await self._instance(uid, name, previous)
        path = spec.log_path(self.root, uid, name, status.attempt(entry))
        decoder = crilog.CriLogDecoder()
        data, offset = await asyncio.to_thread(_read_from, path, 0)
        if first := crilog.tail(decoder.feed(data), tail):
            yield first
        while follow:
            try:
                inspected = await self._inspect(str(entry["Id"]))
            except PodmanError:  # removed meanwhile
                inspected = {}
            state = str((inspected.get("State") or {}).get("Status", "exited"))
            done = state in status.TERMINATED or state in ("created", "configured")
            data, offset = await asyncio.to_thread(_read_from, path, offset)
            if out := decoder.feed(data):
                yield out
            if done:
                return
            await asyncio.sleep(0.2)


def _make_dirs(dirs: list[Path]) -> None:
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)


def _read_from(path: Path, offset: int) -> tuple[bytes, int]:
    """The bytes of `path` from `offset` on (none if it does not exist) and the new offset."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return b"", offset
    return data, offset + len(data)


def pull_error(answer: Any) -> str:
    """The error of a pull's answer: one JSON report, or a stream of them. Pure."""
    reports = [answer] if isinstance(answer, dict) else []
    for line in answer.splitlines() if isinstance(answer, bytes) else ():
        with contextlib.suppress(orjson.JSONDecodeError):
            reports.append(orjson.loads(line))
    errors = [str(r["error"]) for r in reports if isinstance(r, dict) and r.get("error")]
    return "; ".join(errors)


if TYPE_CHECKING:
    _: ExecRuntime = PodmanRuntime(Path())
