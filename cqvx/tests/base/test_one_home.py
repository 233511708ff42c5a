"""One home for each shared fact (issue 10): a copy appearing anywhere else fails this test.

| fact | its one home |
|---|---|
| terminal / open order statuses | ``cqvx.types.TERMINAL_STATUSES`` / ``OPEN_STATUSES`` |
| ExecutionReport built from an Order | ``cqvx.types.report_from_order`` |
| candle interval <-> width in seconds | ``cqvx.timeutil.CANDLE_SECONDS`` / ``candle_interval`` |
| datetime / ns / ms <-> ``google.protobuf.Timestamp`` | ``cqvx.timeutil`` |

The scan reads ``cqvx/src`` and ``opensqt/src`` with :mod:`ast` and flags: a set/tuple/list literal
holding both ORDER_STATUS_FILLED and ORDER_STATUS_CANCELLED (or all four open statuses); a dict that
maps CANDLE_INTERVAL_* to or from numbers; ``Timestamp(...)`` constructed with fields or any of
protobuf's Timestamp conversion methods (``FromDatetime``, ``ToNanoseconds``, ...); and
``ExecutionReport(...)`` constructed directly.

``WIRE_BUILDERS`` are permanent: venues that build reports from their own wire or matching state
(fills, acknowledgements), not from an Order.  ``PENDING_CLEANUP`` lists files other helpers were
editing when the homes were made; the integrator switches them to the homes and empties the list (a
listed file that no longer holds a copy fails ``test_pending_cleanup_list_is_not_stale``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SOURCES = [ROOT / "cqvx" / "src", ROOT / "opensqt" / "src"]

HOMES = {
    "status": {"cqvx/src/cqvx/types.py"},
    "report": {"cqvx/src/cqvx/types.py"},
    "candle": {"cqvx/src/cqvx/timeutil.py"},
    "timestamp": {"cqvx/src/cqvx/timeutil.py"},
}
WIRE_BUILDERS = {
    # Coinbase fill reports and the create-order acknowledgement, built from the venue's payloads.
    ("report", "cqvx/src/cqvx/venues/coinbase/parse/orders.py"),
    # The simulated venue's own reports, built from its matching state (fill price, fee, liquidity).
    ("report", "cqvx/src/cqvx/venues/sim/reports.py"),
    # Prime fill reports (one per fill, trade_id = Prime's fill id), built from the fills payload.
    ("report", "cqvx/src/cqvx/venues/prime/parse.py"),
}
# Files other helpers were editing concurrently; the integrator switches them to the homes:
PENDING_CLEANUP: set[tuple[str, str]] = set()

_TIMESTAMP_METHODS = frozenset(
    f"{d}{u}"
    for d in ("From", "To")
    for u in ("Datetime", "Seconds", "Milliseconds", "Microseconds", "Nanoseconds")
)
_OPEN = {
    "ORDER_STATUS_PENDING_NEW",
    "ORDER_STATUS_OPEN",
    "ORDER_STATUS_PARTIALLY_FILLED",
    "ORDER_STATUS_PENDING_CANCEL",
}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _numeric(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Constant) and isinstance(n.value, int | float) and not isinstance(n.value, bool)
        for n in ast.walk(node)
    )


def _copies(tree: ast.AST) -> Iterator[tuple[str, int, str]]:
    """(fact, line, what) for every copy of a shared fact in one module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Set | ast.Tuple | ast.List):
            names = {_name(e) for e in node.elts}
            if {"ORDER_STATUS_FILLED", "ORDER_STATUS_CANCELLED"} <= names:
                yield "status", node.lineno, "a terminal-status set"
            elif names >= _OPEN:
                yield "status", node.lineno, "an open-status set"
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:
                    continue
                if (_name(key).startswith("CANDLE_INTERVAL_") and _numeric(value)) or (
                    _name(value).startswith("CANDLE_INTERVAL_") and _numeric(key)
                ):
                    yield "candle", node.lineno, "a candle interval <-> seconds table"
                    break
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            attrs = {
                n.attr
                for side in (node.left, node.right)
                for n in ast.walk(side)
                if isinstance(n, ast.Attribute)
            }
            if {"seconds", "nanos"} <= attrs:
                yield "timestamp", node.lineno, "seconds + nanos arithmetic on a Timestamp"
        elif isinstance(node, ast.Call):
            func = _name(node.func)
            if func == "Timestamp" and (node.args or node.keywords):
                yield "timestamp", node.lineno, "Timestamp(...) built from fields"
            elif isinstance(node.func, ast.Attribute) and func in _TIMESTAMP_METHODS:
                yield "timestamp", node.lineno, f".{func}()"
            elif func == "ExecutionReport":
                yield "report", node.lineno, "ExecutionReport(...) built field by field"


