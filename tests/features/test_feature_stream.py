"""FeatureStream: columns, parity with the batch functions, validation, reset, O(1) state."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from tests.features.features_helpers import nan_panel, random_walk
from workbench.features import _feature_stream as FSM
from workbench.features._catalogue import get
from workbench.features._feature_stream import FeatureStream
from workbench.features._register_core import CORE_FEATURES

SPECS = [
    ("returns", {}),
    ("sma", {"window": 10}),
    ("macd", {}),
    ("rsi", {"period": 7}),
    ("bollinger", {"window": 15, "k": 1.5}),
    ("ex_ante_volatility", {}),
    ("normalised_return", {"horizon": 21}),
    ("macd_signal", {"price_window": 20, "signal_window": 40}),
]
EXPECTED_COLUMNS = (
    "returns",
    "sma_10",
    "macd_12_26_9_line", "macd_12_26_9_signal", "macd_12_26_9_hist",
    "rsi_7",
    "bollinger_15_1.5_upper", "bollinger_15_1.5_middle", "bollinger_15_1.5_lower",
    "ex_ante_volatility_60",
    "normalised_return_21",
    "macd_signal_8_24_20_40",
)  # fmt: skip


def _symbols(n):
    return [f"S{i}" for i in range(n)]


def _batch_stack(specs, close):
    """(T, N, F): the catalogue batch functions' outputs stacked in FeatureStream order."""
    cols = []
    for name, params in specs:
        res = get(name).batch(close, **params)
        cols += list(res) if isinstance(res, tuple) else [res]
    return np.stack(cols, axis=-1)


@pytest.fixture(scope="module")
def real_close() -> np.ndarray:
    from workbench.data import load_universe

    x = np.array(load_universe("daily").field("close"), dtype=float)
    x[np.random.default_rng(3).random(x.shape) < 0.02] = np.nan  # extra holes
    return x


def test_columns_order_and_defaults():
    fs = FeatureStream(SPECS, _symbols(3))
    assert fs.columns == EXPECTED_COLUMNS
    assert fs.n_features == len(EXPECTED_COLUMNS) == 12
    assert fs.symbols == ("S0", "S1", "S2")
    assert fs.fields == ("close",)
    # parameters are completed with the catalogue defaults, in the catalogue's order
    assert fs.specs[2] == ("macd", {"fast": 12, "slow": 26, "signal": 9})
    assert fs.specs[7] == ("macd_signal", {"short": 8, "long": 24, "price_window": 20,
                                           "signal_window": 40})
    assert FeatureStream([("sma", {"window": 5}), "ema"], ["A"]).columns == ("sma_5", "ema_20")


