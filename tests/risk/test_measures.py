import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from workbench.risk import (
    cvar_historical,
    cvar_monte_carlo,
    cvar_parametric,
    drawdown_series,
    max_drawdown,
    max_time_under_water,
    risk_table,
    time_under_water,
    var_historical,
    var_monte_carlo,
    var_parametric,
)

# 20 returns: sorted ascending -0.05, -0.04, -0.03, -0.02, -0.01, then 15 gains
SAMPLE = np.array([0.01, -0.03, 0.02, -0.05, 0.00, 0.01, -0.01, 0.03, 0.02, -0.04,
                   0.01, 0.01, 0.02, 0.00, -0.02, 0.01, 0.02, 0.03, 0.01, 0.02])


def test_historical_hand_sample():
    # level 0.9: alpha = 0.1, k = ceil(20 * 0.1) = 2 -> 2nd smallest = -0.04
    assert var_historical(SAMPLE, 0.90) == pytest.approx(0.04)
    assert cvar_historical(SAMPLE, 0.90) == pytest.approx((0.05 + 0.04) / 2)
    # level 0.95: k = ceil(1.0) = 1 -> worst return
    assert var_historical(SAMPLE, 0.95) == pytest.approx(0.05)
    assert cvar_historical(SAMPLE, 0.95) == pytest.approx(0.05)
    # level 0.8: k = 4 -> -0.02; CVaR = mean(-0.05, -0.04, -0.03, -0.02)
    assert var_historical(SAMPLE, 0.80) == pytest.approx(0.02)
    assert cvar_historical(SAMPLE, 0.80) == pytest.approx(0.035)
    # NaN are dropped
    with_nan = np.concatenate([SAMPLE, [np.nan]])
    assert var_historical(with_nan, 0.80) == pytest.approx(0.02)


def test_gaussian_var_cvar_hand_numbers():
    r = np.array([0.01, -0.02, 0.03, 0.0])
    mu, sd = 0.005, np.std(r, ddof=1)
    assert sd == pytest.approx(np.sqrt((0.005**2 + 0.025**2 + 0.025**2 + 0.005**2) / 3))
    z = -1.6448536269514722  # Phi^-1(0.05)
    assert var_parametric(r, 0.95) == pytest.approx(-(mu + sd * z), rel=1e-12)
    phi = np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
    assert cvar_parametric(r, 0.95) == pytest.approx(-(mu - sd * phi / 0.05), rel=1e-12)


def test_cornish_fisher_reduces_to_gaussian_for_symmetric_mesokurtic_sample():
    # a Gaussian quantile grid: skew exactly 0, excess kurtosis ~0 -> CF ~ Gaussian
    # (the exact zero-moment identity is checked in the next test)
    r = stats.norm.ppf((np.arange(1, 2001) - 0.5) / 2000) * 0.01
    assert abs(stats.skew(r)) < 1e-12
    for lv in (0.95, 0.99):
        g, cf = var_parametric(r, lv), var_parametric(r, lv, "cornish_fisher")
        assert cf == pytest.approx(g, rel=0.02)


def test_cornish_fisher_exact_with_zero_moments(monkeypatch):
    import workbench.risk._measures as m

    monkeypatch.setattr(m.stats, "skew", lambda r: 0.0)
    monkeypatch.setattr(m.stats, "kurtosis", lambda r: 0.0)
    r = np.array([0.01, -0.02, 0.03, 0.0, 0.015, -0.005])
    for lv in (0.9, 0.95, 0.99):
        assert var_parametric(r, lv, "cornish_fisher") == pytest.approx(var_parametric(r, lv),
                                                                        rel=1e-14)
        assert cvar_parametric(r, lv, "cornish_fisher") == pytest.approx(
            cvar_parametric(r, lv), rel=1e-9)


def test_cornish_fisher_fat_left_tail_raises_risk():
    rng = np.random.default_rng(0)
    r = rng.normal(0.0005, 0.01, 5000)
    r[rng.random(5000) < 0.02] -= 0.05  # crashes: negative skew, fat tails
    assert stats.skew(r) < 0
    assert var_parametric(r, 0.99, "cornish_fisher") > var_parametric(r, 0.99)
    assert cvar_parametric(r, 0.99, "cornish_fisher") > cvar_parametric(r, 0.99)


def _es_by_integration(r, level, grid=400_000):
    """-(1 / alpha) * integral_0^alpha F^-1(u) du of the empirical distribution, on a grid."""
    alpha = 1 - level
    srt = np.sort(r)
    u = (np.arange(grid) + 0.5) / grid * alpha
    return -srt[np.ceil(u * r.size).astype(int) - 1].mean()


