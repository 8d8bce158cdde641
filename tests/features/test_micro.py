"""OHLCV microstructure features: Corwin-Schultz, Roll and Amihud against direct references."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.features.features_helpers import assert_close, nan_panel, per_column, random_walk
from workbench.features import _micro as M
from workbench.features._catalogue import get

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
K_CS = 3.0 - 2.0 * math.sqrt(2.0)


def ohlc(T: int, N: int, seed: int = 0, holes: bool = False):
    """Random high/low/close/volume panels; optional listing gaps and inner holes."""
    rng = np.random.default_rng(seed)
    c = random_walk(T, N, seed=seed)
    h = c * np.exp(rng.uniform(0.0, 0.02, (T, N)))
    lo = c * np.exp(-rng.uniform(0.0, 0.02, (T, N)))
    v = rng.uniform(1e3, 1e5, (T, N)).round()
    if holes:
        mask = np.isnan(nan_panel(T, N, seed=seed))
        for a in (h, lo, c, v):
            a[mask] = np.nan
    return h, lo, c, v


# --------------------------------------------------------------------------- #
# references (pandas / numpy, written independently of the kernels)
# --------------------------------------------------------------------------- #


def cs_ref(h: np.ndarray, lo: np.ndarray, window: int) -> np.ndarray:
    """Corwin-Schultz on one asset's valid bars, pandas shift / rolling."""
    H, L = pd.Series(h), pd.Series(lo)
    beta = np.log(H / L) ** 2 + np.log(H.shift(1) / L.shift(1)) ** 2
    gamma = np.log(np.maximum(H, H.shift(1)) / np.minimum(L, L.shift(1))) ** 2
    alpha = (np.sqrt(2 * beta) - np.sqrt(beta)) / K_CS - np.sqrt(gamma / K_CS)
    s = (2 * (np.exp(alpha) - 1) / (1 + np.exp(alpha))).clip(lower=0)
    return s.rolling(window).mean().to_numpy()


def roll_ref(c: np.ndarray, window: int) -> np.ndarray:
    r = np.log(pd.Series(c)).diff()
    cov = r.rolling(window).cov(r.shift(1))
    return (2 * np.sqrt(np.maximum(-cov, 0.0))).to_numpy()


def amihud_ref(c: np.ndarray, v: np.ndarray, window: int, scale: float = 1e6) -> np.ndarray:
    s = pd.Series(c)
    dv = s * pd.Series(v)
    term = (s.pct_change().abs() / dv).where(dv != 0)
    out = term.rolling(window, min_periods=1).mean() * scale
    # the window must hold `window` returns (count NaN terms as present bars)
    return out.where(s.pct_change().notna().cumsum() >= window).to_numpy()


# --------------------------------------------------------------------------- #
# Corwin-Schultz
# --------------------------------------------------------------------------- #


def test_corwin_schultz_hand_computed_three_bars():
    h = np.array([101.0, 101.5, 101.2])
    lo = np.array([99.0, 99.5, 99.8])
    # bars 0-1: beta = ln(101.5/99.5)^2 + ln(101/99)^2 = 7.96083e-4,
    #           gamma = ln(101.5/99)^2 = 6.21951e-4, alpha = 7.90893e-3
    # bars 1-2: beta = ln(101.2/99.8)^2 + ln(101.5/99.5)^2 = 5.90117e-4,
    #           gamma = ln(101.5/99.5)^2 = 3.96056e-4, alpha = 1.06012e-2
    # S = 2 (e^a - 1) / (1 + e^a): S1 = 7.908893e-3, S2 = 1.0601113e-2
    s1, s2 = 7.908893e-3, 1.0601113e-2
    b1 = math.log(101.5 / 99.5) ** 2 + math.log(101 / 99) ** 2
    g1 = math.log(101.5 / 99) ** 2
    a1 = (math.sqrt(2 * b1) - math.sqrt(b1)) / K_CS - math.sqrt(g1 / K_CS)
    np.testing.assert_allclose(2 * (math.exp(a1) - 1) / (1 + math.exp(a1)), s1, rtol=1e-6)
    out = M.corwin_schultz_spread(h, lo, window=2)
    assert np.isnan(out[:2]).all()
    np.testing.assert_allclose(out[2], (s1 + s2) / 2, rtol=1e-6)
    out1 = M.corwin_schultz_spread(h, lo, window=1)
    assert np.isnan(out1[0])
    np.testing.assert_allclose(out1[1:], [s1, s2], rtol=1e-6)
    np.testing.assert_allclose(out1, cs_ref(h, lo, 1), rtol=1e-12)


def test_corwin_schultz_negative_estimates_set_to_zero():
    # a large overnight move: gamma dominates, alpha < 0 -> S = 0
    h = np.array([101.0, 111.0])
    lo = np.array([100.0, 110.0])
    assert M.corwin_schultz_spread(h, lo, window=1)[1] == 0.0