def test_update_many_equals_stacked_batch_outputs_on_real_data(real_close):
    fs = FeatureStream(SPECS, _symbols(real_close.shape[1]))
    got = fs.update_many({"close": real_close})
    want = _batch_stack(SPECS, real_close)
    assert got.shape == want.shape == (real_close.shape[0], real_close.shape[1], 12)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_every_core_entry_with_defaults_matches_batch():
    specs = [(d.name, {}) for d in CORE_FEATURES]
    x = nan_panel(T=800, N=5, seed=8)
    fs = FeatureStream(specs, _symbols(5))
    assert fs.n_features == 16
    got = fs.update_many({"close": x})
    want = _batch_stack([(d.name, dict(d.params)) for d in CORE_FEATURES], x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_update_bar_by_bar_equals_update_many_and_returns_internal_buffer():
    x = nan_panel(T=400, N=4, seed=1)
    a = FeatureStream(SPECS, _symbols(4))
    b = FeatureStream(SPECS, _symbols(4))
    many = a.update_many({"close": x})
    first = b.update({"close": x[0], "volume": np.ones(4)})  # extra fields are ignored
    np.testing.assert_array_equal(first, many[0])
    for t in range(1, 400):
        row = b.update({"close": x[t].tolist() if t % 50 == 0 else x[t]})
        assert row is first  # the internal buffer, overwritten in place
        np.testing.assert_array_equal(row, many[t])
    # update_many after updates continues the same history
    x2 = random_walk(30, 4, seed=2)
    np.testing.assert_array_equal(a.update_many({"close": x2})[-1], b.update_many(
        {"close": x2})[-1])


def test_instances_form():
    @dataclass
    class Inst:
        name: str
        params: dict = field(default_factory=dict)
        columns: tuple = ()

    class FakeSet:
        def instances(self):
            return [Inst("rsi", {"period": 5}, ("rsi5",)),
                    Inst("bollinger", {"window": 10, "k": 2.0}, ("bb_u", "bb_m", "bb_l"))]

    fs = FeatureStream(FakeSet(), _symbols(2))
    assert fs.columns == ("rsi5", "bb_u", "bb_m", "bb_l")
    assert fs.specs == (("rsi", {"period": 5}), ("bollinger", {"window": 10, "k": 2.0}))
    assert fs.n_features == 4
    x = random_walk(120, 2, seed=4)
    got = fs.update_many({"close": x})
    want = _batch_stack([("rsi", {"period": 5}), ("bollinger", {"window": 10, "k": 2.0})], x)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)

    class BadSet:
        def instances(self):
            return [Inst("macd", {}, ("only_one",))]

    with pytest.raises(ValueError, match="'macd' has 3 outputs"):
        FeatureStream(BadSet(), _symbols(2))

    class DefaultsSet:
        def instances(self):
            return [Inst("macd", {"fast": 5}, ("l", "s", "h"))]

    assert FeatureStream(DefaultsSet(), ["A"]).specs == (("macd", {"fast": 5, "slow": 26,
                                                                   "signal": 9}),)


def test_float32_output():
    x = random_walk(100, 3, seed=0)
    f64 = FeatureStream(SPECS, _symbols(3))
    f32 = FeatureStream(SPECS, _symbols(3), dtype=np.float32)
    r64 = f64.update_many({"close": x})
    r32 = f32.update_many({"close": x})
    assert r32.dtype == np.float32 and r64.dtype == np.float64
    np.testing.assert_array_equal(r32, r64.astype(np.float32))
    row = f32.update({"close": x[-1]})
    assert row.dtype == np.float32
    np.testing.assert_array_equal(row, f64.update({"close": x[-1]}).astype(np.float32))


def test_missing_field_and_wrong_shape_errors_leave_state_unchanged():
    x = random_walk(60, 3, seed=5)
    fs = FeatureStream(SPECS, _symbols(3))
    ref = FeatureStream(SPECS, _symbols(3))
    fs.update_many({"close": x[:30]})
    ref.update_many({"close": x[:30]})
    with pytest.raises(ValueError, match="missing input field 'close'"):
        fs.update({"open": x[30]})
    with pytest.raises(ValueError, match=r"'close' must have shape \(N,\) with N=3 symbols, "
                                         r"got \(2,\)"):
        fs.update({"close": x[30, :2]})
    with pytest.raises(ValueError, match=r"'close' must have shape \(N,\).*got \(1, 3\)"):
        fs.update({"close": x[30:31]})
    with pytest.raises(ValueError, match=r"'close' must have shape \(N,\).*got \(\)"):
        fs.update({"close": 1.0})
    bad = x[30].copy()
    bad[1] = np.inf
    with pytest.raises(ValueError, match="'close' contains \\+/-inf"):
        fs.update({"close": bad})
    with pytest.raises(ValueError, match="must be numeric"):
        fs.update({"close": np.array(["a", "b", "c"])})
    with pytest.raises(ValueError, match="block is missing input field 'close'"):
        fs.update_many({"high": x[30:]})
    with pytest.raises(ValueError, match=r"block field 'close' must have shape \(B, 3\)"):
        fs.update_many({"close": x[30:, :2]})
    # nothing above touched the state: both streams continue identically
    np.testing.assert_array_equal(fs.update_many({"close": x[30:]}),
                                  ref.update_many({"close": x[30:]}))


