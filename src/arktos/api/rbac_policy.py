"""The default RBAC objects: the `system` tenant's at server start, every tenant's at creation.

Plain objects as a client would POST them (apiVersion, kind, metadata with the tenant).
Discovery, health and self-review access is not here: `authz.authorize` grants it to everyone
in every tenant without a binding. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from arktos.api.kinds import REGISTRY
from arktos.api.meta import TENANT_SYSTEM

NODES_GROUP = "system:nodes"
SUPERUSER_GROUP = "system:masters"

Obj = dict[str, Any]

RBAC_GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{RBAC_GROUP}/v1"
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
SCHEDULER_USER = "system:kube-scheduler"
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
TENANT_ADMIN_USER = "admin"
"""Arktos' tenant root: the user `admin` of a tenant gets `admin-role` there."""

_READ = ("get", "list", "watch")
_RBAC_RESOURCES = frozenset({"roles", "rolebindings"})
_NOT_FOR_USERS = frozenset({"status", "binding"})
"""Subresources admin and edit may read but not write (status is the controllers', binding
the scheduler's)."""
_NOT_READ = frozenset({"token"})
"""Subresources that are only created (serviceaccounts/token): not in `view`."""


def rule(verbs: Sequence[str], groups: Sequence[str] = (), resources: Sequence[str] = (),
         names: Sequence[str] = (), urls: Sequence[str] = ()) -> Obj:
    """A PolicyRule; empty lists are left out as the API server would."""
    fields = {"verbs": verbs, "apiGroups": groups, "resources": resources,
              "resourceNames": names, "nonResourceURLs": urls}
    return {key: list(value) for key, value in fields.items() if value}


def cluster_role(tenant: str, name: str, rules: Iterable[Obj]) -> Obj:
    return {"apiVersion": API_VERSION, "kind": "ClusterRole", "metadata": _meta(tenant, name),
            "rules": list(rules)}


def cluster_role_binding(tenant: str, name: str, role: str, subjects: Iterable[Obj]) -> Obj:
    return {"apiVersion": API_VERSION, "kind": "ClusterRoleBinding",
            "metadata": _meta(tenant, name),
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
            "subjects": list(subjects)}


def subject(kind: str, name: str, namespace: str = "") -> Obj:
    """A binding subject: User, Group or ServiceAccount (which needs a namespace)."""
    if kind == "ServiceAccount":
        return {"kind": kind, "apiGroup": "", "name": name, "namespace": namespace}
    return {"kind": kind, "apiGroup": RBAC_GROUP, "name": name}


def _meta(tenant: str, name: str) -> Obj:
    return {"name": name, "tenant": tenant, "labels": dict(BOOTSTRAP_LABELS),
            "annotations": dict(AUTOUPDATE)}


# --- the system tenant --------------------------------------------------------------------

def bootstrap_policy() -> list[Obj]:
    """What the API server creates in tenant `system` at start (skipping existing objects).

    The components' roles and bindings, `cluster-admin` for group `system:masters`, and the
    `admin`/`edit`/`view`/`admin-role` ClusterRoles every tenant has (without the
    `admin-role-binding`: the system tenant's root is `system:masters`)."""
    t = TENANT_SYSTEM
    roles = [
        cluster_role(t, "cluster-admin", [rule(["*"], ["*"], ["*"]), rule(["*"], urls=["*"])]),
        cluster_role(t, SCHEDULER_USER, _scheduler_rules()),
        cluster_role(t, CONTROLLER_MANAGER_USER, [rule(["*"], ["*"], ["*"])]),
        cluster_role(t, "system:node", _node_rules()),
    ]
    bindings = [
        cluster_role_binding(t, "cluster-admin", "cluster-admin",
                             [subject("Group", SUPERUSER_GROUP)]),
        cluster_role_binding(t, SCHEDULER_USER, SCHEDULER_USER,
                             [subject("User", SCHEDULER_USER)]),
        cluster_role_binding(t, CONTROLLER_MANAGER_USER, CONTROLLER_MANAGER_USER,
                             [subject("User", CONTROLLER_MANAGER_USER)]),
        cluster_role_binding(t, "system:node", "system:node", [subject("Group", NODES_GROUP)]),
    ]
    return roles + tenant_roles(t) + bindings


