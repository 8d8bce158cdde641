"""Live risk snapshot for the UI: equity, exposure, VaR/CVaR, drawdown, latency (DESIGN section 7).

:class:`RiskMonitor` is fed once per bar by the live engine and returns an immutable
:class:`RiskState`; :class:`LatencyTracker` keeps per-stage timing samples in ring buffers.

Units: equity, cash and PnL in currency; exposures, VaR, CVaR and drawdowns are fractions of equity
(VaR/CVaR/drawdown reported as positive losses); latencies in milliseconds; timestamps in ns since
the Unix epoch (UTC).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ._measures import cvar_historical, var_historical
from ._pretrade import Verdict

__all__ = ["LatencyTracker", "RiskMonitor", "RiskState"]

_MIN_RETURNS = 20
_LEVEL = 0.95
_LAST_VERDICTS = 50


class LatencyTracker:
    """Per-stage latency samples in fixed-size ring buffers.

    Parameters
    ----------
    window : int, default 10_000
        Samples kept per stage (the most recent ones); memory is ``8 * window`` bytes per stage.

    Raises
    ------
    ValueError
        If ``window`` is not a positive integer.

    Notes
    -----
    ``record`` is O(1); ``percentiles`` is O(window) per stage (``numpy.percentile``, linear
    interpolation). Thread-safe: the engine thread records while a UI thread reads.
    """

    def __init__(self, window: int = 10_000) -> None:
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
            raise ValueError(f"window must be a positive integer, got {window!r}")
        self.window = int(window)
        self._buf: dict[str, np.ndarray] = {}
        self._n: dict[str, int] = {}  # total samples recorded per stage
        self._lock = threading.Lock()

    def record(self, stage: str, seconds: float) -> None:
        """Add one latency sample.

        Parameters
        ----------
        stage : str
            Pipeline stage, e.g. ``"features"``, ``"inference"``, ``"e2e"``.
        seconds : float
            Elapsed time in seconds (finite, >= 0), e.g. a ``time.perf_counter()`` difference.

        Raises
        ------
        ValueError
            If ``seconds`` is negative or not finite, or ``stage`` is not a non-empty string.
        """
        if not isinstance(stage, str) or not stage:
            raise ValueError(f"stage must be a non-empty string, got {stage!r}")
        s = float(seconds)
        if not (math.isfinite(s) and s >= 0.0):
            raise ValueError(
                f"latency for stage {stage!r} must be finite and >= 0 s, got {seconds!r}"
            )
        with self._lock:
            buf = self._buf.get(stage)
            if buf is None:
                buf = self._buf[stage] = np.empty(self.window, dtype=np.float64)
                self._n[stage] = 0
            n = self._n[stage]
            buf[n % self.window] = s
            self._n[stage] = n + 1

    def count(self, stage: str) -> int:
        """Samples recorded for ``stage`` in total, including those that left the window."""
        with self._lock:
            return self._n.get(stage, 0)

    def samples(self, stage: str) -> np.ndarray:
        """Samples kept for ``stage``, oldest first.

        Parameters
        ----------
        stage : str
            Stage name passed to :meth:`record`.

        Returns
        -------
        numpy.ndarray
            Latencies in seconds, shape ``(min(count, window),)``.

        Raises
        ------
        KeyError
            If nothing was recorded for ``stage``.
        """
        with self._lock:
            if stage not in self._buf:
                raise KeyError(f"no latency recorded for stage {stage!r}; have {sorted(self._buf)}")
            n, buf = self._n[stage], self._buf[stage]
            if n <= self.window:
                return buf[:n].copy()
            i = n % self.window
            return np.concatenate([buf[i:], buf[:i]])

    def percentiles(self) -> dict[str, dict[str, float]]:
        """p50/p95/p99 per stage over the window, in milliseconds.

        Returns
        -------
        dict
            ``{stage: {"p50": ms, "p95": ms, "p99": ms}}`` for every stage with at least one sample
            (``numpy.percentile`` with linear interpolation).
        """
        with self._lock:
            snap = {k: b[: min(self._n[k], self.window)].copy() for k, b in self._buf.items()}
        out: dict[str, dict[str, float]] = {}
        for stage, x in snap.items():
            p50, p95, p99 = np.percentile(x, [50.0, 95.0, 99.0]) * 1e3
            out[stage] = {"p50": float(p50), "p95": float(p95), "p99": float(p99)}
        return out


def _jsonable(x: Any) -> Any:
    """Recursively turn ``x`` into JSON types; non-finite floats become ``None``."""
    if isinstance(x, Verdict):
        return {
            "order": _jsonable(asdict(x.order)),
            "approved": bool(x.approved),
            "reasons": list(x.reasons),
        }
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, deque)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if x is None or isinstance(x, str):
        return x
    return str(x)


@dataclass(frozen=True)
class RiskState:
    """Immutable risk snapshot of the live book after one bar (what the UI shows).

    Attributes
    ----------
    ts : int
        Bar time, ns since the Unix epoch (UTC).
    positions : dict[str, float]
        Signed shares per symbol.
    prices : dict[str, float]
        Marks used for valuation (the latest known price per symbol), currency per share.
    cash : float
        Cash, currency.
    equity : float
        ``cash + sum(position * price)``, currency.
    pnl : float
        ``equity - initial_cash``, currency.
    gross_exposure : float
        ``sum |position * price| / equity`` (NaN when equity <= 0).
    net_exposure : float
        ``sum position * price / equity``, signed (NaN when equity <= 0).
    var_95, cvar_95 : float
        One-period historical 95 % VaR and CVaR of the per-bar equity returns over the rolling
        window, positive loss fractions; NaN until 20 returns exist.
    drawdown : float
        Current drawdown ``1 - equity / peak_equity`` (>= 0).
    max_drawdown : float
        Largest drawdown seen since the monitor started (>= 0).
    latency : dict
        ``{stage: {"p50", "p95", "p99"}}`` in ms, from :meth:`LatencyTracker.percentiles`.
    model_health : dict
        Passed through from the engine (e.g. prediction drift, NaN counts).
    rejected_inputs : dict[str, int]
        Malformed/bad feed inputs by reason, as counted by the validator.
    rejected_orders : int
        Orders rejected by the pre-trade checks since the monitor started.
    last_verdicts : tuple of Verdict
        The most recent verdicts (at most 50), oldest first.
    n_bars : int
        Updates (bars) seen since the monitor started.
    """

    ts: int
    positions: dict[str, float]
    prices: dict[str, float]
    cash: float
    equity: float
    pnl: float
    gross_exposure: float
    net_exposure: float
    var_95: float
    cvar_95: float
    drawdown: float
    max_drawdown: float
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    model_health: dict[str, Any] = field(default_factory=dict)
    rejected_inputs: dict[str, int] = field(default_factory=dict)
    rejected_orders: int = 0
    last_verdicts: tuple[Verdict, ...] = ()
    n_bars: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy: plain dicts/lists/numbers; NaN and infinities become ``None``.

        Verdicts become ``{"order": {...}, "approved": bool, "reasons": [...]}``.

        Returns
        -------
        dict
        """
        return {
            f: _jsonable(getattr(self, f))
            for f in self.__dataclass_fields__  # keeps declaration order
        }