def test_constructor_errors():
    with pytest.raises(KeyError, match="unknown feature 'nope'"):
        FeatureStream([("nope", {})], ["A"])
    with pytest.raises(ValueError, match=r"feature 'sma' has no parameter\(s\) \['windw'\]"):
        FeatureStream([("sma", {"windw": 3})], ["A"])
    with pytest.raises(ValueError, match="window must be an int >= 1, got 0"):
        FeatureStream([("sma", {"window": 0})], ["A"])
    with pytest.raises(ValueError, match=r"repeats column 'sma_20'"):
        FeatureStream([("sma", {}), ("sma", {"window": 20})], ["A"])
    with pytest.raises(ValueError, match="symbols must be a non-empty sequence"):
        FeatureStream([("sma", {})], [])
    with pytest.raises(ValueError, match="dtype must be float64 or float32"):
        FeatureStream([("sma", {})], ["A"], dtype=np.int32)
    with pytest.raises(ValueError, match="at least one feature"):
        FeatureStream([], ["A"])
    with pytest.raises(ValueError, match="features entries must be"):
        FeatureStream([("sma", {}, 3)], ["A"])


def test_reset_restarts_from_scratch():
    x = nan_panel(T=300, N=4, seed=2)
    fs = FeatureStream(SPECS, _symbols(4))
    fresh = fs.update_many({"close": x})
    for t in range(50):
        fs.update({"close": x[::-1][t]})
    assert fs.latency.size == 50
    fs.reset()
    assert fs.latency.size == 0 and np.isnan(fs.latency_percentiles()["p50"])
    np.testing.assert_array_equal(fs.update_many({"close": x}), fresh)


def test_latency_stats_keep_the_last_window(monkeypatch):
    monkeypatch.setattr(FSM, "LATENCY_WINDOW", 64)
    fs = FeatureStream([("ema", {})], _symbols(3))
    p = fs.latency_percentiles()
    assert set(p) == {"p50", "p95", "p99"} and all(np.isnan(v) for v in p.values())
    x = random_walk(200, 3, seed=1)
    fs.update_many({"close": x[:100]})  # replays are not timed
    assert fs.latency.size == 0
    for t in range(100, 200):
        fs.update({"close": x[t]})
    lat = fs.latency
    assert lat.shape == (64,) and (lat > 0).all()
    assert lat[-1] == fs._lat[(100 - 1) % 64]  # oldest first, newest last
    p = fs.latency_percentiles()
    assert 0 < p["p50"] <= p["p95"] <= p["p99"] < 1000.0  # ms


def test_state_does_not_grow_with_history():
    specs = [(d.name, {}) for d in CORE_FEATURES]
    x = random_walk(5000, 8, seed=7)
    fs = FeatureStream(specs, _symbols(8))
    fs.update_many({"close": x[:100]})
    size100 = fs.state_nbytes
    fs.update_many({"close": x[100:]})
    assert fs.state_nbytes == size100 > 0
    # O(window) per symbol: the largest windows are the Baz signal's 63 + 252 values
    assert size100 < 8 * 8 * 1000


