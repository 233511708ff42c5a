"""The five ccxt venue types in the registry, and the commented example config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cqvx.venues.ccxt import CcxtClient
from cqvx.venues.registry import VenueConfigError, registry

ENV = {"K": "key-value", "S": "secret-value", "P": "pass-value", "U": "10001"}
CREDS = {"api_key": {"env": "K"}, "secret": {"env": "S"}}


@pytest.mark.parametrize("venue", ["binance", "bybit", "okx", "bitget", "gate"])
async def test_each_venue_type_builds_a_ccxt_client(venue: str) -> None:
    creds = {**CREDS, "passphrase": {"env": "P"}, "uid": {"env": "U"}}
    client = registry.build(venue, {"credentials": creds}, path=f"venues.{venue}", environ=ENV)
    assert isinstance(client, CcxtClient) and client.venue == venue
    assert client.quirks.venue == venue
    await client.aclose()


@pytest.mark.parametrize("venue", ["okx", "bitget"])
def test_passphrase_is_required_where_the_venue_has_one(venue: str) -> None:
    with pytest.raises(VenueConfigError, match=f"venues.x: .*passphrase: required by {venue}"):
        registry.parse(venue, {"credentials": CREDS}, path="venues.x", environ=ENV)


def test_gate_requires_the_uid_and_hands_it_to_ccxt() -> None:
    with pytest.raises(VenueConfigError, match=r"venues.g: .*credentials.uid: required by gate"):
        registry.parse("gate", {"credentials": CREDS}, path="venues.g", environ=ENV)
    section = registry.parse(
        "gate", {"credentials": {**CREDS, "uid": {"env": "U"}}}, path="venues.g", environ=ENV
    )
    assert section.to_config().uid == "10001"  # type: ignore[attr-defined]
    client = registry.build("gate", {"credentials": {**CREDS, "uid": "10001"}}, path="venues.g", environ=ENV)
    assert isinstance(client, CcxtClient) and client._ex.uid == "10001"


def test_settle_reaches_the_client_config() -> None:
    creds = {**CREDS, "passphrase": {"env": "P"}}
    section = registry.parse("okx", {"credentials": creds, "settle": "USDC"}, path="venues.o", environ=ENV)
    assert section.to_config().settle == "USDC"  # type: ignore[attr-defined]
    section = registry.parse("okx", {"credentials": creds}, path="venues.o", environ=ENV)
    assert section.to_config().settle == ""  # type: ignore[attr-defined]  # derived from the markets


def test_ws_url_moves_every_websocket_url_paths_kept() -> None:
    # Gate keeps its futures WebSocket urls under urls['api']['swap'], not under ['ws'].
    raw = {"credentials": {**CREDS, "uid": "1"}, "ws_url": "ws://127.0.0.1:9"}
    client = registry.build("gate", raw, path="venues.g", environ=ENV)
    assert isinstance(client, CcxtClient)
    assert client._ex.urls["api"]["swap"]["usdt"] == "ws://127.0.0.1:9/v4/ws/usdt"
    assert client._ex.urls["api"]["private"]["wallet"] == "https://api.gateio.ws/api/v4"  # REST untouched


def test_a_missing_variable_names_the_key_path_not_a_value() -> None:
    with pytest.raises(VenueConfigError) as caught:
        registry.parse(
            "binance", {"credentials": {"api_key": {"env": "NOPE"}, "secret": "x"}}, path="venues.b"
        )
    assert "venues.b.credentials.api_key" in str(caught.value) and "NOPE" in str(caught.value)


def test_example_config_sections_validate() -> None:
    repo = Path(__file__).resolve().parents[3]
    text = (repo / "configs" / "connector.ccxt.example.yaml").read_text(encoding="utf-8")
    # Uncomment every venue block (commented YAML key lines; prose comments stay comments).
    key_line = re.compile(r"^  # (\s*[a-z_-]+:( .*)?)$")
    uncommented = "\n".join(
        "  " + m.group(1) if (m := key_line.match(line)) else line for line in text.splitlines()
    )
    venues = yaml.safe_load(uncommented.replace("${OPENSQT_CONNECTOR_PORT:-50051}", "50051"))["venues"]
    env = {
        f"{v}_{k}": "x"
        for v in ("BINANCE", "BYBIT", "OKX", "BITGET", "GATE")
        for k in ("API_KEY", "API_SECRET", "PASSPHRASE")
    } | {"GATE_UID": "1"}
    assert {body["type"] for body in venues.values()} == {"binance", "bybit", "okx", "bitget", "gate"}
    for name, body in venues.items():
        raw = {k: v for k, v in body.items() if k != "type"}
        registry.parse(body["type"], raw, path=f"venues.{name}", environ=env)
