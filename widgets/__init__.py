"""UI layer of Quant Workbench (Panel, hvplot/HoloViews, ipywidgets).

Depends on :mod:`workbench`, never the reverse. Names load lazily so importing the
package does not pull in Panel until a widget is used.
"""

from __future__ import annotations

from workbench._lazy import lazy_exports

_EXPORTS = {
    "BacktestViewer": "widgets.backtest_viewer",
    "load_run": "widgets.backtest_viewer",
    "FeatureExplorer": "widgets.feature_explorer",
    "TrainingMonitor": "widgets.training_monitor",
    "LiveApp": "widgets.live_app",
    "TuningDashboard": "widgets.tuning_dashboard",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
