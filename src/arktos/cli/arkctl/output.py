"""Output formatting: kubectl's aligned plain-text tables (from the server's `Table`), and
-o yaml|json|name|jsonpath=... of objects and lists."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from arktos.api.resources import ResourceType
from arktos.cli.arkctl import jsonpath
from arktos.cli.arkctl.errors import CliError
from arktos.cli.arkctl.resolve import object_ref

Obj = dict[str, Any]
FORMATS = ("table", "wide", "yaml", "json", "name", "jsonpath=TEMPLATE")


def pad_cells(rows: Sequence[Sequence[str]], *, padding: int = 3, min_width: int = 6,
              widths: list[int] | None = None) -> list[str]:
    """Go's tabwriter as kubectl configures it: each column but the last is as wide as its
    widest cell plus `padding` (at least `min_width`). `widths` carries over between calls
    and grows (watch output stays aligned)."""
    widths = widths if widths is not None else []
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            need = max(len(cell) + padding, min_width)
            if i == len(widths):
                widths.append(need)
            elif need > widths[i]:
                widths[i] = need
    return ["".join(c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row))
            .rstrip() for row in rows]


def cell_text(value: Any) -> str:
    """A table cell as kubectl prints it (`%v`)."""
    if value is None:
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def labels_text(labels: Any) -> str:
    """`k=v,k2=v2` (sorted), or `<none>`."""
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


Extra = Callable[[Obj], str]
"""A column computed from a row's object (metadata at least)."""


@dataclass
class TableOptions:
    """How server tables are turned into text."""

    wide: bool = False
    prefix: list[tuple[str, Extra]] = field(default_factory=list)
    """Columns before NAME (TENANT, NAMESPACE)."""
    suffix: list[tuple[str, Extra]] = field(default_factory=list)
    """Columns after the server's (LABELS)."""
    kind_prefix: str = ""
    """`pod/` when several types are printed."""


def _row_object(row: Obj) -> Obj:
    obj = row.get("object")
    return obj if isinstance(obj, dict) else {}


def table_rows(table: Obj, opts: TableOptions, *, headers: bool = True) -> list[list[str]]:
    """The server Table's rows as text cells (with a header row when `headers`)."""
    defs = table.get("columnDefinitions") or []
    shown = [i for i, d in enumerate(defs) if opts.wide or not d.get("priority")]
    names = [i for i in shown if defs[i].get("format") == "name"] or shown[:1]
    out: list[list[str]] = []
    if headers:
        out.append([h for h, _ in opts.prefix] + [str(defs[i].get("name", "")).upper()
                                                  for i in shown] + [h for h, _ in opts.suffix])
    for row in table.get("rows") or []:
        cells, obj = row.get("cells") or [], _row_object(row)
        text = [cell_text(cells[i]) if i < len(cells) else "" for i in shown]
        for pos, i in enumerate(shown):
            if i in names and opts.kind_prefix:
                text[pos] = opts.kind_prefix + text[pos]
        out.append([f(obj) for _, f in opts.prefix] + text + [f(obj) for _, f in opts.suffix])
    return out


def merge_tables(tables: Iterable[Obj]) -> Obj:
    """One Table with the rows of several (same columns), e.g. `get pod a b`."""
    merged: Obj = {}
    for table in tables:
        if not merged:
            merged = {**table, "rows": list(table.get("rows") or [])}
        else:
            merged["rows"] += table.get("rows") or []
    return merged


class _Dumper(yaml.SafeDumper):
    """YAML as kubectl prints it: double quotes where quoting is needed, `|` blocks for
    multi-line strings, sorted keys, no line folding."""

    def choose_scalar_style(self) -> Any:
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data and data == data.rstrip(" ") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False,
                     width=1 << 30, allow_unicode=True)


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=4, ensure_ascii=False) + "\n"


def as_list(items: list[Obj]) -> Obj:
    """kubectl's `List` wrapper for -o json|yaml of several objects."""
    return {"apiVersion": "v1", "items": items, "kind": "List",
            "metadata": {"resourceVersion": ""}}


def check_format(output: str) -> str:
    """Validate `-o`; returns it normalized (`table` for none)."""
    output = output or "table"
    if output in ("table", "wide", "yaml", "json", "name") or output.startswith("jsonpath="):
        return output
    raise CliError(f'unable to match a printer suitable for the output format "{output}", '
                   f"allowed formats are: {','.join(FORMATS)}")


def render(objs: list[Obj], output: str, *, single: bool, rtypes: list[ResourceType]) -> str:
    """-o yaml|json|name|jsonpath of objects (`single`: one object asked for by name)."""
    doc: Any = objs[0] if single and len(objs) == 1 else as_list(objs)
    if output == "yaml":
        return to_yaml(doc)
    if output == "json":
        return to_json(doc)
    if output.startswith("jsonpath="):
        return jsonpath.render(output.removeprefix("jsonpath="), doc)
    return "".join(object_ref(t, o["metadata"]["name"]) + "\n" for t, o in zip(rtypes, objs,
                                                                                strict=True))


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
