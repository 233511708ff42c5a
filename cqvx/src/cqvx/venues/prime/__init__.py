"""Coinbase Prime: portfolio-scoped trading, algorithmic orders and RFQ (see ``client.py``)."""

from cqvx.venues.prime.client import PrimeClient
from cqvx.venues.prime.config import PrimeConfig

__all__ = ["PrimeClient", "PrimeConfig"]
