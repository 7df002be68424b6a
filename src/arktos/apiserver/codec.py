"""Request bodies in, JSON responses out: size limit, content types, Status errors.

Only `aiohttp` request/response plumbing lives here; no object semantics.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from aiohttp import web

from arktos.api import errors

MAX_BODY = 3 * 1024 * 1024
JSON = "application/json"
_JSON_TYPES = frozenset({JSON, "application/json-patch+json", "application/merge-patch+json",
                         "application/strategic-merge-patch+json"})
_YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml"})


def media_type(request: web.Request) -> str:
    return request.headers.get("Content-Type", JSON).split(";")[0].strip().lower() or JSON


async def read_body(request: web.Request) -> bytes:
    """The raw body; 413 beyond 3 MiB (checked before and while reading)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise errors.too_large(MAX_BODY)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_BODY:
            raise errors.too_large(MAX_BODY)
        chunks.append(chunk)
    return b"".join(chunks)


def parse(raw: bytes, content_type: str) -> Any:
    """Decode JSON or YAML; 415 for other media types, 400 for malformed documents."""
    if content_type in _JSON_TYPES:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request(f"the request body is not valid JSON: {exc}") from None
    if content_type in _YAML_TYPES:
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"the request body is not valid YAML: {exc}") from None
    raise errors.unsupported_media_type(content_type)


async def read_object(request: web.Request) -> Any:
    return parse(await read_body(request), media_type(request))


def json_response(data: Any, status: int = 200) -> web.Response:
    return raw_response(orjson.dumps(data), status)


def raw_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=JSON)


def status_response(err: errors.StatusError) -> web.Response:
    resp = json_response(err.to_status(), err.code)
    if err.retry_after is not None:
        resp.headers["Retry-After"] = str(err.retry_after)
    return resp


def success_status(message: str = "", details: dict[str, Any] | None = None,
                   kind: str = "Status") -> dict[str, Any]:
    status: dict[str, Any] = {"kind": kind, "apiVersion": "v1", "metadata": {},
                              "status": "Success", "code": 200}
    if message:
        status["message"] = message
    if details:
        status["details"] = details
    return status


def wants_table(request: web.Request) -> bool:
    """kubectl asks for `application/json;as=Table;g=meta.k8s.io;v=v1`."""
    accept = request.headers.get("Accept", "")
    for part in accept.split(","):
        params = {kv.split("=")[0].strip(): kv.split("=")[-1].strip()
                  for kv in part.split(";")[1:] if "=" in kv}
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" \
                and params.get("v") in ("v1", "v1beta1"):
            return True
    return False
