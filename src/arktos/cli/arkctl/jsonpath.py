"""kubectl's JSONPath templates (`-o jsonpath=...`), the common subset: `{.a.b}`, `[n]`,
`[a:b]`, `[*]`, `['key']`, `..key`, `[?(@.k=="v")]`, `{range ...}{end}`, `{"literal"}`.
Missing keys print nothing (kubectl's default `--allow-missing-template-keys`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from arktos.cli.arkctl.errors import CliError

_FILTER = re.compile(r"^\s*(@[^=!<>]*?)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


@dataclass
class _Node:
    kind: str  # text | path | range
    value: str
    body: list[_Node]


def _actions(template: str) -> Iterator[tuple[str, str]]:
    """("text", s) and ("action", inside-the-braces) pieces of a template."""
    pos = 0
    for match in re.finditer(r"\{((?:[^{}\"]|\"(?:[^\"\\]|\\.)*\")*)\}", template):
        if match.start() > pos:
            yield "text", template[pos:match.start()]
        yield "action", match.group(1).strip()
        pos = match.end()
    if pos < len(template):
        yield "text", template[pos:]


def parse(template: str) -> list[_Node]:
    """A template as text, path and range nodes."""
    root: list[_Node] = []
    stack = [root]
    for kind, value in _actions(template):
        if kind == "text":
            stack[-1].append(_Node("text", value, []))
        elif value.startswith("range "):
            node = _Node("range", value[6:].strip(), [])
            stack[-1].append(node)
            stack.append(node.body)
        elif value == "end":
            if len(stack) == 1:
                raise CliError("error parsing jsonpath: not in range, nothing to end")
            stack.pop()
        elif value.startswith('"') and value.endswith('"') and len(value) > 1:
            text = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), value[1:-1])
            stack[-1].append(_Node("text", text, []))
        else:
            stack[-1].append(_Node("path", value, []))
    if len(stack) != 1:
        raise CliError("error parsing jsonpath: unclosed range")
    return root


def _bracket_end(path: str, start: int) -> int:
    depth, quote = 0, ""
    for i in range(start, len(path)):
        ch = path[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth == 0:
                return i
    raise CliError(f"error parsing jsonpath {path}: unterminated [")


def steps(path: str) -> list[tuple[str, str]]:
    """A path as (op, argument) steps: key, recurse, bracket."""
    out: list[tuple[str, str]] = []
    i = 1 if path[:1] in ("$", "@") else 0
    while i < len(path):
        if path.startswith("..", i) or path[i] == ".":
            op = "recurse" if path.startswith("..", i) else "key"
            i += 2 if op == "recurse" else 1
            match = re.match(r"[^.\[]*", path[i:])
            name = match.group(0) if match else ""
            out.append((op, name))
            i += len(name)
        elif path[i] == "[":
            end = _bracket_end(path, i)
            out.append(("bracket", path[i + 1:end].strip()))
            i = end + 1
        else:
            raise CliError(f"error parsing jsonpath {{{path}}}: unexpected {path[i]!r}")
    return out


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, list) else []


def _descendants(value: Any) -> Iterator[Any]:
    yield value
    for child in _children(value):
        yield from _descendants(child)


def _literal(text: str, current: Any) -> Any:
    text = text.strip()
    if text[:1] in ("'", '"'):
        return text[1:-1]
    if text.startswith("@"):
        found = evaluate(text, current)
        return found[0] if found else None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _matches(cond: str, item: Any) -> bool:
    match = _FILTER.match(cond)
    if not match:
        raise CliError(f"error parsing jsonpath filter {cond}")
    left, op, right = match.groups()
    found = evaluate(left, item)
    if op is None:
        return bool(found)
    if not found:
        return False
    a, b = found[0], _literal(right, item)
    try:
        return bool({"==": a == b, "!=": a != b}[op]) if op in ("==", "!=") else bool(
            {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op])
    except TypeError:
        return False


def _index(arg: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        return []
    if ":" in arg:
        parts = [int(p) if p.strip() else None for p in arg.split(":")]
        return value[slice(*parts)]
    i = int(arg)
    return [value[i]] if -len(value) <= i < len(value) else []


def _bracket(arg: str, value: Any) -> list[Any]:
    if arg == "*":
        return _children(value)
    if arg.startswith("?(") and arg.endswith(")"):
        return [item for item in _children(value) if _matches(arg[2:-1], item)]
    if arg[:1] in ("'", '"'):
        key = arg[1:-1]
        return [value[key]] if isinstance(value, dict) and key in value else []
    try:
        return _index(arg, value)
    except ValueError:
        raise CliError(f"error parsing jsonpath: bad index [{arg}]") from None


def _step(op: str, arg: str, value: Any) -> list[Any]:
    if op == "bracket":
        return _bracket(arg, value)
    if op == "recurse":
        return [d[arg] for d in _descendants(value) if isinstance(d, dict) and arg in d]
    if arg in ("", "*"):
        return [value] if not arg else _children(value)
    return [value[arg]] if isinstance(value, dict) and arg in value else []


def evaluate(path: str, current: Any) -> list[Any]:
    """Every value `path` selects in `current`."""
    values = [current]
    for op, arg in steps(path):
        values = [out for v in values for out in _step(op, arg, v)]
    return values


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"))


def _render(nodes: list[_Node], current: Any) -> str:
    out = []
    for node in nodes:
        if node.kind == "text":
            out.append(node.value)
        elif node.kind == "path":
            out.append(" ".join(_text(v) for v in evaluate(node.value, current)))
        else:
            for item in evaluate(node.value, current):
                out.append(_render(node.body, item))
    return "".join(out)


def render(template: str, doc: Any) -> str:
    """The template applied to `doc` (no newline added, as kubectl)."""
    return _render(parse(template), doc)
