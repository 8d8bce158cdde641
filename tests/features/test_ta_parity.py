"""Catalogue TA features: parity with TA-Lib and with pandas references.

TA-Lib parity (1e-9 relative, identical NaN positions) for ROC, MOM, ATR, OBV and
STOCHF fast %K on the bundled daily universe (with listing gaps and injected inner
holes), the EURUSD hourly universe and random OHLCV; pandas references written here
for VWAP, volume z-score, vol-of-vol, skewness, kurtosis, Parkinson, Garman-Klass.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import talib
from numpy.lib.stride_tricks import sliding_window_view

from tests.features.features_helpers import assert_close
from workbench.features import _ta as TA
from workbench.features._api import bollinger

FIELDS = ("open", "high", "low", "close", "volume")

# --------------------------------------------------------------------------- #
# data (also used by test_ta_features / test_ta_stream)
# --------------------------------------------------------------------------- #


def random_ohlcv(T: int, N: int, seed: int = 0, p0: float = 100.0, zero_volume: float = 0.02):
    """Consistent random OHLCV panels (low <= open, close <= high), some zero volumes."""
    rng = np.random.default_rng(seed)
    c = p0 * np.exp(np.cumsum(rng.normal(0.0, 0.015, (T, N)), axis=0))
    o = np.vstack([c[:1], c[:-1]]) * np.exp(rng.normal(0.0, 0.004, (T, N)))
    h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0.0, 0.006, (T, N))))
    lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0.0, 0.006, (T, N))))
    v = np.round(rng.lognormal(10.0, 0.7, (T, N)))
    v[rng.random((T, N)) < zero_volume] = 0.0
    return {"open": o, "high": h, "low": lo, "close": c, "volume": v}


def with_holes(d: dict, seed: int = 1, frac: float = 0.02, lead: int = 0) -> dict:
    """Copy of ``d`` with whole-bar holes (all fields NaN) and a late listing in column 0."""
    rng = np.random.default_rng(seed)
    out = {k: np.array(v, dtype=float, copy=True) for k, v in d.items()}
    T, N = out["close"].shape
    mask = rng.random((T, N)) < frac
    mask[:lead, 0] = True
    for v in out.values():
        v[mask] = np.nan
    return out


@functools.cache
def _universe(name: str) -> tuple:
    from workbench.data import load_universe

    b = load_universe(name)
    return tuple(np.asarray(b[f], dtype=float) for f in FIELDS)


def real_daily(holes: bool = True) -> dict:
    """Bundled daily universe (SP500, NASDAQ, AAPL, GOOG, IBM, MSFT), union calendar."""
    d = dict(zip(FIELDS, _universe("daily")))
    return with_holes(d, seed=5, frac=0.01) if holes else d


def real_eurusd() -> dict:
    return dict(zip(FIELDS, _universe("eurusd_hourly")))


def per_valid_multi(func, arrays: list[np.ndarray]) -> np.ndarray:
    """Apply ``func(*cols)`` to each column's bars where every array is finite; scatter back."""
    arrays = [np.asarray(a, float) for a in arrays]
    T, N = arrays[0].shape
    out = np.full((T, N), np.nan)
    for j in range(N):
        m = np.all([np.isfinite(a[:, j]) for a in arrays], axis=0)
        if m.any():
            out[m, j] = np.asarray(func(*(a[m, j] for a in arrays)), float)
    return out


DATASETS = {
    "daily_holes": lambda: real_daily(True),
    "eurusd_hourly": real_eurusd,
    "random": lambda: with_holes(random_ohlcv(3000, 5, seed=3), seed=4, frac=0.03, lead=200),
}

# --------------------------------------------------------------------------- #
# TA-Lib parity
# --------------------------------------------------------------------------- #

TALIB = {
    # name: (fields, ours(*fields), reference(*1-D fields))
    "roc10": (("close",), lambda c: TA.roc(c), lambda c: talib.ROC(c, 10)),
    "roc1": (("close",), lambda c: TA.roc(c, 1), lambda c: talib.ROC(c, 1)),
    "roc63": (("close",), lambda c: TA.roc(c, 63), lambda c: talib.ROC(c, 63)),
    "mom10": (("close",), lambda c: TA.momentum(c), lambda c: talib.MOM(c, 10)),
    "mom3": (("close",), lambda c: TA.momentum(c, 3), lambda c: talib.MOM(c, 3)),
    "atr14": (("high", "low", "close"), lambda h, lo, c: TA.atr(h, lo, c),
              lambda h, lo, c: talib.ATR(h, lo, c, 14)),
    "atr5": (("high", "low", "close"), lambda h, lo, c: TA.atr(h, lo, c, 5),
             lambda h, lo, c: talib.ATR(h, lo, c, 5)),
    "atr1": (("high", "low", "close"), lambda h, lo, c: TA.atr(h, lo, c, 1),
             lambda h, lo, c: talib.ATR(h, lo, c, 1)),
    "obv": (("close", "volume"), lambda c, v: TA.obv(c, v), lambda c, v: talib.OBV(c, v)),
    "stochf14": (("high", "low", "close"), lambda h, lo, c: TA.price_position(h, lo, c),
                 lambda h, lo, c: talib.STOCHF(h, lo, c, 14, 1, 0)[0] / 100.0),
    "stochf3": (("high", "low", "close"), lambda h, lo, c: TA.price_position(h, lo, c, 3),
                lambda h, lo, c: talib.STOCHF(h, lo, c, 3, 1, 0)[0] / 100.0),
}


