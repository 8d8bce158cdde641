"""Vol-targeted strategy returns with turnover costs, pure numpy (DESIGN section 5).

Source: Lim, Zohren and Roberts (2019), equations (1) and (23) (transaction-cost adjusted returns).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ._validation import (
    as_2d,
    check_nonnegative,
    check_positive,
    check_same_labels,
    check_same_shape,
    valid_sigma,
)

__all__ = ["StrategyReturns", "next_returns", "strategy_returns", "turnover"]


class StrategyReturns(NamedTuple):
    """Output of :func:`strategy_returns` (unpacks as ``portfolio, per_asset``).

    Attributes
    ----------
    portfolio : numpy.ndarray, shape (T,)
        Portfolio simple return earned over ``t -> t+1``, stored at row ``t``.
    per_asset : numpy.ndarray, shape (T, N)
        Per-asset vol-targeted simple returns net of costs, stored at row ``t``.
    """

    portfolio: np.ndarray
    per_asset: np.ndarray


def next_returns(close: np.ndarray | pd.DataFrame) -> np.ndarray:
    """Next-period simple returns ``r_{t+1} = p_{t+1} / p_t - 1`` stored at row ``t``.

    ``t+1`` is the asset's next bar: across a gap in its history (NaN rows between two bars) the
    return runs to the next bar it has, ``p_{t'} / p_t - 1`` with ``t'`` the first row after
    ``t`` with a price. A position decided at ``t`` is held through the gap (no bar, no trade),
    so that is the return it earns; :func:`workbench.backtest.run_backtest` realises the same
    return and ``workbench.models.MomentumDataset.next_returns`` holds the same value.

    Parameters
    ----------
    close : array_like or pandas.DataFrame, shape (T, N)
        Close prices; NaN means no bar.

    Returns
    -------
    numpy.ndarray, shape (T, N)
        Simple returns; NaN where ``p_t`` is missing and at each asset's last bar (no later
        price).

    Raises
    ------
    ValueError
        If ``close`` is not (T, N) numeric.
    """
    c, _ = as_2d(close, "close")
    out = np.full_like(c, np.nan)
    for j in range(c.shape[1]):  # N is small; the work per asset is vectorised
        rows = np.flatnonzero(np.isfinite(c[:, j]))
        if rows.size > 1:
            with np.errstate(divide="ignore", invalid="ignore"):
                out[rows[:-1], j] = c[rows[1:], j] / c[rows[:-1], j] - 1.0
    return out


def strategy_returns(
    positions: np.ndarray | pd.DataFrame,
    sigma: np.ndarray | pd.DataFrame,
    next_returns: np.ndarray | pd.DataFrame,
    target_vol: float = 0.15,
    cost_bps: float = 0.0,
) -> StrategyReturns:
    """Vol-targeted strategy returns net of turnover costs.

    Per asset ``j`` and time ``t`` (DESIGN section 5)::

        R_{t,j} = X_{t,j} * (target_vol / sigma_{t,j}) * r_{t+1,j}
                  - c * target_vol * |X_{t,j} / sigma_{t,j} - X_{t-1,j} / sigma_{t-1,j}|

    with ``c = cost_bps * 1e-4``. ``X / sigma`` is taken as 0 where ``X`` is NaN at a row where the
    asset is present (finite, positive sigma), and ``X_{-1} / sigma_{-1} = 0`` (the strategy starts
    flat, so the first row pays for building the book). Where the asset is not present (sigma NaN
    or <= 0: no bar) nothing can be traded: the position is held, so ``X_{t-1} / sigma_{t-1}`` in
    the cost is the value at the asset's previous row with a bar (0 before its first), and a gap
    in its history costs only the change from before the gap to after it, as
    :func:`workbench.backtest.run_backtest` trades it (its return over the gap is in
    :func:`next_returns` at the bar before the gap). The portfolio return averages over the
    assets present at ``t`` (finite, positive ``sigma_{t,j}``; ``n_t`` of them)::

        R_t = (1 / n_t) * sum_{j present, R_{t,j} finite} R_{t,j}

    Parameters
    ----------
    positions : array_like or pandas.DataFrame, shape (T, N)
        Positions ``X`` in ``[-1, 1]`` decided with information up to and including ``t``.
    sigma : array_like or pandas.DataFrame, shape (T, N)
        Ex-ante annualised volatility at ``t`` (fraction, e.g. EWM std span 60 x sqrt(252)).
    next_returns : array_like or pandas.DataFrame, shape (T, N)
        Simple returns ``r_{t+1}`` aligned at row ``t`` (see :func:`next_returns`).
    target_vol : float, default 0.15
        Annualised target volatility (fraction), > 0.
    cost_bps : float, default 0.0
        Cost ``c`` in basis points of traded (vol-scaled) notional, >= 0.

    Returns
    -------
    StrategyReturns
        ``portfolio`` of shape (T,) and ``per_asset`` of shape (T, N), simple returns per period
        (not annualised). ``per_asset`` is NaN where the asset is not present at ``t`` or
        ``r_{t+1}`` is NaN (the cost of such cells is dropped); ``portfolio`` is NaN where no asset
        has a finite ``R_{t,j}`` (e.g. the last row, which has no ``r_{t+1}``).

    Raises
    ------
    ValueError
        If shapes differ (or two DataFrames have different labels), ``target_vol`` <= 0,
        ``cost_bps`` < 0, or ``positions`` is infinite.

    Notes
    -----
    Source: Lim, Zohren and Roberts (2019), eq. (1) and the cost-adjusted returns of section 5.
    """
    check_positive(target_vol, "target_vol")
    check_nonnegative(cost_bps, "cost_bps")
    x, fx = as_2d(positions, "positions")
    s, fs = as_2d(sigma, "sigma")
    r, fr = as_2d(next_returns, "next_returns")
    check_same_shape(positions=x, sigma=s, next_returns=r)
    check_same_labels(positions=fx, sigma=fs, next_returns=fr)
    if np.isinf(x).any():
        raise ValueError("positions must not contain infinite values")
    present = valid_sigma(s)
    scaled = np.zeros_like(x)  # X / sigma, 0 where flat or absent
    ok = present & np.isfinite(x)
    scaled[ok] = x[ok] / s[ok]
    # the book before row t: the value at each asset's latest row with a bar (held through a gap)
    held = pd.DataFrame(np.where(present, scaled, np.nan)).ffill().fillna(0.0).to_numpy()
    prev = np.vstack([np.zeros((1, x.shape[1])), held[:-1]])
    cost = cost_bps * 1e-4 * target_vol * np.abs(scaled - prev)
    per_asset = target_vol * scaled * r - cost
    per_asset[~present] = np.nan
    n = present.sum(axis=1)
    has_any = np.isfinite(per_asset).any(axis=1)
    total = np.nansum(per_asset, axis=1)
    portfolio = np.full(x.shape[0], np.nan)
    sel = has_any & (n > 0)
    portfolio[sel] = total[sel] / n[sel]
    return StrategyReturns(portfolio=portfolio, per_asset=per_asset)


def turnover(weights: np.ndarray | pd.DataFrame, periods_per_year: int = 252) -> float:
    """Annualised turnover of a weight panel.

    ``turnover = periods_per_year * mean_{t=1..T-1} sum_j |w_{t,j} - w_{t-1,j}|``: the average
    one-way traded notional per period, as a fraction of equity, times the number of periods per
    year. NaN weights count as 0 (flat). The initial build-up from cash (``t = 0``) is not counted.
    A strategy that fully flips a 100 % long book into a 100 % short book once a year has turnover
    2.0.

    Parameters
    ----------
    weights : array_like or pandas.DataFrame, shape (T, N)
        Weights as fractions of equity.
    periods_per_year : int, default 252
        Periods per year used to annualise (252 for daily bars), > 0.

    Returns
    -------
    float
        Annualised turnover (fraction of equity per year); NaN when ``T < 2``.

    Raises
    ------
    ValueError
        If ``weights`` is not (T, N) numeric or ``periods_per_year`` <= 0.
    """
    check_positive(periods_per_year, "periods_per_year")
    w, _ = as_2d(weights, "weights")
    if w.shape[0] < 2:
        return float("nan")
    w = np.where(np.isfinite(w), w, 0.0)
    return float(np.abs(np.diff(w, axis=0)).sum(axis=1).mean() * periods_per_year)
