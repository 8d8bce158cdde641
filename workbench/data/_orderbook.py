"""L2 order-book snapshots: the ``OrderBook`` container, long-table loaders and validation.

An :class:`OrderBook` holds ``bid_px, ask_px, bid_sz, ask_sz`` as (T, N, k) float64 arrays
(level 0 = best, NaN = level absent) over a UTC index of T snapshot times and N symbols
(DESIGN.md section 2). The long layout has one row per (timestamp, symbol, side, level):
columns ``timestamp symbol side level price size``.

Validation is vectorised (numpy / pandas column operations, no loop over rows) and raises one
:class:`OrderBookValidationError` (a :class:`~workbench.data.DataValidationError`) per problem,
naming the file, column, symbol, timestamp, side, level and 1-based row.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._bars import _timestamp_as_column, _utc_index
from ._io import read_csv_table
from ._validation import (
    DataValidationError,
    _blank,
    _dup_rows,
    _empty,
    _lower_map,
    _py,
    check_index,
    parse_timestamps,
    to_float,
)

__all__ = [
    "BOOK_FIELDS",
    "BOOK_RULES",
    "OrderBook",
    "OrderBookValidationError",
    "read_orderbook_csv",
    "read_orderbook_parquet",
]

#: Array fields of an :class:`OrderBook`, each (T, N, k).
BOOK_FIELDS = ("bid_px", "ask_px", "bid_sz", "ask_sz")
#: Columns of the long layout.
LONG_COLUMNS = ("timestamp", "symbol", "side", "level", "price", "size")
SIDES = ("bid", "ask")

#: Rule names, in the order in which they are checked.
BOOK_RULES = (
    "empty input",
    "duplicate column",
    "missing column",
    "unparseable timestamp",
    "mixed time zones",
    "non-numeric",
    "invalid side",
    "invalid level",
    "non-finite value",
    "non-positive price",
    "negative size",
    "duplicate level",
    "duplicate timestamp",
    "unsorted timestamps",
    "levels out of order",
    "crossed book",
)

PathLike = str | os.PathLike


class OrderBookValidationError(DataValidationError):
    """An order-book input broke one validation rule.

    A :class:`~workbench.data.DataValidationError` that also names the book ``side``
    (``"bid"``/``"ask"``) and ``level`` (0-based) where they apply.

    Parameters
    ----------
    rule : str
        One of :data:`BOOK_RULES`.
    side : {"bid", "ask"}, optional
        Offending side.
    level : int, optional
        Offending level (0 = best).
    **kwargs
        ``source, column, symbol, timestamp, row, value, detail`` as for
        :class:`~workbench.data.DataValidationError`.

    Notes
    -----
    The message reads like ``"book.csv: column 'price', symbol 'AAA', timestamp
    2024-01-02 09:30:00+00:00, side 'bid', level 2 (row 9): levels out of order (value
    100.1); ..."``.
    """

    def __init__(self, rule: str, *, side: str | None = None, level: int | None = None,
                 **kwargs: Any) -> None:
        self.side = side
        self.level = None if level is None else int(level)
        super().__init__(rule, **kwargs)

    def _message(self) -> str:
        parts = []
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        if self.symbol is not None:
            parts.append(f"symbol {self.symbol!r}")
        if self.timestamp is not None:
            parts.append(f"timestamp {self.timestamp}")
        if self.side is not None:
            parts.append(f"side {self.side!r}")
        if self.level is not None:
            parts.append(f"level {self.level}")
        where = ", ".join(parts)
        if self.row is not None:
            where = f"{where} (row {self.row})" if where else f"row {self.row}"
        msg = f"{self.source}: {where}: {self.rule}" if where else f"{self.source}: {self.rule}"
        if self.value is not None:
            msg += f" (value {self.value!r})"
        if self.detail:
            msg += f"; {self.detail}"
        return msg

    def __reduce__(self):
        kwargs = dict(source=self.source, column=self.column, symbol=self.symbol,
                      timestamp=self.timestamp, row=self.row, value=self.value,
                      detail=self.detail, side=self.side, level=self.level)
        return (_rebuild_book_error, (self.rule, kwargs))


def _rebuild_book_error(rule: str, kwargs: dict) -> OrderBookValidationError:
    return OrderBookValidationError(rule, **kwargs)


def _first(bad: np.ndarray) -> tuple[int, ...] | None:
    """Index of the first True of ``bad`` in C order, or None."""
    flat = bad.reshape(-1)
    i = int(np.argmax(flat)) if flat.size else 0
    if not flat.size or not flat[i]:
        return None
    return tuple(int(v) for v in np.unravel_index(i, bad.shape))


# --------------------------------------------------------------------------------------------
# value rules on (T, N, k) arrays
# --------------------------------------------------------------------------------------------


def _check_arrays(
    index: pd.DatetimeIndex,
    symbols: Sequence[str],
    data: dict[str, np.ndarray],
    source: str,
    rows: dict[str, np.ndarray] | None = None,
    names: dict[str, str] | None = None,
    snapshot_only: bool = False,
) -> None:
    """Check the book rules on (T, N, k) arrays; raise at the first violation.

    ``rows`` (side -> (T, N, k) int array of 1-based source rows, 0 = none) and ``names``
    (field -> source column name) let errors point back into a long table. With
    ``snapshot_only`` only the across-level rules run (the per-row rules were checked on
    the table).
    """
    names = names or {f: f for f in BOOK_FIELDS}

    def fail(rule, field, hit, value=None, detail=None):
        t, j, lv = hit
        side = field[:3]
        row = None
        if rows is not None:
            r = int(rows[side][t, j, lv])
            row = r if r > 0 else None
        raise OrderBookValidationError(
            rule, source=source, column=names[field], symbol=symbols[j], timestamp=index[t],
            side=side, level=lv, row=row, value=value, detail=detail)

    with np.errstate(invalid="ignore"):
        if not snapshot_only:
            for side in SIDES:
                px, sz = data[f"{side}_px"], data[f"{side}_sz"]
                for field, a in ((f"{side}_px", px), (f"{side}_sz", sz)):
                    hit = _first(np.isinf(a))
                    if hit is not None:
                        fail("non-finite value", field, hit, value=a[hit])
                hit = _first(np.isnan(px) != np.isnan(sz))
                if hit is not None:
                    field = f"{side}_px" if np.isnan(px[hit]) else f"{side}_sz"
                    fail("non-finite value", field, hit, value=None,
                         detail="a level needs both a price and a size, or neither")
            for side in SIDES:
                px = data[f"{side}_px"]
                hit = _first(px <= 0)
                if hit is not None:
                    fail("non-positive price", f"{side}_px", hit, value=px[hit])
            for side in SIDES:
                sz = data[f"{side}_sz"]
                hit = _first(sz < 0)
                if hit is not None:
                    fail("negative size", f"{side}_sz", hit, value=sz[hit])
        # levels out of order: bids strictly decrease, asks strictly increase with level
        for side, acc, worse in (("bid", np.fmin, np.greater_equal),
                                 ("ask", np.fmax, np.less_equal)):
            px = data[f"{side}_px"]
            if px.shape[2] < 2:
                continue
            prev = acc.accumulate(px, axis=2)[:, :, :-1]  # best-so-far of earlier levels
            hit = _first(worse(px[:, :, 1:], prev))
            if hit is not None:
                t, j, lv = hit
                lv += 1
                before = px[t, j, :lv]
                pl = int(np.flatnonzero(~np.isnan(before))[-1])
                rule_txt = ("bids must strictly decrease" if side == "bid"
                            else "asks must strictly increase")
                fail("levels out of order", f"{side}_px", (t, j, lv), value=px[t, j, lv],
                     detail=f"{side} level {pl} has price {float(px[t, j, pl])!r}; "
                            f"{rule_txt} with level")
        bid, ask = data["bid_px"], data["ask_px"]
        if bid.shape[2]:
            best_bid = np.fmax.reduce(bid, axis=2)
            best_ask = np.fmin.reduce(ask, axis=2)
            hit = _first(best_bid >= best_ask)
            if hit is not None:
                t, j = hit
                lb = int(np.nanargmax(bid[t, j]))
                la = int(np.nanargmin(ask[t, j]))
                fail("crossed book", "bid_px", (t, j, lb), value=bid[t, j, lb],
                     detail=f"best bid {float(bid[t, j, lb])!r} >= best ask "
                            f"{float(ask[t, j, la])!r} (ask level {la})")


# --------------------------------------------------------------------------------------------
# the container
# --------------------------------------------------------------------------------------------


class OrderBook:
    """L2 order-book snapshots of N symbols at T UTC timestamps, k levels per side.

    Parameters
    ----------
    index : pandas.DatetimeIndex or array-like of datetimes
        (T,) tz-aware snapshot times, strictly increasing; converted to UTC (ns).
    symbols : sequence of str
        (N,) unique symbols.
    bid_px, ask_px : array-like, shape (T, N, k)
        Bid and ask prices (quote currency) by level, level 0 the best; NaN = level absent.
    bid_sz, ask_sz : array-like, shape (T, N, k)
        Resting size at each level (instrument units); NaN exactly where the price is NaN.
    validate : bool, default True
        Check the book rules (:data:`BOOK_RULES`). The index is always checked.
    source : str, default "<arrays>"
        Where the data came from; used in error messages.

    Raises
    ------
    ValueError
        Shapes differ or are not 3-D, the index is naive or has NaT, symbols not unique
        non-empty str.
    OrderBookValidationError
        With ``validate=True``: a non-finite or half-present level, a non-positive price, a
        negative size, levels out of order, a crossed book; always: an index that is not
        strictly increasing.

    Notes
    -----
    Arrays are stored as read-only C-contiguous float64 copies. A snapshot where a symbol has
    no book at all is NaN on every level; features then give NaN.
    """

    FIELDS = BOOK_FIELDS
    __slots__ = ("_index", "_symbols", "_data", "_source")

    def __init__(self, index: Any, symbols: Sequence[str], bid_px: Any, ask_px: Any,
                 bid_sz: Any, ask_sz: Any, *, validate: bool = True,
                 source: str = "<arrays>") -> None:
        idx = _utc_index(index)
        if isinstance(symbols, str):
            raise ValueError("symbols must be a sequence of str, not a single str")
        syms = tuple(symbols)
        bad = [s for s in syms if not isinstance(s, str) or not s.strip()]
        if bad:
            raise ValueError(f"symbols must be non-empty str, got {bad[:3]!r}")
        if len(set(syms)) != len(syms):
            raise ValueError(f"symbols must be unique, got {syms!r}")
        data = {}
        shape = None
        for f, a in zip(BOOK_FIELDS, (bid_px, ask_px, bid_sz, ask_sz)):
            arr = np.array(a, dtype=np.float64, order="C", copy=True)
            if arr.ndim != 3 or arr.shape[:2] != (len(idx), len(syms)):
                raise ValueError(f"field {f!r} has shape {arr.shape}, expected (T, N, k) with "
                                 f"(T, N) = ({len(idx)}, {len(syms)})")
            if shape is not None and arr.shape != shape:
                raise ValueError(f"field {f!r} has shape {arr.shape}, expected {shape}")
            shape = arr.shape
            arr.setflags(write=False)
            data[f] = arr
        if validate:
            _check_arrays(idx, syms, data, str(source))
        check_index(idx, str(source))
        self._index, self._symbols, self._data, self._source = idx, syms, data, str(source)

    @classmethod
    def _trusted(cls, index, symbols, data, source) -> OrderBook:
        obj = cls.__new__(cls)
        for a in data.values():
            a.setflags(write=False)
        obj._index, obj._symbols, obj._data, obj._source = index, tuple(symbols), data, source
        return obj

    # ---------------------------------------------------------------- properties
    @property
    def index(self) -> pd.DatetimeIndex:
        """(T,) UTC ``DatetimeIndex`` named ``"timestamp"``."""
        return self._index

    @property
    def symbols(self) -> tuple[str, ...]:
        """(N,) symbols."""
        return self._symbols

    @property
    def source(self) -> str:
        """Where the data came from."""
        return self._source

    @property
    def levels(self) -> int:
        """Number of levels k per side."""
        return int(self._data["bid_px"].shape[2])

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(T, N, k)``."""
        return self._data["bid_px"].shape

    @property
    def bid_px(self) -> np.ndarray:
        """(T, N, k) read-only bid prices, level 0 best; NaN = absent."""
        return self._data["bid_px"]

    @property
    def ask_px(self) -> np.ndarray:
        """(T, N, k) read-only ask prices, level 0 best; NaN = absent."""
        return self._data["ask_px"]

    @property
    def bid_sz(self) -> np.ndarray:
        """(T, N, k) read-only bid sizes; NaN = absent."""
        return self._data["bid_sz"]

    @property
    def ask_sz(self) -> np.ndarray:
        """(T, N, k) read-only ask sizes; NaN = absent."""
        return self._data["ask_sz"]

    @property
    def mid(self) -> np.ndarray:
        """(T, N) mid price ``(bid_0 + ask_0) / 2``; NaN where either best level is absent."""
        return (self.bid_px[:, :, 0] + self.ask_px[:, :, 0]) / 2.0

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        T, N, k = self.shape
        return f"<OrderBook: {N} symbol{'' if N == 1 else 's'} x {T} snapshots x {k} levels>"

    def equals(self, other: object) -> bool:
        """True when ``other`` has the same index, symbols and arrays (NaN == NaN)."""
        if not isinstance(other, OrderBook) or self.shape != other.shape:
            return False
        if self._symbols != other._symbols or not self._index.equals(other._index):
            return False
        return all(np.array_equal(self._data[f], other._data[f], equal_nan=True)
                   for f in BOOK_FIELDS)

    # ---------------------------------------------------------------- pandas conversion
    def to_long(self) -> pd.DataFrame:
        """Present levels as a long table.

        Returns
        -------
        pandas.DataFrame
            Columns ``timestamp symbol side level price size``, one row per present level,
            sorted by timestamp, symbol (alphabetical), side (bid first) and level.
        """
        T, N, k = self.shape
        px = np.stack([self.bid_px, self.ask_px], axis=2)  # (T, N, 2, k)
        sz = np.stack([self.bid_sz, self.ask_sz], axis=2)
        t, j, s, lv = np.nonzero(~np.isnan(px))
        rank = np.empty(N, dtype=np.int64)
        rank[np.argsort(np.array(self._symbols, dtype=object), kind="stable")] = np.arange(N)
        order = np.lexsort((lv, s, rank[j], t))
        t, j, s, lv = t[order], j[order], s[order], lv[order]
        return pd.DataFrame({
            "timestamp": self._index[t],
            "symbol": pd.array(np.array(self._symbols, dtype=object)[j], dtype="str"),
            "side": pd.array(np.array(SIDES, dtype=object)[s], dtype="str"),
            "level": lv.astype(np.int64),
            "price": px[t, j, s, lv],
            "size": sz[t, j, s, lv],
        })

    @classmethod
    def from_long(cls, df: pd.DataFrame, *, source: str = "<dataframe>",
                  tz: str = "UTC") -> OrderBook:
        """Build a validated book from a long table.

        Parameters
        ----------
        df : pandas.DataFrame
            Columns ``timestamp symbol side level price size`` (case-insensitive, others
            ignored; named index levels such as a ``timestamp`` index are read as columns):
            one row per (timestamp, symbol, side, level), side ``"bid"``/``"ask"``
            (case-insensitive), level an int >= 0 (0 = best). Rows in any order across
            symbols; each symbol's rows in time order.
        source : str, default "<dataframe>"
            Used in error messages (a file path for the file readers).
        tz : str, default "UTC"
            Time zone of naive timestamps (converted to UTC).

        Returns
        -------
        OrderBook
            Symbols sorted alphabetically; index = timestamps with at least one row;
            ``k = max(level) + 1``; levels without a row are NaN.

        Raises
        ------
        OrderBookValidationError
            The first violated rule of :data:`BOOK_RULES`, naming the file, column, symbol,
            timestamp, side, level and 1-based row.
        """
        df = _timestamp_as_column(df)
        index, symbols, data, rows, names = _parse_long_book(df, source=source, tz=tz)
        _check_arrays(index, symbols, data, source, rows=rows, names=names, snapshot_only=True)
        return cls._trusted(index, symbols, data, source)