@pytest.mark.parametrize("data", sorted(DATASETS))
@pytest.mark.parametrize("case", sorted(TALIB))
def test_talib_parity_panel(case, data):
    fields, ours, ref = TALIB[case]
    d = DATASETS[data]()
    args = [d[f] for f in fields]
    res = ours(*args)
    expected = per_valid_multi(ref, args)
    assert np.isfinite(expected).sum() > 1000
    assert_close(res, expected)


@pytest.mark.parametrize("case", sorted(TALIB))
def test_talib_parity_single_series_and_late_listing(case):
    fields, ours, ref = TALIB[case]
    d = real_daily(False)
    cols = [d[f][:, 4] for f in fields]  # IBM, 1-D
    m = np.isfinite(cols[0])
    cols = [c[m] for c in cols]
    res = ours(*cols)
    assert res.ndim == 1
    assert_close(res, ref(*cols))
    k = 77
    late = [np.r_[np.full(k, np.nan), c] for c in cols]
    res = ours(*late)
    assert np.isnan(res[:k]).all()
    assert_close(res[k:], ref(*cols))


def test_stochf_zero_range_is_nan_where_talib_gives_zero():
    h = np.r_[np.linspace(10, 12, 20), np.full(10, 11.0)]
    lo = h.copy()
    c = h.copy()
    ours = TA.price_position(h, lo, c, 5)
    ref = talib.STOCHF(h, lo, c, 5, 1, 0)[0] / 100.0
    flat = np.arange(24, 30)  # windows of five equal bars
    assert np.isnan(ours[flat]).all() and (ref[flat] == 0).all()
    ok = np.isfinite(ours)
    assert_close(ours[ok], ref[ok])


