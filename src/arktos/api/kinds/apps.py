"""`apps/v1` kinds: Deployment and ReplicaSet. No I/O here."""

from __future__ import annotations

from arktos.api.resources import ResourceType, Scope

TYPES = [
    ResourceType("apps", "v1", "Deployment", "deployments", Scope.NAMESPACE,
                 short_names=("deploy",), subresources=frozenset({"status", "scale"}),
                 categories=("all",)),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", Scope.NAMESPACE,
                 short_names=("rs",), subresources=frozenset({"status", "scale"}),
                 categories=("all",)),
]
