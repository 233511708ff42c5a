"""The connector's YAML: server settings plus the venues it serves, by name.

::

    connector:                      # ConnectorConfig: host, port, token, tls_*, metrics_port, ...
      port: 50051
      token: {file: /run/secrets/connector_token}
    venues:                         # served name -> a registered venue type and its section
      sim: {type: sim, seed: 7}
      cb-main:
        type: coinbase
        credentials: {key_name: {env: CB_MAIN_KEY_NAME}, key_secret: {env: CB_MAIN_KEY_SECRET}}

It goes through the engine's loader (:func:`opensqt.config.validate_model`: ``${VAR}`` expansion,
errors naming the key path) and each venue section through :mod:`cqvx.venues.registry`, so every
error reads ``venues.cb-main.credentials.key_secret: environment variable CB_MAIN_KEY_SECRET is not set``.
Requests pick a venue by its served name (the ``venue`` field of every VenueGateway request).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cqvx.client import VenueClient
from cqvx.venues.registry import VenueConfigError, registry
from cqvx.venues.sections import Section
from opensqt.config import ConfigError, read_text, read_yaml, validate_model
from opensqt.connector.auth import load_token
from opensqt.connector.server import ConnectorConfig

__all__ = ["ConnectorFile", "ConnectorSettings", "load_connector_settings"]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class ConnectorFile(BaseModel):
    """The file's shape; venue sections stay raw here and are validated by the registry."""

    model_config = ConfigDict(extra="forbid")

    connector: ConnectorConfig = Field(default_factory=ConnectorConfig)
    venues: dict[str, dict[str, Any]] = Field(default_factory=lambda: {"sim": {"type": "sim"}})


@dataclass
class ConnectorSettings:
    server: ConnectorConfig
    # served name -> (venue type, validated section)
    venues: dict[str, tuple[str, Section]] = field(default_factory=dict)

    def build_venues(self) -> dict[str, VenueClient]:
        """New, not yet started clients, one per served name (each its own credentials and budgets)."""
        try:
            return {
                name: registry.build(kind, section, path=f"venues.{name}")
                for name, (kind, section) in self.venues.items()
            }
        except VenueConfigError as err:
            raise ConfigError(str(err)) from None


def load_connector_settings(
    path: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    venue: str | None = None,
    token_env: str | None = None,
    token_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ConnectorSettings:
    """Read the file (optional), apply flag ``overrides`` to ``connector:``, validate every section.

    ``venue`` (the ``--venue`` flag) serves just that registered type with its default section.
    Raises :class:`~opensqt.config.ConfigError` naming the key path.
    """
    raw: dict[str, Any] = read_yaml(read_text(path), str(path)) if path is not None else {}
    server = raw.get("connector") or {}
    if not isinstance(server, dict):
        raise ConfigError("connector: must be a mapping")
    server = {**server, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    raw = {**raw, "connector": server}
    if venue is not None:
        raw["venues"] = {venue: {"type": venue}}
    parsed = validate_model(raw, ConnectorFile, env)
    token = load_token(env=token_env, file=token_file, configured=parsed.connector.token, environ=env)
    settings = ConnectorSettings(parsed.connector.model_copy(update={"token": token}))
    if not parsed.venues:
        raise ConfigError("venues: at least one venue required")
    for name, section in parsed.venues.items():
        if not re.match(_NAME, name):
            raise ConfigError(f"venues.{name}: a venue name is letters, digits and _.:- (at most 64)")
        body = dict(section)
        kind = body.pop("type", None)
        if not isinstance(kind, str) or not kind:
            raise ConfigError(f"venues.{name}.type: required (one of {', '.join(registry.names())})")
        # The section was ${VAR}-expanded with the rest of the file; the registry reads {env: ...}
        # credentials from the same environment.
        try:
            settings.venues[name] = (kind, registry.parse(kind, body, path=f"venues.{name}", environ=env))
        except VenueConfigError as err:
            raise ConfigError(str(err)) from None
    return settings
