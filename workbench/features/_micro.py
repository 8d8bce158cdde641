"""Microstructure, cross-asset and order-book features: public functions and registry entries.

- OHLCV microstructure (group ``"microstructure"``): Corwin-Schultz high-low spread,
  Roll spread, Amihud illiquidity; per asset on its own valid bars.
- Cross-asset (group ``"cross-asset"``): rolling correlation and beta of each asset to
  a market asset, rolling mean pairwise correlation; windows of panel rows (the union
  calendar), pairwise-complete.
- Order book (group ``"order-book"``): spread, relative spread, depth imbalance,
  size-weighted mid (microprice), depth, price impact; stateless per L2 snapshot,
  inputs (T, N, k) with level 0 the best, NaN = level absent.

Kernels: :mod:`workbench.features._cpu_micro` (numba; element-wise ``xp`` functions
for the order book); streaming classes: :mod:`workbench.features._stream_micro`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.features import _cpu_micro as _K
from workbench.features import _stream_micro as _S
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

__all__ = [
    "amihud_illiquidity",
    "corwin_schultz_spread",
    "depth",
    "depth_imbalance",
    "mean_pairwise_correlation",
    "price_impact",
    "relative_spread",
    "roll_spread",
    "rolling_beta",
    "rolling_correlation",
    "spread",
    "weighted_mid",
]

_BACKENDS = ("auto", "cpu", "cupy")

# --------------------------------------------------------------------------- #
# OHLCV microstructure
# --------------------------------------------------------------------------- #


def _same_shape(a: np.ndarray, b: np.ndarray, na: str, nb: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{na} and {nb} must have the same shape, got {a.shape} and {b.shape}")


def corwin_schultz_spread(
    high: Any, low: Any, window: int = 20, *, dtype: Any = np.float64, backend: str = "auto"
) -> np.ndarray:
    """Corwin & Schultz (2012) high-low bid-ask spread estimator, rolling mean.

    For each pair of consecutive valid bars (t-1, t) of an asset::

        beta  = ln(H_t/L_t)^2 + ln(H_{t-1}/L_{t-1})^2
        gamma = ln(max(H_t, H_{t-1}) / min(L_t, L_{t-1}))^2
        alpha = (sqrt(2 beta) - sqrt(beta)) / (3 - 2 sqrt 2) - sqrt(gamma / (3 - 2 sqrt 2))
        S_t   = 2 (e^alpha - 1) / (1 + e^alpha),  negative S_t set to 0

    and the output is the mean of the last ``window`` two-bar estimates S.

    Parameters
    ----------
    high, low : array_like, shape (T, N) or (T,)
        Bar highs and lows (positive prices); NaN in either marks a missing bar.
    window : int, optional
        Number of two-bar estimates averaged, >= 1 (default 20).
    dtype : {float64, float32}, optional
        Output dtype (computation is float64).
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Relative spread, a fraction of price (0.001 = 10 bps), not annualised. NaN for
        each asset's first ``window`` valid bars and where the bar is missing.

    Raises
    ------
    ValueError
        If ``high``/``low`` are not numeric 1-D/2-D arrays of one shape, contain inf, or
        ``window`` is not an int >= 1.
        Also if ``high`` or ``low`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy or the GPU kernels are not available.

    Notes
    -----
    Source: Corwin, S. A. & Schultz, P. (2012), "A Simple Way to Estimate Bid-Ask
    Spreads from Daily High and Low Prices", Journal of Finance 67(2), eq. (14), (18),
    with negative two-day estimates set to zero. The overnight-return adjustment of the
    paper is not applied. Scale invariant (ratios of prices only).
    """
    mod = _kernels(backend, "_cpu_micro")
    h, one_d = _as_panel(high, "high", positive=True)
    lo, _ = _as_panel(low, "low", positive=True)
    _same_shape(h, lo, "high", "low")
    window = _int(window, "window", 1)
    dt = _out_dtype(dtype)
    return _finish(mod.corwin_schultz_spread(h, lo, window), one_d, dt)


def roll_spread(
    close: Any, window: int = 20, *, dtype: Any = np.float64, backend: str = "auto"
) -> np.ndarray:
    """Roll (1984) effective spread from the serial covariance of log returns.

    ``2 * sqrt(max(-cov(r_t, r_{t-1}), 0))`` with ``r`` the log returns over each asset's
    previous valid bar and ``cov`` the sample covariance (ddof=1) over the last
    ``window`` pairs ``(r_t, r_{t-1})``.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices; NaN marks a missing bar.
    window : int, optional
        Number of return pairs, >= 2 (default 20).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Relative spread (fraction of price, from log returns), not annualised; 0 where
        the serial covariance is >= 0. NaN for each asset's first ``window + 1`` valid
        bars and at missing bars.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array, contains inf, or ``window`` is not
        an int >= 2.
        Also if ``close`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy or the GPU kernels are not available.

    Notes
    -----
    Equals ``2 * sqrt(max(-r.rolling(window).cov(r.shift(1)), 0))`` in pandas on each
    asset's valid bars, ``r = np.log(close).diff()``. Rolling co-moments by Welford
    add/remove updates, recomputed exactly every ``window`` pairs. Source: Roll, R.
    (1984), "A Simple Implicit Measure of the Effective Bid-Ask Spread in an Efficient
    Market", Journal of Finance 39(4).
    """
    mod = _kernels(backend, "_cpu_micro")
    c, one_d = _as_panel(close, "close", positive=True)
    window = _int(window, "window", 2)
    dt = _out_dtype(dtype)
    return _finish(mod.roll_spread(c, window), one_d, dt)


def amihud_illiquidity(
    close: Any,
    volume: Any,
    window: int = 20,
    scale: float = 1e6,
    *,
    dtype: Any = np.float64,
    backend: str = "auto",
) -> np.ndarray:
    """Amihud (2002) illiquidity: mean absolute return per unit of traded value.

    ``scale * mean(|r_t| / (p_t * v_t))`` over the last ``window`` returns of the asset,
    with ``r_t = p_t / p_{t'} - 1`` the simple return over its previous valid bar and
    ``p_t * v_t`` the traded value (close times volume). Terms where ``p_t * v_t`` is 0
    or the volume is NaN are skipped (left out of both the sum and the count).

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices; NaN marks a missing bar.
    volume : array_like, shape (T, N) or (T,)
        Traded volume in units (shares, contracts), >= 0; NaN where unknown.
    window : int, optional
        Number of returns, >= 1 (default 20).
    scale : float, optional
        Multiplier, > 0 (default 1e6: absolute return per million currency units
        traded).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Simple absolute return per ``scale`` currency units traded (per million by
        default). NaN for each asset's first ``window`` valid bars, at missing bars and
        where every term of the window is skipped.

    Raises
    ------
    ValueError
        If the inputs are not numeric 1-D/2-D arrays of one shape, contain inf,
        ``window`` is not an int >= 1 or ``scale`` is not a finite number > 0.
        Also if ``close`` holds a finite price <= 0 or ``volume`` a negative value
        (the message names the first offending row and column; NaN is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy or the GPU kernels are not available.

    Notes
    -----
    Source: Amihud, Y. (2002), "Illiquidity and stock returns: cross-section and
    time-series effects", Journal of Financial Markets 5(1), eq. (1) (daily ratio
    averaged over the window).
    """
    mod = _kernels(backend, "_cpu_micro")
    c, one_d = _as_panel(close, "close", positive=True)
    v, _ = _as_panel(volume, "volume")
    _same_shape(c, v, "close", "volume")
    _check_nonnegative(v, "volume", one_d=one_d)
    window = _int(window, "window", 1)
    scale = _positive(scale, "scale")
    dt = _out_dtype(dtype)
    return _finish(mod.amihud_illiquidity(c, v, window, scale), one_d, dt)


# --------------------------------------------------------------------------- #
# cross-asset
# --------------------------------------------------------------------------- #


def _cross_args(close, window, min_periods):
    c, one_d = _as_panel(close, "close", positive=True)
    window = _int(window, "window", 2)
    mp = _S._min_periods(min_periods, window)
    return c, one_d, window, mp


def rolling_correlation(
    close: Any,
    market: int | str,
    window: int = 60,
    min_periods: int | None = None,
    *,
    symbols: Sequence[str] | None = None,
    dtype: Any = np.float64,
    backend: str = "auto",
) -> np.ndarray:
    """Rolling Pearson correlation of each asset's log returns with a market asset's.

    At panel row t the window is the last ``window`` rows; a row counts when both the
    asset's and the market's log returns (each over its own previous valid bar) are
    finite there (pairwise-complete).

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices on a union calendar; NaN marks a missing bar.
    market : int or str
        Column index of the market asset, or its symbol (then pass ``symbols``).
    window : int, optional
        Window in panel rows, >= 2 (default 60).
    min_periods : int, optional
        Counted rows required, in [2, window] (default ``window``).
    symbols : sequence of str, optional
        (N,) column symbols, to resolve a symbol ``market``.
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Correlation in [-1, 1]; the market's own column is 1 where defined. NaN where
        the asset has no bar at t, fewer than ``min_periods`` rows count, or either
        return series is constant over the counted rows.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array or contains inf, ``market`` is not a
        column index or known symbol, ``window`` is not an int >= 2 or ``min_periods``
        is not an int in [2, window].
        Also if ``close`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy or the GPU kernels are not available.

    Notes
    -----
    Equals pandas ``r_j.rolling(window, min_periods).corr(r_m)`` on log returns, masked
    where the asset has no bar. Welford co-moment add/remove updates, recomputed
    exactly every ``window`` rows; constant windows are detected exactly.
    """
    mod = _kernels(backend, "_cpu_micro")
    c, one_d, window, mp = _cross_args(close, window, min_periods)
    m = _S._market(market, c.shape[1], symbols)
    dt = _out_dtype(dtype)
    return _finish(mod.rolling_correlation(c, m, window, mp), one_d, dt)


def rolling_beta(
    close: Any,
    market: int | str,
    window: int = 60,
    min_periods: int | None = None,
    *,
    symbols: Sequence[str] | None = None,
    dtype: Any = np.float64,
    backend: str = "auto",
) -> np.ndarray:
    """Rolling beta ``cov(r_j, r_m) / var(r_m)`` of each asset to a market asset.

    Same rows as :func:`rolling_correlation` (last ``window`` panel rows, pairwise
    complete log returns); covariance and variance over the same counted rows.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices on a union calendar; NaN marks a missing bar.
    market : int or str
        Column index of the market asset, or its symbol (then pass ``symbols``).
    window : int, optional
        Window in panel rows, >= 2 (default 60).
    min_periods : int, optional
        Counted rows required, in [2, window] (default ``window``).
    symbols : sequence of str, optional
        (N,) column symbols, to resolve a symbol ``market``.
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Beta of log returns (dimensionless); the market's own column is 1 where
        defined. NaN where the asset has no bar at t, fewer than ``min_periods`` rows
        count, or the market's return series is constant over the counted rows; exactly
        0 where only the asset's return series is constant (zero covariance, as pandas
        gives; its correlation is NaN there).

    Raises
    ------
    ValueError
        As :func:`rolling_correlation`.
    RuntimeError
        If ``backend="cupy"`` and cupy or the GPU kernels are not available.

    Notes
    -----
    Equals pandas ``r_j.rolling(window, min_periods).cov(r_m) / r_m.rolling(...).var()``
    over pairwise-complete rows. Source: CAPM beta (Sharpe 1964), rolling estimate.
    """
    mod = _kernels(backend, "_cpu_micro")
    c, one_d, window, mp = _cross_args(close, window, min_periods)
    m = _S._market(market, c.shape[1], symbols)
    dt = _out_dtype(dtype)
    return _finish(mod.rolling_beta(c, m, window, mp), one_d, dt)


def mean_pairwise_correlation(
    close: Any,
    window: int = 60,
    min_periods: int | None = None,
    *,
    dtype: Any = np.float64,
    backend: str = "auto",
) -> np.ndarray:
    """Rolling mean of the off-diagonal pairwise correlations of log returns.

    At panel row t, for every pair of assets (i < j) with a bar at t, the Pearson
    correlation of their log returns over the last ``window`` panel rows where both are
    finite (pairwise complete); the output is the mean over the pairs whose correlation
    is defined (at least ``min_periods`` counted rows, neither series constant).

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices on a union calendar; NaN marks a missing bar.
    window : int, optional
        Window in panel rows, >= 2 (default 60).
    min_periods : int, optional
        Counted rows required per pair, in [2, window] (default ``window``).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T,)
        Market-wide mean correlation in [-1, 1]; NaN where no pair is defined (always
        for N < 2).

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array or contains inf, ``window`` is not
        an int >= 2 or ``min_periods`` is not an int in [2, window].
        Also if ``close`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy or the GPU kernels are not available.

    Notes
    -----
    O(N^2) work per row (compiled, single-threaded per row). Pairs whose assets have bars
    on the same rows share the assets' own means and variances, so only their co-moment is
    kept per pair; pairs with holes keep full pairwise-complete state. Everything is
    recomputed exactly every ``window`` rows. A measure of market-wide
    co-movement (e.g. Pollet & Wilson 2010, "Average correlation and stock market
    returns").
    """
    mod = _kernels(backend, "_cpu_micro")
    c, _, window, mp = _cross_args(close, window, min_periods)
    dt = _out_dtype(dtype)
    out = mod.mean_pairwise_correlation(c, window, mp)
    return out if out.dtype == dt else out.astype(dt)


# --------------------------------------------------------------------------- #
# order book (element-wise, numpy or cupy)
# --------------------------------------------------------------------------- #


def _cupy():
    try:
        return importlib.import_module("cupy")
    except Exception:  # ImportError, or CUDA runtime errors on import
        return None


def _book(backend: str, names: Sequence[str], arrays: Sequence[Any]):
    """Validate (T, N, k) book arrays (k >= 1, no inf); return (xp, float64 arrays)."""
    if not isinstance(backend, str) or backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    cp = _cupy() if backend != "cpu" else None
    if backend == "cupy" and cp is None:
        raise RuntimeError("backend='cupy' requested but cupy is not importable; install the "
                           "'gpu' extra or use backend='cpu'")
    on_device = cp is not None and any(isinstance(a, cp.ndarray) for a in arrays)
    xp: Any = cp if (backend == "cupy" or on_device) else np
    out = []
    for name, a in zip(names, arrays):
        if xp is np and hasattr(a, "get") and not isinstance(a, np.ndarray):
            a = a.get()  # a device array with backend="cpu"
        try:
            arr = xp.asarray(a)
        except Exception as exc:
            raise ValueError(f"{name} must be a numeric (T, N, k) array, "
                             f"got {type(a).__name__}") from exc
        if arr.dtype == np.bool_ or arr.dtype.kind not in "fiu":
            raise ValueError(f"{name} must be a numeric (T, N, k) array, got dtype {arr.dtype}")
        if arr.ndim != 3 or arr.shape[2] < 1:
            raise ValueError(f"{name} must be a 3-D (T, N, k) array with k >= 1 levels, "
                             f"got shape {arr.shape}")
        arr = arr.astype(xp.float64, copy=False)
        if bool(xp.isinf(arr).any()):
            raise ValueError(f"{name} contains +/-inf; use NaN for an absent level")
        out.append(arr)
    for name, arr in zip(names[1:], out[1:]):
        if arr.shape != out[0].shape:
            raise ValueError(f"{name} must have the shape of {names[0]} {out[0].shape}, "
                             f"got {arr.shape}")
    return xp, out


def _book_call(fn, backend, dtype, names, arrays, *extra):
    dt = _out_dtype(dtype)
    xp, arrs = _book(backend, names, arrays)
    with np.errstate(invalid="ignore", divide="ignore"):
        res = fn(xp, *arrs, *extra)
    return res if res.dtype == dt else res.astype(dt)


_PX = ("bid_px", "ask_px")
_ALL = ("bid_px", "ask_px", "bid_sz", "ask_sz")


def spread(bid_px: Any, ask_px: Any, *, dtype: Any = np.float64, backend: str = "auto"):
    """Quoted spread ``ask_0 - bid_0`` of each L2 snapshot.

    Parameters
    ----------
    bid_px, ask_px : array_like, shape (T, N, k)
        L2 bid and ask prices, level 0 the best; NaN = level absent.
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        ``"auto"``: cupy when an input is a cupy array (and cupy is importable), else
        numpy; ``"cupy"`` moves numpy inputs to the device.

    Returns
    -------
    numpy.ndarray or cupy.ndarray, shape (T, N)
        Absolute spread in price units; NaN where the best bid or best ask is absent.

    Raises
    ------
    ValueError
        If an input is not a numeric 3-D (T, N, k) array with k >= 1, contains +/-inf,
        or the shapes differ.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Standard quoted spread (Harris 2003, "Trading and Exchanges", ch. 14). Element-wise,
    stateless per snapshot.
    """
    return _book_call(_K.l2_spread, backend, dtype, _PX, (bid_px, ask_px))


def relative_spread(bid_px: Any, ask_px: Any, *, dtype: Any = np.float64, backend: str = "auto"):
    """Relative quoted spread ``(ask_0 - bid_0) / mid`` with ``mid = (ask_0 + bid_0) / 2``.

    Parameters
    ----------
    bid_px, ask_px : array_like, shape (T, N, k)
        L2 bid and ask prices, level 0 the best; NaN = level absent.
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        ``"auto"``: cupy when an input is a cupy array (and cupy is importable), else
        numpy; ``"cupy"`` moves numpy inputs to the device.

    Returns
    -------
    numpy.ndarray or cupy.ndarray, shape (T, N)
        Fraction of the mid price (1e-4 = 1 bp); NaN where the best bid or best ask is
        absent.

    Raises
    ------
    ValueError
        If an input is not a numeric 3-D (T, N, k) array with k >= 1, contains +/-inf,
        or the shapes differ.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Scale invariant. Source: Harris (2003), "Trading and Exchanges", ch. 14.
    """
    return _book_call(_K.l2_relative_spread, backend, dtype, _PX, (bid_px, ask_px))


def depth_imbalance(bid_px: Any, ask_px: Any, bid_sz: Any, ask_sz: Any, levels: int = 5, *,
                    dtype: Any = np.float64, backend: str = "auto"):
    """Depth imbalance ``(B - A) / (B + A)`` over the top ``levels`` levels.

    Parameters
    ----------
    bid_px, ask_px : array_like, shape (T, N, k)
        L2 bid and ask prices, level 0 the best; NaN = level absent.
    bid_sz, ask_sz : array_like, shape (T, N, k)
        Sizes at each level (instrument units: shares, contracts); NaN = level absent.
    levels : int, optional
        Number of top levels summed per side, >= 1 (default 5; all k if k < levels).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        ``"auto"``: cupy when an input is a cupy array (and cupy is importable), else
        numpy; ``"cupy"`` moves numpy inputs to the device.

    Returns
    -------
    numpy.ndarray or cupy.ndarray, shape (T, N)
        Dimensionless, in [-1, 1]; ``B``/``A`` are the summed bid/ask sizes of the first
        ``levels`` levels (absent levels count 0). NaN where the best bid or best ask is
        absent or ``B + A = 0``.

    Raises
    ------
    ValueError
        If an input is not a numeric 3-D (T, N, k) array with k >= 1, contains
        +/-inf, the shapes differ or ``levels`` is not an int >= 1.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Source: Cao, Hansch & Wang (2009), "The information content of an open limit-order
    book", Journal of Futures Markets 29(1) (order imbalance of the top levels).
    """
    levels = _int(levels, "levels", 1)
    return _book_call(_K.l2_depth_imbalance, backend, dtype, _ALL,
                      (bid_px, ask_px, bid_sz, ask_sz), levels)


def weighted_mid(bid_px: Any, ask_px: Any, bid_sz: Any, ask_sz: Any, *,
                 dtype: Any = np.float64, backend: str = "auto"):
    """Size-weighted mid price (microprice) of the best level.

    Parameters
    ----------
    bid_px, ask_px : array_like, shape (T, N, k)
        L2 bid and ask prices, level 0 the best; NaN = level absent.
    bid_sz, ask_sz : array_like, shape (T, N, k)
        Sizes at each level (instrument units: shares, contracts); NaN = level absent.
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        ``"auto"``: cupy when an input is a cupy array (and cupy is importable), else
        numpy; ``"cupy"`` moves numpy inputs to the device.

    Returns
    -------
    numpy.ndarray or cupy.ndarray, shape (T, N)
        ``(bid_0 * ask_sz_0 + ask_0 * bid_sz_0) / (bid_sz_0 + ask_sz_0)`` in price units;
        NaN where the best bid or best ask is absent or the best sizes sum to 0.

    Raises
    ------
    ValueError
        If an input is not a numeric 3-D (T, N, k) array with k >= 1, contains +/-inf,
        or the shapes differ.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Source: Stoikov (2018), "The micro-price: a high-frequency estimator of future
    prices", Quantitative Finance 18(12) (the imbalance-weighted mid).
    """
    return _book_call(_K.l2_weighted_mid, backend, dtype, _ALL, (bid_px, ask_px, bid_sz, ask_sz))


def depth(bid_px: Any, ask_px: Any, bid_sz: Any, ask_sz: Any, levels: int = 5, *,
          dtype: Any = np.float64, backend: str = "auto"):
    """Total resting size over the top ``levels`` levels of both sides.

    Parameters
    ----------
    bid_px, ask_px : array_like, shape (T, N, k)
        L2 bid and ask prices, level 0 the best; NaN = level absent.
    bid_sz, ask_sz : array_like, shape (T, N, k)
        Sizes at each level (instrument units: shares, contracts); NaN = level absent.
    levels : int, optional
        Number of top levels summed per side, >= 1 (default 5; all k if k < levels).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        ``"auto"``: cupy when an input is a cupy array (and cupy is importable), else
        numpy; ``"cupy"`` moves numpy inputs to the device.

    Returns
    -------
    numpy.ndarray or cupy.ndarray, shape (T, N)
        Size units (shares, contracts), absent levels count 0; NaN where the best bid or
        best ask is absent.

    Raises
    ------
    ValueError
        If an input is not a numeric 3-D (T, N, k) array with k >= 1, contains
        +/-inf, the shapes differ or ``levels`` is not an int >= 1.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Standard depth measure (Harris 2003, ch. 14). Prices are used only to tell whether
    the book is two-sided.
    """
    levels = _int(levels, "levels", 1)
    return _book_call(_K.l2_depth, backend, dtype, _ALL, (bid_px, ask_px, bid_sz, ask_sz),
                      levels)


def price_impact(bid_px: Any, ask_px: Any, bid_sz: Any, ask_sz: Any, *,
                 dtype: Any = np.float64, backend: str = "auto"):
    """Price-impact proxy ``|weighted_mid - mid| / mid`` of the best level.

    Parameters
    ----------
    bid_px, ask_px : array_like, shape (T, N, k)
        L2 bid and ask prices, level 0 the best; NaN = level absent.
    bid_sz, ask_sz : array_like, shape (T, N, k)
        Sizes at each level (instrument units: shares, contracts); NaN = level absent.
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        ``"auto"``: cupy when an input is a cupy array (and cupy is importable), else
        numpy; ``"cupy"`` moves numpy inputs to the device.

    Returns
    -------
    numpy.ndarray or cupy.ndarray, shape (T, N)
        Fraction of the mid price; NaN where the best bid or best ask is absent or the best
        sizes sum to 0.

    Raises
    ------
    ValueError
        If an input is not a numeric 3-D (T, N, k) array with k >= 1, contains +/-inf,
        or the shapes differ.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Distance of the microprice (:func:`weighted_mid`) from the mid, DESIGN.md section 3;
    scale invariant.
    """
    return _book_call(_K.l2_price_impact, backend, dtype, _ALL, (bid_px, ask_px, bid_sz, ask_sz))


# --------------------------------------------------------------------------- #
# registry
# --------------------------------------------------------------------------- #


def _correlation_batch(close: Any, market: int | str = 0, window: int = 60,
                       min_periods: int | None = None, **kw: Any) -> np.ndarray:
    """:func:`rolling_correlation` with the catalogue default ``market=0``."""
    return rolling_correlation(close, market, window, min_periods, **kw)


def _beta_batch(close: Any, market: int | str = 0, window: int = 60,
                min_periods: int | None = None, **kw: Any) -> np.ndarray:
    """:func:`rolling_beta` with the catalogue default ``market=0``."""
    return rolling_beta(close, market, window, min_periods, **kw)


register(FeatureDef(
    name="corwin_schultz", group="microstructure", inputs=("high", "low"),
    params={"window": 20}, outputs=("",), batch=corwin_schultz_spread,
    stream=_S.CorwinSchultzStream,
    description="Corwin-Schultz (2012) high-low spread: mean over window of "
                "S = 2(e^a - 1)/(1 + e^a), a from two-bar ln(H/L)^2 sums; fraction of price",
    positive=("high", "low"),
))
register(FeatureDef(
    name="roll", group="microstructure", inputs=("close",),
    params={"window": 20}, outputs=("",), batch=roll_spread, stream=_S.RollStream,
    description="Roll (1984) spread 2 sqrt(max(-cov(r_t, r_t-1), 0)), log returns, ddof=1 "
                "over window pairs; fraction of price",
    positive=("close",),
))
register(FeatureDef(
    name="amihud", group="microstructure", inputs=("close", "volume"),
    params={"window": 20, "scale": 1e6}, outputs=("",), batch=amihud_illiquidity,
    stream=_S.AmihudStream,
    description="Amihud (2002) illiquidity: scale * mean |r| / (close * volume), simple "
                "returns, per million traded by default",
    positive=("close",), nonnegative=("volume",),
))
register(FeatureDef(
    name="correlation", group="cross-asset", inputs=("close",),
    params={"market": 0, "window": 60, "min_periods": None}, outputs=("",),
    batch=_correlation_batch, stream=_S.CorrelationStream,
    description="Rolling Pearson correlation of log returns with the market asset over the "
                "last window panel rows, pairwise complete",
    positive=("close",),
))
register(FeatureDef(
    name="beta", group="cross-asset", inputs=("close",),
    params={"market": 0, "window": 60, "min_periods": None}, outputs=("",),
    batch=_beta_batch, stream=_S.BetaStream,
    description="Rolling beta cov(r_j, r_m) / var(r_m) of log returns over the last window "
                "panel rows, pairwise complete",
    positive=("close",),
))
register(FeatureDef(
    name="mean_pairwise_correlation", group="cross-asset", inputs=("close",),
    params={"window": 60, "min_periods": None}, outputs=("",),
    batch=mean_pairwise_correlation, stream=_S.MeanPairwiseCorrelationStream,
    description="Mean of the defined pairwise log-return correlations over the last window "
                "panel rows; (T,) market-wide series",
    positive=("close",),
))
register(FeatureDef(
    name="spread", group="order-book", inputs=_PX, params={}, outputs=("",),
    batch=spread, stream=_S.SpreadStream, description="Quoted spread ask_0 - bid_0",
))
register(FeatureDef(
    name="relative_spread", group="order-book", inputs=_PX, params={}, outputs=("",),
    batch=relative_spread, stream=_S.RelativeSpreadStream,
    description="Relative spread (ask_0 - bid_0) / mid, mid = (ask_0 + bid_0) / 2",
))
register(FeatureDef(
    name="depth_imbalance", group="order-book", inputs=_ALL, params={"levels": 5},
    outputs=("",), batch=depth_imbalance, stream=_S.DepthImbalanceStream,
    description="(sum bid sizes - sum ask sizes) / (sum of both) over the top levels",
))
register(FeatureDef(
    name="weighted_mid", group="order-book", inputs=_ALL, params={}, outputs=("",),
    batch=weighted_mid, stream=_S.WeightedMidStream,
    description="Microprice (bid_0 ask_sz_0 + ask_0 bid_sz_0) / (bid_sz_0 + ask_sz_0)",
))
register(FeatureDef(
    name="depth", group="order-book", inputs=_ALL, params={"levels": 5}, outputs=("",),
    batch=depth, stream=_S.DepthStream,
    description="Total bid + ask size over the top levels",
))
register(FeatureDef(
    name="price_impact", group="order-book", inputs=_ALL, params={}, outputs=("",),
    batch=price_impact, stream=_S.PriceImpactStream,
    description="|weighted_mid - mid| / mid (Stoikov microprice distance from the mid)",
))