# --------------------------------------------------------------------------------------------
# long-table parsing
# --------------------------------------------------------------------------------------------


def _parse_long_book(df: pd.DataFrame, *, source: str, tz: str):
    _empty(df, source)
    cols = _lower_map(df.columns, source, OrderBookValidationError)
    for req in LONG_COLUMNS:
        if req not in cols:
            raise OrderBookValidationError(
                "missing column", source=source, column=req,
                detail=f"found columns {[str(c) for c in df.columns]}")
    cname = {c: str(cols[c]) for c in LONG_COLUMNS}
    index = parse_timestamps(df[cols["timestamp"]], source=source, column=cname["timestamp"],
                             tz=tz)
    ts = index.asi8
    level = to_float(df[cols["level"]], source=source, column=cname["level"])
    price = to_float(df[cols["price"]], source=source, column=cname["price"])
    size = to_float(df[cols["size"]], source=source, column=cname["size"])

    sym_raw = df[cols["symbol"]].reset_index(drop=True)
    sym_null = _blank(sym_raw)
    if sym_null.any():
        r = int(np.argmax(sym_null))
        raise OrderBookValidationError(
            "non-finite value", source=source, column=cname["symbol"], timestamp=index[r],
            row=r + 1, detail="empty symbol")
    codes, uniques = pd.factorize(sym_raw.astype("str"), sort=True)
    symbols = tuple(str(u) for u in uniques)

    side_raw = df[cols["side"]].reset_index(drop=True)
    side_s = side_raw.astype("str").str.strip().str.lower()
    side_code = np.where(side_s == "bid", 0, np.where(side_s == "ask", 1, -1))
    side_code[side_raw.isna().to_numpy()] = -1

    def at(r: int, **kw) -> dict:
        base = dict(source=source, symbol=symbols[codes[r]], timestamp=index[r], row=r + 1)
        base.update(kw)
        return base

    bad = side_code < 0
    if bad.any():
        r = int(np.argmax(bad))
        raise OrderBookValidationError(
            "invalid side", **at(r, column=cname["side"], value=_py(side_raw.iloc[r]),
                                 detail="side must be 'bid' or 'ask'"))
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(level) & (level >= 0) & (level == np.floor(level)))
    if bad.any():
        r = int(np.argmax(bad))
        lv = level[r]
        raise OrderBookValidationError(
            "invalid level", **at(r, column=cname["level"], side=SIDES[side_code[r]],
                                  value=None if np.isnan(lv) else lv,
                                  detail="level must be an int >= 0 (0 = best)"))
    lvl = level.astype(np.int64)
    # levels are dense: k = max(level) + 1 per side and snapshot, so one mistyped level
    # (1e9 for 9) would allocate (T, N, k) arrays far beyond the table's own size
    n_snap = len(np.unique(ts)) * len(symbols)
    r_max = int(np.argmax(lvl))
    if n_snap * (int(lvl[r_max]) + 1) > max(10_000_000, 64 * len(lvl)):
        gib = 6 * 8 * n_snap * (int(lvl[r_max]) + 1) / 2**30
        raise OrderBookValidationError(
            "invalid level", **at(r_max, column=cname["level"], side=SIDES[side_code[r_max]],
                                  value=int(lvl[r_max]),
                                  detail=f"levels are 0-based depth positions; level "
                                         f"{int(lvl[r_max])} would make a dense book of "
                                         f"{int(lvl[r_max]) + 1} levels for {len(lvl)} rows "
                                         f"({gib:.3g} GiB); is it mistyped?"))

    def row_err(rule: str, col: str, r: int, value: Any = None, detail: str | None = None):
        return OrderBookValidationError(
            rule, **at(r, column=cname[col], side=SIDES[side_code[r]], level=int(lvl[r]),
                       value=value, detail=detail))

    for col, a in (("price", price), ("size", size)):
        bad = ~np.isfinite(a)
        if bad.any():
            r = int(np.argmax(bad))
            raise row_err("non-finite value", col, r, value=None if np.isnan(a[r]) else a[r])
    bad = price <= 0
    if bad.any():
        r = int(np.argmax(bad))
        raise row_err("non-positive price", "price", r, value=price[r])
    bad = size < 0
    if bad.any():
        r = int(np.argmax(bad))
        raise row_err("negative size", "size", r, value=size[r])

    key = (codes.astype(np.int64) * 2 + side_code) * (int(lvl.max()) + 1) + lvl
    dup = _dup_rows(ts, key)
    if dup is not None:
        raise row_err("duplicate level", "level", dup,
                      detail="the (timestamp, symbol, side, level) appears on an earlier row")
    order = np.argsort(codes, kind="stable")
    back = (ts[order][1:] < ts[order][:-1]) & (codes[order][1:] == codes[order][:-1])
    if back.any():
        r = int(order[1:][back].min())
        raise OrderBookValidationError(
            "unsorted timestamps", **at(r, column=cname["timestamp"],
                                        detail="a symbol's rows must be in time order"))

    uniq, tpos = np.unique(ts, return_inverse=True)
    T, N, k = len(uniq), len(symbols), int(lvl.max()) + 1
    data = {f: np.full((T, N, k), np.nan) for f in BOOK_FIELDS}
    rows = {s: np.zeros((T, N, k), dtype=np.int64) for s in SIDES}
    rown = np.arange(1, len(ts) + 1)
    for s_i, side in enumerate(SIDES):
        m = side_code == s_i
        data[f"{side}_px"][tpos[m], codes[m], lvl[m]] = price[m]
        data[f"{side}_sz"][tpos[m], codes[m], lvl[m]] = size[m]
        rows[side][tpos[m], codes[m], lvl[m]] = rown[m]
    out_index = pd.DatetimeIndex(uniq.astype("datetime64[ns]"), name="timestamp").tz_localize(
        "UTC")
    names = {"bid_px": cname["price"], "ask_px": cname["price"], "bid_sz": cname["size"],
             "ask_sz": cname["size"]}
    return out_index, symbols, data, rows, names


