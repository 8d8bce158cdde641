"""Volatility-targeted position sizing (DESIGN section 5).

``w = X * sigma_tgt / sigma``: a position ``X`` in ``[-1, 1]`` becomes a fraction of equity such
that the asset's ex-ante annualised volatility contribution is ``|X| * sigma_tgt``.

Source: Moskowitz, Ooi and Pedersen (2012); Lim, Zohren and Roberts (2019), equation (1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._validation import (
    as_2d,
    check_positive,
    check_same_labels,
    check_same_shape,
    valid_sigma,
    wrap,
)

__all__ = ["portfolio_weights", "vol_target_weights"]


def vol_target_weights(
    positions: np.ndarray | pd.DataFrame,
    sigma: np.ndarray | pd.DataFrame,
    target_vol: float = 0.15,
    max_weight: float | None = None,
) -> np.ndarray | pd.DataFrame:
    """Per-asset volatility-targeted weights ``w = X * target_vol / sigma``.

    Parameters
    ----------
    positions : array_like or pandas.DataFrame, shape (T, N)
        Positions ``X`` in ``[-1, 1]``; NaN is treated as flat (0).
    sigma : array_like or pandas.DataFrame, shape (T, N)
        Ex-ante annualised volatility (e.g. EWM std of daily simple returns, span 60, x sqrt(252)),
        as a fraction (0.2 = 20 %/year).
    target_vol : float, default 0.15
        Annualised target volatility per asset (fraction), > 0.
    max_weight : float, optional
        If given, each ``|w|`` is clipped to ``max_weight`` (> 0).

    Returns
    -------
    numpy.ndarray or pandas.DataFrame, shape (T, N)
        Weights as fractions of equity (1.0 = 100 % notional). ``0`` where ``sigma`` is NaN, <= 0 or
        infinite, or where ``positions`` is NaN. A DataFrame when ``positions`` is a DataFrame.

    Raises
    ------
    ValueError
        If shapes differ (or two DataFrames have different labels), ``target_vol`` or
        ``max_weight`` is not a positive finite number, or ``positions`` has an infinite value.
    """
    check_positive(target_vol, "target_vol")
    check_positive(max_weight, "max_weight", allow_none=True)
    x, frame = as_2d(positions, "positions")
    s, fs = as_2d(sigma, "sigma")
    check_same_shape(positions=x, sigma=s)
    check_same_labels(positions=frame, sigma=fs)
    if np.isinf(x).any():
        raise ValueError("positions must not contain infinite values")
    ok = valid_sigma(s) & np.isfinite(x)
    w = np.zeros_like(x)
    w[ok] = x[ok] * target_vol / s[ok]
    if max_weight is not None:
        np.clip(w, -max_weight, max_weight, out=w)
    return wrap(w, frame)


def portfolio_weights(
    positions: np.ndarray | pd.DataFrame,
    sigma: np.ndarray | pd.DataFrame,
    target_vol: float = 0.15,
    max_gross: float | None = None,
) -> np.ndarray | pd.DataFrame:
    """Portfolio weights: vol-targeted weights with an equal risk budget over the assets present.

    ``w_{t,j} = X_{t,j} * target_vol / sigma_{t,j} / n_t`` where ``n_t`` is the number of assets
    with a bar at ``t`` (a finite, positive ``sigma_{t,j}``; sigma only exists where there is a
    bar). This is the portfolio of Lim et al. (2019), whose return is the average of the per-asset
    vol-targeted returns, so ``sum_j w_{t,j} r_{t+1,j}`` equals the portfolio return of
    :func:`workbench.backtest.strategy_returns` with ``cost_bps=0``.

    Parameters
    ----------
    positions : array_like or pandas.DataFrame, shape (T, N)
        Positions ``X`` in ``[-1, 1]``; NaN is treated as flat.
    sigma : array_like or pandas.DataFrame, shape (T, N)
        Ex-ante annualised volatility (fraction).
    target_vol : float, default 0.15
        Annualised target volatility per asset (fraction), > 0.
    max_gross : float, optional
        Gross leverage cap (> 0): a row whose ``sum_j |w_{t,j}|`` exceeds it is scaled down
        proportionally so its gross equals ``max_gross``. Use ``max_gross=1.0`` for
        :func:`workbench.backtest.run_backtest`, whose vectorbt engine cannot borrow cash for longs.

    Returns
    -------
    numpy.ndarray or pandas.DataFrame, shape (T, N)
        Fractions of equity; rows with no asset present are all zero.

    Raises
    ------
    ValueError
        If shapes differ (or two DataFrames have different labels), or ``target_vol`` /
        ``max_gross`` is not a positive finite number.
    """
    check_positive(max_gross, "max_gross", allow_none=True)
    w_df = vol_target_weights(positions, sigma, target_vol=target_vol)
    w, frame = as_2d(w_df, "positions")
    s, _ = as_2d(sigma, "sigma")
    n = valid_sigma(s).sum(axis=1, keepdims=True)
    w = np.where(n > 0, w / np.maximum(n, 1), 0.0)
    if max_gross is not None:
        gross = np.abs(w).sum(axis=1, keepdims=True)
        over = gross > max_gross
        scale = np.ones_like(gross)  # (dividing only the rows over the cap: a subnormal gross
        scale[over] = max_gross / gross[over]  # elsewhere would overflow to a warning)
        w = w * scale
    return wrap(w, frame)
