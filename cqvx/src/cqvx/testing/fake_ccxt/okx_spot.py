"""Spot (``instType=SPOT``) on :class:`~cqvx.testing.fake_ccxt.okx.FakeOkx`: the sim's spot instruments
on the same v5 paths as the perpetuals.

OKX names a spot pair by its currencies (``BTC-USDT``) and the USDT-margined perpetual with a suffix
(``BTC-USDT-SWAP``), so the ``instId`` alone picks the instrument (:meth:`OkxSpot.ids`).  From the docs:

* Get instruments (https://www.okx.com/docs-v5/en/#public-data-rest-api-get-instruments): a SPOT row
  names ``baseCcy``/``quoteCcy``; ``lotSz``, ``minSz`` and the maximum sizes are in the base currency;
  the contract fields (``ctVal``, ``ctMult``, ``ctValCcy``, ``ctType``, ``settleCcy``, ``uly``,
  ``instFamily``) and ``lever`` are empty.
* Place order (https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-place-order): ``tdMode``
  ``cash`` is the non-margin mode, the only one the fake serves on SPOT (spot margin, ``cross`` or
  ``isolated`` on a SPOT instrument, is not modelled: refused with 51000).  ``sz`` is in the base
  currency, except for a SPOT market buy, whose ``tgtCcy`` defaults to ``quote_ccy`` (``sz`` in the
  quote currency): the fake takes ``base_ccy`` only.  ``reduceOnly`` applies to MARGIN and
  FUTURES/SWAP orders only (ignored on SPOT).
* Order records (Get order details, orders pending/history) of a spot order: ``instType`` SPOT,
  ``tdMode`` cash, ``sz``/``accFillSz`` in base currency, ``lever`` empty, the fee in the currency the
  sim charges (its quote asset).
* Order book and ticker (https://www.okx.com/docs-v5/en/#order-book-trading-market-data-get-order-book,
  ...-get-ticker): SPOT sizes in the base currency.
* Get balance (https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-balance): the trading
  account holds the spot currencies, one ``details`` row each (:mod:`.okx_account` lists every sim
  balance).

Not served for SPOT: the private ``orders`` channel (spot order updates are read by REST), the public
streams, the funding routes (SWAP only, as on the venue).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cqvx.testing.fake_ccxt._base import dec_text
from cqvx.testing.fake_ccxt._okx_fields import INSTRUMENT_REST
from cqvx.venues.sim.config import InstrumentSpec

if TYPE_CHECKING:
    from cqvx.testing.fake_ccxt.okx import FakeOkx

__all__ = ["OkxSpot"]


class OkxSpot:
    """The spot instruments of the fake's simulated venue in OKX's SPOT shapes and rules."""

    def __init__(self, fake: FakeOkx) -> None:
        self.fake = fake

    def ids(self) -> dict[str, str]:
        """``instId`` -> sim symbol of every spot instrument (``BTC-USDT`` -> ``BTC-USDT``)."""
        return {
            f"{s.base_asset}-{s.quote_asset}": s.symbol
            for s in self.fake.sim.config.instruments
            if not s.is_perpetual
        }

    def symbols(self) -> set[str]:
        return set(self.ids().values())

    def specs(self) -> list[InstrumentSpec]:
        return [s for s in self.fake.sim.config.instruments if not s.is_perpetual]

    def inst_id(self, canonical: str) -> str | None:
        """The spot ``instId`` of a sim symbol (None: not a spot instrument)."""
        return next((inst for inst, sym in self.ids().items() if sym == canonical), None)

    def order_error(self, params: dict[str, Any]) -> str | None:
        """Why a placement on a SPOT instrument is refused (51000), or None."""
        if params.get("tdMode") != "cash":
            return "Parameter tdMode error: SPOT is served in cash (non-margin) mode only"
        market_buy = params.get("ordType") == "market" and params.get("side") == "buy"
        if market_buy and params.get("tgtCcy") != "base_ccy":  # the documented default: quote_ccy
            return "Parameter tgtCcy error: a market buy is served with tgtCcy base_ccy only"
        return None

    def order_fields(self, canonical: str) -> dict[str, Any]:
        """What a spot order record says where a swap order's differs."""
        return {
            "instType": "SPOT",
            "instId": self.inst_id(canonical) or canonical,
            "tdMode": "cash",
            "lever": "",
            "tgtCcy": "",
        }

    def instrument_row(self, spec: InstrumentSpec) -> dict[str, Any]:
        return {
            "instType": "SPOT",
            "instId": f"{spec.base_asset}-{spec.quote_asset}",
            "instFamily": "",
            "uly": "",
            "category": "1",
            "baseCcy": spec.base_asset,
            "quoteCcy": spec.quote_asset,
            "settleCcy": "",
            "ctVal": "",
            "ctMult": "",
            "ctValCcy": "",
            "ctType": "",
            "listTime": "1548133413000",
            "expTime": "",
            "lever": "",
            "tickSz": str(spec.tick_size),
            "lotSz": dec_text(spec.lot_size),
            "minSz": dec_text(spec.min_quantity),
            "maxLmtSz": dec_text(spec.max_quantity),
            "maxMktSz": dec_text(spec.max_quantity),
            "state": "live",
            "ruleType": "normal",
        } | INSTRUMENT_REST
