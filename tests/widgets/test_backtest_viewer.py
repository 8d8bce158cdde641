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
    # one line has no legend: the title names it
    assert eq.opts.get().kwargs["title"] == "Equity (growth of 1), 5 bps: LSTM (sharpe)"
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
    cmp["turnover"], cmp["mean gross"] = 3.5, 0.7
    cmp.to_csv(run / "comparison.csv", index=False)
    v = BacktestViewer(output_root=str(tmp_path))
    table = v.metrics_table()
    assert table.height is None  # no fixed height hiding rows behind a scroll bar
    assert table.layout == "fit_columns"  # every column within the page width
    assert table.formatters["annual return"].format == "0.00%"
    assert table.formatters["max drawdown"].format == "0.00%"
    assert "%" not in table.formatters["% positive"].format  # already in percent
    assert table.value["annual return"].iloc[0] == 0.1234  # the data stays a fraction
    assert list(table.value["strategy"]) == ["long-only", "LSTM (sharpe)"]


def test_viewer_metrics_table_headers_name_their_units(tmp_path):
    """Headers were cut to "annual ...", "max dr...", "% posit..." and strategy names to
    "Ensemble (equa"; units (annualised? multiples of equity?) were nowhere."""
    run = _fake_run(tmp_path, "20260101-000000")
    cmp = pd.read_csv(run / "comparison.csv")
    for col in ("annual return", "annual vol", "Sortino", "max drawdown", "Calmar",
                "% positive", "turnover", "mean gross"):
        cmp[col] = 0.5
    cmp.to_csv(run / "comparison.csv", index=False)
    v = BacktestViewer(output_root=str(tmp_path))
    table = v.metrics_table()
    assert "cost (bps)" not in table.value  # one cost level per view: named in the heading
    assert "5 bps" not in v.metrics_heading().object
    v.cost = "5"
    assert "Metrics at 5 bps" in v.metrics_heading().object
    titles = table.titles
    assert titles["annual return"] == "annual return (CAGR, %)"
    assert titles["annual vol"] == "annual vol (%)"
    assert titles["Sharpe"] == "Sharpe (annualised)"
    assert titles["max drawdown"] == "max drawdown (%)"
    assert titles["turnover"] == "turnover (x equity / yr)"
    assert titles["mean gross"] == "mean gross (x equity)"
    assert set(table.header_tooltips) == set(titles)  # every metric defined on hover
    assert table.widths["strategy"] >= 160  # "Ensemble (confidence)" fits
    defaults = table._configuration["columnDefaults"]
    assert defaults["headerWordWrap"] is True  # titles wrap
    assert defaults["minWidth"] >= 100  # a narrow window scrolls instead of clipping words
    assert {f.format for f in table.formatters.values()} <= {"0.00%", "0.000", "0.0", "0.00"}


def test_viewer_time_axis_fits_the_run_after_switching(tmp_path):
    """Equity and drawdown were rebuilt one at a time, each linked to the other's range of
    the previous run: after a switch from a 2004-2015 run to a 2009 one the curves filled a
    third of an axis still spanning 2004-2015."""
    from bokeh.models import Plot

    def run(name, start, periods):
        d = tmp_path / name
        d.mkdir()
        idx = pd.date_range(start, periods=periods, freq="B", tz="UTC")
        pd.DataFrame({"0|a": np.random.default_rng(0).normal(0, 0.01, periods)},
                     index=idx).to_parquet(d / "returns.parquet")
        pd.DataFrame([{"cost (bps)": 0.0, "strategy": "a", "Sharpe": 1.0}]).to_csv(
            d / "comparison.csv", index=False)

    run("20260101-000000", "2004-01-01", 3000)
    run("20260102-000000", "2009-01-01", 500)
    v = BacktestViewer(output_root=str(tmp_path))
    v.run = "20260101-000000"
    root = v.panel().get_root()

    def starts():
        plots = list(root.select({"type": Plot}))
        assert len(plots) == 2 and plots[0].x_range is plots[1].x_range  # time linked
        assert plots[0].y_range is not plots[1].y_range
        return pd.Timestamp(plots[0].x_range.start).year

    assert starts() == 2004
    v.run = "20260102-000000"
    assert starts() == 2009


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
        legends = list(root.select({"type": Legend}))
        assert legends and all(lg.title == "strategy" for lg in legends)
        # in the run's order (hvplot's sort by date scrambled it)
        assert [it.label.value for it in legends[0].items] == ["long-only", "LSTM (sharpe)"]
        labels = {label for h in root.select({"type": HoverTool}) for label, _ in h.tooltips}
        assert "strategy" in labels and "Variable" not in labels


@pytest.mark.parametrize("columns, values, match", [
    ([], [], "no strategy columns"),
    (["long-only"], [0.01], r"'long-only'.*<cost bps>\|<strategy>"),
    (["x|long-only"], [0.01], r"'x\|long-only'.*<cost bps>\|<strategy>"),
    (["0|long-only"], [np.inf], r"infinite.*'0\|long-only'"),
])
def test_load_run_names_the_file_and_the_bad_column(tmp_path, columns, values, match):
    """An empty or foreign returns.parquet was an IndexError or "could not convert string to
    float" deep inside the viewer; inf was a ValueError from the drawdown on first draw."""
    run = tmp_path / "20260101-000000"
    run.mkdir()
    idx = pd.date_range("2015-01-01", periods=3, freq="B", tz="UTC")
    pd.DataFrame({c: [v] * 3 for c, v in zip(columns, values)},
                 index=idx).to_parquet(run / "returns.parquet")
    pd.DataFrame([{"cost (bps)": 0.0, "strategy": "long-only"}]).to_csv(
        run / "comparison.csv", index=False)
    with pytest.raises(ValueError, match=match) as err:
        load_run(run)
    assert "returns.parquet" in str(err.value)


def test_load_run_unreadable_files_are_value_errors(tmp_path):
    run = _fake_run(tmp_path, "20260101-000000")
    (run / "run.json").write_text("{not json")
    with pytest.raises(ValueError, match="run.json"):
        load_run(run)
    run = _fake_run(tmp_path, "20260102-000000")
    (run / "returns.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="returns.parquet"):
        load_run(run)


def test_viewer_shows_a_run_it_cannot_load_as_a_message(tmp_path):
    """The app crashed on start (IndexError) when the newest run had an empty results file."""
    _fake_run(tmp_path, "20260101-000000")
    bad = tmp_path / "20260102-000000"
    _fake_run(tmp_path, bad.name)
    pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC")).to_parquet(bad / "returns.parquet")
    v = BacktestViewer(output_root=str(tmp_path))
    assert v.run == bad.name and v.cost is None and v.strategies == []
    for view in (v.charts(), v.equity_plot()):
        assert isinstance(view, pn.pane.Markdown)
        assert "cannot be shown" in view.object and "no strategy columns" in view.object
    assert isinstance(v.metrics_table(), pn.pane.Markdown)
    pn.Row(v.panel()).get_root()  # renders
    v.run = "20260101-000000"  # the good run still works
    assert v.strategies == ["long-only", "LSTM (sharpe)"] and v.cost == "0"
    assert not isinstance(v.charts(), pn.pane.Markdown)


def test_viewer_run_without_rows_says_so(tmp_path):
    run = _fake_run(tmp_path, "20260101-000000")
    pd.DataFrame({"0|long-only": []}, index=pd.DatetimeIndex([], tz="UTC")).to_parquet(
        run / "returns.parquet")
    v = BacktestViewer(output_root=str(tmp_path))
    msg = v.equity_plot()
    assert isinstance(msg, pn.pane.Markdown) and "no returns" in msg.object
