import tracemalloc

import numpy as np
import pandas as pd
import pytest

from workbench import features as ft
from workbench.data import load_universe
from workbench.features import FeatureSet


@pytest.fixture(scope="module")
def bars():
    return load_universe("daily", start="2003-01-01", end="2009-12-31")


def test_columns_and_validation():
    fs = FeatureSet(features=["rsi", ("rsi", {"period": 9}), ("macd", {"fast": 8}),
                              {"name": "ema", "params": {"span": 50}, "alias": "slow_ema"}])
    assert fs.columns == ("rsi_14", "rsi_9", "macd_8_26_9_line", "macd_8_26_9_signal",
                          "macd_8_26_9_hist", "slow_ema")
    with pytest.raises(ValueError, match=r"features\[0\]: unknown feature 'rsx'"):
        _ = FeatureSet(features=["rsx"]).columns
    with pytest.raises(ValueError, match=r"feature 'rsi' has no parameter.*'window'"):
        _ = FeatureSet(features=[("rsi", {"window": 3})]).columns
    with pytest.raises(ValueError, match=r"features\[1\] repeats column 'rsi_14'"):
        _ = FeatureSet(features=["rsi", "rsi"]).columns
    with pytest.raises(ValueError):
        FeatureSet(dtype="float16")


def test_block_equals_direct_calls(bars):
    fs = FeatureSet(features=["rsi", "bollinger", ("rolling_volatility", {"window": 60})])
    block = fs.compute(bars)
    close = bars["close"]
    assert block.shape == (bars.T, bars.N, 5)
    np.testing.assert_array_equal(block["rsi_14"], ft.rsi(close, 14))
    np.testing.assert_array_equal(block["bollinger_20_2_lower"], ft.bollinger(close, 20, 2.0)[2])
    np.testing.assert_array_equal(block.values[..., 4], ft.rolling_volatility(close, 60))
    with pytest.raises(KeyError, match="no feature column 'x'"):
        block["x"]


def test_full_catalogue_chunking_invariance_and_causality(bars):
    full = FeatureSet.full()
    whole = full.compute(bars)
    chunked = FeatureSet.full(chunk_assets=2).compute(bars)
    np.testing.assert_array_equal(whole.storage, chunked.storage)
    assert len(whole.columns) >= 40
    # Causality of every catalogue feature at once: change the data after t.
    frames = bars.to_frames()
    t = bars.T // 2
    for f in frames:
        frames[f].iloc[t + 1:] *= 1.7
    bumped = type(bars).from_wide(frames)
    after = full.compute(bumped)
    np.testing.assert_array_equal(after.values[: t + 1], whole.values[: t + 1])
    assert not np.array_equal(after.values[t + 1:], whole.values[t + 1:], equal_nan=True)


def test_market_symbol_and_float32(bars):
    fs = FeatureSet(features=["correlation", "beta"], market="AAPL", dtype="float32")
    block = fs.compute(bars)
    assert block.storage.dtype == np.float32
    j = bars.symbols.index("AAPL")
    corr = block["correlation_60"][:, j]
    assert np.nanmax(np.abs(corr - 1.0)) < 1e-6  # an asset is perfectly correlated with itself
    with pytest.raises(ValueError, match="market 'XYZ' is not among the symbols"):
        FeatureSet(features=["beta"], market="XYZ").compute(bars)


def test_conversions(bars):
    block = FeatureSet(features=["rsi", "ema"]).compute(bars)
    long = block.to_pandas()
    assert list(long.columns) == ["rsi_14", "ema_20"]
    assert long.index.names == ["timestamp", "symbol"]
    assert long.loc[(bars.index[100], "SP500"), "rsi_14"] == block["rsi_14"][100, 0]
    wide = block.to_pandas("wide")
    assert wide[("ema_20", "MSFT")].iloc[-1] == block["ema_20"][-1, bars.symbols.index("MSFT")]
    xa = block.to_xarray()
    assert xa.dims == ("time", "symbol", "feature")
    assert float(xa.sel(symbol="IBM", feature="rsi_14")[200]) == block["rsi_14"][200, 4]
    with pytest.raises(ValueError, match="layout must be"):
        block.to_pandas("tall")


