"""Thinner wire-level fakes of Bybit, OKX, Bitget and Gate over the simulated venue (see :mod:`._base`)."""

from cqvx.testing.fake_ccxt.bybit import FakeBybit

__all__ = ["FakeBybit"]
