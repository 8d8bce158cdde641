"""Causal feature engine over (T, N) panels: the catalogue, ``FeatureSet`` and streaming.

Public functions take (T, N) (or (T,)) float arrays where NaN marks a missing bar,
compute on each asset's own sequence of valid bars and return float64 (or float32)
arrays of the same leading shape. Warm-up rows are NaN; nothing is back-filled.
Features on price ratios or log prices (returns, volatilities, spreads, correlations:
``FeatureDef.positive`` in the catalogue) raise a ValueError naming the input and the
first row/column of a finite price <= 0.
Kernels live in backend modules (``_cpu*``: numba; ``_gpu``: CuPy); see
:mod:`workbench.features._api` for dispatch. :class:`FeatureSet` computes a named
(T, N, F) block from the catalogue (:func:`catalogue`); :class:`FeatureStream` updates
the same features bar by bar in O(1) per symbol.

The catalogue families load lazily, so ``import workbench.features`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from workbench.features._api import (
    FEATURE_NAMES,
    bollinger,
    deep_momentum_features,
    describe,
    ema,
    ewm_volatility,
    ex_ante_volatility,
    gpu_available,
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

_LAZY = {
    # FeatureSet, registry and streaming
    "FeatureSet": "_featureset",
    "FeatureBlock": "_featureset",
    "FeatureInstance": "_featureset",
    "FeatureDef": "_catalogue",
    "register": "_catalogue",
    "StreamFeature": "_stream_base",
    "FeatureStream": "_feature_stream",
    # trend / bands / volume / volatility
    "roc": "_ta",
    "momentum": "_ta",
    "price_position": "_ta",
    "bollinger_percent_b": "_ta",
    "bollinger_bandwidth": "_ta",
    "rolling_vwap": "_ta",
    "obv": "_ta",
    "volume_zscore": "_ta",
    "atr": "_ta",
    "vol_of_vol": "_ta",
    "rolling_skewness": "_ta",
    "rolling_kurtosis": "_ta",
    "parkinson_volatility": "_ta",
    "garman_klass_volatility": "_ta",
    # microstructure, cross-asset, order book
    "corwin_schultz_spread": "_micro",
    "roll_spread": "_micro",
    "amihud_illiquidity": "_micro",
    "rolling_correlation": "_micro",
    "rolling_beta": "_micro",
    "mean_pairwise_correlation": "_micro",
    "spread": "_micro",
    "relative_spread": "_micro",
    "depth_imbalance": "_micro",
    "depth": "_micro",
    "weighted_mid": "_micro",
    "price_impact": "_micro",
}

__all__ = [
    "FEATURE_NAMES",
    "FeatureBlock",
    "FeatureDef",
    "FeatureInstance",
    "FeatureSet",
    "FeatureStream",
    "StreamFeature",
    "amihud_illiquidity",
    "atr",
    "bollinger",
    "bollinger_bandwidth",
    "bollinger_percent_b",
    "catalogue",
    "corwin_schultz_spread",
    "deep_momentum_features",
    "depth",
    "depth_imbalance",
    "describe",
    "ema",
    "ewm_volatility",
    "ex_ante_volatility",
    "garman_klass_volatility",
    "gpu_available",
    "log_returns",
    "macd",
    "macd_signal",
    "macd_signals",
    "mean_pairwise_correlation",
    "momentum",
    "normalised_returns",
    "obv",
    "parkinson_volatility",
    "price_impact",
    "price_position",
    "register",
    "relative_spread",
    "roc",
    "roll_spread",
    "rolling_beta",
    "rolling_correlation",
    "rolling_kurtosis",
    "rolling_skewness",
    "rolling_std",
    "rolling_volatility",
    "rolling_vwap",
    "rsi",
    "simple_returns",
    "sma",
    "spread",
    "vol_of_vol",
    "volume_zscore",
    "weighted_mid",
]


def catalogue() -> dict:
    """The full feature catalogue: name -> :class:`FeatureDef` (every family loaded)."""
    from workbench.features._featureset import load_catalogue

    return dict(load_catalogue())


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"workbench.features.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'workbench.features' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
