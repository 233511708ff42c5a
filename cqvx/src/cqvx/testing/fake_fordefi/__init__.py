"""Wire-level fake Fordefi server (see :mod:`cqvx.testing.fake_fordefi.server`)."""

from cqvx.testing.fake_fordefi._lifecycle import AFTER_APPROVAL, FakeClock
from cqvx.testing.fake_fordefi.server import FakeFordefi, FakeVault, default_vault

__all__ = ["AFTER_APPROVAL", "FakeClock", "FakeFordefi", "FakeVault", "default_vault"]
