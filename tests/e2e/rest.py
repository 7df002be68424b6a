"""A tiny synchronous REST helper for API-server tests (plain HTTP, JSON in and out)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import requests

from tests.apiserver_proc import CREDENTIALS


class Rest:
    def __init__(self, base_url: str, *, anonymous: bool = False) -> None:
        """A session for a server the tests started: as its admin (client certificate), or
        with no credentials at all."""
        self.base = base_url
        self.http = requests.Session()
        self.http.trust_env = False  # the environment's CA bundle must not replace ours
        ca, cert = CREDENTIALS[base_url]
        self.http.verify = ca
        if not anonymous:
            self.http.cert = cert

    def request(self, method: str, path: str, body: Any = None, *, data: bytes | None = None,
                content_type: str = "application/json", **params: Any) -> requests.Response:
        if body is not None:
            data = json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        return self.http.request(method, self.base + path, data=data, headers=headers,
                                 params=params, timeout=30)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.request("GET", path, **params)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> requests.Response:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any, content_type: str = "application/merge-patch+json",
              **kw: Any) -> requests.Response:
        return self.request("PATCH", path, body, content_type=content_type, **kw)

    def delete(self, path: str, body: Any = None, **params: Any) -> requests.Response:
        return self.request("DELETE", path, body, **params)

    def ok(self, resp: requests.Response, *codes: int) -> Any:
        """The JSON body, asserting the status code (200/201 by default)."""
        assert resp.status_code in (codes or (200, 201)), (resp.status_code, resp.text[:500])
        return resp.json()

    def names(self, path: str, **params: Any) -> list[str]:
        return sorted(i["metadata"]["name"] for i in self.ok(self.get(path, **params))["items"])

    def watch(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Stream watch events until the server ends the stream."""
        params = {"watch": "1", **params}
        with self.http.get(self.base + path, params=params, stream=True, timeout=30) as resp:
            assert resp.status_code == 200, resp.text[:300]
            for line in resp.iter_lines():
                if line:
                    yield json.loads(line)

    def create_tenant(self, name: str) -> dict[str, Any]:
        """A tenant with its default namespace (no tenant controller exists yet)."""
        tenant = self.ok(self.post("/api/v1/tenants", {"metadata": {"name": name},
                                                      "spec": {"storageClusterId": "1"}}))
        self.ok(self.post(f"/api/v1/tenants/{name}/namespaces", {"metadata": {"name": "default"}}))
        return dict(tenant)


def pod(name: str, image: str = "busybox:1.36", **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **meta},
            "spec": {"containers": [{"name": "c", "image": image}]}}


def configmap(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta},
            "data": {"k": "v"}}
