"""cqvx.num.dec is the one strict parser: canonical ASCII decimals only (issue 11, "Numbers are ASCII
decimals").  Python's Decimal() also takes whitespace, underscores, non-ASCII digits, NaN and huge
exponents; an order for 1 BTC was once placed from the input "\u0661"."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cqvx.errors import ParseError
from cqvx.num import MAX_EXPONENT, MAX_LENGTH, dec, dec_str

# The documented grammar, written independently of the implementation's regex.
GRAMMAR = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,2})?", re.ASCII)

NON_ASCII_DIGITS = [chr(c) for c in range(0x80, 0x3000) if unicodedata.category(chr(c)) == "Nd"][:60]
number_chars = st.sampled_from("0123456789.+-eE")
numberish = st.text(number_chars, min_size=1, max_size=20)


@pytest.mark.parametrize(
    "bad",
    [
        "\u0661",  # ARABIC-INDIC DIGIT ONE: Decimal() says 1
        "1.\u0665",
        "\uff11",  # FULLWIDTH DIGIT ONE
        " 1",
        "1 ",
        "\t1",
        "1\n",
        "\u00a01",  # no-break space
        "1_000",
        "1_000.5",
        "1e400",
        "1e-400",
        "1E+100",
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-inf",
        "0x10",
        "1e",
        ".",
        "",
        "+",
        "1,5",
        "9" * (MAX_LENGTH + 1),
        f"1e{MAX_EXPONENT + 1}",
        f"1e-{MAX_EXPONENT + 1}",
    ],
)
def test_the_strings_python_would_take_are_refused(bad: str) -> None:
    with pytest.raises(ParseError) as info:
        dec(bad, "order.quantity")
    assert info.value.message.startswith("order.quantity: ")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("-0.5", Decimal("-0.5")),
        ("+2", 2),
        (".5", Decimal("0.5")),
        ("3.", 3),
        ("1E-8", Decimal("1e-8")),
    ],
)
def test_plain_decimals_and_bounded_exponents_are_accepted(text: str, value: Decimal) -> None:
    assert dec(text) == value


def test_error_messages_quote_a_bounded_excerpt() -> None:
    with pytest.raises(ParseError) as info:
        dec("x" * 100_000, "price")
    assert len(str(info.value)) < 120
    with pytest.raises(ParseError) as info:
        dec("\u0661", "price")
    assert "non-ASCII" in info.value.message and "'\u0661'" in info.value.message


@given(st.text(max_size=40))
@example("\u0661")
@example("1_0")
@example(" 1")
@example("1e99")
@example("0e99")
@example("00.10E-05")
def test_every_accepted_string_is_canonical_ascii_and_round_trips(text: str) -> None:
    try:
        value = dec(text, "x")
    except ParseError:
        return
    assert text.isascii() and text == text.strip() and "_" not in text
    assert GRAMMAR.fullmatch(text), text
    assert value.is_finite() and (not value or abs(value.adjusted()) <= MAX_EXPONENT)
    assert value == Decimal(text)  # exactly what was written: no rounding
    assert dec(dec_str(value)) == value  # canonical print parses back to the same number


@given(numberish, st.sampled_from(NON_ASCII_DIGITS), st.integers(0, 20))
def test_any_non_ascii_digit_is_refused(text: str, digit: str, at: int) -> None:
    at = min(at, len(text))
    with pytest.raises(ParseError):
        dec(text[:at] + digit + text[at:], "x")


@given(numberish, st.sampled_from([" ", "\t", "\n", "\r", "\u00a0", "\u2003", "\x0b"]), st.booleans())
def test_surrounding_whitespace_is_refused(text: str, space: str, before: bool) -> None:
    with pytest.raises(ParseError):
        dec(space + text if before else text + space, "x")


@given(st.text("0123456789", min_size=1, max_size=10), st.text("0123456789", min_size=1, max_size=10))
def test_underscores_are_refused(left: str, right: str) -> None:
    assert Decimal(f"{left}_{right}") == Decimal(left + right)  # what Python would have done
    with pytest.raises(ParseError):
        dec(f"{left}_{right}", "x")


@given(
    st.one_of(
        st.text(max_size=60),
        numberish,
        st.binary(max_size=10),
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.decimals(),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )
)
def test_garbage_only_ever_raises_parse_error(value: object) -> None:
    try:
        result = dec(value, "price")
    except ParseError as exc:
        assert exc.message.startswith("price: ")
    else:
        assert isinstance(result, Decimal) and result.is_finite()
        assert not result or abs(result.adjusted()) <= MAX_EXPONENT