def test_missing_input_field():
    fs = FeatureSet(features=["atr"])
    with pytest.raises(ValueError, match=r"feature 'atr' needs input field\(s\) \['high', 'low'\]"):
        fs.compute({"close": np.ones((10, 2))})


def test_peak_memory_stays_under_three_times_the_block():
    rng = np.random.default_rng(0)
    T, N = 4000, 300
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (T, N)), axis=0))
    fs = FeatureSet.benchmark(chunk_assets=32)
    fs.compute({"close": close})  # compile outside the measurement
    tracemalloc.start()
    block = fs.compute({"close": close})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 3 * block.storage.nbytes, (peak, block.storage.nbytes)


def test_write_parquet_chunk_by_chunk(bars, tmp_path, monkeypatch):
    fs = FeatureSet(features=["rsi", "atr", "skewness"])
    seen = []
    orig = FeatureSet._compute_chunk

    def spy(self, insts, arrays, cols, mkt, out, cache):
        seen.append(out.shape)
        return orig(self, insts, arrays, cols, mkt, out, cache)

    monkeypatch.setattr(FeatureSet, "_compute_chunk", spy)
    path = fs.write_parquet(bars, tmp_path / "f.parquet", chunk_assets=2)
    assert [s[2] for s in seen] == [2, 2, 2]  # never the whole (F, T, N) block
    df = pd.read_parquet(path)
    assert not (tmp_path / "f.parquet.partial").exists()
    assert len(df) == int(bars.mask.sum())
    block = fs.compute(bars)
    j = bars.symbols.index("GOOG")
    got = df[df.symbol == "GOOG"].set_index("timestamp")["atr_14"]
    exp = pd.Series(block["atr_14"][:, j], index=bars.index)[bars.mask[:, j]]
    np.testing.assert_array_equal(got.to_numpy(), exp.to_numpy())


def test_order_book_features_through_featureset():
    from workbench.data import OrderBook

    rng = np.random.default_rng(3)
    T, N, k = 50, 2, 5
    idx = pd.date_range("2024-01-02 09:30", periods=T, freq="1s", tz="UTC")
    mid = 100 + np.cumsum(rng.normal(0, 0.01, (T, N)), axis=0)
    half = 0.01 + 0.005 * rng.random((T, N))
    steps = 0.01 * np.arange(k)
    bid_px = (mid - half)[..., None] - steps
    ask_px = (mid + half)[..., None] + steps
    bid_sz = rng.integers(1, 100, (T, N, k)).astype(float)
    ask_sz = rng.integers(1, 100, (T, N, k)).astype(float)
    book = OrderBook(idx, ("A", "B"), bid_px, ask_px, bid_sz, ask_sz)
    fs = FeatureSet(features=["spread", "relative_spread", "depth_imbalance", "weighted_mid",
                              "depth", "price_impact"])
    block = fs.compute(book=book)
    assert block.symbols == ("A", "B") and block.index.equals(idx)
    sp = ask_px[..., 0] - bid_px[..., 0]
    np.testing.assert_allclose(block["spread"], sp, rtol=1e-12)
    rel = sp / ((ask_px[..., 0] + bid_px[..., 0]) / 2)
    np.testing.assert_allclose(block["relative_spread"], rel,
                               rtol=1e-12)
    imb = (bid_sz.sum(-1) - ask_sz.sum(-1)) / (bid_sz.sum(-1) + ask_sz.sum(-1))
    np.testing.assert_allclose(block["depth_imbalance_5"], imb, rtol=1e-12)
    wm = (bid_px[..., 0] * ask_sz[..., 0] + ask_px[..., 0] * bid_sz[..., 0]) / (
        bid_sz[..., 0] + ask_sz[..., 0])
    np.testing.assert_allclose(block["weighted_mid"], wm, rtol=1e-12)
    with pytest.raises(ValueError, match=r"feature 'spread' needs input field\(s\)"):
        fs.compute({"close": np.ones((T, N))})


