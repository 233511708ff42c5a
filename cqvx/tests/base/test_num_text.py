"""cqvx.num.dec_text (the venue parsers' per-message path) answers exactly what
``dec_str(dec(value))`` answers, for every input, including every refusal."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cqvx.errors import ParseError
from cqvx.num import dec, dec_str, dec_text


def _slow(value: object) -> str:
    if value is None or value == "":
        return ""
    return dec_str(dec(value, "x", "v"))


def _same(value: object) -> None:
    try:
        expected = _slow(value)
    except ParseError:
        with pytest.raises(ParseError):
            dec_text(value, "x", "v")
        return
    assert dec_text(value, "x", "v") == expected


@given(st.text(st.sampled_from("0123456789.+-eE_ \u0661"), max_size=50))
@example("0.000")
@example("10.0")
@example("100")
@example("007.50")
@example("1" * 40)
@example("1" * 41)
@example("0." + "0" * 39 + "1")
@example("0." + "0" * 40 + "1")
@example("1.")
@example(".5")
@example("-0.0")
def test_text_matches_the_strict_parser(text: str) -> None:
    _same(text)


@given(st.floats(allow_nan=True, allow_infinity=True))
@example(10.0)
@example(1e-05)
@example(0.0024)
@example(-0.0)
def test_floats_match_the_strict_parser(value: float) -> None:
    _same(value)


@given(st.one_of(st.integers(), st.decimals(), st.booleans(), st.none(), st.lists(st.integers(), max_size=1)))
def test_other_values_match_the_strict_parser(value: object) -> None:
    _same(value)
