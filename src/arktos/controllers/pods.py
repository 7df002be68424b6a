"""Pod operations shared by controllers."""

from __future__ import annotations

from arktos.client.resources import ResourceClient
from arktos.client.rest import ApiError
from arktos.client.store import Obj


async def force_delete(pods: ResourceClient, pod: Obj) -> bool:
    """Delete `pod` at once (grace 0; no node agent will confirm it), only if it is still the
    same pod (uid precondition). False when it was already gone or replaced."""
    md = pod["metadata"]
    try:
        await pods.delete(md["name"], namespace=md["namespace"], tenant=md["tenant"],
                          grace_period_seconds=0, preconditions={"uid": md["uid"]})
    except ApiError as exc:
        if exc.not_found or exc.conflict:
            return False
        raise
    return True
