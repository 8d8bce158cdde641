import numpy as np
import pandas as pd
import pytest

from workbench.data import (
    RULES,
    Bars,
    DataValidationError,
    read_csv,
    read_parquet,
    write_csv,
    write_parquet,
)

HEADER = "timestamp,symbol,open,high,low,close,volume\n"
GOOD = [
    "2020-01-02,AAPL,10,11,9,10.5,100",
    "2020-01-02,MSFT,20,21,19,20.5,200",
    "2020-01-03,AAPL,10.5,12,10,11,150",
    "2020-01-03,MSFT,20.5,22,20,21,250",
    "2020-01-06,AAPL,11,12,10.5,11.5,120",
    "2020-01-06,MSFT,21,22,20.5,21.5,220",
]


def write(tmp_path, lines, header=HEADER, name="prices.csv"):
    p = tmp_path / name
    p.write_text(header + "".join(line + "\n" for line in lines))
    return p


def with_row(row_number, line, lines=GOOD):
    """Replace the 1-based data row ``row_number``."""
    out = list(lines)
    out[row_number - 1] = line
    return out


def expect(path, rule, **attrs):
    with pytest.raises(DataValidationError) as ei:
        read_csv(path)
    err = ei.value
    assert err.rule == rule, str(err)
    assert isinstance(err, ValueError)
    assert err.source == str(path)
    assert str(path) in str(err) and rule in str(err)
    for k, v in attrs.items():
        assert getattr(err, k) == v, (k, getattr(err, k), str(err))
    return err


def ts(day):
    return pd.Timestamp(day, tz="UTC")


def test_good_file_reads(tmp_path):
    b = read_csv(write(tmp_path, GOOD), name="mine")
    assert b.symbols == ("AAPL", "MSFT") and b.T == 3 and b.name == "mine"
    assert b.index[0] == ts("2020-01-02")
    assert b["close"][1, 1] == 21.0


def test_rules_are_the_documented_strings():
    assert RULES == (
        "empty input",
        "duplicate column",
        "missing column",
        "unparseable timestamp",
        "mixed time zones",
        "non-numeric",
        "non-finite value",
        "non-positive price",
        "negative volume",
        "high < low",
        "close outside [low, high]",
        "open outside [low, high]",
        "duplicate timestamp",
        "unsorted timestamps",
    )


def test_message_format(tmp_path):
    p = write(tmp_path, with_row(3, "2020-01-03,AAPL,10.5,12,10,-1.0,150"))
    err = expect(p, "non-positive price")
    assert str(err) == (
        f"{p}: column 'close', symbol 'AAPL', timestamp 2020-01-03 00:00:00+00:00 (row 3): "
        "non-positive price (value -1.0)"
    )


def test_empty_input(tmp_path):
    expect(write(tmp_path, []), "empty input")
    empty = tmp_path / "nothing.csv"
    empty.write_text("")
    expect(empty, "empty input")


def test_missing_column(tmp_path):
    header = "timestamp,symbol,open,high,close,volume\n"
    lines = ["2020-01-02,AAPL,10,11,10.5,100"]
    expect(write(tmp_path, lines, header=header), "missing column", column="low")


def test_columns_that_differ_only_in_case_are_a_duplicate(tmp_path):
    # names are read case-insensitively, so 'Close' beside 'close' was one of them silently
    # dropped; which one holds the data cannot be guessed
    header = "timestamp,symbol,open,high,low,close,volume,Close\n"
    lines = [line + ",99" for line in GOOD]
    err = expect(write(tmp_path, lines, header=header), "duplicate column", column="Close")
    assert "'close' and 'Close' name the same column" in str(err)
    header = "timestamp,open/A,high/A,low/A,close/A,Close/A\n"
    lines = ["2020-01-02,10,11,9,10.5,10.6"]
    err = expect(write(tmp_path, lines, header=header, name="w.csv"), "duplicate column",
                 column="Close/A", symbol="A")
    # the symbol part keeps its case: 'A' and 'a' are two symbols
    header = "timestamp,open/A,high/A,low/A,close/A,open/a,high/a,low/a,close/a\n"
    b = read_csv(write(tmp_path, ["2020-01-02,10,11,9,10.5,1,2,1,1.5"], header=header,
                       name="two.csv"))
    assert b.symbols == ("A", "a") and b["close"].tolist() == [[10.5, 1.5]]


def test_volume_optional_and_case_insensitive(tmp_path):
    header = "Timestamp,Symbol,Open,HIGH,Low,Close\n"
    b = read_csv(write(tmp_path, ["2020-01-02,X,10,11,9,10.5"], header=header))
    assert b.symbols == ("X",) and np.isnan(b["volume"]).all()


