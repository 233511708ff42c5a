"""The account's position mode (one-way or hedge), read before the first order on a derivative.

OpenSQT's grid models one net position per symbol (one-way mode).  A hedge-mode account would take
the same orders as opening a long and a short side separately, so a sell meant to reduce a long
opens a short instead.  The adapter therefore reads the mode with each venue's documented request
(the quirk line's :class:`ModeRead`) before placing on a derivative, and:

* one-way: places; the answer is kept (a venue lets the mode change only without open positions and
  orders, which a running grid has), so the read happens once per account (per symbol where the venue
  keeps the mode per symbol);
* hedge: refuses with :class:`~cqvx.errors.InvalidRequest` (not retry-safe: it does not go away by
  itself), nothing sent;
* unknown (the read failed, or answered anything but a documented value): refuses with
  :class:`~cqvx.errors.Unavailable` (retry-safe: nothing was sent), and the next placement reads again.
  Never placed as if one-way.  A read refused for the credentials (authentication, permission) keeps
  that error's own kind.

Spot symbols have no position mode and are never checked.  ``health`` reads again and reports a hedge
or unknown mode in ``last_error``; that read is capped at :attr:`PositionModeGuard.health_wait_s`
(``HEALTH_WAIT_S``), well inside the connector's ``health_timeout`` (5 s by default), so a slow mode
read never makes ``health`` miss it: past the cap the read is cancelled and the note says the mode is
unknown because the read did not answer in time (the next health poll or placement reads again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from cqvx.errors import AuthenticationError, InvalidRequest, PermissionDenied, Unavailable, VenueError
from cqvx.venues.ccxt.reads import ModeRead

if TYPE_CHECKING:
    from cqvx.venues.ccxt.client import CcxtClient

__all__ = ["PositionModeGuard", "classify"]

Mode = Literal["one-way", "hedge"]
# How long ``health`` waits for the position-mode reads (module docstring): below the connector's
# smallest sensible ``health_timeout`` once the venue's time read is counted.
HEALTH_WAIT_S = 1.0


class _Unexpected(Exception):
    pass


def _values(node: object, path: tuple[str | int, ...]) -> list[object]:
    if not path:
        return [node]
    head, rest = path[0], path[1:]
    if head == "*":
        if not isinstance(node, list):
            raise _Unexpected(f"expected a list at {head!r}")
        return [v for item in node for v in _values(item, rest)]
    if isinstance(head, int):
        if not isinstance(node, list) or not -len(node) <= head < len(node):
            raise _Unexpected(f"no item {head}")
        return _values(node[head], rest)
    if not isinstance(node, Mapping) or head not in node:
        raise _Unexpected(f"no key {head!r}")
    return _values(node[head], rest)


def _is(value: object, documented: tuple[object, ...]) -> bool:
    return any(type(value) is type(d) and value == d for d in documented)


def classify(read: ModeRead, answer: object) -> Mode | None:
    """The mode an answer documents: any documented hedge value is hedge (refused either way); one-way
    only when there are values and every one is the documented one-way value; else None (unknown)."""
    try:
        values = _values(answer, read.path)
    except _Unexpected:
        return None
    if any(_is(v, read.hedge) for v in values):
        return "hedge"
    if values and all(_is(v, read.one_way) for v in values):
        return "one-way"
    return None


class PositionModeGuard:
    """One per client: reads and remembers the position mode (module docstring)."""

    def __init__(self, client: CcxtClient) -> None:
        self._client = client
        self._one_way: set[tuple[object, ...]] = set()  # read keys known to be one-way
        self._seen: dict[tuple[object, ...], tuple[str, str]] = {}  # key -> (unified symbol, state)
        self.health_wait_s = HEALTH_WAIT_S

    @property
    def states(self) -> dict[str, str]:
        """The last state per market read: "one-way", "hedge" or "unknown: <why>" (for reports)."""
        return {unified: state for unified, state in self._seen.values()}

    def _args(self, unified: str) -> tuple[tuple[object, ...], dict[str, Any]]:
        read = self._client.quirks.position_mode
        params: dict[str, Any] = dict(read.params)
        market: Mapping[str, Any] = self._client._ex.market(unified) if read.market_params else {}
        for param, key in read.market_params:
            params[param] = market.get(key)
        return tuple(params[p] for p, _ in read.market_params), params

    async def read(self, unified: str) -> Mode:
        """Read the mode for ``unified``'s account (or symbol); raise when it is not known."""
        client = self._client
        read = client.quirks.position_mode
        key, params = self._args(unified)
        fn = getattr(client._ex, read.method)
        args: tuple[Any, ...] = (unified, params) if read.how == "ccxt" else (params,)
        try:
            answer = await client._call("read", fn, *args)
        except (AuthenticationError, PermissionDenied):
            self._seen[key] = (unified, "unknown: credentials refused")
            raise
        except VenueError as err:
            self._seen[key] = (unified, f"unknown: {type(err).__name__}")
            raise Unavailable(
                f"{client.venue}: could not read the account's position mode ({type(err).__name__}: "
                f"{err.message}); not placing until it is known to be one-way",
                venue=client.venue,
            ) from None
        mode = classify(read, answer)
        if mode is None:
            self._one_way.discard(key)
            self._seen[key] = (unified, "unknown: undocumented answer")
            raise Unavailable(
                f"{client.venue}: the position mode read ({read.method}) answered no documented value; "
                "not placing until it is known to be one-way",
                venue=client.venue,
            )
        self._seen[key] = (unified, mode)
        if mode == "hedge":
            self._one_way.discard(key)
        else:
            self._one_way.add(key)
        return mode

    async def ensure_one_way(self, canonical: str, unified: str) -> None:
        """Before a placement on ``canonical``: return when one-way, else raise (module docstring)."""
        client = self._client
        if not client._loaded().is_derivative(canonical):
            return
        key, _ = self._args(unified)
        if key in self._one_way:
            return
        if await self.read(unified) == "hedge":
            raise InvalidRequest(
                f"{client.venue}: the account is in hedge (dual-side) position mode; OpenSQT needs "
                "one-way mode: switch the account to one-way on the venue, then place again",
                venue=client.venue,
                retry_safe=False,
            )

    async def health_note(self) -> str:
        """Read again every market not known to be one-way (the first derivative when none was read
        yet; one known one-way is not read again, as for placements, so a health poll costs no
        request then): "" when all are one-way, else a note for ``VenueHealth.last_error``."""
        client = self._client
        index = client._index
        if index is None:
            return ""
        wanted = [unified for key, (unified, _) in self._seen.items() if key not in self._one_way]
        if not self._seen:
            first = next((s for s in index.symbols.canonical_symbols() if index.is_derivative(s)), None)
            if first is None:
                return ""
            wanted = [index.symbols.to_venue(first)]
        notes: list[str] = []
        pending = list(dict.fromkeys(wanted))
        try:
            async with asyncio.timeout(self.health_wait_s):
                while pending:
                    notes.append(await self._health_read(pending[0]))
                    pending.pop(0)
        except TimeoutError:  # the read in flight is cancelled: health answers in time
            notes.extend(
                f"position mode unknown ({unified}): the read did not answer within {self.health_wait_s:g} s"
                for unified in pending
            )
        return "; ".join(note for note in notes if note)

    async def _health_read(self, unified: str) -> str:
        try:
            mode = await self.read(unified)
        except VenueError as err:
            return f"position mode unknown ({unified}): {type(err).__name__}"
        if mode == "hedge":
            return f"position mode hedge ({unified}): OpenSQT needs one-way; placement refused"
        return ""