def _scan() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for root in SOURCES:
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"), rel)
            for fact, line, what in _copies(tree):
                if rel not in HOMES[fact]:
                    found.setdefault((fact, rel), []).append(f"{rel}:{line}: {what}")
    return found


def test_each_shared_fact_has_one_home() -> None:
    found = _scan()
    copies = [
        hit for key, hits in found.items() if key not in WIRE_BUILDERS | PENDING_CLEANUP for hit in hits
    ]
    assert not copies, "copies of a shared fact outside its home (see this module's table):\n" + "\n".join(
        copies
    )


def test_pending_cleanup_list_is_not_stale() -> None:
    found = _scan()
    stale = sorted(f"{fact}: {path}" for fact, path in PENDING_CLEANUP if (fact, path) not in found)
    assert not stale, "cleaned up: remove from PENDING_CLEANUP in test_one_home.py:\n" + "\n".join(stale)


@pytest.mark.parametrize(
    ("source", "fact"),
    [
        ("S = frozenset({order_pb2.ORDER_STATUS_FILLED, order_pb2.ORDER_STATUS_CANCELLED})", "status"),
        ("x in (ORDER_STATUS_CANCELLED, ORDER_STATUS_FILLED, ORDER_STATUS_REJECTED)", "status"),
        ("T = {candle_pb2.CANDLE_INTERVAL_1MIN: 60}", "candle"),
        ("T = {60: candle_pb2.CANDLE_INTERVAL_1MIN}", "candle"),
        ("T = {1: ('ONE_MINUTE', 60), candle_pb2.CANDLE_INTERVAL_5MIN: ('FIVE_MINUTE', 300)}", "candle"),
        ("ts = Timestamp(seconds=s, nanos=n)", "timestamp"),
        ("ts.FromDatetime(moment)", "timestamp"),
        ("ms = ts.ToMilliseconds()", "timestamp"),
        ("r = execution_pb2.ExecutionReport(order_id=o.order_id)", "report"),
        ("t = trade.timestamp.seconds + trade.timestamp.nanos / 1e9", "timestamp"),
    ],
)
def test_the_scan_recognises_a_copy(source: str, fact: str) -> None:
    assert [f for f, _, _ in _copies(ast.parse(source))] == [fact]


@pytest.mark.parametrize(
    "source",
    [
        "NAMES = {candle_pb2.CANDLE_INTERVAL_1MIN: 'ONE_MINUTE'}",  # a venue's wire names: its own fact
        "x in (order_pb2.ORDER_STATUS_OPEN, order_pb2.ORDER_STATUS_PARTIALLY_FILLED)",
        "E = {order_pb2.ORDER_STATUS_FILLED: E_TRADE, order_pb2.ORDER_STATUS_CANCELLED: E_CANCELLED}",
        "ts = Timestamp()",
        "report = report_from_order(order, etype)",
    ],
)
def test_the_scan_leaves_other_facts_alone(source: str) -> None:
    assert list(_copies(ast.parse(source))) == []
