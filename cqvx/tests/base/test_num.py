from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cqvx.errors import ParseError
from cqvx.num import dec, dec_or_none, dec_str, round_price, round_quantity

decimals = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False, places=10)
positive = st.decimals(min_value=Decimal("1e-8"), max_value=Decimal("1e9"), allow_nan=False, places=8)
steps = st.sampled_from([Decimal(s) for s in ("0.00001", "0.001", "0.01", "0.5", "1", "5", "25")])


@given(decimals)
def test_dec_str_round_trips_without_exponent(value: Decimal) -> None:
    text = dec_str(value)
    assert "e" not in text.lower()
    assert Decimal(text) == value
    if "." in text:
        assert not text.endswith("0")


@given(st.one_of(st.text(max_size=30), st.binary(max_size=10), st.none(), st.lists(st.integers())))
def test_dec_raises_only_parse_error_on_garbage(value: object) -> None:
    try:
        result = dec(value, "price")
    except ParseError as exc:
        assert "price" in str(exc)
    else:
        assert result.is_finite()


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-inf", "1e", "", "0x10", True])
def test_dec_rejects_non_finite_and_malformed(bad: object) -> None:
    with pytest.raises(ParseError):
        dec(bad, "qty")


def test_dec_float_uses_shortest_repr() -> None:
    assert dec(0.1) == Decimal("0.1")
    assert dec_or_none("") is None
    assert dec_or_none(None) is None


@given(positive, steps)
def test_round_quantity_never_rounds_up(quantity: Decimal, lot: Decimal) -> None:
    rounded = round_quantity(quantity, lot)
    assert rounded <= quantity
    assert quantity - rounded < lot
    assert rounded % lot == 0


@given(positive, steps)
def test_round_price_takes_the_safe_side(price: Decimal, tick: Decimal) -> None:
    buy = round_price(price, tick, is_buy=True)
    sell = round_price(price, tick, is_buy=False)
    assert buy <= price <= sell
    assert buy % tick == 0 and sell % tick == 0
    assert sell - buy <= tick


@given(st.integers(-(10**30), 10**30), st.integers(-40, 40))
def test_dec_str_equals_the_plain_format_for_every_exponent(coefficient: int, exponent: int) -> None:
    """dec_str takes str() where it shows no exponent: the same text as format(d, "f") trimmed."""
    value = Decimal(coefficient).scaleb(exponent)
    text = "0" if value == 0 else format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    assert dec_str(value) == text
    assert dec_str(-value) == ("0" if value == 0 else ("-" + text).replace("--", ""))


def test_dec_str_of_non_finite_values_is_unchanged() -> None:
    assert dec_str(Decimal("NaN")) == "NaN"
    assert dec_str(Decimal("-Infinity")) == "-Infinity"
    with pytest.raises(ArithmeticError):
        dec_str(Decimal("sNaN"))