def test_full_exclude():
    cols = FeatureSet.full(exclude=["mean_pairwise_correlation", "obv"]).columns
    assert "obv" not in cols and not any(c.startswith("mean_pairwise") for c in cols)
    assert "rsi_14" in cols
    with pytest.raises(ValueError, match=r"exclude names unknown features \['nope'\]"):
        FeatureSet.full(exclude=["nope"])


# -- a feature's own market (correlation / beta) ----------------------------------------


def test_feature_market_is_honoured_and_named(bars, tmp_path):
    """("beta", {"market": "NASDAQ"}) is beta to NASDAQ, not to the set's market."""
    close, syms = bars["close"], list(bars.symbols)
    fs = FeatureSet(features=[("beta", {"market": "NASDAQ"}), ("correlation", {"market": 2}),
                              ("beta", {"market": 0}), "beta"], market="IBM")
    assert fs.columns == ("beta_NASDAQ_60", "correlation_2_60", "beta_0_60", "beta_60")
    want = {"beta_NASDAQ_60": ft.rolling_beta(close, "NASDAQ", symbols=syms),
            "correlation_2_60": ft.rolling_correlation(close, 2),
            "beta_0_60": ft.rolling_beta(close, 0),  # given explicitly: not the set's IBM
            "beta_60": ft.rolling_beta(close, "IBM", symbols=syms)}
    for chunk in (256, 2):
        block = FeatureSet(features=fs.features, market="IBM", chunk_assets=chunk).compute(bars)
        for col, ref in want.items():
            np.testing.assert_array_equal(block[col], ref, err_msg=f"{col} chunk {chunk}")
    # no set-level market: the feature's own market still decides
    block = FeatureSet(features=[("beta", {"market": "NASDAQ"})]).compute(bars)
    np.testing.assert_array_equal(block["beta_NASDAQ_60"], want["beta_NASDAQ_60"])
    assert np.nanmax(np.abs(block["beta_NASDAQ_60"][:, 1] - 1.0)) < 1e-12  # its own beta
    # write_parquet computes the same thing
    df = pd.read_parquet(fs.write_parquet(bars, tmp_path / "m.parquet", chunk_assets=2))
    j = syms.index("AAPL")
    got = df[df.symbol == "AAPL"]["beta_NASDAQ_60"].to_numpy()
    np.testing.assert_array_equal(got, want["beta_NASDAQ_60"][bars.mask[:, j], j])


def test_feature_market_errors_name_the_feature(bars):
    with pytest.raises(ValueError, match=r"features\[1\] \('beta'\): market 'XYZ' is not among "
                                         r"the symbols \['SP500'"):
        FeatureSet(features=["rsi", ("beta", {"market": "XYZ"})]).compute(bars)
    with pytest.raises(ValueError, match=r"features\[0\] \('correlation'\): market must be a "
                                         r"column index in \[0, 6\)"):
        FeatureSet(features=[("correlation", {"market": 6})]).compute(bars)
    with pytest.raises(ValueError, match=r"market of feature 'beta' must be a symbol name or a "
                                         r"column index, got 1.5"):
        _ = FeatureSet(features=[("beta", {"market": 1.5})]).columns


# -- mapping inputs: (T,) arrays, DataFrames ---------------------------------------------


def test_one_dimensional_mapping_inputs_are_one_asset(bars):
    c, h, lo = (bars[f][:, 2] for f in ("close", "high", "low"))
    fs = FeatureSet(features=["rsi", "atr", ("rolling_volatility", {"window": 20})])
    block = fs.compute({"close": c, "high": h, "low": lo})
    assert block.shape == (bars.T, 1, 3) and block.symbols == ("x0",)
    np.testing.assert_array_equal(block["rsi_14"][:, 0], ft.rsi(c))
    np.testing.assert_array_equal(block["atr_14"][:, 0], ft.atr(h, lo, c))
    np.testing.assert_array_equal(block.storage,
                                  fs.compute({"close": c[:, None], "high": h[:, None],
                                              "low": lo[:, None]}).storage)
    with pytest.raises(ValueError, match=r"input 'close' must be a \(T, N\) array \(or \(T,\) "
                                         r"for one asset\), got shape \(3, 2, 2\)"):
        fs.compute({"close": np.ones((3, 2, 2))})


