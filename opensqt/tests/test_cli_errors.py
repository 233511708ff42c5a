"""Bad input gets a clean answer: one line on stderr naming the problem, exit code 2, no traceback.

Every command that reads a config file is covered: ``run``, ``check-config``, ``paper --config`` and
``connector --config``; plus ``resync``'s required arguments.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from opensqt.cli import _register_plugins, app

_register_plugins()


def _level(i: int) -> str:
    name, below = chr(ord("b") + i), chr(ord("a") + i)
    return f"{name}: &{name} [{','.join(['*' + below] * 9)}]\n"


CASES = {
    "not-utf8": (b"trading:\n  symbol: \xff\xfe\n", "not UTF-8"),
    # Nine levels of nested aliases would expand to 10**9 nodes; refused before any expansion.
    "alias-bomb": (
        b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
        + b"".join(_level(i).encode() for i in range(8)),
        "aliases (*name) are not allowed",
    ),
    "huge-exponent": (
        b"trading:\n  symbol: BTC-USDT-PERP\n  price_interval: 1e400\n  order_quantity: 10\n",
        "trading.price_interval",
    ),
    "broken-yaml": (b"trading: [\n", "not valid YAML"),
    "deep-nesting": (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested more than 64 levels"),
    "huge-integer": (b"trading:\n  buy_window_size: " + b"9" * 5000 + b"\n", "trading.buy_window_size"),
}
CONNECTOR_CASES = {
    **{k: v for k, v in CASES.items() if k != "huge-exponent"},
    "huge-exponent": (b"venues:\n  sim: {type: sim, latency: 1e400}\n", "venues.sim.latency"),
    "huge-integer": (b"connector:\n  port: " + b"9" * 5000 + b"\n", "connector.port"),
}


def _commands(path: Path) -> list[list[str]]:
    return [
        ["check-config", str(path)],
        ["run", "--config", str(path), "--state", str(path.with_suffix(".db"))],
        ["paper", "--config", str(path), "--state", str(path.with_suffix(".db"))],
    ]


def _assert_clean(result: object, needle: str) -> None:
    exit_code = getattr(result, "exit_code", None)
    stderr = getattr(result, "stderr", "")
    assert exit_code == 2, (exit_code, getattr(result, "output", ""), getattr(result, "exception", None))
    assert "Traceback" not in stderr and getattr(result, "exception", None).__class__ is SystemExit
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert needle in lines[0], lines[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_engine_commands_answer_bad_config_in_one_line(case: str, tmp_path: Path) -> None:
    body, needle = CASES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(body)
    for argv in _commands(path):
        _assert_clean(CliRunner().invoke(app, argv), needle)


@pytest.mark.parametrize("case", sorted(CONNECTOR_CASES))
def test_connector_answers_bad_config_in_one_line(case: str, tmp_path: Path) -> None:
    body, needle = CONNECTOR_CASES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(body)
    _assert_clean(CliRunner().invoke(app, ["connector", "--config", str(path)]), needle)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    for argv in [*_commands(missing), ["connector", "--config", str(missing)]]:
        _assert_clean(CliRunner().invoke(app, argv), "No such file")


def test_resync_needs_operator_and_reason(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("trading:\n  symbol: BTC-USDT-PERP\n  price_interval: 10\n  order_quantity: 10\n")
    missing = CliRunner().invoke(app, ["resync", "--config", str(cfg), "--reason", "venue lost state"])
    assert missing.exit_code == 2 and "--operator" in missing.output + missing.stderr
    missing = CliRunner().invoke(app, ["resync", "--config", str(cfg), "--operator", "alice"])
    assert missing.exit_code == 2 and "--reason" in missing.output + missing.stderr
    blank = CliRunner().invoke(app, ["resync", "--config", str(cfg), "--operator", " ", "--reason", "x"])
    _assert_clean(blank, "--operator")
    blank = CliRunner().invoke(app, ["resync", "--config", str(cfg), "--operator", "alice", "--reason", ""])
    _assert_clean(blank, "--reason")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff")
    _assert_clean(
        CliRunner().invoke(app, ["resync", "--config", str(bad), "--operator", "alice", "--reason", "r"]),
        "not UTF-8",
    )


def test_resync_adopts_the_venue_state_and_writes_an_audit_record(tmp_path: Path) -> None:
    """The whole command: config -> venue (the in-process sim) -> engine resync -> audit row."""
    from opensqt.config import load_config
    from opensqt.engine.store import StateStore, sqlite_url

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "venue:\n  kind: sim\ntrading:\n  symbol: BTC-USDT-PERP\n  price_interval: 10\n  order_quantity: 10\n"
    )
    state = tmp_path / "state.db"
    result = CliRunner().invoke(
        app,
        ["resync", "--config", str(cfg), "--state", str(state), "--operator", "alice", "--reason", "lost"],
    )
    assert result.exit_code == 0, result.output + result.stderr
    assert "resynced by alice (lost)" in result.output
    config = load_config(cfg)
    store = StateStore(sqlite_url(state), table_prefix=config.state.table_prefix)
    try:
        audit = store.load_audit(config.trading.symbol)
    finally:
        store.engine.dispose()
    assert [(a.operator, a.reason) for a in audit] == [("alice", "lost")]