def test_unparseable_timestamp(tmp_path):
    p = write(tmp_path, with_row(4, "2020-13-45,MSFT,20.5,22,20,21,250"))
    expect(p, "unparseable timestamp", column="timestamp", row=4)
    p = write(tmp_path, with_row(2, ",MSFT,20.5,22,20,21,250"), name="empty_ts.csv")
    expect(p, "unparseable timestamp", row=2)


def test_mixed_time_zones_offsets(tmp_path):
    lines = [
        "2020-01-02T00:00:00+01:00,A,10,11,9,10.5,1",
        "2020-01-03T00:00:00+01:00,A,10,11,9,10.5,1",
        "2020-01-04T00:00:00+02:00,A,10,11,9,10.5,1",
    ]
    expect(write(tmp_path, lines), "mixed time zones", row=3, column="timestamp")


def test_one_zones_daylight_saving_offsets_are_not_mixed_zones(tmp_path):
    # exchange-local times as pandas writes a tz-aware column: -05:00 in winter, -04:00
    # after the DST change of 2020-03-08; each value converts to UTC exactly
    idx = pd.date_range("2020-03-02 09:30", periods=10, freq="B", tz="America/New_York")
    df = pd.DataFrame({"timestamp": idx, "symbol": "A", "open": 10.0, "high": 11.0,
                       "low": 9.0, "close": 10.5, "volume": 1.0})
    path = tmp_path / "ny.csv"
    df.to_csv(path, index=False)
    text = path.read_text()
    assert "-05:00" in text and "-04:00" in text
    b = read_csv(path)
    assert b.index.equals(pd.DatetimeIndex(idx.tz_convert("UTC"), name="timestamp"))
    # the same offsets on the wrong side of the change fit no zone: still an error
    lines = [
        "2020-03-05T09:30:00-04:00,A,10,11,9,10.5,1",
        "2020-03-10T09:30:00-05:00,A,10,11,9,10.5,1",
    ]
    expect(write(tmp_path, lines), "mixed time zones", row=2, column="timestamp")


def test_epoch_numbers_are_refused_with_a_hint_on_the_unit(tmp_path):
    lines = ["1577836800,A,10,11,9,10.5,1", "1577923200,A,10,11,9,10.5,1"]
    err = expect(write(tmp_path, lines), "unparseable timestamp", row=1, value="1577836800")
    assert "unit='s'" in str(err)
    # a text date that does not parse gets no such hint
    err = expect(write(tmp_path, ["2020-13-45,A,10,11,9,10.5,1"]), "unparseable timestamp")
    assert "unit=" not in str(err)


def test_mixed_naive_and_aware(tmp_path):
    lines = [
        "2020-01-02T00:00:00,A,10,11,9,10.5,1",
        "2020-01-03T00:00:00+00:00,A,10,11,9,10.5,1",
    ]
    expect(write(tmp_path, lines), "mixed time zones", row=2)


def test_same_offset_converted_to_utc(tmp_path):
    lines = [
        "2020-01-02T09:00:00-05:00,A,10,11,9,10.5,1",
        "2020-01-02T10:00:00-05:00,A,10,11,9,10,1",
    ]
    b = read_csv(write(tmp_path, lines))
    assert b.index[0] == pd.Timestamp("2020-01-02 14:00", tz="UTC")
    assert str(b.index.tz) == "UTC"


def test_naive_localised_to_tz(tmp_path):
    lines = ["2020-01-02 09:30,A,10,11,9,10.5,1", "2020-07-02 09:30,A,10,11,9,10,1"]
    p = write(tmp_path, lines)
    b = read_csv(p, tz="America/New_York")
    assert list(b.index) == [
        pd.Timestamp("2020-01-02 14:30", tz="UTC"),
        pd.Timestamp("2020-07-02 13:30", tz="UTC"),
    ]
    assert read_csv(p).index[0] == pd.Timestamp("2020-01-02 09:30", tz="UTC")


def test_non_numeric(tmp_path):
    p = write(tmp_path, with_row(5, "2020-01-06,AAPL,11,twelve,10.5,11.5,120"))
    expect(p, "non-numeric", column="high", row=5, value="twelve")


def test_non_finite_value_inf(tmp_path):
    p = write(tmp_path, with_row(2, "2020-01-02,MSFT,20,inf,19,20.5,200"))
    expect(p, "non-finite value", column="high", row=2, symbol="MSFT", timestamp=ts("2020-01-02"))


