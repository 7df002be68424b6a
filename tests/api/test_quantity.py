"""Kubernetes resource quantities: parsing and rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arktos.api.quantity import QUANTITY_ERROR, int_value, milli_value, parse_quantity


@pytest.mark.parametrize(("text", "value"), [
    ("0", "0"), ("1", "1"), ("100m", "0.1"), ("1.5", "1.5"), (".5", "0.5"), ("5.", "5"),
    ("+2", "2"), ("-2", "-2"), ("1k", "1000"), ("1M", "1000000"), ("2G", "2e9"), ("1T", "1e12"),
    ("1P", "1e15"), ("1E", "1e18"), ("1Ki", "1024"), ("1Mi", "1048576"), ("1Gi", "1073741824"),
    ("1Ti", str(2**40)), ("1Pi", str(2**50)), ("1Ei", str(2**60)), ("1.5Gi", str(3 * 2**29)),
    ("1e3", "1000"), ("1E3", "1000"), ("1e-3", "0.001"), ("2.5e+2", "250"), (" 64Mi ", "67108864"),
    (3, "3"), (0.25, "0.25"),
])
def test_parse(text: str | float, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("text", [
    "", " ", "abc", "1.2.3", "1KB", "1ki", "1 Gi", "Gi", "--1", "1e", "1e1.5", "0x10", "1e99999",
    "nan", "inf", True, None, [], {}, float("nan"), float("inf"), "1" * 300,
])
def test_malformed(text: object) -> None:
    with pytest.raises(ValueError, match="quantities must match"):
        parse_quantity(text)  # type: ignore[arg-type,unused-ignore]


def test_error_message_is_kubernetes() -> None:
    assert QUANTITY_ERROR.startswith("quantities must match the regular expression")


def test_rounding_up() -> None:
    assert milli_value(parse_quantity("0.1m")) == 1
    assert milli_value(parse_quantity("1.5")) == 1500
    assert int_value(parse_quantity("1.2")) == 2
    assert int_value(parse_quantity("1Gi")) == 2**30


@given(st.integers(min_value=-(10**30), max_value=10**30),
       st.sampled_from(["", "k", "M", "G", "Ki", "Mi", "Gi"]))
def test_integers_with_suffixes(n: int, suffix: str) -> None:
    factor = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    assert parse_quantity(f"{n}{suffix}") == n * factor[suffix]


@given(st.text(max_size=20))
def test_any_text_parses_or_raises_value_error(text: str) -> None:
    try:
        parse_quantity(text)
    except ValueError:
        pass
