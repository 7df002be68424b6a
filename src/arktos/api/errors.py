"""Kubernetes `Status` errors. Every API failure is raised as a `StatusError`.

No I/O here: the API server turns a `StatusError` into an HTTP response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Cause:
    """One field-level problem of an Invalid object (`details.causes[]`)."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message,
                "field": self.field}


@dataclass(eq=False)
class StatusError(Exception):
    """An API error with its HTTP code and Kubernetes reason."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    retry_after: int | None = None

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def to_status(self) -> dict[str, Any]:
        """The `Status` object sent on the wire."""
        status: dict[str, Any] = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        }
        details = dict(self.details)
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        if details:
            status["details"] = details
        return status


def _details(resource: str, name: str) -> dict[str, Any]:
    group, _, kind = resource.rpartition(".") if "." in resource else ("", "", resource)
    d: dict[str, Any] = {"kind": kind}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    return d


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> StatusError:
    return StatusError(401, "Unauthorized", message)


def forbidden(message: str) -> StatusError:
    return StatusError(403, "Forbidden", message)


def not_found(resource: str, name: str = "") -> StatusError:
    """`resource` is the plural, qualified with its group when not core (`deployments.apps`)."""
    msg = f'{resource} "{name}" not found' if name else f"{resource} not found"
    return StatusError(404, "NotFound", msg, _details(resource, name))


def path_not_found(path: str) -> StatusError:
    return StatusError(404, "NotFound", f"the server could not find the requested resource ({path})")


def method_not_allowed(method: str, what: str) -> StatusError:
    return StatusError(405, "MethodNotAllowed", f"{method} is not supported on {what}")


def already_exists(resource: str, name: str) -> StatusError:
    return StatusError(409, "AlreadyExists", f'{resource} "{name}" already exists',
                       _details(resource, name))


def conflict(resource: str, name: str, why: str) -> StatusError:
    msg = f'Operation cannot be fulfilled on {resource} "{name}": {why}'
    return StatusError(409, "Conflict", msg, _details(resource, name))


def gone(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def too_large(limit: int) -> StatusError:
    return StatusError(413, "RequestEntityTooLarge",
                       f"Request entity too large: limit is {limit} bytes")


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType",
                       f'the body of the request was in an unknown format - accepted media types '
                       f'include: application/json, application/yaml; got "{content_type}"')


def invalid(kind: str, name: str, causes: list[Cause]) -> StatusError:
    """422 Invalid with field causes, worded like kube-apiserver's."""
    summary = ", ".join(f"{c.field}: {c.message}" for c in causes)
    details = {"name": name, "kind": kind, "causes": [c.to_dict() for c in causes]}
    return StatusError(422, "Invalid", f'{kind} "{name}" is invalid: {summary}', details)


def too_many_requests(message: str, retry_after: int = 1) -> StatusError:
    return StatusError(429, "TooManyRequests", message, retry_after=retry_after)


def internal(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def service_unavailable(message: str) -> StatusError:
    return StatusError(503, "ServiceUnavailable", message)
