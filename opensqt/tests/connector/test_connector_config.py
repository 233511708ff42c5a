"""A connector configured only by YAML + environment: venues by name through cqvx.venues.registry.

The conformance suite runs against Coinbase's wire-level fake as a client sees it in production:
``RemoteVenue`` -> connector (built from a YAML file whose credentials come from environment
variables) -> ``CoinbaseClient`` -> fake, with :class:`cqvx.testing.harnesses.CoinbaseHarness`'s hooks
and the wiring of ``served.py``.  The same process also serves the simulated venue and a
second Coinbase account, each under its own name with its own key.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cqvx.client import SupportsPositions
from cqvx.errors import AuthenticationError
from cqvx.testing.conformance import ConformanceSuite
from cqvx.testing.fake_coinbase import FakeProduct
from cqvx.testing.harnesses import COINBASE_KEY, CoinbaseHarness, DuplicateMode, pem_of
from cqvx.transport.ratelimit import limiters
from cqvx.venues.coinbase import CoinbaseClient
from opensqt.config import ConfigError
from opensqt.connector import RemoteVenue
from opensqt.connector.settings import load_connector_settings

from .conftest import FAST_DIAL
from .served import ServedHarness, YamlConnector

pytestmark = pytest.mark.timeout(120)

MAIN_KEY = COINBASE_KEY  # the harness's own key
HEDGE_KEY = "organizations/org-yaml/apiKeys/hedge"

# Everything the connector knows comes from here and from the environment below.
VENUES_YAML = """\
  sim: {type: sim, seed: 7}
  coinbase:
    type: coinbase
    rest_url: ${CB_URL}
    ws_market_url: ${CB_WS_MARKET}
    ws_user_url: ${CB_WS_USER}
    retry_base_delay_s: 0.01
    reconnect_initial_s: 0.02
    reconnect_max_s: 0.1
    heartbeat_timeout_s: 2.0
    credentials:
      key_name: {env: CB_MAIN_KEY_NAME}
      key_secret: {env: CB_MAIN_KEY_SECRET}
  cb-hedge:
    type: coinbase
    rest_url: ${CB_URL}
    ws_market_url: ${CB_WS_MARKET}
    ws_user_url: ${CB_WS_USER}
    rate_limits: {private_rps: 5}
    derivatives: {cfm: false, intx_portfolio_uuid: "${CB_INTX_PORTFOLIO}"}
    credentials:
      key_name: ${CB_HEDGE_KEY_NAME}
      key_secret: {file: "${CB_HEDGE_SECRET_FILE}"}
