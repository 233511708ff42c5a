"""Coinbase payload numbers go through the one strict parser (cqvx.num.dec); the plain-decimal fast
path of ``parse.dec_text`` must never accept what ``dec`` refuses."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cqvx.errors import ParseError
from cqvx.num import dec, dec_str
from cqvx.venues.coinbase import parse


@given(st.text("0123456789.", min_size=1, max_size=60) | st.text(max_size=20))
@example("1" * 50)  # plain digits, but 1e49: beyond the magnitude bound
@example("0." + "0" * 45 + "1")
@example("\u0661")
@example(" 1")
@example("68923.660")
def test_dec_text_agrees_with_the_strict_parser(text: str) -> None:
    if not text:
        assert parse.dec_text(text, "price") == ""  # empty means "not given"
        return
    try:
        want = dec_str(dec(text, "price"))
    except ParseError:
        with pytest.raises(ParseError):
            parse.dec_text(text, "price")
    else:
        assert parse.dec_text(text, "price") == want


def test_order_payload_with_a_non_ascii_size_is_a_parse_error() -> None:
    body = (
        b'{"order": {"order_id": "o1", "product_id": "BTC-USD", "side": "BUY", "status": "OPEN",'
        b' "filled_size": "\xd9\xa1"}}'  # ARABIC-INDIC DIGIT ONE, UTF-8
    )
    with pytest.raises(ParseError, match="filled_size"):
        parse.order_from_json(body)
