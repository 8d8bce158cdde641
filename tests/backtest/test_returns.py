import numpy as np
import pytest

from workbench.backtest import next_returns, portfolio_weights, strategy_returns, turnover

NAN = np.nan


def test_next_returns_alignment():
    close = np.array([[100.0], [110.0], [99.0]])
    np.testing.assert_allclose(next_returns(close)[:, 0], [0.1, -0.1, NAN])


def test_next_returns_run_to_the_assets_next_bar_across_a_gap():
    # a position decided at row 0 is held through the gap (no bar, no trade) and earns 110/100
    close = np.array([[100.0, 10.0], [NAN, 11.0], [110.0, NAN], [99.0, NAN], [NAN, 12.0]])
    np.testing.assert_allclose(next_returns(close), [[0.1, 0.1], [NAN, 12 / 11 - 1],
                                                     [-0.1, NAN], [NAN, NAN], [NAN, NAN]])
    # no return is lost: compounding the next returns over the bars gives the total move
    r = next_returns(close)[:, 0]
    assert np.nanprod(1 + r) == pytest.approx(99.0 / 100.0)


def test_strategy_returns_three_step_hand_example_with_costs():
    # one asset, target 0.15, c = 10 bps
    x = np.array([1.0, 1.0, -1.0])
    s = np.array([0.30, 0.15, 0.15])
    r = np.array([0.02, -0.01, 0.03])
    port, per = strategy_returns(x[:, None], s[:, None], r[:, None], target_vol=0.15, cost_bps=10)
    c = 10e-4
    # X/sigma: 1/0.3=3.333.., 1/0.15=6.666.., -6.666..; previous starts at 0
    exp = np.array([
        0.5 * 0.02 - c * 0.15 * (1 / 0.30),
        1.0 * -0.01 - c * 0.15 * abs(1 / 0.15 - 1 / 0.30),
        -1.0 * 0.03 - c * 0.15 * abs(-1 / 0.15 - 1 / 0.15),
    ])
    # by hand: 0.01 - 0.0005, -0.01 - 0.0005, -0.03 - 0.002
    np.testing.assert_allclose(exp, [0.0095, -0.0105, -0.032], rtol=1e-12)
    np.testing.assert_allclose(per[:, 0], exp, rtol=1e-12)
    np.testing.assert_allclose(port, exp, rtol=1e-12)


def test_strategy_returns_portfolio_mean_over_present_assets():
    x = np.array([[1.0, 1.0], [1.0, 1.0]])
    s = np.array([[0.15, NAN], [0.15, 0.30]])
    r = np.array([[0.01, 0.05], [0.02, -0.04]])
    port, per = strategy_returns(x, s, r)
    assert np.isnan(per[0, 1])
    np.testing.assert_allclose(port, [0.01, (0.02 + 0.5 * -0.04) / 2])


def test_strategy_returns_equals_portfolio_weights_dot_returns():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (50, 4))
    s = rng.uniform(0.05, 0.5, (50, 4))
    s[:10, 2] = NAN
    r = rng.normal(0, 0.01, (50, 4))
    port, _ = strategy_returns(x, s, r)
    w = portfolio_weights(x, s)
    np.testing.assert_allclose(port, (w * r).sum(axis=1), rtol=1e-12)


def test_strategy_returns_validation():
    with pytest.raises(ValueError, match="cost_bps"):
        strategy_returns(np.ones((2, 1)), np.ones((2, 1)), np.ones((2, 1)), cost_bps=-1)
    with pytest.raises(ValueError, match="next_returns"):
        strategy_returns(np.ones((2, 1)), np.ones((2, 1)), np.ones((3, 1)))


def test_turnover_definition():
    w = np.array([[0.5, 0.0], [0.5, 0.5], [-0.5, 0.5]])
    # diffs: |0|+|0.5| = 0.5, |-1|+0 = 1.0 -> mean 0.75 per bar
    assert turnover(w) == pytest.approx(0.75 * 252)
    assert turnover(np.array([[1.0, NAN], [1.0, 0.0]])) == 0.0


def test_a_gap_costs_only_the_change_across_it_as_if_its_rows_were_not_there():
    """No bar, no trade: a position is held through a gap, so the cost after the gap is for the
    change from the last bar before it (not a rebuild from flat), and the per-asset returns at
    the bars equal those of the same history with the gap rows removed."""
    rng = np.random.default_rng(3)
    close = 100 * np.cumprod(1 + rng.normal(0, 0.01, (12, 2)), axis=0)
    close[4:6, 0] = NAN  # asset 0 has no bar on rows 4-5 (e.g. its market is closed)
    close[8, 1] = NAN
    x = rng.uniform(-1, 1, (12, 2))
    s = rng.uniform(0.1, 0.3, (12, 2))
    s[np.isnan(close)] = NAN  # no bar, no sigma
    got = strategy_returns(x, s, next_returns(close), target_vol=0.15, cost_bps=20).per_asset
    for j in range(2):
        bars = np.isfinite(close[:, j])
        one = strategy_returns(x[bars, j:j + 1], s[bars, j:j + 1],
                               next_returns(close[bars, j:j + 1]), target_vol=0.15,
                               cost_bps=20).per_asset[:, 0]
        np.testing.assert_allclose(got[bars, j], one, rtol=1e-12, equal_nan=True)
        assert np.isnan(got[~bars, j]).all()
    # a constant position through the gap pays nothing after it
    flat = strategy_returns(np.ones((12, 2)), s, next_returns(close), cost_bps=20).per_asset
    gross = strategy_returns(np.ones((12, 2)), s, next_returns(close), cost_bps=0).per_asset
    c = 20e-4 * 0.15 * np.abs(1 / s[6, 0] - 1 / s[3, 0])
    assert flat[6, 0] == pytest.approx(gross[6, 0] - c, rel=1e-12, abs=1e-15)
