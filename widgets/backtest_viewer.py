"""Backtest viewer: pick a research-report run, see equity curves, drawdowns and metrics.

Runs in a notebook (``BacktestViewer().panel()``) and as an app::

    python -m widgets.serve backtest_viewer     # or: make viewer

It reads the files that ``workbench report`` writes beside each report
(``comparison.csv`` and ``returns.parquet``) from ``reports/output/<run>/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param

from workbench.reporting import default_output_root, list_runs
from workbench.risk import drawdown_series

__all__ = ["BacktestViewer", "RunData", "load_run"]

#: Metrics-table columns holding fractions (0.12 = 12 %), displayed as percentages.
_FRACTION_COLUMNS = ("annual return", "annual vol", "max drawdown")


@dataclass
class RunData:
    """Results of one report run.

    Attributes
    ----------
    name : str
        Run folder name (``YYYYmmdd-HHMMSS``).
    returns : pandas.DataFrame, shape (T, S)
        Out-of-sample daily simple returns; columns ``"<cost bps>|<strategy>"``.
    comparison : pandas.DataFrame
        Metrics table (one row per cost level and strategy).
    parameters : dict
        The run's papermill parameters.
    """

    name: str
    returns: pd.DataFrame
    comparison: pd.DataFrame
    parameters: dict

    @property
    def costs(self) -> list[str]:
        """Cost levels present, as strings (bps)."""
        return sorted({c.split("|", 1)[0] for c in self.returns.columns}, key=float)

    def strategies(self) -> list[str]:
        """Strategy names present."""
        return list(dict.fromkeys(c.split("|", 1)[1] for c in self.returns.columns))


def load_run(run_dir: str | Path) -> RunData:
    """Load a report run's machine-readable results.

    Parameters
    ----------
    run_dir : str or pathlib.Path
        A folder written by ``workbench report``.

    Returns
    -------
    RunData

    Raises
    ------
    FileNotFoundError
        If the run has no ``returns.parquet`` / ``comparison.csv`` (e.g. it failed).
    """
    import json

    run_dir = Path(run_dir)
    for f in ("returns.parquet", "comparison.csv"):
        if not (run_dir / f).is_file():
            raise FileNotFoundError(f"{run_dir}: no {f} (the run failed or is unfinished)")
    rec = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    return RunData(
        name=run_dir.name,
        returns=pd.read_parquet(run_dir / "returns.parquet"),
        comparison=pd.read_csv(run_dir / "comparison.csv"),
        parameters=rec.get("parameters", {}),
    )


class BacktestViewer(param.Parameterized):
    """Panel view over the report runs: equity, drawdown and metrics for one run.

    Parameters
    ----------
    output_root : str
        Folder of report runs (default ``reports/output`` or ``$WORKBENCH_REPORTS_DIR``).
    """

    output_root = param.String(default="", doc="Folder holding the dated report runs.")
    run: Any = param.Selector(default=None, objects=[], doc="Report run to show.")
    cost: Any = param.Selector(default=None, objects=[], doc="Cost level (bps) of the curves.")
    strategies = param.ListSelector(default=[], objects=[], doc="Strategies to plot.")

    def __init__(self, **params):
        super().__init__(**params)
        root = Path(self.output_root) if self.output_root else default_output_root()
        self._root = root
        runs = [r for r in list_runs(root) if (Path(r["path"]) / "returns.parquet").exists()]
        names = [r["run"] for r in runs]
        self.param.run.objects = names
        self._data: RunData | None = None
        if names:
            self.run = names[0]
            self._load()

    @param.depends("run", watch=True)
    def _load(self) -> None:
        if not self.run:
            return
        self._data = load_run(self._root / self.run)
        self.param.cost.objects = self._data.costs
        self.cost = self._data.costs[0]
        strategies = self._data.strategies()
        self.param.strategies.objects = strategies
        self.strategies = strategies

    def _selected(self) -> pd.DataFrame:
        if self._data is None or self.cost is None:
            return pd.DataFrame()
        cols = [f"{self.cost}|{s}" for s in self.strategies if f"{self.cost}|{s}" in
                self._data.returns.columns]
        out = self._data.returns[cols]
        out.columns = [c.split("|", 1)[1] for c in cols]
        return out

    def _empty_message(self) -> pn.pane.Markdown:
        if self._data is None:
            return pn.pane.Markdown("No report runs with results yet: run `make report`.")
        return pn.pane.Markdown("Pick at least one strategy.")

    @staticmethod
    def _height(n_lines: int, minimum: int) -> int:
        """Chart height (px) whose plot area fits a legend of ``n_lines`` entries."""
        return max(minimum, 22 * n_lines + 110)

    @param.depends("run", "cost", "strategies")
    def equity_plot(self):
        """Growth of 1 for the selected strategies (hvplot line chart)."""
        import hvplot.pandas  # noqa: F401

        r = self._selected()
        if r.empty:
            return self._empty_message()
        eq = (1.0 + r.fillna(0.0)).cumprod()
        # own value dimension: the equity axis must not be linked to the drawdown axis;
        # the curves are grouped by strategy (legend title; hvplot says "Variable")
        return eq.hvplot.line(title=f"Equity (growth of 1), {self.cost} bps",
                              height=self._height(r.shape[1], 320), responsive=True,
                              ylabel="equity", xlabel="", value_label="equity",
                              group_label="strategy")

    @param.depends("run", "cost", "strategies")
    def drawdown_plot(self):
        """Drawdown from the running peak for the selected strategies (axis in percent)."""
        import hvplot.pandas  # noqa: F401
        from bokeh.models import NumeralTickFormatter

        r = self._selected()
        if r.empty:
            return pn.pane.Markdown("")
        dd = pd.DataFrame({c: drawdown_series(r[c].fillna(0.0).to_numpy()) for c in r},
                          index=r.index)
        return dd.hvplot.line(title=f"Drawdown, {self.cost} bps",
                              height=self._height(r.shape[1], 240), responsive=True,
                              ylabel="drawdown", xlabel="", value_label="drawdown",
                              group_label="strategy",  # legend title (hvplot: "Variable")
                              yformatter=NumeralTickFormatter(format="0%"))

    @param.depends("run", "cost")
    def metrics_table(self):
        """Metrics of every strategy at the selected cost level.

        Annual return, annual vol and max drawdown (fractions in ``comparison.csv``) are
        displayed as percentages, like ``% positive`` beside them.
        """
        from bokeh.models.widgets.tables import NumberFormatter

        if self._data is None:
            return pn.pane.Markdown("")
        t = self._data.comparison
        t = t[np.isclose(t["cost (bps)"].astype(float), float(self.cost))]
        pct = {c: NumberFormatter(format="0.00%") for c in _FRACTION_COLUMNS if c in t}
        return pn.widgets.Tabulator(t.round(4), disabled=True, show_index=False,
                                    sizing_mode="stretch_width", formatters=pct,
                                    layout="fit_columns",  # titles cut short: on hover
                                    configuration={"columnDefaults": {"headerTooltip": True}})

    def panel(self) -> pn.viewable.Viewable:
        """The full layout (controls on the left, charts and table on the right)."""
        controls = pn.Param(self.param, parameters=["run", "cost", "strategies"],
                            widgets={"run": {"width": 220}, "cost": {"width": 220},
                                     "strategies": pn.widgets.CheckBoxGroup},
                            show_name=False, width=240)
        return pn.Row(
            pn.Column("## Backtest viewer", controls, width=260),
            pn.Column(self.equity_plot, self.drawdown_plot, self.metrics_table,
                      sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )


if __name__.startswith("bokeh"):  # `panel serve widgets/backtest_viewer.py`
    pn.extension("tabulator")
    BacktestViewer().panel().servable(title="Quant Workbench: backtest viewer")
