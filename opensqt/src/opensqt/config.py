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

import os
import re
import types
import typing
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from cqvx.errors import ParseError
from cqvx.num import dec, dec_str, excerpt, round_quantity
from cqvx.secrets import Secret
from cqvx.venues.sections import SecretField
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
    "RiskConfig",
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
    "read_yaml",
    "validate_model",
]

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration problem; the message names the key path (and the variable, for expansion)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_decimals(cls, value: Any, info: ValidationInfo) -> Any:
        """Every Decimal field goes through the one parser, :func:`cqvx.num.dec` (ASCII, no "_",
        bounded exponent); pydantic's own Decimal parsing takes an Arabic-Indic "1" as 1, and " 1_000 "."""
        if info.field_name is None or value is None:
            return value
        annotation = cls.model_fields[info.field_name].annotation
        if annotation is int and isinstance(value, str) and not _PLAIN_INT.fullmatch(value):
            raise ValueError(f"not a plain integer: {excerpt(value)}")  # pydantic takes "1_000"
        if not _is_decimal(annotation):
            return value
        try:
            return dec(value)
        except ParseError as exc:
            raise ValueError(exc.message.removeprefix("value: ")) from None


def _is_decimal(annotation: Any) -> bool:
    return annotation is Decimal or (
        isinstance(annotation, types.UnionType) and set(typing.get_args(annotation)) == {Decimal, type(None)}
    )


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


def _check_symbol(value: str) -> str:
    from cqvx.symbols import parse_symbol

    try:
        parse_symbol(value)
    except Exception as exc:  # InvalidRequest from cqvx; re-worded as a config message
        raise ValueError(f"{value!r} is not a canonical symbol (BASE-QUOTE or BASE-QUOTE-PERP)") from exc
    return value


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
    # One owner per account (engine/lease.py): the lease key (empty: venue kind and address), its time,
    # and whether a second engine waits for it (true) or exits with one line (false).
    account: str = Field(default="", max_length=128)
    lease_seconds: Decimal = Field(default=Decimal(15), ge=Decimal(1), le=Decimal(600))
    lease_wait: bool = False

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
    # The symbol control endpoint of ``opensqt fleet`` (POST /symbols..., app/multi.py): off without a token.
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


class _Breaker(_Model):
    # Seconds a trip stays tripped before it may close by itself (when its condition is clear);
    # 0 = only a manual reset closes it (docs/risk.md).
    cooldown_seconds: Decimal = Field(default=Decimal(300), ge=0)


class LosingStreakBreaker(_Breaker):
    max_losses: int = Field(ge=1, le=1000)  # consecutive losing round trips


class DrawdownBreaker(_Breaker):
    cooldown_seconds: Decimal = Field(default=Decimal(0), ge=0)
    percent: Decimal | None = Field(default=None, gt=0, le=100)  # of the equity peak
    absolute: Decimal | None = Field(default=None, gt=0)  # quote units below the peak
    # Equity = capital + realized + unrealized PnL; empty capital = the quote balance at start.
    capital: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_limit(self) -> DrawdownBreaker:
        if self.percent is None and self.absolute is None:
            raise ValueError("percent or absolute: at least one is required")
        return self


class LatencyBreaker(_Breaker):
    max_ms: Decimal = Field(gt=0)
    samples: int = Field(default=3, ge=1, le=100)  # consecutive placements above max_ms


class StaleFeedBreaker(_Breaker):
    cooldown_seconds: Decimal = Field(default=Decimal(30), ge=0)
    price_seconds: Decimal | None = Field(default=None, gt=0)  # no price tick for this long
    orders_seconds: Decimal | None = Field(default=None, gt=0)  # order stream down this long


class MarginBreaker(_Breaker):
    cooldown_seconds: Decimal = Field(default=Decimal(0), ge=0)
    # |mark - liquidation| / mark below this percent trips.
    min_liquidation_distance_percent: Decimal = Field(gt=0, le=100)


class RejectRateBreaker(_Breaker):
    max_percent: Decimal = Field(gt=0, le=100)
    window: int = Field(default=20, ge=1, le=1000)  # the last N placement outcomes
    min_orders: int = Field(default=10, ge=1, le=1000)


class BreakersConfig(_Model):
    """Circuit breakers (risk/breakers.py); a missing section = that breaker is off."""

    losing_streak: LosingStreakBreaker | None = None
    drawdown: DrawdownBreaker | None = None
    latency: LatencyBreaker | None = None
    stale_feed: StaleFeedBreaker | None = None
    margin: MarginBreaker | None = None
    reject_rate: RejectRateBreaker | None = None
    interval_seconds: Decimal = Field(default=Decimal(5), gt=0)  # the evaluation loop's period


class ExposureConfig(_Model):
    """Pre-trade limits (risk/exposure.py), quote notional; empty = no limit."""

    max_symbol_notional: Decimal | None = Field(default=None, gt=0)
    max_account_notional: Decimal | None = Field(default=None, gt=0)
    # A market order is refused when the book's far side is this many percent beyond the mark.
    max_slippage_percent: Decimal | None = Field(default=None, gt=0, le=100)


