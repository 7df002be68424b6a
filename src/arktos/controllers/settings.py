"""Every tunable of the controller manager, in one place (defaults as Kubernetes/Arktos)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    workers: int = 4
    """Workers per controller (keys processed at once; never two for the same key)."""
    resync_period: float = 300.0
    """Seconds between informer resyncs (every object reconciled again)."""
    node_monitor_period: float = 5.0
    """Seconds between node-lifecycle checks of lease freshness."""
    node_monitor_grace_period: float = 40.0
    """A node whose lease is older than this goes Ready=Unknown and gets unreachable taints."""
    pod_eviction_timeout: float = 300.0
    """Seconds a node stays unreachable before its pods are deleted."""
    terminated_pod_gc_threshold: int = 12500
    """Terminated pods kept cluster-wide before the oldest are deleted."""
    event_ttl: float = 3600.0
    """Events older than this (by lastTimestamp) are deleted."""
    leader_elect: bool = True
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