def test_cvar_is_the_tail_mean_with_ties_and_fractional_tails():
    # 30 losses, 30 gains, 940 flat days: the worst 5 % are the 30 losses and 20 flat days
    rng = np.random.default_rng(7)
    r = np.concatenate([-rng.uniform(0.005, 0.03, 30), rng.uniform(0.005, 0.03, 30),
                        np.zeros(940)])
    rng.shuffle(r)
    worst = np.sort(r)[:50]
    assert cvar_historical(r, 0.95) == pytest.approx(-worst.mean(), rel=1e-12)
    assert cvar_historical(r, 0.95) > 10 * cvar_historical(np.abs(r), 0.95) + 0.01
    # n * alpha not a whole number (37 * 0.1 = 3.7): the 4th worst weighs 0.7
    x = rng.normal(0, 0.01, 37)
    for level in (0.9, 0.95, 0.99, 0.8):
        assert cvar_historical(x, level) == pytest.approx(_es_by_integration(x, level),
                                                          rel=1e-4, abs=1e-9), level
    s = np.sort(x)
    assert cvar_historical(x, 0.9) == pytest.approx(-(s[:3].sum() + 0.7 * s[3]) / 3.7)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=5, max_size=200),
    st.sampled_from([0.9, 0.95, 0.99]),
)
def test_cvar_at_least_var(xs, level):
    r = np.array(xs)
    assert cvar_historical(r, level) >= var_historical(r, level) - 1e-15
    if np.std(r) > 0:
        assert cvar_parametric(r, level) >= var_parametric(r, level) - 1e-15


def test_monte_carlo_close_to_parametric_and_historical():
    rng = np.random.default_rng(3)
    r = rng.normal(0.0, 0.01, 3000)
    assert var_monte_carlo(r, 0.95, seed=1) == pytest.approx(var_parametric(r, 0.95), rel=0.02)
    assert cvar_monte_carlo(r, 0.95, seed=1) == pytest.approx(cvar_parametric(r, 0.95), rel=0.03)
    boot = var_monte_carlo(r, 0.95, method="bootstrap", seed=1)
    assert boot == pytest.approx(var_historical(r, 0.95), rel=0.05)
    with pytest.raises(ValueError, match="method"):
        var_monte_carlo(r, method="garch")


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.1])
def test_level_errors(level):
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\)"):
        var_historical(SAMPLE, level)


def test_empty_and_all_nan_errors():
    with pytest.raises(ValueError, match="empty or all-NaN"):
        var_historical(np.array([]))
    with pytest.raises(ValueError, match="empty or all-NaN"):
        cvar_parametric(np.array([np.nan, np.nan]))
    with pytest.raises(ValueError, match="empty or all-NaN"):
        drawdown_series(np.array([np.nan]))
    with pytest.raises(ValueError, match="method"):
        var_parametric(SAMPLE, 0.95, method="student")
    for f in (var_historical, max_drawdown):
        with pytest.raises(ValueError, match="returns must be numeric .* got list"):
            f(["a", 0.01])


def test_drawdown_and_time_under_water_hand_case():
    r = np.array([0.10, -0.10, 0.05, 0.10, -0.20, np.nan, 0.25])
    # equity: 1.1, 0.99, 1.0395, 1.14345, 0.91476, 0.91476, 1.14345
    eq = np.cumprod(1 + np.nan_to_num(r))
    dd = drawdown_series(r)
    expected = [0.0, 0.99 / 1.1 - 1, 1.0395 / 1.1 - 1, 0.0, -0.2, -0.2, 0.0]
    np.testing.assert_allclose(dd, expected, atol=1e-12)
    assert eq[-1] == pytest.approx(eq[3])
    assert max_drawdown(r) == pytest.approx(-0.2)
    np.testing.assert_array_equal(time_under_water(r), [0, 1, 2, 0, 1, 2, 0])
    assert max_time_under_water(r) == 2
    # the starting equity is a peak: a first-period loss is a drawdown
    np.testing.assert_allclose(drawdown_series([-0.1, 0.05]), [-0.1, 0.9 * 1.05 - 1])
    np.testing.assert_array_equal(time_under_water([-0.1, 0.05, 0.1]), [1, 2, 0])
    assert (drawdown_series(pd.Series(SAMPLE)) <= 0).all()


