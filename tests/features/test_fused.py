"""The fused CPU kernel behind ``FeatureSet.compute``.

Bitwise parity with the per-feature public functions, float32, chunking invariance and
``out=`` reuse.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench import features as ft
from workbench.data import load_universe
from workbench.features import FeatureSet, _cpu_fused

from .features_helpers import random_walk

_REF = {
    "sma": lambda c, p, **kw: ft.sma(c, p["window"], **kw),
    "ema": lambda c, p, **kw: ft.ema(c, p["span"], **kw),
    "rolling_std": lambda c, p, **kw: ft.rolling_std(c, p["window"], p["ddof"], **kw),
    "rsi": lambda c, p, **kw: ft.rsi(c, p["period"], **kw),
    "macd": lambda c, p, **kw: ft.macd(c, p["fast"], p["slow"], p["signal"], **kw),
    "bollinger": lambda c, p, **kw: ft.bollinger(c, p["window"], p["k"], **kw),
    "roc": lambda c, p, **kw: ft.roc(c, p["period"], **kw),
    "momentum": lambda c, p, **kw: ft.momentum(c, p["period"], **kw),
    "returns": lambda c, p, **kw: ft.simple_returns(c, **kw),
    "log_returns": lambda c, p, **kw: ft.log_returns(c, **kw),
    "rolling_volatility": lambda c, p, **kw: ft.rolling_volatility(
        c, p["window"], p["periods_per_year"], **kw),
}

#: Every fusable feature, several instances, windows on both sides of the exact-recompute
#: threshold (16) and sharing state (Bollinger / std / SMA of one window).
_RECIPE = [
    "rsi", ("rsi", {"period": 1}), ("rsi", {"period": 3}),
    "macd", ("macd", {"fast": 1, "slow": 2, "signal": 1}), ("macd", {"fast": 3, "slow": 7,
                                                                     "signal": 4}),
    "bollinger", ("bollinger", {"window": 5, "k": 1.5}), ("bollinger", {"window": 20, "k": 1.0}),
    "ema", ("ema", {"span": 1}), ("ema", {"span": 7}),
    "rolling_std", ("rolling_std", {"window": 20, "ddof": 1}),
    ("rolling_std", {"window": 5, "ddof": 0}), ("rolling_std", {"window": 17}),
    "sma", ("sma", {"window": 1}), ("sma", {"window": 5}), ("sma", {"window": 33}),
    ("roc", {"period": 10}), ("roc", {"period": 1}), ("momentum", {"period": 3}), "momentum",
    "returns", "log_returns",
    "rolling_volatility", ("rolling_volatility", {"window": 2, "periods_per_year": 12}),
    ("rolling_volatility", {"window": 20, "periods_per_year": 52}),
]


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.int64 if a.dtype == np.float64 else np.int32)


def _assert_bitwise(got: np.ndarray, exp: np.ndarray, what: str) -> None:
    assert got.dtype == exp.dtype, what
    bad = _bits(got) != _bits(exp)
    assert not bad.any(), (f"{what}: {int(bad.sum())} elements differ, first at "
                           f"{np.argwhere(bad)[0]}: {got[bad][:3]} vs {exp[bad][:3]}")


def _assert_matches_per_feature(fs: FeatureSet, close: np.ndarray, block=None) -> None:
    block = fs.compute({"close": close}) if block is None else block
    dt = np.dtype(fs.dtype)
    f = 0
    for inst in fs.instances():
        ref = _REF[inst.name](close, inst.params, dtype=dt)
        ref = ref if isinstance(ref, tuple) else (ref,)
        for k, r in enumerate(ref):
            _assert_bitwise(block.storage[f + k], r, inst.columns[k])
        f += len(ref)
    assert f == block.storage.shape[0]


def _holey(T: int, N: int, seed: int, p_hole: float, max_lead: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = random_walk(T, N, seed)
    x[rng.random((T, N)) < p_hole] = np.nan
    for j in range(N):
        x[: rng.integers(0, max_lead + 1), j] = np.nan
    return x


def test_fused_kernel_is_used_for_close_only_features(monkeypatch):
    calls = []
    orig = _cpu_fused.run

    def spy(program, x, out, cols=None, **kw):
        calls.append(program.prog.shape[0])
        return orig(program, x, out, cols, **kw)

    monkeypatch.setattr(_cpu_fused, "run", spy)
    x = random_walk(60, 3)
    FeatureSet.benchmark(backend="cpu").compute({"close": x})
    # one call per chunk; 8 instructions: rsi, macd, ema, 2 x roc, ONE rolling state for
    # window 20 (shared by bollinger and rolling_std) and the two emits reading it
    assert len(calls) == 1 and calls[0] == 8
    calls.clear()
    FeatureSet(features=["atr"], backend="cpu").compute(
        {"high": x * 1.01, "low": x * 0.99, "close": x})
    assert calls == []


@pytest.mark.parametrize("case", ["clean", "holes", "all_missing_rows", "late_listings"])
def test_full_recipe_bitwise_equals_per_feature_functions(case):
    T, N = 400, 70  # 70 assets: the kernel splits them into blocks
    if case == "clean":
        x = random_walk(T, N, 1)
    elif case == "holes":
        x = _holey(T, N, 2, 0.05, 40)
    elif case == "all_missing_rows":  # union-calendar holidays: blocks stay aligned
        x = random_walk(T, N, 3)
        x[[0, 5, 6, 100, 399]] = np.nan
    else:  # a few assets listed late, the rest complete
        x = random_walk(T, N, 4)
        x[:30, [3, 50]] = np.nan
        x[200:260, 7] = np.nan
    fs = FeatureSet(features=_RECIPE, backend="cpu")
    _assert_matches_per_feature(fs, x)


def test_real_bundled_data_bitwise():
    close = load_universe("daily")["close"]
    assert np.isnan(close).any()  # leading NaNs / holes on the union calendar
    fs = FeatureSet(features=_RECIPE, backend="cpu")
    _assert_matches_per_feature(fs, close)
    fs32 = FeatureSet(features=_RECIPE, backend="cpu", dtype="float32")
    _assert_matches_per_feature(fs32, close)


_feature = st.one_of(
    st.builds(lambda w: ("sma", {"window": w}), st.integers(1, 40)),
    st.builds(lambda s: ("ema", {"span": s}), st.integers(1, 40)),
    st.builds(lambda w, d: ("rolling_std", {"window": w, "ddof": d}), st.integers(2, 40),
              st.integers(0, 1)),
    st.builds(lambda p: ("rsi", {"period": p}), st.integers(1, 30)),
    st.builds(lambda f, d, g: ("macd", {"fast": f, "slow": f + d, "signal": g}),
              st.integers(1, 15), st.integers(1, 20), st.integers(1, 12)),
    st.builds(lambda w, k: ("bollinger", {"window": w, "k": k}), st.integers(2, 40),
              st.floats(0.1, 4.0)),
    st.builds(lambda p: ("roc", {"period": p}), st.integers(1, 30)),
    st.builds(lambda p: ("momentum", {"period": p}), st.integers(1, 30)),
    st.just(("returns", {})),
    st.just(("log_returns", {})),
    st.builds(lambda w, a: ("rolling_volatility", {"window": w, "periods_per_year": a}),
              st.integers(2, 40), st.sampled_from([1.0, 12, 52, 252, 8760.5])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feats=st.lists(_feature, min_size=1, max_size=8), seed=st.integers(0, 2**16),
       p_hole=st.sampled_from([0.0, 0.02, 0.3]), n=st.integers(1, 140),
       max_lead=st.sampled_from([0, 5, 150]), f32=st.booleans())
def test_random_recipes_bitwise(feats, seed, p_hole, n, max_lead, f32):
    specs = [{"name": name, "params": p, "alias": f"f{k}"} for k, (name, p) in enumerate(feats)]
    fs = FeatureSet(features=specs, backend="cpu", dtype="float32" if f32 else "float64",
                    chunk_assets=(seed % 97) + 1)
    x = _holey(120, n, seed, p_hole, max_lead)
    _assert_matches_per_feature(fs, x)


def test_chunking_invariance_and_mixed_features():
    x = _holey(300, 37, 5, 0.03, 60)
    data = {"open": x, "high": x * 1.01, "low": x * 0.99, "close": x,
            "volume": np.ones_like(x)}
    feats = ["atr"] + _RECIPE[:12] + ["obv", "rolling_volatility"]
    whole = FeatureSet(features=feats, backend="cpu", chunk_assets=1000).compute(data)
    for chunk in (1, 5, 16, 36):
        part = FeatureSet(features=feats, backend="cpu", chunk_assets=chunk).compute(data)
        _assert_bitwise(part.storage, whole.storage, f"chunk_assets={chunk}")
    # the non-fused features around the fused ones land in their own slabs
    _assert_bitwise(whole["atr_14"], ft.atr(x * 1.01, x * 0.99, x, 14), "atr")
    _assert_bitwise(whole["rsi_14"], ft.rsi(x, 14), "rsi")


def test_out_reuse_gives_identical_results():
    fs = FeatureSet(features=_RECIPE[:15] + ["atr"], backend="cpu", chunk_assets=7)
    x1 = _holey(200, 20, 6, 0.05, 30)
    x2 = _holey(200, 20, 7, 0.05, 30)

    def data(x):
        return {"high": x * 1.01, "low": x * 0.99, "close": x}

    fresh1 = fs.compute(data(x1))
    fresh2 = fs.compute(data(x2))
    buf = np.full_like(fresh1.storage, 123.0)
    got = fs.compute(data(x1), out=buf)
    assert got.storage is buf
    _assert_bitwise(buf, fresh1.storage, "out=array")
    again = fs.compute(data(x2), out=got)  # a FeatureBlock: its storage is reused
    assert again.storage is buf
    _assert_bitwise(buf, fresh2.storage, "out=FeatureBlock")
    assert again.columns == fresh2.columns


def test_out_validation():
    fs = FeatureSet(features=["rsi", "ema"], backend="cpu")
    x = random_walk(50, 3)
    with pytest.raises(ValueError, match=r"out must have shape \(F, T, N\) = \(2, 50, 3\)"):
        fs.compute({"close": x}, out=np.empty((2, 50, 4)))
    with pytest.raises(ValueError, match="out must have dtype float64"):
        fs.compute({"close": x}, out=np.empty((2, 50, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        fs.compute({"close": x}, out=np.empty((2, 3, 50)).transpose(0, 2, 1))
    with pytest.raises(ValueError, match="out must be a FeatureBlock or a numpy"):
        fs.compute({"close": x}, out=[[0.0]])


def test_errors_match_per_feature_functions():
    x = random_walk(50, 3)
    bad = x.copy()
    bad[10, 1] = np.inf
    with pytest.raises(ValueError, match=r"close contains \+/-inf"):
        FeatureSet(features=["rsi"], backend="cpu").compute({"close": bad})
    with pytest.raises(ValueError, match=r"x contains \+/-inf"):
        FeatureSet(features=["ema", "rsi"], backend="cpu").compute({"close": bad})
    cases = [(("rolling_std", {"window": 3, "ddof": 3}), r"ddof must be an int in \[0, window=3\)"),
             (("macd", {"fast": 26}), "fast must be < slow=26, got 26"),
             (("bollinger", {"k": 0.0}), "k must be a finite number > 0, got 0.0"),
             (("rsi", {"period": 0}), "period must be an int >= 1, got 0"),
             (("rolling_volatility", {"window": 1}), "window must be an int >= 2, got 1")]
    for feat, msg in cases:
        with pytest.raises(ValueError, match=msg):
            FeatureSet(features=[feat], backend="cpu").compute({"close": x})


def test_featureset_fusable_list_matches_the_kernel():
    from workbench.features import _cpu_fused, _featureset

    assert _featureset._FUSABLE == _cpu_fused.FUSABLE
