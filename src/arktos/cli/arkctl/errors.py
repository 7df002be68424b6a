"""How failures are shown: kubectl's wording on stderr, exit code 1."""

from __future__ import annotations

import sys
from typing import Any, NoReturn
from urllib.parse import urlparse

import aiohttp
import typer

from arktos.client.rest import ApiError


class CliError(Exception):
    """A user-facing error, printed as `error: <message>` (exit code 1)."""


def _host(server: str) -> str:
    parsed = urlparse(server)
    return parsed.netloc or server


def _refused(err: ApiError) -> bool:
    cause = err.__context__
    if isinstance(cause, aiohttp.ClientConnectorError):
        return isinstance(cause.os_error, ConnectionRefusedError)
    return "Connect call failed" in err.message or "Connection refused" in err.message


def _causes(details: dict[str, Any]) -> list[str]:
    out = []
    for cause in details.get("causes") or []:
        if isinstance(cause, dict):
            where = str(cause.get("field") or "")
            message = str(cause.get("message") or "")
            out.append(f"{where}: {message}" if where else message)
    return out


def _invalid(err: ApiError) -> str:
    """kubectl's wording for 422: `The Pod "x" is invalid: field: message`."""
    details = err.body.get("details") or {}
    if not isinstance(details, dict) or not details.get("kind"):
        return f"The request is invalid: {err.message}"
    head = f'The {details["kind"]} "{details.get("name", "")}" is invalid'
    causes = _causes(details)
    if not causes:
        return f"{head}: {err.message}"
    if len(causes) == 1:
        return f"{head}: {causes[0]}"
    return f"{head}: \n" + "\n".join(f"* {c}" for c in causes)


def describe_error(err: BaseException, server: str = "", context: str = "") -> str:
    """The text kubectl prints for `err`; `context` (e.g. `error when creating "f.yaml"`)
    goes before a server message."""
    if isinstance(err, ApiError):
        if err.status == 0:
            if _refused(err):
                return (f"The connection to the server {_host(server)} was refused - did you "
                        "specify the right host or port?")
            detail = err.message.split(" failed: ", 1)[-1] if " failed: " in err.message \
                else err.message
            return f"Unable to connect to the server: {detail}"
        if err.status == 422 and err.reason == "Invalid":
            return _invalid(err)
        message = f"{context}: {err.message}" if context else err.message
        return f"Error from server ({err.reason or 'Unknown'}): {message}"
    if isinstance(err, CliError):
        return f"error: {err}"
    return f"error: {err}"


def fail(message: str, hint: str = "") -> NoReturn:
    """Print `error: message` (and a usage hint) and exit with code 1."""
    print(f"error: {message}", file=sys.stderr)
    if hint:
        print(hint, file=sys.stderr)
    raise typer.Exit(1)


def warn(message: str) -> None:
    """A warning on stderr, as kubectl prints them."""
    print(f"Warning: {message}", file=sys.stderr)


class Failures:
    """Collects per-item errors of a command that carries on (apply, delete, get NAME...)."""

    def __init__(self, server: str = "") -> None:
        self.server = server
        self.count = 0

    def report(self, err: BaseException, context: str = "") -> None:
        self.count += 1
        print(describe_error(err, self.server, context), file=sys.stderr, flush=True)

    @property
    def exit_code(self) -> int:
        return 1 if self.count else 0
