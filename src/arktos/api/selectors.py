"""Label and field selectors: parsing (string and structured forms), matching and printing.

Label selectors follow Kubernetes' syntax (`a=b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`,
`!a`, comma-separated = AND). Field selectors take `key=value`, `key!=value` and, for numeric
fields such as Arktos' `metadata.hashKey`, `key>N`, `key>=N`, `key<N`, `key<=N` (also written
`key=gt:N`, `key=gte:N`, `key=lt:N`, `key=lte:N`). Bad input raises a 400 `StatusError`.

No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from arktos.api.errors import StatusError, bad_request
from arktos.api.meta import label_value_errors, qualified_name_errors

LabelOp = Literal["=", "!=", "in", "notin", "exists", "!"]
FieldOp = Literal["=", "!=", ">", ">=", "<", "<="]
FieldValue = str | int

BASE_FIELDS = ("metadata.name", "metadata.namespace", "metadata.tenant", "metadata.hashKey")
"""Field-selector keys every kind supports."""

_INT = re.compile(r"^[+-]?[0-9]+$")
_SET_OPS: tuple[LabelOp, ...] = ("in", "notin")
_STRUCTURED_OPS: dict[str, LabelOp] = {"In": "in", "NotIn": "notin", "Exists": "exists",
                                       "DoesNotExist": "!"}


# ---------------------------------------------------------------------------- label selectors

@dataclass(frozen=True, slots=True)
class Requirement:
    """One label requirement. `values` is sorted and de-duplicated; one value for `=`/`!=`,
    none for `exists`/`!`."""

    key: str
    op: LabelOp
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes semantics: `!=` and `notin` also match when the key is absent."""
        if self.op == "exists":
            return self.key in labels
        if self.op == "!":
            return self.key not in labels
        present = self.key in labels and labels[self.key] in self.values
        return present if self.op in ("=", "in") else not present

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in _SET_OPS:
            return f"{self.key} {self.op} ({','.join(self.values)})"
        return f"{self.key}{self.op}{self.values[0]}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A conjunction of requirements, kept sorted by key; empty selects everything."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def of(cls, requirements: Iterable[Requirement]) -> LabelSelector:
        return cls(tuple(sorted(requirements, key=lambda r: r.key)))

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether `labels` (None = no labels) satisfy every requirement."""
        have = labels if labels is not None else {}
        return all(r.matches(have) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _requirement(key: str, op: LabelOp, values: Iterable[str], where: str) -> Requirement:
    """A checked, canonical requirement; `where` prefixes error messages."""
    errs = [f'key "{key}": {e}' for e in qualified_name_errors(key)]
    vals = tuple(sorted(set(values)))
    errs += [f'value "{v}": {e}' for v in vals for e in label_value_errors(v)]
    if errs:
        raise bad_request(f"{where}: {'; '.join(errs)}")
    return Requirement(key, op, vals)


# Tokens: operators/punctuation, or identifiers (runs of anything else but whitespace).
_TOKEN = re.compile(r"\s*(?:(==|!=|[=!(),])|([^\s!=(),<>]+)|([<>])|$)")


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    """`ident`, `end`, or the punctuation itself."""
    text: str


def _lex(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while True:
        m = _TOKEN.match(text, pos)
        assert m is not None  # every character starts some alternative
        if m.group(3):
            raise bad_request(f'unable to parse label selector "{text}": unsupported '
                              f"operator '{m.group(3)}'")
        if m.group(1):
            toks.append(_Tok(m.group(1), m.group(1)))
        elif m.group(2):
            toks.append(_Tok("ident", m.group(2)))
        else:
            toks.append(_Tok("end", ""))
            return toks
        pos = m.end()


class _LabelParser:
    """Recursive descent over the tokens of one label selector string."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _lex(text)
        self.i = 0

    def _peek(self) -> _Tok:
        return self.toks[self.i]

    def _take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def _error(self, tok: _Tok, expected: str) -> StatusError:
        found = f"'{tok.text}'" if tok.kind != "end" else "end of string"
        return bad_request(f'unable to parse label selector "{self.text}": found {found}, '
                           f"expected {expected}")

    def _ident(self, what: str) -> str:
        tok = self._take()
        if tok.kind != "ident":
            raise self._error(tok, what)
        return tok.text

    def selector(self) -> LabelSelector:
        reqs: list[Requirement] = []
        if self._peek().kind == "end":
            return LabelSelector()
        while True:
            reqs.append(self._requirement())
            tok = self._take()
            if tok.kind == "end":
                return LabelSelector.of(reqs)
            if tok.kind != ",":
                raise self._error(tok, "',' or end of string")

    def _requirement(self) -> Requirement:
        where = f'invalid label selector "{self.text}"'
        if self._peek().kind == "!":
            self._take()
            return _requirement(self._ident("a label key"), "!", (), where)
        key = self._ident("a label key or '!'")
        if self._peek().kind in (",", "end"):
            return _requirement(key, "exists", (), where)
        tok = self._take()
        if tok.kind in ("=", "==", "!="):
            op: LabelOp = "!=" if tok.kind == "!=" else "="
            return _requirement(key, op, (self._value(),), where)
        if tok.kind == "ident" and tok.text in _SET_OPS:
            return _requirement(key, "in" if tok.text == "in" else "notin", self._set(), where)
        raise self._error(tok, "'=', '==', '!=', 'in' or 'notin'")

    def _value(self) -> str:
        """An exact value; empty when the term ends right after the operator."""
        if self._peek().kind in (",", "end"):
            return ""
        return self._ident("a label value")

    def _set(self) -> list[str]:
        """`(v1,v2,...)`; as in Kubernetes an empty item stands for the empty value."""
        tok = self._take()
        if tok.kind != "(":
            raise self._error(tok, "'('")
        values: list[str] = []
        while True:
            tok = self._take()
            if tok.kind == "ident":
                values.append(tok.text)
                tok = self._take()
            else:
                values.append("")
            if tok.kind == ")":
                return values
            if tok.kind != ",":
                raise self._error(tok, "',' or ')'")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse the string form (`labelSelector=` query parameter); "" selects everything.

    Raises a 400 `StatusError` on bad syntax or invalid keys/values.
    """
    return _LabelParser(text).selector()


def label_selector_from_dict(sel: Mapping[str, Any]) -> LabelSelector:
    """Convert the structured `metav1.LabelSelector` (`matchLabels`, `matchExpressions`).

    An empty mapping selects everything. (A *missing* selector selects nothing in Kubernetes;
    callers decide that case.) Raises a 400 `StatusError` when malformed.
    """
    if not isinstance(sel, Mapping):
        raise bad_request("label selector must be an object")
    match_labels = _or_empty(sel.get("matchLabels"), {})
    exprs = _or_empty(sel.get("matchExpressions"), [])
    if not isinstance(match_labels, Mapping) or not isinstance(exprs, list):
        raise bad_request("label selector: matchLabels must be a map and matchExpressions a list")
    reqs = [_requirement(str(k), "=", (_string(v, f"matchLabels[{k}]"),), "matchLabels")
            for k, v in match_labels.items()]
    reqs += [_expression(expr, f"matchExpressions[{i}]") for i, expr in enumerate(exprs)]
    return LabelSelector.of(reqs)


def _or_empty(value: Any, empty: Any) -> Any:
    return empty if value is None else value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{where}: must be a string")
    return value


def _expression(expr: Any, where: str) -> Requirement:
    if not isinstance(expr, Mapping):
        raise bad_request(f"{where}: must be an object")
    key = _string(expr.get("key"), f"{where}.key")
    operator = expr.get("operator")
    op = _STRUCTURED_OPS.get(operator) if isinstance(operator, str) else None
    if op is None:
        raise bad_request(f"{where}.operator: must be one of {', '.join(_STRUCTURED_OPS)}")
    raw = _or_empty(expr.get("values"), [])
    if not isinstance(raw, list):
        raise bad_request(f"{where}.values: must be a list of strings")
    values = [_string(v, f"{where}.values") for v in raw]
    if op in _SET_OPS and not values:
        raise bad_request(f"{where}.values: must be non-empty for operator {operator}")
    if op not in _SET_OPS and values:
        raise bad_request(f"{where}.values: must be empty for operator {operator}")
    return _requirement(key, op, values, where)


# ---------------------------------------------------------------------------- field selectors

_FIELD_OPS: dict[str, FieldOp] = {"!=": "!=", "==": "=", ">=": ">=", "<=": "<=", "=": "=",
                                   ">": ">", "<": "<"}
"""Operators as written (longest first) and what they mean."""
_PREFIX_OPS: dict[str, FieldOp] = {"gt:": ">", "gte:": ">=", "lt:": "<", "lte:": "<="}


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """`key op value`: a string for `=`/`!=`, an int for the numeric comparisons."""

    key: str
    op: FieldOp
    value: FieldValue

    def matches(self, fields: Mapping[str, FieldValue]) -> bool:
        """A missing field reads as ""; numeric comparisons only match integer fields."""
        actual = fields.get(self.key)
        if self.op in ("=", "!="):
            equal = _field_str(actual) == str(self.value)
            return equal if self.op == "=" else not equal
        number = _as_int(actual)
        if number is None or not isinstance(self.value, int):
            return False
        return _COMPARE[self.op](number, self.value)

    def __str__(self) -> str:
        value = _escape(self.value) if isinstance(self.value, str) else str(self.value)
        return f"{self.key}{self.op}{value}"


_COMPARE: dict[str, Callable[[int, int], bool]] = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A conjunction of field requirements, in the order written; empty selects everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, FieldValue]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def exact(self, key: str) -> str | None:
        """The value of the first `key=value` requirement (to narrow a list), else None."""
        for r in self.requirements:
            if r.key == key and r.op == "=":
                return str(r.value)
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def parse_field_selector(text: str, allowed: Collection[str]) -> FieldSelector:
    """Parse the `fieldSelector=` string; "" selects everything.

    Keys and values are stripped of surrounding whitespace; `\\`, `,` and `=` in values are
    escaped with a backslash. After `=`, a value starting with `gt:`, `gte:`, `lt:` or `lte:`
    is always a numeric comparison. Raises 400 `field label not supported: X` for keys outside
    `allowed`, and 400 on bad syntax or a non-integer operand of a numeric comparison.
    """
    reqs = []
    for term in _split_terms(text):
        if term.strip():
            reqs.append(_field_requirement(term, allowed))
    return FieldSelector(tuple(reqs))


def _split_terms(text: str) -> list[str]:
    """Split on commas not escaped by a backslash."""
    terms, start, i = [], 0, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == ",":
            terms.append(text[start:i])
            start = i + 1
        i += 1
    terms.append(text[start:])
    return terms


def _field_requirement(term: str, allowed: Collection[str]) -> FieldRequirement:
    key, op, raw = _split_term(term)
    if key not in allowed:
        raise bad_request(f"field label not supported: {key}")
    raw = raw.strip()
    prefix = next((p for p in _PREFIX_OPS if raw.startswith(p)), "") if op == "=" else ""
    if prefix:
        op, raw = _PREFIX_OPS[prefix], raw[len(prefix):]
    if op in ("=", "!="):
        return FieldRequirement(key, op, _unescape(raw, term))
    if not _INT.match(raw):
        raise bad_request(f'invalid field selector "{term}": "{raw}" is not an integer')
    return FieldRequirement(key, op, int(raw))


def _split_term(term: str) -> tuple[str, FieldOp, str]:
    """(key, operator, raw value) at the first unescaped operator."""
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        op = next((o for o in _FIELD_OPS if term.startswith(o, i)), None)
        if op is not None:
            return term[:i].strip(), _FIELD_OPS[op], term[i + len(op):]
        i += 1
    raise bad_request(f'invalid field selector "{term}": expected an operator '
                      f"({', '.join(_FIELD_OPS)})")


def _unescape(raw: str, term: str) -> str:
    out: list[str] = []
    chars = iter(raw)
    for c in chars:
        if c == "\\":
            nxt = next(chars, "")
            if nxt not in ("\\", ",", "="):
                raise bad_request(f'invalid field selector "{term}": invalid escape '
                                  f"sequence '\\{nxt}'")
            out.append(nxt)
        elif c in ",=":
            raise bad_request(f'invalid field selector "{term}": unescaped \'{c}\' in value')
        else:
            out.append(c)
    return "".join(out)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT.match(value):
        return int(value)
    return None


def _field_str(value: Any) -> str:
    """How a field value compares with `=`: None is "", booleans are "true"/"false"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _field_value(value: Any) -> FieldValue:
    return value if isinstance(value, int) and not isinstance(value, bool) else _field_str(value)


def object_fields(obj: dict[str, Any],
                  extra: Mapping[str, Callable[[dict[str, Any]], Any]] | None = None,
                  ) -> dict[str, FieldValue]:
    """The selectable fields of an object: `BASE_FIELDS` plus one per `extra` getter.

    Missing name/namespace/tenant read as ""; `metadata.hashKey` is an int and is left out when
    absent or not an integer. Getter results: ints kept, None -> "", bools -> "true"/"false".
    """
    meta = obj.get("metadata") or {}
    fields: dict[str, FieldValue] = {
        f"metadata.{k}": _field_str(meta.get(k)) for k in ("name", "namespace", "tenant")}
    hash_key = _as_int(meta.get("hashKey"))
    if hash_key is not None:
        fields["metadata.hashKey"] = hash_key
    for key, get in (extra or {}).items():
        fields[key] = _field_value(get(obj))
    return fields
