"""Arktos' own core kinds: Tenant (cluster-scoped) and Action (namespaced). No I/O here.

Tenant: `spec.storageClusterId` ("0".."63", immutable) defaults to "0" as `kubectl create
tenant` does; the `arktos` finalizer is always added; phase starts Active.
Action: the flat shape Arktos built (`spec.{podName, nodeName, <op>Action}`,
`status.{complete, error, <op>Status}`), one operation per action.
"""

from __future__ import annotations

import re

from arktos.api.errors import Cause
from arktos.api.kinds._checks import (
    Fields,
    dig,
    fill,
    forbidden,
    immutable,
    invalid,
    required,
    section,
    text,
    type_invalid,
)
from arktos.api.kinds.core import NAMESPACE_PHASES, default_phased, validate_phased
from arktos.api.meta import dns_subdomain_errors, tenant_name_errors
from arktos.api.resources import Column, Obj, ResourceType, Scope

TENANT_FINALIZER = "arktos"
DEFAULT_STORAGE_CLUSTER = "0"
MAX_STORAGE_CLUSTER = 63
ACTIONS = {"rebootAction": "reboot", "snapshotAction": "snapshot", "restoreAction": "restore"}
"""Spec field of each operation -> the operation's name."""
_INT = re.compile(r"^[+-]?[0-9]{1,9}$")
_SNAPSHOT_FORBIDDEN = '";<>/'


# --- Tenant -------------------------------------------------------------------------------

def _storage_cluster_causes(value: object) -> list[Cause]:
    path = "spec.storageClusterId"
    if value is None or value == "":
        return [required(path, "must specify storage cluster id")]
    if not isinstance(value, str):
        return [type_invalid(path, "a string")]
    if not _INT.match(value) or not 0 <= int(value) <= MAX_STORAGE_CLUSTER:
        return [invalid(path, value, "must be integer 0-63")]
    return []


def _validate_tenant(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = validate_phased(obj, NAMESPACE_PHASES)
    new_id = dig(obj, "spec", "storageClusterId")
    causes += _storage_cluster_causes(new_id)
    if old is not None and new_id != dig(old, "spec", "storageClusterId"):
        causes.append(immutable("spec.storageClusterId", new_id))
    return causes


def _default_tenant(obj: Obj) -> None:
    default_phased(obj, TENANT_FINALIZER, append=True)
    fill(section(obj, "spec"), "storageClusterId", DEFAULT_STORAGE_CLUSTER)


# --- Action -------------------------------------------------------------------------------

def _snapshot_id_errors(value: str) -> list[str]:
    if any(c in value for c in _SNAPSHOT_FORBIDDEN):
        return [f"must not contain any of {_SNAPSHOT_FORBIDDEN}"]
    return []


def _check_action_spec(spec: Fields) -> None:
    spec.string("podName", needed=True, check=dns_subdomain_errors)
    spec.string("nodeName", check=dns_subdomain_errors)
    spec.string("podID")
    given = [k for k in ACTIONS if spec.obj.get(k) is not None]
    if not given:
        spec.add(required(spec.path, "must specify one of: `rebootAction`, `snapshotAction` "
                                     "or `restoreAction`"))
    for extra in given[1:]:
        spec.add(forbidden(spec.at(extra), "may not specify more than one action"))
    reboot = spec.sub("rebootAction")
    if reboot is not None:
        reboot.integer("delayInSeconds", lo=0)
    snapshot = spec.sub("snapshotAction")
    if snapshot is not None:
        snapshot.string("snapshotName", needed=True, check=_snapshot_id_errors)
    restore = spec.sub("restoreAction")
    if restore is not None:
        restore.string("snapshotID", needed=True, check=_snapshot_id_errors)


ACTION_PHASES = ("Pending", "Running", "Succeeded", "Failed")


def _check_action_status(status: Fields) -> None:
    status.boolean("complete")
    status.choice("phase", ACTION_PHASES)
    for key in ("error", "podName", "podID", "message", "startTime", "completionTime"):
        status.string(key)
    for key, flag in (("rebootStatus", "rebootSuccessful"),
                      ("restoreStatus", "restoreSuccessful")):
        sub = status.sub(key)
        if sub is not None:
            sub.boolean(flag)
    snapshot = status.sub("snapshotStatus")
    if snapshot is not None:
        snapshot.string("snapshotID")


def _validate_action(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = Fields.of(obj.get("spec"), "spec", causes, needed=True)
    if spec is not None:
        _check_action_spec(spec)
    status = Fields.of(obj.get("status"), "status", causes)
    if status is not None:
        _check_action_status(status)
    if old is not None and obj.get("spec") != old.get("spec"):
        causes.append(forbidden("spec", "field is immutable"))
    return causes


def _default_action(obj: Obj) -> None:
    """A new action is Pending (Arktos left `status` empty; `phase` is our addition)."""
    fill(section(obj, "status"), "phase", "Pending")


def action_operation(action: Obj) -> str:
    """`reboot`, `snapshot` or `restore`: which operation the spec asks for."""
    spec = action.get("spec")
    found = [op for key, op in ACTIONS.items() if isinstance(spec, dict) and spec.get(key)
             is not None]
    return found[0] if found else "<none>"


def _complete(action: Obj) -> str:
    return "Yes" if dig(action, "status", "complete") is True else "No"


TYPES = [
    ResourceType("", "v1", "Tenant", "tenants", Scope.CLUSTER, short_names=("te",),
                 subresources=frozenset({"status", "finalize"}),
                 validate=_validate_tenant, default=_default_tenant,
                 name_check=tenant_name_errors,
                 columns=(Column("STORAGEID", lambda o: text(dig(o, "spec", "storageClusterId"),
                                                             "")),
                          Column("STATUS", lambda o: text(dig(o, "status", "phase"), ""))),
                 field_labels={"status.phase": lambda o: text(dig(o, "status", "phase"), "")}),
    ResourceType("", "v1", "Action", "actions", Scope.NAMESPACE, short_names=("ac",),
                 validate=_validate_action, default=_default_action,
                 subresources=frozenset({"status"}),
                 columns=(Column("OPERATION", action_operation),
                          Column("PODNAME", lambda o: text(dig(o, "spec", "podName"))),
                          Column("PHASE", lambda o: text(dig(o, "status", "phase"), "")),
                          Column("COMPLETE", _complete),
                          Column("NODE", lambda o: text(dig(o, "spec", "nodeName")), priority=1),
                          Column("ERROR", lambda o: text(dig(o, "status", "error")), priority=1)),
                 field_labels={
                     "spec.nodeName": lambda o: text(dig(o, "spec", "nodeName"), ""),
                     "spec.podName": lambda o: text(dig(o, "spec", "podName"), ""),
                     "status.complete": lambda o: str(dig(o, "status", "complete") is True).lower(),
                     "status.phase": lambda o: text(dig(o, "status", "phase"), ""),
                 }),
]
