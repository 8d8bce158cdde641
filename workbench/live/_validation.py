"""Bad-input guard of the live engine: every rejected bar is counted and kept for display."""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from typing import Any

from ._types import Bar, Malformed

__all__ = ["BarValidator", "REJECT_REASONS"]

#: Timestamps are int64 ns since the epoch (UTC): 1677-09-21 to 2262-04-11
#: (``pandas.Timestamp.min``/``max``); anything else cannot be stored or charted.
TS_MIN, TS_MAX = -(2**63) + 1, 2**63 - 1

#: Reasons a feed item is rejected, in the order they are checked.
REJECT_REASONS = (
    "malformed",  # not a Bar: unparseable message, wrong types, ts outside the ns range
    "unknown_symbol",  # not one of the engine's symbols
    "non_finite",  # NaN or inf in open/high/low/close/volume
    "non_positive_price",  # a price <= 0
    "negative_volume",  # volume < 0
    "inconsistent_ohlc",  # high below open/close or low above them
    "duplicate",  # same timestamp as the symbol's last accepted bar
    "out_of_order",  # earlier than the symbol's last accepted bar
)


class BarValidator:
    """Accept well-formed, in-order bars of known symbols; reject and count the rest.

    Parameters
    ----------
    symbols : sequence of str
        The symbols the engine trades.
    keep : int, default 200
        Number of recent rejections kept (for the app's bad-input panel).

    Attributes
    ----------
    counts : collections.Counter
        Rejections per reason (keys from :data:`REJECT_REASONS`).
    recent : collections.deque of dict
        The latest rejections: ``{"reason", "symbol", "ts", "detail"}``.
    last_rejected : list of dict
        The rejections of the latest :meth:`check` call.
    accepted : int
        Bars accepted so far.

    Notes
    -----
    Order is checked per symbol against the last *accepted* bar, so a rejected bar
    never moves a symbol's clock. Nothing here raises on bad data.
    """

    def __init__(self, symbols: Sequence[str], keep: int = 200):
        self.symbols = tuple(symbols)
        self._known = frozenset(self.symbols)
        self.last_ts: dict[str, int] = {}
        self.counts: Counter[str] = Counter()
        self.recent: deque[dict[str, Any]] = deque(maxlen=int(keep))
        self.accepted = 0
        self.last_rejected: list[dict[str, Any]] = []

    def restore(self, last_ts: dict[str, int]) -> None:
        """Set each symbol's last accepted timestamp (after a restart)."""
        self.last_ts.update({k: int(v) for k, v in last_ts.items()})

    def _reject(self, reason: str, symbol: Any, ts: Any, detail: str) -> None:
        self.counts[reason] += 1
        entry = {"reason": reason, "symbol": str(symbol)[:40], "ts": ts, "detail": detail[:200]}
        self.recent.append(entry)
        self.last_rejected.append(entry)

    def check(self, batch: Iterable[Any]) -> list[Bar]:
        """Filter one feed batch.

        Parameters
        ----------
        batch : iterable of Bar or Malformed (anything else is malformed)

        Returns
        -------
        list of Bar
            The accepted bars, in input order (the rejections of this call are in
            :attr:`last_rejected`).
        """
        self.last_rejected = []
        out: list[Bar] = []
        for item in batch:
            if isinstance(item, Malformed):
                self._reject("malformed", "", None, f"{item.reason}: {item.raw}")
                continue
            if not isinstance(item, Bar):
                self._reject("malformed", "", None, f"not a bar: {type(item).__name__}")
                continue
            reason = self._problem(item)
            if reason is not None:
                self._reject(reason[0], item.symbol, item.ts, reason[1])
                continue
            self.last_ts[item.symbol] = item.ts
            self.accepted += 1
            out.append(item)
        return out

    def _problem(self, bar: Bar) -> tuple[str, str] | None:
        if not isinstance(bar.symbol, str) or isinstance(bar.ts, bool) or not isinstance(
                bar.ts, int):
            return "malformed", f"symbol {bar.symbol!r} / ts {bar.ts!r} have the wrong type"
        if not TS_MIN <= bar.ts <= TS_MAX:
            return "malformed", (f"ts {bar.ts} is outside the int64 ns timestamp range "
                                 "(1677-09-21 to 2262-04-11)")
        if bar.symbol not in self._known:
            return "unknown_symbol", f"{bar.symbol!r} is not traded"
        values = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        try:
            finite = all(math.isfinite(v) for v in values)
        except TypeError:
            return "malformed", f"non-numeric field in {values!r}"
        if not finite:
            return "non_finite", f"OHLCV {values!r}"
        if min(bar.open, bar.high, bar.low, bar.close) <= 0:
            return "non_positive_price", f"OHLC {values[:4]!r}"
        if bar.volume < 0:
            return "negative_volume", f"volume {bar.volume!r}"
        if bar.high < max(bar.open, bar.close) or bar.low > min(bar.open, bar.close):
            return "inconsistent_ohlc", f"OHLC {values[:4]!r}"
        last = self.last_ts.get(bar.symbol)
        if last is not None and bar.ts == last:
            return "duplicate", f"ts {bar.ts} already seen"
        if last is not None and bar.ts < last:
            return "out_of_order", f"ts {bar.ts} < last {last}"
        return None