"""


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    limiters.clear()
    yield
    limiters.clear()


def _yaml_harness(tmp: Path, duplicate_mode: DuplicateMode = "return_existing") -> ServedHarness:
    """RemoteVenue -> YAML-configured connector (sim + two Coinbase accounts) -> the Coinbase fake."""
    hedge = ec.generate_private_key(ec.SECP256R1())

    def connector(inner: CoinbaseHarness) -> YamlConnector:
        secret_file = tmp / "cb_hedge.pem"
        secret_file.write_text(pem_of(hedge), encoding="utf-8")
        env = {
            "CB_URL": inner.fake.url,
            "CB_WS_MARKET": inner.fake.ws_market_url,
            "CB_WS_USER": inner.fake.ws_user_url,
            "CB_MAIN_KEY_NAME": MAIN_KEY,
            "CB_MAIN_KEY_SECRET": inner.pem(),
            "CB_HEDGE_KEY_NAME": HEDGE_KEY,
            "CB_HEDGE_SECRET_FILE": str(secret_file),
            "CB_INTX_PORTFOLIO": inner.fake.intx_portfolio_uuid,
        }
        return YamlConnector(tmp, VENUES_YAML, env)

    inner = CoinbaseHarness(duplicate_mode, extra_keys={HEDGE_KEY: hedge})
    return ServedHarness(inner, connector, served_as="coinbase")


@pytest.fixture
async def yaml_harness(tmp_path: Path) -> AsyncIterator[ServedHarness]:
    h = _yaml_harness(tmp_path)
    await h.start()
    try:
        yield h
    finally:
        await h.close()


def _served(h: ServedHarness) -> YamlConnector:
    assert isinstance(h.connector, YamlConnector)
    return h.connector


class TestYamlConnectorCoinbaseConformance(ConformanceSuite):
    # The matrix row of the production path (RemoteVenue -> connector -> Coinbase), configured by YAML.
    venue = "remote->connector->coinbase"

    @pytest.fixture(params=["return_existing", "reject"])
    async def harness(self, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServedHarness]:
        h = _yaml_harness(tmp_path, duplicate_mode=request.param)
        await h.start()
        try:
            yield h
        finally:
            await h.close()


async def test_one_process_serves_sim_and_two_coinbase_accounts(yaml_harness: ServedHarness) -> None:
    served = _served(yaml_harness).venues
    assert sorted(served) == ["cb-hedge", "coinbase", "sim"]
    main, hedge = served["coinbase"], served["cb-hedge"]
    assert isinstance(main, CoinbaseClient) and isinstance(hedge, CoinbaseClient)
    # Each account signs with its own key and so draws from its own private budget.
    assert main.config.key_name == MAIN_KEY and hedge.config.key_name == HEDGE_KEY
    assert hedge.config.private_rps == 5 and main.config.private_rps == 30
    for name in ("coinbase", "cb-hedge", "sim"):
        remote = await yaml_harness.new_client(name)
        try:
            assert remote.venue == name
            assert await remote.get_balances()
        finally:
            await remote.aclose()
    signers = {
        pyjwt.decode(r.headers["Authorization"].removeprefix("Bearer "), options={"verify_signature": False})[
            "sub"
        ]
        for r in yaml_harness.fake.requests_to("/api/v3/brokerage/accounts")
    }
    assert signers == {MAIN_KEY, HEDGE_KEY}, "each account signed with its own key"


async def test_positions_rpc_serves_intx_perpetuals(yaml_harness: ServedHarness) -> None:
    """Issue 12: the positions capability reads the configured INTX perpetuals portfolio."""
    fake = yaml_harness.fake
    fake.products["BTC-PERP-INTX"] = FakeProduct(
        "BTC-PERP-INTX",
        quote_increment="0.1",
        future={"contract_size": "1", "contract_root_unit": "BTC", "contract_expiry_type": "PERPETUAL"},
        quote_currency="USDC",
        product_venue="INTX",
    )
    fake.intx_positions["BTC-PERP-INTX"] = {
        "product_id": "BTC-PERP-INTX",
        "portfolio_uuid": fake.intx_portfolio_uuid,
        "position_side": "POSITION_SIDE_SHORT",
        "net_size": "-0.5",
        "entry_vwap": {"value": "67000", "currency": "USDC"},
        "unrealized_pnl": {"value": "-12.5", "currency": "USDC"},
        "liquidation_price": {"value": "90000", "currency": "USDC"},
    }
    remote = await yaml_harness.new_client("cb-hedge")
    try:
        assert isinstance(remote, SupportsPositions)
        (pos,) = await remote.get_positions()
    finally:
        await remote.aclose()
    assert (pos.symbol, pos.quantity, pos.entry_price, pos.unrealized_pnl, pos.settle_asset) == (
        "BTC-USDC-PERP",
        "0.5",
        "67000",
        "-12.5",
        "USDC",
    )
    assert not fake.requests_to("/api/v3/brokerage/cfm/positions")  # cfm: false for this account


async def test_token_from_the_environment_is_enforced(yaml_harness: ServedHarness) -> None:
    server = _served(yaml_harness).server
    assert server is not None
    with pytest.raises(AuthenticationError):
        await RemoteVenue.connect(server.address, "sim", token="wrong", dial=FAST_DIAL)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "connector.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        (
            "venues:\n  cb1:\n    type: coinbase\n"
            "    credentials: {key_name: k, key_secret: {env: CB_KEY}}\n",
            {},
            "venues.cb1.credentials.key_secret: environment variable CB_KEY is not set",
        ),
        (
            "venues:\n  cb1: {type: coinbase, rest_url: '${CB_URL}'}\n",
            {},
            "environment variable CB_URL is not set (at venues.cb1.rest_url)",
        ),
        ("venues:\n  x: {type: kraken}\n", {}, "venues.x.type: unknown venue type 'kraken'"),
        ("venues:\n  x: {seed: 1}\n", {}, "venues.x.type: required"),
        ("venues:\n  s: {type: sim, sede: 1}\n", {}, "venues.s.sede: unknown key"),
        ("connector: {port: -1}\n", {}, "connector.port: must be >= 0"),
        ("connector: {token: {env: NOPE}}\n", {}, "connector.token: environment variable NOPE is not set"),
        (
            "venues:\n  cb1: {type: coinbase, rate_limits: {private_rps: 0}}\n",
            {},
            "venues.cb1.rate_limits.private_rps: must be > 0",
        ),
    ],
)
def test_config_errors_name_the_key_path(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_connector_settings(_write(tmp_path, text), env=env)
    assert message in str(info.value)


def test_secret_values_never_appear_in_errors(tmp_path: Path) -> None:
    text = (
        "venues:\n  cb1: {type: coinbase, credentials: {key_name: k, key_secret: 'hunter2-secret'}, x: 1}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_connector_settings(_write(tmp_path, text), env={})
    assert "venues.cb1.x: unknown key" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_defaults_serve_the_sim_and_flags_override_the_file(tmp_path: Path) -> None:
    settings = load_connector_settings(None, env={})
    assert list(settings.venues) == ["sim"] and settings.server.token is None
    path = _write(tmp_path, "connector: {port: 1234, token: {env: T}}\n")
    settings = load_connector_settings(
        path, overrides={"port": 0, "host": None}, env={"T": "x", "OPENSQT_CONNECTOR_TOKEN": "other"}
    )
    assert settings.server.port == 0
    assert settings.server.token is not None and settings.server.token.reveal() == "x"
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n", encoding="utf-8")
    settings = load_connector_settings(path, token_file=token_file, env={"T": "x"})
    assert settings.server.token is not None and settings.server.token.reveal() == "from-file"
    # Without any token setting, the one default variable is read.
    settings = load_connector_settings(None, env={"OPENSQT_CONNECTOR_TOKEN": "dflt"})
    assert settings.server.token is not None and settings.server.token.reveal() == "dflt"


def test_example_config_loads() -> None:
    repo = Path(__file__).resolve().parents[3]
    env = {"COINBASE_API_KEY_NAME": "organizations/o/apiKeys/k", "COINBASE_API_KEY_SECRET": "s"}
    settings = load_connector_settings(repo / "configs" / "connector.example.yaml", env=env)
    kinds = {name: kind for name, (kind, _) in settings.venues.items()}
    assert "sim" in kinds.values() and "coinbase" in kinds.values()


ENGINE_YAML = """\
trading: {symbol: BTC-USD, price_interval: 10, order_quantity: 20}
venue:
  kind: coinbase
  settings:
    rest_url: http://127.0.0.1:9
    credentials: {key_name: legacy-key, key_kind: legacy, key_secret: {env: RUN_CB_SECRET}}
