"""Fordefi: MPC custody with approval workflows (venues.md §4, §11)."""

from cqvx.venues.fordefi.client import FordefiClient
from cqvx.venues.fordefi.config import FordefiConfig

__all__ = ["FordefiClient", "FordefiConfig"]
