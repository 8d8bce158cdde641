"""Streaming classes of the trend / bands / volume / volatility features.

Each class keeps O(window) state per symbol in numpy arrays and advances all N
symbols by one bar with a single call of a numba driver of
:mod:`workbench.features._cpu_ta`, which runs the very per-asset step function the
batch kernel runs: the output at every step equals the batch output's row. The
numba module is imported on first construction (``import workbench.features`` stays
free of numba).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import ClassVar

import numpy as np

from workbench.features._api import _int, _positive
from workbench.features._stream_base import StreamFeature

__all__ = [
    "ATRStream",
    "BollingerBandwidthStream",
    "BollingerPctBStream",
    "GarmanKlassStream",
    "KurtosisStream",
    "MomentumStream",
    "OBVStream",
    "ParkinsonStream",
    "PricePositionStream",
    "ROCStream",
    "SkewnessStream",
    "VWAPStream",
    "VolOfVolStream",
    "VolumeZScoreStream",
]


def _k() -> ModuleType:
    return importlib.import_module("workbench.features._cpu_ta")


def _f(x: dict[str, np.ndarray], name: str) -> np.ndarray:
    return np.ascontiguousarray(x[name], dtype=np.float64)


def _zi(n: int) -> np.ndarray:
    return np.zeros(n, np.int64)


class _Base(StreamFeature):
    inputs: ClassVar[tuple[str, ...]] = ("close",)
    n_outputs: ClassVar[int] = 1

    def __init__(self, n_symbols: int, **params):
        super().__init__(n_symbols, **params)
        self._kern = _k()


class ROCStream(_Base):
    """Streaming :func:`~workbench.features._ta.roc` (ring of the last ``period`` closes)."""

    _what = 0

    def __init__(self, n_symbols: int, period: int = 10):
        period = _int(period, "period", 1)
        super().__init__(n_symbols, period=period)
        n = self.n_symbols
        self._period = period
        self._cnt = _zi(n)
        self._buf = np.zeros((period, n))

    def update(self, x, out):
        self._kern.roc_stream_nb(_f(x, "close"), out, self._period, self._what, self._cnt,
                                 self._buf)


class MomentumStream(ROCStream):
    """Streaming :func:`~workbench.features._ta.momentum`."""

    _what = 1


class ATRStream(_Base):
    """Streaming :func:`~workbench.features._ta.atr` (previous close and Wilder average)."""

    inputs = ("high", "low", "close")

    def __init__(self, n_symbols: int, period: int = 14):
        period = _int(period, "period", 1)
        super().__init__(n_symbols, period=period)
        n = self.n_symbols
        self._period = period
        self._cnt = _zi(n)
        self._prevc = np.zeros(n)
        self._atr = np.zeros(n)

    def update(self, x, out):
        self._kern.atr_stream_nb(_f(x, "high"), _f(x, "low"), _f(x, "close"), out,
                                 self._period, self._cnt, self._prevc, self._atr)


class OBVStream(_Base):
    """Streaming :func:`~workbench.features._ta.obv`."""

    inputs = ("close", "volume")

    def __init__(self, n_symbols: int):
        super().__init__(n_symbols)
        n = self.n_symbols
        self._cnt = _zi(n)
        self._prevc = np.zeros(n)
        self._obv = np.zeros(n)

    def update(self, x, out):
        self._kern.obv_stream_nb(_f(x, "close"), _f(x, "volume"), out, self._cnt, self._prevc,
                                 self._obv)


class PricePositionStream(_Base):
    """Streaming :func:`~workbench.features._ta.price_position` (monotonic deques)."""

    inputs = ("high", "low", "close")

    def __init__(self, n_symbols: int, window: int = 14):
        window = _int(window, "window", 1)
        super().__init__(n_symbols, window=window)
        n = self.n_symbols
        self._w = window
        cap = self._kern.pp_capacity(window)  # ring size: power of two >= window
        self._mask = cap - 1
        self._state = (_zi(n), np.zeros((cap, n)), np.zeros((cap, n), np.int64), _zi(n),
                       _zi(n), np.zeros((cap, n)), np.zeros((cap, n), np.int64), _zi(n), _zi(n))

    def update(self, x, out):
        self._kern.price_position_stream_nb(_f(x, "high"), _f(x, "low"), _f(x, "close"), out,
                                            self._w, self._mask, *self._state)


class BollingerPctBStream(_Base):
    """Streaming :func:`~workbench.features._ta.bollinger_percent_b`."""

    _which = 0

    def __init__(self, n_symbols: int, window: int = 20, k: float = 2.0):
        window = _int(window, "window", 2)
        k = _positive(k, "k")
        super().__init__(n_symbols, window=window, k=k)
        n = self.n_symbols
        self._w = window
        self._kk = k
        self._state = (_zi(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros((window, n)),
                       np.full(n, np.nan), _zi(n))

    def update(self, x, out):
        self._kern.bollinger_pb_stream_nb(_f(x, "close"), out, self._which, self._w, self._kk,
                                          *self._state)


class BollingerBandwidthStream(BollingerPctBStream):
    """Streaming :func:`~workbench.features._ta.bollinger_bandwidth`."""

    _which = 1


class VWAPStream(_Base):
    """Streaming :func:`~workbench.features._ta.rolling_vwap` (rings of tp*v and v)."""

    inputs = ("high", "low", "close", "volume")

    def __init__(self, n_symbols: int, window: int = 20):
        window = _int(window, "window", 1)
        super().__init__(n_symbols, window=window)
        n = self.n_symbols
        self._w = window
        self._state = (_zi(n), np.zeros(n), np.zeros(n), _zi(n), np.zeros((window, n)),
                       np.zeros((window, n)))

    def update(self, x, out):
        self._kern.vwap_stream_nb(_f(x, "high"), _f(x, "low"), _f(x, "close"), _f(x, "volume"),
                                  out, self._w, *self._state)


class VolumeZScoreStream(_Base):
    """Streaming :func:`~workbench.features._ta.volume_zscore`."""

    inputs = ("volume",)

    def __init__(self, n_symbols: int, window: int = 20):
        window = _int(window, "window", 2)
        super().__init__(n_symbols, window=window)
        n = self.n_symbols
        self._w = window
        self._state = (_zi(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros((window, n)),
                       np.full(n, np.nan), _zi(n))

    def update(self, x, out):
        self._kern.volume_zscore_stream_nb(_f(x, "volume"), out, self._w, *self._state)


class VolOfVolStream(_Base):
    """Streaming :func:`~workbench.features._ta.vol_of_vol` (two chained rolling windows)."""

    def __init__(self, n_symbols: int, vol_window: int = 20, window: int = 60,
                 periods_per_year: float = 252):
        vol_window = _int(vol_window, "vol_window", 2)
        window = _int(window, "window", 2)
        ppy = _positive(periods_per_year, "periods_per_year")
        super().__init__(n_symbols, vol_window=vol_window, window=window, periods_per_year=ppy)
        n = self.n_symbols
        self._vw = vol_window
        self._w = window
        self._scale = float(np.sqrt(ppy))
        self._state = (np.full(n, np.nan), _zi(n), np.zeros(n), np.zeros(n), np.zeros(n),
                       np.zeros((vol_window, n)), _zi(n), np.zeros(n), np.zeros(n), np.zeros(n),
                       np.zeros((window, n)))

    def update(self, x, out):
        self._kern.vol_of_vol_stream_nb(_f(x, "close"), out, self._vw, self._w, self._scale,
                                        *self._state)


class SkewnessStream(_Base):
    """Streaming :func:`~workbench.features._ta.rolling_skewness`."""

    _what = 0
    _min = 3

    def __init__(self, n_symbols: int, window: int = 60):
        window = _int(window, "window", self._min)
        super().__init__(n_symbols, window=window)
        n = self.n_symbols
        self._w = window
        self._state = (np.full(n, np.nan), _zi(n), np.zeros(n), np.zeros(n), np.zeros(n),
                       np.zeros(n), np.zeros(n), np.zeros((window, n)))

    def update(self, x, out):
        self._kern.moments_stream_nb(_f(x, "close"), out, self._w, self._what, *self._state)


class KurtosisStream(SkewnessStream):
    """Streaming :func:`~workbench.features._ta.rolling_kurtosis`."""

    _what = 1
    _min = 4


class ParkinsonStream(_Base):
    """Streaming :func:`~workbench.features._ta.parkinson_volatility`."""

    inputs: ClassVar[tuple[str, ...]] = ("high", "low")
    _what = 0

    def __init__(self, n_symbols: int, window: int = 20, periods_per_year: float = 252):
        window = _int(window, "window", 1)
        ppy = _positive(periods_per_year, "periods_per_year")
        super().__init__(n_symbols, window=window, periods_per_year=ppy)
        n = self.n_symbols
        self._w = window
        self._ppy = ppy
        self._state = (_zi(n), np.zeros(n), np.zeros((window, n)))

    def _run(self, o, h, lo, c, out):
        self._kern.range_vol_stream_nb(o, h, lo, c, out, self._w, self._what, self._ppy,
                                       *self._state)

    def update(self, x, out):
        h = _f(x, "high")
        self._run(h, h, _f(x, "low"), h, out)


class GarmanKlassStream(ParkinsonStream):
    """Streaming :func:`~workbench.features._ta.garman_klass_volatility`."""

    inputs: ClassVar[tuple[str, ...]] = ("open", "high", "low", "close")
    _what = 1

    def update(self, x, out):
        self._run(_f(x, "open"), _f(x, "high"), _f(x, "low"), _f(x, "close"), out)
