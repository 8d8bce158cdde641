import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.backtest import (
    long_only,
    macd_baseline,
    macd_response,
    portfolio_weights,
    tsmom,
    vol_target_weights,
)

NAN = np.nan


def test_long_only_ones_where_bar_and_sigma():
    close = np.array([[NAN, 10.0], [1.0, 11.0], [1.1, NAN], [1.2, 12.0]])
    sigma = np.array([[NAN, 0.2], [NAN, 0.2], [0.3, 0.2], [0.3, 0.0]])
    np.testing.assert_array_equal(long_only(close), [[0, 1], [1, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(long_only(close, sigma), [[0, 1], [0, 1], [1, 0], [1, 0]])


def test_long_only_keeps_frame_and_rejects_bad_price():
    idx = pd.date_range("2020-01-01", periods=2, tz="UTC")
    df = pd.DataFrame({"a": [1.0, 2.0]}, index=idx)
    out = long_only(df)
    assert isinstance(out, pd.DataFrame) and out.index.equals(idx)
    with pytest.raises(ValueError, match=r"close must be > 0 where present; got -2.0 at row 1, "
                                         r"column 0"):
        long_only(np.array([[1.0], [-2.0]]))
    with pytest.raises(ValueError, match=r"close must not be infinite; got inf at "
                                         r"2020-01-02 00:00:00\+00:00, symbol 'a'"):
        tsmom(df.where(df < 2, np.inf))


def test_tsmom_hand_case():
    # lookback 2 over the asset's own bars; column b has a NaN gap that is skipped
    close = np.array(
        [[10.0, 5.0], [11.0, NAN], [9.0, 6.0], [12.0, 4.0], [12.0, 7.0], [8.0, 7.0]]
    )
    out = tsmom(close, lookback=2)
    # a: t=2: 9/10-1<0 -> -1; t=3: 12/11>1 -> 1; t=4: 12/9 -> 1; t=5: 8/12 -> -1
    # b valid bars 5,6,4,7,7 at rows 0,2,3,4,5: row3: 4/5 -> -1; row4: 7/6 -> 1; row5: 7/4 -> 1
    expected = np.array([[0, 0], [0, 0], [-1, 0], [1, -1], [1, 1], [-1, 1]], dtype=float)
    np.testing.assert_array_equal(out, expected)


def test_tsmom_zero_change_is_flat_and_bad_lookback():
    out = tsmom(np.array([1.0, 1.0, 1.0]), lookback=1)
    np.testing.assert_array_equal(out[:, 0], [0, 0, 0])
    with pytest.raises(ValueError, match="lookback"):
        tsmom(np.ones((3, 1)), lookback=0)


def test_macd_response_values():
    assert macd_response(0.0) == 0.0
    assert macd_response(2.0) == pytest.approx(2.0 * np.exp(-1.0) / 0.89, rel=1e-15)
    assert macd_response(-2.0) == pytest.approx(-macd_response(2.0))
    y = np.linspace(-20, 20, 100001)
    phi = macd_response(y)
    assert np.nanmax(np.abs(phi)) == pytest.approx(np.sqrt(2) * np.exp(-0.5) / 0.89, rel=1e-6)
    assert np.abs(phi).max() < 0.97


def test_macd_baseline_mean_of_responses_and_raw():
    y = np.array([[[1.0, 2.0, -1.0], [0.5, NAN, 0.5]]])  # (T=1, N=2, K=3)
    expected0 = (macd_response(1.0) + macd_response(2.0) + macd_response(-1.0)) / 3
    out = macd_baseline(y)
    assert out.shape == (1, 2)
    assert out[0, 0] == pytest.approx(expected0, rel=1e-14)
    assert out[0, 1] == 0.0  # incomplete signals -> flat
    raw = macd_baseline(y, response=False)
    assert raw[0, 0] == pytest.approx(2.0 / 3.0)
    with pytest.raises(ValueError, match="signals"):
        macd_baseline(np.ones((3, 2)))


def test_vol_target_weights_arithmetic():
    x = np.array([[1.0, -0.5, 1.0, NAN]])
    s = np.array([[0.30, 0.10, NAN, 0.2]])
    w = vol_target_weights(x, s, target_vol=0.15)
    np.testing.assert_allclose(w, [[0.5, -0.75, 0.0, 0.0]], rtol=1e-15)
    wc = vol_target_weights(x, s, target_vol=0.15, max_weight=0.6)
    np.testing.assert_allclose(wc, [[0.5, -0.6, 0.0, 0.0]])
    with pytest.raises(ValueError, match="target_vol"):
        vol_target_weights(x, s, target_vol=0.0)
    with pytest.raises(ValueError, match="sigma"):
        vol_target_weights(x, s[:, :2])


def test_portfolio_weights_equal_budget_and_gross_cap():
    x = np.array([[1.0, 1.0, 1.0], [1.0, -1.0, 0.0]])
    s = np.array([[0.15, 0.075, NAN], [0.05, 0.05, 0.15]])
    w = portfolio_weights(x, s)
    # row0: 2 assets present: (1, 2) / 2; row1: 3 present: (3, -3, 0) / 3
    np.testing.assert_allclose(w, [[0.5, 1.0, 0.0], [1.0, -1.0, 0.0]])
    wc = portfolio_weights(x, s, max_gross=1.0)
    np.testing.assert_allclose(wc, [[1 / 3, 2 / 3, 0.0], [0.5, -0.5, 0.0]])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1, 1), min_size=4, max_size=4),
    st.lists(st.floats(0.01, 2.0), min_size=4, max_size=4),
    st.floats(0.1, 3.0),
)
def test_gross_cap_property(xs, ss, cap):
    w = portfolio_weights(np.array([xs]), np.array([ss]), max_gross=cap)
    assert np.abs(w).sum() <= cap * (1 + 1e-12)
    w_free = portfolio_weights(np.array([xs]), np.array([ss]))
    # the cap only rescales: signs and proportions are kept
    assert np.all(np.sign(w) == np.sign(w_free))


def test_dataframes_with_different_labels_are_refused():
    idx = pd.date_range("2020-01-01", periods=5, freq="D", tz="UTC")
    x = pd.DataFrame({"A": [1.0] * 5, "B": [-1.0] * 5}, index=idx)
    sigma = pd.DataFrame({"A": [0.1] * 5, "B": [0.5] * 5}, index=idx)
    w = vol_target_weights(x, sigma)  # aligned: A gets 0.15 / 0.1
    assert w["A"].iloc[0] == pytest.approx(1.5) and w["B"].iloc[0] == pytest.approx(-0.3)
    with pytest.raises(ValueError, match=r"sigma and positions have different columns .* "
                                         r"sigma.reindex_like\(positions\)"):
        vol_target_weights(x, sigma[["B", "A"]])
    with pytest.raises(ValueError, match="sigma and positions have different index"):
        portfolio_weights(x, sigma.set_axis(idx + pd.Timedelta(days=1)))
    # arrays carry no labels: read in the given order
    assert vol_target_weights(x, sigma[["B", "A"]].to_numpy())["A"].iloc[0] == pytest.approx(0.3)


def test_gross_cap_of_a_subnormal_row_is_silent():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # max_gross / 5e-324 overflowed in a branch not taken
        w = portfolio_weights(np.array([[5e-324, 0.0]]), np.array([[0.15, 0.2]]), max_gross=2.0)
    assert w[0, 1] == 0.0 and 0.0 <= w[0, 0] < 1e-300
