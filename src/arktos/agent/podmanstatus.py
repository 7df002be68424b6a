"""Pure mapping of Podman's container list (`GET /libpod/containers/json`) to the runtime's
pod states: the latest instance of each container by its `attempt` label, the one before it
as `previous`; the pod's address and start time from its infra container. No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from arktos.agent.podmanspec import LABEL_ATTEMPT, LABEL_CONTAINER, LABEL_UID
from arktos.agent.runtime import ContainerState, Obj, PodRuntimeStatus

SCHEME = "podman"
RUNNING = frozenset({"running", "paused", "stopping"})
TERMINATED = frozenset({"exited", "stopped", "removing", "dead"})

_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def unix_time(value: object) -> datetime | None:
    """A list entry's `StartedAt`/`ExitedAt` (Unix seconds; Go's zero time is negative)."""
    if not isinstance(value, int | float) or value <= 0:
        return None
    return datetime.fromtimestamp(value, UTC)


def iso_time(value: object) -> datetime | None:
    """A Podman RFC 3339 time (nanoseconds allowed) as an aware UTC datetime."""
    if not isinstance(value, str) or not value or value.startswith("0001-"):
        return None
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value, count=1))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def attempt(entry: Obj) -> int:
    try:
        return int((entry.get("Labels") or {}).get(LABEL_ATTEMPT, 0))
    except ValueError:
        return 0


def instance_state(entry: Obj, oom_killed: bool = False) -> ContainerState:
    """One container instance as the runtime reports it."""
    labels = entry.get("Labels") or {}
    podman_state = str(entry.get("State", ""))
    state = ("running" if podman_state in RUNNING
             else "terminated" if podman_state in TERMINATED else "waiting")
    exit_code = int(entry.get("ExitCode") or 0) if state == "terminated" else None
    reason = ""
    if state == "terminated":
        reason = "OOMKilled" if oom_killed else "Completed" if exit_code == 0 else "Error"
    return ContainerState(
        name=str(labels.get(LABEL_CONTAINER, "")), image=str(entry.get("Image", "")),
        state=state, started_at=unix_time(entry.get("StartedAt")),
        finished_at=unix_time(entry.get("ExitedAt")) if state == "terminated" else None,
        exit_code=exit_code, restart_count=attempt(entry),
        container_id=f"{SCHEME}://{entry.get('Id', '')}", reason=reason)


def instances(entries: Iterable[Obj], name: str) -> list[Obj]:
    """The (non-infra) instances of container `name`, newest attempt first."""
    found = [e for e in entries if not e.get("IsInfra")
             and (e.get("Labels") or {}).get(LABEL_CONTAINER) == name]
    return sorted(found, key=attempt, reverse=True)


def pod_state(uid: str, entries: list[Obj], ip: str,
              oom_killed: Callable[[str], bool] = lambda _id: False) -> PodRuntimeStatus:
    """The state of one pod from its list entries (infra container included)."""
    infra = next((e for e in entries if e.get("IsInfra")), None)
    created = [t for e in entries if (t := iso_time(e.get("Created"))) is not None]
    started = iso_time(infra.get("Created")) if infra else None
    started = started or (min(created) if created else datetime.now(UTC))
    names = sorted({str((e.get("Labels") or {}).get(LABEL_CONTAINER)) for e in entries
                    if not e.get("IsInfra") and LABEL_CONTAINER in (e.get("Labels") or {})})
    latest: list[ContainerState] = []
    previous: list[ContainerState] = []
    for name in names:
        found = instances(entries, name)
        latest.append(instance_state(found[0], oom_killed(str(found[0].get("Id")))))
        if len(found) > 1:
            previous.append(instance_state(found[1], oom_killed(str(found[1].get("Id")))))
    return PodRuntimeStatus(uid, ip, started.replace(microsecond=0), containers=tuple(latest),
                            previous=tuple(previous))


def by_pod(entries: Iterable[Obj]) -> dict[str, list[Obj]]:
    """List entries grouped by pod uid label."""
    out: dict[str, list[Obj]] = {}
    for e in entries:
        uid = (e.get("Labels") or {}).get(LABEL_UID)
        if uid:
            out.setdefault(str(uid), []).append(e)
    return out


def infra_of(entries: Iterable[Obj]) -> Obj | None:
    return next((e for e in entries if e.get("IsInfra")), None)


def may_be_oom(entry: Obj) -> bool:
    """Whether an instance needs an inspect to tell `OOMKilled` (killed by SIGKILL)."""
    return str(entry.get("State")) in TERMINATED and entry.get("ExitCode") == 137


def pod_states(entries: Iterable[Obj], ips: Mapping[str, str],
               oom_killed: Callable[[str], bool] = lambda _id: False
               ) -> list[PodRuntimeStatus]:
    """Every pod of a container list; `ips` maps infra container ids to addresses."""
    out = []
    for uid, group in by_pod(entries).items():
        infra = infra_of(group)
        ip = ips.get(str(infra.get("Id")), "") if infra else ""
        out.append(pod_state(uid, group, ip, oom_killed))
    return out
