"""Streaming classes of the catalogue TA features reproduce the batch kernels step by step."""

from __future__ import annotations

import numpy as np
import pytest

from tests.features.stream_helpers import assert_stream_matches_batch, run_stream
from tests.features.test_ta_parity import random_ohlcv, real_daily, real_eurusd, with_holes
from workbench.features._catalogue import CATALOGUE
from workbench.features._stream_base import StreamFeature

NAMES = ("roc", "momentum", "price_position", "bollinger_pct_b", "bollinger_bandwidth", "vwap",
         "obv", "volume_zscore", "atr", "vol_of_vol", "skewness", "kurtosis", "parkinson",
         "garman_klass")

OTHER_PARAMS = {"roc": {"period": 1}, "momentum": {"period": 3},
                "price_position": {"window": 3}, "bollinger_pct_b": {"window": 5, "k": 1.0},
                "bollinger_bandwidth": {"window": 33, "k": 3.0}, "vwap": {"window": 1},
                "obv": {}, "volume_zscore": {"window": 2}, "atr": {"period": 1},
                "vol_of_vol": {"vol_window": 3, "window": 4, "periods_per_year": 8760},
                "skewness": {"window": 3}, "kurtosis": {"window": 17},
                "parkinson": {"window": 1, "periods_per_year": 52},
                "garman_klass": {"window": 40}}


def _real_with_holes():
    d = real_daily(True)  # listing gaps + injected inner holes
    assert np.isnan(d["close"]).any()
    return d


def _random():
    return with_holes(random_ohlcv(1500, 4, seed=21), seed=22, frac=0.05, lead=100)


@pytest.mark.parametrize("name", NAMES)
def test_stream_class_contract(name):
    cls = CATALOGUE[name].stream
    assert issubclass(cls, StreamFeature) and cls.n_outputs == 1
    assert cls.inputs == CATALOGUE[name].inputs


@pytest.mark.parametrize("name", NAMES)
def test_stream_matches_batch_real_data_with_holes(name):
    defn = CATALOGUE[name]
    assert_stream_matches_batch(defn, _real_with_holes(), **defn.params)


@pytest.mark.parametrize("name", NAMES)
def test_stream_matches_batch_eurusd_hourly(name):
    defn = CATALOGUE[name]
    assert_stream_matches_batch(defn, real_eurusd(), **OTHER_PARAMS[name])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("params", ["default", "other"])
def test_stream_matches_batch_random_data(name, params):
    defn = CATALOGUE[name]
    kw = defn.params if params == "default" else OTHER_PARAMS[name]
    assert_stream_matches_batch(defn, _random(), **kw)


@pytest.mark.parametrize("name", NAMES)
def test_stream_missing_bar_leaves_state_unchanged(name):
    """A symbol without a bar gets NaN and the next bar continues as if it never happened."""
    defn = CATALOGUE[name]
    d = random_ohlcv(200, 2, seed=5)
    keep = np.ones(200, bool)
    keep[[60, 61, 150]] = False
    x = {k: v.copy() for k, v in d.items()}
    for v in x.values():
        v[~keep, 0] = np.nan
    full = run_stream(defn, {f: x[f] for f in defn.inputs}, **OTHER_PARAMS[name])[..., 0]
    comp = run_stream(defn, {f: d[f][keep] for f in defn.inputs}, **OTHER_PARAMS[name])[..., 0]
    assert np.isnan(full[~keep, 0]).all()
    np.testing.assert_array_equal(full[keep, 0], comp[:, 0])
    # symbol 1 had every bar: unaffected by symbol 0's holes
    ref = run_stream(defn, {f: d[f] for f in defn.inputs}, **OTHER_PARAMS[name])[..., 0]
    np.testing.assert_array_equal(full[:, 1], ref[:, 1])


def _ragged(T=400, N=70, seed=31):
    """Wide panel with staggered listings, scattered holes, a market holiday and a block of
    symbols sharing holes: the symbols' windows fall out of step, so the deferred exact
    re-syncs run over both long runs of aligned symbols and scattered single symbols."""
    d = random_ohlcv(T, N, seed=seed)
    rng = np.random.default_rng(seed + 1)
    mask = rng.random((T, N)) < 0.03
    for j in range(0, N, 9):
        mask[: rng.integers(1, T // 4), j] = True
    mask[T // 3:T // 3 + 3] = True
    mask[T // 2:T // 2 + 7, 2:N // 2] = True
    d["close"][T - 150:T - 100, 5] = d["close"][T - 151, 5]  # a constant stretch
    d["volume"][T - 150:T - 100, 6] = d["volume"][T - 151, 6]
    for v in d.values():
        v[mask] = np.nan
    return d


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("params", ["default", "other"])
def test_stream_is_bitwise_equal_to_batch(name, params):
    """The step kernels do the batch kernels' operations in the same order: equal bits."""
    defn = CATALOGUE[name]
    kw = defn.params if params == "default" else OTHER_PARAMS[name]
    d = _ragged()
    b = np.asarray(defn.batch(*(d[f] for f in defn.inputs), **kw))
    s = run_stream(defn, {f: d[f] for f in defn.inputs}, **kw)[..., 0]
    np.testing.assert_array_equal(s, b)
    assert np.isfinite(s).sum() > s.size // 2  # mostly defined: the check has teeth


@pytest.mark.parametrize("name", NAMES)
def test_stream_state_is_constant_and_reset_restarts(name):
    defn = CATALOGUE[name]
    d = _ragged(T=200, N=9, seed=3)
    feat = defn.stream(9, **OTHER_PARAMS[name])
    out = np.empty((9, 1))
    first = []
    for t in range(60):
        feat.update({f: np.ascontiguousarray(d[f][t]) for f in defn.inputs}, out)
        first.append(out[:, 0].copy())
    size = feat.state_nbytes
    feat.reset()
    assert feat.state_nbytes == size
    for t in range(60):
        feat.update({f: np.ascontiguousarray(d[f][t]) for f in defn.inputs}, out)
        np.testing.assert_array_equal(out[:, 0], first[t])
