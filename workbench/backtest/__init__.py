"""Backtesting: baselines, volatility targeting, costs, a vectorbt adapter, metrics and splits.

Conventions: prices and returns are ``(T, N)`` arrays or DataFrames with a UTC DatetimeIndex; NaN
close means no bar. Returns are simple returns; annualisation uses 252 periods per year; costs are
in basis points (1 bp = 1e-4). vectorbt is imported only inside :func:`run_backtest`.
"""

from ._baselines import long_only, macd_baseline, macd_response, tsmom
from ._compare import Comparison, compare_strategies
from ._engine import BacktestResult, run_backtest
from ._metrics import METRIC_COLUMNS, metrics_table, performance_metrics
from ._returns import StrategyReturns, next_returns, strategy_returns, turnover
from ._sizing import portfolio_weights, vol_target_weights
from ._splits import Split, walk_forward_splits

__all__ = [
    "METRIC_COLUMNS",
    "BacktestResult",
    "Comparison",
    "Split",
    "StrategyReturns",
    "compare_strategies",
    "long_only",
    "macd_baseline",
    "macd_response",
    "metrics_table",
    "next_returns",
    "performance_metrics",
    "portfolio_weights",
    "run_backtest",
    "strategy_returns",
    "tsmom",
    "turnover",
    "vol_target_weights",
    "walk_forward_splits",
]
