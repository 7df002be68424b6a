"""PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and, via
`arktos.api.strategic`, Kubernetes strategic merge patch; `apply_patch` picks one by media type.

Nothing here mutates its inputs: results are fresh objects. Errors are `StatusError`s:
- a malformed body (bad JSON, a JSON patch that is not a list of well-formed operations, a bad
  JSON pointer, a malformed strategic directive) -> 400 BadRequest;
- a JSON patch that does not apply (missing path, out-of-range index, failing `test`, moving a
  value into itself) -> 422 Invalid, as kube-apiserver answers;
- an unknown patch media type, or server-side apply -> 415 UnsupportedMediaType.

No I/O here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson

from arktos.api.errors import StatusError, bad_request
from arktos.api.strategic import strategic_merge_patch

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)

__all__ = ["APPLY_PATCH", "JSON_PATCH", "MERGE_PATCH", "PATCH_TYPES", "STRATEGIC_MERGE_PATCH",
           "apply_patch", "json_equal", "json_patch", "merge_patch", "strategic_merge_patch"]


# ------------------------------------------------------------------------------- merge patch

def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes a member, anything else replaces."""
    return _merge_into(copy.deepcopy(target), patch)


def _merge_into(target: Any, patch: Any) -> Any:
    """Merge `patch` into `target`, which the caller owns and may be mutated."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_into(result.get(key), value)
    return result


# -------------------------------------------------------------------------------- JSON patch

def _unprocessable(message: str) -> StatusError:
    return StatusError(422, "Invalid", f"the JSON patch could not be applied: {message}")


def json_equal(a: Any, b: Any) -> bool:
    """JSON value equality: numbers compare by value, but booleans are not numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _pointer(text: Any, member: str) -> list[str]:
    """RFC 6901 reference tokens of a JSON pointer ("" is the whole document)."""
    if not isinstance(text, str):
        raise bad_request(f'json patch: "{member}" must be a string')
    if text and not text.startswith("/"):
        raise bad_request(f'json patch: invalid JSON pointer "{text}": must start with "/"')
    tokens = text.split("/")[1:]
    for tok in tokens:
        if "~" in tok.replace("~0", "").replace("~1", ""):
            raise bad_request(f'json patch: invalid escape "~" in JSON pointer "{text}"')
    return [tok.replace("~1", "/").replace("~0", "~") for tok in tokens]


def _show(path: list[str]) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in path)


def _index(token: str, size: int, path: list[str], *, insert: bool) -> int:
    """A list index; `insert` admits `size` and "-" (append)."""
    if token == "-" and insert:
        return size
    if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
        raise _unprocessable(f'invalid array index "{token}" in path "{_show(path)}"')
    index = int(token)
    if index > size or (index == size and not insert):
        raise _unprocessable(f'array index {index} out of range in path "{_show(path)}"')
    return index


def _get(doc: Any, path: list[str]) -> Any:
    """The value at `path`; 422 when it does not exist."""
    value = doc
    for i, tok in enumerate(path):
        if isinstance(value, dict):
            if tok not in value:
                raise _unprocessable(f'path "{_show(path[:i + 1])}" does not exist')
            value = value[tok]
        elif isinstance(value, list):
            value = value[_index(tok, len(value), path[:i + 1], insert=False)]
        else:
            raise _unprocessable(f'path "{_show(path[:i + 1])}" does not exist')
    return value


def _container(doc: Any, path: list[str]) -> dict[str, Any] | list[Any]:
    parent = _get(doc, path[:-1])
    if not isinstance(parent, dict | list):
        raise _unprocessable(f'path "{_show(path[:-1])}" is not an object or an array')
    return parent


