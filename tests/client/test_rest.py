"""The REST client and ResourceClient: path forms, verbs and errors against a real API server;
retries (429 with Retry-After, refused connections, 5xx, timeouts) and which requests may be
sent again, against a real server or a scripted HTTP stub where a server cannot be made to
misbehave on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import types
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Self

import aiohttp
import pytest

from arktos.api.kinds import REGISTRY
from arktos.client import rest
from arktos.client.config import ClientConfig, load_config
from arktos.client.ratelimit import TokenBucket
from arktos.client.resources import ALL_TENANTS, ResourceClient, resource_path, resource_type
from arktos.client.rest import ApiClient, ApiError
from tests.apiserver_proc import ApiServerProcess, admin_ssl_context, free_port
from tests.client.conftest import configmap, make_tenant

# ---------------------------------------------------------------------------------------------
# Paths


def test_resource_path_forms() -> None:
    pods, nodes = resource_type("pods"), resource_type("Node")
    assert resource_path(pods, tenant="acme", namespace="web", name="p", subresource="status") \
        == "/api/v1/tenants/acme/namespaces/web/pods/p/status"
    assert resource_path(pods, namespace="web") == "/api/v1/namespaces/web/pods"
    assert resource_path(pods, tenant=ALL_TENANTS) == "/api/v1/tenants/all/pods"
    assert resource_path(pods) == "/api/v1/pods"
    assert resource_path(nodes, tenant="acme", name="n1") == "/api/v1/nodes/n1"
    assert resource_path(resource_type("namespaces"), tenant="acme", namespace="ignored",
                         name="web") == "/api/v1/tenants/acme/namespaces/web"
    assert resource_path(resource_type("deployments.apps"), tenant="acme", namespace="web",
                         name="d", subresource="scale") \
        == "/apis/apps/v1/tenants/acme/namespaces/web/deployments/d/scale"
    assert resource_type("leases.coordination.k8s.io").kind == "Lease"
    pods_type = next(iter(REGISTRY))
    assert resource_type(pods_type) is pods_type
    with pytest.raises(KeyError):
        resource_type("nosuchthings")


async def test_resource_client_paths_follow_the_context_tenant(server: ApiServerProcess) -> None:
    config = load_config(server.kubeconfig)
    async with ApiClient(config.with_overrides(tenant="acme")) as tenanted, \
            ApiClient(replace(config, tenant="")) as short:
        cms = ResourceClient(tenanted, "configmaps")
        assert cms.path(namespace="web", name="c") \
            == "/api/v1/tenants/acme/namespaces/web/configmaps/c"
        assert cms.path(tenant="other", namespace="web") \
            == "/api/v1/tenants/other/namespaces/web/configmaps"
        assert cms.path(tenant="", namespace="web") == "/api/v1/namespaces/web/configmaps"
        assert ResourceClient(short, "configmaps").path(namespace="web") \
            == "/api/v1/namespaces/web/configmaps"


# ---------------------------------------------------------------------------------------------
# Verbs and errors on a real server


async def test_crud_on_full_tenant_paths_and_short_paths(
        server: ApiServerProcess, unique: Callable[[str], str]) -> None:
    tenant = unique("crud")
    config = load_config(server.kubeconfig)
    async with ApiClient(config) as admin:
        await make_tenant(admin, tenant)
    async with ApiClient(config.with_overrides(tenant=tenant)) as tenanted, \
            ApiClient(replace(config, tenant="")) as short:
        assert short.config.tenant == ""
        cms, short_cms = ResourceClient(tenanted, "configmaps"), ResourceClient(short, "configmaps")
        label = {"suite": tenant}
        created = await cms.create(configmap("same", labels=label))
        assert created["metadata"]["tenant"] == tenant
        # The same name through a short path lands in the caller's (system) tenant.
        other = await short_cms.create(configmap("same", labels=label))
        assert other["metadata"]["tenant"] == "system"
        assert other["metadata"]["uid"] != created["metadata"]["uid"]

        got = await cms.get("same", namespace="default")
        assert got["metadata"]["uid"] == created["metadata"]["uid"]
        everywhere = await cms.list(tenant=ALL_TENANTS, label_selector=f"suite={tenant}")
        assert sorted(o["metadata"]["tenant"] for o in everywhere.items) == sorted(
            [tenant, "system"])
        assert int(everywhere.resource_version) >= int(other["metadata"]["resourceVersion"])

        got["data"] = {"k": "updated"}
        updated = await cms.update(got)
        assert updated["data"] == {"k": "updated"}
        assert updated["metadata"]["resourceVersion"] != got["metadata"]["resourceVersion"]
        with pytest.raises(ApiError) as stale:
            await cms.update(got)  # still carries the old resourceVersion
        assert (stale.value.status, stale.value.reason, stale.value.conflict) == \
            (409, "Conflict", True)
        assert stale.value.body["kind"] == "Status"

        patched = await cms.patch("same", {"data": {"extra": "1"}}, namespace="default")
        assert patched["data"] == {"k": "updated", "extra": "1"}
        assert (await short_cms.get("same", namespace="default"))["data"] == {"k": "v"}

        await cms.delete("same", namespace="default")
        with pytest.raises(ApiError) as missing:
            await cms.get("same", namespace="default")
        err = missing.value
        assert (err.status, err.reason, err.not_found, err.conflict) == \
            (404, "NotFound", True, False)
        assert err.body["details"]["name"] == "same" and "not found" in str(err)
        assert (await short_cms.get("same", namespace="default"))["metadata"]["tenant"] == \
            "system"
        await short_cms.delete("same", namespace="default")


async def test_api_error_fields_for_conflicts_and_invalid_objects(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    cms = ResourceClient(api, "configmaps")
    name = unique("err")
    await cms.create(configmap(name))
    with pytest.raises(ApiError) as exists:
        await cms.create(configmap(name))
    assert (exists.value.status, exists.value.reason, exists.value.conflict) == \
        (409, "AlreadyExists", True)
    assert exists.value.body["details"] == {"kind": "configmaps", "name": name}

    with pytest.raises(ApiError) as invalid:
        await cms.create(configmap("Not_A_Valid_Name"))
    err = invalid.value
    assert (err.status, err.reason) == (422, "Invalid")
    assert "metadata.name" in [c["field"] for c in err.body["details"]["causes"]]

    with pytest.raises(ApiError) as precondition:
        await cms.delete(name, namespace="default", preconditions={"uid": "not-the-uid"})
    assert precondition.value.status == 409


async def test_list_follows_continue_pages(api: ApiClient, unique: Callable[[str], str]) -> None:
    cms = ResourceClient(api, "configmaps")
    label = unique("page")
    for i in range(5):
        await cms.create(configmap(f"{label}-{i}", labels={"page": label}))
    result = await cms.list(namespace="default", label_selector=f"page={label}", limit=2)
    assert sorted(o["metadata"]["name"] for o in result.items) == \
        [f"{label}-{i}" for i in range(5)]
    assert result.resource_version


async def test_watch_streams_events_from_a_version(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    cms = ResourceClient(api, "configmaps")
    label = unique("watch")
    start = await cms.list(namespace="default", label_selector=f"w={label}")
    await cms.create(configmap(f"{label}-a", labels={"w": label}))
    await cms.delete(f"{label}-a", namespace="default")
    seen = []
    async with asyncio.timeout(20):
        async for ev in cms.watch(namespace="default", label_selector=f"w={label}",
                                  resource_version=start.resource_version, timeout_seconds=5):
            if ev.type != "BOOKMARK":
                seen.append((ev.type, ev.object["metadata"]["name"]))
            if len(seen) == 2:
                break
    assert seen == [("ADDED", f"{label}-a"), ("DELETED", f"{label}-a")]


async def test_watch_delivers_objects_bigger_than_the_stream_buffer(
        api: ApiClient, unique: Callable[[str], str]) -> None:
    """Regression: aiohttp's line iterator refused events over 512 KiB with a non-ClientError
    exception (which killed informers); the server accepts objects up to 3 MiB."""
    cms = ResourceClient(api, "configmaps")
    label = unique("big")
    start = await cms.list(namespace="default", label_selector=f"big={label}")
    big = configmap(label, labels={"big": label})
    big["data"] = {"blob": "x" * 700_000}
    await cms.create(big)
    async with asyncio.timeout(20):
        async for ev in cms.watch(namespace="default", label_selector=f"big={label}",
                                  resource_version=start.resource_version, timeout_seconds=5):
            if ev.type == "ADDED":
                assert len(ev.object["data"]["blob"]) == 700_000
                break
        else:
            pytest.fail("the watch ended without the object")


# ---------------------------------------------------------------------------------------------
# 429 from a real server with one mutating request in flight


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    proc = ApiServerProcess(Path(tmp_path_factory.mktemp("busy-apiserver")),
                            extra_args=("--max-mutating-requests-inflight", "1")).start()
    yield proc
    proc.stop()


async def test_concurrent_creates_all_succeed_through_429s(
        busy_server: ApiServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    # Raw requests (no retries) see the server turn requests away.
    path = "/api/v1/namespaces/default/configmaps"
    statuses: list[tuple[int, str | None]] = []
    connector = aiohttp.TCPConnector(ssl=admin_ssl_context(busy_server.url))
    async with aiohttp.ClientSession(busy_server.url, connector=connector) as raw:
        async def post(i: int) -> None:
            async with raw.post(path, json=configmap(f"raw-{i}")) as resp:
                statuses.append((resp.status, resp.headers.get("Retry-After")))
        for _ in range(5):
            await asyncio.gather(*(post(len(statuses) + i) for i in range(40)))
            if any(code == 429 for code, _ in statuses):
                break
    assert (429, "1") in statuses

    # Through one ApiClient, every create succeeds; the client waited as the server asked.
    delays: list[float | None] = []
    original = rest._retry_delay

    def spy(retry_after: float | None, attempt: int) -> float:
        delays.append(retry_after)
        return original(retry_after, attempt)

    monkeypatch.setattr(rest, "_retry_delay", spy)
    async with ApiClient(load_config(busy_server.kubeconfig)) as api:
        assert api.config.max_retries == 5
        cms = ResourceClient(api, "configmaps")
        made = await asyncio.gather(*(cms.create(configmap(f"c-{i}")) for i in range(40)))
        assert len({m["metadata"]["uid"] for m in made}) == 40
        names = {o["metadata"]["name"] for o in (await cms.list(namespace="default")).items}
        assert {f"c-{i}" for i in range(40)} <= names
    assert delays and set(delays) == {1.0}


def test_retry_after_is_a_floor_with_jitter_above_it() -> None:
    """Clients turned away together must not all come back at the same instant (they would
    all be turned away again), yet never sooner than Retry-After."""
    waits = [rest._retry_delay(1.0, 0) for _ in range(200)]
    assert all(1.0 <= w <= 2.0 for w in waits)
    assert max(waits) - min(waits) > 0.2
    assert all(0.0 < rest._retry_delay(None, 0) <= 0.05 for _ in range(50))
    assert all(rest._retry_delay(None, 20) <= rest._MAX_BACKOFF for _ in range(50))


# ---------------------------------------------------------------------------------------------
# Retry policy


@pytest.mark.parametrize(("status", "method", "retry"), [
    (429, "POST", True), (429, "PATCH", True), (503, "POST", True), (503, "GET", True),
    (500, "GET", True), (502, "PUT", True), (504, "DELETE", True),
    (500, "POST", False), (500, "PATCH", False),
    (404, "GET", False), (409, "PUT", False), (422, "POST", False), (410, "GET", False),
])
def test_retryable_statuses(status: int, method: str, retry: bool) -> None:
    assert rest._retryable(ApiError(status, "", ""), method) is retry


def _connector_error() -> aiohttp.ClientConnectorError:
    key: Any = type("Key", (), {"ssl": False, "host": "h", "port": 1})()
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))


@pytest.mark.parametrize(("exc", "method", "resend"), [
    (_connector_error(), "POST", True),
    (_connector_error(), "PATCH", True),
    (aiohttp.ServerDisconnectedError(), "POST", False),
    (aiohttp.ServerDisconnectedError(), "PATCH", False),
    (aiohttp.ServerDisconnectedError(), "GET", True),
    (aiohttp.ClientPayloadError("cut"), "PUT", True),
    (TimeoutError(), "POST", False),
    (TimeoutError(), "DELETE", True),
])
def test_resendable_after_wire_failures(exc: BaseException, method: str, resend: bool) -> None:
    assert rest._resendable(exc, method) is resend


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Backoff sleeps become 0 (tests stay quick); returns the attempts that backed off."""
    attempts: list[int] = []

    def backoff(attempt: int) -> float:
        attempts.append(attempt)
        return 0.0

    monkeypatch.setattr(rest, "_backoff", backoff)
    return attempts


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_connection_refused_is_retried_then_reported_as_status_0(
        method: str, no_backoff: list[int]) -> None:
    server = f"http://127.0.0.1:{free_port()}"
    async with ApiClient(ClientConfig(server=server, max_retries=2)) as api:
        with pytest.raises(ApiError) as refused:
            await api.request(method, "/api/v1/namespaces", body={} if method == "POST" else None)
    err = refused.value
    assert (err.status, err.reason) == (0, "ServiceUnavailable")
    assert server in err.message
    assert no_backoff == [0, 1]  # nothing was sent, so even POST is tried 3 times


