"""OrderBook container, long-table loaders and validation (one test per rule)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from workbench.data._orderbook import (
    BOOK_RULES,
    OrderBook,
    OrderBookValidationError,
    read_orderbook_csv,
    read_orderbook_parquet,
)
from workbench.data._validation import DataValidationError

TS = pd.date_range("2024-01-02 14:30", periods=3, freq="s", tz="UTC")


def arrays(T=3, k=3):
    """Two symbols ("AAA", "BBB"), k levels, a valid book."""
    base = np.array([100.0, 50.0])[None, :, None]
    lv = np.arange(k)[None, None, :]
    bid_px = np.broadcast_to(base - 0.01 - 0.01 * lv, (T, 2, k)) + 0.0
    ask_px = np.broadcast_to(base + 0.01 + 0.01 * lv, (T, 2, k)) + 0.0
    bid_sz = np.full((T, 2, k), 10.0) + lv
    ask_sz = np.full((T, 2, k), 20.0) + lv
    return bid_px, ask_px, bid_sz, ask_sz


def book(**kw) -> OrderBook:
    return OrderBook(TS, ("AAA", "BBB"), *arrays(), **kw)


def long_table() -> pd.DataFrame:
    return book().to_long()


def write(df: pd.DataFrame, tmp_path, name="book.csv") -> str:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return str(path)


def row_of(df, ts_i, symbol, side, level) -> int:
    """0-based position of the row of (timestamp TS[ts_i], symbol, side, level)."""
    m = ((df["timestamp"] == TS[ts_i]) & (df["symbol"] == symbol) & (df["side"] == side)
         & (df["level"] == level))
    return int(np.flatnonzero(m.to_numpy())[0])


def expect(path_or_df, rule, *, symbol=None, ts_i=None, level=None, side=None, source=None):
    with pytest.raises(DataValidationError) as ei:
        if isinstance(path_or_df, pd.DataFrame):
            OrderBook.from_long(path_or_df, source="<dataframe>")
        else:
            read_orderbook_csv(path_or_df)
    e = ei.value
    assert e.rule == rule, str(e)
    assert rule in BOOK_RULES
    if source is not None:
        assert e.source == source and source in str(e)
    if symbol is not None:
        assert e.symbol == symbol, str(e)
    if ts_i is not None:
        assert e.timestamp == TS[ts_i], str(e)
    if level is not None:
        assert isinstance(e, OrderBookValidationError)
        assert e.level == level and f"level {level}" in str(e), str(e)
    if side is not None:
        assert e.side == side, str(e)
    return e


# --------------------------------------------------------------------------- #
# container
# --------------------------------------------------------------------------- #


def test_container_properties_and_mid():
    b = book()
    assert b.levels == 3 and b.shape == (3, 2, 3) and len(b) == 3
    assert b.symbols == ("AAA", "BBB") and str(b.index.tz) == "UTC"
    np.testing.assert_allclose(b.mid, np.array([[100.0, 50.0]] * 3))
    assert not b.bid_px.flags.writeable
    assert "2 symbols x 3 snapshots x 3 levels" in repr(b)


def test_to_long_layout_and_roundtrip():
    bp, ap, bs, az = arrays()
    bp[1, 0, 2] = np.nan  # an absent level
    bs[1, 0, 2] = np.nan
    b = OrderBook(TS, ("BBB", "AAA"), bp, ap, bs, az)
    df = b.to_long()
    assert list(df.columns) == ["timestamp", "symbol", "side", "level", "price", "size"]
    assert len(df) == 3 * 2 * 2 * 3 - 1
    first = df.iloc[:6]
    assert (first["symbol"] == "AAA").all()  # alphabetical within a timestamp
    assert list(first["side"]) == ["bid"] * 3 + ["ask"] * 3
    assert list(first["level"]) == [0, 1, 2, 0, 1, 2]
    back = OrderBook.from_long(df)
    assert back.symbols == ("AAA", "BBB")
    assert back.equals(OrderBook(TS, ("AAA", "BBB"), bp[:, ::-1], ap[:, ::-1], bs[:, ::-1],
                                 az[:, ::-1]))


def test_csv_and_parquet_roundtrip(tmp_path):
    b = book()
    p = write(b.to_long(), tmp_path)
    assert read_orderbook_csv(p).equals(b)
    q = tmp_path / "book.parquet"
    b.to_long().to_parquet(q, index=False)
    assert read_orderbook_parquet(q).equals(b)
    assert read_orderbook_csv(p).source == p


def test_long_rows_in_any_order_and_missing_snapshot():
    df = long_table().sample(frac=1.0, random_state=0)
    df = df.sort_values("timestamp", kind="stable")  # per symbol in time order
    df = df[~((df["symbol"] == "BBB") & (df["timestamp"] == TS[1]))]  # no BBB book at t1
    b = OrderBook.from_long(df)
    assert b.shape == (3, 2, 3)
    assert np.isnan(b.bid_px[1, 1]).all() and np.isnan(b.mid[1, 1])
    np.testing.assert_allclose(b.bid_px[0], arrays()[0][0])


def test_error_is_picklable_and_names_level():
    df = long_table()
    df.loc[row_of(df, 1, "AAA", "ask", 2), "size"] = -1.0
    e = expect(df, "negative size", symbol="AAA", ts_i=1, level=2, side="ask")
    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.rule, e2.level, e2.side, str(e2)) == (e.rule, e.level, e.side, str(e))
    assert "side 'ask', level 2" in str(e) and "column 'size'" in str(e)


# --------------------------------------------------------------------------- #
# one test per rule, through a CSV file
# --------------------------------------------------------------------------- #


def test_empty_input(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_text("")
    expect(str(p), "empty input", source=str(p))
    p2 = write(long_table().iloc[:0], tmp_path, "header_only.csv")
    expect(p2, "empty input", source=p2)


def test_missing_column(tmp_path):
    p = write(long_table().drop(columns="side"), tmp_path)
    e = expect(p, "missing column", source=p)
    assert e.column == "side"


def test_unparseable_timestamp(tmp_path):
    df = long_table().astype({"timestamp": str})
    df.loc[4, "timestamp"] = "not a time"
    p = write(df, tmp_path)
    e = expect(p, "unparseable timestamp", source=p)
    assert e.row == 5


def test_non_numeric(tmp_path):
    df = long_table().astype({"price": object})
    r = row_of(df, 2, "BBB", "bid", 1)
    df.loc[r, "price"] = "abc"
    p = write(df, tmp_path)
    e = expect(p, "non-numeric", source=p)
    assert e.column == "price" and e.row == r + 1


def test_invalid_side(tmp_path):
    df = long_table().astype({"side": object})
    r = row_of(df, 1, "BBB", "ask", 0)
    df.loc[r, "side"] = "offer"
    p = write(df, tmp_path)
    e = expect(p, "invalid side", source=p, symbol="BBB", ts_i=1)
    assert e.row == r + 1 and e.value == "offer"


def test_invalid_level(tmp_path):
    df = long_table().astype({"level": float})
    r = row_of(df, 0, "AAA", "bid", 1)
    df.loc[r, "level"] = 1.5
    p = write(df, tmp_path)
    e = expect(p, "invalid level", source=p, symbol="AAA", ts_i=0, side="bid")
    assert e.row == r + 1


def test_a_mistyped_deep_level_is_refused_before_allocating(tmp_path):
    # level 1e9 for 9: the dense (T, N, k) book would be ~45 GiB for a 36-row table
    df = long_table()
    r = row_of(df, 1, "BBB", "ask", 2)
    df.loc[r, "level"] = 1_000_000_000
    p = write(df, tmp_path)
    e = expect(p, "invalid level", source=p, symbol="BBB", ts_i=1, side="ask")
    assert e.row == r + 1 and e.value == 1_000_000_000
    assert "mistyped" in str(e) and "GiB" in str(e)
    # a sparse but plausible depth still reads (levels 0..2 and 40: NaN in between)
    df = long_table()
    df.loc[row_of(df, 1, "BBB", "ask", 2), "level"] = 40
    assert OrderBook.from_long(df).levels == 41


def test_duplicate_column_and_blank_symbol(tmp_path):
    df = long_table()
    df["Price"] = df["price"]
    e = expect(df, "duplicate column")
    assert e.column == "Price" and "'price' and 'Price'" in str(e)
    df = long_table().astype({"symbol": object})
    df.loc[3, "symbol"] = " "
    e = expect(df, "non-finite value")
    assert e.row == 4 and "empty symbol" in str(e)
    with pytest.raises(ValueError, match="symbols must be non-empty str"):
        OrderBook(TS, ("AAA", ""), *arrays())


def test_non_finite_value(tmp_path):
    df = long_table()
    r = row_of(df, 2, "AAA", "ask", 1)
    df.loc[r, "size"] = np.nan
    p = write(df, tmp_path)
    e = expect(p, "non-finite value", source=p, symbol="AAA", ts_i=2, level=1, side="ask")
    assert e.column == "size" and e.row == r + 1


def test_non_positive_price(tmp_path):
    df = long_table()
    r = row_of(df, 1, "BBB", "bid", 2)
    df.loc[r, "price"] = 0.0
    p = write(df, tmp_path)
    e = expect(p, "non-positive price", source=p, symbol="BBB", ts_i=1, level=2, side="bid")
    assert e.value == 0.0 and e.row == r + 1


def test_negative_size(tmp_path):
    df = long_table()
    r = row_of(df, 0, "BBB", "ask", 1)
    df.loc[r, "size"] = -5.0
    p = write(df, tmp_path)
    expect(p, "negative size", source=p, symbol="BBB", ts_i=0, level=1, side="ask")


def test_zero_size_is_allowed():
    df = long_table()
    df.loc[row_of(df, 0, "BBB", "ask", 1), "size"] = 0.0
    assert OrderBook.from_long(df).ask_sz[0, 1, 1] == 0.0


def test_duplicate_level(tmp_path):
    df = long_table()
    r = row_of(df, 1, "AAA", "bid", 1)
    dup = df.iloc[[r]]
    df = pd.concat([df.iloc[: r + 1], dup, df.iloc[r + 1 :]], ignore_index=True)
    p = write(df, tmp_path)
    e = expect(p, "duplicate level", source=p, symbol="AAA", ts_i=1, level=1, side="bid")
    assert e.row == r + 2  # the repeated row, 1-based


def test_unsorted_timestamps(tmp_path):
    df = long_table()
    a = df[df["timestamp"] == TS[1]]
    b = df[df["timestamp"] == TS[2]]
    df = pd.concat([df[df["timestamp"] == TS[0]], b, a], ignore_index=True)
    p = write(df, tmp_path)
    e = expect(p, "unsorted timestamps", source=p, symbol="AAA", ts_i=1)
    assert e.row == 12 + 12 + 1


@pytest.mark.parametrize("side,level,price", [("bid", 1, 99.995), ("bid", 2, 99.99),
                                              ("ask", 2, 100.02), ("ask", 1, 100.005)])
def test_levels_out_of_order(tmp_path, side, level, price):
    df = long_table()
    r = row_of(df, 2, "AAA", side, level)
    df.loc[r, "price"] = price  # bids: >= the level above; asks: <= the level above
    p = write(df, tmp_path)
    e = expect(p, "levels out of order", source=p, symbol="AAA", ts_i=2, level=level,
               side=side)
    assert e.row == r + 1 and e.column == "price"


def test_crossed_book(tmp_path):
    df = long_table()
    r = row_of(df, 1, "BBB", "bid", 0)
    df.loc[r, "price"] = 50.01  # best bid == best ask
    p = write(df, tmp_path)
    e = expect(p, "crossed book", source=p, symbol="BBB", ts_i=1, level=0, side="bid")
    assert e.row == r + 1 and "best ask 50.01" in str(e)


# --------------------------------------------------------------------------- #
# array constructor validation
# --------------------------------------------------------------------------- #


def test_constructor_rules():
    bp, ap, bs, az = arrays()
    bp2 = bp.copy()
    bp2[2, 1, 0] = ap[2, 1, 0] + 1
    with pytest.raises(OrderBookValidationError) as ei:
        OrderBook(TS, ("AAA", "BBB"), bp2, ap, bs, az, source="feed")
    e = ei.value
    assert e.rule in ("crossed book", "levels out of order")
    assert (e.symbol, e.timestamp, e.side, e.source) == ("BBB", TS[2], "bid", "feed")
    bs2 = bs.copy()
    bs2[0, 0, 1] = np.nan  # price without a size
    with pytest.raises(OrderBookValidationError, match="non-finite value") as ei:
        OrderBook(TS, ("AAA", "BBB"), bp, ap, bs2, az)
    assert ei.value.column == "bid_sz" and ei.value.level == 1
    OrderBook(TS, ("AAA", "BBB"), bp2, ap, bs, az, validate=False)  # opt-out
    with pytest.raises(DataValidationError, match="unsorted timestamps"):
        OrderBook(TS[::-1], ("AAA", "BBB"), bp, ap, bs, az)
    with pytest.raises(ValueError, match="expected"):
        OrderBook(TS, ("AAA", "BBB"), bp[:, :, :2], ap, bs, az)


def test_csv_symbol_that_pandas_reads_as_missing(tmp_path):
    # the ticker "NA" must not become NaN (and an "empty symbol" error)
    bid_px, ask_px, bid_sz, ask_sz = arrays()
    ob = OrderBook(TS, ("AAA", "NA"), bid_px, ask_px, bid_sz, ask_sz)
    p = tmp_path / "na.csv"
    ob.to_long().to_csv(p, index=False)
    assert read_orderbook_csv(p).equals(ob)


def test_parquet_with_pandas_index_levels(tmp_path):
    ob = book()
    p = tmp_path / "indexed.parquet"
    ob.to_long().set_index(["timestamp", "symbol", "side", "level"]).to_parquet(p)
    assert read_orderbook_parquet(p).equals(ob)
