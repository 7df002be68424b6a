"""Probes: thresholds (pure), and real httpGet / tcpSocket probes against local servers."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from arktos.agent.hollow import HollowRuntime
from arktos.agent.prober import Prober, ProbeSpec, Verdict, probe_once
from arktos.agent.runtime import ContainerState, PodRuntimeStatus
from tests.waiting import eventually

RS = PodRuntimeStatus("u", "127.0.0.1", datetime.now(UTC))


def test_verdict_flips_after_thresholds() -> None:
    v = Verdict(ProbeSpec(success_threshold=2, failure_threshold=3), start=False)
    assert not v.add(True) and v.add(True) and v.result
    assert not v.add(False) and not v.add(False) and not v.add(True)
    assert not v.add(False) and not v.add(False) and v.add(False) and not v.result


async def serve(status: int) -> tuple[web.AppRunner, int]:
    async def health(_request: web.Request) -> web.Response:
        return web.Response(status=status)
    app = web.Application()
    app.router.add_get("/healthz", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, int(port)


async def test_http_and_tcp_probes() -> None:
    good, good_port = await serve(200)
    bad, bad_port = await serve(500)
    try:
        container = {"name": "c", "ports": [{"name": "web", "containerPort": good_port}]}
        rt = HollowRuntime()
        http = {"httpGet": {"path": "/healthz", "port": "web"}}
        assert await probe_once(http, container, rt, RS, 1)
        assert not await probe_once({"httpGet": {"path": "/healthz", "port": bad_port}},
                                    container, rt, RS, 1)
        assert await probe_once({"tcpSocket": {"port": good_port}}, container, rt, RS, 1)
    finally:
        await good.cleanup()
        await bad.cleanup()
    assert not await probe_once({"tcpSocket": {"port": good_port}}, container, rt, RS, 1)
    assert not await probe_once({"exec": {"command": ["true"]}}, container, rt, RS, 1)


async def test_prober_reports_readiness_and_kills_on_liveness_failure() -> None:
    runner, port = await serve(200)
    changed: list[str] = []
    killed: list[tuple[str, str]] = []
    prober = Prober(changed=changed.append, kill=lambda uid, name: killed.append((uid, name)))
    pod = {"metadata": {"uid": "u"}, "spec": {"containers": [{
        "name": "c",
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 0.1},
        "livenessProbe": {"tcpSocket": {"port": 1}, "periodSeconds": 0.1,
                          "failureThreshold": 2}}]}}
    rs = PodRuntimeStatus("u", "127.0.0.1", datetime.now(UTC), containers=(
        ContainerState("c", "img", "running", container_id="x://1"),))
    try:
        prober.watch(pod, rs, HollowRuntime())
        assert prober.readiness("u") == {"c": False}  # unready until a probe succeeds

        async def ready() -> bool:
            return prober.readiness("u") == {"c": True} and changed == ["u"]
        await eventually(ready, timeout=3)

        async def dead() -> bool:
            return killed == [("u", "c")]
        await eventually(dead, timeout=3)
        prober.forget("u")
        assert prober.readiness("u") == {}
    finally:
        await prober.close()
        await runner.cleanup()