class RiskConfig(_Model):
    """The volume-anomaly monitor (reference §3.2 ``risk_control``), the position breaker, the circuit
    breakers, exposure limits and alerts (docs/risk.md)."""

    enabled: bool = True
    monitor_symbols: list[str] = Field(default_factory=list, max_length=10)  # empty: the trading symbol
    window_seconds: Decimal = Field(default=Decimal(60), gt=0)  # the original's kline interval (1m)
    average_window: int = Field(default=20, ge=5, le=100)
    volume_multiplier: Decimal = Field(default=Decimal(3), ge=1, le=10)
    require_price_drop: bool = True  # the original also needs close < MA(close)
    recovery_threshold: int = Field(default=1, ge=1, le=10)
    global_strategy: Literal["all", "any"] = "all"
    # Circuit breaker: local slot position vs the venue's position (derivatives), checked by the
    # reconciler; opens after two passes in a row diverge by more than this fraction (and a lot).
    position_divergence: Decimal = Field(default=Decimal("0.05"), ge=0)
    # The startup check refuses an account leverage (read from the venue's positions) above this.
    max_leverage: Decimal = Field(default=Decimal(10), gt=0)
    breakers: BreakersConfig = Field(default_factory=BreakersConfig)
    exposure: ExposureConfig = Field(default_factory=ExposureConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)

    @field_validator("monitor_symbols")
    @classmethod
    def _canonical_list(cls, values: list[str]) -> list[str]:
        return [_check_symbol(v) for v in values]


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


def base_quantity(quote_amount: Decimal, price: Decimal, lot_size: Decimal) -> Decimal:
    """The fixed-amount grid's base quantity, rounded DOWN to the lot: the one place it is computed."""
    if price <= 0:
        raise ValueError("price must be > 0")
    return round_quantity(quote_amount / price, lot_size)


# ----------------------------------------------------------------------------------------- loading

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: str, env: Mapping[str, str], where: str = "") -> str:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in one string; ``$${`` is a literal ``${``."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        name, default = m.group(1), m.group(2)
        if name in env and (env[name] != "" or default is None):
            return env[name]
        if default is not None:
            return default
        at = f" (at {where})" if where else ""
        raise ConfigError(f"environment variable {name} is not set{at}")

    return _VAR.sub(repl, value)


def _expand_tree(node: Any, env: Mapping[str, str], path: str) -> Any:
    if isinstance(node, str):
        return expand_env(node, env, path)
    if isinstance(node, dict):
        return {k: _expand_tree(v, env, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_tree(v, env, f"{path}[{i}]") for i, v in enumerate(node)]
    return node


_MAX_DEPTH = 64


class _DecimalLoader(yaml.SafeLoader):
    """SafeLoader that reads floats as Decimal from the source text (0.1 stays exactly 0.1).

    Aliases (``*name``) are refused: a config has no use for them, and nested aliases expand
    exponentially (the "billion laughs" document), which would exhaust memory before any check ran.
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a config file", event.start_mark
            )
        if self._depth >= _MAX_DEPTH:  # before Python's recursion limit turns it into a traceback
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {_MAX_DEPTH} levels deep", event.start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: the problem and where (PyYAML's own text spans several lines and quotes the input)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return f"{exc.problem or exc.context or 'syntax error'}{where}"
    return excerpt(str(exc).replace("\n", " "))


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    # YAML 1.1 floats include "1_000.5", ".inf" and "1:30.5" (base 60); only what cqvx.num.dec accepts
    # becomes a number, the rest stays text for the field validators to refuse with the key path.
    text = str(loader.construct_scalar(node))
    try:
        return dec(text)
    except ParseError:
        return text


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    # YAML 1.1 ints include "1_000", "0x1F", "0o17", "010" (octal 8) and "1:30" (base 60): plain ASCII
    # digits only, read in base 10; anything else stays text and is refused by the field's validator.
    text = str(loader.construct_scalar(node))
    # Beyond 40 digits it stays text too (Python refuses to convert > 4300 digits with a ValueError).
    return int(text, 10) if len(text) <= 40 and _PLAIN_INT.fullmatch(text) else text


_PLAIN_INT = re.compile(r"[-+]?[0-9]+")


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
_DecimalLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _message(err: Mapping[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    kind = err.get("type", "")
    if kind == "greater_than":
        return f"must be > {ctx.get('gt')}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le')}"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        lines.append(f"{path}: {_message(err)}" if path else _message(err))
    return "; ".join(lines)


def read_yaml(text: str, source: str = "<config>") -> dict[str, Any]:
    """The raw tree of a YAML document (floats as Decimal); the top level must be a mapping."""
    try:
        raw = yaml.load(text, Loader=_DecimalLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(exc)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    return raw


def validate_model(
    raw: Mapping[str, Any], model: type[M], env: Mapping[str, str] | None = None, *, expand: bool = True
) -> M:
    """``${VAR}``-expand a raw tree and validate it as ``model``; raises :class:`ConfigError`.

    ``env`` is also the validation context's ``environ``, so secret fields written as ``{env: NAME}``
    (:data:`cqvx.venues.sections.SecretField`) read the same environment as the expansion.
    """
    environ = os.environ if env is None else env
    data = _expand_tree(dict(raw), environ, "") if expand else dict(raw)
    try:
        return model.model_validate(data, context={"environ": environ})
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None


def parse_model(
    text: str, model: type[M], env: Mapping[str, str] | None = None, source: str = "<config>"
) -> M:
    """The one YAML loader: parse, expand ``${VAR}``, validate as ``model`` (errors name key paths)."""
    return validate_model(read_yaml(text, source), model, env)


def load_model(path: str | Path, model: type[M], env: Mapping[str, str] | None = None) -> M:
    return parse_model(read_text(path), model, env, str(path))


def read_text(path: str | Path) -> str:
    p = Path(path)
    try:
        return p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"cannot read config {p}: not UTF-8 text (invalid byte at offset {exc.start})"
        ) from None


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
