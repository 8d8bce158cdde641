import numpy as np
import pandas as pd
import pytest

from workbench.backtest import compare_strategies, performance_metrics


@pytest.fixture
def panel():
    rng = np.random.default_rng(0)
    T, N = 300, 3
    idx = pd.date_range("2010-01-01", periods=T, freq="B", tz="UTC")
    close = pd.DataFrame(100 * np.cumprod(1 + rng.normal(0.0003, 0.01, (T, N)), axis=0),
                         index=idx, columns=["A", "B", "C"])
    close.iloc[:50, 2] = np.nan  # C lists later
    sigma = np.where(close.notna(), 0.2, np.nan)
    pos = {"long": np.ones((T, N)), "flip": np.sign(rng.normal(size=(T, N)))}
    return close, sigma, pos


def test_table_layout_and_cost_monotonicity(panel):
    close, sigma, pos = panel
    rows = np.zeros(len(close), bool)
    rows[100:] = True
    cmp = compare_strategies(pos, close, sigma, rows=rows, cost_levels_bps=(0, 10, 50))
    assert list(cmp.table.index) == [(c, s) for c in (0.0, 10.0, 50.0) for s in ("long", "flip")]
    assert cmp.returns.shape == (200, 6)
    assert cmp.returns.index[0] == close.index[100]
    ann = cmp.table["annual return"]
    # Costs only ever lower returns, and more for the high-turnover strategy.
    assert ann[(0.0, "flip")] > ann[(10.0, "flip")] > ann[(50.0, "flip")]
    drop_flip = ann[(0.0, "flip")] - ann[(50.0, "flip")]
    drop_long = ann[(0.0, "long")] - ann[(50.0, "long")]
    assert drop_flip > 10 * drop_long
    m = performance_metrics(cmp.results[(10.0, "flip")].returns,
                            turnover=cmp.results[(10.0, "flip")].turnover)
    assert m["Sharpe"] == pytest.approx(cmp.table.loc[(10.0, "flip"), "Sharpe"])
    # Vol targeting 15% / 20% vol, split over the assets present, capped at 1x gross.
    assert cmp.table.loc[(0.0, "long"), "mean gross"] == pytest.approx(0.75, abs=1e-9)
    assert list(cmp.returns_at(10.0).columns) == ["long", "flip"]
    with pytest.raises(KeyError, match="cost level 3"):
        cmp.returns_at(3)


def test_takes_a_bars_panel(panel):
    from workbench.data import Bars

    close, sigma, pos = panel
    bars = Bars.from_wide({f: close for f in ("open", "high", "low", "close")})
    ref = compare_strategies(pos, close, sigma, cost_levels_bps=(0, 10))
    got = compare_strategies(pos, bars, sigma, cost_levels_bps=(0, 10))
    pd.testing.assert_frame_equal(got.table, ref.table)
    np.testing.assert_array_equal(got.returns.to_numpy(), ref.returns.to_numpy())


def test_bad_inputs(panel):
    close, sigma, pos = panel
    with pytest.raises(ValueError, match=r"positions\['bad'\] has shape \(3, 3\)"):
        compare_strategies({"bad": np.ones((3, 3))}, close, sigma)
    with pytest.raises(ValueError, match="rows selects no timestamps"):
        compare_strategies(pos, close, sigma, rows=np.zeros(len(close), bool))
    with pytest.raises(ValueError, match="close must be a pandas.DataFrame of close prices"):
        compare_strategies(pos, close.to_numpy(), sigma)
    sig = pd.DataFrame(sigma, index=close.index, columns=close.columns)
    with pytest.raises(ValueError, match="sigma and close have different columns"):
        compare_strategies(pos, close, sig[["C", "B", "A"]])