def _add(doc: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _container(doc, path)
    if isinstance(parent, dict):
        parent[path[-1]] = value
    else:
        parent.insert(_index(path[-1], len(parent), path, insert=True), value)
    return doc


def _remove(doc: Any, path: list[str]) -> tuple[Any, Any]:
    """(new document, removed value)."""
    if not path:
        raise _unprocessable("the whole document cannot be removed")
    parent = _container(doc, path)
    if isinstance(parent, dict):
        if path[-1] not in parent:
            raise _unprocessable(f'path "{_show(path)}" does not exist')
        return doc, parent.pop(path[-1])
    return doc, parent.pop(_index(path[-1], len(parent), path, insert=False))


def _op_add(doc: Any, op: dict[str, Any]) -> Any:
    return _add(doc, _pointer(op["path"], "path"), copy.deepcopy(_member(op, "value")))


def _op_remove(doc: Any, op: dict[str, Any]) -> Any:
    return _remove(doc, _pointer(op["path"], "path"))[0]


def _op_replace(doc: Any, op: dict[str, Any]) -> Any:
    path = _pointer(op["path"], "path")
    value = copy.deepcopy(_member(op, "value"))
    if not path:
        return value
    parent = _container(doc, path)
    if isinstance(parent, list):
        parent[_index(path[-1], len(parent), path, insert=False)] = value
    elif path[-1] in parent:
        parent[path[-1]] = value
    else:
        raise _unprocessable(f'path "{_show(path)}" does not exist')
    return doc


def _op_move(doc: Any, op: dict[str, Any]) -> Any:
    source = _pointer(_member(op, "from"), "from")
    path = _pointer(op["path"], "path")
    if path[:len(source)] == source and len(path) > len(source):
        raise _unprocessable(f'cannot move "{_show(source)}" into its own child "{_show(path)}"')
    if path == source:
        _get(doc, source)
        return doc
    doc, value = _remove(doc, source)
    return _add(doc, path, value)


def _op_copy(doc: Any, op: dict[str, Any]) -> Any:
    value = copy.deepcopy(_get(doc, _pointer(_member(op, "from"), "from")))
    return _add(doc, _pointer(op["path"], "path"), value)


def _op_test(doc: Any, op: dict[str, Any]) -> Any:
    path = _pointer(op["path"], "path")
    if not json_equal(_get(doc, path), _member(op, "value")):
        raise _unprocessable(f'test failed: the value at "{_show(path)}" is not '
                             f"{_text(op['value'])}")
    return doc


_OPS: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "add": _op_add, "remove": _op_remove, "replace": _op_replace, "move": _op_move,
    "copy": _op_copy, "test": _op_test,
}


def _text(value: Any) -> str:
    return orjson.dumps(value, default=repr).decode()


def _member(op: dict[str, Any], name: str) -> Any:
    if name not in op:
        raise bad_request(f'json patch: operation "{op["op"]}" needs a "{name}" member')
    return op[name]


def _check_op(op: Any, i: int) -> dict[str, Any]:
    if not isinstance(op, dict):
        raise bad_request(f"json patch: operation {i} is not an object")
    name = op.get("op")
    if not isinstance(name, str) or name not in _OPS:
        raise bad_request(f'json patch: operation {i} has an unknown or missing "op": '
                          f"{_text(name)}")
    _member(op, "path")
    return op


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902: apply `ops` in order to a copy of `target`; all or nothing.

    Members other than op/path/from/value are ignored. 400 for a malformed patch document,
    422 when an operation does not apply (see module docstring).
    """
    if not isinstance(ops, list):
        raise bad_request("json patch: the patch must be a JSON array of operations")
    checked = [_check_op(op, i) for i, op in enumerate(ops)]
    doc = copy.deepcopy(target)
    for op in checked:
        doc = _OPS[op["op"]](doc, op)
    return doc


# ------------------------------------------------------------------------------ dispatching

def _parse(body: bytes | str | Any) -> Any:
    if not isinstance(body, bytes | bytearray | memoryview | str):
        return body
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise bad_request(f"the patch body is not valid JSON: {e}") from None


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def apply_patch(target: dict[str, Any], body: bytes | str | Any, content_type: str,
                kind: str) -> dict[str, Any]:
    """Apply a PATCH request body of media type `content_type` to `target` (an object of
    `kind`, which drives strategic merge). `body` is raw JSON or an already-decoded value.

    415 for server-side apply or an unknown type; 400 for a body that is not JSON or a result
    that is not a JSON object.
    """
    media = _media_type(content_type)
    if media == APPLY_PATCH:
        raise StatusError(415, "UnsupportedMediaType",
                          "server-side apply (application/apply-patch+yaml) is not supported; "
                          "use client-side apply (kubectl apply --server-side=false) or a "
                          f"JSON, merge or strategic merge patch: {', '.join(PATCH_TYPES)}")
    if media not in PATCH_TYPES:
        raise StatusError(415, "UnsupportedMediaType",
                          "the body of the request was in an unknown format - accepted media "
                          f'types include: {", ".join(PATCH_TYPES)}; got "{content_type}"')
    patch = _parse(body)
    if media == MERGE_PATCH:
        result = merge_patch(target, patch)
    elif media == JSON_PATCH:
        result = json_patch(target, patch)
    else:
        if not isinstance(patch, dict):
            raise bad_request("a strategic merge patch must be a JSON object")
        result = strategic_merge_patch(target, patch, kind)
    if not isinstance(result, dict):
        raise bad_request("the patched document must be a JSON object")
    return result
