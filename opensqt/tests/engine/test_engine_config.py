from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opensqt.config import (
    DEFAULT_PAPER_YAML,
    ConfigError,
    base_quantity,
    default_paper_config,
    expand_env,
    load_config,
    parse_config,
)

ROOT = Path(__file__).resolve().parents[3]

MINIMAL = """
trading:
  symbol: ETH-USDT-PERP
  price_interval: 2
  order_quantity: 30
"""


def test_minimal_config_gets_the_original_defaults() -> None:
    cfg = parse_config(MINIMAL, {})
    t = cfg.trading
    assert (t.min_order_value, t.buy_window_size, t.sell_window_size) == (Decimal(20), 10, 10)
    assert t.order_cleanup_threshold == 100
    assert t.margin_lock_duration_seconds == Decimal(10)
    assert t.grid_mode == "long"
    assert cfg.venue.kind == "sim"
    assert cfg.system.cancel_on_exit is True


def test_floats_are_read_as_exact_decimals() -> None:
    cfg = parse_config(MINIMAL.replace("price_interval: 2", "price_interval: 0.1"), {})
    assert cfg.trading.price_interval == Decimal("0.1")
    assert isinstance(cfg.trading.price_interval, Decimal)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("price_interval: 2", "price_interval: 0"), "trading.price_interval: must be > 0"),
        (("price_interval: 2", "price_interval: -1"), "trading.price_interval: must be > 0"),
        (("order_quantity: 30", "order_quantity: 0"), "trading.order_quantity: must be > 0"),
        (
            ("order_quantity: 30", "order_quantity: 30\n  grid_mode: short"),
            "trading.grid_mode: must be one of",
        ),
        (
            ("order_quantity: 30", "order_quantity: 30\n  buy_window_size: 0"),
            "trading.buy_window_size: must be >= 1",
        ),
        (("order_quantity: 30", "order_quantity: 30\n  typo_key: 1"), "trading.typo_key: unknown key"),
        (("symbol: ETH-USDT-PERP", "symbol: ETHUSDT"), "trading.symbol:"),
        (("  price_interval: 2\n", ""), "trading.price_interval: required"),
    ],
)
def test_errors_name_the_key_path(edit: tuple[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(MINIMAL.replace(*edit), {})
    assert expected in str(info.value)


def test_remote_venue_needs_an_address() -> None:
    with pytest.raises(ConfigError, match=r"venue: .*address"):
        parse_config(MINIMAL + "venue:\n  kind: remote\n", {})
    cfg = parse_config(MINIMAL + "venue:\n  kind: remote\n  address: 127.0.0.1:50051\n", {})
    assert cfg.venue.address == "127.0.0.1:50051"


def test_env_expansion_with_defaults_and_errors() -> None:
    text = (
        MINIMAL.replace("order_quantity: 30", "order_quantity: ${QTY}")
        + "state:\n  url: ${DB:-sqlite:///x.db}\n"
    )
    cfg = parse_config(text, {"QTY": "45.5"})
    assert cfg.trading.order_quantity == Decimal("45.5")
    assert cfg.state.url == "sqlite:///x.db"
    with pytest.raises(ConfigError) as info:
        parse_config(text, {})
    assert "QTY" in str(info.value) and "trading.order_quantity" in str(info.value)


def test_a_dollar_sign_alone_is_literal_and_double_dollar_escapes() -> None:
    assert expand_env("pa$$word$x", {}) == "pa$$word$x"
    assert expand_env("$${HOME}", {}) == "${HOME}"
    assert expand_env("${A}-${B:-b}", {"A": "a"}) == "a-b"
    assert expand_env("${A:-d}", {"A": ""}) == "d"


@settings(max_examples=100)
@given(st.text(alphabet=st.characters(blacklist_characters="${}"), max_size=30))
def test_text_without_references_is_unchanged(text: str) -> None:
    assert expand_env(text, {}) == text


def test_embedded_default_is_paper_on_sim_and_matches_configs_file() -> None:
    cfg = default_paper_config({})
    assert cfg.venue.kind == "sim"
    assert cfg.http.port == 8080
    assert default_paper_config({"OPENSQT_HTTP_PORT": "0"}).http.port == 0
    assert (ROOT / "configs" / "paper.yaml").read_text() == DEFAULT_PAPER_YAML
    example = load_config(ROOT / "configs" / "example.yaml", {"OPENSQT_CONNECTOR": "127.0.0.1:50051"})
    assert example.trading.symbol


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


@settings(max_examples=200)
@given(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100000), places=2),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100000), places=2),
    st.sampled_from([Decimal("0.001"), Decimal("0.0001"), Decimal(1), Decimal("0.1")]),
)
def test_base_quantity_never_exceeds_the_quote_amount(amount: Decimal, price: Decimal, lot: Decimal) -> None:
    qty = base_quantity(amount, price, lot)
    assert qty * price <= amount
    assert (qty / lot) == (qty / lot).to_integral_value()
    assert (qty + lot) * price > amount  # the largest lot multiple that fits


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('"\u0661"', "non-ASCII"),  # Arabic-Indic 1: pydantic's Decimal parsing says 1
        ('" 30"', "whitespace"),
        ("1_000", "underscores"),  # a YAML 1.1 int: PyYAML reads 1000
        ("1_000.5", "underscores"),  # a YAML 1.1 float
        ("1e400", "exponent"),
        ('"1e-400"', "exponent"),
        (".inf", "not a decimal"),
        ("0x1e", "not a decimal"),  # YAML hex int: PyYAML reads 30
        ("0:30", "not a decimal"),  # YAML base-60 int: PyYAML reads 30
    ],
)
def test_config_decimals_are_canonical_ascii(value: str, problem: str) -> None:
    text = MINIMAL.replace("price_interval: 2\n", f"price_interval: {value}\n")
    assert text != MINIMAL
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    message = str(info.value)
    assert message.startswith("trading.price_interval: ") and problem in message


def test_config_decimal_from_the_environment_uses_the_same_parser() -> None:
    text = MINIMAL.replace("price_interval: 2\n", "price_interval: ${STEP}\n")
    assert parse_config(text, env={"STEP": "1E-2"}).trading.price_interval == Decimal("0.01")
    with pytest.raises(ConfigError, match=r"trading\.price_interval: underscores"):
        parse_config(text, env={"STEP": "1_0"})
    with pytest.raises(ConfigError, match=r"http\.port: not a plain integer"):
        parse_config(MINIMAL + "http:\n  port: ${PORT}\n", env={"PORT": "8_080"})


def test_yaml_leading_zero_is_decimal_not_octal() -> None:
    text = MINIMAL.replace("price_interval: 2\n", "price_interval: 010\n")
    assert parse_config(text, env={}).trading.price_interval == 10


def test_state_durability_defaults_to_fsync_and_process_is_sqlite_only() -> None:
    assert parse_config(MINIMAL, {}).state.durability == "fsync"
    assert parse_config(MINIMAL + "state:\n  durability: process\n", {}).state.durability == "process"
    sqlite = "state:\n  url: sqlite:///x.db\n  durability: process\n"
    assert parse_config(MINIMAL + sqlite, {}).state.durability == "process"
    for bad, said in [
        ("state:\n  durability: none\n", "state.durability"),
        ("state:\n  url: postgresql+psycopg://h/db\n  durability: process\n", "PostgreSQL"),
    ]:
        with pytest.raises(ConfigError, match=said):
            parse_config(MINIMAL + bad, {})
