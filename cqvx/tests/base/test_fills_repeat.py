"""cqvx.fills.FillTracker: a repeated state is answered without work and changes nothing; the first
fill is priced at the average, later fills from the change of filled value."""

from __future__ import annotations

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.fills import FillTracker

OPEN, PART, FILLED = (
    order_pb2.ORDER_STATUS_OPEN,
    order_pb2.ORDER_STATUS_PARTIALLY_FILLED,
    order_pb2.ORDER_STATUS_FILLED,
)


def _state(status: int, filled: str, avg: str, fees: str = "") -> order_pb2.Order:
    return order_pb2.Order(
        order_id="1",
        venue="v",
        symbol="S",
        status=status,  # type: ignore[arg-type]
        filled_quantity=filled,
        average_fill_price=avg,
        total_fees=fees,
        quantity="3",
    )


def test_repeats_report_nothing_and_fills_are_priced_from_value() -> None:
    t = FillTracker(venue="v")
    assert [r.execution_type for r in t.update(_state(OPEN, "0", ""))] == [execution_pb2.EXECUTION_TYPE_NEW]
    assert t.update(_state(OPEN, "0", "")) == []
    first = t.update(_state(PART, "1", "100.5", "0.1"))
    assert [(r.last_quantity, r.last_price, r.fee) for r in first] == [("1", "100.5", "0.1")]
    assert t.update(_state(PART, "1", "100.5", "0.1")) == []  # re-sent update: nothing new
    second = t.update(_state(FILLED, "3", "101", "0.3"))  # 1 @ 100.5 + 2 @ 101.25
    assert [(r.last_quantity, r.last_price, r.fee) for r in second] == [("2", "101.25", "0.2")]
    assert second[0].execution_id == "1:3"
    assert t.update(_state(FILLED, "3", "101", "0.3")) == []


def test_a_first_sight_fill_is_all_of_it_at_the_average() -> None:
    reps = FillTracker(venue="v").update(_state(FILLED, "0.001", "7100.5", "0.01"))
    assert [(r.execution_type, r.last_quantity, r.last_price, r.fee, r.trade_id) for r in reps] == [
        (execution_pb2.EXECUTION_TYPE_TRADE, "0.001", "7100.5", "0.01", "1:0.001")
    ]
