"""A wire-level fake Binance USD-M server backed by the simulated venue (see :mod:`.server`)."""

from cqvx.testing.fake_binance.server import FakeBinance

__all__ = ["FakeBinance"]
