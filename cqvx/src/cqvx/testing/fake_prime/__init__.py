"""A wire-level fake of Coinbase Prime (REST), sharing no code with the adapter."""

from cqvx.testing.fake_prime.server import FakeClock, FakePrime

__all__ = ["FakeClock", "FakePrime"]