def test_order_book_fields_take_levels(monkeypatch):
    from workbench.features._catalogue import CATALOGUE, FeatureDef
    from workbench.features._stream_base import StreamFeature

    class TopSpread(StreamFeature):
        inputs = ("bid_px", "ask_px")

        def update(self, x, out):
            out[:, 0] = x["ask_px"][:, 0] - x["bid_px"][:, 0]

    def batch(bid, ask, **kw):
        return ask[..., 0] - bid[..., 0]

    monkeypatch.setitem(CATALOGUE, "_test_top_spread", FeatureDef(
        "_test_top_spread", "order-book", ("bid_px", "ask_px"), {}, ("",), batch, TopSpread))
    fs = FeatureStream([("_test_top_spread", {}), ("returns", {})], _symbols(2))
    assert fs.fields == ("bid_px", "ask_px", "close")
    rng = np.random.default_rng(0)
    bid = rng.uniform(99, 100, (6, 2, 3))
    ask = bid + rng.uniform(0.01, 0.1, (6, 2, 3))
    close = (bid[..., 0] + ask[..., 0]) / 2
    row = fs.update({"bid_px": bid[0], "ask_px": ask[0], "close": close[0]})
    np.testing.assert_allclose(row[:, 0], ask[0, :, 0] - bid[0, :, 0])
    many = fs.update_many({"bid_px": bid[1:], "ask_px": ask[1:], "close": close[1:]})
    np.testing.assert_allclose(many[:, :, 0], ask[1:, :, 0] - bid[1:, :, 0])
    np.testing.assert_allclose(many[:, :, 1], close[1:] / close[:-1] - 1)
    with pytest.raises(ValueError, match=r"'bid_px' must have shape \(N, k\)"):
        fs.update({"bid_px": bid[0, :, 0], "ask_px": ask[0], "close": close[0]})
    with pytest.raises(ValueError, match=r"block field 'ask_px' must have shape \(5, 2, k\)"):
        fs.update_many({"bid_px": bid[1:], "ask_px": ask[1:, :, 0], "close": close[1:]})


def test_inf_in_any_field_is_named_and_leaves_state_unchanged():
    from tests.features.test_ta_parity import random_ohlcv

    d = random_ohlcv(80, 4, seed=9)
    specs = [("garman_klass", {"window": 5}), ("vwap", {"window": 5}), ("obv", {})]
    fs = FeatureStream(specs, _symbols(4))
    ref = FeatureStream(specs, _symbols(4))
    for t in range(40):
        bar = {k: v[t] for k, v in d.items()}
        np.testing.assert_array_equal(fs.update(bar), ref.update(bar))
    for name in ("open", "low", "volume"):
        bar = {k: v[40].copy() for k, v in d.items()}
        bar[name][2] = -np.inf
        with pytest.raises(ValueError, match=f"bar field '{name}' contains \\+/-inf"):
            fs.update(bar)
    # integer input is accepted and cast; the stream then continues as the reference
    for t in range(40, 80):
        bar = {k: v[t] for k, v in d.items()}
        bar["volume"] = bar["volume"].astype(np.int64)
        np.testing.assert_array_equal(fs.update(bar), ref.update({k: v[t] for k, v in d.items()}))


def test_full_catalogue_stream_matches_batch_bitwise():
    from tests.features.test_ta_parity import random_ohlcv, with_holes
    from workbench.features._featureset import FeatureSet

    d = with_holes(random_ohlcv(150, 7, seed=4), seed=6, frac=0.05, lead=30)
    fset = FeatureSet.full()
    fs = FeatureStream(fset, _symbols(7))
    got = fs.update_many({f: d[f] for f in fs.fields})
    for k, (name, params) in enumerate(fs.specs):
        defn = get(name)
        b = defn.batch(*(d[f] for f in defn.inputs), **params)
        b = b if isinstance(b, tuple) else (b,)
        c0 = sum(len(get(n).outputs) for n, _ in fs.specs[:k])
        for m, arr in enumerate(b):
            arr = np.asarray(arr, dtype=float)
            if arr.ndim == 1:
                arr = np.repeat(arr[:, None], 7, axis=1)
            np.testing.assert_array_equal(got[..., c0 + m], arr, err_msg=f"{name} output {m}")


def test_featureset_market_symbol_reaches_the_stream():
    from workbench.data import load_universe
    from workbench.features import FeatureSet

    bars = load_universe("daily", start="2005-01-01", end="2008-12-31")
    fs = FeatureSet(features=["beta", "correlation"], market="AAPL")
    block = fs.compute(bars)
    stream = FeatureStream(fs, bars.symbols)
    out = stream.update_many({"close": bars["close"]})
    np.testing.assert_array_equal(out, block.values)
    with pytest.raises(ValueError, match="market 'AAPL' is not among the symbols"):
        FeatureStream(fs, ["SP500", "IBM"])


