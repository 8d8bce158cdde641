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

#: Metrics-table column -> (short header with its unit, number format, header tooltip).
#: Definitions: :func:`workbench.backtest.performance_metrics` (risk-free rate 0, 252 days).
_METRIC_DISPLAY: dict[str, tuple[str, str, str]] = {
    "annual return": ("annual return (CAGR, %)", "0.00%",
                      "Annual return, geometric (CAGR): prod(1 + r) ** (252 / T) - 1"),
    "annual vol": ("annual vol (%)", "0.00%", "Annualised volatility: std(daily r) * sqrt(252)"),
    "Sharpe": ("Sharpe (annualised)", "0.000",
               "Annualised Sharpe ratio: mean(daily r) / std(daily r) * sqrt(252), "
               "risk-free rate 0"),
    "Sortino": ("Sortino (annualised)", "0.000",
                "Annualised Sortino ratio: mean(daily r) * 252 / (downside RMS * sqrt(252))"),
    "max drawdown": ("max drawdown (%)", "0.00%",
                     "Maximum drawdown from the running peak of equity"),
    "Calmar": ("Calmar (CAGR / |max DD|)", "0.000",
               "Calmar ratio: annual return (CAGR) / |max drawdown|"),
    "% positive": ("% positive days", "0.0", "Percentage of days with a positive return"),
    "turnover": ("turnover (x equity / yr)", "0.00",
                 "Annualised turnover: traded notional per year, in multiples of equity"),
    "mean gross": ("mean gross (x equity)", "0.000",
                   "Average gross exposure sum |weight|, in multiples of equity"),
}


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
    ValueError
        If a file cannot be read, or ``returns.parquet`` has no strategy column, a column
        not named ``"<cost bps>|<strategy>"`` or an infinite return (the message names the
        file and the column).
    """
    import json

    run_dir = Path(run_dir)
    for f in ("returns.parquet", "comparison.csv"):
        if not (run_dir / f).is_file():
            raise FileNotFoundError(f"{run_dir}: no {f} (the run failed or is unfinished)")
    rec: dict = {}
    if (run_dir / "run.json").exists():
        try:
            rec = json.loads((run_dir / "run.json").read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{run_dir / 'run.json'}: not readable JSON ({exc})") from None
    try:
        returns = pd.read_parquet(run_dir / "returns.parquet")
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
        raise ValueError(f"{run_dir / 'returns.parquet'}: not readable "
                         f"({type(exc).__name__}: {exc})") from None
    _check_returns(returns, run_dir / "returns.parquet")
    try:
        comparison = pd.read_csv(run_dir / "comparison.csv")
    except (OSError, ValueError) as exc:
        raise ValueError(f"{run_dir / 'comparison.csv'}: not readable ({exc})") from None
    return RunData(name=run_dir.name, returns=returns, comparison=comparison,
                   parameters=rec.get("parameters", {}))


def _check_returns(returns: pd.DataFrame, path: Path) -> None:
    """Columns ``"<cost bps>|<strategy>"`` (at least one), no infinite value."""
    if returns.shape[1] == 0:
        raise ValueError(f"{path}: no strategy columns")
    for col in returns.columns:
        cost, sep, strategy = str(col).partition("|")
        try:
            ok = bool(sep and strategy) and np.isfinite(float(cost))
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{path}: column {col!r} is not named '<cost bps>|<strategy>' "
                             "(e.g. '0|long-only')")
        values = pd.to_numeric(returns[col], errors="coerce").to_numpy(dtype=float)
        if np.isinf(values).any():
            raise ValueError(f"{path}: infinite return in column {col!r}")


class BacktestViewer(param.Parameterized):
    """Panel view over the report runs: equity, drawdown and metrics for one run.

    Parameters
    ----------
    output_root : str
        Folder of report runs (default ``reports/output`` or ``$WORKBENCH_REPORTS_DIR``).
    """

    output_root = param.String(default="", doc="Folder holding the dated report runs.")
    run: Any = param.Selector(default=None, objects=[], doc="Report run to show.")
    cost: Any = param.Selector(default=None, objects=[], label="Cost (bps)",
                               doc="Cost level (bps) of the curves.")
    strategies = param.ListSelector(default=[], objects=[], doc="Strategies to plot.")

    def __init__(self, **params):
        super().__init__(**params)
        root = Path(self.output_root) if self.output_root else default_output_root()
        self._root = root
        runs = [r for r in list_runs(root) if (Path(r["path"]) / "returns.parquet").exists()]
        names = [r["run"] for r in runs]
        self.param.run.objects = names
        self._data: RunData | None = None
        self._error: str | None = None
        if names:
            self.run = names[0]
            self._load()

    @param.depends("run", watch=True)
    def _load(self) -> None:
        if not self.run:
            return
        try:
            self._data, self._error = load_run(self._root / self.run), None
        except (FileNotFoundError, ValueError) as exc:  # shown in place of the charts
            self._data, self._error = None, str(exc)
            self.param.cost.objects, self.cost = [], None
            self.param.strategies.objects, self.strategies = [], []
            return
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
        if self._error is not None:
            return pn.pane.Markdown(f"Run `{self.run}` cannot be shown: {self._error}")
        if self._data is None:
            return pn.pane.Markdown("No report runs with results yet: run `make report`.")
        if self.strategies and self._data.returns.empty:
            return pn.pane.Markdown(f"Run `{self.run}` has no returns (no out-of-sample "
                                    "rows).")
        return pn.pane.Markdown("Pick at least one strategy.")

    @staticmethod
    def _lines(wide: pd.DataFrame, value: str, **opts: Any):
        """One line per strategy column of ``wide`` (legend in column order), value ``value``.

        The value dimension is ``value`` even for a single strategy: hvplot draws a
        one-column frame against a dimension named after the strategy, the same for equity
        and drawdown, and Panel then gave the two charts one value axis.
        """
        import hvplot.pandas  # noqa: F401

        wide = wide.rename_axis(index="timestamp")
        if wide.shape[1] == 1:
            name = wide.columns[0]
            return wide.hvplot.line(y=name, **opts).redim(**{name: value})
        # the curves are grouped by strategy (legend title; hvplot says "Variable")
        return wide.hvplot.line(value_label=value, group_label="strategy", **opts)

    @staticmethod
    def _only(selected: pd.DataFrame) -> str:
        """Title suffix naming a lone strategy (a one-line chart has no legend)."""
        return f": {selected.columns[0]}" if selected.shape[1] == 1 else ""

    @staticmethod
    def _height(n_lines: int, minimum: int) -> int:
        """Chart height (px) whose plot area fits a legend of ``n_lines`` entries."""
        return max(minimum, 22 * n_lines + 110)

    @param.depends("run", "cost", "strategies")
    def equity_plot(self):
        """Growth of 1 for the selected strategies (hvplot line chart)."""
        r = self._selected()
        if r.empty:
            return self._empty_message()
        eq = (1.0 + r.fillna(0.0)).cumprod()
        # own value dimension: the equity axis must not be linked to the drawdown axis
        return self._lines(eq, "equity",
                           title=f"Equity (growth of 1), {self.cost} bps{self._only(r)}",
                           height=self._height(r.shape[1], 320), responsive=True,
                           ylabel="equity (growth of 1)", xlabel="")

    @param.depends("run", "cost", "strategies")
    def drawdown_plot(self):
        """Drawdown from the running peak for the selected strategies (axis in percent)."""
        from bokeh.models import NumeralTickFormatter

        r = self._selected()
        if r.empty:
            return pn.pane.Markdown("")
        dd = pd.DataFrame({c: drawdown_series(r[c].fillna(0.0).to_numpy()) for c in r},
                          index=r.index)
        return self._lines(dd, "drawdown", title=f"Drawdown, {self.cost} bps{self._only(r)}",
                           height=self._height(r.shape[1], 240), responsive=True,
                           ylabel="drawdown (% of peak)", xlabel="",
                           yformatter=NumeralTickFormatter(format="0%"))

    @param.depends("run", "cost", "strategies")
    def charts(self) -> pn.viewable.Viewable:
        """Equity above drawdown, built together (time axes linked, value axes not).

        Both charts are replaced at once when the run, cost or strategies change, so the
        time axis fits the run shown: rebuilt one at a time, each new chart was linked to
        the other's range from the previous run and kept its span.
        """
        equity = self.equity_plot()
        if isinstance(equity, pn.pane.Markdown):
            return equity
        return pn.Column(pn.pane.HoloViews(equity, sizing_mode="stretch_width"),
                         pn.pane.HoloViews(self.drawdown_plot(), sizing_mode="stretch_width"),
                         sizing_mode="stretch_width")

    @param.depends("run", "cost")
    def metrics_table(self):
        """Metrics of every strategy at the selected cost level.

        Annual return, annual vol and max drawdown (fractions in ``comparison.csv``) are
        displayed as percentages, like ``% positive`` beside them; each header names its
        unit and its tooltip gives the definition. The cost column is left out (the cost
        level is the selector's and is named above the table).
        """
        from bokeh.models.widgets.tables import NumberFormatter

        if self._data is None or self.cost is None:
            return pn.pane.Markdown("")
        t = self._data.comparison
        if "cost (bps)" in t:
            t = t[np.isclose(t["cost (bps)"].astype(float), float(self.cost))]
            t = t.drop(columns="cost (bps)")
        t = t.reset_index(drop=True)
        shown = {c: v for c, v in _METRIC_DISPLAY.items() if c in t}
        fmt = {c: NumberFormatter(format=f, text_align="right") for c, (_, f, _) in shown.items()}
        return pn.widgets.Tabulator(
            t, disabled=True, show_index=False, sizing_mode="stretch_width", formatters=fmt,
            layout="fit_columns",  # every column within the page width
            titles={c: title for c, (title, _, _) in shown.items()},
            header_tooltips={c: tip for c, (_, _, tip) in shown.items()},
            header_align={c: "right" for c in shown},
            widths={"strategy": 165} if "strategy" in t else {},
            # long titles wrap instead of being cut short; below the minimum width (a
            # narrow window) the table scrolls sideways rather than clipping words
            configuration={"columnDefaults": {"headerWordWrap": True, "minWidth": 105}})

    @param.depends("run", "cost")
    def metrics_heading(self) -> pn.pane.Markdown:
        """Heading of the metrics table: the cost level and the annualisation."""
        if self._data is None or self.cost is None:
            return pn.pane.Markdown("")
        return pn.pane.Markdown(f"#### Metrics at {self.cost} bps (out-of-sample daily "
                                "returns, annualised over 252 days)", margin=(0, 10))

    def panel(self) -> pn.viewable.Viewable:
        """The full layout (controls on the left, charts and table on the right)."""
        controls = pn.Param(self.param, parameters=["run", "cost", "strategies"],
                            widgets={"run": {"width": 220}, "cost": {"width": 220},
                                     "strategies": pn.widgets.CheckBoxGroup},
                            show_name=False, width=240)
        return pn.Row(
            pn.Column("## Backtest viewer", controls, width=260),
            pn.Column(self.charts, self.metrics_heading, self.metrics_table,
                      sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )


if __name__.startswith("bokeh"):  # `panel serve widgets/backtest_viewer.py`
    pn.extension("tabulator")
    BacktestViewer().panel().servable(title="Quant Workbench: backtest viewer")