def test_dataframe_inputs_give_symbols_and_index(bars, tmp_path):
    frames = {f: pd.DataFrame(bars[f], index=bars.index, columns=list(bars.symbols))
              for f in ("close", "high", "low")}
    fs = FeatureSet(features=["rsi", "atr", "beta"], market="NASDAQ")
    block = fs.compute(frames)
    ref = fs.compute(bars)
    assert block.symbols == tuple(bars.symbols)
    assert block.index.equals(bars.index)
    np.testing.assert_array_equal(block.storage, ref.storage)
    df = pd.read_parquet(fs.write_parquet(frames, tmp_path / "df.parquet"))
    assert set(df.symbol) == set(bars.symbols)
    # naive timestamps are taken as UTC
    naive = {f: v.set_axis(bars.index.tz_localize(None)) for f, v in frames.items()}
    assert fs.compute(naive).index.equals(bars.index)


def test_dataframe_inputs_must_agree(bars):
    syms = list(bars.symbols)
    close = pd.DataFrame(bars["close"], index=bars.index, columns=syms)
    high = pd.DataFrame(bars["high"], index=bars.index, columns=syms)
    low = pd.DataFrame(bars["low"], index=bars.index, columns=syms)
    fs = FeatureSet(features=["atr"])
    with pytest.raises(ValueError, match=r"input 'high' has columns \['NASDAQ', 'SP500'.*but "
                                         r"input 'close' has \['SP500', 'NASDAQ'"):
        fs.compute({"close": close, "high": high[syms[1::-1] + syms[2:]], "low": low})
    with pytest.raises(ValueError, match="input 'low' has another index than input 'close'"):
        fs.compute({"close": close, "high": high,
                    "low": low.set_axis(low.index + pd.Timedelta("1h"))})
    dup = close.set_axis(["A", "A", "B", "C", "D", "E"], axis=1)
    with pytest.raises(ValueError, match=r"input 'close' has duplicate columns \['A'\]"):
        FeatureSet(features=["rsi"]).compute({"close": dup})


# -- market-wide features: NaN where the asset has no bar --------------------------------


def test_market_wide_feature_is_nan_where_the_asset_has_no_bar(bars, tmp_path):
    fs = FeatureSet(features=["rsi", ("mean_pairwise_correlation",
                                      {"window": 20, "min_periods": 10})])
    block = fs.compute(bars)
    mpc = block["mean_pairwise_correlation_20_10"]
    ref = ft.mean_pairwise_correlation(bars["close"], 20, 10)
    mask = bars.mask
    assert not mask.all()  # GOOG lists in 2004
    assert np.isfinite(ref[~mask.all(axis=1)]).any()  # the series exists on such rows
    np.testing.assert_array_equal(mpc, np.where(mask, ref[:, None], np.nan))
    # long layout: only present bars, and the same values as the Parquet file
    long = block.to_pandas()
    present = pd.MultiIndex.from_arrays([bars.index[np.nonzero(mask)[0]],
                                         np.asarray(bars.symbols)[np.nonzero(mask)[1]]])
    assert long.index.isin(present).all()
    pq = pd.read_parquet(fs.write_parquet(bars, tmp_path / "w.parquet", chunk_assets=4))
    pq["timestamp"] = pq["timestamp"].astype(long.index.levels[0].dtype)
    pq = pq.set_index(["timestamp", "symbol"]).dropna(how="all")
    assert len(pq) == len(long)
    pd.testing.assert_frame_equal(pq.sort_index(), long.sort_index(), check_names=False)
