"""The ``remote`` venue type: a connector fronting another connector.

Registered in :mod:`cqvx.venues.registry` from here (cqvx must not import opensqt) when
:mod:`opensqt.connector` is imported, so a connector YAML may serve a venue that lives in another
connector process::

    venues:
      sim:
        type: remote
        address: 127.0.0.1:50061       # the upstream connector
        venue: sim                     # its served name (optional when it serves one)
        token: {env: UPSTREAM_TOKEN}   # its bearer token (a Secret; never logged)
        tls_root_cert: /etc/opensqt/upstream-ca.pem

The factory does no I/O (a registry rule): it returns a :class:`LazyRemoteVenue` whose
``async with`` dials the upstream (:meth:`RemoteVenue.connect`); every VenueClient call is then the
upstream's.  Killing this connector leaves the upstream (and the venue behind it) running; that is
what the crash audit (opensqt/tests/engine/test_engine_crash_audit.py) uses to tell "connector lost"
from "venue lost".
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pydantic import Field

from cqvx.client import VenueClient
from cqvx.errors import InvalidRequest, Unavailable
from cqvx.venues.registry import registry
from cqvx.venues.sections import SecretField, Section

__all__ = ["LazyRemoteVenue", "RemoteSection", "register_remote"]


class RemoteSection(Section):
    address: str = Field(min_length=1)
    venue: str | None = None
    token: SecretField | None = None
    tls_root_cert: Path | None = None
    tls_server_name: str | None = None
    timeout: float = Field(default=10.0, gt=0)


class LazyRemoteVenue:
    """A not-yet-dialled :class:`~opensqt.connector.remote.RemoteVenue`; ``async with`` dials it."""

    def __init__(self, section: RemoteSection) -> None:
        self.section = section
        self._inner: VenueClient | None = None

    @property
    def venue(self) -> str:
        if self._inner is not None:
            return self._inner.venue
        return self.section.venue or "remote"

    def capabilities(self) -> frozenset[int]:
        return self._inner.capabilities() if self._inner is not None else frozenset()

    async def connect(self) -> VenueClient:
        if self._inner is None:
            from opensqt.connector.remote import RemoteVenue

            s = self.section
            root: bytes | None = None
            if s.tls_root_cert is not None:
                try:
                    root = s.tls_root_cert.read_bytes()
                except OSError as exc:
                    raise InvalidRequest(f"tls_root_cert {s.tls_root_cert}: {exc.strerror}") from None
            self._inner = await RemoteVenue.connect(
                s.address,
                s.venue,
                token=s.token,
                tls_root_cert=root,
                tls_server_name=s.tls_server_name,
                timeout=s.timeout,
            )
        return self._inner

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("_inner")
        if inner is None:
            if name.startswith("_"):
                raise AttributeError(name)
            raise Unavailable(f"remote venue at {self.section.address} is not connected yet")
        return getattr(inner, name)

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _remote(section: RemoteSection) -> VenueClient:
    return LazyRemoteVenue(section)


def register_remote() -> None:
    """Register the ``remote`` type once (importing :mod:`opensqt.connector` does)."""
    if "remote" not in registry.names():
        registry.register("remote", RemoteSection, _remote)


register_remote()
