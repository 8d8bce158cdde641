"""Bad-input guard of the live engine: every rejected bar is counted and kept for display."""

from __future__ import annotations

import math
import numbers
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

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
    "late",  # at or before a timestamp of an earlier batch (that step is already taken)
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
    clock : int or None
        Latest timestamp accepted by an earlier :meth:`check` call (None before any).

    Notes
    -----
    Order is checked per symbol against the last *accepted* bar, so a rejected bar
    never moves a symbol's clock. Across symbols, a bar whose timestamp is at or before
    the latest timestamp accepted in an *earlier* :meth:`check` call (:attr:`clock`) is
    rejected as ``"late"``: the engine has already taken that step (features, decisions),
    and a second step for one timestamp, or a step back in time, would shift every
    symbol's feature history against research's one row per timestamp (e.g. a feed that
    splits one minute's bars over two batches). Nothing here raises on bad data. Timestamps may be
    Python or numpy integers (not bools) and OHLCV any real numbers (not bools); the
    accepted bars carry ``int`` and ``float``.
    """

    def __init__(self, symbols: Sequence[str], keep: int = 200):
        self.symbols = tuple(symbols)
        self._known = frozenset(self.symbols)
        self.last_ts: dict[str, int] = {}
        self.counts: Counter[str] = Counter()
        self.recent: deque[dict[str, Any]] = deque(maxlen=int(keep))
        self.accepted = 0
        self.last_rejected: list[dict[str, Any]] = []
        self.clock: int | None = None

    def restore(self, last_ts: dict[str, int]) -> None:
        """Set each symbol's last accepted timestamp (after a restart); the clock follows."""
        self.last_ts.update({k: int(v) for k, v in last_ts.items()})
        if self.last_ts:
            self.clock = max(self.last_ts.values())

    def _reject(self, reason: str, symbol: Any, ts: Any, detail: str) -> None:
        self.counts[reason] += 1
        entry = {"reason": reason, "symbol": str(symbol)[:40], "ts": ts, "detail": detail[:200]}
        self.recent.append(entry)
        self.last_rejected.append(entry)

    def check(self, batch: Iterable[Any]) -> list[Bar]:
        """Filter one feed batch.

        The batch's bars with a well-typed timestamp are checked in timestamp order
        (stable: bars of one timestamp keep their input order), so a batch may hold
        several timestamps of a symbol in any order; everything else (``Malformed``,
        non-bars, bars whose timestamp is not an integer) is rejected as malformed.

        Parameters
        ----------
        batch : iterable of Bar or Malformed (anything else is malformed)

        Returns
        -------
        list of Bar
            The accepted bars in timestamp order (the rejections of this call are in
            :attr:`last_rejected`). Numpy scalars are converted: the timestamp to
            ``int``, OHLCV to ``float``.
        """
        self.last_rejected = []
        bars: list[Bar] = []
        for item in batch:
            if isinstance(item, Malformed):
                self._reject("malformed", "", None, f"{item.reason}: {item.raw}")
            elif not isinstance(item, Bar):
                self._reject("malformed", "", None, f"not a bar: {type(item).__name__}")
            elif not _is_int(item.ts):
                self._reject("malformed", item.symbol, item.ts,
                             f"ts {item.ts!r} has the wrong type (an integer of ns since "
                             "the epoch is needed)")
            else:
                bars.append(item)
        bars.sort(key=lambda b: int(b.ts))  # stable: input order within a timestamp
        out: list[Bar] = []
        clock = self.clock  # of the earlier calls: this call's timestamps are all new
        for bar in bars:
            reason = self._problem(bar)
            if reason is None and clock is not None and bar.ts <= clock:
                reason = ("late", f"ts {bar.ts} <= {clock}, the latest timestamp of an "
                                  "earlier batch (its step is already taken)")
            if reason is not None:
                self._reject(reason[0], bar.symbol, bar.ts, reason[1])
                continue
            bar = _plain(bar)
            self.last_ts[bar.symbol] = bar.ts
            self.accepted += 1
            out.append(bar)
        if out:
            self.clock = out[-1].ts if clock is None else max(clock, out[-1].ts)
        return out

    def _problem(self, bar: Bar) -> tuple[str, str] | None:
        if not isinstance(bar.symbol, str):
            return "malformed", f"symbol {bar.symbol!r} has the wrong type (str needed)"
        if not TS_MIN <= bar.ts <= TS_MAX:
            return "malformed", (f"ts {bar.ts} is outside the int64 ns timestamp range "
                                 "(1677-09-21 to 2262-04-11)")
        if bar.symbol not in self._known:
            return "unknown_symbol", f"{bar.symbol!r} is not traded"
        values = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        if not all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
                   for v in values):
            return "malformed", f"non-numeric field in {values!r}"
        try:
            finite = all(math.isfinite(v) for v in values)
        except OverflowError:  # an int too large for a float
            return "malformed", f"OHLCV {values!r} do not fit a float"
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


def _is_int(ts: Any) -> bool:
    """True for Python and numpy integers (``DatetimeIndex.asi8`` items), not for bools."""
    return isinstance(ts, numbers.Integral) and not isinstance(ts, (bool, np.bool_))


def _plain(bar: Bar) -> Bar:
    """``bar`` with an ``int`` timestamp and ``float`` OHLCV (numpy scalars converted)."""
    if type(bar.ts) is int and all(type(v) is float for v in
                                   (bar.open, bar.high, bar.low, bar.close, bar.volume)):
        return bar
    return Bar(bar.symbol, int(bar.ts), float(bar.open), float(bar.high), float(bar.low),
               float(bar.close), float(bar.volume))
