"""The one venue builder of the ``opensqt`` processes (``run``, ``paper``, ``fleet``, ``arb``, ``resync``).

Rules:

* ``venue.kind: remote`` dials a connector (:class:`~opensqt.connector.remote.RemoteVenue`): the token
  from ``token_env`` / ``token_file``, TLS from ``tls_root_cert`` / ``tls_server_name``; ``call_deadline``
  is the per-call deadline (one part of the caller's landing window, docs/engine.md).
* Any other kind is a venue type of :mod:`cqvx.venues.registry` built in process from ``venue.settings``
  and started (``__aenter__``: the sim's driver runs by itself).
* Every configuration problem (unreadable certificate, missing token, bad settings) is a
  :class:`~opensqt.config.ConfigError` naming the key; the caller's CLI prints it and exits 2.
"""

from __future__ import annotations

from cqvx.client import VenueClient
from opensqt.config import ConfigError, VenueConfig

__all__ = ["open_venue"]


async def open_venue(venue: VenueConfig, *, call_deadline: float, speed: float = 1.0) -> VenueClient:
    """The started venue client of ``venue`` (see the module docstring)."""
    if venue.kind == "remote":
        from cqvx.secrets import MissingSecret
        from opensqt.connector.auth import load_token
        from opensqt.connector.remote import RemoteVenue

        root: bytes | None = None
        if venue.tls_root_cert is not None:
            try:
                root = venue.tls_root_cert.read_bytes()
            except OSError as exc:
                raise ConfigError(
                    f"venue.tls_root_cert: cannot read {venue.tls_root_cert}: {exc.strerror}"
                ) from None
        try:
            token = load_token(env=venue.token_env or None, file=venue.token_file)
        except MissingSecret as exc:
            raise ConfigError(f"venue.token: {exc}") from None
        return await RemoteVenue.connect(
            venue.address,
            token=token,
            tls_root_cert=root,
            tls_server_name=venue.tls_server_name or None,
            timeout=call_deadline,
        )
    from cqvx.venues.registry import VenueConfigError, registry

    try:
        client = registry.build(venue.kind, venue.section(speed=speed), path="venue.settings")
    except VenueConfigError as err:
        raise ConfigError(str(err)) from None
    return await client.__aenter__()
