"""Public API surface: names, shapes, 1-D handling, backend dispatch."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import workbench.features as F
from tests.features.features_helpers import as_tuple, public_features, random_walk


def test_all_is_curated():
    assert {
        "FEATURE_NAMES", "bollinger", "deep_momentum_features", "describe", "ema",
        "ewm_volatility", "ex_ante_volatility", "log_returns", "macd", "macd_signal",
        "macd_signals", "normalised_returns", "rolling_std", "rolling_volatility", "rsi",
        "simple_returns", "sma", "FeatureSet", "FeatureStream", "catalogue", "atr", "obv",
        "roc", "rolling_beta", "spread",
    } <= set(F.__all__)  # fmt: skip
    assert all(not n.startswith("_") for n in F.__all__)
    for name in F.__all__:
        assert hasattr(F, name)
    d = F.describe()
    assert set(d) == set(F.FEATURE_NAMES) and all(d.values())


@pytest.mark.parametrize("name", sorted(public_features()))
def test_one_d_in_one_d_out(name):
    f = public_features()[name]
    x2 = random_walk(400, 1, seed=0)
    r2, r1 = as_tuple(f(x2)), as_tuple(f(x2[:, 0]))
    for a, b in zip(r2, r1):
        assert b.ndim == a.ndim - 1
        np.testing.assert_array_equal(a[:, 0], b)
        assert a.dtype == np.float64 and a.flags.c_contiguous


def test_accepts_lists_ints_and_fortran_input():
    x = random_walk(300, 3, seed=1)
    ref = F.ema(x, 10)
    np.testing.assert_array_equal(F.ema(np.asfortranarray(x), 10), ref)
    np.testing.assert_array_equal(F.ema(x.tolist(), 10), ref)
    np.testing.assert_array_equal(F.sma(np.arange(1, 31), 3)[2:], np.arange(2, 30, dtype=float))


def test_backend_cpu_and_auto_agree():
    x = random_walk(300, 3, seed=1)
    np.testing.assert_array_equal(F.rsi(x, backend="cpu"), F.rsi(x, backend="auto"))


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of .* got 'gpu'"):
        F.rsi(np.ones(30), backend="gpu")


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed")
def test_cupy_backend_without_cupy_raises_runtime_error():
    with pytest.raises(RuntimeError, match="cupy is not importable"):
        F.sma(np.ones(30), 5, backend="cupy")


def test_import_workbench_is_light():
    code = (
        "import sys, time; t=time.perf_counter(); import workbench.features; "
        "print(time.perf_counter()-t); assert 'numba' not in sys.modules"
    )
    # best of three: the import's own cost (~0.1 s), not a stall of a busy machine (a CI
    # run once took 1.18 s)
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True).stdout) for _ in range(3)]
    assert min(times) < 1.0
