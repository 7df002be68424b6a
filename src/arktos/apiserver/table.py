"""Server-side printing: objects to a `meta.k8s.io/v1` `Table`, as `kubectl get` asks for.

Pure functions, no I/O. Columns are Name, the kind's priority-0 columns, Age, then the
kind's wide (priority > 0) columns, the order kube-apiserver's printers use.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from arktos.api.meta import parse_time
from arktos.api.resources import Column, ResourceType

Doc = dict[str, Any]
NONE = "<none>"
UNKNOWN = "<unknown>"
INCLUDE_OBJECT = ("None", "Metadata", "Object")
_NAME_DOC = ("Name is unique within a namespace, a tenant or the cluster, depending on the "
             "kind's scope.")
_AGE_DOC = ("CreationTimestamp is a timestamp representing the server time when this object "
            "was created.")
_LIST_META_KEYS = ("resourceVersion", "continue", "remainingItemCount")
_GETTER_ERRORS = (LookupError, TypeError, AttributeError, ValueError)


def human_duration(seconds: float) -> str:
    """kubectl's `duration.HumanDuration`: about two significant units, e.g. `90s`, `5m30s`,
    `95m`, `3h4m`, `20h`, `2d3h`, `30d`, `2y14d`; `<invalid>` below -1s, `0s` just below 0."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if minutes < 10:
        return _two(minutes, "m", s % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return _two(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _two(days, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        return _two(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _two(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    return f"{major}{major_unit}{minor}{minor_unit}" if minor else f"{major}{major_unit}"


def age(timestamp: Any, now: datetime) -> str:
    """HumanDuration since an RFC 3339 timestamp; `<unknown>` when absent or malformed."""
    then = parse_time(timestamp)
    if then is None:
        return UNKNOWN
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return human_duration((now - then).total_seconds())


def _ordered_columns(rtype: ResourceType) -> tuple[list[Column], list[Column]]:
    """The kind's (priority-0, wide) columns, minus any Name/Age it declares itself."""
    own = [c for c in rtype.columns if c.name.lower() not in ("name", "age")]
    return [c for c in own if c.priority == 0], [c for c in own if c.priority != 0]


def _definition(name: str, type_: str, fmt: str, description: str, priority: int) -> Doc:
    return {"name": name, "type": type_, "format": fmt, "description": description,
            "priority": priority}


def _definitions(columns: list[Column]) -> list[Doc]:
    return [_definition(c.name, c.type, c.format, c.description, c.priority) for c in columns]


def column_definitions(rtype: ResourceType) -> list[Doc]:
    """`TableColumnDefinition`s: Name, the kind's columns, Age, the kind's wide columns."""
    main, wide = _ordered_columns(rtype)
    return [_definition("Name", "string", "name", _NAME_DOC, 0), *_definitions(main),
            _definition("Age", "string", "", _AGE_DOC, 0), *_definitions(wide)]


def cell(column: Column, obj: Doc, now: datetime) -> Any:
    """One cell: the getter's value; `<none>` when it fails or gives None or ""; numbers and
    booleans as they are; `date` columns as an age."""
    try:
        value = column.get(obj)
    except _GETTER_ERRORS:
        return NONE
    if column.type == "date" and value not in (None, ""):
        return age(value, now)
    return NONE if value is None or value == "" else value


def _row_object(obj: Doc, include_object: str) -> Doc | None:
    if include_object == "Object":
        return obj
    if include_object == "Metadata":
        return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata") or {}}
    return None


def _row(rtype: ResourceType, obj: Doc, now: datetime, include_object: str) -> Doc:
    main, wide = _ordered_columns(rtype)
    metadata = obj.get("metadata") or {}
    cells = [metadata.get("name", ""), *(cell(c, obj, now) for c in main),
             age(metadata.get("creationTimestamp"), now), *(cell(c, obj, now) for c in wide)]
    row: Doc = {"cells": cells}
    partial = _row_object(obj, include_object)
    if partial is not None:
        row["object"] = partial
    return row


def to_table(rtype: ResourceType, objects: list[Doc], *, now: datetime,
             include_object: str = "Metadata", list_meta: Doc | None = None) -> Doc:
    """A `meta.k8s.io/v1` Table of `objects` (one row each, in order). `include_object` is
    `None`, `Metadata` (rows carry a PartialObjectMetadata) or `Object` (the full object);
    anything else raises ValueError (a 400 upstream). `list_meta` gives resourceVersion,
    continue and remainingItemCount."""
    if include_object not in INCLUDE_OBJECT:
        raise ValueError(f"includeObject must be one of {', '.join(INCLUDE_OBJECT)}, "
                         f"not {include_object!r}")
    meta = {k: v for k, v in (list_meta or {}).items()
            if k in _LIST_META_KEYS and v not in (None, "")}
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": column_definitions(rtype),
        "rows": [_row(rtype, obj, now, include_object) for obj in objects],
    }
