"""The REST client: one API server, JSON in and out, with retries, rate limits and timeouts.

Retries (with exponential backoff and jitter, honouring Retry-After): 429 and 503 for every
method (the server did not act), other 5xx and broken connections for idempotent methods,
and connection refusals for every method (nothing was sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

import aiohttp
import orjson

from arktos.client.config import ClientConfig
from arktos.client.ratelimit import TokenBucket

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
_MAX_BACKOFF = 5.0
_MAX_EVENT_BYTES = 64 << 20


class ApiError(Exception):
    """A failed request: the server's Status (or a synthesized one for connection failures)."""

    def __init__(self, status: int, reason: str, message: str,
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body or {}
        self.retry_after: float | None = None

    @classmethod
    def from_status(cls, code: int, data: bytes | dict[str, Any]) -> ApiError:
        try:
            status = orjson.loads(data) if isinstance(data, bytes) else data
        except orjson.JSONDecodeError:
            status = {}
        if not isinstance(status, dict) or status.get("kind") != "Status":
            text = data[:200].decode(errors="replace") if isinstance(data, bytes) else ""
            return cls(code, "Unknown", f"the server answered {code}: {text}".strip())
        return cls(int(status.get("code") or code), str(status.get("reason", "")),
                   str(status.get("message", "")), status)

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def forbidden(self) -> bool:
        return self.status == 403

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One watch event. `resume` is the version to resume a watch from after this event
    (set by watches merged from several servers; else the object's resourceVersion)."""

    type: str
    object: dict[str, Any]
    resume: str = ""

    @property
    def resume_version(self) -> str:
        return self.resume or str((self.object.get("metadata") or {}).get("resourceVersion", ""))


def _ssl_context(config: ClientConfig) -> ssl.SSLContext | bool:
    if not config.server.startswith("https"):
        return True
    if config.insecure:
        return False
    ctx = ssl.create_default_context(cafile=config.ca_file or None)
    if config.cert_file:
        ctx.load_cert_chain(config.cert_file, config.key_file or None)
    return ctx


def _backoff(attempt: int) -> float:
    return min(_MAX_BACKOFF, 0.05 * 2.0**attempt) * (0.5 + random.random() / 2)


def _retry_delay(retry_after: float | None, attempt: int) -> float:
    """Retry-After plus up to as much again of jitter (never less than the server asked), so
    that clients turned away together do not all come back at the same instant; else backoff."""
    if retry_after:
        return retry_after * (1 + random.random())
    return _backoff(attempt)


class ApiClient:
    """Requests to one API server. Use as `async with ApiClient(config) as client:`."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.limiter = TokenBucket(config.qps, config.burst)
        self._session: aiohttp.ClientSession | None = None
        self._headers = {"Accept": JSON, "User-Agent": "arktos-client/0.1"}
        if config.token:
            self._headers["Authorization"] = f"Bearer {config.token}"

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ssl=_ssl_context(self.config))
            self._session = aiohttp.ClientSession(self.config.server, connector=connector,
                                                  headers=self._headers, json_serialize=_dumps)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      body: Any = None, content_type: str = JSON,
                      timeout: float | None = None, accept: str = JSON) -> Any:
        """Send one request (retrying as the module says); returns the decoded JSON body.

        `accept` picks the representation (e.g. a server-side Table)."""
        data = None if body is None else orjson.dumps(body)
        headers = {"Accept": accept}
        if data is not None:
            headers["Content-Type"] = content_type
        clean = _params(params)
        for attempt in range(self.config.max_retries + 1):
            await self.limiter.acquire()
            try:
                async with self.session.request(
                        method, path, params=clean, data=data, headers=headers,
                        timeout=aiohttp.ClientTimeout(total=timeout or self.config.timeout)
                ) as resp:
                    raw = await resp.read()
                    if resp.status < 400:
                        return orjson.loads(raw) if raw else None
                    err = ApiError.from_status(resp.status, raw)
                    err.retry_after = _retry_after(resp.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                err = self.connection_error(exc)
                if not _resendable(exc, method) or attempt == self.config.max_retries:
                    raise err from None
                await asyncio.sleep(_backoff(attempt))
                continue
            if attempt == self.config.max_retries or not _retryable(err, method):
                raise err
            await asyncio.sleep(_retry_delay(err.retry_after, attempt))
        raise AssertionError("unreachable")

    def connection_error(self, exc: BaseException) -> ApiError:
        """A wire failure as an `ApiError` with status 0."""
        what = "timed out" if isinstance(exc, TimeoutError) else f"failed: {exc}"
        return ApiError(0, "ServiceUnavailable",
                        f"the connection to the server {self.config.server} {what}")

    @contextlib.asynccontextmanager
    async def stream(self, path: str, params: Mapping[str, Any] | None = None, *,
                     accept: str = JSON, read_timeout: float | None = None
                     ) -> AsyncIterator[aiohttp.StreamReader]:
        """A GET whose body is read as it arrives (watches, followed logs); not retried.
        `read_timeout` bounds the wait for each chunk (None: no bound)."""
        await self.limiter.acquire()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.config.timeout,
                                        sock_read=read_timeout)
        try:
            async with self.session.get(path, params=_params(params), timeout=timeout,
                                        headers={"Accept": accept}) as resp:
                if resp.status >= 400:
                    raise ApiError.from_status(resp.status, await resp.read())
                yield resp.content
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self.connection_error(exc) from None

    async def lines(self, path: str, params: Mapping[str, Any] | None = None, *,
                    accept: str = JSON, read_timeout: float | None = None
                    ) -> AsyncIterator[dict[str, Any]]:
        """The JSON documents of a streamed GET, one per line (watch events)."""
        async with self.stream(path, params, accept=accept, read_timeout=read_timeout) as body:
            while line := await body.readline(max_line_length=_MAX_EVENT_BYTES):
                if line.strip():
                    yield orjson.loads(line)

    async def watch(self, path: str, params: Mapping[str, Any] | None = None, *,
                    timeout_seconds: int = 300) -> AsyncIterator[WatchEvent]:
        """Stream the events of one watch request until the server ends it.

        An ERROR event raises its Status as `ApiError` (410: the version is too old)."""
        query = {**_params(params), "watch": "1", "timeoutSeconds": str(timeout_seconds)}
        async for event in self.lines(path, query, read_timeout=timeout_seconds + 30):
            if event.get("type") == "ERROR":
                raise ApiError.from_status(500, event.get("object") or {})
            yield WatchEvent(event["type"], event["object"])


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _params(params: Mapping[str, Any] | None) -> dict[str, str]:
    out = {}
    for key, value in (params or {}).items():
        if value is None or value == "":
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _retryable(err: ApiError, method: str) -> bool:
    if err.status in (429, 503):
        return True
    return err.status >= 500 and method in _IDEMPOTENT


def _resendable(exc: BaseException, method: str) -> bool:
    """Whether a request that failed on the wire may be sent again."""
    return isinstance(exc, aiohttp.ClientConnectorError) or method in _IDEMPOTENT
