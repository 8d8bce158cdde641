"""Volatility and deep-momentum features against direct pandas implementations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import workbench.features as F
from tests.features.features_helpers import (
    assert_close,
    per_column,
    random_walk,
    real_panel,
    sp500_close,
)


def _panel():
    return real_panel()


# ---- pandas references on one asset's valid bars (1-D in, 1-D out) ---------


def pd_ewm_std(r, span, minp):
    return pd.Series(r).ewm(span=span, adjust=True, min_periods=minp).std().to_numpy()


def pd_rolling_vol(p, window, ppy):
    return (np.log(pd.Series(p)).diff().rolling(window).std() * np.sqrt(ppy)).to_numpy()


def pd_macd_signal(p, short, long, pw=63, sw=252):
    s = pd.Series(p)
    ms = s.ewm(alpha=1.0 / short, adjust=False).mean()
    ml = s.ewm(alpha=1.0 / long, adjust=False).mean()
    q = (ms - ml) / s.rolling(pw).std()
    return (q / q.rolling(sw).std()).to_numpy()


def pd_normalised(p, horizons, span):
    s = pd.Series(p)
    sigma = s.pct_change().ewm(span=span, adjust=True, min_periods=span).std()
    return np.stack(
        [((s / s.shift(k) - 1.0) / (sigma * np.sqrt(k))).to_numpy() for k in horizons], axis=-1
    )


# ---- tests -----------------------------------------------------------------


@pytest.mark.parametrize("span,minp", [(60, None), (20, 5), (10.5, 1)])
def test_ewm_volatility_vs_pandas(span, minp):
    x = _panel()
    r = F.simple_returns(x)
    ours = F.ewm_volatility(r, span=span, annualise=False, min_periods=minp)
    m = minp if minp is not None else int(np.ceil(span))
    ref = per_column(lambda v: pd_ewm_std(v, span, m), r)
    assert_close(ours, ref)
    ann = F.ewm_volatility(r, span=span, periods_per_year=52, min_periods=minp)
    assert_close(ann, ref * np.sqrt(52))


def test_ewm_volatility_constant_and_short_series():
    r = np.array([0.01] * 10 + [0.02, -0.01])
    assert_close(F.ewm_volatility(r, span=3, annualise=False), pd_ewm_std(r, 3, 3))
    assert np.isnan(F.ewm_volatility(np.array([0.1, 0.2]), span=5)).all()


def test_ex_ante_volatility_is_annualised_ewm_of_simple_returns():
    x = _panel()
    expected = F.ewm_volatility(F.simple_returns(x), span=60)
    assert_close(F.ex_ante_volatility(x, span=60), expected, rtol=1e-12)
    ref = per_column(lambda v: pd_ewm_std(pd.Series(v).pct_change().to_numpy(), 60, 60), x)
    assert_close(F.ex_ante_volatility(x), ref * np.sqrt(252))


@pytest.mark.parametrize("window,ppy", [(20, 252), (5, 52), (60, 12)])
def test_rolling_volatility_vs_pandas(window, ppy):
    x = _panel()
    ours = F.rolling_volatility(x, window, periods_per_year=ppy)
    assert_close(ours, per_column(lambda v: pd_rolling_vol(v, window, ppy), x))


@pytest.mark.parametrize("window", [10, 20, 63])
def test_rolling_std_ddof1_vs_pandas(window):
    # pandas' add/remove kernel loses digits for tiny windows on price levels
    # (~7e-8 relative at window 3); those are checked against an exact
    # extended-precision reference in test_rolling_moments_vs_exact_two_pass.
    x = random_walk(2500, 5, seed=2)
    ref = pd.DataFrame(x).rolling(window).std().to_numpy()
    assert_close(F.rolling_std(x, window, ddof=1), ref)


def test_rolling_std_long_high_level_series_is_stable():
    """A 1e6-level random walk: Welford keeps 1e-9 vs pandas' compensated kernel."""
    x = random_walk(20_000, 2, seed=9, p0=1e6)
    ref = pd.DataFrame(x).rolling(30).std(ddof=0).to_numpy()
    assert_close(F.rolling_std(x, 30, ddof=0), ref)


def test_returns_vs_pandas():
    x = _panel()
    assert_close(F.simple_returns(x), per_column(lambda v: pd.Series(v).pct_change(), x))
    assert_close(F.log_returns(x), per_column(lambda v: np.log(pd.Series(v)).diff(), x))


@pytest.mark.parametrize("short,long", [(8, 24), (16, 48), (32, 96)])
def test_macd_signal_vs_pandas(short, long):
    x = _panel()
    ours = F.macd_signal(x, short, long)
    ref = per_column(lambda v: pd_macd_signal(v, short, long), x)
    assert_close(ours, ref)
    # warm-up: NaN until both windows are full (63 + 252 - 2 valid bars)
    c = sp500_close().to_numpy()
    y = F.macd_signal(c, short, long)
    assert np.isnan(y[: 63 + 252 - 2]).all() and not np.isnan(y[63 + 252 - 2 :]).any()


def test_macd_signal_custom_windows_vs_pandas():
    x = random_walk(1500, 3, seed=4)
    ours = F.macd_signal(x, 4, 12, price_window=20, signal_window=50)
    assert_close(ours, per_column(lambda v: pd_macd_signal(v, 4, 12, 20, 50), x))


def test_macd_signals_stack_matches_single():
    x = _panel()
    pairs = ((8, 24), (16, 48), (32, 96))
    allp = F.macd_signals(x, pairs)
    assert allp.shape == x.shape + (3,)
    for i, (s, lg) in enumerate(pairs):
        np.testing.assert_array_equal(allp[..., i], F.macd_signal(x, s, lg))


def test_normalised_returns_vs_pandas():
    x = _panel()
    hz = (1, 21, 63, 126, 252)
    ours = F.normalised_returns(x, hz, span=60)
    assert ours.shape == x.shape + (5,)
    ref = per_column(lambda v: pd_normalised(v, hz, 60), x)
    assert_close(ours, ref)


def test_deep_momentum_features_layout():
    x = _panel()
    feats, names = F.deep_momentum_features(x)
    assert names == [
        "nret_1", "nret_21", "nret_63", "nret_126", "nret_252",
        "macd_8_24", "macd_16_48", "macd_32_96",
    ]  # fmt: skip
    assert feats.shape == x.shape + (8,) and feats.dtype == np.float64
    np.testing.assert_array_equal(feats[..., :5], F.normalised_returns(x))
    np.testing.assert_array_equal(feats[..., 5:], F.macd_signals(x))


@pytest.mark.parametrize("window,ddof", [(2, 1), (3, 0), (5, 0), (20, 1), (250, 1)])
def test_rolling_moments_vs_exact_two_pass(window, ddof):
    """Against a long-double two-pass reference on a 5e4-level random walk."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = random_walk(6000, 3, seed=8, p0=5e4)
    win = sliding_window_view(x, window, axis=0).astype(np.longdouble)
    mean = win.mean(axis=-1)
    std = np.sqrt(((win - mean[..., None]) ** 2).sum(axis=-1) / (window - ddof))
    ex_std = np.full(x.shape, np.nan)
    ex_std[window - 1 :] = std.astype(float)
    ex_mean = np.full(x.shape, np.nan)
    ex_mean[window - 1 :] = mean.astype(float)
    assert_close(F.rolling_std(x, window, ddof=ddof), ex_std, rtol=1e-10)
    assert_close(F.sma(x, window), ex_mean, rtol=1e-13)
