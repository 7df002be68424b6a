"""`arkctl get`: server-side tables (as kubectl asks for them), -o yaml|json|name|jsonpath,
selectors, several types at once, across namespaces (-A) and tenants (-T), and -w watches."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, replace
from typing import Annotated, Any

import typer

from arktos.api.resources import ResourceType
from arktos.cli.arkctl import output as out
from arktos.cli.arkctl.errors import CliError
from arktos.cli.arkctl.options import FieldSelectorOpt, SelectorOpt, with_globals
from arktos.cli.arkctl.resolve import Target, complete_types, object_ref, parse_targets
from arktos.cli.arkctl.session import TABLE, Session, run
from arktos.client.rest import ApiError

Obj = dict[str, Any]


@dataclass(frozen=True)
class GetOptions:
    output: str = "table"
    selector: str = ""
    field_selector: str = ""
    show_labels: bool = False
    watch_only: bool = False
    no_headers: bool = False


def _meta(key: str) -> out.Extra:
    return lambda obj: str((obj.get("metadata") or {}).get(key) or "")


def table_options(session: Session, rtype: ResourceType, opts: GetOptions,
                  several: bool) -> out.TableOptions:
    """TENANT/NAMESPACE columns under -T/-A, LABELS under --show-labels."""
    prefix: list[tuple[str, out.Extra]] = []
    if session.flags.all_tenants and rtype.tenanted:
        prefix.append(("TENANT", _meta("tenant")))
    if (session.flags.all_namespaces or session.flags.all_tenants) and rtype.namespaced:
        prefix.append(("NAMESPACE", _meta("namespace")))
    suffix: list[tuple[str, out.Extra]] = []
    if opts.show_labels:
        suffix.append(("LABELS", lambda o: out.labels_text(_meta_dict(o, "labels"))))
    return out.TableOptions(wide=opts.output == "wide", prefix=prefix, suffix=suffix,
                            kind_prefix=object_ref(rtype, "") if several else "")


def _meta_dict(obj: Obj, key: str) -> Any:
    return (obj.get("metadata") or {}).get(key)


def _selectors(opts: GetOptions, name: str = "") -> dict[str, str]:
    fields = [f for f in (opts.field_selector, f"metadata.name={name}" if name else "") if f]
    return {"labelSelector": opts.selector, "fieldSelector": ",".join(fields)}


async def fetch_table(session: Session, target: Target, opts: GetOptions) -> Obj:
    """The server's Table for a target (names fetched one by one; errors reported)."""
    client = session.resource(target.rtype)
    if not target.names:
        scope = session.list_scope(target.rtype)
        path = client.path(tenant=scope.tenant, namespace=scope.namespace)
        table: Obj = await session.get(path, _selectors(opts), accept=TABLE)
        return table
    namespace = session.object_namespace(target.rtype)
    tables = []
    for name in target.names:
        try:
            tables.append(await session.get(client.path(namespace=namespace, name=name),
                                             accept=TABLE))
        except ApiError as exc:
            session.failures.report(exc)
    return out.merge_tables(tables)


async def fetch_objects(session: Session, target: Target, opts: GetOptions) -> list[Obj]:
    """The objects of a target (names fetched one by one; errors reported)."""
    rtype, client = target.rtype, session.resource(target.rtype)
    if not target.names:
        scope = session.list_scope(rtype)
        listed = await client.list(namespace=scope.namespace, tenant=scope.tenant,
                                   label_selector=opts.selector,
                                   field_selector=opts.field_selector, limit=500)
        items = listed.items
    else:
        namespace, items = session.object_namespace(rtype), []
        for name in target.names:
            try:
                items.append(await client.get(name, namespace=namespace))
            except ApiError as exc:
                session.failures.report(exc)
    for item in items:
        item.setdefault("apiVersion", rtype.group_version)
        item.setdefault("kind", rtype.kind)
    return items


async def _print_tables(session: Session, targets: list[Target], opts: GetOptions) -> None:
    printed = 0
    for target in targets:
        table = await fetch_table(session, target, opts)
        if not table.get("rows"):
            continue
        topts = table_options(session, target.rtype, opts, len(targets) > 1)
        lines = out.pad_cells(out.table_rows(table, topts, headers=not opts.no_headers))
        out.write(("\n" if printed else "") + "".join(line + "\n" for line in lines))
        printed += 1
    if not printed and not any(t.names for t in targets):
        print(session.empty_message(targets[0].rtype), file=sys.stderr)


async def _print_objects(session: Session, targets: list[Target], opts: GetOptions) -> None:
    objs: list[Obj] = []
    rtypes: list[ResourceType] = []
    for target in targets:
        found = await fetch_objects(session, target, opts)
        objs += found
        rtypes += [target.rtype] * len(found)
    asked = sum(len(t.names) for t in targets)
    if not objs and (asked or opts.output not in ("json", "yaml")):
        if not asked:
            print(session.empty_message(targets[0].rtype), file=sys.stderr)
        return
    single = asked == 1 and len(targets) == 1
    out.write(out.render(objs, opts.output, single=single, rtypes=rtypes))


