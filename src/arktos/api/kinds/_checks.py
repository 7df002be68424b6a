"""Shared field checks for kind validators, worded like Kubernetes' `field.Error`s.

`Fields` wraps one JSON object at a field path; its getters return the value when it has the
right type and otherwise record a `Cause` and return None, so validators never raise on garbage.
Also: small defaulting and column helpers. No I/O here.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from arktos.api.errors import Cause
from arktos.api.meta import label_value_errors, qualified_name_errors
from arktos.api.quantity import QUANTITY_ERROR, parse_quantity

NameCheck = Callable[[str], list[str]]

_IANA_SVC = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
MAX_INT32 = 2**31 - 1


# --- causes -------------------------------------------------------------------------------

def show(value: Any) -> str:
    """A value as Kubernetes prints it in messages: strings quoted, the rest as JSON."""
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except ValueError:  # circular structures
        return repr(value)


def required(path: str, detail: str = "") -> Cause:
    return Cause(path, f"Required value: {detail}" if detail else "Required value",
                 "FieldValueRequired")


def invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(path, f"Invalid value: {show(value)}: {detail}", "FieldValueInvalid")


def not_supported(path: str, value: Any, allowed: Iterable[str]) -> Cause:
    supported = ", ".join(show(a) for a in allowed)
    return Cause(path, f"Unsupported value: {show(value)}: supported values: {supported}",
                 "FieldValueNotSupported")


def forbidden(path: str, detail: str) -> Cause:
    return Cause(path, f"Forbidden: {detail}", "FieldValueForbidden")


def duplicate(path: str, value: Any) -> Cause:
    return Cause(path, f"Duplicate value: {show(value)}", "FieldValueDuplicate")


def not_found(path: str, value: Any) -> Cause:
    return Cause(path, f"Not found: {show(value)}", "FieldValueNotFound")


def too_long(path: str, limit: int) -> Cause:
    return Cause(path, f"Too long: must have at most {limit} bytes", "FieldValueTooLong")


def type_invalid(path: str, expected: str) -> Cause:
    return Cause(path, f"must be {expected}", "FieldValueTypeInvalid")


def immutable(path: str, value: Any) -> Cause:
    return invalid(path, value, "field is immutable")


def child(path: str, key: str | int) -> str:
    """`spec` + `ports` -> `spec.ports`; `spec.ports` + 0 -> `spec.ports[0]`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


# --- value checks (return messages, like meta.dns_label_errors) --------------------------

