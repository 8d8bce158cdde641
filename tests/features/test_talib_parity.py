"""Parity with TA-Lib on real bundled data and random walks (1e-9 relative)."""

from __future__ import annotations

import numpy as np
import pytest
import talib

import workbench.features as F
from tests.features.features_helpers import (
    assert_close,
    bokeh_close,
    per_column,
    per_valid,
    random_walk,
    real_panel,
    sp500_close,
)

# (our function, talib reference on a 1-D valid series)
CASES = {
    "sma20": (lambda x: F.sma(x, 20), lambda c: talib.SMA(c, 20)),
    "sma5": (lambda x: F.sma(x, 5), lambda c: talib.SMA(c, 5)),
    "ema12": (lambda x: F.ema(x, 12), lambda c: talib.EMA(c, 12)),
    "ema50": (lambda x: F.ema(x, 50), lambda c: talib.EMA(c, 50)),
    "rsi14": (lambda x: F.rsi(x, 14), lambda c: talib.RSI(c, 14)),
    "rsi3": (lambda x: F.rsi(x, 3), lambda c: talib.RSI(c, 3)),
    "stddev20": (lambda x: F.rolling_std(x, 20), lambda c: talib.STDDEV(c, 20, 1)),
    "stddev5": (lambda x: F.rolling_std(x, 5, ddof=0), lambda c: talib.STDDEV(c, 5, 1)),
    "macd": (lambda x: F.macd(x), lambda c: talib.MACD(c)),
    "macd_5_35_5": (lambda x: F.macd(x, 5, 35, 5), lambda c: talib.MACD(c, 5, 35, 5)),
    "bbands": (lambda x: F.bollinger(x), lambda c: talib.BBANDS(c, 20, 2.0, 2.0, 0)),
    "bbands_10_1.5": (
        lambda x: F.bollinger(x, 10, 1.5),
        lambda c: talib.BBANDS(c, 10, 1.5, 1.5, 0),
    ),
}


def _check(ours, ref):
    if isinstance(ref, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(ref)
        for a, b in zip(ours, ref):
            assert_close(a, b)
    else:
        assert_close(ours, ref)


def _datasets():
    return {
        "sp500": sp500_close().to_numpy(),
        "aapl": bokeh_close("AAPL").to_numpy(),
        "rw": random_walk(4000, 1, seed=3)[:, 0],
    }


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("data", ["sp500", "aapl", "rw"])
def test_single_column(case, data):
    ours, ref = CASES[case]
    c = _datasets()[data]
    res = ours(c)
    assert (res[0] if isinstance(res, tuple) else res).shape == c.shape
    _check(res, ref(c))


@pytest.mark.parametrize("case", sorted(CASES))
def test_real_panel_with_listing_gaps(case):
    """(T, N) union-calendar panel; each column equals TA-Lib on its valid bars."""
    ours, ref = CASES[case]
    x = real_panel()
    assert np.isnan(x).any()
    _check(ours(x), per_column(ref, x))


@pytest.mark.parametrize("case", sorted(CASES))
def test_random_walk_panel(case):
    ours, ref = CASES[case]
    x = random_walk(3000, 7, seed=11)
    _check(ours(x), per_column(ref, x))


@pytest.mark.parametrize("case", sorted(CASES))
def test_leading_nans_is_shifted_talib(case):
    """An asset listed later: its output is TA-Lib on x[k:] shifted by k."""
    ours, ref = CASES[case]
    c = bokeh_close("MSFT").to_numpy()
    k = 137
    late = np.concatenate([np.full(k, np.nan), c])
    res = ours(late)
    expected = ref(c)
    if not isinstance(expected, tuple):
        res, expected = (res,), (expected,)
    for a, b in zip(res, expected):
        assert np.isnan(a[:k]).all()
        assert_close(a[k:], b)
    # TA-Lib itself skips leading NaNs, so the full column matches too
    direct = ref(late)
    direct = direct if isinstance(direct, tuple) else (direct,)
    for a, b in zip(res, direct):
        assert_close(a, b)


def test_macd_alignment_first_output_index():
    c = random_walk(200, 1, seed=5)[:, 0]
    for fast, slow, signal in [(12, 26, 9), (3, 10, 4), (2, 3, 1)]:
        line, sig, hist = F.macd(c, fast, slow, signal)
        first = slow - 1 + signal - 1
        for a in (line, sig, hist):
            assert np.isnan(a[:first]).all() and not np.isnan(a[first:]).any()
        _check((line, sig, hist), talib.MACD(c, fast, slow, signal))


def test_per_valid_helper_agrees_with_plain_talib_when_no_nans():
    c = sp500_close().to_numpy()
    np.testing.assert_array_equal(per_valid(lambda v: talib.SMA(v, 7), c), talib.SMA(c, 7))
