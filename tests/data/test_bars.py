import numpy as np
import pandas as pd
import pytest

from workbench.data import Bars, DataValidationError

NAN = np.nan


def make_panel(name="toy"):
    """3 symbols x 6 days; B misses days 2-3 (a 2-row gap), C starts on day 1."""
    idx = pd.date_range("2020-01-01", periods=6, freq="D", tz="UTC")
    close = np.array(
        [
            [10.0, 20.0, NAN],
            [11.0, 21.0, 30.0],
            [12.0, NAN, 31.0],
            [13.0, NAN, 32.0],
            [14.0, 24.0, 33.0],
            [15.0, 25.0, NAN],
        ]
    )
    open_ = close - 0.5
    high = close + 1.0
    low = close - 1.0
    volume = np.where(np.isnan(close), NAN, 100.0)
    volume[0, 0] = NAN  # a present bar without volume is allowed
    return Bars(idx, ("A", "B", "C"), open_, high, low, close, volume, name=name)


def test_construction_and_properties():
    b = make_panel()
    assert b.T == 6 and b.N == 3 and b.shape == (6, 3) and len(b) == 6
    assert b.symbols == ("A", "B", "C")
    assert b.name == "toy"
    assert b.FIELDS == ("open", "high", "low", "close", "volume")
    assert str(b.index.tz) == "UTC"
    for f in b.FIELDS:
        a = b[f]
        assert a.shape == (6, 3) and a.dtype == np.float64 and a.flags.c_contiguous
        np.testing.assert_array_equal(a, b.field(f))
        assert getattr(b, f) is b.field(f)  # bars.close is the same read-only array
    with pytest.raises(AttributeError, match="immutable: field 'close'"):
        b.close = b.open  # fields are not assignable
    assert "toy" in repr(b) and "3 symbols" in repr(b) and "2020-01-01" in repr(b)


def test_arrays_are_copies_and_read_only():
    idx = pd.date_range("2020-01-01", periods=2, tz="UTC")
    c = np.array([[1.0], [2.0]])
    b = Bars(idx, ["X"], c, c, c, c, np.ones((2, 1)))
    c[0, 0] = 99.0
    assert b["close"][0, 0] == 1.0
    with pytest.raises(ValueError):
        b["close"][0, 0] = 5.0
    with pytest.raises(KeyError):
        b["adj_close"]


def test_mask():
    b = make_panel()
    expected = ~np.isnan(b["close"])
    np.testing.assert_array_equal(b.mask, expected)
    assert b.mask.dtype == bool
    assert b.mask.sum() == 14
    assert b.mask[:, 1].tolist() == [True, True, False, False, True, True]


def test_constructor_rejects_bad_input():
    idx = pd.date_range("2020-01-01", periods=2)
    one = np.ones((2, 1))
    with pytest.raises(ValueError, match="tz-aware"):
        Bars(idx, ["X"], one, one, one, one, one)
    utc = idx.tz_localize("UTC")
    with pytest.raises(ValueError, match="shape"):
        Bars(utc, ["X", "Y"], one, one, one, one, one)
    two = np.ones((2, 2))
    with pytest.raises(ValueError, match="unique"):
        Bars(utc, ["X", "X"], two, two, two, two, two)
    with pytest.raises(DataValidationError) as ei:
        Bars(utc[::-1], ["X"], one, one, one, one, one)
    assert ei.value.rule == "unsorted timestamps"


def test_constructor_validates_bars():
    idx = pd.date_range("2020-01-01", periods=2, tz="UTC")
    c = np.array([[10.0], [11.0]])
    h = c + 1
    lo = c - 1
    v = np.ones((2, 1))
    bad_high = np.array([[10.0], [9.0]])  # high < low at t=1 (low = 10)
    with pytest.raises(DataValidationError) as ei:
        Bars(idx, ["X"], c, bad_high, lo, c, v)
    assert ei.value.rule == "high < low"
    assert ei.value.symbol == "X" and ei.value.timestamp == idx[1]
    partial = np.array([[10.0], [NAN]])  # open NaN but close present
    with pytest.raises(DataValidationError) as ei:
        Bars(idx, ["X"], partial, h, lo, c, v)
    assert ei.value.rule == "non-finite value" and ei.value.column == "open"
    # validate=False skips the value checks
    Bars(idx, ["X"], partial, h, lo, c, v, validate=False)


