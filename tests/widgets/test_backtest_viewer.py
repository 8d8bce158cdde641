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
