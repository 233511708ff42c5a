"""The five ccxt venue types in the registry, and the commented example config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cqvx.venues.ccxt import CcxtClient
from cqvx.venues.registry import VenueConfigError, registry

ENV = {"K": "key-value", "S": "secret-value", "P": "pass-value"}
CREDS = {"api_key": {"env": "K"}, "secret": {"env": "S"}}


@pytest.mark.parametrize("venue", ["binance", "bybit", "okx", "bitget", "gate"])
async def test_each_venue_type_builds_a_ccxt_client(venue: str) -> None:
    creds = {**CREDS, "passphrase": {"env": "P"}}
    client = registry.build(venue, {"credentials": creds}, path=f"venues.{venue}", environ=ENV)
    assert isinstance(client, CcxtClient) and client.venue == venue
    assert client.quirks.venue == venue
    await client.aclose()


@pytest.mark.parametrize("venue", ["okx", "bitget"])
def test_passphrase_is_required_where_the_venue_has_one(venue: str) -> None:
    with pytest.raises(VenueConfigError, match=f"venues.x: .*passphrase: required by {venue}"):
        registry.parse(venue, {"credentials": CREDS}, path="venues.x", environ=ENV)


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
    }
    assert {body["type"] for body in venues.values()} == {"binance", "bybit", "okx", "bitget", "gate"}
    for name, body in venues.items():
        raw = {k: v for k, v in body.items() if k != "type"}
        registry.parse(body["type"], raw, path=f"venues.{name}", environ=env)
