"""Catalogue TA features: registry, causality, gaps, hypothesis properties, validation."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.features.test_ta_parity import random_ohlcv, with_holes
from workbench.features import _ta as TA
from workbench.features._catalogue import CATALOGUE

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = ("roc", "momentum", "price_position", "bollinger_pct_b", "bollinger_bandwidth", "vwap",
         "obv", "volume_zscore", "atr", "vol_of_vol", "skewness", "kurtosis", "parkinson",
         "garman_klass")
GROUPS = {"roc": "trend", "momentum": "trend", "price_position": "trend",
          "bollinger_pct_b": "bands", "bollinger_bandwidth": "bands", "vwap": "bands",
          "obv": "volume", "volume_zscore": "volume", "atr": "volatility",
          "vol_of_vol": "volatility", "skewness": "volatility", "kurtosis": "volatility",
          "parkinson": "volatility", "garman_klass": "volatility"}

# small windows so that short test series get past the warm-up
SMALL = {"roc": {"period": 5}, "momentum": {"period": 5}, "price_position": {"window": 6},
         "bollinger_pct_b": {"window": 8, "k": 1.5}, "bollinger_bandwidth": {"window": 8},
         "vwap": {"window": 7}, "obv": {}, "volume_zscore": {"window": 9}, "atr": {"period": 6},
         "vol_of_vol": {"vol_window": 5, "window": 8}, "skewness": {"window": 12},
         "kurtosis": {"window": 12}, "parkinson": {"window": 5},
         "garman_klass": {"window": 5, "periods_per_year": 52}}


def run(name: str, d: dict, **kw) -> np.ndarray:
    defn = CATALOGUE[name]
    return defn.batch(*(d[f] for f in defn.inputs), **{**SMALL[name], **kw})


def take(d: dict, idx) -> dict:
    return {k: v[idx] for k, v in d.items()}


# --------------------------------------------------------------------------- #
# registry
# --------------------------------------------------------------------------- #


def test_public_names_and_registry():
    assert set(TA.__all__) == {
        "roc", "momentum", "atr", "obv", "price_position", "bollinger_percent_b",
        "bollinger_bandwidth", "rolling_vwap", "volume_zscore", "vol_of_vol",
        "rolling_skewness", "rolling_kurtosis", "parkinson_volatility",
        "garman_klass_volatility",
    }  # fmt: skip
    batch_fns = {getattr(TA, n) for n in TA.__all__}
    for name in NAMES:
        defn = CATALOGUE[name]
        assert defn.group == GROUPS[name], name
        assert defn.batch in batch_fns and defn.stream is not None
        assert defn.description and defn.outputs == ("",)
        sig = inspect.signature(defn.batch)
        pos = [p for p in sig.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert tuple(p.name for p in pos[: len(defn.inputs)]) == defn.inputs
        assert {p.name: p.default for p in pos[len(defn.inputs):]} == defn.params, name
        assert defn.stream.inputs == defn.inputs
        assert "dtype" in sig.parameters and "backend" in sig.parameters


@pytest.mark.parametrize("fn", sorted(TA.__all__))
def test_docstrings_state_shapes_raises_and_source(fn):
    doc = getattr(TA, fn).__doc__
    for part in ("(T, N)", "Raises", "ValueError", "Notes", "Returns"):
        assert part in doc, (fn, part)


# --------------------------------------------------------------------------- #
# causality and gaps
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", NAMES)
def test_future_perturbation_leaves_past_bitwise_unchanged(name):
    d = with_holes(random_ohlcv(500, 4, seed=1), seed=2, frac=0.03, lead=40)
    base = run(name, d)
    rng = np.random.default_rng(7)
    for t in (0, 1, 25, 200, 350, 498):
        y = {k: v.copy() for k, v in d.items()}
        hole = rng.random(y["close"][t + 1 :].shape) < 0.05
        for v in y.values():
            tail = v[t + 1 :]
            tail *= rng.uniform(0.8, 1.2, size=tail.shape)
            tail[hole] = np.nan
        pert = run(name, y)
        np.testing.assert_array_equal(base[: t + 1], pert[: t + 1], err_msg=f"{name} t={t}")
        if t < 490:
            assert not np.array_equal(base[t + 1 :], pert[t + 1 :], equal_nan=True)


@pytest.mark.parametrize("name", NAMES)
def test_truncated_history_gives_same_prefix(name):
    d = with_holes(random_ohlcv(400, 3, seed=3), seed=4, frac=0.03)
    full = run(name, d)
    for t in (150, 333):
        np.testing.assert_array_equal(full[: t + 1], run(name, take(d, slice(0, t + 1))))


@pytest.mark.parametrize("name", NAMES)
def test_inner_hole_equals_compressed_series(name):
    d = take(random_ohlcv(600, 1, seed=4), (slice(None), 0))
    holes = np.r_[150, 151, 152, 300, 420:430]
    x = {k: v.copy() for k, v in d.items()}
    for v in x.values():
        v[holes] = np.nan
    valid = np.isfinite(x["close"])
    res = run(name, x)
    assert res.ndim == 1 and np.isnan(res[holes]).all()
    np.testing.assert_array_equal(res[valid], run(name, take(x, valid)))
    assert np.isfinite(res[valid][100:]).any()


@pytest.mark.parametrize("name", NAMES)
def test_panel_columns_are_independent_compressed_series(name):
    d = with_holes(random_ohlcv(500, 4, seed=5), seed=6, frac=0.05, lead=60)
    res = run(name, d)
    for j in range(4):
        valid = np.isfinite(d["close"][:, j])
        assert np.isnan(res[~valid, j]).all()
        np.testing.assert_array_equal(res[valid, j], run(name, take(d, (valid, j))))


@pytest.mark.parametrize("name", [n for n in NAMES if len(CATALOGUE[n].inputs) > 1])
def test_missing_any_input_is_a_missing_bar(name):
    """A NaN in one field alone (e.g. volume) removes the bar: state is not touched."""
    defn = CATALOGUE[name]
    d = take(random_ohlcv(300, 1, seed=8), (slice(None), 0))
    full = run(name, d)
    for f in defn.inputs:
        x = {k: v.copy() for k, v in d.items()}
        x[f][[100, 200]] = np.nan
        res = run(name, x)
        assert np.isnan(res[[100, 200]]).all(), f
        keep = np.ones(300, bool)
        keep[[100, 200]] = False
        np.testing.assert_array_equal(res[keep], run(name, take(d, keep)))
        assert not np.array_equal(res[keep], full[keep], equal_nan=True)


def test_warmup_lengths():
    d = take(random_ohlcv(300, 1, seed=9, zero_volume=0.0), (slice(None), 0))
    first = {"roc": 5, "momentum": 5, "price_position": 5, "bollinger_pct_b": 7,
             "bollinger_bandwidth": 7, "vwap": 6, "obv": 0, "volume_zscore": 8, "atr": 6,
             "vol_of_vol": 5 + 8 - 1, "skewness": 12, "kurtosis": 12, "parkinson": 4,
             "garman_klass": 4}
    for name, k in first.items():
        res = run(name, d)
        assert np.isnan(res[:k]).all() and np.isfinite(res[k:]).all(), name


def test_all_nan_and_short_columns():
    x = random_ohlcv(30, 3, seed=1)
    for v in x.values():
        v[:, 0] = np.nan
        v[:27, 1] = np.nan
    for name in NAMES:
        res = run(name, x)
        assert np.isnan(res[:, 0]).all(), name
        if name != "obv":
            assert np.isnan(res[:, 1]).all(), name


# --------------------------------------------------------------------------- #
# hypothesis properties
# --------------------------------------------------------------------------- #


@st.composite
def ohlcv_panels(draw, min_T=40, max_T=300):
    T = draw(st.integers(min_T, max_T))
    N = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    d = random_ohlcv(T, N, seed=seed, p0=draw(st.floats(0.5, 5e3)))
    if draw(st.booleans()):
        d = with_holes(d, seed=seed + 1, frac=draw(st.floats(0.0, 0.1)),
                       lead=draw(st.integers(0, T // 4)))
    return d


PRICES = ("open", "high", "low", "close")
PRICE_SCALE_INVARIANT = ("roc", "price_position", "bollinger_pct_b", "bollinger_bandwidth",
                         "skewness", "kurtosis", "parkinson", "garman_klass", "vol_of_vol",
                         "volume_zscore", "obv")
PRICE_SCALE_EQUIVARIANT = ("atr", "momentum", "vwap")


def _scaled(d, c, fields):
    return {k: (v * c if k in fields else v) for k, v in d.items()}


def _close(b, a, rtol=1e-9, atol=1e-9):
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("name", PRICE_SCALE_INVARIANT)
@SETTINGS
@given(d=ohlcv_panels(), c=st.floats(1e-3, 1e3).filter(lambda v: v != 1.0))
def test_price_scale_invariance(name, d, c):
    _close(run(name, _scaled(d, c, PRICES)), run(name, d))


@pytest.mark.parametrize("name", PRICE_SCALE_EQUIVARIANT)
@SETTINGS
@given(d=ohlcv_panels(), c=st.floats(1e-3, 1e3).filter(lambda v: v != 1.0))
def test_price_scale_equivariance(name, d, c):
    a = run(name, d)
    _close(run(name, _scaled(d, c, PRICES)), a * c, atol=1e-9 * c * np.nanmax(np.abs(a)))


@pytest.mark.parametrize("name", ("volume_zscore", "vwap"))
@SETTINGS
@given(d=ohlcv_panels(), c=st.floats(1e-3, 1e6).filter(lambda v: v != 1.0))
def test_volume_scale_invariance(name, d, c):
    _close(run(name, _scaled(d, c, ("volume",))), run(name, d))


@SETTINGS
@given(d=ohlcv_panels(), c=st.sampled_from([0.5, 2.0, 4.0, 1024.0]))
def test_obv_volume_equivariance(d, c):
    _close(run("obv", _scaled(d, c, ("volume",))), run("obv", d) * c, atol=0.0)


@SETTINGS
@given(d=ohlcv_panels())
def test_ranges(d):
    pp = run("price_position", d)
    assert (pp[np.isfinite(pp)] >= 0).all() and (pp[np.isfinite(pp)] <= 1).all()
    for name in ("atr", "parkinson", "garman_klass", "vol_of_vol", "bollinger_bandwidth"):
        r = run(name, d)
        assert (r[np.isfinite(r)] >= 0).all(), name


@pytest.mark.parametrize("name", NAMES)
def test_float32_option(name):
    d = with_holes(random_ohlcv(600, 3, seed=0), seed=1, frac=0.02, lead=20)
    a = run(name, d)
    b = run(name, d, dtype="float32")
    assert a.dtype == np.float64 and b.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, equal_nan=True)
    c = run(name, {k: v.astype(np.float32) for k, v in d.items()})
    assert c.dtype == np.float64


@pytest.mark.parametrize("name", NAMES)
def test_one_d_in_one_d_out_and_lists(name):
    d = random_ohlcv(200, 1, seed=2)
    r2 = run(name, d)
    r1 = run(name, take(d, (slice(None), 0)))
    assert r1.shape == (200,) and r2.shape == (200, 1) and r2.flags.c_contiguous
    np.testing.assert_array_equal(r2[:, 0], r1)
    np.testing.assert_array_equal(run(name, {k: v.tolist() for k, v in d.items()}), r2)
    np.testing.assert_array_equal(run(name, {k: np.asfortranarray(v) for k, v in d.items()}),
                                  r2)


# --------------------------------------------------------------------------- #
# validation
# --------------------------------------------------------------------------- #

WINDOW_PARAMS = [(n, p, lo) for n, p, lo in [
    ("roc", "period", 1), ("momentum", "period", 1), ("atr", "period", 1),
    ("price_position", "window", 1), ("bollinger_pct_b", "window", 2),
    ("bollinger_bandwidth", "window", 2), ("vwap", "window", 1),
    ("volume_zscore", "window", 2), ("vol_of_vol", "vol_window", 2),
    ("vol_of_vol", "window", 2), ("skewness", "window", 3), ("kurtosis", "window", 4),
    ("parkinson", "window", 1), ("garman_klass", "window", 1),
]]  # fmt: skip


@pytest.mark.parametrize("name,param,minimum", WINDOW_PARAMS)
@settings(max_examples=15, deadline=None)
@given(bad=st.one_of(st.integers(-(10**6), 0), st.sampled_from([1.5, "3", None, True, -1])))
def test_bad_window_raises_naming_parameter(name, param, minimum, bad):
    d = random_ohlcv(50, 1, seed=0)
    with pytest.raises(ValueError, match=f"{param} must be an int >= {minimum}") as exc:
        run(name, d, **{param: bad})
    assert repr(bad) in str(exc.value)
    with pytest.raises(ValueError, match=f"got {minimum - 1}$"):
        run(name, d, **{param: minimum - 1})


@pytest.mark.parametrize("name,param,minimum", WINDOW_PARAMS)
def test_minimum_window_is_accepted(name, param, minimum):
    d = random_ohlcv(60, 2, seed=0)
    res = run(name, d, **{param: minimum})
    assert res.shape == (60, 2) and np.isfinite(res[-1]).all()


@pytest.mark.parametrize("name,param", [
    ("vol_of_vol", "periods_per_year"), ("parkinson", "periods_per_year"),
    ("garman_klass", "periods_per_year"), ("bollinger_pct_b", "k"),
    ("bollinger_bandwidth", "k"),
])  # fmt: skip
@pytest.mark.parametrize("bad", [0.0, -1.0, np.inf, np.nan, "2", True])
def test_bad_positive_parameter(name, param, bad):
    with pytest.raises(ValueError, match=f"{param} must be a finite number > 0"):
        run(name, random_ohlcv(50, 1, seed=0), **{param: bad})


@pytest.mark.parametrize("name", NAMES)
def test_bad_arrays_name_the_input(name):
    defn = CATALOGUE[name]
    d = random_ohlcv(50, 2, seed=0)
    for f in defn.inputs:
        for bad in (np.ones((50, 2, 2)), np.array([["a"] * 2] * 50), [[1.0, 2.0], [3.0]]):
            with pytest.raises(ValueError, match=rf"^{f} must"):
                run(name, {**d, f: bad})
        inf = d[f].copy()
        inf[3, 1] = np.inf
        with pytest.raises(ValueError, match=f"{f} contains"):
            run(name, {**d, f: inf})
        if len(defn.inputs) > 1:
            with pytest.raises(ValueError, match=rf"{f} must have the shape of .* got \(49, 2\)"
                               if f != defn.inputs[0] else "must have the shape of"):
                run(name, {**d, f: d[f][:49]})
            with pytest.raises(ValueError, match="shape"):
                run(name, {**d, f: d[f][:, 0]})
    with pytest.raises(ValueError, match="dtype"):
        run(name, d, dtype=np.int64)
    with pytest.raises(ValueError, match="backend"):
        run(name, d, backend="gpu")


@pytest.mark.parametrize("name", NAMES)
def test_stream_class_validates_parameters(name):
    defn = CATALOGUE[name]
    for param in defn.params:
        with pytest.raises(ValueError, match=param):
            defn.stream(3, **{**defn.params, param: 0})
    with pytest.raises(ValueError, match="n_symbols"):
        defn.stream(0, **defn.params)


def test_vwap_refuses_negative_volume():
    # volumes are the weights: [1, -0.5] on typical prices [100, 200] gave a "VWAP" of
    # 0.0, outside every bar's range, silently
    p = np.array([100.0, 200.0])
    with pytest.raises(ValueError, match=r"volume must be >= 0 \(NaN marks a missing bar\); "
                                         r"got -0.5 at row 1$"):
        TA.rolling_vwap(p, p, p, np.array([1.0, -0.5]), 2)
    np.testing.assert_allclose(TA.rolling_vwap(p, p, p, np.array([1.0, 0.0]), 2), [np.nan, 100.0])
    assert CATALOGUE["vwap"].nonnegative == ("volume",)
