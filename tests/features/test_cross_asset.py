"""Cross-asset features: rolling correlation, beta and mean pairwise correlation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.features.features_helpers import assert_close, nan_panel, random_walk
from workbench.features import _micro as M
from workbench.features._api import log_returns
from workbench.features._catalogue import get

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def correlated_panel(T: int, N: int, seed: int = 0, holes: bool = False) -> np.ndarray:
    """Prices whose log returns load on a common factor (market = column 0)."""
    rng = np.random.default_rng(seed)
    f = rng.normal(0, 0.01, (T, 1))
    load = np.linspace(0.3, 1.5, N)
    r = f * load + rng.normal(0, 0.01, (T, N))
    r[:, 0] = f[:, 0]
    x = 50.0 * np.exp(np.cumsum(r, axis=0))
    if holes:
        x[np.isnan(nan_panel(T, N, seed=seed))] = np.nan
    return x


def pairwise_ref(x: np.ndarray, window: int, minp: int, kind: str, market: int = 0):
    """Direct pairwise-complete reference, loop over t with numpy."""
    r = log_returns(x)
    T, N = x.shape
    out = np.full((T, N), np.nan)
    for t in range(T):
        lo = max(0, t - window + 1)
        rm = r[lo : t + 1, market]
        for j in range(N):
            if np.isnan(x[t, j]):
                continue
            rj = r[lo : t + 1, j]
            ok = np.isfinite(rj) & np.isfinite(rm)
            if ok.sum() < minp:
                continue
            a, b = rj[ok], rm[ok]
            va, vb = a.var(ddof=1), b.var(ddof=1)
            if vb <= 0 or (va <= 0 and kind == "corr"):
                continue
            cov = np.cov(a, b, ddof=1)[0, 1]  # exactly 0 for a constant asset: beta 0
            out[t, j] = cov / np.sqrt(va * vb) if kind == "corr" else cov / vb
    return out


# --------------------------------------------------------------------------- #
# correlation / beta
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("window", [5, 20, 60])
def test_correlation_and_beta_match_pandas_fully_present(window):
    x = correlated_panel(700, 5, seed=1)
    r = pd.DataFrame(np.log(x)).diff()
    corr = M.rolling_correlation(x, 0, window)
    beta = M.rolling_beta(x, 0, window)
    rc = r.rolling(window).corr(r[0]).to_numpy().copy()
    rb = (r.rolling(window).cov(r[0]).div(r[0].rolling(window).var(), axis=0)).to_numpy()
    rc[:, 0] = np.where(np.isnan(rc[:, 0]), np.nan, 1.0)
    assert_close(corr, rc, rtol=1e-8, atol=1e-10)
    assert_close(beta, rb, rtol=1e-8, atol=1e-10)
    assert (corr[window:, 0] == 1.0).all() and (beta[window:, 0] == 1.0).all()
    assert np.nanmean(corr[:, 4]) > np.nanmean(corr[:, 1])  # loadings increase with j


@pytest.mark.parametrize("window,minp", [(20, None), (20, 10), (60, 30), (7, 2)])
def test_pairwise_complete_with_holes(window, minp):
    x = correlated_panel(500, 4, seed=2, holes=True)
    x[200:230, 0] = np.nan  # the market itself has a gap
    mp = window if minp is None else minp
    for market in (0, 2):
        corr = M.rolling_correlation(x, market, window, minp)
        beta = M.rolling_beta(x, market, window, minp)
        assert_close(corr, pairwise_ref(x, window, mp, "corr", market), rtol=1e-9, atol=1e-12)
        assert_close(beta, pairwise_ref(x, window, mp, "beta", market), rtol=1e-9, atol=1e-12)
        # and pandas' pairwise-complete rolling corr agrees where the asset has a bar
        r = pd.DataFrame(log_returns(x))
        pc = r.rolling(window, min_periods=mp).corr(r[market]).to_numpy().copy()
        pc[np.isnan(x)] = np.nan
        pc[:, market] = np.where(np.isnan(pc[:, market]), np.nan, 1.0)
        assert_close(corr, pc, rtol=1e-7, atol=1e-9)


def test_output_nan_where_asset_has_no_bar_but_market_gap_keeps_values():
    x = correlated_panel(300, 3, seed=3)
    x[150, 1] = np.nan
    x[160, 0] = np.nan  # market gap: with min_periods < window assets keep a value
    c = M.rolling_correlation(x, 0, 20, min_periods=15)
    assert np.isnan(c[150, 1]) and not np.isnan(c[150, 2])
    assert not np.isnan(c[160, 1]) and np.isnan(c[160, 0])
    # windows count panel rows: asset 1's hole removes return row 150 (row 151 spans the
    # hole and is finite); the market's removes row 160 for every asset
    full = M.rolling_correlation(x, 0, 20)  # min_periods = window
    assert np.isnan(full[150:180, 1]).all() and not np.isnan(full[180, 1])
    assert not np.isnan(full[150:160, 2]).any() and np.isnan(full[160:180, 2]).all()


@pytest.mark.parametrize("start", [100, 105, 111])
def test_constant_returns_give_nan_not_noise(start):
    # (start is chosen so that the all-flat windows begin between exact re-syncs, which
    # happen every `window` rows: Welford removal alone leaves rounding noise there)
    x = correlated_panel(300, 3, seed=4)
    x[start:, 2] = x[start - 1, 2]  # the asset stops moving: its returns are exactly 0
    c = M.rolling_correlation(x, 0, 20)
    b = M.rolling_beta(x, 0, 20)
    e = start + 19  # first row whose window holds only zero returns
    # correlation undefined; beta exactly 0 (zero covariance with a moving market)
    assert np.isnan(c[e:, 2]).all() and (b[e:, 2] == 0.0).all()
    assert not np.isnan(c[e - 1, 2]) and b[e - 1, 2] != 0.0
    assert not np.isnan(c[e:, 1]).any()
    # mean pairwise correlation: only the pair (0, 1) is left after the flat windows begin
    r = log_returns(x)
    m = M.mean_pairwise_correlation(x, 20)
    for t in (e, e + 7, 299):
        np.testing.assert_allclose(m[t], np.corrcoef(r[t - 19 : t + 1, :2].T)[0, 1],
                                   rtol=1e-10)


@pytest.mark.parametrize("holes", [False, True])
def test_beta_of_a_stale_asset_is_zero_as_in_pandas(holes):
    # an asset whose price does not move (halted, pegged, cash-like) has zero covariance
    # with a moving market: its beta is 0 (pandas cov / var), not NaN; batch and stream
    from tests.features.stream_helpers import assert_stream_matches_batch

    x = correlated_panel(300, 4, seed=8, holes=holes)  # holes: inner ones in column 3
    p = x[:120, 3][~np.isnan(x[:120, 3])][-1]
    x[120:220, 3] = np.where(np.isnan(x[120:220, 3]), np.nan, p)
    b = M.rolling_beta(x, 0, 20, min_periods=15)
    assert_close(b, pairwise_ref(x, 20, 15, "beta"), rtol=1e-9, atol=1e-12)
    if not holes:
        r = pd.DataFrame(log_returns(x))
        ref = r[3].rolling(20, min_periods=15).cov(r[0]) / r[0].rolling(20, 15).var()
        assert_close(b[:, 3], ref.to_numpy(), rtol=1e-9, atol=1e-12)
    flat = slice(139, 220)  # windows of zero returns only
    got = b[flat, 3][~np.isnan(b[flat, 3])]  # (NaN: no bar, or holes leave < 15 rows)
    assert (got == 0.0).all() and got.size > 40
    assert np.isnan(M.rolling_correlation(x, 0, 20, min_periods=15)[flat, 3]).all()
    assert_stream_matches_batch(get("beta"), {"close": x}, window=20, min_periods=15)
    # the market standing still leaves beta undefined for everyone
    y = x.copy()
    y[120:220, 0] = y[119, 0]
    assert np.isnan(M.rolling_beta(y, 0, 20)[139:220]).all()


def test_regime_change_exact_resync():
    # returns shrink a millionfold: co-moments slid through the big regime carry absolute
    # rounding of the big regime's size until the ring wraps and they are recomputed
    rng = np.random.default_rng(11)
    r = rng.normal(0, 0.3, (900, 2))
    r[:, 1] += r[:, 0]
    r[400:] *= 1e-6
    x = np.exp(np.cumsum(r, axis=0))
    w = 50
    c = M.rolling_correlation(x, 0, w)
    b = M.rolling_beta(x, 0, w)
    lr = log_returns(x)
    for t in range(460, 900, 37):
        a, m = lr[t - w + 1 : t + 1, 1], lr[t - w + 1 : t + 1, 0]
        np.testing.assert_allclose(c[t, 1], np.corrcoef(a, m)[0, 1], rtol=1e-9)
        np.testing.assert_allclose(b[t, 1], np.cov(a, m)[0, 1] / m.var(ddof=1), rtol=1e-9)
    mp = M.mean_pairwise_correlation(x, w)
    np.testing.assert_allclose(mp[460:], c[460:, 1], rtol=1e-9)


def test_market_by_symbol_and_errors():
    x = correlated_panel(100, 3, seed=5)
    a = M.rolling_correlation(x, "B", 10, symbols=["A", "B", "C"])
    np.testing.assert_array_equal(a, M.rolling_correlation(x, 1, 10))
    with pytest.raises(ValueError, match="pass symbols="):
        M.rolling_correlation(x, "B", 10)
    with pytest.raises(ValueError, match=r"market must be a column index in \[0, 3\)"):
        M.rolling_beta(x, 3, 10)
    with pytest.raises(ValueError, match="window must be an int >= 2, got 1"):
        M.rolling_beta(x, 0, 1)
    with pytest.raises(ValueError, match=r"min_periods must be an int in \[2, window=10\]"):
        M.rolling_correlation(x, 0, 10, min_periods=11)
    with pytest.raises(ValueError, match="min_periods must be an int >= 2, got 1"):
        M.mean_pairwise_correlation(x, 10, min_periods=1)


def test_numerical_stability_long_series():
    # long, strongly trending series: the sliding co-moments stay at two-pass accuracy
    x = correlated_panel(20000, 3, seed=6) * 1e6
    c = M.rolling_correlation(x, 0, 250)
    b = M.rolling_beta(x, 0, 250)
    r = log_returns(x)
    for t in (249 + 1, 9999, 19999):
        a, m = r[t - 249 : t + 1, 2], r[t - 249 : t + 1, 0]
        np.testing.assert_allclose(c[t, 2], np.corrcoef(a, m)[0, 1], rtol=1e-11)
        np.testing.assert_allclose(b[t, 2], np.cov(a, m)[0, 1] / m.var(ddof=1), rtol=1e-11)


# --------------------------------------------------------------------------- #
# mean pairwise correlation
# --------------------------------------------------------------------------- #


def test_mean_pairwise_correlation_vs_corrcoef():
    x = correlated_panel(400, 6, seed=7)
    w = 40
    out = M.mean_pairwise_correlation(x, w)
    assert out.shape == (400,)
    r = log_returns(x)
    assert np.isnan(out[:w]).all()  # row 0 has no return: the first full window ends at w
    for t in (w, 123, 399):
        cm = np.corrcoef(r[t - w + 1 : t + 1].T)
        iu = np.triu_indices(6, 1)
        np.testing.assert_allclose(out[t], cm[iu].mean(), rtol=1e-10)


def test_mean_pairwise_correlation_with_holes_vs_pairwise_reference():
    x = correlated_panel(300, 4, seed=8, holes=True)
    w, mp = 20, 15
    out = M.mean_pairwise_correlation(x, w, mp)
    r = log_returns(x)
    ref = np.full(300, np.nan)
    for t in range(300):
        vals = []
        lo = max(0, t - w + 1)
        for i in range(4):
            for j in range(i + 1, 4):
                if np.isnan(x[t, i]) or np.isnan(x[t, j]):
                    continue
                a, b = r[lo : t + 1, i], r[lo : t + 1, j]
                ok = np.isfinite(a) & np.isfinite(b)
                if ok.sum() >= mp:
                    vals.append(np.corrcoef(a[ok], b[ok])[0, 1])
        if vals:
            ref[t] = np.mean(vals)
    assert_close(out, ref, rtol=1e-9, atol=1e-12)


def test_mean_pairwise_correlation_many_assets_blocks():
    # more pairs than blocks: the parallel block reduction must equal the plain mean
    x = correlated_panel(150, 12, seed=9)
    out = M.mean_pairwise_correlation(x, 30)
    r = log_returns(x)
    cm = np.corrcoef(r[120:150].T)
    np.testing.assert_allclose(out[149], cm[np.triu_indices(12, 1)].mean(), rtol=1e-10)


def test_mean_pairwise_correlation_single_asset_and_float32():
    x = random_walk(50, 1)
    assert np.isnan(M.mean_pairwise_correlation(x, 10)).all()
    assert np.isnan(M.mean_pairwise_correlation(x[:, 0], 10)).all()
    y = correlated_panel(100, 3)
    a = M.mean_pairwise_correlation(y, 10)
    b = M.mean_pairwise_correlation(y, 10, dtype=np.float32)
    assert b.dtype == np.float32
    np.testing.assert_allclose(b, a.astype(np.float32), rtol=1e-6)


# --------------------------------------------------------------------------- #
# causality, registry, properties
# --------------------------------------------------------------------------- #

CROSS = {
    "correlation": lambda x: M.rolling_correlation(x, 0, 15, 10),
    "beta": lambda x: M.rolling_beta(x, 1, 15),
    "mean_pairwise_correlation": lambda x: M.mean_pairwise_correlation(x, 15, 8),
}


@pytest.mark.parametrize("name", sorted(CROSS))
def test_causality(name):
    f = CROSS[name]
    x = correlated_panel(400, 4, seed=10, holes=True)
    base = f(x)
    rng = np.random.default_rng(2)
    for t in (0, 20, 199, 398):
        y = x.copy()
        y[t + 1 :] *= rng.uniform(0.9, 1.1, size=y[t + 1 :].shape)
        y[t + 1 :][rng.random(y[t + 1 :].shape) < 0.05] = np.nan
        out = f(y)
        np.testing.assert_array_equal(base[: t + 1], out[: t + 1])
        assert not np.array_equal(base[t + 1 :], out[t + 1 :], equal_nan=True)
    np.testing.assert_array_equal(base[:250], f(x[:250]))


def test_registry_entries():
    for name in ("correlation", "beta", "mean_pairwise_correlation"):
        d = get(name)
        assert d.group == "cross-asset" and d.inputs == ("close",) and d.stream is not None
    assert get("correlation").params == {"market": 0, "window": 60, "min_periods": None}


@st.composite
def panels(draw):
    T = draw(st.integers(30, 200))
    N = draw(st.integers(2, 4))
    x = correlated_panel(T, N, seed=draw(st.integers(0, 2**32 - 1)),
                         holes=False) * draw(st.floats(0.01, 100.0))
    if draw(st.booleans()):
        rng = np.random.default_rng(draw(st.integers(0, 1000)))
        x[rng.random(x.shape) < 0.1] = np.nan
    return x


@SETTINGS
@given(x=panels(), c=st.floats(1e-3, 1e3).filter(lambda v: v != 1.0))
def test_scale_invariance(x, c):
    for f in (lambda p: M.rolling_correlation(p, 0, 10, 5), lambda p: M.rolling_beta(p, 1, 10),
              lambda p: M.mean_pairwise_correlation(p, 10, 5)):
        a, b = f(x), f(x * c)
        assert_close(b, a, rtol=1e-7, atol=1e-9)