"""


async def test_opensqt_run_builds_its_in_process_venue_through_the_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opensqt.app.runner import build_client
    from opensqt.config import parse_config

    # check-config already reads the section: a missing credential is a config error naming the key.
    with pytest.raises(ConfigError, match=r"venue: settings\.credentials\.key_secret: environment variable"):
        parse_config(ENGINE_YAML, env={})
    # Every registered venue is listed, sorted after "remote"; other venues may sit between these.
    unknown = r"venue: kind: unknown venue 'kraken' \(remote, (.+, )?coinbase, (.+, )?sim"
    with pytest.raises(ConfigError, match=unknown):
        parse_config(ENGINE_YAML.replace("kind: coinbase", "kind: kraken"), env={})
    monkeypatch.setenv("RUN_CB_SECRET", "s3cret")
    config = parse_config(ENGINE_YAML)
    client = await build_client(config)
    try:
        assert isinstance(client, CoinbaseClient)
        assert client.config.rest_url == "http://127.0.0.1:9" and client.config.key_secret is not None
    finally:
        await client.aclose()
    sim = await build_client(
        parse_config("trading: {symbol: BTC-USDT, price_interval: 10, order_quantity: 20}\n")
    )
    try:
        assert sim.venue == "sim"
    finally:
        await sim.aclose()


def test_a_dumped_engine_config_never_shows_an_expanded_credential() -> None:
    from opensqt.config import parse_config

    text = ENGINE_YAML.replace("{env: RUN_CB_SECRET}", "'${RUN_CB_SECRET}'")
    config = parse_config(text, env={"RUN_CB_SECRET": "plain-s3cret"})
    assert config.venue.settings["credentials"]["key_secret"] == "plain-s3cret"  # the runner gets it
    dumped = json.dumps(config.model_dump(mode="json"))
    assert "plain-s3cret" not in dumped and '"key_secret": "***"' in dumped
