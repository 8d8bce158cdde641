"""Market-data feeds for the live engine: a replay of bundled history and an Alpaca stream.

The feed interface
------------------
A feed is an iterator of **batches**: ``for batch in feed:`` yields ``list[Bar | Malformed]``
(records from :mod:`workbench.data._records`), one batch per bar timestamp. Bars are passed on as
received: a feed never cleans, fills or drops a bad bar (the engine's validator does that);
a message that cannot be read as a bar at all becomes a :class:`~workbench.data._records.Malformed`
with a reason.

Control methods are thread-safe, so a UI thread can steer a feed that an engine thread iterates:

- :meth:`Feed.start` begins the feed (iterating a feed that was never started starts it);
  :meth:`Feed.stop` ends it for good: the iteration in progress ends (``StopIteration``), even
  while it is blocked or paused, and batches not yet taken are dropped.
- :meth:`Feed.pause` / :meth:`Feed.resume`: iteration blocks while paused.
- :attr:`Feed.running`, :attr:`Feed.paused`, :attr:`Feed.symbols` (tuple of str),
  :attr:`Feed.speed` (replay speed multiplier; settable while running where
  :attr:`Feed.speed_adjustable`), :attr:`Feed.error` (the most recent error or None) and
  :attr:`Feed.last_ts` (timestamp of the last batch handed out).
- :meth:`Feed.next_batch` is the polling form of ``next(feed)``: it takes a timeout and returns
  None when the timeout elapses or the feed has ended.

Feeds
-----
- :class:`ReplayFeed` replays a :class:`~workbench.data.Bars` panel (by default the bundled
  ``load_universe("daily")``) at a configurable pace; nothing is downloaded.
- :class:`AlpacaFeed` streams live bars from Alpaca's market-data websocket through ``alpaca-py``
  (imported only when the feed starts). API keys are read from environment variables when the
  feed starts and are never logged, shown in ``repr`` or written anywhere.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import numbers
import os
import re
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd

from workbench._checks import is_real
from workbench.data._records import Bar, Malformed

from ._bars import Bars

__all__ = ["Feed", "FeedError", "ReplayFeed", "AlpacaFeed", "parse_alpaca_bar"]

log = logging.getLogger(__name__)

_NEW, _RUNNING, _STOPPED = "new", "running", "stopped"
#: A paced replay that falls further behind its schedule than this (seconds) re-bases the
#: schedule on the present instead of bursting to catch up.
_MAX_LAG_S = 0.25
#: Latest timestamp a replay stamps: ns since the epoch in an int64 end in April 2262
#: (``pandas.Timestamp.max``); a margin keeps downstream arithmetic in range.
_TS_LIMIT = int(pd.Timestamp("2262-01-01", tz="UTC").value)
#: Longest raw text kept in a :class:`Malformed` record.
_RAW_LIMIT = 500
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


class FeedError(RuntimeError):
    """A feed that cannot start or that failed while running (see :attr:`Feed.error`).

    Messages never contain credentials.
    """


# ==================================================================================== base
class Feed:
    """Base class of market-data feeds: an iterator of bar batches with thread-safe controls.

    Subclasses implement :meth:`next_batch` (and the hooks ``_on_start``, ``_on_stop``,
    ``_on_resume``); the state machine (new -> running -> stopped), pausing and the condition
    variable that wakes blocked consumers live here.

    Parameters
    ----------
    symbols : tuple of str
        The symbols the feed delivers.

    Notes
    -----
    See the module docstring for the interface. A stopped feed cannot be started again; build a
    new one (:meth:`ReplayFeed.skip_until` resumes a replay after a restart).
    """

    #: Whether :attr:`speed` can be changed (False for real-time feeds).
    speed_adjustable: ClassVar[bool] = True

    def __init__(self, symbols: tuple[str, ...]) -> None:
        self._symbols = symbols
        self._cond = threading.Condition()
        self._state = _NEW
        self._paused = False
        self._error: FeedError | None = None
        self._last_ts: int | None = None

    # ------------------------------------------------------------------ properties
    @property
    def symbols(self) -> tuple[str, ...]:
        """Symbols the feed delivers (tuple of str)."""
        return self._symbols

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop` (or the end of a finite replay)."""
        return self._state == _RUNNING

    @property
    def stopped(self) -> bool:
        """True once the feed has ended (stopped, exhausted or failed)."""
        return self._state == _STOPPED

    @property
    def paused(self) -> bool:
        """True while paused (iteration blocks)."""
        return self._paused

    @property
    def error(self) -> FeedError | None:
        """The most recent error (connection, authentication, server), or None.

        A fatal error also stops the feed, so iteration ends; check this after the loop.
        """
        return self._error

    @property
    def last_ts(self) -> int | None:
        """Timestamp (ns since the epoch, UTC) of the last batch handed out, or None."""
        return self._last_ts

    @property
    def speed(self) -> float:
        """Replay speed multiplier (1.0 = nominal pace; 0 or inf = as fast as possible).

        Settable while running where :attr:`speed_adjustable` (takes effect for the next
        batch); setting it on a real-time feed raises ``ValueError``, as does a negative or NaN
        value.
        """
        return self._get_speed()

    @speed.setter
    def speed(self, value: float) -> None:
        if not self.speed_adjustable:
            raise ValueError(
                f"{type(self).__name__} delivers bars in real time; its speed cannot be "
                f"changed (got speed={value!r})"
            )
        value = _check_speed(value)
        with self._cond:
            self._set_speed(value)
            self._cond.notify_all()

    # ------------------------------------------------------------------ control
    def start(self) -> Feed:
        """Start the feed (no-op if running).

        Returns
        -------
        Feed
            ``self``, so ``feed = ReplayFeed().start()`` works.

        Raises
        ------
        FeedError
            The feed was stopped (a stopped feed cannot restart), or it cannot start (e.g.
            :class:`AlpacaFeed` without API keys in the environment).
        """
        with self._cond:
            if self._state == _STOPPED:
                raise FeedError(f"{type(self).__name__} was stopped; create a new feed")
            if self._state == _RUNNING:
                return self
            self._on_start()
            self._state = _RUNNING
            self._cond.notify_all()
        self._after_start()
        return self

    def stop(self) -> None:
        """Stop the feed for good: iteration ends, blocked consumers wake up. Idempotent."""
        with self._cond:
            if self._state == _STOPPED:
                return
            self._state = _STOPPED
            self._cond.notify_all()
        self._on_stop()

    def pause(self) -> None:
        """Pause: :meth:`next_batch` and iteration block until :meth:`resume` or :meth:`stop`."""
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        """Resume after :meth:`pause` (no-op if not paused)."""
        with self._cond:
            if self._paused:
                self._paused = False
                self._on_resume()
            self._cond.notify_all()

    # ------------------------------------------------------------------ iteration
    def next_batch(self, timeout: float | None = None) -> list[Bar | Malformed] | None:
        """Next batch, waiting at most ``timeout`` seconds (None: until one comes).

        Starts the feed if it was never started.

        Parameters
        ----------
        timeout : float or None
            Seconds to wait; None waits until a batch comes or the feed ends.

        Returns
        -------
        list of Bar or Malformed, or None
            A non-empty batch, or None when the timeout elapsed or the feed has ended
            (:attr:`stopped`).
        """
        raise NotImplementedError

    def __iter__(self) -> Feed:
        if self._state == _NEW:
            self.start()
        return self

    def __next__(self) -> list[Bar | Malformed]:
        batch = self.next_batch(None)
        if batch is None:
            raise StopIteration
        return batch

    def __enter__(self) -> Feed:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ hooks
    def _on_start(self) -> None:
        """Called under the lock when the feed starts; may raise to refuse."""

    def _after_start(self) -> None:
        """Called without the lock after the feed entered the running state."""

    def _on_stop(self) -> None:
        """Called without the lock after the feed entered the stopped state."""

    def _on_resume(self) -> None:
        """Called under the lock when a paused feed resumes."""

    def _get_speed(self) -> float:
        return 1.0

    def _set_speed(self, value: float) -> None:
        """Called under the lock with a validated speed."""

    def _wait(self, deadline: float | None, until: float | None = None) -> bool:
        """Wait on the condition (lock held) until notified, ``until`` or ``deadline``.

        Returns False when ``deadline`` (monotonic seconds) has passed.
        """
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return False
        ends = [t for t in (deadline, until) if t is not None]
        self._cond.wait(None if not ends else max(0.0, min(ends) - now))
        return True


