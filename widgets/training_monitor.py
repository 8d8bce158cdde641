"""Live training curves: per-epoch loss and validation Sharpe while ``fit`` runs.

In a notebook::

    from widgets import TrainingMonitor
    monitor = TrainingMonitor()
    monitor.panel()                       # display, then in the next cell:
    model.fit(dataset, train, valid, callbacks=[monitor])
    walk_forward(factory, dataset, splits, callbacks=[monitor])

Every ``fit`` of the model zoo (torch members and the boosted trees) calls its callbacks
after each epoch with ``(model, record)``; the monitor appends the record to one curve per
series (model class, plus fold and member when the walk-forward trainers add them) and
pushes it to the browser at once (outgoing notebook comm messages are sent while the cell
runs). As an app, ``panel serve widgets/training_monitor.py`` trains a small deep
momentum LSTM walk-forward on the bundled daily universe in a background thread and
shows the curves filling in; records from other threads are pushed by a periodic
callback of the served document.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

__all__ = ["TrainingMonitor"]

_COLUMNS = ("series", "fold", "member", "epoch", "train_loss", "valid_sharpe", "seconds",
            "unit")

#: x-axis label of each progress unit ("epoch": torch members; "trees": boosted trees,
#: whose records come every 10 trees with ``epoch`` = trees so far and a log loss).
_UNIT_LABELS = {"epoch": "epoch", "trees": "number of trees"}


class TrainingMonitor:
    """Epoch callback that draws live loss and validation-Sharpe curves.

    Parameters
    ----------
    title : str, default "Training"
        Heading shown above the curves.
    height : int, default 260
        Height of each chart in pixels.

    Notes
    -----
    Use it as ``callbacks=[monitor]`` in ``fit``, ``walk_forward`` or
    ``walk_forward_ensemble``. Each call receives a record with ``epoch``,
    ``train_loss`` (the training loss: negative Sharpe for the Sharpe loss),
    ``valid_sharpe`` (annualised, net of the model's ``cost_bps``) and ``seconds``, and
    optionally ``fold`` and ``member``. The monitor never stops training (it returns
    None); the records are available as a DataFrame in :attr:`records`.

    The boosted trees report every 10 trees (``epoch`` = trees so far) with a training
    log loss: their curves go to a second pair of charts (x = number of trees), shown
    once such a record arrives, so the epoch axis and the negative-Sharpe loss axis of
    the torch members are not mixed with them.
    """

    def __init__(self, title: str = "Training", height: int = 260):
        if not (isinstance(height, int | np.integer) and not isinstance(height, bool)
                and height > 0):
            raise ValueError(f"TrainingMonitor: height must be an int > 0, got {height!r}")
        self.title = title
        self.height = int(height)
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []
        self._sources: dict[str, tuple[ColumnDataSource, ColumnDataSource]] = {}
        self._loss_fig = self._figure("training loss")
        self._loss_fig.title.text = "Training loss (negative Sharpe for the Sharpe loss)"
        self._sharpe_fig = self._figure("validation Sharpe (annualised)")
        self._sharpe_fig.title.text = "Validation Sharpe (annualised)"
        self._sharpe_fig.x_range = self._loss_fig.x_range
        self._tree_loss_fig = self._figure("training log loss", unit="trees")
        self._tree_sharpe_fig = self._figure("validation Sharpe (annualised)", unit="trees")
        self._tree_sharpe_fig.x_range = self._tree_loss_fig.x_range
        self._tree_loss_fig.title.text = "Boosted trees: training log loss"
        self._tree_sharpe_fig.title.text = "Boosted trees: validation Sharpe (annualised)"
        self._figures = {"epoch": (self._loss_fig, self._sharpe_fig),
                         "trees": (self._tree_loss_fig, self._tree_sharpe_fig)}
        # filled and shown with the first tree record (empty charts log range warnings)
        self._trees_row = pn.Column(visible=False, sizing_mode="stretch_width")
        self._table = pn.widgets.Tabulator(
            pd.DataFrame(columns=list(_SUMMARY_COLUMNS)),
            disabled=True, show_index=False, height=180, sizing_mode="stretch_width",
            titles={"epochs": "epochs / trees", "best_epoch": "best at",
                    "best_valid_sharpe": "best validation Sharpe",
                    "last_train_loss": "last training loss"})
        self._status = pn.pane.Markdown("waiting for the first epoch ...")
        self._served = False

    # -- callback ------------------------------------------------------------
    def __call__(self, model: Any, record: dict) -> None:
        """Record one epoch (the ``fit`` callback signature); returns None (never stops)."""
        row = _row(model, record)
        with self._lock:
            self._rows.append(row)
            self._pending.append(row)
        if not self._served:
            self.flush()

    @property
    def records(self) -> pd.DataFrame:
        """All records so far as a DataFrame.

        Columns ``series, fold, member, epoch, train_loss, valid_sharpe, seconds, unit``
        (``unit``: ``"epoch"``, or ``"trees"`` for the boosted trees, whose ``epoch`` is
        the number of trees so far).
        """
        with self._lock:
            return pd.DataFrame(self._rows, columns=list(_COLUMNS))

    def clear(self) -> None:
        """Forget all records and curves."""
        with self._lock:
            self._rows.clear()
            self._pending.clear()
        for fig in (*self._figures["epoch"], *self._figures["trees"]):
            fig.renderers = []
            if fig.legend:
                fig.legend.items = []
        self._sources.clear()
        self._trees_row.visible = False
        self._table.value = self._table.value.iloc[0:0]
        self._status.object = "waiting for the first epoch ..."

    def flush(self) -> None:
        """Push records not yet drawn to the charts and the summary table."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        by_series: dict[str, list[dict]] = {}
        for r in pending:
            by_series.setdefault(r["series"], []).append(r)
        for name, rows in by_series.items():
            loss_src, sharpe_src = self._series(name, rows[0]["unit"])
            loss_src.stream({"epoch": [r["epoch"] for r in rows],
                             "value": [r["train_loss"] for r in rows]})
            sharpe_src.stream({"epoch": [r["epoch"] for r in rows],
                               "value": [r["valid_sharpe"] for r in rows]})
        self._table.value = self._summary()
        last = pending[-1]
        step = (f"{last['epoch']} trees" if last["unit"] == "trees"
                else f"{last['unit']} {last['epoch']}")
        self._status.object = (f"**{last['series']}**: {step}, "
                               f"train loss {last['train_loss']:.4f}, "
                               f"validation Sharpe {last['valid_sharpe']:.3f}")

    # -- layout --------------------------------------------------------------
    def panel(self) -> pn.viewable.Viewable:
        """The monitor as a Panel layout (display it in a notebook, or serve it)."""
        layout = pn.Column(
            pn.pane.Markdown(f"### {self.title}"),
            self._status,
            pn.Row(pn.pane.Bokeh(self._loss_fig, sizing_mode="stretch_width"),
                   pn.pane.Bokeh(self._sharpe_fig, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            self._trees_row,
            self._table,
            sizing_mode="stretch_width",
        )
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            # served: records may come from a training thread; draw from the document
            self._served = True
            pn.state.add_periodic_callback(self.flush, period=250)
        return layout

    def servable(self, title: str | None = None) -> pn.viewable.Viewable:
        """Mark :meth:`panel` servable (for ``panel serve``)."""
        return self.panel().servable(title=title or self.title)

    # -- internals -----------------------------------------------------------
    def _show_trees_row(self) -> None:
        if not len(self._trees_row):
            self._trees_row[:] = [
                pn.Row(pn.pane.Bokeh(self._tree_loss_fig, sizing_mode="stretch_width"),
                       pn.pane.Bokeh(self._tree_sharpe_fig, sizing_mode="stretch_width"),
                       sizing_mode="stretch_width")]
        self._trees_row.visible = True

    def _figure(self, ylabel: str, unit: str = "epoch"):
        xlabel = _UNIT_LABELS.get(unit, unit)
        fig = figure(height=self.height, sizing_mode="stretch_width", x_axis_label=xlabel,
                     y_axis_label=ylabel, toolbar_location="above",
                     tools="pan,wheel_zoom,box_zoom,reset,save")
        fig.add_tools(HoverTool(tooltips=[("series", "$name"), (xlabel, "@epoch"),
                                          ("value", "@value{0.0000}")]))
        return fig

    def _series(self, name: str, unit: str = "epoch"
                ) -> tuple[ColumnDataSource, ColumnDataSource]:
        if name not in self._sources:
            color = Category10_10[len(self._sources) % 10]
            srcs = (ColumnDataSource({"epoch": [], "value": []}),
                    ColumnDataSource({"epoch": [], "value": []}))
            figs = self._figures["trees" if unit == "trees" else "epoch"]
            if unit == "trees" and not self._trees_row.visible:
                self._show_trees_row()
            for fig, src in zip(figs, srcs, strict=True):
                fig.line("epoch", "value", source=src, color=color, line_width=2, name=name,
                         legend_label=name)
                fig.scatter("epoch", "value", source=src, color=color, size=4, name=name)
                fig.legend.location = "bottom_right"
                fig.legend.click_policy = "hide"
                fig.legend.background_fill_alpha = 0.5
                fig.legend.label_text_font_size = "8pt"
                fig.legend.spacing = 0
                fig.legend.padding = 4
            self._sources[name] = srcs
        return self._sources[name]

    def _summary(self) -> pd.DataFrame:
        df = self.records
        rows = []
        for name, g in df.groupby("series", sort=False):
            vs = g["valid_sharpe"]
            best = int(vs.idxmax()) if vs.notna().any() else None
            rows.append({
                "series": name,
                "unit": g["unit"].iloc[-1],
                "epochs": int(g["epoch"].max()),
                "best_epoch": int(g.loc[best, "epoch"]) if best is not None else None,
                "best_valid_sharpe": float(vs.max()) if best is not None else float("nan"),
                "last_train_loss": float(g["train_loss"].iloc[-1]),
            })
        return pd.DataFrame(rows, columns=list(_SUMMARY_COLUMNS)).round(
            {"best_valid_sharpe": 3, "last_train_loss": 4})


_SUMMARY_COLUMNS = ("series", "unit", "epochs", "best_epoch", "best_valid_sharpe",
                    "last_train_loss")


def _unit(model: Any) -> str:
    """Progress unit of ``model``'s records.

    Its ``history_unit`` if it declares one, ``"trees"`` for the boosted trees (records
    every 10 trees), else ``"epoch"``.
    """
    unit = getattr(model, "history_unit", None)
    if isinstance(unit, str) and unit:
        return unit
    if any(c.__name__ == "BoostedTreesModel" for c in type(model).__mro__):
        return "trees"
    return "epoch"


def _row(model: Any, record: Any) -> dict[str, Any]:
    if not isinstance(record, Mapping):
        raise TypeError("TrainingMonitor: record must be a mapping with 'epoch', "
                        f"'train_loss', 'valid_sharpe', got {type(record).__name__}")
    if "epoch" not in record:
        raise ValueError(f"TrainingMonitor: record has no 'epoch': {dict(record)!r}")
    try:
        epoch = int(record["epoch"])
    except (TypeError, ValueError):
        raise ValueError("TrainingMonitor: record 'epoch' must be an integer, got "
                         f"{record['epoch']!r}") from None
    member = record.get("member", type(model).__name__)
    fold = record.get("fold")
    series = str(member) if fold is None else f"fold {fold} · {member}"
    return {
        "series": series,
        "fold": fold,
        "member": member,
        "epoch": epoch,
        "train_loss": float(record.get("train_loss", float("nan"))),
        "valid_sharpe": float(record.get("valid_sharpe", float("nan"))),
        "seconds": float(record.get("seconds", float("nan"))),
        "unit": _unit(model),
    }


def _demo() -> pn.viewable.Viewable:
    """Served demo: walk-forward LSTM training on the bundled daily universe."""
    from workbench.backtest import walk_forward_splits
    from workbench.data import load_universe
    from workbench.models import DeepMomentumLSTM, MomentumDataset, walk_forward

    monitor = TrainingMonitor(title="Deep momentum LSTM: walk-forward training (live)")
    layout = monitor.panel()

    def train() -> None:
        ds = MomentumDataset.from_bars(load_universe("daily"))
        splits = walk_forward_splits(ds.index, test_years=4, min_train_years=8,
                                     valid_fraction=0.15, embargo=1)
        walk_forward(lambda k: DeepMomentumLSTM(hidden_size=16, epochs=15, patience=5,
                                                seed=k, device="cpu", progress=False),
                     ds, splits, progress=False, callbacks=[monitor])

    threading.Thread(target=train, daemon=True, name="training-monitor-demo").start()
    return layout


if __name__.startswith("bokeh_app"):  # panel serve widgets/training_monitor.py
    pn.extension("tabulator")
    _demo().servable(title="Training monitor")
