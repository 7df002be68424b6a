"""Scheduler metrics: recorded values, served over real HTTP on 127.0.0.1 and parsed back with
prometheus_client's own parser."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from arktos.scheduler.metrics import (
    DURATION_BUCKETS,
    SchedulerMetrics,
    metrics_app,
    serve_metrics,
)
from arktos.scheduler.queue import SchedulingQueue


def samples(text: str) -> dict[str, list[Sample]]:
    """Samples by metric family name."""
    return {f.name: list(f.samples) for f in text_string_to_metric_families(text)}


def value(found: dict[str, list[Sample]], family: str, sample: str, **labels: str) -> float:
    hits = [s.value for s in found[family] if s.name == sample and s.labels == labels]
    assert len(hits) == 1, (family, sample, labels, found.get(family))
    return hits[0]


def queue_with_pods() -> SchedulingQueue[str]:
    """2 active, 1 backoff, 1 unschedulable."""
    q: SchedulingQueue[str] = SchedulingQueue(now=lambda: 0.0)
    for name in "abcd":
        q.add(f"t/ns/{name}", tenant="t", priority=0, pod=name)
    a, b = q.pop_batch(2)
    q.requeue_error(a)
    q.requeue_unschedulable(b, "no fit")
    return q


def record(metrics: SchedulerMetrics) -> None:
    for duration in (0.002, 0.03, 0.5):
        metrics.observe_attempt("scheduled", duration)
    metrics.observe_attempt("unschedulable", 0.004)
    metrics.observe_attempt("error", 20.0)
    metrics.observe_algorithm(0.0015)
    metrics.observe_algorithm(0.25)


async def test_metrics_served_over_http() -> None:
    q = queue_with_pods()
    metrics = SchedulerMetrics(pending=q.lengths)
    record(metrics)
    async with serve_metrics(metrics, host="127.0.0.1", port=0) as (host, port), \
            aiohttp.ClientSession() as http:
        async with http.get(f"http://{host}:{port}/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=")
            text = await resp.text()
        async with http.get(f"http://{host}:{port}/healthz") as resp:
            assert resp.status == 200 and await resp.text() == "ok"
    found = samples(text)
    attempts = "scheduler_schedule_attempts"
    for result, count in [("scheduled", 3), ("unschedulable", 1), ("error", 1)]:
        labels = {"result": result, "profile": "default-scheduler"}
        assert value(found, attempts, attempts + "_total", **labels) == count
    e2e = "scheduler_e2e_scheduling_duration_seconds"
    sched = {"result": "scheduled", "profile": "default-scheduler"}
    assert value(found, e2e, e2e + "_count", **sched) == 3
    assert value(found, e2e, e2e + "_sum", **sched) == pytest.approx(0.532)
    assert value(found, e2e, e2e + "_bucket", le="0.032", **sched) == 2
    err = {"result": "error", "profile": "default-scheduler"}
    assert value(found, e2e, e2e + "_bucket", le="16.384", **err) == 0
    assert value(found, e2e, e2e + "_bucket", le="+Inf", **err) == 1
    algo = "scheduler_scheduling_algorithm_duration_seconds"
    assert value(found, algo, algo + "_count") == 2
    pending = "scheduler_pending_pods"
    for queue, count in [("active", 2), ("backoff", 1), ("unschedulable", 1)]:
        assert value(found, pending, pending, queue=queue) == count


async def test_pending_gauge_read_at_scrape_time() -> None:
    q = queue_with_pods()
    metrics = SchedulerMetrics()
    assert samples(metrics.exposition()[0].decode())["scheduler_pending_pods"] == []
    metrics.set_pending(q.lengths)
    q.move_all_on_event("NodeAdd")
    found = samples(metrics.exposition()[0].decode())
    assert value(found, "scheduler_pending_pods", "scheduler_pending_pods",
                 queue="unschedulable") == 0
    assert value(found, "scheduler_pending_pods", "scheduler_pending_pods", queue="active") == 2


def test_series_exist_from_the_start_and_profiles_are_separate() -> None:
    a = SchedulerMetrics(profile="a")
    b = SchedulerMetrics(profile="b")  # own registry: no clash with `a`
    a.observe_attempt("scheduled", 0.01)
    found = samples(b.exposition()[0].decode())
    for result in ("scheduled", "unschedulable", "error"):
        assert value(found, "scheduler_schedule_attempts", "scheduler_schedule_attempts_total",
                     result=result, profile="b") == 0


def test_unknown_result_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scheduling result"):
        SchedulerMetrics().observe_attempt("maybe", 0.1)


def test_buckets_are_kube_schedulers() -> None:
    assert DURATION_BUCKETS[0] == 0.001 and DURATION_BUCKETS[-1] == pytest.approx(16.384)
    assert len(DURATION_BUCKETS) == 15


def test_openmetrics_on_request() -> None:
    body, content_type = SchedulerMetrics().exposition("application/openmetrics-text")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


async def test_app_factory_serves_unknown_paths_as_404() -> None:
    async with TestClient(TestServer(metrics_app(SchedulerMetrics()))) as client:
        resp = await client.get("/nope")
        assert resp.status == 404
        resp = await client.get("/metrics")
        assert "scheduler_schedule_attempts_total" in await resp.text()