# --------------------------------------------------------------------------- #
# Bollinger %b / bandwidth
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("data", sorted(DATASETS))
@pytest.mark.parametrize("window,k", [(20, 2.0), (5, 1.5), (60, 3.0)])
def test_bollinger_pct_b_bandwidth_from_bands(data, window, k):
    c = DATASETS[data]()["close"]
    up, mid, lo = bollinger(c, window, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        pb_ref = (c - lo) / (up - lo)
        bw_ref = (up - lo) / mid
    assert_close(TA.bollinger_percent_b(c, window, k), pb_ref, rtol=1e-12, atol=1e-12)
    assert_close(TA.bollinger_bandwidth(c, window, k), bw_ref, rtol=1e-12, atol=1e-15)
    # and with TA-Lib's bands (TA-Lib's running sum of squares is the less accurate side)
    ref_bands = [per_valid_multi(lambda x, i=i: talib.BBANDS(x, window, k, k, 0)[i], [c])
                 for i in range(3)]
    tu, tm, tl = ref_bands
    with np.errstate(invalid="ignore", divide="ignore"):
        assert_close(TA.bollinger_percent_b(c, window, k), (c - tl) / (tu - tl),
                     rtol=1e-7, atol=1e-7)
        assert_close(TA.bollinger_bandwidth(c, window, k), (tu - tl) / tm, rtol=1e-7)


@pytest.mark.parametrize("w", [10, 20, 30])
def test_bollinger_constant_window(w):
    """Identical closes after a varied stretch: %b NaN, bandwidth exactly 0 (no rounding noise)."""
    rng = np.random.default_rng(w)
    c = np.r_[1.0 + 1e-3 * rng.random(53), np.full(77, 0.1)]
    pb = TA.bollinger_percent_b(c, w)
    bw = TA.bollinger_bandwidth(c, w)
    flat = np.arange(53 + w - 1, 130)
    assert np.isnan(pb[flat]).all() and np.isfinite(pb[w - 1 : 53 + w - 1]).all()
    assert (bw[flat] == 0.0).all() and (bw[w - 1 : 53 + w - 1] > 0).all()


# --------------------------------------------------------------------------- #
# pandas references
# --------------------------------------------------------------------------- #


def pd_vwap(h, lo, c, v, w):
    s = pd.Series
    tp = (h + lo + c) / 3.0
    res = s(tp * v).rolling(w).sum() / s(v).rolling(w).sum()
    return res.where(s(v).rolling(w).max() > 0).to_numpy()


def pd_volume_zscore(v, w):
    s = pd.Series(v)
    sd = s.rolling(w).std()
    return ((s - s.rolling(w).mean()) / sd).where(sd > 0).to_numpy()


def pd_vol_of_vol(c, vw, w, ppy):
    vol = np.log(pd.Series(c)).diff().rolling(vw).std() * np.sqrt(ppy)
    return vol.rolling(w).std().to_numpy()


def pd_skew(c, w):
    return np.log(pd.Series(c)).diff().rolling(w).skew().to_numpy()


def pd_kurt(c, w):
    return np.log(pd.Series(c)).diff().rolling(w).kurt().to_numpy()


def pd_parkinson(h, lo, w, ppy):
    u = pd.Series(np.log(h / lo)) ** 2
    return np.sqrt(u.rolling(w).mean() / (4 * np.log(2)) * ppy).to_numpy()


def pd_garman_klass(o, h, lo, c, w, ppy):
    g = 0.5 * pd.Series(np.log(h / lo)) ** 2 - (2 * np.log(2) - 1) * pd.Series(np.log(c / o)) ** 2
    m = g.rolling(w).mean()
    return np.sqrt(m.where(m >= 0) * ppy).to_numpy()


PANDAS = {
    # name: (fields, ours, reference, rtol, atol)
    "vwap20": (("high", "low", "close", "volume"), lambda *a: TA.rolling_vwap(*a),
               lambda *a: pd_vwap(*a, 20), 1e-9, 0.0),
    "vwap3": (("high", "low", "close", "volume"), lambda *a: TA.rolling_vwap(*a, window=3),
              lambda *a: pd_vwap(*a, 3), 1e-9, 0.0),
    "volume_zscore20": (("volume",), lambda v: TA.volume_zscore(v),
                        lambda v: pd_volume_zscore(v, 20), 1e-9, 1e-9),
    "volume_zscore5": (("volume",), lambda v: TA.volume_zscore(v, 5),
                       lambda v: pd_volume_zscore(v, 5), 1e-9, 1e-9),
    "vol_of_vol": (("close",), lambda c: TA.vol_of_vol(c),
                   lambda c: pd_vol_of_vol(c, 20, 60, 252), 1e-9, 0.0),
    "vol_of_vol_5_10": (("close",), lambda c: TA.vol_of_vol(c, 5, 10, 24 * 260),
                        lambda c: pd_vol_of_vol(c, 5, 10, 24 * 260), 1e-9, 0.0),
    # pandas' own rolling skew/kurt carry errors up to ~1e-8 absolute (see the
    # long-double reference below, which ours matches to 1e-9 relative)
    "skew60": (("close",), lambda c: TA.rolling_skewness(c), lambda c: pd_skew(c, 60),
               1e-9, 1e-9),
    "skew20": (("close",), lambda c: TA.rolling_skewness(c, 20), lambda c: pd_skew(c, 20),
               1e-9, 1e-9),
    "kurt60": (("close",), lambda c: TA.rolling_kurtosis(c), lambda c: pd_kurt(c, 60),
               1e-9, 1e-8),
    "kurt20": (("close",), lambda c: TA.rolling_kurtosis(c, 20), lambda c: pd_kurt(c, 20),
               1e-9, 3e-8),
    "parkinson20": (("high", "low"), lambda h, lo: TA.parkinson_volatility(h, lo),
                    lambda h, lo: pd_parkinson(h, lo, 20, 252), 1e-9, 0.0),
    "parkinson5": (("high", "low"), lambda h, lo: TA.parkinson_volatility(h, lo, 5, 52),
                   lambda h, lo: pd_parkinson(h, lo, 5, 52), 1e-9, 0.0),
    "garman_klass20": (("open", "high", "low", "close"),
                       lambda *a: TA.garman_klass_volatility(*a),
                       lambda *a: pd_garman_klass(*a, 20, 252), 1e-9, 0.0),
    "garman_klass4": (("open", "high", "low", "close"),
                      lambda *a: TA.garman_klass_volatility(*a, window=4),
                      lambda *a: pd_garman_klass(*a, 4, 252), 1e-9, 0.0),
}


@pytest.mark.parametrize("data", sorted(DATASETS))
@pytest.mark.parametrize("case", sorted(PANDAS))
def test_pandas_parity_panel(case, data):
    fields, ours, ref, rtol, atol = PANDAS[case]
    d = DATASETS[data]()
    args = [d[f] for f in fields]
    expected = per_valid_multi(ref, args)
    assert np.isfinite(expected).sum() > 1000
    assert_close(ours(*args), expected, rtol=rtol, atol=atol)


def _exact_moments(c, w, kind):
    """Two-pass central moments of every window in long double (the accurate reference)."""
    lr = np.diff(np.log(c))
    x = sliding_window_view(lr.astype(np.longdouble), w)
    n = np.longdouble(w)
    d = x - x.mean(axis=1, keepdims=True)
    m2 = (d**2).mean(axis=1)
    if kind == "skew":
        r = np.sqrt(n * (n - 1)) * (d**3).mean(axis=1) / ((n - 2) * m2**1.5)
    else:
        r = ((n * n - 1) * (d**4).mean(axis=1) / m2**2 - 3 * (n - 1) ** 2) / ((n - 2) * (n - 3))
    return np.r_[np.full(w, np.nan), r.astype(float)]


@pytest.mark.parametrize("data", sorted(DATASETS))
@pytest.mark.parametrize("kind", ["skew", "kurt"])
@pytest.mark.parametrize("w", [4, 20, 60])
def test_moments_match_exact_two_pass(data, kind, w):
    c = DATASETS[data]()["close"]
    f = TA.rolling_skewness if kind == "skew" else TA.rolling_kurtosis
    expected = per_valid_multi(lambda x: _exact_moments(x, w, kind), [c])
    assert_close(f(c, w), expected, rtol=1e-9, atol=1e-11)


def test_moments_stable_on_high_level_low_variance_prices():
    """Prices near 1e6 with a drift 20x the return std: raw power sums would lose every digit."""
    rng = np.random.default_rng(0)
    c = 1e6 * np.exp(np.cumsum(rng.normal(2e-5, 1e-6, 20000)))
    for kind, f in (("skew", TA.rolling_skewness), ("kurt", TA.rolling_kurtosis)):
        assert_close(f(c, 50), _exact_moments(c, 50, kind), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("w", [5, 20, 30])
def test_moments_near_constant_returns_are_nan(w):
    """Constant growth: log returns equal up to rounding noise -> NaN.

    (pandas 3.1 returns the skewness/kurtosis of the rounding noise there; older pandas
    applied the same 1e-14 variance floor as this.)
    """
    rng = np.random.default_rng(1)
    r = np.r_[rng.normal(0.0, 0.01, 60), np.full(80, 0.001)]
    c = 100 * np.exp(np.cumsum(r))
    for f, ref in ((TA.rolling_skewness, pd_skew), (TA.rolling_kurtosis, pd_kurt)):
        res = f(c, w)
        assert np.isnan(res[61 + w :]).all() and np.isfinite(res[w:60]).all()
        expected = ref(c, w)
        assert_close(res[: 60], expected[:60], rtol=1e-9, atol=1e-9)


def test_vwap_stable_over_long_series_with_regime_change():
    """Volumes jump by 1e8: the sliding sums are re-synced, so no drift survives a window."""
    d = random_ohlcv(30000, 1, seed=9, zero_volume=0.0)
    d["volume"][:15000] *= 1e8
    args = [d[f][:, 0] for f in ("high", "low", "close", "volume")]
    assert_close(TA.rolling_vwap(*args, window=30), pd_vwap(*args, 30), rtol=1e-9)


def test_vwap_zero_volume_window_is_nan():
    d = random_ohlcv(60, 1, seed=2, zero_volume=0.0)
    v = d["volume"][:, 0]
    v[20:30] = 0.0
    res = TA.rolling_vwap(d["high"][:, 0], d["low"][:, 0], d["close"][:, 0], v, 5)
    assert np.isnan(res[24:30]).all() and np.isfinite(res[np.r_[4:24, 30:60]]).all()


@pytest.mark.parametrize("w", [5, 20, 30])
def test_volume_zscore_constant_window_is_nan(w):
    rng = np.random.default_rng(w)
    v = np.r_[np.round(rng.lognormal(10, 1, 53)), np.full(77, 1234.1)]
    z = TA.volume_zscore(v, w)
    assert np.isnan(z[53 + w - 1 :]).all() and np.isfinite(z[w - 1 : 53 + w - 1]).all()
    assert_close(z, pd_volume_zscore(v, w), atol=1e-9)


def test_garman_klass_negative_mean_is_nan():
    o = np.full(10, 100.0)
    c = np.full(10, 101.0)
    h = np.full(10, 101.0)
    lo = np.full(10, 100.0)
    res = TA.garman_klass_volatility(o, h, lo, c, 3)
    expected = np.sqrt((0.5 - (2 * np.log(2) - 1)) * np.log(1.01) ** 2 * 252)
    assert np.isnan(res[:2]).all()
    np.testing.assert_allclose(res[2:], expected, rtol=1e-12)
    # open far below a narrow reported range (inconsistent bar): negative mean -> NaN
    assert np.isnan(TA.garman_klass_volatility(np.full(10, 90.0), h, lo, c, 3)).all()


# --------------------------------------------------------------------------- #
# performance sanity (not a test of speed; prints a line with -s)
# --------------------------------------------------------------------------- #