def test_long_round_trip_exact():
    b = make_panel()
    long = b.to_long()
    assert list(long.columns) == ["timestamp", "symbol", "open", "high", "low", "close", "volume"]
    assert len(long) == int(b.mask.sum())
    assert long["close"].notna().all()
    keys = list(zip(long["timestamp"], long["symbol"]))
    assert keys == sorted(keys)
    back = Bars.from_long(long)
    assert back.equals(b)  # NaN positions included
    for f in b.FIELDS:
        np.testing.assert_array_equal(back[f], b[f])


def test_long_round_trip_symbol_order():
    b = make_panel().select(["C", "A"])
    back = Bars.from_long(b.to_long())
    assert back.symbols == ("A", "C")  # from_long sorts symbols
    assert back.select(["C", "A"]).equals(b)


def test_wide_round_trip_exact():
    b = make_panel()
    frames = b.to_frames()
    assert set(frames) == set(b.FIELDS)
    w = b.to_wide("close")
    assert w.index.name == "timestamp" and list(w.columns) == list(b.symbols)
    assert w.shape == (6, 3)
    back = Bars.from_wide(frames)
    assert back.equals(b)
    np.testing.assert_array_equal(np.isnan(back["volume"]), np.isnan(b["volume"]))


def test_from_wide_without_volume():
    b = make_panel()
    frames = {k: v for k, v in b.to_frames().items() if k != "volume"}
    back = Bars.from_wide(frames)
    assert np.isnan(back["volume"]).all()
    np.testing.assert_array_equal(back["close"], b["close"])


def test_union_keeps_nan_no_forward_fill():
    i1 = pd.DatetimeIndex(["2020-01-01", "2020-01-03", "2020-01-05"], tz="UTC")
    i2 = pd.DatetimeIndex(["2020-01-02", "2020-01-03", "2020-01-04"], tz="UTC")
    c1 = np.array([[1.0], [2.0], [3.0]])
    c2 = np.array([[10.0], [20.0], [30.0]])
    b1 = Bars(i1, ["X"], c1, c1, c1, c1, c1)
    b2 = Bars(i2, ["Y"], c2, c2, c2, c2, c2)
    u = Bars.union([b1, b2], name="u")
    assert u.name == "u" and u.symbols == ("X", "Y")
    assert list(u.index) == list(i1.union(i2))
    expected = np.array([[1, NAN], [NAN, 10], [2, 20], [NAN, 30], [3, NAN]])
    np.testing.assert_array_equal(u["close"], expected)
    np.testing.assert_array_equal(u.mask, ~np.isnan(expected))
    for f in u.FIELDS:
        np.testing.assert_array_equal(np.isnan(u[f]), np.isnan(expected))
    with pytest.raises(ValueError, match="duplicate"):
        Bars.union([b1, b1])


def test_select():
    b = make_panel()
    s = b.select(["C", "A"])
    assert s.symbols == ("C", "A")
    np.testing.assert_array_equal(s["close"], b["close"][:, [2, 0]])
    assert b.select("B").symbols == ("B",)
    assert s.T == b.T
    with pytest.raises(KeyError):
        b.select(["Z"])


def test_loc_inclusive_and_drops_empty_rows():
    b = make_panel()
    s = b.loc("2020-01-02", "2020-01-04")
    assert list(s.index.strftime("%Y-%m-%d")) == ["2020-01-02", "2020-01-03", "2020-01-04"]
    np.testing.assert_array_equal(s["close"], b["close"][1:4])
    s2 = b.loc(start=pd.Timestamp("2020-01-05", tz="UTC"))
    assert s2.T == 2
    assert b.loc(end=pd.Timestamp("2020-01-01")).T == 1  # naive -> UTC
    # drop timestamps where no selected asset has a bar
    c = b.select(["B"]).loc("2020-01-01", "2020-01-06")
    assert c.T == 4 and c.mask.all()