class RiskMonitor:
    """Rolling risk of the live book, one :meth:`update` per bar.

    Parameters
    ----------
    initial_cash : float
        Starting capital, currency, finite and > 0; PnL is measured from it and it seeds the peak
        equity.
    window : int, default 250
        Rolling window (bars) of equity values and per-bar returns used for VaR/CVaR.
    peak_equity : float, optional
        Peak equity to resume from after a restart (default ``initial_cash``); the peak is never
        below ``initial_cash``.

    Raises
    ------
    ValueError
        If ``initial_cash`` is not finite and > 0, ``window`` is not an integer >= 20, or
        ``peak_equity`` is not finite.

    Notes
    -----
    Cost per update: O(P) to value P positions plus O(window) for the historical VaR and CVaR
    (``numpy.partition`` over at most ``window`` returns), plus O(S * latency window) when a
    :class:`LatencyTracker` is passed (its percentiles are computed). Memory is O(window).
    Per-bar returns are simple returns of equity between consecutive updates (the first update has
    none; a return is skipped when the previous equity is <= 0). Not thread-safe: call ``update``
    from the engine thread only; the returned :class:`RiskState` is immutable and can be shared.
    """

    def __init__(
        self, initial_cash: float, window: int = 250, *, peak_equity: float | None = None
    ) -> None:
        c = float(initial_cash)
        if not (math.isfinite(c) and c > 0.0):
            raise ValueError(f"initial_cash must be finite and > 0, got {initial_cash!r}")
        if (
            isinstance(window, bool)
            or not isinstance(window, (int, np.integer))
            or window < _MIN_RETURNS
        ):
            raise ValueError(f"window must be an integer >= {_MIN_RETURNS}, got {window!r}")
        self.initial_cash = c
        self.window = int(window)
        peak = c
        if peak_equity is not None:
            p = float(peak_equity)
            if not math.isfinite(p):
                raise ValueError(f"peak_equity must be finite, got {peak_equity!r}")
            peak = max(peak, p)
        self._peak = peak
        self._max_dd = 0.0
        self._equity: deque[float] = deque(maxlen=self.window)
        self._returns: deque[float] = deque(maxlen=self.window)
        self._prices: dict[str, float] = {}
        self._model_health: dict[str, Any] = {}
        self._rejected_inputs: dict[str, int] = {}
        self._latency: dict[str, dict[str, float]] = {}
        self._verdicts: deque[Verdict] = deque(maxlen=_LAST_VERDICTS)
        self._rejected_orders = 0
        self._n_bars = 0
        self._state: RiskState | None = None

    @property
    def peak_equity(self) -> float:
        """Highest equity seen (at least ``initial_cash``), currency; feed it to the kill switch."""
        return self._peak

    @property
    def state(self) -> RiskState | None:
        """The last snapshot returned by :meth:`update` (None before the first update)."""
        return self._state

    @property
    def equity_history(self) -> np.ndarray:
        """Equity of the last ``window`` updates, oldest first, currency, shape ``(<= window,)``."""
        return np.fromiter(self._equity, dtype=np.float64, count=len(self._equity))

    @property
    def returns(self) -> np.ndarray:
        """Per-bar simple equity returns in the window, oldest first, shape ``(<= window,)``."""
        return np.fromiter(self._returns, dtype=np.float64, count=len(self._returns))

    def update(
        self,
        ts: int,
        *,
        positions: Mapping[str, float],
        prices: Mapping[str, float],
        cash: float,
        model_health: Mapping[str, Any] | None = None,
        rejected_inputs: Mapping[str, int] | None = None,
        verdicts: Iterable[Verdict] = (),
        latency: LatencyTracker | Mapping[str, Mapping[str, float]] | None = None,
    ) -> RiskState:
        """Record one bar of the book and return the risk snapshot.

        Parameters
        ----------
        ts : int
            Bar time, ns since the Unix epoch (UTC).
        positions : Mapping[str, float]
            Signed shares per symbol after this bar's fills.
        prices : Mapping[str, float]
            Latest prices, currency per share. Symbols missing here are valued at their last price
            passed to an earlier update.
        cash : float
            Cash, currency.
        model_health : Mapping, optional
            Passed through to the snapshot; None keeps the previous value.
        rejected_inputs : Mapping[str, int], optional
            Cumulative bad-input counts by reason; None keeps the previous value.
        verdicts : iterable of Verdict, default ()
            This bar's pre-trade verdicts; rejections are counted and the last 50 are kept.
        latency : LatencyTracker or Mapping, optional
            A tracker (its percentiles are taken) or an already computed percentile dict; None
            keeps the previous value.

        Returns
        -------
        RiskState

        Raises
        ------
        ValueError
            If ``ts`` is not an integer, ``cash`` or a position is not finite, a price is not finite
            and > 0, or a held symbol has never had a price. A failed update changes nothing.
        TypeError
            If a verdict is not a :class:`Verdict`.
        """
        if isinstance(ts, bool) or not isinstance(ts, (int, np.integer)):
            raise ValueError(f"ts must be an integer (ns since the epoch), got {ts!r}")
        cash_f = float(cash)
        if not math.isfinite(cash_f):
            raise ValueError(f"cash must be finite, got {cash!r}")
        marks = dict(self._prices)  # committed only once every input is valid
        for sym, p in prices.items():
            pf = float(p)
            if not (math.isfinite(pf) and pf > 0.0):
                raise ValueError(f"prices[{sym!r}] must be finite and > 0, got {p!r}")
            marks[sym] = pf
        pos: dict[str, float] = {}
        gross = net = 0.0
        for sym, q in positions.items():
            qf = float(q)
            if not math.isfinite(qf):
                raise ValueError(f"positions[{sym!r}] must be finite, got {q!r}")
            pos[sym] = qf
            if qf == 0.0:
                continue
            if sym not in marks:
                raise ValueError(f"no price for held symbol {sym!r} (position {qf!r})")
            v = qf * marks[sym]
            gross += abs(v)
            net += v
        verdict_list = list(verdicts)
        for i, verdict in enumerate(verdict_list):
            if not isinstance(verdict, Verdict):
                raise TypeError(f"verdicts[{i}] must be a Verdict, got "
                                f"{type(verdict).__name__}")

        self._prices = marks
        equity = cash_f + net
        if self._equity:
            prev = self._equity[-1]
            if prev > 0.0:
                self._returns.append(equity / prev - 1.0)
        self._equity.append(equity)
        self._peak = max(self._peak, equity)
        dd = max(0.0, 1.0 - equity / self._peak)
        self._max_dd = max(self._max_dd, dd)
        self._n_bars += 1

        if len(self._returns) >= _MIN_RETURNS:
            r = self.returns
            var95 = var_historical(r, _LEVEL)
            cvar95 = cvar_historical(r, _LEVEL)
        else:
            var95 = cvar95 = math.nan

        if model_health is not None:
            self._model_health = dict(model_health)
        if rejected_inputs is not None:
            self._rejected_inputs = {str(k): int(v) for k, v in rejected_inputs.items()}
        if isinstance(latency, LatencyTracker):
            self._latency = latency.percentiles()
        elif latency is not None:
            self._latency = {str(k): dict(v) for k, v in latency.items()}
        self._verdicts.extend(verdict_list)
        self._rejected_orders += sum(1 for v in verdict_list if not v.approved)

        if equity > 0.0:
            g, n = gross / equity, net / equity
        else:
            g = n = math.nan
        self._state = RiskState(
            ts=int(ts),
            positions=pos,
            prices=dict(marks),
            cash=cash_f,
            equity=equity,
            pnl=equity - self.initial_cash,
            gross_exposure=g,
            net_exposure=n,
            var_95=var95,
            cvar_95=cvar95,
            drawdown=dd,
            max_drawdown=self._max_dd,
            latency=dict(self._latency),
            model_health=dict(self._model_health),
            rejected_inputs=dict(self._rejected_inputs),
            rejected_orders=self._rejected_orders,
            last_verdicts=tuple(self._verdicts),
            n_bars=self._n_bars,
        )
        return self._state
