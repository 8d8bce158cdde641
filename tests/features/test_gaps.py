"""Missing bars: NaN in -> NaN out, state carried over holes, no back-fill."""

from __future__ import annotations

import numpy as np
import pytest

from tests.features.features_helpers import as_tuple, nan_panel, public_features, random_walk

FEATURES = public_features()


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_inner_hole_equals_compressed_series(name):
    f = FEATURES[name]
    c = random_walk(600, 1, seed=4)[:, 0]
    x = c.copy()
    holes = np.r_[150, 151, 152, 300, 420:430]
    x[holes] = np.nan
    valid = ~np.isnan(x)
    res = as_tuple(f(x))
    comp = as_tuple(f(x[valid]))
    for a, b in zip(res, comp):
        assert np.isnan(a[holes]).all()
        np.testing.assert_array_equal(a[valid], b)


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_panel_columns_are_independent_compressed_series(name):
    f = FEATURES[name]
    x = nan_panel(T=500, N=4, seed=3)
    res = as_tuple(f(x))
    for j in range(x.shape[1]):
        valid = ~np.isnan(x[:, j])
        comp = as_tuple(f(x[valid, j]))
        for a, b in zip(res, comp):
            assert np.isnan(a[~valid, j]).all()
            np.testing.assert_array_equal(a[valid, j], b)


def test_no_backfill_and_warmup():
    import workbench.features as F

    x = random_walk(100, 1, seed=0)[:, 0]
    x[:10] = np.nan
    s = F.sma(x, 5)
    assert np.isnan(s[: 10 + 4]).all() and not np.isnan(s[14:]).any()
    r = F.simple_returns(x)
    assert np.isnan(r[:11]).all() and not np.isnan(r[11:]).any()


def test_all_nan_and_short_columns():
    import workbench.features as F

    x = np.full((30, 3), np.nan)
    x[25:, 1] = [1.0, 1.1, 1.2, 1.3, 1.4]
    x[:, 2] = np.linspace(1, 2, 30)
    for name, f in FEATURES.items():
        for a in as_tuple(f(x)):
            assert np.isnan(a[:, 0]).all(), name
    assert np.isnan(F.sma(x, 10)[:, 1]).all()
    assert np.isnan(F.macd(x)[0][:, 1]).all()