class Stub:
    """A scripted HTTP/1.1 server: `reply(method)` returns raw response bytes, "drop" (close
    the connection after reading the request) or "hang" (never answer)."""

    def __init__(self, reply: Callable[[str], bytes | str]) -> None:
        self.reply = reply
        self.methods: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                length = next((int(h.split(":", 1)[1]) for h in lines
                               if h.lower().startswith("content-length:")), 0)
                await reader.readexactly(length)
                method = lines[0].split(" ", 1)[0]
                self.methods.append(method)
                answer = self.reply(method)
                if answer == "drop":
                    return
                if answer == "hang":
                    await asyncio.Event().wait()
                assert isinstance(answer, bytes)
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def http_status(code: int, headers: str = "") -> bytes:
    body = (b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"scripted",'
            b'"reason":"Scripted","code":' + str(code).encode() + b"}")
    return (f"HTTP/1.1 {code} Scripted\r\nContent-Type: application/json\r\n{headers}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@contextlib.asynccontextmanager
async def client_of(stub: Stub, **config: Any) -> AsyncIterator[ApiClient]:
    async with ApiClient(ClientConfig(server=stub.url, **config)) as api:
        yield api


@pytest.mark.parametrize(("method", "resent"), [("POST", False), ("PATCH", False),
                                                ("GET", True), ("PUT", True), ("DELETE", True)])
async def test_only_idempotent_requests_are_resent_after_the_connection_broke(
        method: str, resent: bool, no_backoff: list[int]) -> None:
    """The stub reads each request, then hangs up: the request went out, so a POST or PATCH
    may have been acted on and must not be sent again."""
    async with Stub(lambda m: "drop") as stub, client_of(stub, max_retries=2) as api:
        with pytest.raises(ApiError) as broken:
            await api.request(method, "/api/v1/namespaces/default/configmaps/x", body={})
    assert broken.value.status == 0
    assert set(stub.methods) == {method}
    if resent:
        assert no_backoff == [0, 1]
        # (aiohttp itself also resends an idempotent request once on a dropped connection)
        assert len(stub.methods) >= 3
    else:
        assert no_backoff == [] and stub.methods == [method]


@pytest.mark.parametrize(("method", "sends"), [("POST", 1), ("GET", 2)])
async def test_timeouts_resend_only_idempotent_requests(method: str, sends: int,
                                                        no_backoff: list[int]) -> None:
    async with Stub(lambda m: "hang") as stub, \
            client_of(stub, max_retries=1, timeout=0.3) as api:
        with pytest.raises(ApiError) as timed_out:
            await api.request(method, "/api/v1/namespaces", body={})
    assert timed_out.value.status == 0 and "timed out" in timed_out.value.message
    assert stub.methods == [method] * sends


@pytest.mark.parametrize(("code", "method", "sends"), [
    (500, "POST", 1), (500, "GET", 4), (503, "POST", 4), (404, "GET", 1), (409, "PUT", 1)])
async def test_error_statuses_retried_by_policy(code: int, method: str, sends: int,
                                                no_backoff: list[int]) -> None:
    async with Stub(lambda m: http_status(code)) as stub, client_of(stub, max_retries=3) as api:
        with pytest.raises(ApiError) as failed:
            await api.request(method, "/api/v1/namespaces", body={})
    assert (failed.value.status, failed.value.reason) == (code, "Scripted")
    assert stub.methods == [method] * sends


async def test_retry_after_header_is_honoured_then_success(
        monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(rest, "asyncio", types.SimpleNamespace(sleep=sleep))
    answers = iter([http_status(429, "Retry-After: 3\r\n"), http_status(429, "Retry-After: 7\r\n")])
    ok = (b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
          b'{"ok":true}')
    async with Stub(lambda m: next(answers, ok)) as stub, client_of(stub, qps=0) as api:
        assert await api.request("POST", "/api/v1/namespaces", body={}) == {"ok": True}
    assert stub.methods == ["POST"] * 3
    assert 3.0 <= slept[0] <= 6.0 and 7.0 <= slept[1] <= 14.0


async def test_every_attempt_takes_a_rate_limit_token(no_backoff: list[int]) -> None:
    class CountingBucket(TokenBucket):
        taken = 0

        def reserve(self) -> float:
            CountingBucket.taken += 1
            return super().reserve()

    async with Stub(lambda m: http_status(503)) as stub, client_of(stub, max_retries=2) as api:
        api.limiter = CountingBucket(1000, 10)
        with pytest.raises(ApiError):
            await api.request("GET", "/api/v1/namespaces")
    assert CountingBucket.taken == 3