FUSED_SPECS = [
    ("normalised_return", {"horizon": 1, "span": 10}),
    ("normalised_return", {"horizon": 7, "span": 10}),
    ("normalised_return", {"horizon": 3, "span": 10}),
    ("normalised_return", {"horizon": 2, "span": 25}),  # other span: its own state
    ("macd_signal", {"short": 2, "long": 6, "price_window": 17, "signal_window": 19}),
    ("macd_signal", {"short": 3, "long": 9, "price_window": 17, "signal_window": 19}),
    ("macd_signal", {"short": 4, "long": 12, "price_window": 17, "signal_window": 19}),
    ("macd_signal", {"short": 4, "long": 12, "price_window": 9, "signal_window": 19}),
    ("sma", {"window": 18}),
    ("rolling_std", {"window": 18, "ddof": 1}),
    ("bollinger", {"window": 18, "k": 1.5}),
    ("bollinger_pct_b", {"window": 18, "k": 2.5}),
    ("bollinger_bandwidth", {"window": 18, "k": 2.0}),
    ("volume_zscore", {"window": 18}),  # a window of volume: not fused with close
    ("sma", {"window": 5}),  # other window: its own state
    ("bollinger_pct_b", {"window": 5, "k": 2.0}),
    ("correlation", {"market": 1, "window": 21, "min_periods": 10}),
    ("beta", {"market": 1, "window": 21}),
    ("beta", {"market": 2, "window": 21, "min_periods": 5}),  # other market
]


def test_fused_groups_match_batch_bitwise_with_holes():
    from tests.features.test_ta_parity import random_ohlcv, with_holes
    from workbench.features import _micro  # noqa: F401  (registers correlation, beta)

    d = with_holes(random_ohlcv(260, 6, seed=11), seed=12, frac=0.08, lead=25)
    d["close"][100:104, 3] = d["close"][99, 3]  # a constant run (exact %b / bandwidth)
    fs = FeatureStream(FUSED_SPECS, _symbols(6))
    # state shared: 5 fused objects (nret span 10, macd_signal pw 17, close window 18,
    # close window 5, corr/beta market 1) stand for 15 streams
    assert len(fs._plan) == len(FUSED_SPECS) - 10
    got = fs.update_many({f: d[f] for f in fs.fields})
    c0 = 0
    for name, params in fs.specs:
        defn = get(name)
        b = defn.batch(*(d[f] for f in defn.inputs), **params)
        for m, arr in enumerate(b if isinstance(b, tuple) else (b,)):
            np.testing.assert_array_equal(got[..., c0 + m], np.asarray(arr, dtype=float),
                                          err_msg=f"{name} {params} output {m}")
        c0 += len(defn.outputs)
    # one feature at a time (no fusion) gives the same block
    one = np.concatenate([FeatureStream([s], _symbols(6)).update_many(
        {f: d[f] for f in get(s[0]).inputs}) for s in FUSED_SPECS], axis=2)
    np.testing.assert_array_equal(got, one)
    fs.reset()
    np.testing.assert_array_equal(fs.update_many({f: d[f] for f in fs.fields}), got)


