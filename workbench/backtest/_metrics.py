"""Performance metrics in numpy, matching vectorbt's returns accessor (DESIGN section 6).

Each metric reproduces ``pd.Series(r).vbt.returns(freq="1D", year_freq="252 days")`` (vectorbt 1.2,
``vectorbt/returns/nb.py``) with the annualisation factor ``periods_per_year``, without importing
vectorbt. NaN periods are treated exactly as vectorbt does: they are skipped by means and standard
deviations, count as a zero return when compounding, and *are* counted in the number of periods used
to annualise the geometric return. Deliberate differences: the starting equity counts as a
drawdown peak (as in :mod:`workbench.risk`), and the Sharpe and Sortino ratios of a flat series are
NaN, not ``inf``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ._validation import check_positive

__all__ = ["METRIC_COLUMNS", "metrics_table", "performance_metrics"]

METRIC_COLUMNS: tuple[str, ...] = (
    "annual return",
    "annual vol",
    "Sharpe",
    "Sortino",
    "max drawdown",
    "Calmar",
    "% positive",
    "turnover",
)


def _as_1d(returns: np.ndarray | pd.Series, name: str = "returns") -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"{name} must have shape (T,), got shape {r.shape}")
    if np.isinf(r).any():
        raise ValueError(f"{name} must not contain infinite values")
    return r


def _nanstd(r: np.ndarray, ddof: int = 1) -> float:
    cnt = int(np.count_nonzero(~np.isnan(r)))
    if cnt - ddof <= 0:
        return float("nan")
    return float(np.sqrt(np.nanvar(r) * cnt / (cnt - ddof)))


def _annual_return(r: np.ndarray, ppy: float) -> float:
    if r.shape[0] == 0:
        return float("nan")
    end = np.nanprod(r + 1.0)
    return float(end ** (ppy / r.shape[0]) - 1.0)


def _max_drawdown(r: np.ndarray) -> float:
    if r.shape[0] == 0:
        return float("nan")
    equity = np.cumprod(np.where(np.isnan(r), 1.0, r + 1.0))
    peak = np.maximum(np.maximum.accumulate(equity), 1.0)  # the starting equity is a peak
    return float(np.min(equity / peak - 1.0))


def _ratio(num: float, den: float, scale: float) -> float:
    """``num / den * scale`` where a zero or rounding-level ``den`` gives ``sign(num) * inf``.

    ``0 / 0`` (a flat strategy) is NaN, not ``inf``: it must not rank first in a table. A
    denominator below ``1e-12 * |num|`` is rounding noise of a constant series (a std of
    ``[-0.01] * 10`` is ~1e-18, not 0) and counts as zero.
    """
    if np.isnan(num) or np.isnan(den):
        return float("nan")
    if den <= 1e-12 * abs(num):  # (den >= 0: a std or a root mean square)
        return float("nan") if num == 0.0 else float(np.copysign(np.inf, num))
    return float(num / den * scale)


def performance_metrics(
    returns: np.ndarray | pd.Series,
    turnover: float | None = None,
    periods_per_year: int = 252,
) -> dict[str, float]:
    """Annualised performance metrics of a simple-return series.

    Definitions (``A = periods_per_year``, ``T`` = number of periods including NaN ones, statistics
    over non-NaN periods, risk-free rate 0):

    - ``annual return``: geometric, ``prod(1 + r) ** (A / T) - 1`` (vectorbt ``annualized``).
    - ``annual vol``: ``std(r, ddof=1) * sqrt(A)`` (``annualized_volatility``).
    - ``Sharpe``: ``mean(r) / std(r, ddof=1) * sqrt(A)`` (``sharpe_ratio``). With a zero std
      (a constant series, to rounding: std <= 1e-12 |mean|) it is ``+-inf`` by the sign of the
      mean and NaN for a mean of 0 (vectorbt gives ``inf`` for all three, so a flat strategy
      would rank first).
    - ``Sortino``: ``mean(r) * A / (sqrt(mean(min(r, 0) ** 2)) * sqrt(A))`` (``sortino_ratio``);
      without a negative period ``inf`` for a positive mean and NaN for a mean of 0.
    - ``max drawdown``: ``min_t(E_t / P_t - 1)`` with ``E_t = prod_{s<=t} (1 + r_s)`` and ``P_t =
      max(1, max_{s<=t} E_s)``, a negative fraction. The starting equity 1 counts as a peak, as in
      :func:`workbench.risk.max_drawdown`, so a loss in the first period is a drawdown (vectorbt's
      ``max_drawdown`` starts the peak at the first period's equity: the two differ when the
      curve starts with a loss). Calmar uses this drawdown.
    - ``Calmar``: ``annual return / |max drawdown|`` (``calmar_ratio``; NaN if max drawdown is 0).
    - ``% positive``: ``100 * #(r > 0) / #(non-NaN r)``.
    - ``turnover``: passed through (annualised, see :func:`workbench.backtest.turnover`), NaN if
    None.

    Parameters
    ----------
    returns : array_like or pandas.Series, shape (T,)
        Per-period simple returns (not log returns).
    turnover : float, optional
        Annualised turnover to report alongside.
    periods_per_year : int, default 252
        Annualisation factor (252 daily bars per year = vectorbt ``freq="1D", year_freq="252
        days"``).

    Returns
    -------
    dict of str to float
        Keys exactly :data:`METRIC_COLUMNS`. Sharpe, Sortino and annual vol are NaN when ``T < 2``.

    Raises
    ------
    ValueError
        If ``returns`` is not 1-D or contains ``inf``, or ``periods_per_year`` <= 0.

    Notes
    -----
    Source: vectorbt 1.2 ``vectorbt.returns.nb`` (``annualized_return_1d_nb``,
    ``annualized_volatility_1d_nb``, ``sharpe_ratio_1d_nb``, ``sortino_ratio_1d_nb``,
    ``max_drawdown_1d_nb``, ``calmar_ratio_1d_nb``); tests compare against it (the drawdown
    against vectorbt's on the series preceded by a zero return).
    """
    check_positive(periods_per_year, "periods_per_year")
    r = _as_1d(returns)
    ppy = float(periods_per_year)
    n = r.shape[0]
    ann_ret = _annual_return(r, ppy)
    std = _nanstd(r, ddof=1)
    valid = r[~np.isnan(r)]
    mean = float(valid.mean()) if valid.size else float("nan")
    if n < 2:
        vol = sharpe = sortino = float("nan")
    else:
        vol = std * np.sqrt(ppy)
        sharpe = _ratio(mean, std, np.sqrt(ppy))
        downside = np.minimum(valid, 0.0)
        dr = float(np.sqrt(np.mean(downside**2)) * np.sqrt(ppy)) if valid.size else float("nan")
        sortino = _ratio(mean * ppy, dr, 1.0)
    mdd = _max_drawdown(r)
    calmar = float("nan") if (mdd == 0.0 or np.isnan(mdd)) else ann_ret / abs(mdd)
    pos = float(100.0 * np.mean(valid > 0)) if valid.size else float("nan")
    to = float("nan") if turnover is None else float(turnover)
    values = (ann_ret, float(vol), float(sharpe), float(sortino), mdd, calmar, pos, to)
    return dict(zip(METRIC_COLUMNS, values, strict=True))


def metrics_table(
    returns: Mapping[str, np.ndarray | pd.Series] | pd.DataFrame,
    turnovers: Mapping[str, float] | None = None,
    periods_per_year: int = 252,
) -> pd.DataFrame:
    """Metrics of several strategies side by side.

    Parameters
    ----------
    returns : mapping of str to (T,) array_like, or pandas.DataFrame of shape (T, S)
        Per-period simple returns per strategy (DataFrame columns are strategies). Series may have
        different lengths.
    turnovers : mapping of str to float, optional
        Annualised turnover per strategy; missing strategies get NaN.
    periods_per_year : int, default 252
        Annualisation factor.

    Returns
    -------
    pandas.DataFrame
        One row per strategy (in input order), columns exactly :data:`METRIC_COLUMNS`; see
        :func:`performance_metrics` for the definitions.

    Raises
    ------
    ValueError
        If ``returns`` is empty or a series is invalid (see :func:`performance_metrics`).
    """
    items = (
        [(str(c), returns[c]) for c in returns.columns]
        if isinstance(returns, pd.DataFrame)
        else [(str(k), v) for k, v in returns.items()]
    )
    if not items:
        raise ValueError("returns must contain at least one strategy, got none")
    turnovers = dict(turnovers or {})
    rows = {
        name: performance_metrics(r, turnovers.get(name), periods_per_year=periods_per_year)
        for name, r in items
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(METRIC_COLUMNS))
