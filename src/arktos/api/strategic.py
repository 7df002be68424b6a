"""Kubernetes strategic merge patch, driven by a declarative table of list-merge strategies.

How a field merges is looked up in `KIND_RULES` by kind and dotted field path (list items are
transparent: `spec.containers.env` is the `env` of every container):
- `MergeBy(key)`: a list of objects merged item by item on `key` (`patchMergeKey`);
- `SET`: a list of primitives merged as a set (`patchStrategy:"merge"` on e.g. finalizers);
- `ATOMIC`, or no rule: the patch value replaces the field (maps still merge recursively).
`OBJECT_META` applies under `metadata` of every kind in the table.

Directives, as kubectl sends them: `$patch: replace|delete|merge` in a map or a list item,
`$deleteFromPrimitiveList/<f>`, `$setElementOrder/<f>`, `$retainKeys`; `null` deletes a key.
As in kube-apiserver, `$patch: delete` on a map leaves an empty map, and `{"$patch": "replace"}`
as a list item replaces the whole list with the other items.
Kinds not in the table get JSON merge patch (RFC 7386) semantics with directives stripped.

Malformed directives raise 400. Nothing here mutates its inputs. No I/O here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal

from arktos.api.errors import StatusError, bad_request


@dataclass(frozen=True, slots=True)
class MergeBy:
    """Merge a list of objects item by item on `key` (the field's `patchMergeKey`)."""

    key: str


SET: Final = "set"
"""Merge a list of primitives as a set (union, keeping order; first occurrence wins)."""
ATOMIC: Final = "atomic"
"""Replace the value whole (the default for lists)."""
Strategy = MergeBy | Literal["set", "atomic"]
Rules = Mapping[str, Strategy]
"""Dotted field path (list items transparent) -> strategy."""


def nest(prefix: str, rules: Rules) -> dict[str, Strategy]:
    """`rules` re-rooted under the dotted `prefix`."""
    return {f"{prefix}.{path}": strategy for path, strategy in rules.items()}


OBJECT_META: Rules = {"ownerReferences": MergeBy("uid"), "finalizers": SET}
CONTAINER: Rules = {
    "env": MergeBy("name"), "ports": MergeBy("containerPort"),
    "volumeMounts": MergeBy("mountPath"), "volumeDevices": MergeBy("devicePath"),
    "envFrom": ATOMIC,
}
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
POD_SPEC: Rules = {
    **{name: MergeBy("name") for name in _CONTAINER_LISTS},
    **{path: s for name in _CONTAINER_LISTS for path, s in nest(name, CONTAINER).items()},
    "volumes": MergeBy("name"), "imagePullSecrets": MergeBy("name"),
    "hostAliases": MergeBy("ip"), "tolerations": ATOMIC,
}
POD_TEMPLATE: Rules = {**nest("metadata", OBJECT_META), **nest("spec", POD_SPEC)}
CONDITIONS: Rules = {"status.conditions": MergeBy("type")}
WORKLOAD: Rules = {**nest("spec.template", POD_TEMPLATE), **CONDITIONS}
_NO_RULES: Rules = MappingProxyType({})
_METADATA_ONLY = ("ConfigMap", "Secret", "Event", "Lease", "Role", "RoleBinding", "ClusterRole",
                  "ClusterRoleBinding", "Tenant", "Action")

KIND_RULES: dict[str, Rules] = {
    "Pod": {**nest("spec", POD_SPEC), **CONDITIONS, "status.podIPs": MergeBy("ip")},
    "PodTemplate": nest("template", POD_TEMPLATE),
    **dict.fromkeys(("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job",
                     "ReplicationController"), WORKLOAD),
    "CronJob": {**nest("spec.jobTemplate.spec.template", POD_TEMPLATE), **CONDITIONS},
    "Service": {"spec.ports": MergeBy("port"), **CONDITIONS},
    "Endpoints": {"subsets": ATOMIC},
    "Node": {"status.addresses": MergeBy("type"), **CONDITIONS},
    "Namespace": CONDITIONS,
    "ServiceAccount": {"secrets": MergeBy("name")},
    **dict.fromkeys(_METADATA_ONLY, _NO_RULES),
}
"""Kinds patched strategically. Add a kind (or a field) here; paths are from the object root."""

PATCH: Final = "$patch"
RETAIN_KEYS: Final = "$retainKeys"
SET_ORDER: Final = "$setElementOrder/"
DELETE_FROM_LIST: Final = "$deleteFromPrimitiveList/"


@dataclass(slots=True)
class _Node:
    """A compiled rule tree: the strategy of one field and those below it."""

    strategy: Strategy | None = None
    children: dict[str, _Node] = field(default_factory=dict)

    def child(self, name: str) -> _Node:
        return self.children.get(name, _LEAF)


_LEAF: Final = _Node()


def _schema(kind: str) -> _Node | None:
    """The rule tree of `kind`, or None when the kind is not patched strategically."""
    rules = KIND_RULES.get(kind)
    if rules is None:
        return None
    root = _Node()
    for path, strategy in {**nest("metadata", OBJECT_META), **rules}.items():
        node = root
        for part in path.split("."):
            node = node.children.setdefault(part, _Node())
        node.strategy = strategy
    return root


def strategic_merge_patch(target: dict[str, Any], patch: dict[str, Any],
                          kind: str) -> dict[str, Any]:
    """Apply a strategic merge patch to a copy of `target`, an object of `kind`."""
    if not isinstance(patch, dict):
        raise bad_request("a strategic merge patch must be a JSON object")
    schema = _schema(kind)
    base = copy.deepcopy(target)
    if schema is None:
        return _merge_map(base, strip_directives(patch), _LEAF)
    return _merge_map(base, patch, schema)


def _error(message: str) -> StatusError:
    return bad_request(f"strategic merge patch: {message}")


def _is_directive(key: str) -> bool:
    return key in (PATCH, RETAIN_KEYS) or key.startswith((SET_ORDER, DELETE_FROM_LIST))


def _is_marker(item: Any) -> bool:
    """A list item that is only a directive, or that deletes."""
    return isinstance(item, dict) and bool(item) and (
        item.get(PATCH) == "delete" or all(_is_directive(k) for k in item))


def strip_directives(value: Any) -> Any:
    """A copy of `value` without directive keys, nor list items that are markers/deletions."""
    if isinstance(value, dict):
        return {k: strip_directives(v) for k, v in value.items() if not _is_directive(k)}
    if isinstance(value, list):
        return [strip_directives(v) for v in value if not _is_marker(v)]
    return value


def _merge_map(orig: Any, patch: dict[str, Any], node: _Node) -> dict[str, Any]:
    """Merge map `patch` into `orig` (owned by the caller; None or a non-map counts as {})."""
    directive = patch.get(PATCH)
    if directive == "replace":
        return _merge_map(None, {k: v for k, v in patch.items() if k != PATCH}, node)
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise _error(f'unknown directive "$patch: {directive}"')
    live = orig if isinstance(orig, dict) else {}
    result = dict(live)
    _retain_keys(result, patch)
    for key, value in patch.items():
        if key.startswith(DELETE_FROM_LIST):
            _delete_from_list(result, key.removeprefix(DELETE_FROM_LIST), value)
    for key, value in patch.items():
        if _is_directive(key):
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_value(result.get(key), value, node.child(key))
    for key, value in patch.items():
        if key.startswith(SET_ORDER):
            name = key.removeprefix(SET_ORDER)
            _set_order(result, name, value, live.get(name), node.child(name).strategy)
    return result


def _merge_value(orig: Any, value: Any, node: _Node) -> Any:
    if node.strategy == ATOMIC:
        return strip_directives(value)
    if isinstance(value, dict):
        return _merge_map(orig, value, node)
    if not isinstance(value, list):
        return value
    base = orig if isinstance(orig, list) else []
    if isinstance(node.strategy, MergeBy):
        return _merge_keyed(base, value, node.strategy.key, node)
    if node.strategy == SET:
        return _merge_set(base, value)
    return strip_directives(value)


def _merge_keyed(base: list[Any], items: list[Any], key: str, node: _Node) -> list[Any]:
    """Merge list `items` into `base` on the merge key; new items are appended."""
    result = list(base)
    regular = []
    for item in items:
        if not isinstance(item, dict):
            raise _error(f'items of a list merged on "{key}" must be objects, got {item!r}')
        directive = item.get(PATCH)
        if key not in item and directive in ("replace", "merge"):
            if directive == "replace":
                result = []
        elif key not in item:
            raise _error(f'list item {item!r} does not contain the merge key "{key}"')
        elif directive == "delete":
            result = [x for x in result if not _has_key(x, key, item[key])]
        else:
            regular.append(item)
    for item in regular:
        at = next((i for i, x in enumerate(result) if _has_key(x, key, item[key])), None)
        if at is None:
            result.append(_merge_map(None, item, node))
        else:
            result[at] = _merge_map(result[at], item, node)
    return result


def _has_key(item: Any, key: str, value: Any) -> bool:
    return isinstance(item, dict) and key in item and _same(item[key], value)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bool(a == b)


def _merge_set(base: list[Any], items: list[Any]) -> list[Any]:
    """Union of `base` and `items`, de-duplicated; a `{"$patch": "replace"}` item drops base."""
    replace = any(isinstance(x, dict) and x.get(PATCH) == "replace" for x in items)
    values = [strip_directives(x) for x in items if not _is_marker(x)]
    result: list[Any] = []
    for value in ([] if replace else base) + values:
        if not any(_same(value, x) for x in result):
            result.append(value)
    return result


def _delete_from_list(result: dict[str, Any], name: str, values: Any) -> None:
    if not isinstance(values, list):
        raise _error(f'"{DELETE_FROM_LIST}{name}" must be a list')
    current = result.get(name)
    if isinstance(current, list):
        result[name] = [x for x in current if not any(_same(x, v) for v in values)]


def _retain_keys(result: dict[str, Any], patch: dict[str, Any]) -> None:
    """`$retainKeys`: drop every key of `result` not listed (patched keys must be listed)."""
    keep = patch.get(RETAIN_KEYS)
    if keep is None:
        return
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise _error(f'"{RETAIN_KEYS}" must be a list of strings')
    unlisted = [k for k, v in patch.items() if v is not None and not _is_directive(k)
                and k not in keep]
    if unlisted:
        raise _error(f'"{RETAIN_KEYS}" does not list the patched keys {", ".join(unlisted)}')
    for key in [k for k in result if k not in keep]:
        del result[key]


def _identity(strategy: Strategy | None) -> Callable[[Any], Any] | None:
    """How `$setElementOrder` identifies the items of a list with this strategy."""
    if isinstance(strategy, MergeBy):
        key = strategy.key
        return lambda x: x.get(key) if isinstance(x, dict) else x
    if strategy == SET:
        return lambda x: x
    return None


def _set_order(result: dict[str, Any], name: str, order: Any, live: Any,
               strategy: Strategy | None) -> None:
    """Order `result[name]` as kube-apiserver does: listed items in the listed order, the
    others (server-only) keeping their live order, interleaved by live position."""
    if not isinstance(order, list):
        raise _error(f'"{SET_ORDER}{name}" must be a list')
    merged = result.get(name)
    ident = _identity(strategy)
    if ident is None or not isinstance(merged, list):
        return
    wanted = [ident(x) for x in order]
    listed = sorted((x for x in merged if ident(x) in wanted),
                    key=lambda x: wanted.index(ident(x)))
    others = [x for x in merged if ident(x) not in wanted]
    live_ids = [ident(x) for x in live] if isinstance(live, list) else []
    result[name] = _interleave(others, listed, live_ids, ident)


def _interleave(left: list[Any], right: list[Any], live_ids: list[Any],
                ident: Callable[[Any], Any]) -> list[Any]:
    """Merge two ordered lists; `left` goes first only when both items are live and it was
    before in the live list (kube-apiserver's `mergeSortedSlice`)."""
    out: list[Any] = []
    i = j = 0
    while i < len(left) and j < len(right):
        li, ri = ident(left[i]), ident(right[j])
        if li in live_ids and ri in live_ids and live_ids.index(li) < live_ids.index(ri):
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    return out + left[i:] + right[j:]
