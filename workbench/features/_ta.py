"""Catalogue features: trend, bands, volume and volatility (public wrappers + registry).

Each function validates its arguments, dispatches to the kernel module of the
requested backend (:mod:`workbench.features._cpu_ta` for ``"auto"``/``"cpu"``) and
registers a :class:`~workbench.features._catalogue.FeatureDef` at import. Semantics
are those of every feature of the package: inputs (T, N) (or (T,)), NaN marks a
missing bar, each asset is computed on its own sequence of valid bars (a bar is
present where every input of the feature is finite), warm-up rows are NaN, outputs
at t depend on inputs at or before t only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.features._api import (
    _as_panel,
    _check_nonnegative,
    _finish,
    _int,
    _kernels,
    _out_dtype,
    _positive,
)
from workbench.features._catalogue import FeatureDef, register
from workbench.features._stream_ta import (
    ATRStream,
    BollingerBandwidthStream,
    BollingerPctBStream,
    GarmanKlassStream,
    KurtosisStream,
    MomentumStream,
    OBVStream,
    ParkinsonStream,
    PricePositionStream,
    ROCStream,
    SkewnessStream,
    VolOfVolStream,
    VolumeZScoreStream,
    VWAPStream,
)

__all__ = [
    "atr",
    "bollinger_bandwidth",
    "bollinger_percent_b",
    "garman_klass_volatility",
    "momentum",
    "obv",
    "parkinson_volatility",
    "price_position",
    "roc",
    "rolling_kurtosis",
    "rolling_skewness",
    "rolling_vwap",
    "vol_of_vol",
    "volume_zscore",
]

_CPU = "_cpu_ta"


def _panels(*, positive: bool = False, **arrays: Any) -> tuple[list[np.ndarray], bool]:
    """Validate several same-shape panels (keyword order kept); return 2-D arrays and 1-D flag.

    ``positive=True``: the panels are prices of a feature built on price ratios or log
    prices; a finite value <= 0 raises (see ``_api._check_positive``).
    """
    out = []
    first = None
    one_d = False
    for name, value in arrays.items():
        a, od = _as_panel(value, name, positive=positive)
        if first is None:
            first = (name, a.shape, od)
            one_d = od
        elif a.shape != first[1] or od != first[2]:
            shape = a.shape[:1] if od else a.shape
            fshape = first[1][:1] if first[2] else first[1]
            raise ValueError(f"{name} must have the shape of {first[0]} {fshape}, got {shape}")
        out.append(a)
    return out, one_d


# --------------------------------------------------------------------------- #
# trend
# --------------------------------------------------------------------------- #


def roc(close: Any, period: int = 10, *, dtype: Any = np.float64,
        backend: str = "auto") -> np.ndarray:
    """Rate of change in percent over ``period`` valid bars.

    ``ROC_t = 100 * (p_t / p_{t-k} - 1)`` where ``p_{t-k}`` is the asset's price
    ``k = period`` valid bars back.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices; NaN marks a missing bar.
    period : int, optional
        Lag ``k`` in valid bars, >= 1 (default 10).
    dtype : {float64, float32}, optional
        Output dtype (computation is float64).
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Simple return over ``k`` bars in percent (1.0 = 1 %), not annualised; the
        first ``period`` valid bars are NaN.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array, contains inf, or ``period`` is
        not an int >= 1.
        Also if ``close`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Matches ``talib.ROC(close, timeperiod=period)`` on each asset's valid bars,
    except where ``p_{t-k} == 0`` (TA-Lib writes 0, this writes NaN).
    """
    mod = _kernels(backend, _CPU)
    (c,), one_d = _panels(close=close, positive=True)
    period = _int(period, "period", 1)
    dt = _out_dtype(dtype)
    return _finish(mod.roc(c, period), one_d, dt)


def momentum(close: Any, period: int = 10, *, dtype: Any = np.float64,
             backend: str = "auto") -> np.ndarray:
    """Momentum: price change over ``period`` valid bars, ``p_t - p_{t-k}``.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Prices; NaN marks a missing bar.
    period : int, optional
        Lag ``k`` in valid bars, >= 1 (default 10).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        In price units; the first ``period`` valid bars are NaN.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array or ``period`` is not an int >= 1.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Matches ``talib.MOM(close, timeperiod=period)`` on each asset's valid bars.
    """
    mod = _kernels(backend, _CPU)
    (c,), one_d = _panels(close=close)
    period = _int(period, "period", 1)
    dt = _out_dtype(dtype)
    return _finish(mod.momentum(c, period), one_d, dt)


def price_position(high: Any, low: Any, close: Any, window: int = 14, *,
                   dtype: Any = np.float64, backend: str = "auto") -> np.ndarray:
    """Position of the close in the high-low range of the last ``window`` bars.

    ``(c_t - min(low)) / (max(high) - min(low))`` over the last ``window`` valid
    bars (the current one included).

    Parameters
    ----------
    high, low, close : array_like, shape (T, N) or (T,)
        Bar high, low and close; NaN marks a missing bar (a bar is present where
        all three are finite).
    window : int, optional
        Number of valid bars, >= 1 (default 14).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Dimensionless, in [0, 1] for consistent bars; NaN where the range is 0
        and for the first ``window - 1`` valid bars.

    Raises
    ------
    ValueError
        If an input is not a numeric 1-D/2-D array, the shapes differ, or
        ``window`` is not an int >= 1.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Equals ``talib.STOCHF(high, low, close, fastk_period=window)`` fast %K / 100
    (TA-Lib writes 0 where the range is 0). Rolling max/min by monotonic deques
    (O(1) amortised per bar). Source: Lane's stochastic oscillator %K.
    """
    mod = _kernels(backend, _CPU)
    (h, lo, c), one_d = _panels(high=high, low=low, close=close)
    window = _int(window, "window", 1)
    dt = _out_dtype(dtype)
    return _finish(mod.price_position(h, lo, c, window), one_d, dt)


# --------------------------------------------------------------------------- #
# bands
# --------------------------------------------------------------------------- #



def bollinger_percent_b(close: Any, window: int = 20, k: float = 2.0, *,
                        dtype: Any = np.float64, backend: str = "auto") -> np.ndarray:
    """Bollinger %b: position of the close within the bands, ``(c - lower) / (upper - lower)``.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Prices; NaN marks a missing bar.
    window : int, optional
        Number of valid bars, >= 2 (default 20).
    k : float, optional
        Band width in standard deviations, > 0 (default 2).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Dimensionless (0 at the lower band, 1 at the upper band); the first
        ``window - 1`` valid bars are NaN, and windows of identical closes.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array, ``window`` is not an int >= 2
        or ``k`` is not a finite number > 0.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Bands as in :func:`workbench.features.bollinger` (``talib.BBANDS`` with
    ``matype=0``: middle = SMA, half-width = ``k`` population std). A window of
    identical closes gives zero-width bands: %b is NaN there, bandwidth 0.
    Source: Bollinger (2001), "Bollinger on Bollinger Bands".
    """
    mod = _kernels(backend, _CPU)
    (c,), one_d = _panels(close=close)
    window = _int(window, "window", 2)
    k = _positive(k, "k")
    dt = _out_dtype(dtype)
    return _finish(mod.bollinger_pct_b_bandwidth(c, window, k)[0], one_d, dt)



def bollinger_bandwidth(close: Any, window: int = 20, k: float = 2.0, *,
                        dtype: Any = np.float64, backend: str = "auto") -> np.ndarray:
    """Bollinger bandwidth ``(upper - lower) / middle``.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Prices; NaN marks a missing bar.
    window : int, optional
        Number of valid bars, >= 2 (default 20).
    k : float, optional
        Band width in standard deviations, > 0 (default 2).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Dimensionless fraction of the middle band (``2 k sigma / SMA``); the
        first ``window - 1`` valid bars are NaN.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array, ``window`` is not an int >= 2
        or ``k`` is not a finite number > 0.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Bands as in :func:`workbench.features.bollinger` (``talib.BBANDS`` with
    ``matype=0``: middle = SMA, half-width = ``k`` population std). A window of
    identical closes gives zero-width bands: %b is NaN there, bandwidth 0.
    Source: Bollinger (2001), "Bollinger on Bollinger Bands".
    """
    mod = _kernels(backend, _CPU)
    (c,), one_d = _panels(close=close)
    window = _int(window, "window", 2)
    k = _positive(k, "k")
    dt = _out_dtype(dtype)
    return _finish(mod.bollinger_pct_b_bandwidth(c, window, k)[1], one_d, dt)



def rolling_vwap(high: Any, low: Any, close: Any, volume: Any, window: int = 20, *,
                 dtype: Any = np.float64, backend: str = "auto") -> np.ndarray:
    """Rolling volume-weighted average price of the typical price.

    ``sum(tp * v) / sum(v)`` over the last ``window`` valid bars, with the typical
    price ``tp = (high + low + close) / 3``.

    Parameters
    ----------
    high, low, close : array_like, shape (T, N) or (T,)
        Bar prices; NaN marks a missing bar.
    volume : array_like, shape (T, N) or (T,)
        Bar volume, >= 0 (the weights); a bar is present where all four inputs are
        finite.
    window : int, optional
        Number of valid bars, >= 1 (default 20).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        In price units; NaN where every volume in the window is 0 and for the
        first ``window - 1`` valid bars.

    Raises
    ------
    ValueError
        If an input is not a numeric 1-D/2-D array, the shapes differ, ``window``
        is not an int >= 1, or ``volume`` holds a negative value (the message names
        the first offending row and column).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Equals ``(tp * v).rolling(window).sum() / v.rolling(window).sum()`` in pandas.
    Sliding sums, recomputed exactly from the window every ``window`` bars (the
    rounding drift never spans more than one window). Source: Berkowitz, Logue &
    Noser (1988), "The total cost of transactions on the NYSE" (VWAP benchmark).
    """
    mod = _kernels(backend, _CPU)
    (h, lo, c, v), one_d = _panels(high=high, low=low, close=close, volume=volume)
    _check_nonnegative(v, "volume", one_d=one_d)
    window = _int(window, "window", 1)
    dt = _out_dtype(dtype)
    return _finish(mod.rolling_vwap(h, lo, c, v, window), one_d, dt)


# --------------------------------------------------------------------------- #
# volume
# --------------------------------------------------------------------------- #


def obv(close: Any, volume: Any, *, dtype: Any = np.float64,
        backend: str = "auto") -> np.ndarray:
    """On-balance volume.

    ``OBV_0 = v_0``; then ``OBV_t = OBV_{t'} + v_t`` if the close rose since the
    asset's previous valid bar ``t'``, ``- v_t`` if it fell, unchanged if equal.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Prices; NaN marks a missing bar.
    volume : array_like, shape (T, N) or (T,)
        Bar volume; a bar is present where close and volume are finite.
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        In volume units (shares, contracts); no warm-up (defined from the first
        valid bar).

    Raises
    ------
    ValueError
        If an input is not a numeric 1-D/2-D array or the shapes differ.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Matches ``talib.OBV(close, volume)`` on each asset's valid bars. Source:
    Granville (1963), "Granville's New Key to Stock Market Profits".
    """
    mod = _kernels(backend, _CPU)
    (c, v), one_d = _panels(close=close, volume=volume)
    dt = _out_dtype(dtype)
    return _finish(mod.obv(c, v), one_d, dt)


def volume_zscore(volume: Any, window: int = 20, *, dtype: Any = np.float64,
                  backend: str = "auto") -> np.ndarray:
    """Z-score of volume against its rolling mean and sample std.

    ``(v_t - mean_w) / std_w`` with the mean and std (ddof=1) of the last
    ``window`` valid volumes, ``v_t`` included.

    Parameters
    ----------
    volume : array_like, shape (T, N) or (T,)
        Bar volume; NaN marks a missing bar.
    window : int, optional
        Number of valid bars, >= 2 (default 20).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Dimensionless (standard deviations); NaN where the window's std is 0 (all
        volumes equal) and for the first ``window - 1`` valid bars.

    Raises
    ------
    ValueError
        If ``volume`` is not a numeric 1-D/2-D array or ``window`` is not an
        int >= 2.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Equals ``(v - v.rolling(w).mean()) / v.rolling(w).std()`` in pandas. Sliding
    Welford update re-synced exactly every ``window`` bars; a constant window is
    detected exactly (run of equal values), as pandas does.
    """
    mod = _kernels(backend, _CPU)
    (v,), one_d = _panels(volume=volume)
    window = _int(window, "window", 2)
    dt = _out_dtype(dtype)
    return _finish(mod.volume_zscore(v, window), one_d, dt)


# --------------------------------------------------------------------------- #
# volatility
# --------------------------------------------------------------------------- #


def atr(high: Any, low: Any, close: Any, period: int = 14, *, dtype: Any = np.float64,
        backend: str = "auto") -> np.ndarray:
    """Average true range (Wilder).

    ``TR_t = max(h_t - l_t, |h_t - c_{t'}|, |l_t - c_{t'}|)`` from the asset's second
    valid bar (``t'`` its previous valid bar); ``ATR`` is seeded with the mean of
    the first ``period`` TRs, then ``ATR_t = (ATR_{t'} (period - 1) + TR_t) / period``.

    Parameters
    ----------
    high, low, close : array_like, shape (T, N) or (T,)
        Bar prices; a bar is present where all three are finite.
    period : int, optional
        Wilder period, >= 1 (default 14).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        In price units; the first ``period`` valid bars are NaN.

    Raises
    ------
    ValueError
        If an input is not a numeric 1-D/2-D array, the shapes differ, or
        ``period`` is not an int >= 1.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Matches ``talib.ATR(high, low, close, timeperiod=period)``. Source: Wilder
    (1978), "New Concepts in Technical Trading Systems".
    """
    mod = _kernels(backend, _CPU)
    (h, lo, c), one_d = _panels(high=high, low=low, close=close)
    period = _int(period, "period", 1)
    dt = _out_dtype(dtype)
    return _finish(mod.atr(h, lo, c, period), one_d, dt)


def vol_of_vol(close: Any, vol_window: int = 20, window: int = 60,
               periods_per_year: float = 252, *, dtype: Any = np.float64,
               backend: str = "auto") -> np.ndarray:
    """Volatility of volatility: rolling sample std of the rolling volatility.

    ``std_{ddof=1}`` over the last ``window`` bars of
    ``rolling_volatility(close, vol_window, periods_per_year)`` (annualised
    sample std of log returns).

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices; NaN marks a missing bar.
    vol_window : int, optional
        Returns per volatility estimate, >= 2 (default 20).
    window : int, optional
        Volatility values per std, >= 2 (default 60).
    periods_per_year : float, optional
        Annualisation of the inner volatility, > 0 (252 for daily bars).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        In annualised-volatility units (a fraction); the first
        ``vol_window + window - 1`` valid bars are NaN.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array, a window is not an int >= 2
        or ``periods_per_year`` is not a finite number > 0.
        Also if ``close`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Equals ``vol.rolling(window).std()`` in pandas with
    ``vol = np.log(s).diff().rolling(vol_window).std() * sqrt(periods_per_year)``;
    both stages use the sliding Welford update of ``rolling_volatility``.
    """
    mod = _kernels(backend, _CPU)
    (c,), one_d = _panels(close=close, positive=True)
    vol_window = _int(vol_window, "vol_window", 2)
    window = _int(window, "window", 2)
    ppy = _positive(periods_per_year, "periods_per_year")
    dt = _out_dtype(dtype)
    return _finish(mod.vol_of_vol(c, vol_window, window, ppy), one_d, dt)




def rolling_skewness(close: Any, window: int = 60, *, dtype: Any = np.float64,
                     backend: str = "auto") -> np.ndarray:
    """Rolling skewness of log returns (bias-corrected sample skewness G1).

    ``G1 = sqrt(n (n - 1)) / (n - 2) * m3 / m2^{3/2}`` with ``m_k`` the central
    moments of the last ``n = window`` log returns (over valid bars).

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices; NaN marks a missing bar.
    window : int, optional
        Number of log returns, >= 3 (default 60).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Dimensionless; the first ``window`` valid bars are NaN.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array or ``window`` is not an int >= 3.
        Also if ``close`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Equals ``np.log(s).diff().rolling(window).skew()`` in pandas. Source: Joanes &
    Gill (1998), "Comparing measures of sample skewness and kurtosis".

    Numerics: sums of powers of deviations from a shift ``K`` (reset to the window
    mean) slide over the window and are recomputed exactly every ``window``
    returns (every return for windows of at most 16), so no raw power sum ever
    spans the series. A window whose population variance of log returns is
    <= 1e-14 gives NaN (pandas < 3 used the same floor; pandas 3.1 returns the
    moment of the rounding noise there). Log returns are dimensionless, so the
    floor does not depend on the price scale.
    """
    mod = _kernels(backend, _CPU)
    (c,), one_d = _panels(close=close, positive=True)
    window = _int(window, "window", 3)
    dt = _out_dtype(dtype)
    return _finish(mod.rolling_skewness(c, window), one_d, dt)



def rolling_kurtosis(close: Any, window: int = 60, *, dtype: Any = np.float64,
                     backend: str = "auto") -> np.ndarray:
    """Rolling excess kurtosis of log returns (bias-corrected G2).

    ``G2 = ((n^2 - 1) m4 / m2^2 - 3 (n - 1)^2) / ((n - 2)(n - 3))`` with ``m_k``
    the central moments of the last ``n = window`` log returns.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices; NaN marks a missing bar.
    window : int, optional
        Number of log returns, >= 4 (default 60).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Dimensionless excess kurtosis (0 for a normal sample); the first
        ``window`` valid bars are NaN.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array or ``window`` is not an int >= 4.
        Also if ``close`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Equals ``np.log(s).diff().rolling(window).kurt()`` in pandas. Source: Joanes &
    Gill (1998).

    Numerics: sums of powers of deviations from a shift ``K`` (reset to the window
    mean) slide over the window and are recomputed exactly every ``window``
    returns (every return for windows of at most 16), so no raw power sum ever
    spans the series. A window whose population variance of log returns is
    <= 1e-14 gives NaN (pandas < 3 used the same floor; pandas 3.1 returns the
    moment of the rounding noise there). Log returns are dimensionless, so the
    floor does not depend on the price scale.
    """
    mod = _kernels(backend, _CPU)
    (c,), one_d = _panels(close=close, positive=True)
    window = _int(window, "window", 4)
    dt = _out_dtype(dtype)
    return _finish(mod.rolling_kurtosis(c, window), one_d, dt)



def parkinson_volatility(high: Any, low: Any, window: int = 20,
                         periods_per_year: float = 252, *, dtype: Any = np.float64,
                         backend: str = "auto") -> np.ndarray:
    """Parkinson high-low range volatility estimator, annualised.

    ``sqrt(mean_w[ln(h / l)^2] / (4 ln 2) * periods_per_year)`` over the last
    ``window`` valid bars.

    Parameters
    ----------
    high, low : array_like, shape (T, N) or (T,)
        Positive bar high and low; a bar is present where both are finite.
    window : int, optional
        Number of valid bars, >= 1 (default 20).
    periods_per_year : float, optional
        Annualisation factor, > 0 (252 for daily bars).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Annualised volatility of log prices (a fraction, 0.2 = 20 %); the first
        ``window - 1`` valid bars are NaN.

    Raises
    ------
    ValueError
        If an input is not a numeric 1-D/2-D array, the shapes differ, ``window``
        is not an int >= 1 or ``periods_per_year`` is not a finite number > 0.
        Also if ``high`` or ``low`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Source: Parkinson (1980), "The extreme value method for estimating the
    variance of the rate of return", J. Business 53(1). Sliding sum re-synced
    exactly every ``window`` bars.
    """
    mod = _kernels(backend, _CPU)
    (h, lo), one_d = _panels(high=high, low=low, positive=True)
    window = _int(window, "window", 1)
    ppy = _positive(periods_per_year, "periods_per_year")
    dt = _out_dtype(dtype)
    return _finish(mod.parkinson_volatility(h, lo, window, ppy), one_d, dt)


def garman_klass_volatility(open: Any, high: Any, low: Any, close: Any, window: int = 20,
                            periods_per_year: float = 252, *, dtype: Any = np.float64,
                            backend: str = "auto") -> np.ndarray:
    """Garman-Klass OHLC volatility estimator, annualised.

    ``sqrt(mean_w[0.5 ln(h / l)^2 - (2 ln 2 - 1) ln(c / o)^2] * periods_per_year)``
    over the last ``window`` valid bars.

    Parameters
    ----------
    open, high, low, close : array_like, shape (T, N) or (T,)
        Positive bar prices; a bar is present where all four are finite.
    window : int, optional
        Number of valid bars, >= 1 (default 20).
    periods_per_year : float, optional
        Annualisation factor, > 0 (252 for daily bars).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Annualised volatility (a fraction); NaN where the window mean is negative
        and for the first ``window - 1`` valid bars.

    Raises
    ------
    ValueError
        If an input is not a numeric 1-D/2-D array, the shapes differ, ``window``
        is not an int >= 1 or ``periods_per_year`` is not a finite number > 0.
        Also if an input holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Source: Garman & Klass (1980), "On the estimation of security price
    volatilities from historical data", J. Business 53(1). Sliding sum re-synced
    exactly every ``window`` bars.
    """
    mod = _kernels(backend, _CPU)
    (o, h, lo, c), one_d = _panels(open=open, high=high, low=low, close=close, positive=True)
    window = _int(window, "window", 1)
    ppy = _positive(periods_per_year, "periods_per_year")
    dt = _out_dtype(dtype)
    return _finish(mod.garman_klass_volatility(o, h, lo, c, window, ppy), one_d, dt)


# --------------------------------------------------------------------------- #
# registry
# --------------------------------------------------------------------------- #

for _d in (
    FeatureDef("roc", "trend", ("close",), {"period": 10}, ("",), roc, ROCStream,
               "100 (p_t / p_{t-k} - 1) over valid bars; talib.ROC",
               positive=("close",)),
    FeatureDef("momentum", "trend", ("close",), {"period": 10}, ("",), momentum,
               MomentumStream, "p_t - p_{t-k} over valid bars; talib.MOM"),
    FeatureDef("price_position", "trend", ("high", "low", "close"), {"window": 14}, ("",),
               price_position, PricePositionStream,
               "(c - min low_w) / (max high_w - min low_w); talib.STOCHF fast %K / 100"),
    FeatureDef("bollinger_pct_b", "bands", ("close",), {"window": 20, "k": 2.0}, ("",),
               bollinger_percent_b, BollingerPctBStream,
               "(c - lower) / (upper - lower), bands SMA +/- k pop. std; Bollinger (2001)"),
    FeatureDef("bollinger_bandwidth", "bands", ("close",), {"window": 20, "k": 2.0}, ("",),
               bollinger_bandwidth, BollingerBandwidthStream,
               "(upper - lower) / middle, bands SMA +/- k pop. std; Bollinger (2001)"),
    FeatureDef("vwap", "bands", ("high", "low", "close", "volume"), {"window": 20}, ("",),
               rolling_vwap, VWAPStream,
               "sum_w(tp v) / sum_w(v), tp = (h + l + c) / 3; rolling VWAP",
               nonnegative=("volume",)),
    FeatureDef("obv", "volume", ("close", "volume"), {}, ("",), obv, OBVStream,
               "OBV_t = OBV_{t-1} +/- v_t by sign of the close change; talib.OBV, Granville"),
    FeatureDef("volume_zscore", "volume", ("volume",), {"window": 20}, ("",), volume_zscore,
               VolumeZScoreStream, "(v - mean_w(v)) / std_w(v, ddof=1), v_t in the window"),
    FeatureDef("atr", "volatility", ("high", "low", "close"), {"period": 14}, ("",), atr,
               ATRStream, "Wilder average of the true range; talib.ATR, Wilder (1978)"),
    FeatureDef("vol_of_vol", "volatility", ("close",),
               {"vol_window": 20, "window": 60, "periods_per_year": 252}, ("",), vol_of_vol,
               VolOfVolStream, "std_w(ddof=1) of rolling_volatility(close, vol_window, ppy)",
               positive=("close",)),
    FeatureDef("skewness", "volatility", ("close",), {"window": 60}, ("",), rolling_skewness,
               SkewnessStream, "rolling G1 skewness of log returns; pandas rolling().skew()",
               positive=("close",)),
    FeatureDef("kurtosis", "volatility", ("close",), {"window": 60}, ("",), rolling_kurtosis,
               KurtosisStream,
               "rolling G2 excess kurtosis of log returns; pandas rolling().kurt()",
               positive=("close",)),
    FeatureDef("parkinson", "volatility", ("high", "low"),
               {"window": 20, "periods_per_year": 252}, ("",), parkinson_volatility,
               ParkinsonStream, "sqrt(mean_w ln(h/l)^2 / (4 ln 2) * ppy); Parkinson (1980)",
               positive=("high", "low")),
    FeatureDef("garman_klass", "volatility", ("open", "high", "low", "close"),
               {"window": 20, "periods_per_year": 252}, ("",), garman_klass_volatility,
               GarmanKlassStream,
               "sqrt(mean_w[0.5 ln(h/l)^2 - (2 ln 2 - 1) ln(c/o)^2] * ppy); Garman-Klass (1980)",
               positive=("open", "high", "low", "close")),
):
    register(_d)
del _d
