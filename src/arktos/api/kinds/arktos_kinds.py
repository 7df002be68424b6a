"""Arktos' own core kinds: Tenant (cluster-scoped) and Action (namespaced). No I/O here."""

from __future__ import annotations

from arktos.api.resources import ResourceType, Scope

TYPES = [
    ResourceType("", "v1", "Tenant", "tenants", Scope.CLUSTER, short_names=("te",),
                 subresources=frozenset({"status", "finalize"})),
    ResourceType("", "v1", "Action", "actions", Scope.NAMESPACE),
]