def _finite_positive(value: Any, name: str, unit: str) -> float:
    """``float(value)`` if it is a finite number > 0 (not a bool), else a ValueError."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if isinstance(value, bool) or not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a finite number > 0 ({unit}), got {value!r}")
    return x


def _loop_offsets(ts: np.ndarray, loop_step: float | None) -> tuple[np.ndarray, int]:
    """Offsets (T,) int64 ns of a loop cycle's rows from its first, and its median spacing.

    ``loop_step`` None: the real offsets and median spacing of ``ts`` (T,) ns. Otherwise
    every gap scaled so the median spacing becomes ``loop_step`` s (each gap >= 1 ns).
    """
    gaps = np.diff(ts)
    step = max(int(np.median(gaps)), 1) if len(gaps) else 86_400 * 10**9
    if loop_step is None:
        new_step = step
    else:
        new_step = max(round(loop_step * 1e9), 1)
        gaps = np.maximum(np.rint(gaps * (new_step / step)), 1).astype(np.int64)
    offsets = np.concatenate([np.zeros(1, np.int64), np.cumsum(gaps, dtype=np.int64)])
    return offsets, new_step


def _check_speed(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"speed must be a number >= 0, got {value!r}") from None
    if math.isnan(v) or v < 0:
        raise ValueError(f"speed must be >= 0 (0 or inf: as fast as possible), got {value!r}")
    return v


def _utc_ns(x: Any, name: str) -> int:
    try:
        ts = pd.Timestamp(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not a timestamp: {x!r} ({exc})") from None
    if ts is pd.NaT:
        raise ValueError(f"{name} is not a timestamp: {x!r}")
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return int(ts.as_unit("ns").value)


# ================================================================================== replay
class ReplayFeed(Feed):
    """Replay a bars panel as a live feed: one batch per timestamp, paced in wall-clock time.

    Parameters
    ----------
    bars : Bars, optional
        The history to replay; default ``load_universe("daily")`` (bundled S&P 500, NASDAQ and
        four stocks, 1999-2018).
    symbols : sequence of str, optional
        Subset (and order) of ``bars.symbols`` to deliver; default all.
    start, end : str, datetime-like or None
        Inclusive bounds on the replayed timestamps (naive values are UTC; see
        :meth:`Bars.loc`).
    rate : float, default 10.0
        Timestamps (batches) per second at ``speed=1``.
    speed : float, default 1.0
        Multiplier of ``rate``; 0 or ``inf`` replays as fast as the consumer takes batches.
        Settable while running.
    loop : bool, default False
        Restart from the beginning when the history is exhausted, with timestamps that keep
        increasing (see ``loop_step``). Without ``loop`` the feed stops after the last
        timestamp.
    loop_step : float or None, default 1.0
        Seconds that the history's median bar spacing becomes in the cycles after the first:
        those cycles are time-compressed (every gap scaled by ``loop_step`` / median
        spacing, at least 1 ns), each starting ``loop_step`` after the previous cycle's last
        bar, so an endless replay stays within the ns timestamp range (daily bars at
        1 s per day use ~1.5 s of timeline per bar: ~5 billion bars, 17 years at
        10 batches/s). The first cycle keeps the real timestamps. None keeps the real
        spacing in every cycle (shifted by span + median spacing per cycle); that runs out
        of the range after a few dozen cycles of a multi-year daily history (in ~2 hours
        at 10 batches/s, ~1 minute as fast as it goes), and the feed then stops with
        :attr:`error` set.

    Raises
    ------
    ValueError
        ``symbols`` is a bare str, empty, repeats or names a symbol not in ``bars`` (the
        message lists the available ones); no bar lies between ``start`` and ``end``; ``rate``
        is not a finite number > 0; ``speed`` is negative or NaN; ``loop_step`` is not None
        or a finite number > 0.
    TypeError
        ``bars`` is not a :class:`Bars`.

    Notes
    -----
    A batch holds a :class:`Bar` for every selected symbol that has a bar at that timestamp
    (NaN close = no bar, skipped); timestamps where none of the selected symbols has a bar are
    not replayed. Bar values are passed on unchanged. ``Bar.ts`` is ns since the epoch (UTC).
    In compressed loop cycles every time difference shrinks alike, bar ages seen by a
    stale-data guard included (a one-day gap of daily bars reads as ``loop_step`` seconds).

    Pacing follows a fixed schedule, ``1 / (rate * speed)`` seconds between batches, measured
    from when the consumer asks for a batch: a slow consumer gets the next batch at once (and
    the schedule is re-based when it falls more than 0.25 s behind), so pacing never adds
    latency beyond the nominal interval. After :meth:`resume` the next batch is one interval
    away.

    Examples
    --------
    >>> feed = ReplayFeed(symbols=["SP500"], start="2018-12-20", speed=float("inf"))
    >>> [b.symbol for b in next(iter(feed))]
    ['SP500']
    """

    def __init__(
        self,
        bars: Bars | None = None,
        *,
        symbols: Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
        rate: float = 10.0,
        speed: float = 1.0,
        loop: bool = False,
        loop_step: float | None = 1.0,
    ) -> None:
        if bars is None:
            from ._bundled import load_universe

            bars = load_universe("daily")
        if not isinstance(bars, Bars):
            raise TypeError(f"bars must be a workbench.data.Bars, got {type(bars).__name__}")
        if symbols is not None:
            if isinstance(symbols, str):
                raise ValueError(
                    f"symbols must be a sequence of str, not a single str ({symbols!r}); "
                    f"use symbols=[{symbols!r}]"
                )
            wanted = tuple(symbols)
            if not wanted:
                raise ValueError("symbols is empty; give at least one symbol (or None for all)")
            unknown = [s for s in wanted if s not in bars.symbols]
            if unknown:
                raise ValueError(
                    f"unknown symbols {unknown} for ReplayFeed; available in "
                    f"{bars.name or 'bars'}: {list(bars.symbols)}"
                )
            if len(set(wanted)) != len(wanted):
                raise ValueError(f"symbols given twice in {list(wanted)}")
            bars = bars.select(wanted)
        for name, x in (("start", start), ("end", end)):
            if x is not None:
                _utc_ns(x, name)  # clear error for a bad bound
        bars = bars.loc(start, end)  # also drops timestamps where no selected symbol has a bar
        if bars.T == 0:
            raise ValueError(
                f"no bars to replay for symbols {list(bars.symbols)} between start={start!r} "
                f"and end={end!r}"
            )
        rate_f = _finite_positive(rate, "rate", "batches per second")
        super().__init__(tuple(bars.symbols))
        self._bars = bars
        self._rate = rate_f
        self._speed = _check_speed(speed)
        self._loop = bool(loop)
        self._loop_step = (None if loop_step is None
                           else _finite_positive(loop_step, "loop_step", "seconds; or None"))
        self._ts = bars.index.asi8.astype(np.int64)  # (T,) ns
        self._fields = [bars[f] for f in Bars.FIELDS]  # 5 x (T, N) read-only views
        self._present = ~np.isnan(bars["close"])  # (T, N)
        # loop cycle k >= 1 stamps row r at base + (k - 1) * cycle_span + offsets[r]
        self._offsets, step = _loop_offsets(self._ts, self._loop_step)
        self._cycle_span = int(self._offsets[-1]) + step
        self._loop_base = int(self._ts[-1]) + step
        self._row = 0  # next row of the panel
        self._cycle = 0  # completed cycles (loop=True)
        self._consumed = 0  # timestamps consumed (yielded or skipped), all cycles
        self._last_emit: float | None = None  # monotonic time of the last paced batch
        self._skip_until: int | None = None
        self._warmup = True

    # ------------------------------------------------------------------ properties
    @property
    def bars(self) -> Bars:
        """The replayed panel (after ``symbols``/``start``/``end`` selection)."""
        return self._bars

    @property
    def rate(self) -> float:
        """Batches per second at ``speed=1``."""
        return self._rate

    @property
    def loop(self) -> bool:
        """Whether the replay restarts (with shifted timestamps) when exhausted."""
        return self._loop

    @property
    def loop_step(self) -> float | None:
        """Seconds of the median bar spacing in loop cycles after the first (None: real)."""
        return self._loop_step

    @property
    def n_timestamps(self) -> int:
        """Timestamps in one pass over the history."""
        return len(self._ts)

    @property
    def position(self) -> int:
        """Timestamps consumed so far (handed out or skipped), over all cycles."""
        return self._consumed

    def __repr__(self) -> str:
        return (
            f"ReplayFeed(symbols={self._symbols!r}, timestamps={len(self._ts)}, "
            f"rate={self._rate:g}, speed={self._speed:g}, loop={self._loop}, "
            f"state={self._state!r}, paused={self._paused}, position={self._consumed})"
        )

    # ------------------------------------------------------------------ control
    def skip_until(self, ts_ns: int, *, warmup: bool = True) -> ReplayFeed:
        """Resume a replay after a restart: treat timestamps ``<= ts_ns`` as already seen.

        Parameters
        ----------
        ts_ns : int
            Last timestamp (ns since the epoch, UTC) processed before the restart, e.g. the
            ledger's last bar.
        warmup : bool, default True
            True: batches with timestamps ``<= ts_ns`` are still handed out, without pacing,
            so the engine can warm up its feature state; False: they are skipped.

        Returns
        -------
        ReplayFeed
            ``self``.

        Raises
        ------
        TypeError
            ``ts_ns`` is not an int (e.g. a Timestamp: pass ``ts.value``).
        """
        if isinstance(ts_ns, bool) or not isinstance(ts_ns, numbers.Integral):
            raise TypeError(f"ts_ns must be an int (ns since the epoch), got {ts_ns!r}")
        with self._cond:
            self._skip_until = int(ts_ns)
            self._warmup = bool(warmup)
            self._cond.notify_all()
        return self

    def _get_speed(self) -> float:
        return self._speed

    def _set_speed(self, value: float) -> None:
        self._speed = value

    def _on_resume(self) -> None:
        self._last_emit = time.monotonic()

    def _interval(self) -> float:
        s = self._speed
        return 0.0 if s == 0 or math.isinf(s) else 1.0 / (self._rate * s)

    # ------------------------------------------------------------------ iteration
    def next_batch(self, timeout: float | None = None) -> list[Bar | Malformed] | None:
        """Next batch of bars, paced; None on timeout or once the replay has ended.

        Parameters
        ----------
        timeout : float or None
            Seconds to wait at most (None: until the batch is due or the feed ends).

        Returns
        -------
        list of Bar, or None
            Bars of one timestamp (in :attr:`symbols` order), or None.
        """
        if self._state == _NEW:
            self.start()
        deadline = None if timeout is None else time.monotonic() + max(0.0, float(timeout))
        with self._cond:
            while True:
                if self._state != _RUNNING:
                    return None
                if self._paused:
                    if not self._wait(deadline):
                        return None
                    continue
                if self._row >= len(self._ts):
                    if self._loop and self._stamp(self._cycle + 1, -1) > _TS_LIMIT:
                        self._error = FeedError(
                            f"ReplayFeed: loop cycle {self._cycle + 1} would stamp bars after "
                            f"{pd.Timestamp(_TS_LIMIT, tz='UTC').date()}, the end of the ns "
                            "timestamp range; loop_step compresses the looped cycles")
                        log.error("%s", self._error)
                    if not self._loop or self._error is not None:
                        self._state = _STOPPED  # exhausted
                        self._cond.notify_all()
                        return None
                    self._row = 0
                    self._cycle += 1
                ts = self._stamp(self._cycle, self._row)
                warm = self._skip_until is not None and ts <= self._skip_until
                if warm and not self._warmup:
                    self._advance()
                    continue
                if warm:
                    self._last_emit = None  # the first paced batch after warm-up comes at once
                else:
                    interval = self._interval()
                    now = time.monotonic()
                    if self._last_emit is not None and interval > 0:
                        due = self._last_emit + interval
                        if now < due:
                            if not self._wait(deadline, until=due):
                                return None
                            continue  # re-check: pause, stop or speed may have changed
                        self._last_emit = due if now - due <= _MAX_LAG_S else now
                    else:
                        self._last_emit = now
                batch = self._batch(self._row, ts)
                self._advance()
                self._last_ts = ts
                return batch

    def _advance(self) -> None:
        self._row += 1
        self._consumed += 1

    def _stamp(self, cycle: int, row: int) -> int:
        """Timestamp (ns, a Python int: no overflow) of ``row`` in loop cycle ``cycle``."""
        if cycle == 0:
            return int(self._ts[row])
        return self._loop_base + (cycle - 1) * self._cycle_span + int(self._offsets[row])

    def _batch(self, row: int, ts: int) -> list[Bar | Malformed]:
        cols = np.flatnonzero(self._present[row])
        o, h, lo, c, v = (f[row, cols].tolist() for f in self._fields)
        syms = self._symbols
        return [
            Bar(syms[j], ts, o[k], h[k], lo[k], c[k], v[k]) for k, j in enumerate(cols.tolist())
        ]


# ================================================================================== alpaca
def _raw_text(msg: Any) -> str:
    try:
        text = json.dumps(msg, default=str)
    except (TypeError, ValueError):
        text = repr(msg)
    return text[:_RAW_LIMIT]


def _number(msg: Mapping, key: str, problems: list[str]) -> float:
    if key not in msg:
        problems.append(f"missing field {key!r}")
        return math.nan
    x = msg[key]
    if not is_real(x):
        problems.append(f"field {key!r} is not a number: {x!r}"[:120])
        return math.nan
    return float(x)


def _timestamp_ns(msg: Mapping, problems: list[str]) -> int | None:
    if "t" not in msg:
        problems.append("missing field 't'")
        return None
    t = msg["t"]
    if hasattr(t, "to_unix_nano") and not isinstance(t, str):  # msgpack.Timestamp
        try:
            return int(t.to_unix_nano())
        except Exception as exc:  # noqa: BLE001 - any failure is a malformed message
            problems.append(f"unreadable timestamp 't': {exc}")
            return None
    if isinstance(t, datetime):
        if t.tzinfo is None:
            problems.append(f"timestamp 't' has no UTC offset: {t!r}")
            return None
        return int(pd.Timestamp(t).as_unit("ns").value)
    if isinstance(t, str):
        if not _RFC3339.match(t):
            problems.append(f"timestamp 't' is not RFC-3339 with a UTC offset: {t!r}"[:160])
            return None
        try:
            return int(pd.Timestamp(t).as_unit("ns").value)
        except (ValueError, OverflowError) as exc:
            problems.append(f"unparseable timestamp 't': {t!r} ({exc})"[:160])
            return None
    problems.append(
        f"timestamp 't' must be an RFC-3339 string or msgpack Timestamp, got {type(t).__name__}"
    )
    return None


def parse_alpaca_bar(msg: Any) -> Bar | Malformed:
    """Read one Alpaca market-data bar message into a :class:`Bar`, or a :class:`Malformed`.

    Parameters
    ----------
    msg : dict
        A decoded stream message: ``{"T": "b", "S": symbol, "o", "h", "l", "c": prices,
        "v": volume, "t": timestamp, ...}`` where ``t`` is an RFC-3339 string with a UTC offset
        (JSON streams, nanoseconds allowed) or a ``msgpack.Timestamp`` (msgpack streams).
        ``"u"`` (updated) and ``"d"`` (daily) bars have the same fields and are accepted.

    Returns
    -------
    Bar or Malformed
        ``Bar(S, t in ns since the epoch UTC, o, h, l, c, v)`` with values unchanged (NaN or
        inconsistent prices are left to the engine's validator), or ``Malformed(raw, reason)``
        naming every missing or unreadable field (``raw`` is the message as JSON, truncated to
        500 characters).

    Notes
    -----
    Field names follow Alpaca's market-data stream schema (v2 "Bar" message).
    """
    if not isinstance(msg, Mapping):
        return Malformed(_raw_text(msg), f"not a message object: {type(msg).__name__}")
    problems: list[str] = []
    kind = msg.get("T")
    if kind not in ("b", "u", "d"):
        problems.append(f"not a bar message (T={kind!r})")
    sym = msg.get("S")
    if "S" not in msg:
        problems.append("missing field 'S'")
    elif not isinstance(sym, str) or not sym:
        problems.append(f"field 'S' is not a symbol: {sym!r}"[:120])
    o, h, lo, c, v = (_number(msg, k, problems) for k in ("o", "h", "l", "c", "v"))
    ts = _timestamp_ns(msg, problems)
    if problems or not isinstance(sym, str) or ts is None:
        return Malformed(_raw_text(msg), "; ".join(problems))
    return Bar(sym, ts, o, h, lo, c, v)


def _mask_userinfo(url: str | None) -> str | None:
    """``url`` with any ``user:password@`` replaced by ``***@`` (safe to log and show)."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


#: Logger given to the websocket client: INFO and above only, so websockets never dumps frames
#: (the auth frame carries the keys) even when the root logger is at DEBUG.
_WS_LOG = logging.getLogger(__name__ + ".websocket")
_WS_LOG.setLevel(logging.INFO)

_STREAM_CLASS: Any = None


def _stream_class() -> Any:
    """alpaca-py's ``StockDataStream`` with hooks that report to the owning feed (lazy)."""
    global _STREAM_CLASS
    if _STREAM_CLASS is not None:
        return _STREAM_CLASS
    try:
        with warnings.catch_warnings():  # alpaca-py uses the deprecated websockets.legacy client
            warnings.simplefilter("ignore", DeprecationWarning)
            import websockets
            from alpaca.data.enums import DataFeed
            from alpaca.data.live.stock import StockDataStream
    except ImportError as exc:  # pragma: no cover - alpaca-py is a dependency
        raise FeedError(
            f"AlpacaFeed needs the alpaca-py package (pip install 'alpaca-py>=0.30'): {exc}"
        ) from exc

    class _Stream(StockDataStream):
        """StockDataStream reporting connection, auth and server errors to ``_wb_feed``."""

        _wb_feed: AlpacaFeed
        DataFeed: Any = None  # alpaca.data.enums.DataFeed, set below

        async def _start_ws(self) -> None:
            try:
                await super()._start_ws()
            except ValueError as exc:  # alpaca-py's reply checks (auth failed, not connected)
                self._wb_feed._on_start_error(exc)
                raise
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as exc:
                self._wb_feed._on_connection_error(exc)
                raise
            self._wb_feed._on_connected()

        async def _consume(self) -> bool:
            try:
                return await super()._consume()
            except websockets.WebSocketException as exc:
                self._wb_feed._on_connection_error(exc)
                raise

        async def _dispatch(self, msg: dict) -> None:
            if isinstance(msg, dict) and msg.get("T") == "error":
                self._wb_feed._on_server_error(msg.get("code"), msg.get("msg"))
            await super()._dispatch(msg)

    _Stream.DataFeed = DataFeed
    _STREAM_CLASS = _Stream
    return _Stream


class AlpacaFeed(Feed):
    """Live bars from Alpaca's market-data stream (``alpaca-py`` ``StockDataStream``).

    Parameters
    ----------
    symbols : sequence of str
        Symbols whose minute bars to subscribe to (e.g. ``["AAPL", "MSFT"]``).
    feed : {"iex", "sip"}, default "iex"
        Alpaca data feed (SIP needs a paid subscription).
    url : str, optional
        Websocket URL override (alpaca-py's ``url_override``), e.g. a local test server;
        default Alpaca's ``wss://stream.data.alpaca.markets/v2/<feed>``.
    key_env : (str, str), default ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY")
        Names of the environment variables holding the API key id and secret, read at
        :meth:`start`. The values are never logged, shown in ``repr`` or stored on the feed.
    flush_after_s : float, default 1.0
        A batch (the bars of one timestamp) is handed out as soon as every subscribed
        symbol has a bar in it, when a bar with another timestamp arrives, or after this
        many seconds without a message (a symbol with no trade in the minute sends no bar).
        Alpaca pushes a minute's bars one message per symbol, spread over up to about a
        second after the minute; a bar that comes after its timestamp's batch was handed
        out is a batch of its own, which the live engine rejects as ``late``, so this is
        the wait for stragglers, not a delay on complete batches.

    Raises
    ------
    ValueError
        ``symbols`` is a bare str, empty, repeats or holds a non-str/empty symbol; ``feed`` is
        not "iex"/"sip"; ``key_env`` is not two variable names; ``flush_after_s`` is not a
        finite number > 0.

    Notes
    -----
    The stream runs in a daemon thread with its own asyncio loop; alpaca-py's ``raw_data=True``
    hands the decoded dicts to :func:`parse_alpaca_bar`, so each bar message becomes a
    :class:`Bar` or a :class:`Malformed` (bar messages without ``S`` never reach the feed:
    alpaca-py drops them). Messages are grouped into batches by timestamp in arrival order.

    Errors are logged (never with keys) and stored in :attr:`error`: connection drops are
    retried by alpaca-py with backoff (:attr:`connected` turns False meanwhile); a refused
    authentication, an insufficient subscription or an unexpected end of the stream is fatal
    and stops the feed, ending iteration.

    While paused, arriving batches are queued (nothing is dropped) and handed out on
    :meth:`resume`. :attr:`speed` is fixed at 1.0 (real time). The feed drives alpaca-py's
    ``DataStream._run_forever`` coroutine itself, so :meth:`stop` is prompt.
    """

    speed_adjustable = False

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        feed: str = "iex",
        url: str | None = None,
        key_env: tuple[str, str] = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY"),
        flush_after_s: float = 1.0,
    ) -> None:
        if isinstance(symbols, str):
            raise ValueError(
                f"symbols must be a sequence of str, not a single str ({symbols!r}); "
                f"use [{symbols!r}]"
            )
        syms = tuple(symbols)
        if not syms:
            raise ValueError("symbols is empty; give at least one symbol to subscribe to")
        bad = [s for s in syms if not isinstance(s, str) or not s]
        if bad:
            raise ValueError(f"symbols must be non-empty str, got {bad[:3]!r}")
        if len(set(syms)) != len(syms):
            raise ValueError(f"symbols given twice in {list(syms)}")
        if feed not in ("iex", "sip"):
            raise ValueError(f"feed must be 'iex' or 'sip', got {feed!r}")
        if url is not None and not isinstance(url, str):
            raise ValueError(f"url must be a str or None, got {type(url).__name__}")
        if (
            isinstance(key_env, str)
            or len(tuple(key_env)) != 2
            or not all(isinstance(k, str) and k for k in key_env)
        ):
            raise ValueError(
                f"key_env must be two environment variable names (key id, secret), got {key_env!r}"
            )
        flush = _finite_positive(flush_after_s, "flush_after_s", "seconds")
        super().__init__(syms)
        self._feed = feed
        self._url = url
        self._key_env = tuple(key_env)
        self._flush_after_s = flush
        self._ready: collections.deque[list[Bar | Malformed]] = collections.deque()
        self._connected = False
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        # batch being assembled (touched only on the stream's event-loop thread)
        self._pending: list[Bar | Malformed] = []
        self._pending_ts: int | None = None
        self._pending_symbols: set[str] = set()
        self._flush_handle: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ properties
    @property
    def feed(self) -> str:
        """Alpaca data feed name ("iex" or "sip")."""
        return self._feed

    @property
    def url(self) -> str | None:
        """Websocket URL override (credentials in it masked), or None for Alpaca's."""
        return _mask_userinfo(self._url)

    @property
    def key_env(self) -> tuple[str, str]:
        """Names (not values) of the environment variables holding the API keys."""
        return self._key_env  # type: ignore[return-value]

    @property
    def connected(self) -> bool:
        """True while the websocket is connected and authenticated."""
        return self._connected

    def __repr__(self) -> str:
        return (
            f"AlpacaFeed(symbols={self._symbols!r}, feed={self._feed!r}, url={self.url!r}, "
            f"key_env={self._key_env!r}, state={self._state!r}, paused={self._paused}, "
            f"connected={self._connected})"
        )

    # ------------------------------------------------------------------ lifecycle
    def _on_start(self) -> None:
        missing = [name for name in self._key_env if not os.environ.get(name)]
        if missing:
            raise FeedError(
                "AlpacaFeed needs Alpaca API keys in the environment variables "
                f"{' and '.join(self._key_env)}; not set: {', '.join(missing)}"
            )
        cls = _stream_class()
        stream = cls(
            os.environ[self._key_env[0]],
            os.environ[self._key_env[1]],
            raw_data=True,
            feed=cls.DataFeed(self._feed),
            url_override=self._url,
            websocket_params={
                "ping_interval": 10,
                "ping_timeout": 180,
                "max_queue": 1024,
                "logger": _WS_LOG,
            },
        )
        stream._wb_feed = self
        stream.subscribe_bars(self._on_message, *self._symbols)
        self._stream = stream
        self._thread = threading.Thread(
            target=self._thread_main,
            name=f"AlpacaFeed[{','.join(self._symbols)[:40]}]",
            daemon=True,
        )

    def _after_start(self) -> None:
        log.info(
            "AlpacaFeed starting: %d symbols, feed=%s, url=%s",
            len(self._symbols),
            self._feed,
            self.url or "<alpaca default>",
        )
        assert self._thread is not None
        self._thread.start()

    def _on_stop(self) -> None:
        with self._cond:
            aloop, event = self._aloop, self._stop_event
            self._ready.clear()
        if aloop is not None and event is not None:
            try:
                aloop.call_soon_threadsafe(event.set)
            except RuntimeError:  # loop already closed
                pass
        t = self._thread
        if t is not None and t is not threading.current_thread() and t.is_alive():
            t.join(timeout=5.0)
            if t.is_alive():  # pragma: no cover - defensive
                log.warning("AlpacaFeed: stream thread did not stop within 5 s")

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # noqa: BLE001 - surfaced through .error
            self._fail(f"stream thread failed: {type(exc).__name__}: {exc}")
        finally:
            self._connected = False
            self._stream = None  # drop the object holding the keys

    async def _main(self) -> None:
        stream = self._stream
        with self._cond:
            if self._state != _RUNNING:
                return
            self._aloop = asyncio.get_running_loop()
            self._stop_event = asyncio.Event()
        task = asyncio.ensure_future(stream._run_forever())
        waiter = asyncio.ensure_future(self._stop_event.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            waiter.cancel()
            exc = task.exception() if not task.cancelled() else None
            if self._state == _RUNNING:
                detail = f": {type(exc).__name__}: {exc}" if exc else ""
                self._fail(f"Alpaca stream ended unexpectedly{detail}")
        else:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # noqa: BLE001 - shutting down anyway
                pass
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        try:
            await asyncio.wait_for(stream.close(), timeout=2.0)
        except Exception:  # noqa: BLE001 - best-effort close on shutdown
            pass

    # ------------------------------------------------------------------ stream callbacks
    def _record(self, message: str, *, fatal: bool, level: int = logging.WARNING) -> None:
        err = FeedError(message)
        self._error = err
        log.log(logging.ERROR if fatal else level, "AlpacaFeed: %s", message)
        if fatal:
            self.stop()

    def _fail(self, message: str) -> None:
        self._record(message, fatal=True)

    def _on_connected(self) -> None:
        self._connected = True
        log.info("AlpacaFeed connected and authenticated (%s)", self.url or "alpaca")

    def _on_start_error(self, exc: Exception) -> None:
        self._connected = False
        text = str(exc)
        fatal = "auth" in text.lower() or "insufficient subscription" in text.lower()
        self._record(
            f"{'authentication failed' if fatal else 'handshake failed'}: {text}", fatal=fatal
        )

    def _on_connection_error(self, exc: BaseException) -> None:
        self._connected = False
        if self._state == _RUNNING:
            self._record(
                f"connection lost ({type(exc).__name__}: {exc}); alpaca-py reconnects", fatal=False
            )

    def _on_server_error(self, code: Any, msg: Any) -> None:
        # Alpaca stream error codes: 402 auth failed, 405 symbol limit exceeded,
        # 406 connection limit exceeded, 409 insufficient subscription (fatal); others transient.
        fatal = code in (402, 409) or (isinstance(msg, str) and "auth" in msg.lower())
        self._record(f"server error {code}: {msg}", fatal=fatal)

    async def _on_message(self, msg: Any) -> None:
        item = parse_alpaca_bar(msg)
        if isinstance(item, Bar):
            if self._pending_ts is not None and item.ts != self._pending_ts:
                self._flush()
            self._pending_ts = item.ts
            self._pending_symbols.add(item.symbol)
        self._pending.append(item)
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._pending_symbols.issuperset(self._symbols):  # every symbol has its bar
            self._flush()
        else:
            self._flush_handle = asyncio.get_running_loop().call_later(
                self._flush_after_s, self._flush)

    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending, self._pending_ts = self._pending, [], None
        self._pending_symbols = set()
        with self._cond:
            if self._state == _RUNNING:
                self._ready.append(batch)
                self._cond.notify_all()

    # ------------------------------------------------------------------ iteration
    def next_batch(self, timeout: float | None = None) -> list[Bar | Malformed] | None:
        """Next batch of received messages; None on timeout or once the feed has ended.

        Parameters
        ----------
        timeout : float or None
            Seconds to wait at most (None: until a batch arrives or the feed ends).

        Returns
        -------
        list of Bar or Malformed, or None
            Messages of one bar timestamp in arrival order (a :class:`Malformed` joins the
            batch being assembled when it arrives), or None.

        Raises
        ------
        FeedError
            The feed was never started and cannot start (missing API keys).
        """
        if self._state == _NEW:
            self.start()
        deadline = None if timeout is None else time.monotonic() + max(0.0, float(timeout))
        with self._cond:
            while True:
                if self._state != _RUNNING:
                    return None
                if not self._paused and self._ready:
                    batch = self._ready.popleft()
                    ts = next((b.ts for b in batch if isinstance(b, Bar)), None)
                    if ts is not None:
                        self._last_ts = ts
                    return batch
                if not self._wait(deadline):
                    return None