@pytest.mark.parametrize(
    "start, end",
    [
        ("2020-01-02", pd.Timestamp("2020-01-04", tz="UTC")),
        ("2020-01-02", pd.Timestamp("2020-01-04")),  # naive -> UTC
        (pd.Timestamp("2020-01-02", tz="UTC"), "2020-01-04"),
        ("2020-01-02", pd.Timestamp("2020-01-03 20:00", tz="America/New_York")),
        ("2020-01-01 19:00-05:00", "2020-01-04"),  # string bounds in two offsets
        ("2020-01-02T00:00Z", "2020-01-04"),
    ],
)
def test_loc_mixes_string_and_timestamp_bounds(start, end):
    # one bound a string, the other a Timestamp (or strings with different UTC offsets):
    # each bound is read on its own (pandas slicing refused the pair, "Both dates must
    # have the same UTC offset")
    s = make_panel().loc(start, end)
    assert list(s.index.strftime("%Y-%m-%d")) == ["2020-01-02", "2020-01-03", "2020-01-04"]


def test_data_hash_stable_and_sensitive():
    b = make_panel()
    h = b.data_hash()
    assert len(h) == 64 and int(h, 16) >= 0
    assert make_panel(name="other").data_hash() == h  # identical panels, name not hashed
    assert Bars.from_long(b.to_long()).data_hash() == h
    close = b["close"].copy()
    close[1, 0] = np.nextafter(close[1, 0], 100)
    changed = Bars(b.index, b.symbols, b["open"], b["high"], b["low"], close, b["volume"])
    assert changed.data_hash() != h
    vol = b["volume"].copy()
    vol[1, 1] = 101.0
    changed = Bars(b.index, b.symbols, b["open"], b["high"], b["low"], b["close"], vol)
    assert changed.data_hash() != h
    shifted = Bars(b.index + pd.Timedelta("1h"), b.symbols, *(b[f] for f in b.FIELDS))
    assert shifted.data_hash() != h
    renamed = Bars(b.index, ("A", "B", "D"), *(b[f] for f in b.FIELDS))
    assert renamed.data_hash() != h


def test_data_hash_canonicalises_nan():
    b = make_panel()
    weird_nan = np.frombuffer(np.array([0x7FF8000000000123], dtype="<u8").tobytes(), "<f8")[0]
    arrays = {f: b[f].copy() for f in b.FIELDS}
    for f in ("open", "high", "low", "close", "volume"):
        arrays[f][0, 2] = weird_nan
    other = Bars(b.index, b.symbols, *(arrays[f] for f in b.FIELDS))
    assert other.data_hash() == b.data_hash()


def test_data_hash_of_equal_panels_is_equal_for_signed_zero_volume():
    # a zero volume read as -0.0 (a "-0" cell, or a product with a negative factor) is the
    # same panel as with 0.0: equals() says so, and data_hash() must agree (the tuning
    # workers compare hashes to check they hold the study's data)
    b = make_panel()
    vol = b["volume"].copy()
    vol[1, 0] = 0.0
    zero = Bars(b.index, b.symbols, b["open"], b["high"], b["low"], b["close"], vol)
    vol[1, 0] = -0.0
    neg = Bars(b.index, b.symbols, b["open"], b["high"], b["low"], b["close"], vol)
    assert neg.equals(zero)
    assert neg.data_hash() == zero.data_hash()


def test_summary_and_gaps_known_gap():
    b = make_panel()
    s = b.summary()
    assert list(s.index) == ["A", "B", "C"]
    assert list(s.columns) == ["first", "last", "n_bars", "n_missing", "longest_gap"]
    assert s.loc["A", "n_bars"] == 6 and s.loc["A", "n_missing"] == 0
    assert s.loc["B", "n_bars"] == 4 and s.loc["B", "n_missing"] == 2
    assert s.loc["B", "longest_gap"] == 2
    assert s.loc["C", "first"] == pd.Timestamp("2020-01-02", tz="UTC")
    assert s.loc["C", "last"] == pd.Timestamp("2020-01-05", tz="UTC")
    assert s.loc["C", "n_missing"] == 0  # leading/trailing absence is not a gap
    g = b.gaps()
    assert len(g) == 1
    row = g.iloc[0]
    assert row["symbol"] == "B"
    assert row["start"] == pd.Timestamp("2020-01-03", tz="UTC")
    assert row["end"] == pd.Timestamp("2020-01-04", tz="UTC")
    assert row["n_missing"] == 2
    assert len(b.gaps(min_length=3)) == 0


