"""Streaming classes of the microstructure, cross-asset and order-book features.

Each class keeps the same state arrays as the batch driver in
:mod:`workbench.features._cpu_micro` (per-symbol rings of the last ``window`` values,
running sums or co-moments) and advances them with the same numba ``*_row`` function,
once per bar for all N symbols (no Python loop over symbols), so every step's output
equals the batch output's row bit for bit.

Per-symbol state is O(window); work per bar is O(1) per symbol (amortised: the exact
re-sync every ``window`` bars costs O(window)), O(N^2) for mean pairwise correlation,
and O(k) for the stateless order-book features.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from workbench.features import _cpu_micro as K
from workbench.features._api import _int, _positive
from workbench.features._stream_base import StreamFeature

__all__ = [
    "AmihudStream",
    "BetaStream",
    "CorrelationStream",
    "CorwinSchultzStream",
    "DepthImbalanceStream",
    "DepthStream",
    "MeanPairwiseCorrelationStream",
    "PriceImpactStream",
    "RelativeSpreadStream",
    "RollStream",
    "SpreadStream",
    "WeightedMidStream",
]


def _vec(x: dict[str, np.ndarray], name: str, n: int) -> np.ndarray:
    a = np.ascontiguousarray(x[name], dtype=np.float64)
    if a.shape != (n,):
        raise ValueError(f"input {name!r} must have shape ({n},), got {a.shape}")
    return a


def _min_periods(min_periods: Any, window: int) -> int:
    if min_periods is None:
        return window
    mp = _int(min_periods, "min_periods", 2)
    if mp > window:
        raise ValueError(f"min_periods must be an int in [2, window={window}], got {min_periods!r}")
    return mp


def _market(market: Any, n: int, symbols: Sequence[str] | None) -> int:
    """Column index of ``market``: an int in [0, n) or a symbol name found in ``symbols``."""
    if isinstance(market, str):
        if symbols is None:
            raise ValueError(f"market {market!r} is a symbol name; pass symbols= to resolve it")
        syms = list(symbols)
        if market not in syms:
            raise ValueError(f"market {market!r} is not among the symbols {syms}")
        return syms.index(market)
    if (isinstance(market, bool) or not isinstance(market, numbers.Integral)
            or not 0 <= int(market) < n):
        raise ValueError(f"market must be a column index in [0, {n}) or a symbol name, "
                         f"got {market!r}")
    return int(market)


# --------------------------------------------------------------------------- #
# OHLCV microstructure
# --------------------------------------------------------------------------- #


class CorwinSchultzStream(StreamFeature):
    """Streaming :func:`~workbench.features._micro.corwin_schultz_spread` (inputs high, low)."""

    inputs: ClassVar[tuple[str, ...]] = ("high", "low")
    n_outputs: ClassVar[int] = 1

    def __init__(self, n_symbols: int, window: int = 20):
        super().__init__(n_symbols, window=window)
        self.window = _int(window, "window", 1)
        self._state = K.cs_state(self.n_symbols, self.window)
        self._o = np.empty(self.n_symbols)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        n = self.n_symbols
        K.cs_row(_vec(x, "high", n), _vec(x, "low", n), self._o, 0, n, self.window,
                 *self._state)
        out[:, 0] = self._o


class RollStream(StreamFeature):
    """Streaming :func:`~workbench.features._micro.roll_spread` (input close)."""

    inputs: ClassVar[tuple[str, ...]] = ("close",)
    n_outputs: ClassVar[int] = 1

    def __init__(self, n_symbols: int, window: int = 20):
        super().__init__(n_symbols, window=window)
        self.window = _int(window, "window", 2)
        n = self.n_symbols
        self._state = (np.full(n, np.nan), np.full(n, np.nan), *K.cm_state(n, self.window))
        self._o = np.empty(n)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        n = self.n_symbols
        K.roll_row(_vec(x, "close", n), self._o, 0, n, self.window, *self._state)
        out[:, 0] = self._o


class AmihudStream(StreamFeature):
    """Streaming :func:`~workbench.features._micro.amihud_illiquidity` (inputs close, volume)."""

    inputs: ClassVar[tuple[str, ...]] = ("close", "volume")
    n_outputs: ClassVar[int] = 1

    def __init__(self, n_symbols: int, window: int = 20, scale: float = 1e6):
        super().__init__(n_symbols, window=window, scale=scale)
        self.window = _int(window, "window", 1)
        self.scale = _positive(scale, "scale")
        self._state = K.amihud_state(self.n_symbols, self.window)
        self._o = np.empty(self.n_symbols)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        n = self.n_symbols
        K.amihud_row(_vec(x, "close", n), _vec(x, "volume", n), self._o, 0, n, self.window,
                     self.scale, *self._state)
        out[:, 0] = self._o


# --------------------------------------------------------------------------- #
# cross-asset
# --------------------------------------------------------------------------- #


class _CorrBetaStream(StreamFeature):
    inputs: ClassVar[tuple[str, ...]] = ("close",)
    n_outputs: ClassVar[int] = 1
    _which = 0

    def __init__(self, n_symbols: int, market: int | str = 0, window: int = 60,
                 min_periods: int | None = None, symbols: Sequence[str] | None = None):
        super().__init__(n_symbols, market=market, window=window, min_periods=min_periods)
        n = self.n_symbols
        self.market = _market(market, n, symbols)
        self.window = _int(window, "window", 2)
        self.min_periods = _min_periods(min_periods, self.window)
        self._last = np.full(n, np.nan)
        self._state = (*K.cm_state(n, self.window), *K.flat_state(n))
        self._mlast = np.full(1, np.nan)
        self._t = 0
        self._oc = np.empty(n)
        self._ob = np.empty(n)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        n = self.n_symbols
        c = _vec(x, "close", n)
        rm = K.market_return_row(c, self.market, self._mlast)
        K.corr_row(c, rm, self._oc, self._ob, 0, n, self._t, self.window,
                   float(self.min_periods), self.market, self._last, *self._state)
        self._t += 1
        out[:, 0] = self._ob if self._which else self._oc


class CorrelationStream(_CorrBetaStream):
    """Streaming :func:`~workbench.features._micro.rolling_correlation` (input close).

    O(window) state and O(1) work (amortised) per symbol per bar.
    """

    _which = 0


class BetaStream(_CorrBetaStream):
    """Streaming :func:`~workbench.features._micro.rolling_beta` (input close)."""

    _which = 1


class MeanPairwiseCorrelationStream(StreamFeature):
    """Streaming :func:`~workbench.features._micro.mean_pairwise_correlation` (input close).

    O(N^2) state and work per bar; the market-wide value is written for every symbol.
    """

    inputs: ClassVar[tuple[str, ...]] = ("close",)
    n_outputs: ClassVar[int] = 1

    def __init__(self, n_symbols: int, window: int = 60, min_periods: int | None = None):
        super().__init__(n_symbols, window=window, min_periods=min_periods)
        n = self.n_symbols
        self.window = _int(window, "window", 2)
        self.min_periods = _min_periods(min_periods, self.window)
        self._pi, self._pj, self._bounds = K.pair_layout(n)
        self._state = K.pair_state(self._pi.shape[0])
        self._last = np.full(n, np.nan)
        self._r = np.empty(n)
        self._ring = np.full((self.window, n), np.nan)
        nb = self._bounds.shape[0] - 1
        self._psum = np.zeros((nb, 1))
        self._pcnt = np.zeros((nb, 1))
        self._t = 0

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        n = self.n_symbols
        c = _vec(x, "close", n)
        w, t = self.window, self._t
        K.log_return_row(c, self._last, self._r)
        self._t += 1
        if n < 2:
            out[:, 0] = np.nan
            return
        pos = t % w
        rold = self._ring[pos].copy()
        self._ring[pos] = self._r
        has_old = t >= w
        resync = (t + 1) % w == 0
        s0 = (t + 1) % w
        for kb in range(self._bounds.shape[0] - 1):  # a few fixed blocks, not symbols
            a, b = K.mpc_block(self._r, rold, has_old, self._ring, s0, resync, c, t, w,
                               float(self.min_periods), self._bounds[kb], self._bounds[kb + 1],
                               self._pi, self._pj, *self._state)
            self._psum[kb, 0] = a
            self._pcnt[kb, 0] = b
        out[:, 0] = K.reduce_pairs(self._psum, self._pcnt)[0]


# --------------------------------------------------------------------------- #
# order book (stateless)
# --------------------------------------------------------------------------- #


class _BookStream(StreamFeature):
    inputs: ClassVar[tuple[str, ...]] = ("bid_px", "ask_px")
    n_outputs: ClassVar[int] = 1

    def _args(self, x: dict[str, np.ndarray]) -> list[np.ndarray]:
        args = []
        for f in self.inputs:
            a = np.asarray(x[f], dtype=np.float64)
            if a.ndim != 2 or a.shape[0] != self.n_symbols:
                raise ValueError(f"input {f!r} must have shape (N={self.n_symbols}, k), "
                                 f"got {a.shape}")
            args.append(a[None])
        return args

    def _compute(self, args: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, 0] = self._compute(self._args(x))[0]


class SpreadStream(_BookStream):
    """Streaming :func:`~workbench.features._micro.spread` (inputs bid_px, ask_px; (N, k) each)."""

    def _compute(self, args):
        return K.l2_spread(np, *args)


class RelativeSpreadStream(_BookStream):
    """Streaming :func:`~workbench.features._micro.relative_spread`."""

    def _compute(self, args):
        return K.l2_relative_spread(np, *args)


class _SizedBookStream(_BookStream):
    inputs: ClassVar[tuple[str, ...]] = ("bid_px", "ask_px", "bid_sz", "ask_sz")


class _LevelsBookStream(_SizedBookStream):
    def __init__(self, n_symbols: int, levels: int = 5):
        super().__init__(n_symbols, levels=levels)
        self.levels = _int(levels, "levels", 1)


class DepthImbalanceStream(_LevelsBookStream):
    """Streaming :func:`~workbench.features._micro.depth_imbalance`."""

    def _compute(self, args):
        return K.l2_depth_imbalance(np, *args, self.levels)


class DepthStream(_LevelsBookStream):
    """Streaming :func:`~workbench.features._micro.depth`."""

    def _compute(self, args):
        return K.l2_depth(np, *args, self.levels)


class WeightedMidStream(_SizedBookStream):
    """Streaming :func:`~workbench.features._micro.weighted_mid`."""

    def _compute(self, args):
        return K.l2_weighted_mid(np, *args)


class PriceImpactStream(_SizedBookStream):
    """Streaming :func:`~workbench.features._micro.price_impact`."""

    def _compute(self, args):
        return K.l2_price_impact(np, *args)
