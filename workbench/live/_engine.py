"""The live producer: feed -> validator -> features -> inference -> sizing -> checks -> broker."""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._types import Bar, Fill, Order
from ._validation import BarValidator

__all__ = ["LiveEngine", "EngineUpdate", "STAGES", "model_feature_specs"]

log = logging.getLogger("workbench.live")

#: Latency stages recorded per bar batch (milliseconds in :attr:`RiskState.latency`).
STAGES = ("validate", "broker", "features", "inference", "sizing", "risk_checks", "ledger",
          "risk_state", "end_to_end")

_NRET = re.compile(r"^nret_(\d+)$")
_MACD = re.compile(r"^macd_(\d+)_(\d+)$")
_SIGMA = ("ex_ante_volatility", {"span": 60})


def model_feature_specs(names: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """Streaming feature specs for a model's input names (``MomentumDataset`` naming).

    Parameters
    ----------
    names : sequence of str
        ``nret_<k>`` (normalised return over k bars, EWM span 60) and ``macd_<s>_<l>``
        (Baz et al. MACD signal), as :func:`workbench.features.deep_momentum_features`
        names them.

    Returns
    -------
    list of (str, dict)
        Catalogue name and parameters per input, in order.

    Raises
    ------
    ValueError
        If a name is not one of the deep-momentum inputs (the name is given).
    """
    specs = []
    for n in names:
        if m := _NRET.match(n):
            specs.append(("normalised_return", {"horizon": int(m.group(1)), "span": 60}))
        elif m := _MACD.match(n):
            specs.append(("macd_signal", {"short": int(m.group(1)), "long": int(m.group(2))}))
        else:
            raise ValueError(f"model input {n!r} has no streaming feature; the live engine "
                             "serves models trained on MomentumDataset inputs (nret_k, macd_s_l)")
    return specs


@dataclass
class EngineUpdate:
    """What one processed bar batch changed; sent to every subscriber.

    Attributes
    ----------
    ts : int
        Batch timestamp, ns since the epoch (UTC).
    state : workbench.risk.RiskState
        Snapshot after the batch.
    bars : list of Bar
        Accepted bars.
    positions : dict
        Model positions in [-1, 1] of the symbols decided at this batch: those with a
        bar at ``ts`` whose current feature row and ex-ante volatility are finite
        (volatility > 0). A symbol left out was not decided (its book position is
        unchanged); empty in warm-up.
    fills : list of Fill
    verdicts : list of workbench.risk.Verdict
        Pre-trade verdicts of this batch's orders.
    rejected_inputs : list of dict
        Feed items rejected in this batch (reason, symbol, ts, detail).
    warmup : bool
        True while replaying bars already in the ledger after a restart (no trading).
    """

    ts: int
    state: Any
    bars: list[Bar]
    positions: dict[str, float] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    verdicts: list[Any] = field(default_factory=list)
    rejected_inputs: list[dict] = field(default_factory=list)
    warmup: bool = False


class _MACDFallback:
    """Model-free positions: mean Baz response of the three MACD signals (the MACD baseline)."""

    feature_names_in_ = ("macd_8_24", "macd_16_48", "macd_32_96")
    context_length = 1

    def predict(self, x: np.ndarray) -> np.ndarray:
        from workbench.backtest import macd_response

        return np.asarray(macd_response(x[:, -1, :])).mean(axis=1)

    def health(self) -> dict[str, Any]:
        return {"state": "ok", "macd_baseline": {"active": True, "failures": 0,
                                                 "last_error": None}}


class LiveEngine:
    """One producer per process: turns a bar feed into orders, fills and risk state.

    Per bar batch (one timestamp): validate (:class:`BarValidator`) -> the broker fills
    the previous batch's orders at this bar's open -> :class:`workbench.features.
    FeatureStream` (the full OHLCV catalogue plus the model inputs) -> the ensemble
    through :class:`workbench.models.InferenceEngine` on the last ``context_length``
    feature rows of every symbol (a symbol is decided when it has a bar and its current
    feature row and ex-ante volatility are finite, volatility > 0; earlier non-finite
    rows of its window read as 0, as in research's ``SequenceModel.predict``)
    -> vol-targeted target positions
    ``w = X * target_vol / sigma / n`` (``n`` symbols with a bar and a finite sigma > 0,
    decided or not, as :func:`workbench.backtest.portfolio_weights`; gross capped at
    ``max_gross``) -> orders for the difference -> :func:`workbench.risk.check_orders`
    -> the approved orders go to the :class:`PaperBroker`, everything to the
    :class:`Ledger` in one transaction -> :class:`workbench.risk.RiskMonitor`.
    Every stage's latency is recorded. A model call that raises (or returns other than
    one position per symbol) is logged and counted (:attr:`model_errors`, the
    ``"predict"`` entry of the risk state's model health, whose ``state`` is then
    ``"error"``); that batch decides nothing (no orders, the book is held) and the
    producer goes on with the next batch.

    Restart: the ledger's cursor (last committed batch) and open orders are read at
    construction; batches at or before the cursor only warm the features up (no
    model calls, no orders, no ledger writes, no updates to subscribers; the serving
    engine's health counters start afresh), so a restarted engine
    continues with the positions, cash and pending orders it had and makes the same
    decisions from then on. The risk monitor starts afresh after a restart (its VaR
    window refills and its peak equity starts at the current equity), so the drawdown
    kill switch measures from the restart.

    Parameters
    ----------
    feed : iterable of batches
        E.g. :class:`workbench.data.feeds.ReplayFeed`; each batch a list of ``Bar`` or
        ``Malformed``. Needs ``symbols`` unless ``symbols`` is given.
    model : Ensemble, InferenceEngine or None
        Fitted on :class:`workbench.models.MomentumDataset` inputs (serve a single member
        as a one-member ``Ensemble({"name": member}).fit(dataset, valid)``). None trades the
        MACD baseline (Baz et al. response of three MACD signals), which needs no
        training.
    symbols : sequence of str, optional
        Traded symbols (default ``feed.symbols``).
    ledger : Ledger, optional
        Default: SQLite in the project's data directory.
    broker : PaperBroker, optional
        Default ``PaperBroker(cost_bps=1, slippage_bps=2)``.
    limits : workbench.risk.RiskLimits, optional
        Pre-trade limits (change them later with :meth:`set_limits`).
    target_vol : float, default 0.15
        Annualised volatility target per symbol.
    max_gross : float, default 1.0
        Cap on the sum of |target weights| (fraction of equity).
    min_trade_fraction : float, default 0.001
        Orders smaller than this fraction of equity are not sent (less churn).
    features : {"full", "model"}, default "full"
        ``"full"``: the whole OHLCV catalogue (less the O(N^2) mean pairwise
        correlation) is streamed, as in research; ``"model"``: only the model's inputs.
    var_window : int, default 250
        Bars in the rolling VaR/CVaR window.
    context_length : int, optional
        Feature rows served to the model per symbol (default: the ensemble's
        ``context_length``, burn-in plus sequence length). Any value from the members'
        ``burn_in + 1`` up is inside what training scored (every training window scores
        positions with ``burn_in`` to ``burn_in + seq_len - 1`` steps of context) and
        costs proportionally less.
    threads : int, default 1
        Intra-op torch threads of inference (one is fastest for a few dozen symbols and
        does not stall when another process holds a core). An ensemble (not an
        :class:`InferenceEngine`) is served by an engine with ``fused_attention=True``:
        the Momentum Transformer's last step runs its fused lane-major CPU path (equal
        to its module path to float32 rounding).

    Raises
    ------
    ValueError
        On bad parameters, a model whose inputs have no streaming feature, or a ledger
        that holds positions or open orders in symbols outside ``symbols`` (they would
        drop out of the engine's equity; the message names them).
    """

    def __init__(self, feed: Iterable[Any], model: Any = None, *,
                 symbols: Sequence[str] | None = None, ledger: Any = None, broker: Any = None,
                 limits: Any = None, target_vol: float = 0.15, max_gross: float = 1.0,
                 min_trade_fraction: float = 0.001, features: str = "full",
                 var_window: int = 250, context_length: int | None = None,
                 threads: int = 1):
        from workbench.features import FeatureSet, FeatureStream
        from workbench.risk import LatencyTracker, RiskLimits, RiskMonitor

        from ._broker import PaperBroker
        from ._ledger import Ledger

        for name, value in (("target_vol", target_vol), ("max_gross", max_gross)):
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not 0 <= float(min_trade_fraction) < 1:
            raise ValueError(f"min_trade_fraction must be in [0, 1), got {min_trade_fraction!r}")
        if features not in ("full", "model"):
            raise ValueError(f"features must be 'full' or 'model', got {features!r}")
        self.feed = feed
        self.symbols = tuple(symbols if symbols is not None else feed.symbols)  # type: ignore[attr-defined]
        if not self.symbols or len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols must be unique and non-empty, got {self.symbols!r}")
        self._index = {s: j for j, s in enumerate(self.symbols)}
        self.target_vol = float(target_vol)
        self.max_gross = float(max_gross)
        self.min_trade_fraction = float(min_trade_fraction)
        self.limits = limits if limits is not None else RiskLimits()
        self.ledger = ledger if ledger is not None else Ledger()
        book = dict(self.ledger.positions())
        pending = self.ledger.open_orders()
        try:
            self._check_ledger_symbols(book, pending)
        except ValueError:
            if ledger is None:  # opened here: do not leak its connection
                self.ledger.close()
            raise
        self.broker = broker if broker is not None else PaperBroker()

        self.model, self._predict, names, self.context_length = self._serving(
            model, len(self.symbols), context_length, threads)
        specs = model_feature_specs(names)
        all_specs: list[tuple[str, dict[str, Any]]] = [_SIGMA, *specs]
        if features == "full":
            full = FeatureSet.full(exclude=["mean_pairwise_correlation"])
            all_specs += [(i.name, dict(i.params)) for i in full.instances()]
        firsts = self._first_columns(all_specs)
        unique: list[tuple[str, dict[str, Any]]] = []
        seen: set[str] = set()
        for spec, col in zip(all_specs, firsts):
            if col not in seen:  # same column = same feature (defaults spelled out or not)
                seen.add(col)
                unique.append(spec)
        self.stream = FeatureStream(unique, self.symbols)
        cols = list(self.stream.columns)
        self._sigma_col = cols.index(firsts[0])
        self._model_cols = [cols.index(firsts[1 + k]) for k in range(len(specs))]
        n, L, F = len(self.symbols), self.context_length, len(specs)
        self._window = np.full((L, n, F), np.nan)
        self._filled = 0
        self._bar_fields = {f: np.full(n, np.nan) for f in self.stream.fields}

        self.validator = BarValidator(self.symbols)
        self.latency = LatencyTracker()
        self.monitor = RiskMonitor(self.ledger.initial_cash, window=var_window)
        self.cursor = self.ledger.cursor()
        self.cash = float(self.ledger.cash())
        self.book: dict[str, float] = book
        self.broker.restore(pending)
        self.prices: dict[str, float] = {}
        self.last_seen: dict[str, float] = {}  # wall-clock time of each symbol's last bar
        self.state: Any = None
        self.n_batches = 0
        self.rejected_orders = 0
        self.model_errors = 0
        self.last_model_error: str | None = None
        self._model_ok = True
        self.error: str | None = None
        self._subscribers: dict[int, Callable[[EngineUpdate], None]] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- set-up helpers ----------------------------------------------------------------
    def _check_ledger_symbols(self, book: dict[str, float], orders: Sequence[Any]) -> None:
        """Refuse a ledger book or open orders in symbols not traded here.

        The engine values, sizes and fills only its own symbols, so such holdings would
        silently drop out of its equity (and open orders would never fill).
        """
        held = {s for s, q in book.items() if q != 0.0}
        pending = {o.symbol for o in orders}
        foreign = sorted((held | pending) - set(self.symbols))
        if foreign:
            kinds = {s: " and ".join(k for k, on in (("position", s in held),
                                                      ("open order", s in pending)) if on)
                     for s in foreign}
            what = ", ".join(f"{s!r} ({kinds[s]})" for s in foreign)
            raise ValueError(
                f"the ledger {getattr(self.ledger, 'masked_url', '')!r} (account "
                f"{getattr(self.ledger, 'account', '')!r}) holds {what}: symbol(s) this "
                f"engine does not trade (symbols={list(self.symbols)!r}); they would drop "
                "out of its equity. Trade them too (add them to the feed/symbols), or use a "
                "new ledger (another URL or account, or Ledger.reset() to start afresh)")

    def _first_columns(self, specs: list[tuple[str, dict[str, Any]]]) -> list[str]:
        from workbench.features import FeatureStream

        return [FeatureStream([spec], self.symbols[:1]).columns[0] for spec in specs]

    @staticmethod
    def _serving(model: Any, n: int, context: int | None,
                 threads: int) -> tuple[Any, Callable[[np.ndarray], np.ndarray], tuple, int]:
        if model is None:
            fb = _MACDFallback()
            return fb, fb.predict, fb.feature_names_in_, 1
        from workbench.models import InferenceEngine

        if context is not None and (isinstance(context, bool) or not isinstance(context, int)
                                    or context < 1):
            raise ValueError(f"context_length must be an integer >= 1, got {context!r}")
        engine = model if isinstance(model, InferenceEngine) else InferenceEngine(
            model, batch_sizes=(n,), context_length=context, threads=threads,
            fused_attention=True)
        inner = getattr(engine, "ensemble", model)
        names = tuple(getattr(inner, "feature_names_in_", None)
                      or getattr(model, "feature_names_in_", None) or ())
        if not names:
            raise ValueError("the model has no feature_names_in_; fit it on a MomentumDataset")
        length = int(getattr(engine, "context_length_", None) or inner.context_length)
        return engine, engine.predict, names, length

    # -- subscriptions -----------------------------------------------------------------
    def subscribe(self, callback: Callable[[EngineUpdate], None]) -> int:
        """Call ``callback(update)`` after every batch (on the producer thread; keep it fast).

        Returns
        -------
        int
            Token for :meth:`unsubscribe`.
        """
        token = next(self._ids)
        with self._lock:
            self._subscribers[token] = callback
        return token

    def unsubscribe(self, token: int) -> None:
        """Stop sending updates to a subscriber (unknown tokens are ignored)."""
        with self._lock:
            self._subscribers.pop(token, None)

    @property
    def n_subscribers(self) -> int:
        """Number of subscribed callbacks (open app sessions)."""
        return len(self._subscribers)

    def set_limits(self, limits: Any) -> None:
        """Replace the pre-trade limits; the next batch's orders are checked against them."""
        from workbench.risk import RiskLimits

        if not isinstance(limits, RiskLimits):
            raise ValueError(f"limits must be a RiskLimits, got {type(limits).__name__}")
        self.limits = limits

    # -- the loop --------------------------------------------------------------------
    def start(self) -> None:
        """Run the producer in a daemon thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        if hasattr(self.feed, "start"):
            self.feed.start()
        self._thread = threading.Thread(target=self._run, name="workbench-live", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the feed and the producer thread."""
        self._stop.set()
        if hasattr(self.feed, "stop"):
            self.feed.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def _feed_control(self, name: str) -> Callable[[], Any]:
        method = getattr(self.feed, name, None)
        if not callable(method):
            raise TypeError(f"LiveEngine.{name}: the feed ({type(self.feed).__name__}) has no "
                            f"{name}() method; a workbench.data.feeds.Feed (ReplayFeed, "
                            "AlpacaFeed) can be paused and resumed, a plain iterable cannot")
        return method

    def pause(self) -> None:
        """Pause the feed (no batches, no updates) until :meth:`resume`.

        Raises
        ------
        TypeError
            If the feed has no ``pause()`` (a plain iterable of batches).
        """
        self._feed_control("pause")()

    def resume(self) -> None:
        """Resume a paused feed.

        Raises
        ------
        TypeError
            If the feed has no ``resume()`` (a plain iterable of batches).
        """
        self._feed_control("resume")()

    @property
    def running(self) -> bool:
        """True while the producer thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            for batch in self.feed:
                if self._stop.is_set():
                    break
                self.step(batch)
        except Exception as exc:  # keep the app alive and show what happened
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("live engine stopped")

    # -- one batch ------------------------------------------------------------------
    def step(self, batch: Sequence[Any]) -> EngineUpdate | None:
        """Process one feed batch synchronously; returns the update (None if nothing new).

        Bars of several timestamps in one batch are validated and processed in
        timestamp order (whatever their order in the batch), one engine step per
        timestamp; the update of the last timestamp is returned.

        Parameters
        ----------
        batch : sequence of Bar or Malformed
            Anything else is rejected as malformed (see :class:`BarValidator`).

        Returns
        -------
        EngineUpdate or None
            None when no bar of the batch was accepted.
        """
        t0 = time.perf_counter()
        bars = self.validator.check(batch)
        rejects = list(self.validator.last_rejected)
        t_val = time.perf_counter() - t0
        if not bars:
            if rejects and self.state is not None:
                self._publish(EngineUpdate(ts=self.state.ts, state=self.state, bars=[],
                                           rejected_inputs=rejects))
            return None
        groups: dict[int, list[Bar]] = {}
        for b in bars:
            groups.setdefault(b.ts, []).append(b)
        update = None
        for k, ts in enumerate(sorted(groups)):
            update = self._step_ts(ts, groups[ts], t0 if k == 0 else time.perf_counter(),
                                   t_val if k == 0 else 0.0, rejects if k == 0 else [])
        return update

    def _step_ts(self, ts: int, bars: list[Bar], t0: float, t_val: float,
                 rejects: list[dict]) -> EngineUpdate:
        lat = self.latency
        lat.record("validate", t_val)
        warm = self.cursor is not None and ts <= self.cursor
        now = time.time()
        for b in bars:
            self.prices[b.symbol] = b.close
            self.last_seen[b.symbol] = now

        t = time.perf_counter()
        cash_before = self.cash
        fills: list[Fill] = [] if warm else self.broker.on_bars(bars)
        for f in fills:
            self.book[f.symbol] = self.book.get(f.symbol, 0.0) + f.qty
            self.cash -= f.qty * f.price + f.fee
        lat.record("broker", time.perf_counter() - t)

        t = time.perf_counter()
        for arr in self._bar_fields.values():
            arr.fill(np.nan)
        for b in bars:
            j = self._index[b.symbol]
            for name in self._bar_fields:
                self._bar_fields[name][j] = getattr(b, name)
        row = self.stream.update(self._bar_fields)
        self._window[:-1] = self._window[1:]  # shift in place: no new (L, N, F) array per bar
        self._window[-1] = row[:, self._model_cols]
        self._filled += 1
        sigma = row[:, self._sigma_col]
        lat.record("features", time.perf_counter() - t)

        positions: dict[str, float] = {}
        verdicts: list[Any] = []
        new_orders: list[Order] = []
        rejected: list[tuple[Order, Sequence[str]]] = []
        if self._filled >= self.context_length and not warm:
            t = time.perf_counter()
            x = np.ascontiguousarray(self._window.transpose(1, 0, 2))  # (N, L, F)
            # research's rule (MomentumDataset.input_mask, SequenceModel.predict): a symbol
            # has a position where its current feature row and sigma are finite (sigma > 0);
            # earlier non-finite rows of its window (a missed bar, the features' warm-up)
            # are read as 0, so one missing bar does not block it for context_length bars
            sized = np.isfinite(sigma) & (sigma > 0)  # a bar and a valid sigma: n_t's symbols
            ok = np.isfinite(x[:, -1, :]).all(axis=1) & sized
            pos = np.zeros(len(self.symbols))
            if ok.any():
                raw = self._call_model(x)
                if raw is None:  # the model failed: nothing decided, the book is held
                    ok = np.zeros_like(ok)
                else:
                    pos = np.where(ok, raw, 0.0)
                # (recorded only when the model ran: the features' own warm-up, where no
                # symbol has finite inputs yet, would pull the percentiles towards zero)
                lat.record("inference", time.perf_counter() - t)
            pos = np.clip(np.nan_to_num(pos), -1.0, 1.0)
            t = time.perf_counter()
            orders = self._orders(ts, bars, pos, sigma, ok, max(1, int(sized.sum())))
            # only the symbols the model decided for (a bar at ts and finite inputs)
            positions = {b.symbol: float(pos[self._index[b.symbol]]) for b in bars
                         if ok[self._index[b.symbol]]}
            lat.record("sizing", time.perf_counter() - t)
            t = time.perf_counter()
            verdicts = self._check(orders)
            for v in verdicts:
                if v.approved:
                    new_orders.append(v.order)
                else:
                    rejected.append((v.order, v.reasons))
            self.rejected_orders += len(rejected)
            lat.record("risk_checks", time.perf_counter() - t)
        if not warm and (fills or new_orders or rejected):
            # one transaction per batch that changed the book; batches without orders or
            # fills are not written (after a restart they are replayed as warm-up and give
            # the same, empty, decisions). The broker gets the orders only once the ledger
            # holds them, so a failed commit leaves no order the ledger does not know.
            t = time.perf_counter()
            self.ledger.commit_bar(ts, fills=fills, new_orders=new_orders, rejected=rejected,
                                   expect_cash=cash_before, expect_cursor=self.cursor)
            self.cursor = ts
            lat.record("ledger", time.perf_counter() - t)
        if new_orders:
            self.broker.submit(new_orders)

        if warm:  # replaying bars already in the ledger: features only, nothing to show
            self.n_batches += 1
            return EngineUpdate(ts=ts, state=self.state, bars=bars, warmup=True)
        t = time.perf_counter()
        health = self._health()
        self.state = self.monitor.update(
            ts, positions={k: v for k, v in self.book.items() if v != 0.0},
            prices=dict(self.prices), cash=self.cash, model_health=health,
            rejected_inputs=dict(self.validator.counts), verdicts=verdicts,
            latency=None)
        lat.record("risk_state", time.perf_counter() - t)
        lat.record("end_to_end", time.perf_counter() - t0)
        self.n_batches += 1
        update = EngineUpdate(ts=ts, state=self.state, bars=bars, positions=positions,
                              fills=fills, verdicts=verdicts, rejected_inputs=rejects)
        self._publish(update)
        return update

    def _call_model(self, x: np.ndarray) -> np.ndarray | None:
        """The model's positions for ``x`` (N, L, F), or None when the call failed.

        A failed call (an exception, or not one finite-or-NaN value per symbol) is
        logged and counted (:attr:`model_errors`, :attr:`last_model_error`, the
        ``"predict"`` entry of the model health) and the batch decides nothing, so the
        producer keeps running and the book is held until the model answers again.
        """
        n = len(self.symbols)
        try:
            out = np.asarray(self._predict(np.nan_to_num(x)), dtype=float)
            if out.shape != (n,):
                raise ValueError(f"the model returned shape {out.shape}, expected ({n},)")
        except Exception as exc:  # noqa: BLE001 - the producer must survive the model
            self.model_errors += 1
            self.last_model_error = f"{type(exc).__name__}: {exc}"[:500]
            self._model_ok = False
            log.exception("live engine: model call failed; no decision at this bar")
            return None
        self._model_ok = True
        return out

    def _health(self) -> dict[str, Any]:
        """The model's health plus the engine's own record of failed model calls."""
        try:
            health = dict(self.model.health()) if hasattr(self.model, "health") else {}
        except Exception as exc:  # noqa: BLE001 - a broken report must not stop trading
            health = {"state": "error", "health_error": f"{type(exc).__name__}: {exc}"}
        if self.model_errors:
            health["predict"] = {"active": self._model_ok, "failures": self.model_errors,
                                 "last_error": self.last_model_error}
            if not self._model_ok:
                health["state"] = "error"
        return health

    def _publish(self, update: EngineUpdate) -> None:
        with self._lock:
            subs = list(self._subscribers.values())
        for cb in subs:
            try:
                cb(update)
            except Exception:  # a broken session must not stop the producer
                log.exception("live subscriber failed")

    def equity(self) -> float:
        """Cash plus positions at the last prices (currency)."""
        # summed in the fixed symbol order, so a restarted engine (whose book comes back
        # from the ledger in another order) sizes its orders bit for bit the same
        return self.cash + sum(self.book.get(s, 0.0) * self.prices.get(s, 0.0)
                               for s in self.symbols)

    def _orders(self, ts: int, bars: list[Bar], pos: np.ndarray, sigma: np.ndarray,
                ok: np.ndarray, n: int) -> list[Order]:
        # n: the risk budget is split over the symbols with a bar and a valid sigma, decided
        # or not (workbench.backtest.portfolio_weights' n_t): a symbol still in its
        # features' warm-up holds no position but keeps its share of the budget
        equity = self.equity()
        if not np.isfinite(equity) or equity <= 0:
            return []
        live = [b for b in bars if ok[self._index[b.symbol]]]
        weights = {b.symbol: float(pos[self._index[b.symbol]] * self.target_vol
                                   / sigma[self._index[b.symbol]] / n) for b in live}
        gross = sum(abs(w) for w in weights.values())
        scale = self.max_gross / gross if gross > self.max_gross else 1.0
        orders = []
        for b in live:
            target = weights[b.symbol] * scale * equity / b.close
            delta = target - self.book.get(b.symbol, 0.0)
            if abs(delta) * b.close < self.min_trade_fraction * equity:
                continue
            orders.append(Order(order_id=f"{ts}-{b.symbol}", ts=ts, symbol=b.symbol,
                                qty=float(delta), ref_price=float(b.close)))
        return orders

    def _check(self, orders: list[Order]) -> list[Any]:
        from workbench.risk import check_orders

        if not orders:
            return []
        now = time.time()
        ages = {s: now - self.last_seen.get(s, now) for s in self.symbols}
        return check_orders(orders, positions=self.book, prices=self.prices,
                            equity=self.equity(), peak_equity=max(self.monitor.peak_equity,
                                                                  self.equity()),
                            bar_age_s=ages, limits=self.limits)

    def latency_percentiles(self) -> dict[str, dict[str, float]]:
        """p50/p95/p99 per stage in milliseconds (see :data:`STAGES`)."""
        return self.latency.percentiles()

    def close(self) -> None:
        """Stop the loop and release the model engine."""
        self.stop()
        if hasattr(self.model, "close"):
            self.model.close()

