"""Execution reports and order messages of the matching engine (the protobuf edge of the sim).

Every number leaves as :func:`cqvx.num.dec_str` of the engine's exact Decimals."""

from __future__ import annotations

from decimal import Decimal

from cqc.venues.v1 import execution_pb2, order_pb2
from cqvx.num import ZERO, dec_str
from cqvx.timeutil import set_timestamp_ns
from cqvx.venues.sim.config import InstrumentSpec
from cqvx.venues.sim.orders import E_REJECTED, S_REJECTED, EventSink, SimOrder


class _Reports:
    """Report half of :class:`~cqvx.venues.sim.matching.MatchingEngine` (mixin: no state of its own)."""

    venue: str
    specs: dict[str, InstrumentSpec]
    sink: EventSink
    leverage: dict[str, Decimal]

    # -- reports ------------------------------------------------------------------------------------

    def _emit(
        self,
        order: SimOrder,
        exec_type: execution_pb2.ExecutionType.ValueType,
        *,
        last_price: Decimal | None = None,
        last_qty: Decimal | None = None,
        fee: Decimal | None = None,
        liquidity: execution_pb2.LiquiditySide.ValueType = execution_pb2.LIQUIDITY_SIDE_UNSPECIFIED,
        trade_id: str = "",
    ) -> None:
        order.exec_seq += 1
        if self.sink.wants_reports():
            self.sink.report(
                self.report(
                    order,
                    exec_type,
                    last_price=last_price,
                    last_qty=last_qty,
                    fee=fee,
                    liquidity=liquidity,
                    trade_id=trade_id,
                )
            )

    def _emit_rejected(self, order: SimOrder, reason: str) -> None:
        if self.sink.wants_reports():
            order.status = S_REJECTED
            order.reason = reason
            self.sink.report(self.report(order, E_REJECTED))

    def report(
        self,
        order: SimOrder,
        exec_type: execution_pb2.ExecutionType.ValueType,
        *,
        last_price: Decimal | None = None,
        last_qty: Decimal | None = None,
        fee: Decimal | None = None,
        liquidity: execution_pb2.LiquiditySide.ValueType = execution_pb2.LIQUIDITY_SIDE_UNSPECIFIED,
        trade_id: str = "",
    ) -> execution_pb2.ExecutionReport:
        # Fields that are empty for this report are left unset (proto3: the same bytes), which
        # saves a third of the message's construction for the reports without a trade.
        rep = execution_pb2.ExecutionReport(
            execution_id=f"{order.order_id or 'rejected-' + order.client_order_id}-{order.exec_seq}",
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            venue=self.venue,
            symbol=order.symbol,
            execution_type=exec_type,
            order_status=order.status,
            side=order.side,
            order_type=order.order_type,
            time_in_force=order.tif,
            order_quantity=dec_str(order.quantity),
            cumulative_quantity=dec_str(order.filled),
            remaining_quantity=dec_str(order.remaining if order.is_open else ZERO),
            post_only=order.post_only,
            reduce_only=order.reduce_only,
        )
        if order.price is not None:
            rep.order_price = dec_str(order.price)
        if order.filled:
            rep.average_fill_price = dec_str(order.average_price)
        if last_price is not None:
            rep.last_price = dec_str(last_price)
        if last_qty is not None:
            rep.last_quantity = dec_str(last_qty)
        if fee is not None:
            rep.fee = dec_str(fee)
            rep.fee_asset = self.specs[order.symbol].quote_asset
        if liquidity:
            rep.liquidity = liquidity
        if trade_id:
            rep.trade_id = trade_id
        if order.reason:
            rep.rejection_reason = order.reason
        if order.account_id:
            rep.account_id = order.account_id
        set_timestamp_ns(rep.transact_time, order.updated_ns)
        return rep

    def to_proto(self, order: SimOrder) -> order_pb2.Order:
        spec = self.specs[order.symbol]
        msg = order_pb2.Order(
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            venue=self.venue,
            symbol=order.symbol,
            venue_symbol=order.symbol,
            side=order.side,
            order_type=order.order_type,
            time_in_force=order.tif,
            quantity=dec_str(order.quantity),
            post_only=order.post_only,
            reduce_only=order.reduce_only,
            margin=order.margin,
            status=order.status,
            filled_quantity=dec_str(order.filled),
            remaining_quantity=dec_str(order.remaining if order.is_open else ZERO),
            total_fees=dec_str(order.fees),
            fee_asset=spec.quote_asset,
        )
        # Empty fields left unset, as in report() (proto3: the same bytes).
        if order.quote_quantity is not None:
            msg.quote_quantity = dec_str(order.quote_quantity)
        if order.price is not None:
            msg.price = dec_str(order.price)
        if order.filled:
            msg.average_fill_price = dec_str(order.average_price)
        if order.reason:
            msg.rejection_reason = order.reason
        if order.account_id:
            msg.account_id = order.account_id
        if order.strategy_id:
            msg.strategy_id = order.strategy_id
        set_timestamp_ns(msg.created_at, order.created_ns)
        set_timestamp_ns(msg.updated_at, order.updated_ns)
        if order.expires_ns is not None:
            set_timestamp_ns(msg.expires_at, order.expires_ns)
        if spec.is_perpetual:
            msg.leverage = dec_str(self.leverage[order.symbol])
        return msg