@pytest.mark.parametrize("window", [1, 5, 20])
def test_corwin_schultz_matches_pandas_with_holes(window):
    h, lo, _, _ = ohlc(600, 4, seed=1, holes=True)
    out = M.corwin_schultz_spread(h, lo, window=window)
    ref = np.full_like(h, np.nan)
    for j in range(h.shape[1]):
        ok = ~np.isnan(h[:, j])
        ref[ok, j] = cs_ref(h[ok, j], lo[ok, j], window)
    assert_close(out, ref, rtol=1e-10, atol=1e-14)
    one = M.corwin_schultz_spread(h, lo, window=1)
    assert (one == 0).any() and (one > 0).any()  # both branches of the clipping exercised


# --------------------------------------------------------------------------- #
# Roll
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("window", [2, 10, 20, 63])
def test_roll_matches_pandas_rolling_cov(window):
    _, _, c, _ = ohlc(800, 4, seed=2, holes=True)
    # mean-reverting component so that the serial covariance is often negative
    rng = np.random.default_rng(5)
    c = c * np.exp(rng.choice([-1.0, 1.0], c.shape) * 0.002)
    out = M.roll_spread(c, window)
    ref = per_column(lambda a: roll_ref(a, window), c)
    assert_close(out, ref, rtol=1e-8, atol=1e-9)
    assert (out[~np.isnan(out)] > 0).mean() > 0.3  # the test exercises the sqrt branch


def test_roll_regime_change_exact_resync():
    # a millionfold drop in volatility: sliding co-moments are recomputed exactly every
    # `window` pairs, so the big regime's rounding does not leak into the quiet one
    rng = np.random.default_rng(12)
    r = rng.normal(0, 0.3, 900)
    r[400:] *= 1e-6
    c = np.exp(np.cumsum(r))
    out = M.roll_spread(c, 50)
    ref = roll_ref(c, 50)
    assert (ref[460:] > 0).any()
    np.testing.assert_allclose(out[460:], ref[460:], rtol=1e-6, atol=1e-15)


def test_roll_warmup_is_window_plus_one_valid_bars():
    c = random_walk(50, 1, seed=3)[:, 0]
    out = M.roll_spread(c, 10)
    assert np.isnan(out[:11]).all() and not np.isnan(out[11:]).any()


def test_roll_bid_ask_bounce_recovers_spread():
    # Roll's model: fundamental value constant, trades alternate randomly at bid/ask
    rng = np.random.default_rng(0)
    spread = 0.01
    side = rng.choice([-1.0, 1.0], 20000)
    c = 100.0 * np.exp(side * spread / 2)
    out = M.roll_spread(c, 19000)
    np.testing.assert_allclose(out[-1], spread, rtol=0.05)


# --------------------------------------------------------------------------- #
# Amihud
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("window", [1, 5, 21])
def test_amihud_matches_pandas(window):
    _, _, c, v = ohlc(500, 4, seed=3, holes=True)
    v[::7] = 0.0  # zero-volume bars: skipped terms
    v[3::11, 1] = np.nan  # volume unknown on present bars
    out = M.amihud_illiquidity(c, v, window)
    ref = np.stack([
        _scatter(amihud_ref(c[~np.isnan(c[:, j]), j], v[~np.isnan(c[:, j]), j], window),
                 ~np.isnan(c[:, j]))
        for j in range(c.shape[1])], axis=1)
    assert_close(out, ref, rtol=1e-10)


def _scatter(vals, mask):
    o = np.full(mask.shape, np.nan)
    o[mask] = vals
    return o


def test_amihud_units_and_zero_volume():
    c = np.array([100.0, 101.0, 99.99, 100.0])
    v = np.array([10.0, 1000.0, 0.0, 500.0])
    out = M.amihud_illiquidity(c, v, window=2, scale=1.0)
    t1 = 0.01 / (101.0 * 1000.0)
    t3 = abs(100.0 / 99.99 - 1) / (100.0 * 500.0)
    assert np.isnan(out[:2]).all()
    np.testing.assert_allclose(out[2], t1, rtol=1e-12)  # the zero-volume term is skipped
    np.testing.assert_allclose(out[3], t3, rtol=1e-12)  # window = {skipped, t3}
    np.testing.assert_allclose(M.amihud_illiquidity(c, v, 2)[3], t3 * 1e6, rtol=1e-12)
    assert np.isnan(M.amihud_illiquidity(c, np.zeros(4), 2)).all()


# --------------------------------------------------------------------------- #
# gaps, causality, API
# --------------------------------------------------------------------------- #

PER_ASSET = {
    "corwin_schultz": lambda h, lo, c, v: M.corwin_schultz_spread(h, lo, 7),
    "roll": lambda h, lo, c, v: M.roll_spread(c, 7),
    "amihud": lambda h, lo, c, v: M.amihud_illiquidity(c, v, 7),
}


@pytest.mark.parametrize("name", sorted(PER_ASSET))
def test_hole_equals_compressed_series(name):
    f = PER_ASSET[name]
    h, lo, c, v = ohlc(500, 4, seed=4, holes=True)
    out = f(h, lo, c, v)
    for j in range(4):
        ok = ~np.isnan(c[:, j])
        assert np.isnan(out[~ok, j]).all()
        comp = f(h[ok, j], lo[ok, j], c[ok, j], v[ok, j])
        np.testing.assert_array_equal(out[ok, j], comp)


