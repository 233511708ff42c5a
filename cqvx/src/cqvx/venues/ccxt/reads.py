"""The declarative reads of the ccxt quirk table (:mod:`.quirks`): how a venue's position mode is read
(:class:`ModeRead`, used by :mod:`.position_mode`) and how its funding-fee ledger is read
(:class:`LedgerRead`, used by :mod:`.funding` and :func:`.parse.parse_ledger_page`).  Types only; every
venue's values, with the docs they come from, are in the quirk table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["LedgerRead", "ModeRead"]


@dataclass(frozen=True, slots=True)
class ModeRead:
    """How one venue's position mode is read (:mod:`.position_mode`), and which documented answers
    mean what.

    ``how``: "ccxt" = ccxt's unified ``fetch_position_mode(symbol, params)`` (its ``info`` is the venue
    body); "endpoint" = ccxt's generated method for the venue's documented request, ``method(params)``
    (ccxt 4.5.90 has no unified read for the venue).  ``params`` are fixed; ``market_params`` are
    (param, ccxt market key) filled from the order's market: a venue keeping the mode per symbol (or
    per settle currency) is read once per such value.  ``path`` leads into the answer to the mode
    value; ``"*"`` = every item of a list (all must be one-way).  Values match by type and value.
    """

    how: Literal["ccxt", "endpoint"]
    method: str
    path: tuple[str | int, ...]
    one_way: tuple[object, ...]
    hedge: tuple[object, ...]
    doc: str
    params: tuple[tuple[str, object], ...] = ()
    market_params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class LedgerRead:
    """How one venue's funding-fee ledger is read (:mod:`.funding`, ``funding_payments="ledger"``): the
    venue's documented bill/ledger request through ccxt's generated method, ``method(params)``.

    ``params`` are fixed; ``market_params`` are (param, template) filled from the ccxt market of the
    symbol (``"{id}"``, ``"{settleId}"``).  Time window: ``since_param``/``until_param`` in
    ``time_unit_ms`` (1 = ms, 1000 = s), at most ``max_window_ms`` per request (0 = any), the last window
    open-ended (the venue's own "now").  ``rows_path`` leads into the reply to the list of rows.
    Pages: ``paging`` "after_last_id" = ``cursor_param`` set to the last row's id (rows newest first),
    "body_cursor" = set to the value at ``cursor_path`` in the reply, "offset" = ``cursor_param`` counts
    rows; a page shorter than ``limit`` is the last.  Row keys: ``id_key``, ``amount_key`` (signed as the
    venue documents it: + received), ``time_key`` (in ``time_unit_ms``), ``asset_key`` ("" = the
    market's settle currency), ``type_key``/``type_value`` (rows of another type are skipped) and
    ``symbol_key`` (rows of another instrument are skipped; a row without it is kept).
    """

    method: str
    doc: str
    params: tuple[tuple[str, object], ...]
    market_params: tuple[tuple[str, str], ...]
    since_param: str
    until_param: str
    rows_path: tuple[str, ...]
    paging: Literal["after_last_id", "body_cursor", "offset"]
    cursor_param: str
    id_key: str
    amount_key: str
    time_key: str
    asset_key: str
    type_key: str
    type_value: str
    symbol_key: str
    limit: int
    limit_param: str = "limit"
    time_unit_ms: int = 1
    max_window_ms: int = 0
    cursor_path: tuple[str, ...] = ()
