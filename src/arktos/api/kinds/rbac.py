"""`rbac.authorization.k8s.io/v1` kinds. ClusterRoles and their bindings are tenant-scoped,
Roles and RoleBindings namespaced. No I/O here."""

from __future__ import annotations

from arktos.api.resources import ResourceType, Scope

_G = "rbac.authorization.k8s.io"
_NO_SUB: frozenset[str] = frozenset()

TYPES = [
    ResourceType(_G, "v1", "Role", "roles", Scope.NAMESPACE, subresources=_NO_SUB,
                 spec_fields=()),
    ResourceType(_G, "v1", "RoleBinding", "rolebindings", Scope.NAMESPACE, subresources=_NO_SUB,
                 spec_fields=()),
    ResourceType(_G, "v1", "ClusterRole", "clusterroles", Scope.TENANT, subresources=_NO_SUB,
                 spec_fields=()),
    ResourceType(_G, "v1", "ClusterRoleBinding", "clusterrolebindings", Scope.TENANT,
                 subresources=_NO_SUB, spec_fields=()),
]
