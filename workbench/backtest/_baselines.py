"""Baseline trading rules of the deep-momentum family (DESIGN section 5).

Every baseline returns positions ``X`` of shape ``(T, N)`` that are *always finite*: a cell where
the rule has no opinion (no bar, warm-up, missing volatility) holds ``0`` (flat), never NaN.
Positions are unscaled; volatility targeting is applied afterwards by
:func:`workbench.backtest.vol_target_weights` / :func:`workbench.backtest.portfolio_weights`.

Sources
-------
Lim, B., Zohren, S. and Roberts, S. (2019), "Enhancing Time-Series Momentum Strategies Using Deep
Neural Networks", The Journal of Financial Data Science 1(4). Baselines of section 4.
Moskowitz, T., Ooi, Y. H. and Pedersen, L. H. (2012), "Time series momentum", JFE 104(2).
Baz, J., Granger, N., Harvey, C. R., Le Roux, N. and Rattray, S. (2015), "Dissecting Investment
Strategies in the Cross Section and Time Series", SSRN 2695101.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._validation import as_2d, check_same_labels, check_same_shape, valid_sigma, wrap

__all__ = ["long_only", "macd_baseline", "macd_response", "tsmom"]

_MACD_RESPONSE_SCALE = 0.89


def _check_prices(close: np.ndarray, frame: pd.DataFrame | None = None,
                  name: str = "close") -> None:
    """Raise ValueError at the first finite price <= 0 or infinite price, naming its cell."""
    for bad, rule in ((np.isfinite(close) & (close <= 0), "must be > 0 where present"),
                      (np.isinf(close), "must not be infinite")):
        if bad.any():
            t, j = np.argwhere(bad)[0]
            where = (f"{frame.index[t]}, symbol {frame.columns[j]!r}" if frame is not None
                     else f"row {t}, column {j}")
            raise ValueError(f"{name} {rule}; got {float(close[t, j])!r} at {where}")


def long_only(
    close: np.ndarray | pd.DataFrame, sigma: np.ndarray | pd.DataFrame | None = None
) -> np.ndarray | pd.DataFrame:
    """Long-only baseline: ``X = 1`` wherever the asset can be held.

    Parameters
    ----------
    close : array_like or pandas.DataFrame, shape (T, N)
        Close prices; NaN means the asset has no bar at ``t`` (e.g. before listing).
    sigma : array_like or pandas.DataFrame, shape (T, N), optional
        Ex-ante annualised volatility. When given, cells where ``sigma`` is NaN or <= 0 (vol
        warm-up) are also flat, because they cannot be vol-targeted.

    Returns
    -------
    numpy.ndarray or pandas.DataFrame, shape (T, N)
        ``1.0`` where ``close`` is finite (and ``sigma`` valid, when given), ``0.0`` elsewhere.
        A DataFrame when ``close`` is a DataFrame (same index and columns).

    Raises
    ------
    ValueError
        If ``close`` has a non-positive or infinite price, or ``sigma`` has a different shape
        (or, both DataFrames, different labels).

    Notes
    -----
    Source: Lim, Zohren and Roberts (2019), baseline "Long Only", ``X_t = 1``.
    """
    c, frame = as_2d(close, "close")
    _check_prices(c, frame)
    ok = np.isfinite(c)
    if sigma is not None:
        s, fs = as_2d(sigma, "sigma")
        check_same_shape(close=c, sigma=s)
        check_same_labels(close=frame, sigma=fs)
        ok &= valid_sigma(s)
    return wrap(ok.astype(np.float64), frame)


def tsmom(close: np.ndarray | pd.DataFrame, lookback: int = 252) -> np.ndarray | pd.DataFrame:
    """Time-series momentum baseline: ``X_t = sign(p_t / p_{t-lookback} - 1)``.

    The lookback is counted in the asset's own valid bars: for each column the NaN rows are removed,
    the ``lookback``-bar simple return is taken over the remaining prices, and the sign is written
    back at the rows where the asset has a bar. Rows without a bar and the first ``lookback`` valid
    bars (warm-up) are flat (``0``).

    Parameters
    ----------
    close : array_like or pandas.DataFrame, shape (T, N)
        Close prices (> 0); NaN means no bar at ``t``.
    lookback : int, default 252
        Lookback in bars (252 = one year of daily bars), >= 1.

    Returns
    -------
    numpy.ndarray or pandas.DataFrame, shape (T, N)
        Positions in ``{-1, 0, 1}`` (float64). A DataFrame when ``close`` is a DataFrame.

    Raises
    ------
    ValueError
        If ``lookback`` is not a positive integer, or ``close`` has non-positive or infinite prices.

    Notes
    -----
    Source: Moskowitz, Ooi and Pedersen (2012); Lim, Zohren and Roberts (2019),
    ``X_t = sgn(r_{t-252,t})``.
    """
    if isinstance(lookback, bool) or not isinstance(lookback, (int, np.integer)) or lookback < 1:
        raise ValueError(f"lookback must be an integer >= 1, got {lookback!r}")
    c, frame = as_2d(close, "close")
    _check_prices(c, frame)
    out = np.zeros_like(c)
    for j in range(c.shape[1]):
        rows = np.flatnonzero(np.isfinite(c[:, j]))
        if rows.size <= lookback:
            continue
        p = c[rows, j]
        out[rows[lookback:], j] = np.sign(p[lookback:] / p[:-lookback] - 1.0)
    return wrap(out, frame)


def macd_response(y: np.ndarray | float) -> np.ndarray | float:
    """Baz et al. response function ``phi(y) = y * exp(-y**2 / 4) / 0.89``.

    Maps an unbounded MACD signal ``Y`` to a position. ``phi`` is odd, peaks at ``y = sqrt(2)`` with
    ``phi = sqrt(2) * exp(-1/2) / 0.89 ~= 0.964`` and decays to 0 for large ``|y|`` (trend
    exhaustion), so its values lie within about ``[-0.964, 0.964]``.

    Parameters
    ----------
    y : float or array_like, any shape
        MACD signal(s) ``Y`` (dimensionless, in units of their own rolling standard deviation).

    Returns
    -------
    float or numpy.ndarray
        ``phi(y)``, same shape as ``y``; NaN propagates.

    Notes
    -----
    Source: Baz et al. (2015), section on trend signals; used by Lim, Zohren and Roberts (2019) for
    the MACD baseline.
    """
    y_arr = np.asarray(y, dtype=np.float64)
    out = y_arr * np.exp(-(y_arr**2) / 4.0) / _MACD_RESPONSE_SCALE
    return float(out) if out.ndim == 0 else out


def macd_baseline(signals: np.ndarray, response: bool = True) -> np.ndarray:
    """MACD baseline: average of the Baz MACD signals over the timescale pairs.

    Parameters
    ----------
    signals : array_like, shape (T, N, K)
        MACD signals ``Y`` for ``K`` (short, long) pairs; DESIGN uses ``K = 3`` pairs (8, 24), (16,
        48), (32, 96). Computed elsewhere (``workbench.features``).
    response : bool, default True
        If True, average ``macd_response(Y)`` (values within about ``[-0.964, 0.964]``, Baz et al.).
        If False, return the raw mean of ``Y`` as DESIGN section 5 states; note that ``Y`` is
        unbounded (it is a z-score), so the raw mean is *not* confined to ``[-1, 1]``.

    Returns
    -------
    numpy.ndarray, shape (T, N)
        Positions. A cell where any of the ``K`` signals is NaN (warm-up, no bar) is flat (``0``).

    Raises
    ------
    ValueError
        If ``signals`` is not 3-D with ``K >= 1``, or contains an infinite value.

    Notes
    -----
    Source: Baz et al. (2015); Lim, Zohren and Roberts (2019), baseline "MACD".
    """
    y = np.asarray(signals, dtype=np.float64)
    if y.ndim != 3 or y.shape[2] < 1:
        raise ValueError(f"signals must have shape (T, N, K) with K >= 1, got shape {y.shape}")
    if np.isinf(y).any():
        raise ValueError("signals must not contain infinite values")
    z = macd_response(y) if response else y
    complete = np.isfinite(z).all(axis=2)
    mean = np.where(complete, np.mean(np.where(np.isfinite(z), z, 0.0), axis=2), 0.0)
    return mean
