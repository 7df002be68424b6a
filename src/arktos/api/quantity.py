"""Kubernetes resource quantities (`500m`, `1Gi`, `1e3`) as exact decimals.

Grammar (k8s.io/apimachinery `resource.Quantity`)::

    <quantity> ::= <signedNumber><suffix>
    <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei | m | "" | k | M | G | T | P | E | (e|E)<signedInt>

No I/O here. Shared by validation and the scheduler.
"""

from __future__ import annotations

import decimal
import math
import re
from decimal import Decimal

__all__ = ["QUANTITY_ERROR", "int_value", "milli_value", "parse_quantity"]

QUANTITY_ERROR = ("quantities must match the regular expression "
                  "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")

_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|m|k|M|G|T|P|E)?$")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_MAX_EXPONENT = 1000
"""Exponents beyond this are rejected rather than carried as absurd numbers."""
_CONTEXT = decimal.Context(prec=200, Emax=10 * _MAX_EXPONENT, Emin=-10 * _MAX_EXPONENT,
                           traps=[decimal.Overflow, decimal.InvalidOperation])


def _as_text(value: object) -> str:
    """The quantity's text: a string as given (trimmed), a JSON number spelled out, else ""."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)  # nan/inf spell as words and fail the grammar
    return ""


def parse_quantity(value: str | float) -> Decimal:
    """The exact value of a quantity string (or a JSON number); `ValueError` if malformed."""
    text = _as_text(value)
    m = _QUANTITY.match(text) if len(text) <= 200 else None
    if m is None:
        raise ValueError(QUANTITY_ERROR)
    number, suffix = Decimal(m["num"]), m["suffix"] or ""
    try:
        if suffix in _BINARY:
            return _CONTEXT.multiply(number, Decimal(1 << _BINARY[suffix]))
        exponent = _DECIMAL[suffix] if suffix in _DECIMAL else int(suffix[1:])
        if abs(exponent) > _MAX_EXPONENT:
            raise ValueError(QUANTITY_ERROR)
        return _CONTEXT.multiply(number, Decimal(1).scaleb(exponent, _CONTEXT))
    except decimal.DecimalException as exc:
        raise ValueError(QUANTITY_ERROR) from exc


def int_value(q: Decimal) -> int:
    """The quantity rounded up to an integer (`Quantity.Value()`), e.g. bytes of memory."""
    return math.ceil(q)


def milli_value(q: Decimal) -> int:
    """Thousandths, rounded up (`Quantity.MilliValue()`), e.g. millicores of CPU."""
    return math.ceil(_CONTEXT.multiply(q, Decimal(1000)))
