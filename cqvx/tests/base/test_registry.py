"""cqvx.venues.registry: venues by name, typed sections, credentials from env/files, key-path errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cqvx.client import VenueClient
from cqvx.venues.coinbase import CoinbaseClient
from cqvx.venues.coinbase.section import CoinbaseSection
from cqvx.venues.registry import VenueConfigError, VenueRegistry, registry
from cqvx.venues.sim import SimVenue


def test_builtin_venues_are_registered() -> None:
    assert {"sim", "coinbase"} <= set(registry.names())


async def test_sim_section_reaches_the_client() -> None:
    sim = registry.build("sim", {"seed": 11, "speed": 5, "rate_limit": {"per_second": 2, "burst": 3}})
    assert isinstance(sim, SimVenue)
    assert sim.config.seed == 11 and sim.config.rate_limit is not None and sim.config.rate_limit.burst == 3
    await sim.aclose()


async def test_coinbase_credentials_from_env_and_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("file-secret\n", encoding="utf-8")
    client = registry.build(
        "coinbase",
        {
            "credentials": {"key_name": {"env": "KN"}, "key_secret": {"file": str(secret)}},
            "rest_url": "http://127.0.0.1:1",
            "rate_limits": {"private_rps": 7},
        },
        environ={"KN": "legacy-name"},
    )
    assert isinstance(client, CoinbaseClient)
    cfg = client.config
    assert cfg.key_name == "legacy-name" and cfg.key_secret is not None
    assert cfg.key_secret.reveal() == "file-secret"
    assert cfg.private_rps == 7 and cfg.rest_url == "http://127.0.0.1:1"
    assert "file-secret" not in repr(
        registry.parse("coinbase", {"credentials": {"key_name": "a", "key_secret": "file-secret"}})
    )
    await client.aclose()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"credentials": {"key_name": "k", "key_secret": {"env": "CB_KEY"}}},
            "venues.cb1.credentials.key_secret: environment variable CB_KEY is not set",
        ),
        (
            {"credentials": {"key_name": "k", "key_secret": {"file": "/nonexistent/x"}}},
            "secret file /nonexistent/x",
        ),
        ({"credentials": {"key_name": "k", "key_secret": {"vault": "x"}}}, "expected {env: VARIABLE}"),
        ({"credentials": {"key_name": "k"}}, "venues.cb1.credentials: key_secret: required"),
        ({"timeout_s": 0}, "venues.cb1.timeout_s: must be > 0"),
        ({"rest": "x"}, "venues.cb1.rest: unknown key"),
    ],
)
def test_errors_name_the_key_path(raw: dict[str, object], message: str) -> None:
    with pytest.raises(VenueConfigError) as info:
        registry.build("coinbase", raw, path="venues.cb1", environ={})
    assert message in str(info.value)


def test_unknown_type_lists_the_registered_ones() -> None:
    with pytest.raises(
        VenueConfigError, match=r"venues\.x\.type: unknown venue type 'kraken' \(registered: .*coinbase"
    ):
        registry.build("kraken", {}, path="venues.x")


def test_a_new_venue_registers_the_same_way() -> None:
    own = VenueRegistry()
    made: list[CoinbaseSection] = []

    def factory(section: CoinbaseSection) -> VenueClient:
        made.append(section)
        return CoinbaseClient(section.to_config())

    own.register("cb2", CoinbaseSection, factory)
    with pytest.raises(ValueError, match="already registered"):
        own.register("cb2", CoinbaseSection, factory)
    own.parse("cb2", {})
    assert own.names() == ["cb2"]
