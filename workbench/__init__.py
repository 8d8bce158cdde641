"""Quant Workbench: a Jupyter-first research workbench for quantitative traders.

The headless core. Sub-packages are imported lazily so that ``import workbench``
stays fast (heavy libraries such as torch, vectorbt and numba load on first use):

- :mod:`workbench.data` -- the ``Bars`` panel, bundled real market data, CSV/Parquet loaders.
- :mod:`workbench.features` -- compiled feature kernels (returns, volatility, MACD, RSI, ...).
- :mod:`workbench.models` -- Sharpe-loss models (deep momentum LSTM) and walk-forward training.
- :mod:`workbench.backtest` -- baselines, vol targeting, costs, vectorbt engine, metrics, splits.
- :mod:`workbench.risk` -- VaR/CVaR, drawdowns, time under water.
- :mod:`workbench.reporting` -- papermill research report runner.

``workbench`` never imports panel, bokeh or ipywidgets; the UI lives in ``widgets``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = ("data", "features", "models", "backtest", "risk", "reporting", "cli")

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
