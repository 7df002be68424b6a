"""`coordination.k8s.io/v1` kinds: Lease. No I/O here."""

from __future__ import annotations

from arktos.api.errors import Cause
from arktos.api.kinds._checks import Fields, dig, text, time_errors
from arktos.api.resources import Column, Obj, ResourceType, Scope


def _validate_lease(obj: Obj, old: Obj | None) -> list[Cause]:
    """holderIdentity, leaseDurationSeconds > 0, RFC 3339 times, leaseTransitions >= 0."""
    causes: list[Cause] = []
    spec = Fields.of(obj.get("spec"), "spec", causes)
    if spec is None:
        return causes
    spec.string("holderIdentity")
    spec.integer("leaseDurationSeconds", lo=1)
    spec.string("acquireTime", check=time_errors)
    spec.string("renewTime", check=time_errors)
    spec.integer("leaseTransitions", lo=0)
    return causes


TYPES = [
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", Scope.NAMESPACE,
                 subresources=frozenset(), validate=_validate_lease,
                 columns=(Column("HOLDER", lambda o: text(dig(o, "spec", "holderIdentity"), "")),)),
]
