"""`coordination.k8s.io/v1` kinds: Lease. No I/O here."""

from __future__ import annotations

from arktos.api.resources import ResourceType, Scope

TYPES = [
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", Scope.NAMESPACE,
                 subresources=frozenset()),
]
