"""Rounding and parsing stay exact beyond the default 28-digit decimal context."""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cqvx.errors import ParseError
from cqvx.num import dec, dec_str, from_steps, round_price, round_quantity, steps

# Many significant digits: a large integer part and a fine step (token amounts with 18 decimals).
wide = st.builds(lambda i, f: Decimal(f"{i}.{f:018d}"), st.integers(1, 10**22), st.integers(0, 10**18 - 1))
fine_steps = st.sampled_from([Decimal(s) for s in ("1e-18", "1e-10", "0.00000001", "0.3", "7", "1e-25")])


@given(wide, fine_steps)
def test_round_quantity_never_rounds_up_with_many_digits(quantity: Decimal, lot: Decimal) -> None:
    rounded = round_quantity(quantity, lot)
    assert rounded <= quantity
    assert quantity - rounded < lot


@given(wide, fine_steps)
def test_round_price_safe_side_with_many_digits(price: Decimal, tick: Decimal) -> None:
    assert round_price(price, tick, is_buy=True) <= price <= round_price(price, tick, is_buy=False)


def test_the_28_digit_case_that_used_to_round_up() -> None:
    quantity = Decimal("123456789012345678.9999999999999")
    assert round_quantity(quantity, Decimal("0.0000000001")) == Decimal("123456789012345678.9999999999")


def test_dec_is_exact_for_long_inputs() -> None:
    text = "0." + "9" * 60
    assert dec(text) < 1  # a 50-digit context rounded this to 1: a quantity rounded up
    assert dec_str(dec(text)) == text


@pytest.mark.parametrize("bad", ["1_000", "1e1000000", "1e-5000"])
def test_dec_rejects_python_syntax_and_absurd_magnitudes(bad: str) -> None:
    with pytest.raises(ParseError):
        dec(bad)


@given(
    st.one_of(wide, wide.map(lambda d: -d), st.decimals(-(10**12), 10**12, allow_nan=False, places=8)),
    fine_steps,
)
def test_steps_is_the_exact_floor_quotient_with_many_digits(value: Decimal, step: Decimal) -> None:
    n, exact = steps(value, step)
    with decimal.localcontext(decimal.Context(prec=200)):  # the check itself must not round
        assert n * step <= value < (n + 1) * step
        assert exact == (n * step == value)


@given(st.integers(-(10**40), 10**40), fine_steps)
def test_from_steps_is_the_exact_inverse_of_steps(n: int, step: Decimal) -> None:
    value = from_steps(n, step)
    assert Fraction(value) == n * Fraction(step)  # no context: nothing rounds at any size
    assert steps(value, step) == (n, True)
    assert dec(dec_str(value)).as_tuple() == value.as_tuple()  # the canonical string's Decimal


def test_from_steps_refuses_what_is_not_an_int_or_a_positive_step() -> None:
    with pytest.raises(TypeError):
        from_steps(1.0, Decimal("0.01"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        from_steps(True, Decimal("0.01"))
    for bad in (Decimal(0), Decimal("-0.01"), Decimal("NaN")):
        with pytest.raises(ValueError):
            from_steps(1, bad)
