"""`metav1.LabelSelector` (matchLabels + matchExpressions): checks, matching, printing.

No I/O here.
"""

from __future__ import annotations

from typing import Any

from arktos.api.kinds._checks import (
    Fields,
    dicts,
    forbidden,
    required,
)
from arktos.api.meta import label_value_errors, qualified_name_errors

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def check_selector(sel: Fields) -> None:
    """Record every problem of the selector at `sel.path`."""
    sel.labels("matchLabels")
    for expr in sel.objects("matchExpressions"):
        expr.string("key", needed=True, check=qualified_name_errors)
        op = expr.choice("operator", OPERATORS, needed=True)
        values = expr.strings("values", check=label_value_errors)
        if op in ("In", "NotIn") and not values:
            expr.add(required(expr.at("values"),
                              "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist") and values:
            expr.add(forbidden(expr.at("values"),
                               "may not be specified when `operator` is 'Exists' or "
                               "'DoesNotExist'"))


def is_empty(selector: Any) -> bool:
    """Whether the selector has no requirement at all (it would select everything)."""
    if not isinstance(selector, dict):
        return True
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def matches(selector: Any, labels: Any) -> bool:
    """Whether `labels` satisfy every requirement of `selector` (False on malformed input)."""
    if not isinstance(selector, dict):
        return False
    labels = labels if isinstance(labels, dict) else {}
    match_labels = selector.get("matchLabels") or {}
    exprs = selector.get("matchExpressions") or []
    if not isinstance(match_labels, dict) or not isinstance(exprs, list):
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    return all(isinstance(e, dict) and _expr_matches(e, labels) for e in exprs)


def _expr_matches(expr: dict[str, Any], labels: dict[str, Any]) -> bool:
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if not isinstance(key, str) or not isinstance(values, list):
        return False
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False


def selector_string(selector: Any) -> str:
    """kubectl's form: `app=web,tier in (a,b),!legacy`; `<none>` for an empty selector."""
    if is_empty(selector):
        return "<none>"
    parts = []
    match_labels = selector.get("matchLabels")
    if isinstance(match_labels, dict):
        parts += [f"{k}={v}" for k, v in sorted(match_labels.items())]
    parts += [_expr_string(expr) for expr in dicts(selector.get("matchExpressions"))]
    return ",".join(parts)


def _expr_string(expr: dict[str, Any]) -> str:
    key, op = expr.get("key"), expr.get("operator")
    values = expr.get("values") if isinstance(expr.get("values"), list) else []
    listed = ",".join(sorted(str(v) for v in values or []))
    if op == "In":
        return f"{key} in ({listed})"
    if op == "NotIn":
        return f"{key} notin ({listed})"
    return f"!{key}" if op == "DoesNotExist" else str(key)
