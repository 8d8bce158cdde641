import json

import numpy as np
import pandas as pd
import pytest

pn = pytest.importorskip("panel")

from widgets.backtest_viewer import BacktestViewer, load_run  # noqa: E402


def _fake_run(root, name, strategies=("long-only", "LSTM (sharpe)"), costs=(0.0, 5.0)):
    run = root / name
    run.mkdir(parents=True)
    idx = pd.date_range("2015-01-01", periods=50, freq="B", tz="UTC")
    rng = np.random.default_rng(0)
    rets = pd.DataFrame({f"{c:g}|{s}": rng.normal(0, 0.01, 50) for c in costs for s in strategies},
                        index=idx)
    rets.to_parquet(run / "returns.parquet")
    rows = [{"cost (bps)": c, "strategy": s, "Sharpe": 1.0} for c in costs for s in strategies]
    pd.DataFrame(rows).to_csv(run / "comparison.csv", index=False)
    (run / "run.json").write_text(json.dumps({"run": name, "status": "ok",
                                              "parameters": {"seed": 1}}))
    return run


def test_viewer_lists_runs_and_switches(tmp_path):
    _fake_run(tmp_path, "20260101-000000")
    _fake_run(tmp_path, "20260102-000000", strategies=("TSMOM",), costs=(0.0, 10.0))
    (tmp_path / "20260103-000000").mkdir()  # a failed run without results is not offered
    v = BacktestViewer(output_root=str(tmp_path))
    assert v.param.run.objects == ["20260102-000000", "20260101-000000"]
    assert v.run == "20260102-000000" and v.strategies == ["TSMOM"]
    assert v.param.cost.objects == ["0", "10"]
    v.run = "20260101-000000"
    assert v.strategies == ["long-only", "LSTM (sharpe)"]
    assert v.param.cost.objects == ["0", "5"]
    v.cost = "5"
    v.strategies = ["LSTM (sharpe)"]
    eq = v.equity_plot()
    assert "5 bps" in eq.opts.get().kwargs["title"]
    table = v.metrics_table()
    assert list(table.value["strategy"]) == ["long-only", "LSTM (sharpe)"]
    assert isinstance(v.panel(), pn.Row)


def test_viewer_without_runs_and_load_errors(tmp_path):
    v = BacktestViewer(output_root=str(tmp_path))
    assert v.run is None
    assert isinstance(v.equity_plot(), pn.pane.Markdown)
    (tmp_path / "x").mkdir()
    with pytest.raises(FileNotFoundError, match="no returns.parquet"):
        load_run(tmp_path / "x")


def test_viewer_empty_strategy_selection_says_so(tmp_path):
    _fake_run(tmp_path, "20260101-000000")
    v = BacktestViewer(output_root=str(tmp_path))
    v.strategies = []
    msg = v.equity_plot()
    assert isinstance(msg, pn.pane.Markdown)
    assert "at least one strategy" in msg.object and "make report" not in msg.object
    assert isinstance(v.drawdown_plot(), pn.pane.Markdown)


def test_viewer_equity_and_drawdown_axes_are_not_linked(tmp_path):
    """Equity (around 1) and drawdown (<= 0) need their own value axes; time stays linked."""
    from bokeh.models import Plot

    _fake_run(tmp_path, "20260101-000000")
    v = BacktestViewer(output_root=str(tmp_path))
    root = pn.Column(pn.pane.HoloViews(v.equity_plot()),
                     pn.pane.HoloViews(v.drawdown_plot())).get_root()
    equity, drawdown = root.select({"type": Plot})
    assert equity.x_range is drawdown.x_range
    assert equity.y_range is not drawdown.y_range
    assert v.drawdown_plot().opts.get().kwargs["title"] == "Drawdown, 0 bps"


def test_viewer_legend_fits_many_strategies(tmp_path):
    names = tuple(f"strategy {k}" for k in range(12))
    _fake_run(tmp_path, "20260101-000000", strategies=names)
    v = BacktestViewer(output_root=str(tmp_path))
    # 12 legend entries need more than the default 320 / 240 px
    assert v.equity_plot().opts.get().kwargs["height"] >= 22 * 12 + 110
    assert v.drawdown_plot().opts.get().kwargs["height"] >= 22 * 12 + 110
    v.strategies = list(names[:2])
    assert v.equity_plot().opts.get().kwargs["height"] == 320


def test_viewer_metrics_table_shows_every_row_and_fractions_in_percent(tmp_path):
    run = _fake_run(tmp_path, "20260101-000000")
    cmp = pd.read_csv(run / "comparison.csv")
    cmp["annual return"], cmp["max drawdown"], cmp["% positive"] = 0.1234, -0.2, 55.0
    cmp.to_csv(run / "comparison.csv", index=False)
    v = BacktestViewer(output_root=str(tmp_path))
    table = v.metrics_table()
    assert table.height is None  # no fixed height hiding rows behind a scroll bar
    assert table.layout == "fit_columns"  # every column within the page width
    assert table.formatters["annual return"].format == "0.00%"
    assert table.formatters["max drawdown"].format == "0.00%"
    assert "% positive" not in table.formatters  # already in percent
    assert table.value["annual return"].iloc[0] == 0.1234  # the data stays a fraction


def test_viewer_controls_fit_their_column(tmp_path):
    _fake_run(tmp_path, "20260101-000000")
    layout = BacktestViewer(output_root=str(tmp_path)).panel()
    column = layout[0]
    selects = column.select(pn.widgets.Select)
    assert len(selects) == 2  # run and cost
    for w in selects:
        assert w.width <= column.width - 20, w


def test_viewer_legends_and_hover_name_the_strategy(tmp_path):
    """The curves are grouped by strategy: the legend title says so (not hvplot's "Variable")."""
    from bokeh.models import HoverTool, Legend

    _fake_run(tmp_path, "20260101-000000")
    v = BacktestViewer(output_root=str(tmp_path))
    for plot in (v.equity_plot(), v.drawdown_plot()):
        root = pn.pane.HoloViews(plot).get_root()
        legends = root.select({"type": Legend})
        assert legends and all(lg.title == "strategy" for lg in legends)
        labels = {label for h in root.select({"type": HoverTool}) for label, _ in h.tooltips}
        assert "strategy" in labels and "Variable" not in labels
