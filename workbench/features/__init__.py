"""Causal feature kernels over (T, N) price panels.

Public functions take (T, N) (or (T,)) float arrays where NaN marks a missing
bar, compute on each asset's own sequence of valid bars and return float64
(or float32) arrays of the same leading shape. Warm-up rows are NaN; nothing is
back-filled. Kernels live in backend modules (``_cpu``: numba); see
:mod:`workbench.features._api` for dispatch.
"""

from workbench.features._api import (
    FEATURE_NAMES,
    bollinger,
    deep_momentum_features,
    describe,
    ema,
    ewm_volatility,
    ex_ante_volatility,
    log_returns,
    macd,
    macd_signal,
    macd_signals,
    normalised_returns,
    rolling_std,
    rolling_volatility,
    rsi,
    simple_returns,
    sma,
)

__all__ = [
    "FEATURE_NAMES",
    "bollinger",
    "deep_momentum_features",
    "describe",
    "ema",
    "ewm_volatility",
    "ex_ante_volatility",
    "log_returns",
    "macd",
    "macd_signal",
    "macd_signals",
    "normalised_returns",
    "rolling_std",
    "rolling_volatility",
    "rsi",
    "simple_returns",
    "sma",
]