def dns1035_label_errors(value: str) -> list[str]:
    if len(value) > 63 or not _DNS1035.match(value):
        return [("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                "start with an alphabetic character, and end with an alphanumeric character")]
    return []


def port_name_errors(value: str) -> list[str]:
    """An IANA service name: at most 15 characters, a letter, no `--`."""
    if (len(value) > 15 or not _IANA_SVC.match(value) or "--" in value
            or not any(c.isalpha() for c in value)):
        return [("must be no more than 15 characters, contain only lowercase alphanumerics or "
                "'-', contain at least one letter and no consecutive '-'")]
    return []


def config_key_errors(key: str) -> list[str]:
    if len(key) > 253 or not _CONFIG_KEY.match(key):
        return ["a valid config key must consist of alphanumeric characters, '-', '_' or '.'"]
    if key in (".", "..") or key.startswith(".."):
        return ["must not be '.' or '..' and must not start with '..'"]
    return []


STANDARD_FINALIZERS = ("kubernetes", "arktos", "orphan", "foregroundDeletion")


def finalizer_errors(value: str) -> list[str]:
    """A standard finalizer name or a qualified `domain/name`."""
    if "/" not in value:
        return [] if value in STANDARD_FINALIZERS else [
            "name is neither a standard finalizer name nor is it fully qualified"]
    return qualified_name_errors(value)


def path_segment_name_errors(value: str) -> list[str]:
    """RBAC names: anything usable as one URL path segment."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in "/%" if c in value]


def ip_errors(value: str) -> list[str]:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    return []


def time_errors(value: str) -> list[str]:
    """RFC 3339 time, with or without fractional seconds (Time and MicroTime)."""
    if _RFC3339.match(value):
        try:
            datetime.fromisoformat(value[:19])
            return []
        except ValueError:
            pass
    return ["must be an RFC 3339 time, e.g. 2006-01-02T15:04:05.000000Z"]


def base64_errors(value: str) -> list[str]:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ["must be base64 encoded"]
    return []


# --- typed access -------------------------------------------------------------------------

class Fields:
    """One JSON object at `path`; getters return typed values or record a Cause."""

    def __init__(self, value: Any, path: str, causes: list[Cause]) -> None:
        self.obj: dict[str, Any] = value if isinstance(value, dict) else {}
        self.path = path
        self.causes = causes

    @classmethod
    def of(cls, value: Any, path: str, causes: list[Cause], *,
           needed: bool = False) -> Fields | None:
        """The object at `path`, or None (with a Cause if required or not an object)."""
        if value is None:
            if needed:
                causes.append(required(path))
            return None
        if not isinstance(value, dict):
            causes.append(type_invalid(path, "an object"))
            return None
        return cls(value, path, causes)

    def at(self, key: str | int) -> str:
        """The path of a field of this object."""
        return child(self.path, key)

    def add(self, cause: Cause) -> None:
        self.causes.append(cause)

    def has(self, key: str) -> bool:
        """Whether the field is set to something non-empty."""
        return self.obj.get(key) not in (None, "", [], {})

    def sub(self, key: str, *, needed: bool = False) -> Fields | None:
        return Fields.of(self.obj.get(key), self.at(key), self.causes, needed=needed)

    def _typed(self, key: str, types: tuple[type, ...], what: str, needed: bool) -> Any:
        value = self.obj.get(key)
        if value is None or (value == "" and str in types):
            if needed:
                self.add(required(self.at(key)))
            return None
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            self.add(type_invalid(self.at(key), what))
            return None
        return value

    def string(self, key: str, *, needed: bool = False, check: NameCheck | None = None,
               ) -> str | None:
        """A non-empty string (empty counts as absent), optionally checked by `check`."""
        value: str | None = self._typed(key, (str,), "a string", needed)
        if value is not None and check is not None:
            for err in check(value):
                self.add(invalid(self.at(key), value, err))
        return value

    def integer(self, key: str, *, needed: bool = False, lo: int | None = None,
                hi: int | None = None) -> int | None:
        value: int | None = self._typed(key, (int,), "an integer", needed)
        if value is not None and not ((lo is None or value >= lo) and (hi is None or value <= hi)):
            self.add(invalid(self.at(key), value, range_message(lo, hi)))
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        value: bool | None = self._typed(key, (bool,), "a boolean", False)
        return value

    def choice(self, key: str, allowed: Iterable[str], *, needed: bool = False) -> str | None:
        """A string from `allowed` (NotSupported otherwise)."""
        value = self.string(key, needed=needed)
        allowed = tuple(allowed)
        if value is not None and value not in allowed:
            self.add(not_supported(self.at(key), value, allowed))
            return None
        return value

    def items(self, key: str, *, needed: bool = False) -> Iterator[tuple[str, Any]]:
        """(path, element) of a list field; a non-list records a Cause."""
        value = self.obj.get(key)
        if value is None or value == []:
            if needed:
                self.add(required(self.at(key)))
            return iter(())
        if not isinstance(value, list):
            self.add(type_invalid(self.at(key), "a list"))
            return iter(())
        return ((child(self.at(key), i), v) for i, v in enumerate(value))

    def objects(self, key: str, *, needed: bool = False) -> list[Fields]:
        """The objects of a list field; non-object elements record a Cause."""
        out = []
        for path, value in self.items(key, needed=needed):
            f = Fields.of(value, path, self.causes, needed=True)
            if f is not None:
                out.append(f)
        return out

    def strings(self, key: str, *, needed: bool = False,
                check: NameCheck | None = None) -> list[str]:
        """A list of strings, each optionally checked."""
        out = []
        for path, value in self.items(key, needed=needed):
            if not isinstance(value, str):
                self.add(type_invalid(path, "a string"))
                continue
            out.append(value)
            for err in check(value) if check else ():
                self.add(invalid(path, value, err))
        return out

    def mapping(self, key: str, *, needed: bool = False, keys: NameCheck | None = None,
                values: NameCheck | None = None) -> dict[str, str]:
        """A map of strings to strings; keys and values optionally checked."""
        value = self.obj.get(key)
        if value is None or value == {}:
            if needed:
                self.add(required(self.at(key)))
            return {}
        if not isinstance(value, dict):
            self.add(type_invalid(self.at(key), "a map of strings"))
            return {}
        out = {}
        for k, v in value.items():
            path = f"{self.at(key)}[{k}]"
            if not isinstance(v, str):
                self.add(type_invalid(path, "a string"))
                continue
            out[k] = v
            self.causes.extend(invalid(path, k, e) for e in (keys(str(k)) if keys else ()))
            self.causes.extend(invalid(path, v, e) for e in (values(v) if values else ()))
        return out

    def labels(self, key: str) -> dict[str, str]:
        """A map of label keys to label values."""
        return self.mapping(key, keys=qualified_name_errors, values=label_value_errors)

    def quantities(self, key: str) -> dict[str, Decimal]:
        """A resource list: qualified names to non-negative quantities."""
        value = self.obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(type_invalid(self.at(key), "a map of resource quantities"))
            return {}
        out = {}
        for name, q in value.items():
            path = f"{self.at(key)}[{name}]"
            self.causes.extend(invalid(path, name, e) for e in qualified_name_errors(name))
            try:
                amount = parse_quantity(q)
            except ValueError:
                self.add(invalid(path, q, QUANTITY_ERROR))
                continue
            if amount < 0:
                self.add(invalid(path, q, "must be greater than or equal to 0"))
                continue
            out[name] = amount
        return out

    def unique(self, fields: list[Fields], what: str) -> set[Any]:
        """Record a Duplicate for each repeated value of `what` among `fields`."""
        seen: set[Any] = set()
        for f in fields:
            value = f.obj.get(what)
            if isinstance(value, (str, int)) and value != "":
                if value in seen:
                    self.add(duplicate(f.at(what), value))
                seen.add(value)
        return seen


def range_message(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"must be between {lo} and {hi}, inclusive"
    if lo is not None:
        return "must be greater than 0" if lo == 1 else f"must be greater than or equal to {lo}"
    return f"must be less than or equal to {hi}"


# --- defaulting and columns ---------------------------------------------------------------

def section(obj: Any, *keys: str) -> dict[str, Any] | None:
    """The object at `obj[k1][k2]...`, creating missing levels; None if something else is there."""
    cur = obj
    for key in keys:
        if not isinstance(cur, dict):
            return None
        if cur.get(key) is None:
            cur[key] = {}
        cur = cur[key]
    return cur if isinstance(cur, dict) else None


def fill(obj: Any, key: str, value: Any) -> None:
    """Set `obj[key] = value` if `obj` is an object whose `key` is absent, null or ""."""
    if isinstance(obj, dict) and obj.get(key) in (None, ""):
        obj[key] = value


def dicts(value: Any) -> list[dict[str, Any]]:
    """The object elements of a list (nothing for non-lists)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def dig(obj: Any, *keys: str) -> Any:
    """`obj[k1][k2]...` or None if any level is missing or not an object."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def text(value: Any, empty: str = "<none>") -> str:
    """A cell: the value as a string, `empty` when absent or blank."""
    if value is None or value == "" or value == []:
        return empty
    return value if isinstance(value, str) else show(value)


def texts(value: Any) -> list[str]:
    """The non-empty strings of a list (nothing for non-lists)."""
    return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []


def count(value: Any) -> int:
    """Number of entries of a list or map (0 for anything else)."""
    return len(value) if isinstance(value, (list, dict)) else 0


def number(value: Any) -> int:
    """An integer cell: the value if it is an integer, else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
