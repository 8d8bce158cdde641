"""Every public feature is causal: outputs at or before t ignore inputs after t."""

from __future__ import annotations

import numpy as np
import pytest

from tests.features.features_helpers import as_tuple, nan_panel, public_features

FEATURES = public_features()


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_future_perturbation_leaves_past_bitwise_unchanged(name):
    f = FEATURES[name]
    x = nan_panel(T=700, N=4, seed=1)
    base = as_tuple(f(x))
    rng = np.random.default_rng(7)
    for t in (0, 1, 30, 299, 400, 650, 698):
        y = x.copy()
        tail = y[t + 1 :]
        tail *= rng.uniform(0.5, 1.5, size=tail.shape)  # NaN stays NaN
        tail[rng.random(tail.shape) < 0.05] = np.nan  # and new holes appear
        pert = as_tuple(f(y))
        for a, b in zip(base, pert):
            np.testing.assert_array_equal(a[: t + 1], b[: t + 1], err_msg=f"{name} at t={t}")
            if t < 690:  # and the perturbation did reach the future
                assert not np.array_equal(a[t + 1 :], b[t + 1 :], equal_nan=True)


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_truncated_history_gives_same_prefix(name):
    f = FEATURES[name]
    x = nan_panel(T=700, N=4, seed=2)
    full = as_tuple(f(x))
    for t in (350, 500):
        part = as_tuple(f(x[: t + 1]))
        for a, b in zip(full, part):
            np.testing.assert_array_equal(a[: t + 1], b)
