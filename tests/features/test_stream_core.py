"""Streaming classes of the first feature set reproduce their batch kernels bar by bar."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.features.features_helpers import nan_panel, random_walk
from tests.features.stream_helpers import assert_stream_matches_batch, run_stream
from workbench.features import _stream_core as S
from workbench.features._catalogue import CATALOGUE, get
from workbench.features._register_core import CORE_FEATURES, normalised_return
from workbench.features._stream_base import StreamFeature

NAMES = (
    "returns", "log_returns", "sma", "ema", "rolling_std", "rsi", "macd", "bollinger",
    "rolling_volatility", "ex_ante_volatility", "normalised_return", "macd_signal",
)  # fmt: skip

# parameter sets per entry beyond the defaults: exact-every-step windows (<= 16), the
# sliding path with periodic re-syncs (> 16), degenerate periods, other horizons / pairs
EXTRA_PARAMS = {
    "sma": [{"window": 1}, {"window": 5}, {"window": 16}, {"window": 17}, {"window": 100}],
    "ema": [{"span": 1}, {"span": 3}, {"span": 50}],
    "rolling_std": [{"window": 2}, {"window": 7, "ddof": 1}, {"window": 63, "ddof": 1}],
    "rsi": [{"period": 1}, {"period": 2}, {"period": 30}],
    "macd": [{"fast": 1, "slow": 2, "signal": 1}, {"fast": 3, "slow": 10, "signal": 5}],
    "bollinger": [{"window": 5, "k": 1.5}, {"window": 40, "k": 3.0}],
    "rolling_volatility": [{"window": 2}, {"window": 60, "periods_per_year": 52}],
    "ex_ante_volatility": [{"span": 2}, {"span": 5, "periods_per_year": 12}],
    "normalised_return": [{"horizon": 21}, {"horizon": 63}, {"horizon": 252},
                          {"horizon": 5, "span": 3}],
    "macd_signal": [{"short": 16, "long": 48}, {"short": 32, "long": 96},
                    {"short": 2, "long": 3, "price_window": 5, "signal_window": 10},
                    {"price_window": 20, "signal_window": 40}],
}
CASES = [(n, {}) for n in NAMES] + [(n, p) for n in NAMES for p in EXTRA_PARAMS.get(n, [])]


def _case_id(case):
    name, params = case
    return name + ("" if not params else "-" + "-".join(f"{k}{v}" for k, v in params.items()))


@pytest.fixture(scope="module")
def real_close() -> np.ndarray:
    """Bundled daily universe (leading NaNs, trailing NaNs) with extra inner holes punched."""
    from workbench.data import load_universe

    x = np.array(load_universe("daily").field("close"), dtype=float)
    rng = np.random.default_rng(11)
    for j in range(x.shape[1]):
        valid = np.flatnonzero(~np.isnan(x[:, j]))
        holes = rng.choice(valid[10:-10], size=40, replace=False)
        x[holes, j] = np.nan
        x[valid[500:503], j] = np.nan  # a short run of holes
    return x


def _constant_runs_panel() -> np.ndarray:
    """Flat price runs (zero price std -> NaN q in the Baz signal, zero EWM vol) and ticks."""
    z = random_walk(1200, 4, seed=5)
    z[300:420, 0] = z[299, 0]  # 120 flat bars: price std 0 over a 63-window
    z[:, 1] = np.round(z[:, 1])  # tick-sized prices: many zero returns
    z[700:900:3, 1] = np.nan
    z[:, 2] = 50.0  # constant from the start: the EWM vol is exactly 0
    z[:80, 3] = np.nan
    z[600:, 3] = np.nan  # delisted
    return z


def test_registry_entries():
    assert set(NAMES) <= set(CATALOGUE)
    assert [d.name for d in CORE_FEATURES] == list(NAMES)
    groups = {"returns": "trend", "log_returns": "trend", "sma": "trend", "ema": "trend",
              "rolling_std": "volatility", "rsi": "trend", "macd": "trend", "bollinger": "bands",
              "rolling_volatility": "volatility", "ex_ante_volatility": "volatility",
              "normalised_return": "deep-momentum", "macd_signal": "deep-momentum"}
    for name in NAMES:
        d = get(name)
        assert d.group == groups[name], name
        assert d.inputs == ("close",)
        assert d.stream is not None and issubclass(d.stream, StreamFeature)
        assert d.stream.n_outputs == len(d.outputs), name
        assert d.description and ";" in d.description, name  # formula; source
        # the stream class takes exactly the registry parameters, with the same defaults
        sig = inspect.signature(d.stream.__init__).parameters
        assert [p for p in sig if p not in ("self", "n_symbols")] == list(d.params), name
        for p, default in d.params.items():
            assert sig[p].default == default, (name, p)
        bsig = inspect.signature(d.batch).parameters
        for p, default in d.params.items():
            assert bsig[p].default == default, (name, p)
    assert get("macd").outputs == ("line", "signal", "hist")
    assert get("bollinger").outputs == ("upper", "middle", "lower")
    assert get("ex_ante_volatility").params == {"span": 60, "periods_per_year": 252}


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_stream_matches_batch_on_real_data_with_holes(case, real_close):
    name, params = case
    assert_stream_matches_batch(get(name), {"close": real_close}, **params)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_stream_matches_batch_on_random_walks(case):
    name, params = case
    assert_stream_matches_batch(get(name), {"close": nan_panel(T=900, N=5, seed=2)}, **params)


@pytest.mark.parametrize("name", NAMES)
def test_stream_matches_batch_on_flat_runs_and_ticks(name):
    assert_stream_matches_batch(get(name), {"close": _constant_runs_panel()})


def test_flat_runs_panel_exercises_the_nan_q_path():
    y = get("macd_signal").batch(_constant_runs_panel())
    # column 0: defined before the flat run, NaN inside it (zero price std), and defined
    # again once a new window of q has filled; column 2 (constant throughout): all NaN
    assert not np.isnan(y[313, 0]) and np.isnan(y[380:420, 0]).all()
    assert not np.isnan(y[-1, 0])
    assert np.isnan(y[:, 2]).all()


def _wide_panel() -> np.ndarray:
    """37 symbols mostly in step (runs of adjacent symbols re-sync together) and a few not."""
    x = random_walk(700, 37, seed=12)
    x[:40, 30:] = np.nan  # late listings: a second aligned group
    x[[200, 333], 5] = np.nan  # single missing bars split the aligned run
    x[np.random.default_rng(1).random(700) < 0.1, 20] = np.nan
    x[500:, 36] = np.nan
    return x


@pytest.mark.parametrize(
    "case",
    [("sma", {}), ("sma", {"window": 10}), ("rolling_std", {"window": 63, "ddof": 1}),
     ("bollinger", {"window": 12}), ("rolling_volatility", {}),
     ("rolling_volatility", {"window": 5}), ("macd_signal", {}),
     ("macd_signal", {"short": 2, "long": 3, "price_window": 5, "signal_window": 10})],
    ids=_case_id,
)
def test_stream_matches_batch_on_wide_mostly_aligned_panel(case):
    name, params = case
    assert_stream_matches_batch(get(name), {"close": _wide_panel()}, **params)


@pytest.mark.parametrize("name", NAMES)
def test_stream_matches_batch_one_symbol(name):
    x = random_walk(600, 1, seed=9)
    x[[100, 101, 350], 0] = np.nan
    assert_stream_matches_batch(get(name), {"close": x}, **EXTRA_PARAMS.get(name, [{}])[0])


def test_batch_wrapper_normalised_return_is_one_channel():
    import workbench.features as F

    x = nan_panel(T=400, N=4, seed=4)
    for k in (1, 21):
        np.testing.assert_array_equal(normalised_return(x, k, 30),
                                      F.normalised_returns(x, (1, 21), 30)[..., (1, 21).index(k)])
    assert normalised_return(x[:, 0], 5).shape == (400,)
    assert normalised_return(x, 5, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match="horizon must be an int >= 1, got 0"):
        normalised_return(x, 0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(NAMES),
    window=st.integers(2, 40),
    seed=st.integers(0, 10_000),
    hole_p=st.sampled_from([0.0, 0.05, 0.3]),
    lead=st.integers(0, 60),
)
def test_property_random_params_and_holes(name, window, seed, hole_p, lead):
    params = {
        "sma": {"window": window}, "ema": {"span": window}, "rsi": {"period": window},
        "rolling_std": {"window": window, "ddof": 1}, "bollinger": {"window": window},
        "rolling_volatility": {"window": window}, "ex_ante_volatility": {"span": window},
        "normalised_return": {"horizon": window, "span": 10},
        "macd": {"fast": max(1, window // 3), "slow": window, "signal": 3},
        "macd_signal": {"short": max(1, window // 4), "long": window, "price_window": 8,
                        "signal_window": 12},
    }.get(name, {})  # fmt: skip
    rng = np.random.default_rng(seed)
    x = random_walk(250, 3, seed=seed, p0=float(rng.uniform(0.5, 5000.0)))
    x[rng.random(x.shape) < hole_p] = np.nan
    x[:lead, rng.integers(0, 3)] = np.nan
    assert_stream_matches_batch(get(name), {"close": x}, **params)


@pytest.mark.parametrize("name", NAMES)
def test_state_size_is_constant(name):
    defn = get(name)
    x = random_walk(5000, 4, seed=1)
    feat = defn.stream(4)
    out = np.empty((4, feat.n_outputs))
    for t in range(100):
        feat.update({"close": x[t]}, out)
    size100 = feat.state_nbytes
    arrays100 = {k: v.shape for k, v in vars(feat).items() if isinstance(v, np.ndarray)}
    for t in range(100, 5000):
        feat.update({"close": x[t]}, out)
    assert feat.state_nbytes == size100
    assert {k: v.shape for k, v in vars(feat).items() if isinstance(v, np.ndarray)} == arrays100
    # O(window) per symbol: nothing near the history length
    assert size100 < 4 * 8 * (20 + 2 * 300)


@pytest.mark.parametrize("name", NAMES)
def test_reset_forgets_history(name):
    defn = get(name)
    x = nan_panel(T=500, N=4, seed=6)
    fresh = run_stream(defn, {"close": x})
    feat = defn.stream(4)
    out = np.empty((4, feat.n_outputs))
    for t in range(200):
        feat.update({"close": x[::-1][t]}, out)
    feat.reset()
    again = np.empty_like(fresh)
    for t in range(500):
        feat.update({"close": x[t]}, out)
        again[t] = out
    np.testing.assert_array_equal(again, fresh)


def test_missing_bar_leaves_state_untouched():
    x = random_walk(300, 2, seed=3)
    a = get("macd_signal").stream(2, price_window=10, signal_window=20)
    b = get("macd_signal").stream(2, price_window=10, signal_window=20)
    oa = np.empty((2, 1))
    ob = np.empty((2, 1))
    for t in range(300):
        a.update({"close": x[t]}, oa)
        if t % 7 == 0:  # b also sees all-NaN bars
            b.update({"close": np.full(2, np.nan)}, ob)
            assert np.isnan(ob).all()
        b.update({"close": x[t]}, ob)
        np.testing.assert_array_equal(oa, ob)


@pytest.mark.parametrize(
    "cls, kwargs, msg",
    [
        (S.SMAStream, {"window": 0}, "window must be an int >= 1, got 0"),
        (S.EMAStream, {"span": 2.5}, "span must be an int >= 1, got 2.5"),
        (S.RollingStdStream, {"window": 1}, "window must be an int >= 2, got 1"),
        (S.RollingStdStream, {"window": 3, "ddof": 3}, r"ddof must be an int in \[0, window=3\)"),
        (S.RSIStream, {"period": 0}, "period must be an int >= 1, got 0"),
        (S.MACDStream, {"fast": 26, "slow": 12}, "fast must be < slow=12, got 26"),
        (S.BollingerStream, {"k": -1.0}, "k must be a finite number > 0, got -1.0"),
        (S.RollingVolatilityStream, {"periods_per_year": 0}, "periods_per_year must be"),
        (S.ExAnteVolatilityStream, {"span": True}, "span must be an int >= 2 .*got True"),
        (S.ExAnteVolatilityStream, {"span": 1}, "span must be an int >= 2 .*got 1 .*all NaN"),
        (S.NormalisedReturnStream, {"span": 1}, "span must be an int >= 2 .*got 1"),
        (S.NormalisedReturnStream, {"horizon": 0}, "horizon must be an int >= 1, got 0"),
        (S.MACDSignalStream, {"short": 24, "long": 8}, "short must be < long=8, got 24"),
        (S.MACDSignalStream, {"signal_window": 1}, "signal_window must be an int >= 2, got 1"),
    ],
)
def test_invalid_parameters_name_the_parameter(cls, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        cls(3, **kwargs)
    with pytest.raises(ValueError, match="n_symbols must be >= 1"):
        cls(0)


def test_registry_import_does_not_import_numba():
    code = (
        "import sys; import workbench.features._register_core as R; "
        "import workbench.features._feature_stream; "
        "assert len(R.CORE_FEATURES) == 12; assert 'numba' not in sys.modules, 'numba'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
