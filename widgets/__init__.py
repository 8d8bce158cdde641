"""UI layer of Quant Workbench (Panel, hvplot/HoloViews, ipywidgets).

Depends on :mod:`workbench`, never the reverse. Names load lazily so importing the
package does not pull in Panel until a widget is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BacktestViewer": "widgets.backtest_viewer",
    "load_run": "widgets.backtest_viewer",
    "FeatureExplorer": "widgets.feature_explorer",
    "TrainingMonitor": "widgets.training_monitor",
    "LiveApp": "widgets.live_app",
    "TuningDashboard": "widgets.tuning_dashboard",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'widgets' has no attribute {name!r}")