async def _get(session: Session, args: list[str], opts: GetOptions) -> None:
    targets = parse_targets(args)
    if opts.output in ("table", "wide"):
        await _print_tables(session, targets, opts)
    else:
        await _print_objects(session, targets, opts)


class _WatchPrinter:
    """Prints a watch's events: table rows kept aligned, or objects."""

    def __init__(self, session: Session, rtype: ResourceType, opts: GetOptions) -> None:
        self.session, self.rtype, self.opts = session, rtype, opts
        self.table = opts.output in ("table", "wide")
        self.widths: list[int] = []

    def rows(self, table: Obj, headers: bool) -> None:
        """Print a table's rows (aligned with what was printed before)."""
        topts = table_options(self.session, self.rtype, self.opts, False)
        lines = out.pad_cells(out.table_rows(table, topts, headers=headers), widths=self.widths)
        out.write("".join(line + "\n" for line in lines))

    def objects(self, objs: list[Obj]) -> None:
        """Print objects in the -o format."""
        for obj in objs:
            text = out.render([obj], self.opts.output, single=True, rtypes=[self.rtype])
            sep = "---\n" if self.opts.output == "yaml" else ""
            out.write(sep + text + ("\n" if self.opts.output.startswith("jsonpath=") else ""))

    def event(self, obj: Obj) -> str:
        """Print one event's object; returns its resourceVersion."""
        if self.table:
            self.rows(obj, headers=False)
            rows = obj.get("rows") or [{}]
            obj = rows[0].get("object") or {}
        else:
            self.objects([obj])
        return str((obj.get("metadata") or {}).get("resourceVersion") or "")


async def _initial(session: Session, printer: _WatchPrinter, target: Target, path: str,
                   opts: GetOptions) -> str:
    """List (and unless --watch-only print) the current state; returns its version."""
    name = target.names[0] if target.names else ""
    if printer.table:
        table = await session.get(path, _selectors(opts, name), accept=TABLE)
        if not opts.watch_only and table.get("rows"):
            printer.rows(table, headers=not opts.no_headers)
        return str((table.get("metadata") or {}).get("resourceVersion") or "")
    raw = await session.get(path, _selectors(opts, name))
    if not opts.watch_only:
        printer.objects(list(raw.get("items") or []))
    return str((raw.get("metadata") or {}).get("resourceVersion") or "")


async def _watch(session: Session, args: list[str], opts: GetOptions) -> None:
    targets = parse_targets(args)
    if len(targets) != 1 or len(targets[0].names) > 1:
        raise CliError("watch is only supported on individual resources and resource "
                       "collections, but several resources were given")
    target, printer = targets[0], _WatchPrinter(session, targets[0].rtype, opts)
    client = session.resource(target.rtype)
    if target.names:
        path = client.path(namespace=session.object_namespace(target.rtype))
    else:
        scope = session.list_scope(target.rtype)
        path = client.path(tenant=scope.tenant, namespace=scope.namespace)
    version = await _initial(session, printer, target, path, opts)
    deadline = time.monotonic() + session.timeout if session.timeout else None
    name = target.names[0] if target.names else ""
    while deadline is None or (left := deadline - time.monotonic()) > 0:
        params: dict[str, Any] = {**_selectors(opts, name), "watch": "1",
                                  "resourceVersion": version, "allowWatchBookmarks": True}
        if deadline is not None:
            params["timeoutSeconds"] = max(1, math.ceil(left))
        async for event in session.lines(path, params, accept=TABLE if printer.table else
                                         "application/json"):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                raise ApiError.from_status(500, obj)
            if kind == "BOOKMARK":
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                continue
            version = printer.event(obj) or version


OutputOpt = Annotated[str, typer.Option(
    "--output", "-o", metavar="FORMAT",
    help="table (default), wide, yaml, json, name, jsonpath=TEMPLATE.",
    show_default=False)]
TypesArg = Annotated[list[str] | None, typer.Argument(
    help="TYPE[,TYPE...] [NAME...] or TYPE/NAME...", autocompletion=complete_types,
    show_default=False, metavar="TYPE [NAME...]")]


def register(app: typer.Typer) -> None:
    """Add `get` to the app."""
    @app.command()
    @with_globals()
    def get(args: TypesArg = None, output: OutputOpt = "", selector: SelectorOpt = "",
            field_selector: FieldSelectorOpt = "",
            watch: Annotated[bool, typer.Option(
                "--watch", "-w", help="After listing, watch for changes (Ctrl-C stops; "
                "--request-timeout ends it).")] = False,
            watch_only: Annotated[bool, typer.Option(
                "--watch-only", help="Watch for changes without listing first.")] = False,
            show_labels: Annotated[bool, typer.Option(
                "--show-labels", help="Show all labels as the last column.")] = False,
            no_headers: Annotated[bool, typer.Option(
                "--no-headers", help="Tables without their header row.")] = False) -> None:
        """Display one or many resources."""
        opts = GetOptions(output, selector, field_selector, show_labels, watch_only, no_headers)

        async def body(session: Session) -> None:
            checked = replace(opts, output=out.check_format(opts.output))
            if watch or watch_only:
                await _watch(session, args or [], checked)
            else:
                await _get(session, args or [], checked)

        run(body, interrupted=0 if watch or watch_only else 130)
