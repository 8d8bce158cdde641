"""Streaming classes of the microstructure / cross-asset / order-book features equal batch."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from tests.features.stream_helpers import assert_stream_matches_batch, run_stream
from tests.features.test_book_features import random_book
from workbench.features import _micro  # noqa: F401  (registers the features)
from workbench.features._catalogue import get


@functools.cache
def real_inputs() -> dict[str, np.ndarray]:
    """Bundled daily universe (SP500, NASDAQ, AAPL, GOOG, IBM, MSFT; late listings, trailing
    NaNs after 2013 for the stocks) plus inner holes punched into some columns."""
    from workbench.data import load_universe

    b = load_universe("daily")
    out = {f: np.array(b[f], dtype=float) for f in ("open", "high", "low", "close", "volume")}
    rng = np.random.default_rng(0)
    T, N = out["close"].shape
    holes = np.zeros((T, N), bool)
    for j in (1, 3, 5):
        holes[rng.choice(np.arange(300, T - 300), size=40, replace=False), j] = True
    holes[1000:1010, 0] = True  # a gap in the market column
    for f in out:
        out[f][holes] = np.nan
    return out


def random_inputs(T=600, N=5, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (T, N)), axis=0))
    h = c * np.exp(rng.uniform(0, 0.02, (T, N)))
    lo = c * np.exp(-rng.uniform(0, 0.02, (T, N)))
    v = rng.integers(0, 5, (T, N)).astype(float) * 1000.0  # some zero volume
    c[:40, 1] = np.nan
    c[rng.random((T, N)) < 0.05] = np.nan
    for a in (h, lo, v):
        a[np.isnan(c)] = np.nan
    return {"high": h, "low": lo, "close": c, "volume": v}


CASES = [
    ("corwin_schultz", {}),
    ("corwin_schultz", {"window": 1}),
    ("corwin_schultz", {"window": 7}),
    ("roll", {}),
    ("roll", {"window": 2}),
    ("amihud", {}),
    ("amihud", {"window": 5, "scale": 1.0}),
    ("correlation", {}),
    ("correlation", {"market": 2, "window": 20, "min_periods": 10}),
    ("beta", {}),
    ("beta", {"market": 1, "window": 5, "min_periods": 3}),
    ("mean_pairwise_correlation", {}),
    ("mean_pairwise_correlation", {"window": 15, "min_periods": 5}),
]


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_stream_matches_batch_real_data(name, params):
    defn = get(name)
    data = real_inputs()
    assert_stream_matches_batch(defn, {f: data[f] for f in defn.inputs}, **params)


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_stream_matches_batch_random_data(name, params):
    defn = get(name)
    data = random_inputs(seed=len(name))
    assert_stream_matches_batch(defn, {f: data[f] for f in defn.inputs}, **params)


def test_stream_is_exact_not_just_close():
    # the stream runs the batch's row kernels on the same state: bitwise equal
    data = random_inputs(seed=3)
    for name in ("roll", "correlation", "mean_pairwise_correlation"):
        defn = get(name)
        b = np.asarray(defn.batch(data["close"]))
        s = run_stream(defn, {"close": data["close"]})[..., 0]
        if b.ndim == 1:
            b = np.repeat(b[:, None], s.shape[1], axis=1)
        np.testing.assert_array_equal(s, b)


def test_stream_warm_up_and_holes():
    c = random_inputs(T=60, N=2, seed=4)["close"]
    c[:, 0] = 100 * np.exp(np.linspace(0, 0.3, 60) + 0.01 * np.sin(np.arange(60)))
    c[30, 0] = np.nan
    out = run_stream(get("roll"), {"close": c}, window=5)[:, 0, 0]
    assert np.isnan(out[:6]).all() and not np.isnan(out[6:30]).any()
    assert np.isnan(out[30]) and not np.isnan(out[31:]).any()


BOOK = ["spread", "relative_spread", "depth_imbalance", "weighted_mid", "depth", "price_impact"]


@pytest.mark.parametrize("name", BOOK)
def test_book_streams_match_batch(name):
    defn = get(name)
    bp, ap, bs, az = random_book(T=40, N=3, k=6, seed=5)
    ins = {"bid_px": bp, "ask_px": ap, "bid_sz": bs, "ask_sz": az}
    params = {"levels": 3} if "levels" in defn.params else {}
    assert_stream_matches_batch(defn, {f: ins[f] for f in defn.inputs}, **params)


def test_stream_parameter_errors():
    with pytest.raises(ValueError, match="window must be an int >= 2, got 1"):
        get("roll").stream(3, window=1)
    with pytest.raises(ValueError, match=r"market must be a column index in \[0, 3\)"):
        get("correlation").stream(3, market=5)
    s = get("beta").stream(3, market="B", symbols=("A", "B", "C"))
    assert s.market == 1
    with pytest.raises(ValueError, match="n_symbols must be >= 1"):
        get("amihud").stream(0)
