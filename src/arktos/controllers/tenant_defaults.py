"""What every tenant gets when it is created (Arktos' tenant controller): its default
namespaces, and the RBAC policy of `arktos.api.rbac_policy.tenant_policy` (Arktos'
`admin-role` bound to the tenant's user `admin`, plus `admin`, `edit`, `view`). Pure: no I/O.

Extension point: to give every tenant another object (e.g. the default Network, once that
kind is served), add a `DefaultKind` to `DEFAULT_KINDS`; the tenant controller watches its
resource and creates the missing objects in each active tenant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from arktos.api.rbac_policy import tenant_policy
from arktos.client.store import Obj

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public")
RBAC_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class DefaultKind:
    """The objects of one tenant-scoped resource that every tenant has.

    `resource` names it as `ResourceClient` does (`plural[.group]`); `build(tenant)` returns
    the objects' bodies (each with `metadata.name` and `metadata.tenant`)."""

    resource: str
    build: Callable[[str], list[Obj]]


def _namespaces(tenant: str) -> list[Obj]:
    return [{"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": name, "tenant": tenant}} for name in DEFAULT_NAMESPACES]


def _policy_of_kind(kind: str) -> Callable[[str], list[Obj]]:
    return lambda tenant: [o for o in tenant_policy(tenant) if o["kind"] == kind]


DEFAULT_KINDS: tuple[DefaultKind, ...] = (
    DefaultKind("namespaces", _namespaces),
    DefaultKind(f"clusterroles.{RBAC_GROUP}", _policy_of_kind("ClusterRole")),
    DefaultKind(f"clusterrolebindings.{RBAC_GROUP}", _policy_of_kind("ClusterRoleBinding")),
)
"""In creation order (namespaces first)."""


def missing_defaults(tenant: str, exists: Callable[[str, str], bool],
                     kinds: tuple[DefaultKind, ...] = DEFAULT_KINDS) -> list[tuple[str, Obj]]:
    """(resource, body) of every default object of `tenant` for which `exists(resource, name)`
    is false, in creation order."""
    return [(kind.resource, obj) for kind in kinds for obj in kind.build(tenant)
            if not exists(kind.resource, obj["metadata"]["name"])]
