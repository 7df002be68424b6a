"""What the QEMU runtime remembers of a VM pod (`state.json` in the VM's directory), its
transitions, and the `VmState` it reports. Pure: no I/O.

`state` is the latest instance's: `waiting` (sandbox made, never booted), `running` (a QEMU
process is up, whatever the guest does) or `terminated`. `power` is the guest's: `Running`,
`Paused` (vCPUs stopped) or `Shutdown` (powered off on purpose; QEMU not running).
`restart_count` is the instance's `attempt` plus the guest resets done since it started.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from arktos.agent.runtime import PodRuntimeStatus, VmState

SCHEME = "qemu"


@dataclass(frozen=True)
class VmRecord:
    uid: str
    pod_name: str
    name: str
    image: str
    created_at: str
    ip: str = ""
    tap: str = ""
    mac: str = ""
    cpus: int = 1
    memory_mib: int = 128
    attempt: int = 0
    resets: int = 0
    snapshots: tuple[str, ...] = ()
    power: str = "Running"
    pid: int = 0
    state: str = "waiting"
    started_at: str = ""
    finished_at: str = ""
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    previous: dict[str, Any] = field(default_factory=dict)
    """The instance before this one (`lastState`): `VmState` fields, times as ISO strings."""

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["snapshots"] = list(self.snapshots)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VmRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["snapshots"] = tuple(values.get("snapshots") or ())
        return cls(**values)


def _time(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def booted(rec: VmRecord, pid: int, now: datetime, attempt: int | None) -> VmRecord:
    """A QEMU process `pid` runs the VM: a new instance (`attempt` given; the last one is kept
    as `previous` if it ran) or the same one powered on again (None)."""
    if attempt is not None:
        previous = _instance(rec) if rec.state != "waiting" else rec.previous
        rec = replace(rec, attempt=attempt, resets=0, previous=previous)
    return replace(rec, pid=pid, state="running", power="Running", started_at=now.isoformat(),
                   finished_at="", exit_code=None, reason="", message="")


def ended(rec: VmRecord, now: datetime, exit_code: int, reason: str, message: str,
          power: str | None = None) -> VmRecord:
    """QEMU is gone: the instance terminated (`power`: the new power state, if it changes)."""
    return replace(rec, pid=0, state="terminated", finished_at=now.isoformat(),
                   exit_code=exit_code, reason=reason, message=message,
                   power=power or rec.power)


def observe(rec: VmRecord, alive: bool, status: str | None, now: datetime) -> VmRecord:
    """The record of a `running` VM after looking at its QEMU: whether the process is alive,
    and its QMP run status (None: QMP did not answer)."""
    if rec.state != "running":
        return rec
    if not alive:
        return ended(rec, now, 1, "Error", "QEMU exited unexpectedly")
    if status == "shutdown":
        return ended(rec, now, 0, "Completed", "the guest powered off")
    if status == "guest-panicked":
        return ended(rec, now, 1, "Error", "the guest kernel panicked")
    if status in ("running", "paused"):
        return replace(rec, power=status.capitalize())
    return rec


def snapshot_added(rec: VmRecord, tag: str) -> VmRecord:
    """`tag` is the newest snapshot (saving a tag again replaces the old snapshot)."""
    return replace(rec, snapshots=tuple(s for s in rec.snapshots if s != tag) + (tag,))


def _instance(rec: VmRecord) -> dict[str, Any]:
    return {"state": rec.state, "attempt": rec.attempt + rec.resets, "started_at":
            rec.started_at, "finished_at": rec.finished_at, "exit_code": rec.exit_code,
            "reason": rec.reason, "message": rec.message, "power": rec.power}


def container_id(rec: VmRecord) -> str:
    return f"{SCHEME}://{rec.uid}/{rec.name}"


def vm_state(rec: VmRecord) -> VmState:
    """The VM's latest instance as the runtime protocol reports it."""
    return VmState(name=rec.name, image=rec.image, state=rec.state,
                   started_at=_time(rec.started_at), finished_at=_time(rec.finished_at),
                   exit_code=rec.exit_code, restart_count=rec.attempt + rec.resets,
                   container_id=container_id(rec) if rec.state != "waiting" else "",
                   reason=rec.reason, message=rec.message, power_state=rec.power,
                   snapshots=rec.snapshots)


def previous_state(rec: VmRecord) -> VmState | None:
    p = rec.previous
    if not p:
        return None
    return VmState(name=rec.name, image=rec.image, state=str(p["state"]),
                   started_at=_time(p["started_at"]), finished_at=_time(p["finished_at"]),
                   exit_code=p["exit_code"], restart_count=int(p["attempt"]),
                   container_id=container_id(rec), reason=str(p["reason"]),
                   message=str(p["message"]), power_state=str(p["power"]))


def pod_status(rec: VmRecord) -> PodRuntimeStatus:
    """The pod as the runtime protocol reports it (a VM pod that never booted has no VM)."""
    prev = previous_state(rec)
    return PodRuntimeStatus(uid=rec.uid, ip=rec.ip, started_at=_time(rec.created_at) or
                            datetime.fromtimestamp(0), vm=vm_state(rec)
                            if rec.state != "waiting" else None,
                            previous=(prev,) if prev else ())
