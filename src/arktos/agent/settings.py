"""The agent's knobs (defaults as kubelet's where it has them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AgentSettings:
    lease_duration: int = 40
    """Seconds a node Lease lasts without renewal (kubelet: 40)."""
    lease_renew_interval: float = 10.0
    """Seconds between Lease renewals (kubelet: a quarter of the duration, 10)."""
    node_status_update_frequency: float = 60.0
    """Seconds between Node status updates when nothing changed (kubelet's report
    frequency, 1 min); a change is reported at the next renewal."""
    concurrency: int = 64
    """Heartbeat requests in flight at once."""
    retry_interval: float = 1.0
    """Seconds before a failed heartbeat or pod sync is tried again."""
    backoff_initial: float = 10.0
    """Seconds before the first restart of a crashed container waits (doubling after)."""
    backoff_max: float = 300.0
    """Longest restart back-off (CrashLoopBackOff), seconds."""
    relist_interval: float = 1.0
    """Seconds between looks at what the runtimes run (to see containers exit)."""
    action_ttl: float = 3600.0
    """Seconds a finished VM action is kept before the agent deletes it."""