# --------------------------------------------------------------------------------------------
# file readers
# --------------------------------------------------------------------------------------------


def read_orderbook_csv(path: PathLike, *, tz: str = "UTC") -> OrderBook:
    """Read and validate a long-layout CSV of L2 snapshots.

    Parameters
    ----------
    path : str or os.PathLike
        CSV with a header row and columns ``timestamp symbol side level price size``.
    tz : str, default "UTC"
        Time zone of naive timestamps.

    Returns
    -------
    OrderBook
        (T, N, k) book with a UTC index, symbols sorted alphabetically.

    Raises
    ------
    OrderBookValidationError
        The first violated rule (:data:`BOOK_RULES`), naming the file, column, symbol,
        timestamp, side, level and 1-based data row.
    FileNotFoundError
        No such file.
    """
    df = read_csv_table(path, ("timestamp", "symbol", "side"), error=OrderBookValidationError)
    return OrderBook.from_long(df, source=str(path), tz=tz)


def read_orderbook_parquet(path: PathLike, *, tz: str = "UTC") -> OrderBook:
    """Read and validate a long-layout Parquet file of L2 snapshots.

    Parameters
    ----------
    path : str or os.PathLike
        Parquet file (pyarrow) with columns ``timestamp symbol side level price size``; the
        timestamp may be a timestamp type (naive or tz-aware) or text.
    tz : str, default "UTC"
        Time zone of naive timestamps.

    Returns
    -------
    OrderBook
        As :func:`read_orderbook_csv`.

    Raises
    ------
    OrderBookValidationError
        As :func:`read_orderbook_csv`.
    """
    df = pd.read_parquet(path)  # pandas-written index levels are read as columns
    return OrderBook.from_long(df, source=str(path), tz=tz)
