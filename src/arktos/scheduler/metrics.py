"""Prometheus metrics of the unified scheduler, with kube-scheduler's names, and the small HTTP
endpoint that serves them (GET /metrics, GET /healthz).

Each `SchedulerMetrics` has its own `CollectorRegistry` (never the process-global one), so two
schedulers in one process, or two tests, never share or clash over series. The pending-pods
gauge is computed at scrape time from a callback (normally `SchedulingQueue.lengths`), so the
scheduling loop never has to keep it up to date.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

DEFAULT_PROFILE: Final = "default-scheduler"
SCHEDULED: Final = "scheduled"
UNSCHEDULABLE: Final = "unschedulable"
ERROR: Final = "error"
RESULTS: Final = (SCHEDULED, UNSCHEDULABLE, ERROR)
"""The `result` label values of the attempt metrics."""
QUEUES: Final = ("active", "backoff", "unschedulable")
"""The `queue` label values of `scheduler_pending_pods`."""
DURATION_BUCKETS: Final = tuple(0.001 * 2.0**i for i in range(15))
"""kube-scheduler's ExponentialBuckets(0.001, 2, 15): 1 ms to 16.384 s."""

PendingCounts = Callable[[], Mapping[str, int]]
"""Returns the pending pods per queue name (`SchedulingQueue.lengths`)."""


class PendingPodsCollector:
    """`scheduler_pending_pods{queue}`, read from `counts()` at each scrape. Queues missing
    from the mapping report 0; with no callback set, nothing is reported."""

    def __init__(self, counts: PendingCounts | None = None) -> None:
        self.counts = counts

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        if self.counts is not None:
            counts = self.counts()
            for queue in QUEUES:
                family.add_metric([queue], float(counts.get(queue, 0)))
        return [family]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type. 'active' means number of pods in "
            "activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number "
            "of pods in unschedulablePods.",
            labels=["queue"])


class SchedulerMetrics:
    """The metrics of one scheduler profile. Record with `observe_attempt` (one per scheduling
    attempt) and `observe_algorithm`; attach the queue with `pending` (or `set_pending`)."""

    def __init__(self, *, profile: str = DEFAULT_PROFILE,
                 pending: PendingCounts | None = None) -> None:
        self.profile = profile
        self.registry = CollectorRegistry()
        self._attempts = Counter(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod "
            "could not be scheduled, while 'error' means an internal scheduler problem.",
            ["result", "profile"], registry=self.registry)
        self._e2e = Histogram(
            "scheduler_e2e_scheduling_duration_seconds",
            "E2e scheduling latency in seconds (scheduling algorithm + binding).",
            ["result", "profile"], buckets=DURATION_BUCKETS, registry=self.registry)
        self._algorithm = Histogram(
            "scheduler_scheduling_algorithm_duration_seconds",
            "Scheduling algorithm latency in seconds.",
            buckets=DURATION_BUCKETS, registry=self.registry)
        self._pending = PendingPodsCollector(pending)
        self.registry.register(self._pending)
        for result in RESULTS:  # every series exists from the start, at 0
            self._attempts.labels(result=result, profile=profile)
            self._e2e.labels(result=result, profile=profile)

    def set_pending(self, counts: PendingCounts | None) -> None:
        """Where the pending-pods gauge reads its counts (None: the gauge has no samples)."""
        self._pending.counts = counts

    def observe_attempt(self, result: str, duration: float) -> None:
        """One scheduling attempt that ended with `result` (`scheduled`, `unschedulable` or
        `error`) after `duration` seconds (algorithm + binding). ValueError on another result."""
        if result not in RESULTS:
            raise ValueError(f"unknown scheduling result {result!r}; expected one of {RESULTS}")
        self._attempts.labels(result=result, profile=self.profile).inc()
        self._e2e.labels(result=result, profile=self.profile).observe(duration)

    def observe_algorithm(self, duration: float) -> None:
        """One run of the scheduling algorithm (filter + score) that took `duration` seconds."""
        self._algorithm.observe(duration)

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The current metrics and their content type, in the format `accept` (an HTTP Accept
        header) asks for: the Prometheus text format by default, OpenMetrics on request."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


def metrics_app(metrics: SchedulerMetrics) -> web.Application:
    """An aiohttp application serving GET /metrics and GET /healthz ("ok")."""

    async def get_metrics(request: web.Request) -> web.Response:
        body, content_type = metrics.exposition(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def get_healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/healthz", get_healthz)
    return app


@asynccontextmanager
async def serve_metrics(metrics: SchedulerMetrics, *, host: str = "127.0.0.1",
                        port: int = 0) -> AsyncIterator[tuple[str, int]]:
    """Serve `metrics_app(metrics)` on host:port (port 0: a free one) while the context is
    open; yields the bound (host, port). The server is closed on exit."""
    runner = web.AppRunner(metrics_app(metrics), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        yield str(bound_host), int(bound_port)
    finally:
        await runner.cleanup()