def test_non_finite_value_partial_bar(tmp_path):
    p = write(tmp_path, with_row(3, "2020-01-03,AAPL,10.5,12,10,,150"))
    err = expect(p, "non-finite value", column="close", row=3, symbol="AAPL")
    assert np.isnan(err.value)


def test_absent_bar_row_allowed_and_nan_volume_allowed(tmp_path):
    lines = with_row(3, "2020-01-03,AAPL,,,,,")
    lines = with_row(4, "2020-01-03,MSFT,20.5,22,20,21,", lines)
    b = read_csv(write(tmp_path, lines))
    assert not b.mask[1, 0] and b.mask[1, 1] and np.isnan(b["volume"][1, 1])


def test_non_positive_price(tmp_path):
    p = write(tmp_path, with_row(6, "2020-01-06,MSFT,21,22,0,21.5,220"))
    expect(p, "non-positive price", column="low", row=6, symbol="MSFT", value=0.0)


def test_negative_volume(tmp_path):
    p = write(tmp_path, with_row(1, "2020-01-02,AAPL,10,11,9,10.5,-5"))
    expect(p, "negative volume", column="volume", row=1, value=-5.0)


def test_high_below_low(tmp_path):
    p = write(tmp_path, with_row(4, "2020-01-03,MSFT,20.5,19,21,20.5,250"))
    expect(p, "high < low", column="high", row=4, timestamp=ts("2020-01-03"))


def test_close_outside_range(tmp_path):
    p = write(tmp_path, with_row(2, "2020-01-02,MSFT,20,21,19,21.5,200"))
    expect(p, "close outside [low, high]", column="close", row=2, value=21.5)


def test_open_outside_range(tmp_path):
    p = write(tmp_path, with_row(5, "2020-01-06,AAPL,9,12,10.5,11.5,120"))
    expect(p, "open outside [low, high]", column="open", row=5, value=9.0)


def test_duplicate_timestamp_per_symbol(tmp_path):
    lines = GOOD + ["2020-01-03,MSFT,20.5,22,20,21,250"]
    expect(write(tmp_path, lines), "duplicate timestamp", row=7, symbol="MSFT")


def test_unsorted_timestamps_per_symbol(tmp_path):
    lines = [
        "2020-01-02,AAPL,10,11,9,10.5,100",
        "2020-01-06,AAPL,11,12,10.5,11.5,120",
        "2020-01-03,AAPL,10.5,12,10,11,150",
    ]
    expect(write(tmp_path, lines), "unsorted timestamps", row=3, symbol="AAPL")


def test_grouped_by_symbol_is_fine(tmp_path):
    lines = [GOOD[i] for i in (0, 2, 4, 1, 3, 5)]  # AAPL block then MSFT block
    assert read_csv(write(tmp_path, lines)).equals(read_csv(write(tmp_path, GOOD, name="b.csv")))


def test_rule_order_first_rule_wins(tmp_path):
    # row 2 has a negative volume, row 5 a non-positive price: price rule comes first
    lines = with_row(2, "2020-01-02,MSFT,20,21,19,20.5,-1")
    lines = with_row(5, "2020-01-06,AAPL,-11,12,10.5,11.5,120", lines)
    expect(write(tmp_path, lines), "non-positive price", row=5)
    # two violations of one rule: the first row is reported
    lines = with_row(6, "2020-01-06,MSFT,21,22,20.5,-21.5,220", lines)
    expect(write(tmp_path, lines, name="two.csv"), "non-positive price", row=5, column="open")


def test_from_long_dataframe_source():
    df = pd.DataFrame(
        {
            "timestamp": ["2020-01-02", "2020-01-03"],
            "symbol": ["X", "X"],
            "open": [1.0, 1.0],
            "high": [1.0, 1.0],
            "low": [1.0, 2.0],
            "close": [1.0, 1.0],
        }
    )
    with pytest.raises(DataValidationError) as ei:
        Bars.from_long(df)
    assert ei.value.source == "<dataframe>" and ei.value.row == 2
    assert ei.value.rule == "high < low"
    assert str(ei.value).startswith("<dataframe>: ")


def make_bars():
    idx = pd.date_range("2021-03-01", periods=5, freq="h", tz="UTC")
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (5, 3)), axis=0))
    close[2, 1] = np.nan
    close[4, 2] = np.nan
    open_ = close * (1 + rng.normal(0, 1e-3, close.shape))
    high = np.fmax(open_, close) * 1.002
    low = np.fmin(open_, close) * 0.998
    volume = np.where(np.isnan(close), np.nan, rng.integers(0, 1000, close.shape).astype(float))
    volume[0, 0] = np.nan
    return Bars(idx, ("ZZZ", "AAA", "MMM"), open_, high, low, close, volume)


