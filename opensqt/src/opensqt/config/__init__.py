"""The one configuration file: YAML, ``${VAR}`` expansion, pydantic v2 validation.

Rules (reference §6 and the fixes of §12.11):

* Only ``${VAR}`` and ``${VAR:-default}`` are expanded, and only inside string values after YAML
  parsing, so a literal ``$`` in a password is never touched and a variable can never inject YAML
  structure.  ``$${`` is a literal ``${``.  An unset variable without a default is an error naming the
  variable and the key it appears under.
* YAML floats are read as :class:`~decimal.Decimal` from their source text (money is never a float).
* Every validation error names the dotted key path, e.g. ``trading.price_interval: must be > 0``.
* ``order_quantity`` is the QUOTE amount per order (the original fixed-amount grid); the base quantity is
  always ``round_quantity(order_quantity / order_price, lot_size)`` (one helper, :func:`base_quantity`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_serializer, field_validator, model_validator

from cqvx.num import dec_str
from cqvx.secrets import Secret
from cqvx.venues.sections import SecretField
from opensqt.config.base import ConfigError, _check_symbol, _Model
from opensqt.config.loader import expand_env, load_model, parse_model, read_text, read_yaml, validate_model
from opensqt.config.risk import BreakersConfig, ExposureConfig, OnTripConfig, RiskConfig, SlippageConfig
from opensqt.model.quantities import base_quantity  # the one home; re-exported for callers
from opensqt.observability.alerts.config import AlertsConfig

__all__ = [
    "DEFAULT_PAPER_YAML",
    "LANDING_MARGIN",
    "AlertsConfig",
    "BreakersConfig",
    "Config",
    "ConfigError",
    "EngineConfig",
    "ExposureConfig",
    "HttpConfig",
    "OnTripConfig",
    "RiskConfig",
    "SlippageConfig",
    "StateConfig",
    "SystemConfig",
    "TradingConfig",
    "VenueConfig",
    "base_quantity",
    "default_paper_config",
    "expand_env",
    "load_config",
    "load_model",
    "parse_config",
    "parse_model",
    "read_text",
    "read_yaml",
    "validate_model",
]


class TradingConfig(_Model):
    """The original ``trading:`` section (reference §2.3)."""

    symbol: str = Field(min_length=1)
    price_interval: Decimal = Field(gt=0)
    order_quantity: Decimal = Field(gt=0, description="quote amount per order (fixed-amount grid)")
    min_order_value: Decimal = Field(default=Decimal(20), ge=0)
    buy_window_size: int = Field(default=10, ge=1, le=200)
    sell_window_size: int = Field(default=10, ge=1, le=200)
    order_cleanup_threshold: int = Field(default=100, ge=1)
    cleanup_batch_size: int = Field(default=10, ge=1)
    margin_lock_duration_seconds: Decimal = Field(default=Decimal(10), gt=0)
    position_safety_check: int = Field(default=100, ge=0)
    grid_mode: Literal["long", "neutral"] = "long"
    strategy_id: str = Field(default="grid", pattern=r"^[A-Za-z0-9_.:-]{1,32}$")
    post_only_max_rejects: int = Field(default=3, ge=0)
    # Restart recovery on a FRESH state store (original initializeSellSlotsFromPosition): a position the
    # venue already holds (perpetuals: the position; spot: the base balance above ``base_reserve``) is
    # split into FILLED sell slots above the anchor, so the grid sells it instead of ignoring it.
    recover_position: bool = True
    # Spot holdings belong to the user until the config says how much of them the grid may take over: with
    # ``base_reserve`` unset, spot recovery takes nothing (a fresh grid must never sell someone's coins).
    base_reserve: Decimal | None = Field(
        default=None, ge=0, description="spot base units the grid never sells; unset = take over none"
    )

    @field_validator("symbol")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return _check_symbol(value)


class VenueConfig(_Model):
    """Where orders go: ``sim``, a cqvx venue name (e.g. ``coinbase``), or ``remote`` (a connector)."""

    kind: str = Field(default="sim", pattern=r"^[a-z][a-z0-9_]*$")
    address: str = ""
    # kind: remote only.  TLS: the connector's root certificate (PEM; a self-signed cert is its own
    # root) and the name it was issued for when it differs from the address's host.  The bearer token
    # is read from token_file, else the variable token_env, else OPENSQT_CONNECTOR_TOKEN when set.
    tls_root_cert: Path | None = None
    tls_server_name: str = ""
    token_env: str = ""
    token_file: Path | None = None
    seed: int = 42
    initial_price: Decimal | None = Field(default=None, gt=0)
    fee_rate: Decimal | None = Field(default=None, ge=0)
    # Non-secret adapter options; credentials come from the environment / secret files (cqvx.secrets),
    # and in production live only in the connector process.
    options: dict[str, str] = Field(default_factory=dict)
    # The venue type's section for an in-process venue (cqvx.venues.registry), e.g. for coinbase
    # ``credentials: {key_name: {env: CB_KEY_NAME}, key_secret: {env: CB_KEY_SECRET}}``.
    settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _remote_needs_address(self) -> VenueConfig:
        if self.kind == "remote" and not self.address:
            raise ValueError("address: required when kind is 'remote' (host:port of an opensqt connector)")
        return self

    @field_serializer("settings")
    def _redacted(self, settings: dict[str, Any]) -> Any:
        # A credential written as ${VAR} is plaintext here; dumps (check-config, /status) never show it.
        from cqvx.errors import redact

        return redact(settings)

    @model_validator(mode="after")
    def _registered_section(self, info: ValidationInfo) -> VenueConfig:
        # An in-process venue's section is checked (credentials read) when the file is, so that
        # check-config reports what run would fail on; the runner builds from it again.
        if self.kind == "remote":
            return self
        from cqvx.venues.registry import VenueConfigError, registry

        if self.kind not in registry.names():
            known = ", ".join(["remote", *(n for n in registry.names() if n != "remote")])
            raise ValueError(f"kind: unknown venue {self.kind!r} ({known})")
        environ = info.context.get("environ") if isinstance(info.context, Mapping) else None
        try:
            registry.parse(self.kind, self.section(), path="settings", environ=environ)
        except VenueConfigError as err:
            raise ValueError(str(err)) from None
        return self

    def section(self, *, speed: float | None = None) -> dict[str, Any]:
        """The registry section of an in-process venue (``sim`` also takes ``seed``)."""
        if self.kind != "sim":
            return dict(self.settings)
        extra: dict[str, Any] = {"seed": self.seed} if speed is None else {"seed": self.seed, "speed": speed}
        return {**extra, **self.settings}


class StateConfig(_Model):
    """The state store; empty ``url`` = SQLite file next to the run (``--state``)."""

    url: str = ""
    table_prefix: str = Field(default="osq_", pattern=r"^[a-z][a-z0-9_]{0,20}$")
    # What a committed intent survives (docs/engine.md "Durability modes"): ``fsync`` (SQLite
    # synchronous=FULL: every commit is on the disk, survives power loss and an OS crash) or ``process``
    # (synchronous=NORMAL in WAL: the commit is in the OS page cache, survives kill -9 of the engine,
    # not power loss).  SQLite only: a PostgreSQL store's durability is the server's.
    durability: Literal["fsync", "process"] = "fsync"
    # One owner per account (engine/lease.py): the lease key (empty: venue kind and address), its time,
    # and whether a second engine waits for it (true) or exits with one line (false).
    account: str = Field(default="", max_length=128)
    lease_seconds: Decimal = Field(default=Decimal(15), ge=Decimal(1), le=Decimal(600))
    lease_wait: bool = False

    @model_validator(mode="after")
    def _durability_is_sqlite(self) -> StateConfig:
        if self.durability != "fsync" and self.url and not self.url.startswith("sqlite"):
            raise ValueError(
                "durability: process applies to the SQLite store; a PostgreSQL store's durability is the"
                " server's (synchronous_commit)"
            )
        return self

    def account_key(self, venue: VenueConfig) -> str:
        return self.account or (f"{venue.kind}@{venue.address}" if venue.address else venue.kind)


class SystemConfig(_Model):
    cancel_on_exit: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class HttpConfig(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The live page (``/`` and ``/ws``, docs/live.md) on the same port; a token is required beyond loopback.
    live: bool = True
    live_token: SecretField | None = None  # {env: VAR}, {file: PATH} or ${VAR}; never shown in dumps
    live_origins: list[str] = Field(default_factory=list)
    # The control endpoints (off without a token): ``opensqt fleet``'s POST /symbols... (app/multi.py) and
    # the breaker reset POST /risk/reset of ``opensqt run`` (app/risk_http.py).
    control_token: SecretField | None = None

    @model_validator(mode="after")
    def _token_beyond_loopback(self) -> HttpConfig:
        from opensqt.live.hub import require_token_for

        if self.enabled and self.live:
            try:
                require_token_for(self.host, self.live_token.reveal() if self.live_token else None)
            except ValueError as exc:
                raise ValueError(f"live_token: {exc} (or set http.live: false)") from None
        return self

    @field_serializer("live_token", "control_token")
    def _hidden(self, token: Secret | None) -> str | None:
        return None if token is None else "[REDACTED]"


LANDING_MARGIN = Decimal(10)  # seconds: venue-side latency (creating late) beyond the request's lifetime


class EngineConfig(_Model):
    """Timing and throughput knobs (reference §6.1 ``timing``)."""

    price_send_interval: Decimal = Field(default=Decimal("0.05"), ge=0)
    reconcile_interval: Decimal = Field(default=Decimal(30), gt=0)
    order_cleanup_interval: Decimal = Field(default=Decimal(60), gt=0)
    order_rate: Decimal = Field(default=Decimal(25), gt=0)
    order_burst: int = Field(default=30, ge=1)
    max_retries: int = Field(default=3, ge=0)
    retry_delay: Decimal = Field(default=Decimal("0.5"), ge=0)
    # The one time budget of an order request (docs/engine.md "Landing window").  A placement whose
    # outcome is unknown stays UNRESOLVED until the venue shows it or ``landing_window`` seconds have
    # passed since its last send; only then does a lookup's "not found" prove it never landed.
    # ``call_deadline``: the engine's per-call deadline (a remote connector's unary timeout);
    # ``request_lifetime``: how long the connector / transport may still act after the call (a shielded
    # side-effecting call runs the transport to completion: ``RetryPolicy.max_elapsed`` + the per-attempt
    # timeout, 30 + 10 = 40 s for the Coinbase defaults).  Default window: deadline + lifetime + margin.
    call_deadline: Decimal = Field(default=Decimal(10), gt=0)
    request_lifetime: Decimal = Field(default=Decimal(40), ge=0)
    landing_window: Decimal | None = Field(default=None, gt=0)
    # Slots stuck in PENDING / CANCEL_REQUESTED longer than this are resolved by the reconciler
    # (default: the landing window).
    stuck_after: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _window_covers_the_request(self) -> EngineConfig:
        floor = self.call_deadline + self.request_lifetime
        if self.landing_window is not None and self.landing_window < floor:
            raise ValueError(
                f"landing_window: must be >= call_deadline + request_lifetime = {floor} s (the longest"
                " time a request may still act at the venue)"
            )
        return self

    @property
    def effective_landing_window(self) -> Decimal:
        """``landing_window``, or the default: call_deadline + request_lifetime + LANDING_MARGIN."""
        if self.landing_window is not None:
            return self.landing_window
        return self.call_deadline + self.request_lifetime + LANDING_MARGIN

    @property
    def effective_stuck_after(self) -> Decimal:
        return self.stuck_after if self.stuck_after is not None else self.effective_landing_window


class Config(_Model):
    trading: TradingConfig
    venue: VenueConfig = Field(default_factory=VenueConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    system: SystemConfig = Field(default_factory=SystemConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)

    @model_validator(mode="after")
    def _lifetime_covers_the_transport(self, info: ValidationInfo) -> Config:
        # When the venue runs in process and its section says its per-attempt timeout, the transport's
        # request lifetime is known (RetryPolicy.max_request_lifetime): the landing window must cover it.
        if self.venue.kind == "remote":
            return self
        from cqvx.transport.http import RetryPolicy
        from cqvx.venues.registry import registry

        environ = info.context.get("environ") if isinstance(info.context, Mapping) else None
        section = registry.parse(self.venue.kind, self.venue.section(), path="settings", environ=environ)
        timeout = getattr(section, "timeout_s", None)
        if not isinstance(timeout, int | float):
            return self
        lifetime = Decimal(str(RetryPolicy().max_request_lifetime(float(timeout))))
        if self.engine.request_lifetime < lifetime:
            raise ValueError(
                f"engine.request_lifetime: {self.engine.request_lifetime} s is shorter than the venue"
                f" transport's request lifetime {dec_str(lifetime)} s (RetryPolicy.max_elapsed +"
                " venue.settings.timeout_s); raise it (the landing window must cover it)"
            )
        return self


def parse_config(text: str, env: Mapping[str, str] | None = None, source: str = "<config>") -> Config:
    """Parse YAML text into a validated :class:`Config`; raises :class:`ConfigError`."""
    return parse_model(text, Config, env, source)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    return load_model(path, Config, env)


# The embedded default behind ``opensqt paper``: the simulated venue, no credentials.  Kept identical to
# configs/paper.yaml (a test checks it).
DEFAULT_PAPER_YAML = """\
# opensqt paper: the grid on the simulated venue (no credentials needed).
trading:
  symbol: BTC-USDT-PERP       # the sim's perpetual near 60000 (maker fee 0.02 %)
  price_interval: 30          # grid step, quote units (> 2 x fee x price, or the fee check refuses)
  order_quantity: 100         # QUOTE amount per order (fixed-amount grid)
  min_order_value: 20
  buy_window_size: 10
  sell_window_size: 10
  order_cleanup_threshold: 100
  cleanup_batch_size: 10
  margin_lock_duration_seconds: 10
  position_safety_check: 10
  grid_mode: long
venue:
  kind: sim
  seed: ${OPENSQT_SEED:-42}
state:
  url: ""                     # empty: SQLite file given by --state
system:
  cancel_on_exit: true
  log_level: INFO
http:
  enabled: true
  host: 127.0.0.1
  port: ${OPENSQT_HTTP_PORT:-8080}
risk:
  enabled: true               # volume-anomaly monitor on the sim's trade stream (pauses on a dump)
"""


def default_paper_config(env: Mapping[str, str] | None = None) -> Config:
    return parse_config(DEFAULT_PAPER_YAML, env, "<embedded paper config>")
