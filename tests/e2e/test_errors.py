"""Bad input gets the right Status and changes nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.apiserver_proc import ApiServerProcess
from tests.e2e.rest import Rest, configmap


def _assert_status(resp: object, code: int, reason: str) -> dict[str, object]:
    status = resp.json()  # type: ignore[attr-defined]
    assert resp.status_code == code, status  # type: ignore[attr-defined]
    assert status["kind"] == "Status" and status["status"] == "Failure"
    assert status["reason"] == reason and status["code"] == code
    return dict(status)


@pytest.fixture
def base(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps"


def _unchanged(rest: Rest, base: str) -> None:
    assert rest.names(base) == []


def test_malformed_json(rest: Rest, base: str) -> None:
    _assert_status(rest.post(base, data=b"{nope"), 400, "BadRequest")
    _unchanged(rest, base)


def test_wrong_kind_for_url(rest: Rest, base: str) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}
    _assert_status(rest.post(base, body), 400, "BadRequest")
    _unchanged(rest, base)


def test_namespace_in_body_contradicts_url(rest: Rest, base: str) -> None:
    _assert_status(rest.post(base, configmap("x", namespace="other")), 400, "BadRequest")
    _unchanged(rest, base)


def test_oversize_body(rest: Rest, base: str) -> None:
    huge = configmap("x")
    huge["data"] = {"k": "v" * (3 * 1024 * 1024 + 10)}
    _assert_status(rest.post(base, huge), 413, "RequestEntityTooLarge")
    _unchanged(rest, base)


def test_unsupported_media_type(rest: Rest, base: str) -> None:
    resp = rest.post(base, data=b"x", content_type="application/vnd.kubernetes.protobuf")
    _assert_status(resp, 415, "UnsupportedMediaType")
    _unchanged(rest, base)


def test_invalid_object_lists_causes(rest: Rest, base: str) -> None:
    bad = {"metadata": {"name": "Not_Valid", "labels": {"a": "b c"}}}
    status = _assert_status(rest.post(base, bad), 422, "Invalid")
    fields = {c["field"] for c in status["details"]["causes"]}  # type: ignore[index]
    assert "metadata.name" in fields and "metadata.labels[a]" in fields
    _unchanged(rest, base)


def test_pod_with_containers_and_vm(rest: Rest, ns: str) -> None:
    body = {"metadata": {"name": "both"},
            "spec": {"containers": [{"name": "c", "image": "i"}],
                     "virtualMachine": {"name": "vm", "image": "cirros"}}}
    _assert_status(rest.post(f"/api/v1/namespaces/{ns}/pods", body), 422, "Invalid")
    assert rest.names(f"/api/v1/namespaces/{ns}/pods") == []


def test_unknown_resource_and_path(rest: Rest) -> None:
    _assert_status(rest.get("/api/v1/namespaces/default/widgets"), 404, "NotFound")
    _assert_status(rest.post("/api/v1/namespaces/default/widgets", {}), 404, "NotFound")
    _assert_status(rest.get("/apis/nosuch.io/v1/things"), 404, "NotFound")
    _assert_status(rest.get("/api/v1/namespaces/default/pods/nope"), 404, "NotFound")


def test_update_of_missing_object(rest: Rest, base: str) -> None:
    _assert_status(rest.put(f"{base}/ghost", configmap("ghost")), 404, "NotFound")
    _unchanged(rest, base)


def test_name_in_body_contradicts_url(rest: Rest, base: str) -> None:
    rest.ok(rest.post(base, configmap("real")))
    _assert_status(rest.put(f"{base}/real", configmap("other")), 400, "BadRequest")
    assert rest.names(base) == ["real"]


def test_bad_patches(rest: Rest, base: str) -> None:
    before = rest.ok(rest.post(base, configmap("p")))
    _assert_status(rest.patch(f"{base}/p", [{"op": "test", "path": "/data/k", "value": "no"}],
                              content_type="application/json-patch+json"), 422, "Invalid")
    _assert_status(rest.patch(f"{base}/p", {"x": 1}, content_type="text/plain"),
                   415, "UnsupportedMediaType")
    _assert_status(rest.request("PATCH", f"{base}/p", data=b"{",
                                content_type="application/merge-patch+json"), 400, "BadRequest")
    after = rest.ok(rest.get(f"{base}/p"))
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_bad_selectors_and_options(rest: Rest, base: str) -> None:
    _assert_status(rest.get(base, labelSelector="a in (b"), 400, "BadRequest")
    _assert_status(rest.get(base, fieldSelector="spec.nope=1"), 400, "BadRequest")
    _assert_status(rest.get(base, limit="x"), 400, "BadRequest")
    _assert_status(rest.get(base, **{"continue": "garbage"}), 400, "BadRequest")


def test_too_many_requests_in_flight(tmp_path: Path) -> None:
    """Beyond --max-mutating-requests-inflight a write gets 429 + Retry-After and no effect."""
    server = ApiServerProcess(tmp_path, extra_args=("--max-mutating-requests-inflight", "1"))
    server.start()
    try:
        rest = Rest(server.url)
        with ThreadPoolExecutor(32) as pool:
            resps = list(pool.map(
                lambda i: Rest(server.url).post("/api/v1/namespaces/default/configmaps",
                                                configmap(f"c{i}")), range(200)))
        codes = [r.status_code for r in resps]
        assert set(codes) <= {201, 429} and 429 in codes and 201 in codes
        limited = next(r for r in resps if r.status_code == 429)
        _assert_status(limited, 429, "TooManyRequests")
        assert limited.headers["Retry-After"] == "1"
        stored = rest.names("/api/v1/namespaces/default/configmaps")
        assert len(stored) == codes.count(201)
    finally:
        server.stop()