def test_risk_table_shape_and_columns():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(0, 0.01, (300, 2)), columns=["a", "b"])
    tbl = risk_table(df)
    cols = []
    for p in ("95", "99"):
        cols += [f"VaR {p}% (hist)", f"CVaR {p}% (hist)", f"VaR {p}% (gauss)",
                 f"CVaR {p}% (gauss)", f"VaR {p}% (CF)"]
    cols += ["max drawdown", "max time under water (bars)"]
    assert list(tbl.columns) == cols
    assert list(tbl.index) == ["a", "b"]
    assert tbl.loc["a", "VaR 95% (hist)"] == pytest.approx(var_historical(df["a"], 0.95))
    assert tbl.loc["b", "max drawdown"] == pytest.approx(max_drawdown(df["b"]))
    assert (tbl["CVaR 99% (hist)"] >= tbl["VaR 99% (hist)"]).all()
    tbl2 = risk_table({"x": df["a"].to_numpy()}, levels=(0.975,))
    assert "VaR 97.5% (CF)" in tbl2.columns and tbl2.shape == (1, 7)
    with pytest.raises(ValueError, match="strategy 'e'"):
        risk_table({"e": np.array([np.nan])})
    with pytest.raises(ValueError, match="level"):
        risk_table(df, levels=(0.95, 2.0))


def test_references_on_bundled_daily_returns():
    """numpy / scipy references written here, on the real daily returns of the bundled data."""
    from scipy import integrate

    from workbench import data

    rets = data.load_universe("daily").to_wide("close").pct_change(fill_method=None)
    for col in rets:
        r = rets[col].dropna().to_numpy()
        mu, sd = r.mean(), r.std(ddof=1)
        skew, kurt = stats.skew(r), stats.kurtosis(r)
        s = np.sort(r)
        for level in (0.9, 0.95, 0.975, 0.99):
            alpha = 1 - level
            # numpy's inverted_cdf, at alpha without the rounding error of 1 - level
            assert var_historical(r, level) == -np.quantile(r, round(alpha, 12),
                                                            method="inverted_cdf")
            m = r.size * alpha  # Acerbi-Tasche: mean of the worst m returns, fractional last
            k = int(np.floor(m))
            es = -(s[:k].sum() + (m - k) * s[k]) / m
            assert cvar_historical(r, level) == pytest.approx(es, rel=1e-12)
            assert cvar_historical(r, level) == pytest.approx(
                _es_by_integration(r, level, grid=200_000), rel=1e-3)
            z = stats.norm.ppf(alpha)
            assert var_parametric(r, level) == pytest.approx(-(mu + sd * z), rel=1e-12)
            tail_mean = stats.norm.expect(lambda x: x, ub=z) / alpha  # E[Z | Z < z]
            assert cvar_parametric(r, level) == pytest.approx(-(mu + sd * tail_mean), rel=1e-7)

            def z_cf(u, skew=skew, kurt=kurt):
                q = stats.norm.ppf(u)
                return (q + (q**2 - 1) * skew / 6 + (q**3 - 3 * q) * kurt / 24
                        - (2 * q**3 - 5 * q) * skew**2 / 36)

            assert var_parametric(r, level, "cornish_fisher") == pytest.approx(
                -(mu + sd * z_cf(alpha)), rel=1e-12)
            avg, _ = integrate.quad(z_cf, 0.0, alpha, limit=500)  # average CF quantile in the tail
            assert cvar_parametric(r, level, "cornish_fisher") == pytest.approx(
                -(mu + sd * avg / alpha), rel=1e-6)
        eq = (1 + rets[col].fillna(0.0)).cumprod()
        np.testing.assert_allclose(drawdown_series(rets[col]),
                                   eq / np.maximum(eq.cummax(), 1.0) - 1, atol=1e-12)


def test_constant_samples_have_finite_risk_and_no_negative_zero():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's "nearly identical" warning is not passed on
        for r, loss in ((np.zeros(300), 0.0), (np.full(300, -0.001), 0.001),
                        (np.full(300, 0.002), -0.002)):
            for f in (var_parametric, cvar_parametric):
                for method in ("gaussian", "cornish_fisher"):
                    assert f(r, 0.99, method) == pytest.approx(loss, abs=1e-15), (f, method)
            for f in (var_historical, cvar_historical):
                assert f(r, 0.95) == pytest.approx(loss, abs=1e-15)
        flat = risk_table({"flat": np.zeros(300)})
        assert not flat.isna().to_numpy().any()
        assert not np.signbit(flat.to_numpy(dtype=float)).any()  # 0.0, not -0.0, in a report
