"""Every kind the API server serves. Adding a kind: add a `ResourceType` to one module's `TYPES`."""

from arktos.api.kinds import (
    apps,
    arktos_kinds,
    authorization,
    coordination,
    core,
    policy,
    rbac,
    scheduling,
)
from arktos.api.resources import Registry

REGISTRY = Registry([*core.TYPES, *arktos_kinds.TYPES, *apps.TYPES, *coordination.TYPES,
                     *rbac.TYPES, *policy.TYPES, *authorization.TYPES,
                     *scheduling.TYPES])

__all__ = ["REGISTRY"]
