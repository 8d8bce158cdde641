import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from workbench.backtest import (
    portfolio_weights,
    run_backtest,
    strategy_returns,
    turnover,
)

pytest.importorskip("vectorbt")


def _panel(T=200, N=4, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2020-01-01", periods=T, freq="D", tz="UTC")
    close = pd.DataFrame(
        100 * np.exp(np.cumsum(rng.normal(0, 0.015, (T, N)), axis=0)),
        index=idx, columns=[f"A{j}" for j in range(N)],
    )
    close.iloc[:30, 1] = np.nan  # listed late
    r = close.pct_change(fill_method=None)
    sigma = (r.ewm(span=20, min_periods=10).std() * np.sqrt(252)).where(close.notna())
    x = np.sign(rng.normal(size=(T, N)))
    return close, sigma, x


def test_import_is_light():
    code = (
        "import sys, workbench.backtest, workbench.risk; "
        "print(sorted(m for m in ('vectorbt', 'torch', 'panel') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_run_backtest_equals_strategy_returns_without_fees():
    close, sigma, x = _panel()
    w = portfolio_weights(x, sigma.to_numpy(), max_gross=1.0)
    weights = pd.DataFrame(w, index=close.index, columns=close.columns)
    res = run_backtest(close, weights)
    # numpy reference with the same (capped) weights: R_t = sum_j w_tj r_{t+1,j}
    nxt = (close.shift(-1) / close - 1).to_numpy()
    ref = np.nansum(w * nxt, axis=1)[:-1]
    np.testing.assert_allclose(res.returns.to_numpy()[1:], ref, rtol=1e-9, atol=1e-14)
    assert res.returns.iloc[0] == 0.0
    assert res.fees_paid == 0.0
    assert res.turnover == pytest.approx(turnover(weights.fillna(0.0)))
    np.testing.assert_allclose(res.equity.iloc[-1], 1e6 * np.prod(1 + res.returns), rtol=1e-9)


def test_an_asset_whose_history_ends_is_sold_at_its_last_close():
    idx = pd.date_range("2020-01-01", periods=6, freq="D", tz="UTC")
    close = pd.DataFrame({"A": [100, 101, 102, 103, 104, 105.0],
                          "B": [50, 51, 52, np.nan, np.nan, np.nan]}, index=idx)
    w = pd.DataFrame({"A": [0.5, 0.5, 0.5, 1, 1, 1.0],
                      "B": [0.5, 0.5, 0.5, np.nan, np.nan, np.nan]}, index=idx)
    res = run_backtest(close, w)
    assert res.weights.loc[idx[2], "B"] == 0.0  # exit at B's last close
    assert res.portfolio.assets().to_numpy()[3:, 1].tolist() == [0.0, 0.0, 0.0]
    sent = w.copy()
    sent.loc[idx[2], "B"] = 0.0
    nxt = (close.shift(-1) / close - 1).to_numpy()
    ref = np.nansum(sent.to_numpy() * nxt, axis=1)[:-1]  # B's cash earns nothing, A all of it
    np.testing.assert_allclose(res.returns.to_numpy()[1:], ref, rtol=1e-12, atol=1e-15)
    assert res.returns.iloc[4] == pytest.approx(104 / 103 - 1, rel=1e-12)


def test_turnover_does_not_count_a_gap_in_an_assets_history():
    idx = pd.date_range("2020-01-01", periods=8, freq="D", tz="UTC")
    close = pd.DataFrame({"A": [100, 101, np.nan, 103, 104, 105, 106, 107.0]}, index=idx)
    held = run_backtest(close, pd.DataFrame({"A": [1.0] * 8}, index=idx).where(close.notna()))
    assert held.turnover == 0.0  # held through the gap: nothing traded
    # the gap still holds the position: A's return over it is realised at the next bar
    assert held.returns.iloc[3] == pytest.approx(103 / 101 - 1, rel=1e-12)
    flipped = pd.DataFrame({"A": [1.0, 1, np.nan, -1, -1, -1, -1, -1]}, index=idx)
    assert run_backtest(close, flipped).turnover == pytest.approx(2.0 * 252 / 7)


def test_run_backtest_takes_bars_and_an_array_of_weights():
    from workbench.data import Bars

    close, sigma, x = _panel(seed=5)
    w = portfolio_weights(x, sigma.to_numpy(), max_gross=1.0)
    ref = run_backtest(close, pd.DataFrame(w, index=close.index, columns=close.columns),
                       fees_bps=5.0)
    bars = Bars.from_wide({f: close for f in ("open", "high", "low", "close")})
    res = run_backtest(bars, w, fees_bps=5.0)  # close from the panel; weights in its order
    pd.testing.assert_series_equal(res.returns, ref.returns, check_names=False,
                                   check_index_type=False, check_freq=False)
    np.testing.assert_array_equal(res.weights.to_numpy(), ref.weights.to_numpy())
    assert list(res.weights.columns) == list(close.columns)
    with pytest.raises(ValueError, match=r"weights has shape \(3, 2\) but close has shape"):
        run_backtest(bars, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="close must be a pandas.DataFrame of close prices "
                                         "or a Bars panel, got ndarray"):
        run_backtest(close.to_numpy(), w)
    with pytest.raises(ValueError, match="weights must be a pandas.DataFrame or a numpy "
                                         "array, got list"):
        run_backtest(close, w.tolist())


def test_run_backtest_matches_strategy_returns_uncapped():
    # a book with gross <= 1 without capping: identical to the numpy strategy_returns portfolio
    close, sigma, x = _panel(seed=3)
    sig = np.maximum(sigma.to_numpy(), 0.6)  # low leverage: gross <= 0.25 / 0.15... <= 1
    w = portfolio_weights(x, sig, target_vol=0.15)
    assert np.abs(w).sum(axis=1).max() <= 1.0
    res = run_backtest(close, pd.DataFrame(w, index=close.index, columns=close.columns))
    nxt = (close.shift(-1) / close - 1).to_numpy()
    port, _ = strategy_returns(x, sig, nxt, target_vol=0.15)
    ok = np.isfinite(port[:-1])
    np.testing.assert_allclose(res.returns.to_numpy()[1:][ok], port[:-1][ok], rtol=1e-9,
                               atol=1e-14)


def test_run_backtest_fees_lower_returns_by_fee_amount():
    close, sigma, x = _panel(seed=5)
    w = portfolio_weights(x, sigma.to_numpy(), max_gross=1.0)
    weights = pd.DataFrame(w, index=close.index, columns=close.columns)
    free = run_backtest(close, weights)
    paid = run_backtest(close, weights, fees_bps=10.0)
    assert paid.fees_paid > 0
    assert paid.equity.iloc[-1] < free.equity.iloc[-1]
    # exact accounting: R_t = sum_j h_{t-1,j} r_{t,j} - fees_t / V_{t-1}, h = held weights
    fees_t = (
        paid.portfolio.orders.records_readable.groupby("Timestamp")["Fees"].sum()
        .reindex(close.index, fill_value=0.0).to_numpy()
    )
    v = paid.equity.to_numpy()
    v_prev = np.concatenate([[1e6], v[:-1]])
    held = paid.portfolio.asset_value(group_by=False).to_numpy() / v[:, None]
    r = np.nan_to_num((close / close.shift(1) - 1).to_numpy())
    gross_t = np.concatenate([[0.0], (held[:-1] * r[1:]).sum(axis=1)])
    np.testing.assert_allclose(paid.returns.to_numpy(), gross_t - fees_t / v_prev, rtol=1e-9,
                               atol=1e-15)
    assert paid.returns.iloc[0] == pytest.approx(-fees_t[0] / 1e6)
    # held weights miss the targets only by the fee paid (second order: fee x weight)
    assert np.nanmax(np.abs(held - w)) <= 10e-4 * 2 * np.abs(w).max()
    np.testing.assert_allclose(paid.returns.to_numpy() + fees_t / v_prev, free.returns.to_numpy(),
                               atol=5e-5)
    # total fee drag is about fee * traded notional
    traded = np.abs(np.diff(np.vstack([np.zeros((1, w.shape[1])), w]), axis=0)).sum()
    assert paid.fees_paid / 1e6 == pytest.approx(10e-4 * traded, rel=0.1)


def test_run_backtest_rejects_net_leverage_and_bad_weights():
    close, _, _ = _panel(T=20, N=2)
    close.iloc[:, 1] = close.iloc[:, 1].fillna(50.0)
    w = pd.DataFrame(0.0, index=close.index, columns=close.columns)
    w.iloc[3] = [0.8, 0.8]
    with pytest.raises(ValueError, match="net weight"):
        run_backtest(close, w)
    w.iloc[3] = [1.5, -1.5]  # gross 3, net 0: vectorbt fills this exactly
    res = run_backtest(close, w)
    held = res.portfolio.asset_value(group_by=False).iloc[3] / res.equity.iloc[3]
    np.testing.assert_allclose(held.to_numpy(), [1.5, -1.5], rtol=1e-9)
    with pytest.raises(ValueError, match="max_gross"):
        run_backtest(close, w, max_gross=1.0)
    close2 = close.copy()
    close2.iloc[:5, 0] = np.nan
    w2 = pd.DataFrame(0.1, index=close.index, columns=close.columns)
    with pytest.raises(ValueError, match="close is NaN"):
        run_backtest(close2, w2)
    with pytest.raises(ValueError, match="fees_bps"):
        run_backtest(close, w2, fees_bps=-1)
    # a string or a bool is named too (np.isfinite raised a bare TypeError on "5")
    with pytest.raises(ValueError, match="fees_bps must be a finite number >= 0, got '5'"):
        run_backtest(close, w2, fees_bps="5")
    with pytest.raises(ValueError, match="init_cash must be a finite number > 0, got True"):
        run_backtest(close, w2, init_cash=True)


def test_run_backtest_nan_weight_with_bar_means_flat():
    close, _, _ = _panel(T=30, N=2)
    close.iloc[:, 1] = close.iloc[:, 1].fillna(50.0)
    w = pd.DataFrame(0.4, index=close.index, columns=close.columns)
    w_nan = w.copy()
    w_nan.iloc[10:, 0] = np.nan  # NaN where a bar exists -> flat, not "keep the old position"
    w_zero = w.copy()
    w_zero.iloc[10:, 0] = 0.0
    a, b = run_backtest(close, w_nan), run_backtest(close, w_zero)
    np.testing.assert_allclose(a.returns.to_numpy(), b.returns.to_numpy(), rtol=1e-12)
    assert a.portfolio.asset_value(group_by=False).iloc[-1, 0] == 0.0


def test_a_position_held_through_a_gap_that_overfills_the_book_warns():
    idx = pd.date_range("2020-01-01", periods=8, freq="D", tz="UTC")
    close = pd.DataFrame({"A": [100, 101, 102, 103, 104, 105, 106, 107.0],
                          "B": [50, 51, 52, np.nan, 53, 54, 55, 56.0]}, index=idx)
    sigma = np.where(close.notna(), 0.15, np.nan)
    # on B's gap A gets the whole budget while B is still held: a book of about 1.5
    w = portfolio_weights(np.ones((8, 2)), sigma, max_gross=1.0)
    with pytest.warns(RuntimeWarning, match=r"2020-01-04.*gap in B .* net weight is about 1.5"):
        res = run_backtest(close, w)
    held = res.portfolio.asset_value(group_by=False).to_numpy() / res.equity.to_numpy()[:, None]
    assert held[3, 0] < 0.51  # vectorbt could not buy A up to 1.0
    # half weights leave room for the held position: no warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_backtest(close, w * 0.5)
        run_backtest(close.dropna(), np.full((7, 2), 0.5))  # no gap: no warning


def test_turnover_is_annualised_with_periods_per_year():
    close, sigma, x = _panel(T=60, N=2, seed=2)
    close.iloc[:, 1] = close.iloc[:, 1].fillna(50.0)
    w = pd.DataFrame(np.where(np.arange(60)[:, None] % 2, 0.4, -0.4) * [1, 1],
                     index=close.index, columns=close.columns)
    daily = run_backtest(close, w)
    hourly = run_backtest(close, w, freq="1h", periods_per_year=252 * 24)
    assert daily.turnover == pytest.approx(0.8 * 2 * 252)
    assert hourly.turnover == pytest.approx(daily.turnover * 24)
    with pytest.raises(ValueError, match="periods_per_year"):
        run_backtest(close, w, periods_per_year=0)
