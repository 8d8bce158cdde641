import numpy as np
import pandas as pd
import pytest

from workbench.backtest import METRIC_COLUMNS, metrics_table, performance_metrics

VBT_NAMES = {
    "annual return": "annualized",
    "annual vol": "annualized_volatility",
    "Sharpe": "sharpe_ratio",
    "Sortino": "sortino_ratio",
    "max drawdown": "max_drawdown",
    "Calmar": "calmar_ratio",
}


@pytest.mark.parametrize("seed,with_nan", [(0, False), (1, False), (2, True)])
def test_metrics_match_vectorbt(seed, with_nan):
    pytest.importorskip("vectorbt")
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0004, 0.012, 700)
    r[0] = -0.5  # the curve starts with a loss: the starting equity is the first peak
    if with_nan:
        r[[0, 5, 300]] = np.nan
    idx = pd.date_range("2015-01-01", periods=r.size, freq="D", tz="UTC")
    acc = pd.Series(r, index=idx).vbt.returns(freq="1D", year_freq="252 days")
    ours = performance_metrics(r, turnover=3.0)
    for col, meth in VBT_NAMES.items():
        expected = float(getattr(acc, meth)())
        if col in ("max drawdown", "Calmar"):  # vectorbt's peak starts at the first period's
            # equity; ours at the starting equity 1, i.e. vectorbt's after a zero return
            head = pd.Series(np.r_[0.0, r], index=pd.date_range("2014-12-31", periods=r.size + 1,
                                                               freq="D", tz="UTC"))
            mdd = float(head.vbt.returns(freq="1D", year_freq="252 days").max_drawdown())
            if not with_nan:  # (a NaN first period is a zero return: same peak)
                assert mdd < float(acc.max_drawdown())
            expected = mdd if col == "max drawdown" else ours["annual return"] / abs(mdd)
        assert ours[col] == pytest.approx(expected, rel=1e-9, abs=1e-15), col
    valid = r[~np.isnan(r)]
    assert ours["% positive"] == pytest.approx(100 * np.mean(valid > 0))
    assert ours["turnover"] == 3.0


def test_metrics_hand_case():
    r = np.array([0.1, -0.2, 0.05, 0.0])
    m = performance_metrics(r, periods_per_year=4)
    assert m["annual return"] == pytest.approx(1.1 * 0.8 * 1.05 - 1)
    assert m["max drawdown"] == pytest.approx(-0.2)
    from workbench.risk import max_drawdown

    first_loss = np.array([-0.1, 0.05, 0.05])  # never back above the starting equity
    assert performance_metrics(first_loss)["max drawdown"] == pytest.approx(-0.1)
    assert performance_metrics(first_loss)["max drawdown"] == max_drawdown(first_loss)
    assert m["% positive"] == pytest.approx(50.0)
    assert np.isnan(m["turnover"])
    assert m["Sharpe"] == pytest.approx(np.mean(r) / np.std(r, ddof=1) * 2)


def test_metrics_table_shape_and_columns():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(0, 0.01, (100, 2)), columns=["a", "b"])
    tbl = metrics_table(df, turnovers={"a": 1.5})
    assert list(tbl.columns) == list(METRIC_COLUMNS)
    assert list(tbl.index) == ["a", "b"]
    assert tbl.loc["a", "turnover"] == 1.5 and np.isnan(tbl.loc["b", "turnover"])
    tbl2 = metrics_table({"x": df["a"]})
    assert tbl2.loc["x", "Sharpe"] == pytest.approx(tbl.loc["a", "Sharpe"])
    with pytest.raises(ValueError, match="returns"):
        metrics_table({})


def test_sharpe_and_sortino_of_constant_series():
    flat = performance_metrics(np.zeros(50))
    assert np.isnan(flat["Sharpe"]) and np.isnan(flat["Sortino"])  # 0 / 0, not +inf
    losing = performance_metrics(np.full(50, -0.01))  # std is ~1e-18 from rounding, not 0
    assert losing["Sharpe"] == -np.inf and losing["Sortino"] < 0
    winning = performance_metrics(np.full(50, 0.01))
    assert winning["Sharpe"] == np.inf and winning["Sortino"] == np.inf
    # a flat strategy does not top a table sorted by Sharpe
    tbl = metrics_table({"flat": np.zeros(50), "ok": np.r_[0.01, -0.005].repeat(25)})
    assert tbl.sort_values("Sharpe", ascending=False).index[0] == "ok"