@pytest.mark.parametrize("layout", ["long", "wide"])
def test_csv_round_trip(tmp_path, layout):
    b = make_bars()
    p = tmp_path / f"b_{layout}.csv"
    write_csv(b, p, layout=layout)
    back = read_csv(p)
    if layout == "long":
        back = back.select(b.symbols)  # long files come back with sorted symbols
    assert back.equals(b)
    assert back.data_hash() == b.data_hash()


@pytest.mark.parametrize("layout", ["long", "wide"])
def test_parquet_round_trip(tmp_path, layout):
    b = make_bars()
    p = tmp_path / f"b_{layout}.parquet"
    write_parquet(b, p, layout=layout)
    back = read_parquet(p, layout=layout)
    if layout == "long":
        back = back.select(b.symbols)
    assert back.equals(b)


def test_wide_layout_errors(tmp_path):
    header = "timestamp,open/A,high/A,low/A,close/A\n"
    lines = ["2020-01-02,10,11,9,10.5", "2020-01-03,10,11,9,12"]
    err = expect(write(tmp_path, lines, header=header), "close outside [low, high]")
    assert err.column == "close/A" and err.symbol == "A" and err.row == 2
    header = "timestamp,open/A,high/A,close/A\n"
    expect(write(tmp_path, lines, header=header, name="m.csv"), "missing column", column="low/A")
    header = "timestamp,open/A,high/A,low/A,close/A\n"
    lines = ["2020-01-03,10,11,9,10.5", "2020-01-02,10,11,9,10"]
    expect(write(tmp_path, lines, header=header, name="u.csv"), "unsorted timestamps", row=2)
    lines = ["2020-01-03,10,11,9,10.5", "2020-01-03,10,11,9,10"]
    expect(write(tmp_path, lines, header=header, name="d.csv"), "duplicate timestamp", row=2)


def test_bad_layout_argument(tmp_path):
    with pytest.raises(ValueError, match="layout"):
        read_csv(write(tmp_path, GOOD), layout="diagonal")


def test_large_file_validates(tmp_path):
    n, symbols = 50_000, ("A", "B", "C", "D")  # 200k rows
    idx = pd.date_range("2010-01-01", periods=n, freq="min", tz="UTC")
    rng = np.random.default_rng(0)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 1e-3, (n, 4)), axis=0))
    high, low = close * 1.001, close * 0.999
    b = Bars(idx, symbols, close, high, low, close, np.ones((n, 4)))
    p = tmp_path / "big.csv"
    write_csv(b, p)
    back = read_csv(p)
    assert back.shape == (n, 4) and back.equals(b)
    # the same file with one bad row deep inside is rejected with the right row
    df = pd.read_csv(p, dtype={"timestamp": str})
    df.loc[123_456, "low"] = 1e9
    df.to_csv(p, index=False)
    with pytest.raises(DataValidationError) as ei:
        read_csv(p)
    assert ei.value.rule == "high < low" and ei.value.row == 123_457


@pytest.mark.parametrize("layout", ["long", "wide"])
def test_csv_round_trip_keeps_tickers_that_look_missing(tmp_path, layout):
    # "NA" is National Bank of Canada on the TSX; pandas reads NA/NULL/None/nan as missing
    b = make_bars()
    b = Bars(b.index, ("NA", "NULL", "nan"), *(b[f] for f in b.FIELDS))
    p = tmp_path / f"na_{layout}.csv"
    write_csv(b, p, layout=layout)
    back = read_csv(p)
    assert sorted(back.symbols) == ["NA", "NULL", "nan"]
    assert back.select(b.symbols).equals(b)


def test_empty_symbol_cell_is_still_an_error(tmp_path):
    p = write(tmp_path, with_row(4, "2020-01-03,,20.5,22,20,21,250"))
    err = expect(p, "non-finite value", column="symbol", row=4)
    assert "empty symbol" in str(err)


@pytest.mark.parametrize("cell", ['""', '"  "'])
def test_blank_symbol_cell_is_an_error_like_an_empty_one(tmp_path, cell):
    # a quoted empty or all-space cell is a str, not NaN: it became a symbol named ''
    p = write(tmp_path, with_row(4, f"2020-01-03,{cell},20.5,22,20,21,250"))
    err = expect(p, "non-finite value", column="symbol", row=4)
    assert "empty symbol" in str(err)


