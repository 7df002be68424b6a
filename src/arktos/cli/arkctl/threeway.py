"""kubectl's client-side apply diff: a three-way JSON merge patch from the last applied
configuration (original), the new configuration (modified) and the live object (current).

- Fields of `modified` that differ from `current` are set (maps recursively).
- Fields of `original` that `modified` no longer has are deleted (`null`).
- Lists are replaced whole (merge-patch semantics), but only when they really changed: a
  live list whose items carry server defaults besides the configured fields is unchanged,
  unless fields were dropped from the configuration since the last apply.
Pure functions; inputs are not modified.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from arktos.api.patch import json_equal

_MISSING: Any = object()
_SAME: Any = object()
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def covers(live: Any, want: Any) -> bool:
    """Whether `live` has every field of `want` with the same value (maps may have more
    keys; lists must match item by item)."""
    if isinstance(want, dict):
        return isinstance(live, dict) and all(
            k in live and covers(live[k], v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(live, list) and len(live) == len(want) and all(
            covers(a, b) for a, b in zip(live, want, strict=True))
    return json_equal(live, want)


def _diff_value(orig: Any, mod: Any, cur: Any) -> Any:
    if isinstance(mod, dict) and isinstance(cur, dict):
        sub = _diff_map(orig if isinstance(orig, dict) else {}, mod, cur)
        return sub or _SAME
    if isinstance(mod, list) and covers(cur, mod) and (
            not isinstance(orig, list) or covers(mod, orig)):
        return _SAME
    if (cur is _MISSING and mod is None) or (cur is not _MISSING and json_equal(cur, mod)):
        return _SAME
    return mod


def _diff_map(orig: dict[str, Any], mod: dict[str, Any], cur: dict[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for key in orig:
        if key not in mod and key in cur:
            patch[key] = None
    for key, value in mod.items():
        sub = _diff_value(orig.get(key, _MISSING), value, cur.get(key, _MISSING))
        if sub is not _SAME:
            patch[key] = sub
    return patch


def three_way_patch(original: dict[str, Any] | None, modified: dict[str, Any],
                    current: dict[str, Any]) -> dict[str, Any]:
    """The merge patch taking `current` to `modified`, deleting what `original` had and
    `modified` dropped. `{}` means nothing to do."""
    return _diff_map(original or {}, modified, current)


def with_last_applied(config: dict[str, Any]) -> dict[str, Any]:
    """The object to send: `config` annotated with itself as kubectl records it (sorted,
    compact JSON and a newline; its own annotations as `{}` when empty)."""
    applied: dict[str, Any] = copy.deepcopy(config)
    md = applied.setdefault("metadata", {})
    annotations = md.get("annotations") if isinstance(md.get("annotations"), dict) else {}
    annotations.pop(LAST_APPLIED, None)
    md["annotations"] = annotations
    out = copy.deepcopy(applied)
    out["metadata"]["annotations"][LAST_APPLIED] = json.dumps(
        applied, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    return out


def last_applied(live: dict[str, Any]) -> dict[str, Any] | None:
    """The configuration recorded by the last apply, or None."""
    raw = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    try:
        found = json.loads(raw) if isinstance(raw, str) and raw else None
    except ValueError:
        return None
    return found if isinstance(found, dict) else None
