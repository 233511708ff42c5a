"""The config sections of the ccxt venues: ``binance``, ``bybit``, ``okx``, ``bitget``, ``gate``.

One section shape, one subclass per venue type (registered in :mod:`cqvx.venues.registry`), so a
missing passphrase on OKX/Bitget fails validation at its key path.  Example (connector YAML)::

    okx-main:
      type: okx
      credentials:
        api_key: {env: OKX_API_KEY}
        secret: {env: OKX_API_SECRET}          # or {file: /run/secrets/okx_secret}
        passphrase: {env: OKX_PASSPHRASE}      # OKX and Bitget only
        # uid: {env: GATE_UID}                 # Gate only: the account's user id (order stream)
      market_types: [swap]                     # ccxt fetchMarkets types (default: the quirk table's)
      # rest_url: http://127.0.0.1:8080        # a fake or a testnet host (paths kept)
      # ws_url: ws://127.0.0.1:8080            # the same for every WebSocket url (streams)
      # positions_poll_s: 5                    # subscribe_positions polls the REST positions
      # sandbox: true                          # the venue's testnet through ccxt
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from cqvx.venues.ccxt.config import CcxtConfig
from cqvx.venues.sections import SecretField, Section, TextField

__all__ = [
    "BinanceSection",
    "BitgetSection",
    "BybitSection",
    "CcxtCredentials",
    "CcxtSection",
    "GateSection",
    "OkxSection",
]

_D = CcxtConfig("binance")


class CcxtCredentials(Section):
    api_key: SecretField
    secret: SecretField
    passphrase: SecretField | None = None
    uid: TextField | None = None  # ccxt's ``uid``: not a secret, an account id


class CcxtSection(Section):
    venue_type: ClassVar[str] = ""
    needs_passphrase: ClassVar[bool] = False
    needs_uid: ClassVar[bool] = False

    credentials: CcxtCredentials | None = None
    market_types: tuple[str, ...] = ()
    settle: str = ""  # the account summary's settle currency ("" = the loaded derivatives' one)
    rest_url: str = ""
    ws_url: str = ""
    positions_poll_s: float = Field(default=_D.positions_poll_s, gt=0)
    sandbox: bool = False
    timeout_s: float = Field(default=_D.timeout_s, gt=0)
    read_retries: int = Field(default=_D.read_retries, ge=0)

    @model_validator(mode="after")
    def _passphrase(self) -> CcxtSection:
        creds = self.credentials
        if creds is not None and self.needs_passphrase and creds.passphrase is None:
            raise ValueError(f"credentials.passphrase: required by {self.venue_type}")
        if creds is not None and self.needs_uid and not creds.uid:
            raise ValueError(f"credentials.uid: required by {self.venue_type} (its order stream)")
        return self

    def to_config(self) -> CcxtConfig:
        creds = self.credentials
        return CcxtConfig(
            venue=self.venue_type,
            api_key=creds.api_key if creds else None,
            secret=creds.secret if creds else None,
            passphrase=creds.passphrase if creds else None,
            uid=(creds.uid or "") if creds else "",
            market_types=self.market_types,
            settle=self.settle,
            rest_url=self.rest_url,
            ws_url=self.ws_url,
            positions_poll_s=self.positions_poll_s,
            sandbox=self.sandbox,
            timeout_s=self.timeout_s,
            read_retries=self.read_retries,
        )


class BinanceSection(CcxtSection):
    venue_type = "binance"


class BybitSection(CcxtSection):
    venue_type = "bybit"


class OkxSection(CcxtSection):
    venue_type = "okx"
    needs_passphrase = True


class BitgetSection(CcxtSection):
    venue_type = "bitget"
    needs_passphrase = True


class GateSection(CcxtSection):
    venue_type = "gate"
    # The futures order channel's subscribe payload starts with the user id
    # (https://www.gate.com/docs/developers/futures/ws/en/#orders-api); without it the execution stream
    # cannot open, so a Gate section with credentials and no uid is refused at load.
    needs_uid = True