@pytest.mark.parametrize("sym", ["", "   "])
def test_bars_refuse_an_empty_symbol(sym):
    b = make_bars()
    with pytest.raises(ValueError, match="symbols must be non-empty str"):
        Bars(b.index, ("A", sym, "C"), *(b[f] for f in b.FIELDS))


def test_long_table_indexed_by_timestamp_and_symbol(tmp_path):
    # df.set_index(["timestamp", "symbol"]) is the usual pandas shape of a long table;
    # pandas stores those index levels in the Parquet file and restores them as the index
    b = make_bars()
    indexed = b.to_long().set_index(["timestamp", "symbol"])
    assert Bars.from_long(indexed).select(b.symbols).equals(b)
    p = tmp_path / "indexed.parquet"
    indexed.to_parquet(p)
    assert read_parquet(p).select(b.symbols).equals(b)
    p = tmp_path / "Timestamp_index.parquet"
    wide = _wide_frame(b).rename(columns={"timestamp": "Timestamp"}).set_index("Timestamp")
    wide.to_parquet(p)
    assert read_parquet(p, layout="wide").equals(b)


def _wide_frame(b):
    cols = {"timestamp": b.index}
    for f in b.FIELDS:
        for j, s in enumerate(b.symbols):
            cols[f"{f}/{s}"] = b[f][:, j]
    return pd.DataFrame(cols)


@pytest.mark.parametrize("writer", [write_csv, write_parquet])
def test_writer_refuses_unreadable_panel_and_keeps_existing_file(tmp_path, writer):
    good = make_bars()
    p = tmp_path / "bars.data"
    writer(good, p)
    before = p.read_bytes()
    close = good["close"].copy()
    close[3, 1] = -close[3, 1]  # negative price: allowed only with validate=False
    bad = Bars(good.index, good.symbols, good["open"], good["high"], good["low"], close,
               good["volume"], validate=False, source="cleaned")
    with pytest.raises(DataValidationError) as ei:
        writer(bad, p)
    err = ei.value
    assert err.rule == "non-positive price" and err.symbol == good.symbols[1]
    assert err.timestamp == good.index[3] and str(p) in str(err) and "not written" in str(err)
    assert p.read_bytes() == before  # the good file is intact
    assert (read_csv if writer is write_csv else read_parquet)(p).select(good.symbols).equals(good)
    empty = good.loc("2100-01-01")
    with pytest.raises(DataValidationError, match="empty input"):
        writer(empty, p)
    assert p.read_bytes() == before


@pytest.mark.parametrize("writer, method", [(write_csv, "to_csv"),
                                            (write_parquet, "to_parquet")])
def test_a_write_that_fails_midway_keeps_the_existing_file(tmp_path, monkeypatch, writer,
                                                           method):
    good = make_bars()
    p = tmp_path / "bars.data"
    writer(good, p)
    before = p.read_bytes()
    real = getattr(pd.DataFrame, method)

    def half_then_fail(self, path, *args, **kwargs):  # e.g. disk full or Ctrl-C mid-write
        real(self.iloc[: len(self) // 2], path, *args, **kwargs)
        raise OSError("No space left on device")

    monkeypatch.setattr(pd.DataFrame, method, half_then_fail)
    with pytest.raises(OSError, match="No space"):
        writer(good.loc("2000-01-01"), p)
    assert p.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bars.data"]  # no partial left


def test_day_first_dates_are_not_read_month_first(tmp_path):
    # 1, 2 and 13 February written day-first: reading each value on its own took the first
    # two month-first (2 January, 2 February) and silently shuffled the calendar
    lines = [
        "01/02/2020,A,10,11,9,10.5,1",
        "02/02/2020,A,10,11,9,10.5,1",
        "13/02/2020,A,10,11,9,10.5,1",
    ]
    b = read_csv(write(tmp_path, lines))
    assert list(b.index) == [ts("2020-02-01"), ts("2020-02-02"), ts("2020-02-13")]
    lines = ["01/02/2020,A,10,11,9,10.5,1", "02/03/2020,A,10,11,9,10.5,1"]
    b = read_csv(write(tmp_path, lines, name="month_first.csv"))
    assert list(b.index) == [ts("2020-01-02"), ts("2020-02-03")]  # one format: month-first


def test_timestamps_in_two_formats_are_an_error(tmp_path):
    lines = ["2020-01-02,A,10,11,9,10.5,1", "03/01/2020,A,10,11,9,10.5,1"]
    err = expect(write(tmp_path, lines), "unparseable timestamp", row=2, value="03/01/2020")
    assert "one format" in str(err)