def test_from_wide_symbols_follow_close_column_order():
    # the documented order is that of frames["close"], whatever the other frames' order
    b = make_panel().select(["C", "A", "B"])
    frames = b.to_frames()
    frames["open"] = frames["open"][["A", "B", "C"]]
    frames["volume"] = frames["volume"][["B", "C", "A"]]
    back = Bars.from_wide(frames)
    assert back.symbols == ("C", "A", "B")
    assert back.equals(b)
    frames["high"] = frames["high"][["C", "B"]]  # A has no high
    with pytest.raises(DataValidationError) as ei:
        Bars.from_wide(frames)
    assert ei.value.rule == "missing column" and ei.value.column == "high/A"


def test_summary_and_gaps_of_an_empty_window():
    # a window past the data (e.g. load_universe(start=...) after the last bar) has T == 0
    b = make_panel().loc("2030-01-01")
    assert b.shape == (0, 3)
    s = b.summary()
    assert list(s.index) == ["A", "B", "C"]
    assert s["first"].isna().all() and s["last"].isna().all()
    assert (s[["n_bars", "n_missing", "longest_gap"]] == 0).all().all()
    g = b.gaps()
    assert len(g) == 0 and list(g.columns) == ["symbol", "start", "end", "n_missing"]


def _pandas_resampled(b, j, rule, **kw):
    """From scratch: one symbol's own bars through pandas resample, empty bins dropped."""
    df = pd.DataFrame({f: b[f][:, j] for f in b.FIELDS},
                      index=b.index.tz_localize(None)).dropna(subset=["close"])  # UTC
    agg = {"open": "first", "high": "max", "low": "min", "close": "last",
           "volume": lambda v: v.sum(min_count=1)}
    return df.resample(rule, **kw).agg(agg).dropna(subset=["close"])


@pytest.mark.parametrize("universe, rule, kw", [
    ("daily", "W-FRI", {}),
    ("daily", "ME", {}),
    ("eurusd_hourly", "D", {}),
    ("eurusd_hourly", "D", {"offset": "21h"}),
])
def test_resample_matches_pandas_on_bundled_data(universe, rule, kw):
    from workbench.data import load_universe

    b = load_universe(universe)
    r = b.resample(rule, **kw)
    assert r.symbols == b.symbols and r.index.is_monotonic_increasing
    rows = pd.Series(np.arange(b.T), index=b.index.tz_localize(None)).resample(rule, **kw)
    rows = rows.max().dropna()
    assert list(r.index) == list(b.index[rows.astype(int)])  # stamped at the bin's last bar
    for j, _ in enumerate(b.symbols):
        ref = _pandas_resampled(b, j, rule, **kw)
        got = pd.DataFrame({f: r[f][:, j] for f in b.FIELDS}, index=r.index)
        got = got.dropna(subset=["close"])
        assert len(got) == len(ref)
        np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-12, atol=0)


def test_resample_leaves_a_symbols_empty_bins_nan_and_is_causal():
    from workbench.data import load_universe

    b = load_universe("daily", start="2004-01-01", end="2005-12-31")  # GOOG from 2004-08
    w = b.resample("W-FRI")
    goog = w.symbols.index("GOOG")
    first = b.index[np.flatnonzero(b.mask[:, goog])[0]]
    assert np.isnan(w["close"][w.index < first - pd.Timedelta(days=7), goog]).all()
    assert not w.mask[w.index < first - pd.Timedelta(days=7), goog].any()
    # changing every source bar after t changes no resampled bar stamped at or before t
    t = 300
    data = {f: b[f].copy() for f in b.FIELDS}
    for f in ("open", "high", "low", "close"):
        data[f][t + 1:] *= 1.5
    data["volume"][t + 1:] += 7.0
    moved = Bars(b.index, b.symbols, *(data[f] for f in b.FIELDS)).resample("W-FRI")
    assert moved.index.equals(w.index)
    done = w.index <= b.index[t]
    for f in b.FIELDS:
        np.testing.assert_array_equal(moved[f][done], w[f][done])
        assert not np.array_equal(moved[f][~done], w[f][~done], equal_nan=True)


def test_resample_bad_arguments_are_named():
    b = make_panel()
    with pytest.raises(ValueError, match="rule must be a pandas offset alias.*'weekly'"):
        b.resample("weekly")
    with pytest.raises(ValueError, match="offset must be a pandas offset alias"):
        b.resample("D", offset="soon")
    with pytest.raises(ValueError, match="closed must be 'left', 'right' or None"):
        b.resample("D", closed="both")
    assert b.resample("D").equals(b.loc())  # daily bars resampled to days are unchanged
