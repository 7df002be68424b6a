"""`arkctl describe`: a readable summary of objects (metadata, spec and status fields,
conditions) and the Events about them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from arktos.api.resources import ResourceType
from arktos.apiserver.table import age
from arktos.cli.arkctl import output as out
from arktos.cli.arkctl.options import SelectorOpt, with_globals
from arktos.cli.arkctl.resolve import Target, complete_types, parse_targets, resolve_type
from arktos.cli.arkctl.session import Session, run
from arktos.cli.arkctl.threeway import LAST_APPLIED
from arktos.client.rest import ApiError

Obj = dict[str, Any]
Row = list[str]
_SKIP = ("apiVersion", "kind", "metadata", "spec", "status")
_PAIRS = ("labels", "annotations", "matchLabels", "nodeSelector", "selector")
"""Maps of user strings, shown as `key=value` lines."""
_RAW_KEYS = ("data", "stringData", "binaryData")
"""Maps whose keys are user data, shown as they are."""


def title(key: str) -> str:
    """`podIP` -> `Pod IP`, `restartPolicy` -> `Restart Policy` (kubectl's labels)."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).split(" ")
    return " ".join(w[:1].upper() + w[1:] for w in words)


def _timestamp(value: Any) -> str:
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return when.strftime("%a, %d %b %Y %H:%M:%S %z")


def _pairs(mapping: Any, skip: tuple[str, ...] = ()) -> list[str]:
    if not isinstance(mapping, dict):
        return []
    return [f"{k}={v}" if "\n" not in str(v) else f"{k}: {v!r}"
            for k, v in sorted(mapping.items()) if k not in skip]


def _multi(label: str, values: list[str], indent: str = "") -> Iterator[Row]:
    """`Label:  first` and the rest on lines of their own, aligned."""
    yield [f"{indent}{label}:", values[0] if values else "<none>"]
    for value in values[1:]:
        yield ["", value]


def header(rtype: ResourceType, obj: Obj) -> Iterator[Row]:
    """Name, tenant, namespace, labels, annotations, owner, deletion."""
    md = obj.get("metadata") or {}
    yield ["Name:", str(md.get("name", ""))]
    if rtype.tenanted:
        yield ["Tenant:", str(md.get("tenant", ""))]
    if rtype.namespaced:
        yield ["Namespace:", str(md.get("namespace", ""))]
    yield from _multi("Labels", _pairs(md.get("labels")))
    yield from _multi("Annotations", _pairs(md.get("annotations"), (LAST_APPLIED,)))
    yield ["CreationTimestamp:", _timestamp(md.get("creationTimestamp", ""))]
    owners = [o for o in md.get("ownerReferences") or [] if o.get("controller")]
    if owners:
        yield ["Controlled By:", f"{owners[0].get('kind')}/{owners[0].get('name')}"]
    if md.get("deletionTimestamp"):
        yield ["Deletion Timestamp:", _timestamp(md["deletionTimestamp"])]
    if md.get("finalizers"):
        yield ["Finalizers:", ", ".join(map(str, md["finalizers"]))]


def _scalar(value: Any) -> str:
    if value is None or value == "":
        return "<none>"
    return out.cell_text(value)


def _flat(value: Any) -> bool:
    return isinstance(value, dict) and all(not isinstance(v, (dict, list))
                                           for v in value.values())


def fields(value: Obj, indent: int = 0, raw_keys: bool = False) -> Iterator[Row]:
    """Nested fields as `Label:  value` rows, maps and lists of maps indented below."""
    pad = "  " * indent
    for key, item in value.items():
        label = key if raw_keys else title(key)
        if key in _PAIRS and _flat(item):
            yield from _multi(label, _pairs(item), pad)
        elif key in _RAW_KEYS and isinstance(item, dict) and item:
            yield [f"{pad}{label}:"]
            yield from fields(item, indent + 1, raw_keys=True)
        elif isinstance(item, dict) and item:
            yield [f"{pad}{label}:"]
            yield from fields(item, indent + 1)
        elif isinstance(item, list) and any(isinstance(i, dict) for i in item):
            yield [f"{pad}{label}:"]
            yield from _items(item, indent + 1)
        elif isinstance(item, list):
            yield [f"{pad}{label}:", ", ".join(map(_scalar, item)) or "<none>"]
        else:
            yield [f"{pad}{label}:", _scalar(item)]


def _items(items: list[Any], indent: int) -> Iterator[Row]:
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            yield ["  " * indent + _scalar(item)]
            continue
        heading = str(item.get("name") or f"[{i}]")
        yield ["  " * indent + f"{heading}:"]
        yield from fields({k: v for k, v in item.items() if k != "name"}, indent + 1)


def conditions(status: Obj) -> Iterator[Row]:
    """status.conditions as a table."""
    conds = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    if not conds:
        return
    yield ["Conditions:"]
    yield ["  Type", "Status", "Reason", "Message"]
    yield ["  ----", "------", "------", "-------"]
    for c in conds:
        yield ["  " + str(c.get("type", "")), str(c.get("status", "")),
               str(c.get("reason") or ""), str(c.get("message") or "")]


def body(rtype: ResourceType, obj: Obj) -> Iterator[Row]:
    """Spec, status (conditions as a table) and the kind's other top-level fields."""
    for key, value in obj.items():
        if key in _SKIP or value in (None, {}, []):
            continue
        if rtype.kind == "Secret" and key in ("data", "stringData") and isinstance(value, dict):
            value = {k: f"{len(str(v))} bytes" for k, v in value.items()}
        yield from fields({key: value})
    if obj.get("spec"):
        yield from fields({"spec": obj["spec"]})
    status = obj.get("status")
    if isinstance(status, dict):
        rest = {k: v for k, v in status.items() if k != "conditions"}
        if rest:
            yield from fields({"status": rest})
        yield from conditions(status)


def _event_age(ev: Obj, now: datetime) -> str:
    md = ev.get("metadata") or {}
    last = ev.get("lastTimestamp") or ev.get("eventTime") or md.get("creationTimestamp")
    first = ev.get("firstTimestamp") or last
    count = ev.get("count") or 1
    if isinstance(count, int) and count > 1:
        return f"{age(last, now)} (x{count} over {age(first, now)})"
    return age(last, now)


def events_rows(events: list[Obj]) -> Iterator[Row]:
    """The Events section (kubectl's columns)."""
    if not events:
        yield ["Events:", "<none>"]
        return
    now = datetime.now(UTC)
    yield ["Events:"]
    yield ["  Type", "Reason", "Age", "From", "Message"]
    yield ["  ----", "------", "----", "----", "-------"]
    for ev in events:
        source = ev.get("source") or {}
        origin = ev.get("reportingComponent") or source.get("component") or ""
        yield ["  " + str(ev.get("type", "")), str(ev.get("reason", "")), _event_age(ev, now),
               str(origin), str(ev.get("message", "")).strip()]


def render(rows: Iterator[Row]) -> str:
    """Rows aligned in runs (kubectl's tabwriter: a row without a value ends a run)."""
    lines: list[str] = []
    run_rows: list[Row] = []
    for row in [*rows, []]:
        if len(row) > 1:
            run_rows.append(row)
            continue
        lines += out.pad_cells(run_rows, padding=2, min_width=0)
        run_rows = []
        if row:
            lines.append(row[0])
    return "".join(line + "\n" for line in lines)


async def _events(session: Session, rtype: ResourceType, obj: Obj) -> list[Obj]:
    md = obj.get("metadata") or {}
    selector = f"involvedObject.name={md.get('name')}"
    if rtype.namespaced:
        selector += f",involvedObject.namespace={md.get('namespace')}"
    else:
        selector += f",involvedObject.kind={rtype.kind}"
    listed = await session.resource(resolve_type("events")).list(
        namespace=md.get("namespace", "") if rtype.namespaced else "",
        tenant=md.get("tenant") or None, field_selector=selector)
    key = "lastTimestamp"
    return sorted(listed.items, key=lambda e: str(e.get(key) or e.get("eventTime") or ""))


async def _objects(session: Session, target: Target, selector: str) -> list[Obj]:
    client = session.resource(target.rtype)
    if not target.names:
        scope = session.list_scope(target.rtype)
        return (await client.list(namespace=scope.namespace, tenant=scope.tenant,
                                  label_selector=selector)).items
    found = []
    for name in target.names:
        try:
            found.append(await client.get(name,
                                          namespace=session.object_namespace(target.rtype)))
        except ApiError as exc:
            session.failures.report(exc)
    return found


async def _describe(session: Session, args: list[str], selector: str) -> None:
    texts = []
    for target in parse_targets(args, "describe"):
        for obj in await _objects(session, target, selector):
            events = await _events(session, target.rtype, obj)
            rows = [*header(target.rtype, obj), *body(target.rtype, obj), *events_rows(events)]
            texts.append(render(iter(rows)))
    out.write("\n\n".join(texts))


def register(app: typer.Typer) -> None:
    """Add `describe` to the app."""
    @app.command()
    @with_globals()
    def describe(args: Annotated[list[str], typer.Argument(
            help="TYPE [NAME...] or TYPE/NAME...", autocompletion=complete_types,
            metavar="TYPE [NAME...]")],
            selector: SelectorOpt = "") -> None:
        """Show details of a resource or group of resources, with their events."""
        run(lambda s: _describe(s, args, selector))