def _scheduler_rules() -> list[Obj]:
    return [
        rule(_READ, [""], ["pods", "nodes"]),
        rule(["create"], [""], ["pods/binding"]),
        rule(["update", "patch"], [""], ["pods/status"]),
        rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        rule(["get", "create", "update"], ["coordination.k8s.io"], ["leases"]),
    ]


def _node_rules() -> list[Obj]:
    """What a node may do at most; `authz.node_refusal` narrows it to the node's own objects.

    Secrets and config maps: only `get`, narrowed by `authz.node_refusal` to those a pod bound
    to the node uses. Service-account tokens are narrowed by the TokenRequest handler to pods
    bound to the node."""
    return [
        rule([*_READ, "create", "update", "patch"], [""], ["nodes"]),
        rule(["get", "update", "patch"], [""], ["nodes/status"]),
        rule([*_READ, "delete"], [""], ["pods"]),
        rule(["get", "update", "patch"], [""], ["pods/status"]),
        rule(["get", "create", "update", "patch"], ["coordination.k8s.io"], ["leases"]),
        rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        rule([*_READ, "delete"], [""], ["actions"]),
        rule(["get", "update", "patch"], [""], ["actions/status"]),
        rule(["create"], [""], ["serviceaccounts/token"]),
        rule(["get"], [""], ["configmaps", "secrets"]),
    ]


# --- every tenant -------------------------------------------------------------------------

def tenant_policy(tenant: str) -> list[Obj]:
    """What the tenant controller creates in a new (non-system) tenant: the ClusterRoles
    `admin`, `edit`, `view` (kube-like; bind them with RoleBindings per namespace or with
    ClusterRoleBindings tenant-wide) and Arktos' `admin-role` (`*` in the tenant) bound by
    `admin-role-binding` to the tenant's user `admin`."""
    binding = cluster_role_binding(tenant, "admin-role-binding", "admin-role",
                                   [subject("User", TENANT_ADMIN_USER)])
    return [*tenant_roles(tenant), binding]


def tenant_roles(tenant: str) -> list[Obj]:
    """The ClusterRoles every tenant has.

    `admin-role` is Arktos' tenant root role, everything in the tenant; its non-resource rule
    is left out because non-resource URLs are the system tenant's only. `admin`, `edit` and
    `view` follow Kubernetes over the kinds this server serves: admin writes every namespaced
    resource (RBAC included), edit all but RBAC, view reads all but secrets and RBAC."""
    return [
        cluster_role(tenant, "admin-role", [rule(["*"], ["*"], ["*"])]),
        cluster_role(tenant, "admin", _view_rules() + _write_rules(exclude=frozenset())),
        cluster_role(tenant, "edit", _view_rules() + _write_rules(exclude=_RBAC_RESOURCES)),
        cluster_role(tenant, "view", _view_rules()),
    ]


def _view_rules() -> list[Obj]:
    hidden = _RBAC_RESOURCES | {"secrets"}
    by_group = _namespaced_resources(hidden, lambda sub: sub not in _NOT_READ)
    rules = [rule(_READ, [group], resources) for group, resources in by_group.items()]
    return [*rules, rule(_READ, [""], ["namespaces"])]


def _write_rules(exclude: frozenset[str]) -> list[Obj]:
    by_group = _namespaced_resources(exclude, lambda sub: sub not in _NOT_FOR_USERS)
    return [rule(["*"], [group], resources) for group, resources in by_group.items()]


def _namespaced_resources(exclude: frozenset[str], keep_sub: Callable[[str], bool]) -> dict[str, list[str]]:
    """Group -> namespaced resources served (with the kept `plural/sub`s), minus `exclude`."""
    by_group: dict[str, list[str]] = {}
    for rtype in REGISTRY:
        if not rtype.namespaced or rtype.plural in exclude:
            continue
        subs = [f"{rtype.plural}/{sub}" for sub in sorted(rtype.subresources) if keep_sub(sub)]
        by_group.setdefault(rtype.group, []).extend([rtype.plural, *subs])
    return by_group