@pytest.mark.parametrize("name", sorted(PER_ASSET))
def test_causality(name):
    f = PER_ASSET[name]
    ins = ohlc(400, 4, seed=5, holes=True)
    base = f(*ins)
    rng = np.random.default_rng(1)
    for t in (0, 10, 199, 398):
        pert = [a.copy() for a in ins]
        scale = rng.uniform(0.8, 1.2, size=pert[0][t + 1 :].shape)
        for a in pert:
            a[t + 1 :] *= scale
        out = f(*pert)
        np.testing.assert_array_equal(base[: t + 1], out[: t + 1])
        assert not np.array_equal(base[t + 1 :], out[t + 1 :], equal_nan=True)
    full = base
    part = f(*(a[:250] for a in ins))
    np.testing.assert_array_equal(full[:250], part)


def test_float32_and_1d():
    h, lo, c, v = ohlc(200, 3, seed=6)
    for f in (lambda **k: M.corwin_schultz_spread(h, lo, **k),
              lambda **k: M.roll_spread(c, **k),
              lambda **k: M.amihud_illiquidity(c, v, **k)):
        a, b = f(), f(dtype=np.float32)
        assert a.dtype == np.float64 and b.dtype == np.float32
        np.testing.assert_allclose(b, a.astype(np.float32), rtol=1e-6)
    one = M.roll_spread(c[:, 1])
    assert one.shape == (200,)
    np.testing.assert_array_equal(one, M.roll_spread(c)[:, 1])


def test_parameter_errors_name_the_parameter():
    h, lo, c, v = ohlc(50, 2)
    with pytest.raises(ValueError, match="window must be an int >= 2, got 1"):
        M.roll_spread(c, 1)
    with pytest.raises(ValueError, match="window must be an int >= 1, got 0"):
        M.corwin_schultz_spread(h, lo, 0)
    with pytest.raises(ValueError, match="scale must be a finite number > 0, got -1"):
        M.amihud_illiquidity(c, v, 5, scale=-1)
    with pytest.raises(ValueError, match="high and low must have the same shape"):
        M.corwin_schultz_spread(h, lo[:, :1])
    with pytest.raises(ValueError, match="backend must be one of"):
        M.roll_spread(c, backend="gpu")


def test_registry_entries():
    for name, inputs in (("corwin_schultz", ("high", "low")), ("roll", ("close",)),
                         ("amihud", ("close", "volume"))):
        d = get(name)
        assert d.group == "microstructure" and d.inputs == inputs and d.stream is not None
    assert get("amihud").params == {"window": 20, "scale": 1e6}


# --------------------------------------------------------------------------- #
# properties
# --------------------------------------------------------------------------- #


@st.composite
def ohlc_panels(draw):
    T = draw(st.integers(30, 200))
    N = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    c = draw(st.floats(0.5, 5e3)) * np.exp(np.cumsum(rng.normal(0, 0.02, (T, N)), axis=0))
    h = c * np.exp(rng.uniform(0, 0.03, (T, N)))
    lo = c * np.exp(-rng.uniform(0, 0.03, (T, N)))
    if draw(st.booleans()):
        m = rng.random((T, N)) < 0.1
        for a in (h, lo, c):
            a[m] = np.nan
    return h, lo, c


@SETTINGS
@given(p=ohlc_panels(), c=st.floats(1e-3, 1e3).filter(lambda v: v != 1.0))
def test_scale_invariance_of_spread_estimators(p, c):
    h, lo, cl = p
    a = M.corwin_schultz_spread(h, lo, 5)
    b = M.corwin_schultz_spread(h * c, lo * c, 5)
    assert_close(b, a, rtol=1e-8, atol=1e-11)
    a = M.roll_spread(cl, 5)
    b = M.roll_spread(cl * c, 5)
    assert_close(b, a, rtol=1e-6, atol=1e-7)  # sqrt of a covariance near 0 amplifies ulps


def test_negative_volume_is_refused_not_a_negative_illiquidity():
    # a negative volume used to give a negative Amihud ratio silently
    # (close 1..5, volume -1: -333333.33 at row 2 with window 2)
    c = np.arange(1.0, 6.0)
    v = np.ones(5)
    v[3] = -1.0
    with pytest.raises(ValueError, match=r"volume must be >= 0 \(NaN marks a missing bar\); "
                                         r"got -1.0 at row 3$"):
        M.amihud_illiquidity(c, v, 2)
    v2 = np.ones((5, 2))
    v2[4, 1] = -2.0
    with pytest.raises(ValueError, match="got -2.0 at row 4, column 1"):
        M.amihud_illiquidity(np.c_[c, c], v2, 2)
    v[3] = 0.0  # zero volume stays allowed (the term is skipped)
    assert np.isfinite(M.amihud_illiquidity(c, v, 2)[2:]).all()
    assert get("amihud").nonnegative == ("volume",)
