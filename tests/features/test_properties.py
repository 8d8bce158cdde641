"""Hypothesis property tests: scale invariance, float32 option, input validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import workbench.features as F
from tests.features.features_helpers import as_tuple, public_features

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def price_panels(draw, min_T=40, max_T=400):
    T = draw(st.integers(min_T, max_T))
    N = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    vol = draw(st.floats(0.001, 0.05))
    rng = np.random.default_rng(seed)
    x = draw(st.floats(0.5, 5e3)) * np.exp(np.cumsum(rng.normal(0, vol, (T, N)), axis=0))
    if draw(st.booleans()):  # listing gaps and holes
        x[: draw(st.integers(0, T // 4)), 0] = np.nan
        x[rng.random((T, N)) < draw(st.floats(0, 0.1))] = np.nan
    return x


SCALE_INVARIANT = {
    "simple_returns": F.simple_returns,
    "log_returns": F.log_returns,
    "rsi": lambda x: F.rsi(x, 5),
    "normalised_returns": lambda x: F.normalised_returns(x, (1, 3, 10), span=8),
    "macd_signals": lambda x: F.macd_signals(x, ((2, 6), (4, 12)), 10, 20),
    "rolling_volatility": lambda x: F.rolling_volatility(x, 5),
    "ex_ante_volatility": lambda x: F.ex_ante_volatility(x, span=6),
}


@pytest.mark.parametrize("name", sorted(SCALE_INVARIANT))
@SETTINGS
@given(x=price_panels(), c=st.floats(1e-3, 1e3).filter(lambda v: v != 1.0))
def test_scale_invariance(name, x, c):
    f = SCALE_INVARIANT[name]
    a, b = f(x), f(x * c)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9, equal_nan=True)


@SETTINGS
@given(x=price_panels(), c=st.floats(1e-3, 1e3))
def test_price_indicators_are_scale_equivariant(x, c):
    for f in (lambda p: F.sma(p, 5), lambda p: F.ema(p, 5), lambda p: F.macd(p, 3, 8, 4)):
        for a, b in zip(as_tuple(f(x)), as_tuple(f(x * c))):
            np.testing.assert_allclose(b, a * c, rtol=1e-9, atol=1e-9 * c * np.nanmax(x))


FEATURES = public_features()


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_float32_option(name):
    x = np.random.default_rng(0).normal(0, 0.01, (600, 3)).cumsum(0)
    x = 100 * np.exp(x)
    x[:20, 1] = np.nan
    r64 = as_tuple(public_features(dtype=np.float64)[name](x))
    r32 = as_tuple(public_features(dtype="float32")[name](x))
    for a, b in zip(r64, r32):
        assert a.dtype == np.float64 and b.dtype == np.float32
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, equal_nan=True)


@SETTINGS
@given(x=price_panels(max_T=120))
def test_float32_input_and_output(x):
    a = F.rsi(x.astype(np.float32), 5, dtype=np.float32)
    b = F.rsi(x.astype(np.float32).astype(np.float64), 5)
    assert a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4, equal_nan=True)


# ---- validation --------------------------------------------------------------

WINDOWED = {
    "sma": (lambda x, w: F.sma(x, w), "window"),
    "ema": (lambda x, w: F.ema(x, w), "span"),
    "rolling_std": (lambda x, w: F.rolling_std(x, w), "window"),
    "rsi": (lambda x, w: F.rsi(x, w), "period"),
    "macd_fast": (lambda x, w: F.macd(x, fast=w), "fast"),
    "macd_signal_period": (lambda x, w: F.macd(x, signal=w), "signal"),
    "bollinger": (lambda x, w: F.bollinger(x, w), "window"),
    "rolling_volatility": (lambda x, w: F.rolling_volatility(x, w), "window"),
    "ex_ante_volatility": (lambda x, w: F.ex_ante_volatility(x, w), "span"),
    "normalised_returns": (lambda x, w: F.normalised_returns(x, (1, w)), "horizons"),
    "normalised_returns_span": (lambda x, w: F.normalised_returns(x, span=w), "span"),
    "macd_signal_short": (lambda x, w: F.macd_signal(x, w, 24), "short"),
    "macd_signal_pw": (lambda x, w: F.macd_signal(x, 8, 24, price_window=w), "price_window"),
    "macd_signals_sw": (lambda x, w: F.macd_signals(x, signal_window=w), "signal_window"),
    "ewm_volatility_minp": (lambda x, w: F.ewm_volatility(x, min_periods=w), "min_periods"),
}


@pytest.mark.parametrize("name", sorted(WINDOWED))
@settings(max_examples=15, deadline=None)
@given(w=st.one_of(st.integers(-(10**6), 0), st.just(0), st.sampled_from([1.5, "3", None, True])))
def test_bad_window_raises_naming_parameter(name, w):
    f, param = WINDOWED[name]
    assume(not (param == "min_periods" and w is None))  # None means "span"
    with pytest.raises(ValueError, match=param) as exc:
        f(np.linspace(1.0, 2.0, 50), w)
    assert repr(w) in str(exc.value)


@pytest.mark.parametrize("name", sorted(FEATURES))
@pytest.mark.parametrize(
    "bad",
    [np.ones((3, 3, 2)), np.float64(1.0), np.array([["a", "b"], ["c", "d"]]),
     np.array([1, None, 2], dtype=object), np.array([True, False] * 30), [[1.0, 2.0], [3.0]]],
)  # fmt: skip
def test_bad_array_raises_naming_parameter(name, bad):
    with pytest.raises(ValueError, match=r"close|\bx\b|returns"):
        FEATURES[name](bad)


def test_wrong_ndim_message_has_name_and_shape():
    msg = r"close must be a 1-D \(T,\) or 2-D \(T, N\) array, got shape \(3, 3, 2\)"
    with pytest.raises(ValueError, match=msg):
        F.rsi(np.ones((3, 3, 2)))
    with pytest.raises(ValueError, match=r"x must .* got shape \(\)"):
        F.sma(np.float64(1.0), 3)


@SETTINGS
@given(x=price_panels(max_T=80), k=st.sampled_from([0.0, -1.0, np.inf, np.nan, "2"]))
def test_bad_k_and_ppy(x, k):
    with pytest.raises(ValueError, match="k must"):
        F.bollinger(x, 5, k)
    with pytest.raises(ValueError, match="periods_per_year"):
        F.rolling_volatility(x, 5, periods_per_year=k)


def test_inf_is_rejected():
    x = np.linspace(1, 2, 40)
    x[5] = np.inf
    with pytest.raises(ValueError, match="close contains"):
        F.rsi(x)


def test_other_parameter_checks():
    x = np.linspace(1, 2, 40)
    with pytest.raises(ValueError, match="ddof"):
        F.rolling_std(x, 5, ddof=5)
    with pytest.raises(ValueError, match="fast must be < slow=12, got 12"):
        F.macd(x, 12, 12)
    with pytest.raises(ValueError, match="short must be < long"):
        F.macd_signal(x, 24, 8)
    with pytest.raises(ValueError, match="pairs"):
        F.macd_signals(x, ((24, 8),))
    with pytest.raises(ValueError, match="pairs"):
        F.deep_momentum_features(x, pairs=(8, 24))
    with pytest.raises(ValueError, match="horizons"):
        F.normalised_returns(x, ())
    with pytest.raises(ValueError, match="span must be a number > 1 .*got 0.5"):
        F.ewm_volatility(x, span=0.5)
    # span 1 is alpha = 1: pandas' bias-corrected EWM std is then NaN everywhere
    assert pd.Series(x).ewm(span=1).std().isna().all()
    with pytest.raises(ValueError, match="span must be a number > 1 .*got 1 .*all NaN"):
        F.ewm_volatility(x, span=1)
    for fn in (F.ex_ante_volatility, F.normalised_returns, F.deep_momentum_features):
        with pytest.raises(ValueError, match=r"span must be an int >= 2 .*got 1 .*all NaN"):
            fn(np.abs(x) + 1.0, span=1)
    with pytest.raises(ValueError, match="dtype"):
        F.sma(x, 3, dtype=np.int64)
