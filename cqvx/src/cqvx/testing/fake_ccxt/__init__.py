"""Thinner wire-level fakes of Bybit, OKX, Bitget and Gate over the simulated venue (see :mod:`._base`)."""

from cqvx.testing.fake_ccxt.bitget import FakeBitget
from cqvx.testing.fake_ccxt.bybit import FakeBybit
from cqvx.testing.fake_ccxt.gate import FakeGate
from cqvx.testing.fake_ccxt.okx import FakeOkx

__all__ = ["FakeBitget", "FakeBybit", "FakeGate", "FakeOkx"]
