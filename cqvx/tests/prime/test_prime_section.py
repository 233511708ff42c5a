"""The ``prime`` config section through the registry: credentials from the environment, typed errors."""

from __future__ import annotations

import pytest

from cqvx.venues.prime import PrimeClient
from cqvx.venues.registry import VenueConfigError, registry

ENV = {"PK": "access", "PP": "pass", "PS": "signing-key", "PF": "3e1fe27e-7c1b-4a2f-9d6c-0f5e2a7b9c10"}
CREDS = {
    "access_key": {"env": "PK"},
    "passphrase": {"env": "PP"},
    "signing_key": {"env": "PS"},
    "portfolio_id": {"env": "PF"},
}


def test_build_from_yaml_shape() -> None:
    client = registry.build(
        "prime",
        {"credentials": CREDS, "rate_limits": {"portfolio_requests_per_second": 10, "portfolio_burst": 20}},
        path="venues.prime-main",
        environ=ENV,
    )
    assert isinstance(client, PrimeClient)
    cfg = client.config
    assert cfg.portfolio_id == ENV["PF"] and cfg.portfolio_burst == 20 and cfg.has_credentials
    assert "signing-key" not in repr(cfg) and "pass" not in repr(client)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"credentials": {**CREDS, "signing_key": {"env": "MISSING"}}}, "venues.p.credentials.signing_key"),
        ({"credentials": CREDS, "page_size": 0}, "venues.p.page_size"),
        ({"credentials": CREDS, "bogus": 1}, "venues.p.bogus: unknown key"),
    ],
)
def test_errors_name_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(VenueConfigError) as info:
        registry.build("prime", raw, path="venues.p", environ=ENV)
    assert message in str(info.value)
    assert "signing-key" not in str(info.value)
