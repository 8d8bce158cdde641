"""Side-by-side out-of-sample comparison of strategies at several cost levels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._engine import BacktestResult, run_backtest
from ._metrics import performance_metrics
from ._sizing import portfolio_weights
from ._validation import check_same_labels, close_frame

if TYPE_CHECKING:
    from workbench.data import Bars

__all__ = ["Comparison", "compare_strategies"]


@dataclass
class Comparison:
    """Output of :func:`compare_strategies`.

    Attributes
    ----------
    table : pandas.DataFrame
        Rows indexed by ``(cost (bps), strategy)``; metric columns of
        :func:`workbench.backtest.performance_metrics` plus ``mean gross``.
    results : dict
        ``(cost_bps, strategy) -> BacktestResult`` (vectorbt portfolio inside).
    returns : pandas.DataFrame, shape (T_oos, S)
        Daily simple returns, columns ``"<cost:g>|<strategy>"``.
    """

    table: pd.DataFrame
    results: dict[tuple[float, str], BacktestResult]
    returns: pd.DataFrame

    def returns_at(self, cost_bps: float) -> pd.DataFrame:
        """Daily returns of every strategy at one cost level, columns = strategy names."""
        cols = {k[1]: v.returns for k, v in self.results.items() if np.isclose(k[0], cost_bps)}
        if not cols:
            raise KeyError(f"cost level {cost_bps!r} bps was not run")
        return pd.DataFrame(cols)


def compare_strategies(
    positions: Mapping[str, np.ndarray],
    close: pd.DataFrame | Bars,
    sigma: np.ndarray,
    *,
    rows: np.ndarray | slice | None = None,
    cost_levels_bps: Sequence[float] = (0.0, 5.0, 10.0),
    target_vol: float = 0.15,
    max_gross: float = 1.0,
) -> Comparison:
    """Backtest every strategy with vol targeting and costs, over the same rows.

    Each strategy's positions ``X`` (T, N) become portfolio weights
    ``X * target_vol / sigma / n_t`` (:func:`portfolio_weights`, gross leverage capped at
    ``max_gross``), restricted to ``rows`` (e.g. the walk-forward test blocks), and run
    through vectorbt (:func:`run_backtest`) with fees of ``cost`` basis points on traded
    notional, for each cost level.

    Parameters
    ----------
    positions : mapping of str to numpy.ndarray, each (T, N)
        Strategy name -> positions in [-1, 1] (NaN = flat).
    close : pandas.DataFrame or Bars, shape (T, N)
        Close prices (UTC index; NaN where no bar), or a :class:`~workbench.data.Bars`
        panel (its ``close`` field).
    sigma : numpy.ndarray, shape (T, N)
        Ex-ante annualised volatility.
    rows : bool array (T,) or slice, optional
        Rows to trade (out-of-sample period). All rows when omitted.
    cost_levels_bps : sequence of float, default (0, 5, 10)
        Fees in basis points of traded notional.
    target_vol : float, default 0.15
        Annualised vol target per asset.
    max_gross : float, default 1.0
        Gross leverage cap; vectorbt cannot borrow cash for long positions, so rows whose
        net long weight exceeds 1 cannot be traded as asked.

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        If ``close`` is neither a DataFrame nor a Bars, a positions array does not have the
        shape of ``close``, a ``sigma`` DataFrame has labels other than ``close``'s, or no row
        is selected.
    """
    close = close_frame(close)
    T, N = close.shape
    sel = np.ones(T, bool) if rows is None else np.zeros(T, bool)
    if rows is not None:
        sel[rows] = True
    if not sel.any():
        raise ValueError("rows selects no timestamps to backtest")
    if isinstance(sigma, pd.DataFrame):
        check_same_labels(close=close, sigma=sigma)
    sigma = np.asarray(sigma, dtype=np.float64)
    close_sel = close.loc[sel]
    results: dict[tuple[float, str], BacktestResult] = {}
    table_rows = []
    weights: dict[str, pd.DataFrame] = {}
    for name, pos in positions.items():
        pos = np.asarray(pos, dtype=np.float64)
        if pos.shape != (T, N):
            raise ValueError(f"positions[{name!r}] has shape {pos.shape}, expected {(T, N)}")
        w = portfolio_weights(pos, sigma, target_vol=target_vol, max_gross=max_gross)
        weights[name] = pd.DataFrame(w, index=close.index, columns=close.columns).loc[sel]
    for cost in cost_levels_bps:
        for name, w in weights.items():
            res = run_backtest(close_sel, w, fees_bps=float(cost), max_gross=max_gross)
            results[(float(cost), name)] = res
            m = performance_metrics(res.returns, turnover=res.turnover)
            m["mean gross"] = float(np.nansum(np.abs(res.weights.to_numpy()), axis=1).mean())
            table_rows.append({"cost (bps)": float(cost), "strategy": name, **m})
    table = pd.DataFrame(table_rows).set_index(["cost (bps)", "strategy"])
    returns = pd.DataFrame({f"{c:g}|{n}": r.returns for (c, n), r in results.items()})
    return Comparison(table=table, results=results, returns=returns)