def test_feature_market_reaches_the_stream_by_name_or_index():
    """A feature's own market (symbol or column) is the stream's too, as in FeatureSet."""
    from workbench.data import load_universe
    from workbench.features import FeatureSet

    bars = load_universe("daily", start="2005-01-01", end="2008-12-31")
    fs = FeatureSet(features=[("beta", {"market": "NASDAQ"}), ("correlation", {"market": 4}),
                              "beta", ("correlation", {"market": "MSFT", "window": 20})],
                    market="AAPL")
    block = fs.compute(bars)
    stream = FeatureStream(fs, bars.symbols)
    assert stream.columns == block.columns
    assert [p["market"] for _, p in stream.specs] == [1, 4, 2, 5]
    np.testing.assert_array_equal(stream.update_many({"close": bars["close"]}), block.values)
    # plain (name, params) pairs: a market symbol is looked up in the stream's symbols
    pairs = FeatureStream([("beta", {"market": "B", "window": 5})], ["A", "B", "C"])
    assert pairs.specs[0][1]["market"] == 1 and pairs.columns == ("beta_B_5",)
    with pytest.raises(ValueError, match=r"feature 0 \('beta'\): market 'Z' is not among the "
                                         r"symbols \['A', 'B'\]"):
        FeatureStream([("beta", {"market": "Z"})], ["A", "B"])


def test_market_wide_feature_is_nan_where_a_symbol_has_no_bar():
    from workbench.data import load_universe
    from workbench.features import FeatureSet

    bars = load_universe("daily", start="2004-01-01", end="2005-06-30")  # GOOG lists 2004-08
    fs = FeatureSet(features=[("mean_pairwise_correlation", {"window": 20, "min_periods": 10}),
                              "rsi"])
    block = fs.compute(bars)
    out = FeatureStream(fs, bars.symbols).update_many({"close": bars["close"]})
    g = bars.symbols.index("GOOG")
    assert np.isfinite(block.values[~bars.mask[:, g], 0, 0]).any()  # the series is defined
    assert np.isnan(out[~bars.mask, 0]).all()
    np.testing.assert_array_equal(out, block.values)
    # bar by bar too
    one = FeatureStream(fs, bars.symbols)
    rows = np.array([one.update({"close": bars["close"][t]}).copy() for t in range(bars.T)])
    np.testing.assert_array_equal(rows, block.values)


def test_duplicate_symbols_are_rejected():
    with pytest.raises(ValueError, match=r"symbols must be unique: 'A' appears at positions 0 "
                                         r"and 2"):
        FeatureStream([("rsi", {})], ["A", "B", "A"])


def test_negative_volume_is_refused_by_set_and_stream_leaving_state_unchanged():
    from tests.features.test_ta_parity import random_ohlcv
    from workbench.features import FeatureSet

    d = random_ohlcv(40, 3, seed=9)
    specs = [("vwap", {"window": 5}), ("amihud", {"window": 5}), ("obv", {})]
    fs = FeatureStream(specs, _symbols(3))
    ref = FeatureStream(specs, _symbols(3))
    fs.update_many({f: d[f][:20] for f in fs.fields})
    ref.update_many({f: d[f][:20] for f in fs.fields})
    bar = {f: d[f][20].copy() for f in fs.fields}
    bar["volume"][2] = -3.0
    with pytest.raises(ValueError, match=r"bar field 'volume' must be >= 0 .*-3.0 at column 2 "
                                         r"\(symbol 'S2'\)"):
        fs.update(bar)
    block = {f: d[f][20:].copy() for f in fs.fields}
    block["volume"][5, 1] = -1.0
    with pytest.raises(ValueError, match=r"block field 'volume' must be >= 0 .*row 5, "
                                         r"column 1 \(symbol 'S1'\)"):
        fs.update_many(block)
    vol = d["volume"].copy()
    vol[25, 1] = -7.0
    with pytest.raises(ValueError, match=r"volume must be >= 0 .*-7.0 at row 25, column 1 "
                                         r"\(symbol 'x1'\)"):
        FeatureSet(features=["vwap"]).compute({**d, "volume": vol})
    np.testing.assert_array_equal(fs.update_many({f: d[f][20:] for f in fs.fields}),
                                  ref.update_many({f: d[f][20:] for f in fs.fields}))
    # OBV alone takes any volume (its sign rule does not weight by it)
    FeatureStream(["obv"], _symbols(3)).update({"close": d["close"][0],
                                                 "volume": -d["volume"][0]})
