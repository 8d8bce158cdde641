"""The ``Bars`` panel: aligned OHLCV for N symbols over T UTC timestamps."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._validation import FIELDS, check_index, parse_long, parse_wide, validate_panel

__all__ = ["Bars"]


class _Field:
    """One OHLCV field as an attribute: ``bars.close`` is ``bars.field("close")``.

    A read-only (T, N) float64 array, NaN where there is no bar (prices in the data's
    currency, volume in shares or contracts).
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else obj._data[self.name]

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(f"Bars is immutable: field {self.name!r} cannot be assigned; "
                             "build a new Bars (e.g. Bars.from_wide) with the changed data")


def _utc_index(index: Any) -> pd.DatetimeIndex:
    try:
        idx = pd.DatetimeIndex(index)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"index must be convertible to a DatetimeIndex: {exc}") from exc
    if idx.tz is None:
        raise ValueError(
            "index must be tz-aware (UTC); localise naive timestamps first, "
            "e.g. index.tz_localize('UTC')"
        )
    if idx.hasnans:
        raise ValueError("index contains NaT")
    return idx.tz_convert("UTC").as_unit("ns").rename("timestamp")


def _bound(x: Any) -> Any:
    """A slicing bound: a str as given (pandas partial-date slicing), else a UTC Timestamp."""
    if isinstance(x, str):
        return x
    ts = pd.Timestamp(x)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


class Bars:
    """An aligned panel of OHLCV bars: N symbols over T timestamps.

    Parameters
    ----------
    index : pandas.DatetimeIndex or array-like of datetimes
        (T,) tz-aware timestamps, strictly increasing; converted to UTC (ns). Naive timestamps
        are rejected (the file loaders localise them).
    symbols : sequence of str
        (N,) unique symbols.
    open, high, low, close : array-like
        (T, N) prices in the instrument's quote currency; stored as C-contiguous float64 copies.
    volume : array-like
        (T, N) traded volume in units (shares, contracts); NaN where the source has no volume.
    name : str, optional
        Label of the panel (e.g. a universe name).
    validate : bool, default True
        Check the bar convention below. The index is always checked.
    source : str, default "<arrays>"
        Where the data came from; used in error messages.

    Raises
    ------
    ValueError
        Shapes are not (T, N), the index is naive or has NaT, symbols are not unique
        non-empty strings.
    DataValidationError
        With ``validate=True``: a bar breaks the convention; always: the index is not strictly
        increasing (rules ``"duplicate timestamp"`` / ``"unsorted timestamps"``).

    Notes
    -----
    Missing-bar convention: ``close[t, j]`` is NaN when asset j has no bar at t; then open, high,
    low and close are all NaN (and volume is NaN). A present bar has finite prices > 0 with
    ``low <= open, close <= high`` and volume finite >= 0 or NaN. Gaps are reported by
    :meth:`summary` and :meth:`gaps`, never filled.

    A ``Bars`` is immutable: field arrays are read-only, so it can be shared and cached.
    Each field is an attribute (``bars.close``), the same array as ``bars["close"]`` and
    ``bars.field("close")``.
    """

    FIELDS = FIELDS
    open = _Field()
    high = _Field()
    low = _Field()
    close = _Field()
    volume = _Field()
    __slots__ = ("_index", "_symbols", "_data", "_name", "_source", "_mask")

    def __init__(
        self,
        index: Any,
        symbols: Sequence[str],
        open: Any,
        high: Any,
        low: Any,
        close: Any,
        volume: Any,
        *,
        name: str | None = None,
        validate: bool = True,
        source: str = "<arrays>",
    ) -> None:
        idx = _utc_index(index)
        if isinstance(symbols, str):
            raise ValueError("symbols must be a sequence of str, not a single str")
        syms = tuple(symbols)
        bad = [s for s in syms if not isinstance(s, str) or not s.strip()]
        if bad:
            raise ValueError(f"symbols must be non-empty str, got {bad[:3]!r}")
        if len(set(syms)) != len(syms):
            dups = sorted({s for s in syms if syms.count(s) > 1})
            raise ValueError(f"symbols must be unique, duplicated: {dups}")
        T, N = len(idx), len(syms)
        data = {}
        for f, a in zip(FIELDS, (open, high, low, close, volume)):
            arr = np.array(a, dtype=np.float64, order="C", copy=True)
            if arr.shape != (T, N):
                raise ValueError(f"field {f!r} has shape {arr.shape}, expected (T, N) = ({T}, {N})")
            arr.setflags(write=False)
            data[f] = arr
        if validate:
            validate_panel(idx, syms, data, str(source))
        else:
            check_index(idx, str(source))
        self._set(idx, syms, data, name, str(source))

    def _set(self, idx, syms, data, name, source) -> None:
        self._index = idx
        self._symbols = syms
        self._data = data
        self._name = name
        self._source = source
        self._mask = None

    @classmethod
    def _trusted(cls, index, symbols, data, name=None, source="<arrays>") -> Bars:
        """Build from already-valid, owned arrays without copying or re-validating."""
        obj = cls.__new__(cls)
        fixed = {}
        for f in FIELDS:
            a = np.ascontiguousarray(data[f], dtype=np.float64)
            a.setflags(write=False)
            fixed[f] = a
        obj._set(index.rename("timestamp"), tuple(symbols), fixed, name, source)
        return obj

    # ---------------------------------------------------------------- basic properties
    @property
    def index(self) -> pd.DatetimeIndex:
        """(T,) UTC ``DatetimeIndex`` named ``"timestamp"``."""
        return self._index

    @property
    def symbols(self) -> tuple[str, ...]:
        """(N,) symbols."""
        return self._symbols

    @property
    def name(self) -> str | None:
        """Label of the panel, or None."""
        return self._name

    @property
    def source(self) -> str:
        """Where the data came from (file path, ``"<dataframe>"``, package name...)."""
        return self._source

    @property
    def T(self) -> int:
        """Number of timestamps."""
        return len(self._index)

    @property
    def N(self) -> int:
        """Number of symbols."""
        return len(self._symbols)

    @property
    def shape(self) -> tuple[int, int]:
        """``(T, N)``."""
        return (self.T, self.N)

    @property
    def mask(self) -> np.ndarray:
        """(T, N) read-only bool: True where a bar is present (finite close)."""
        if self._mask is None:
            m = np.isfinite(self._data["close"])
            m.setflags(write=False)
            self._mask = m
            return m
        return self._mask

    def field(self, name: str) -> np.ndarray:
        """Return one field as a read-only (T, N) float64 array.

        Parameters
        ----------
        name : {"open", "high", "low", "close", "volume"}
            Field name.

        Returns
        -------
        ndarray
            (T, N) float64, NaN where there is no bar.

        Raises
        ------
        KeyError
            Unknown field.
        """
        try:
            return self._data[name]
        except (KeyError, TypeError):
            raise KeyError(f"unknown field {name!r}; fields are {FIELDS}") from None

    def __getitem__(self, name: str) -> np.ndarray:
        return self.field(name)

    def __len__(self) -> int:
        return self.T

    def __repr__(self) -> str:
        label = f" {self._name!r}" if self._name else ""
        if self.T:
            a, b = self._index[0], self._index[-1]
            daily = (self._index == self._index.normalize()).all()
            fmt = "%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"
            span = f", {a.strftime(fmt)} .. {b.strftime(fmt)}"
        else:
            span = ""
        plural = "" if self.N == 1 else "s"
        return f"<Bars{label}: {self.N} symbol{plural} x {self.T} bars{span}>"

    def equals(self, other: object) -> bool:
        """Return True when ``other`` has the same index, symbols and values (NaN == NaN).

        The name and source are not compared.
        """
        if not isinstance(other, Bars) or self.shape != other.shape:
            return False
        if self._symbols != other._symbols or not self._index.equals(other._index):
            return False
        return all(np.array_equal(self[f], other[f], equal_nan=True) for f in FIELDS)

    # ---------------------------------------------------------------- pandas conversion
    def to_wide(self, field: str) -> pd.DataFrame:
        """Return one field as a (T, N) DataFrame.

        Parameters
        ----------
        field : str
            One of :attr:`FIELDS`.

        Returns
        -------
        pandas.DataFrame
            Index = timestamps (named ``"timestamp"``), columns = symbols (named ``"symbol"``).
        """
        return pd.DataFrame(
            self.field(field),
            index=self._index,
            columns=pd.Index(self._symbols, name="symbol"),
            copy=True,
        )

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """Return ``{field: to_wide(field)}`` for every field (each (T, N))."""
        return {f: self.to_wide(f) for f in FIELDS}

    def to_long(self) -> pd.DataFrame:
        """Return present bars as a long table.

        Returns
        -------
        pandas.DataFrame
            Columns ``timestamp symbol open high low close volume``, one row per present bar
            (absent bars are left out), sorted by timestamp then symbol (alphabetical).
        """
        t, j = np.nonzero(self.mask)
        rank = np.empty(self.N, dtype=np.int64)
        rank[np.argsort(np.array(self._symbols, dtype=object), kind="stable")] = np.arange(self.N)
        order = np.lexsort((rank[j], t))
        t, j = t[order], j[order]
        out = {
            "timestamp": self._index[t],
            "symbol": pd.array(np.array(self._symbols, dtype=object)[j], dtype="str"),
        }
        for f in FIELDS:
            out[f] = self._data[f][t, j]
        return pd.DataFrame(out)

    @classmethod
    def from_long(
        cls,
        df: pd.DataFrame,
        *,
        source: str = "<dataframe>",
        tz: str = "UTC",
        name: str | None = None,
    ) -> Bars:
        """Build a validated panel from a long table.

        Parameters
        ----------
        df : pandas.DataFrame
            Columns ``timestamp symbol open high low close [volume]`` (case-insensitive); a
            ``timestamp`` index or a ``(timestamp, symbol)`` MultiIndex is accepted too (named
            index levels are read as columns). One row per bar; symbols may be grouped or
            interleaved in any order, but each symbol's rows must be in time order (else
            ``"unsorted timestamps"``).
        source : str, default "<dataframe>"
            Used in error messages.
        tz : str, default "UTC"
            Time zone of naive timestamps (converted to UTC afterwards).
        name : str, optional
            Panel label.

        Returns
        -------
        Bars
            Symbols sorted alphabetically; calendar = timestamps with at least one bar.

        Raises
        ------
        DataValidationError
            See :data:`workbench.data.RULES`; row numbers are 1-based positions in ``df``.
        """
        df = _timestamp_as_column(df)
        index, symbols, data = parse_long(df, source=source, tz=tz)
        return cls._trusted(index, symbols, data, name=name, source=source)

    @classmethod
    def from_wide(
        cls,
        frames: Mapping[str, pd.DataFrame],
        *,
        source: str = "<dataframe>",
        tz: str = "UTC",
        name: str | None = None,
    ) -> Bars:
        """Build a validated panel from one wide (T, N) DataFrame per field.

        Parameters
        ----------
        frames : mapping of str to pandas.DataFrame
            ``{"open": df, "high": df, "low": df, "close": df[, "volume": df]}``, each indexed by
            timestamp with one column per symbol (the layout of :meth:`to_frames`). All frames
            must share the index of ``close``; volume is optional (NaN).
        source, tz, name
            As in :meth:`from_long`.

        Returns
        -------
        Bars
            Symbols in the column order of ``frames["close"]``.

        Raises
        ------
        DataValidationError
            Missing field or symbol (``"missing column"``) and the value/timestamp rules.
        ValueError
            The frames' indexes differ.
        """
        from ._validation import DataValidationError

        lower = {str(k).lower(): v for k, v in frames.items()}
        for f in ("open", "high", "low", "close"):
            if f not in lower:
                raise DataValidationError("missing column", source=source, column=f)
        close = lower["close"]
        present = [f for f in FIELDS if f in lower]
        for f in present:
            if not lower[f].index.equals(close.index):
                raise ValueError(f"{source}: frame {f!r} has a different index from 'close'")
        cols: dict[str, Any] = {"timestamp": pd.Series(close.index)}
        # symbol by symbol in the column order of ``close``: parse_wide keeps the order in
        # which symbols first appear among the columns
        for s in close.columns:
            for f in present:
                if s in lower[f].columns:
                    cols[f"{f}/{s}"] = lower[f][s].reset_index(drop=True)
                elif f != "volume":
                    raise DataValidationError(
                        "missing column", source=source, column=f"{f}/{s}", symbol=str(s)
                    )
        for f in present:  # symbols missing from ``close``: parse_wide reports them
            for s in lower[f].columns:
                cols.setdefault(f"{f}/{s}", lower[f][s].reset_index(drop=True))
        wide = pd.DataFrame(cols)
        index, symbols, data = parse_wide(wide, source=source, tz=tz)
        return cls._trusted(index, symbols, data, name=name, source=source)

    # ---------------------------------------------------------------- slicing / combining
    def select(self, symbols: str | Iterable[str]) -> Bars:
        """Return the panel restricted to ``symbols`` (same calendar, in the order given).

        Parameters
        ----------
        symbols : str or iterable of str
            Symbols to keep.

        Returns
        -------
        Bars
            (T, len(symbols)); timestamps where none of them has a bar are kept (use
            :meth:`loc` to drop them).

        Raises
        ------
        KeyError
            Unknown symbol.
        ValueError
            A symbol given twice.
        """
        wanted = (symbols,) if isinstance(symbols, str) else tuple(symbols)
        pos = {s: i for i, s in enumerate(self._symbols)}
        missing = [s for s in wanted if s not in pos]
        if missing:
            raise KeyError(f"unknown symbols {missing}; available: {list(self._symbols)}")
        if len(set(wanted)) != len(wanted):
            raise ValueError(f"symbols given twice in {wanted}")
        cols = [pos[s] for s in wanted]
        data = {f: self._data[f][:, cols] for f in FIELDS}
        return Bars._trusted(self._index, wanted, data, name=self._name, source=self._source)

    def loc(self, start: Any = None, end: Any = None) -> Bars:
        """Return the bars with ``start <= timestamp <= end``.

        Parameters
        ----------
        start, end : str, datetime-like or None
            Inclusive bounds, each read on its own (a string and a Timestamp, or strings in
            different UTC offsets, can be mixed); naive values are read as UTC. A date string
            selects whole days (``end="2010-12-31"`` keeps the hourly bars of that day).

        Returns
        -------
        Bars
            The slice, without timestamps where no symbol has a bar.
        """
        # one bound per slice_locs call: pandas refuses a pair whose UTC offsets differ
        # (a str bound is parsed at its own offset, a Timestamp bound is converted to UTC)
        i0 = 0 if start is None else int(self._index.slice_locs(start=_bound(start))[0])
        i1 = self.T if end is None else int(self._index.slice_locs(end=_bound(end))[1])
        keep = np.flatnonzero(self.mask[i0 : max(i0, i1)].any(axis=1)) + i0
        data = {f: self._data[f][keep] for f in FIELDS}
        return Bars._trusted(self._index[keep], self._symbols, data, self._name, self._source)

    def resample(self, rule: str, *, closed: str | None = None,
                 offset: str | None = None) -> Bars:
        """Aggregate the bars into coarser ones (e.g. daily to weekly, hourly to daily).

        Per symbol and bin, over the bars that symbol has there: open = first open,
        high = max high, low = min low, close = last close, volume = sum of the volumes
        (NaN when none is known). A bin in which a symbol has no bar is NaN for it (nothing
        is filled); bins in which no symbol has a bar are dropped.

        Parameters
        ----------
        rule : str
            A pandas offset alias for the bins: ``"W-FRI"``, ``"ME"`` (month end), ``"QE"``,
            ``"YE"``, ``"D"``, ``"4h"``, ...
        closed : {"left", "right"}, optional
            Which bin edge is inside the bin; default pandas' for ``rule`` (right for the
            end-anchored ``"W"``, ``"ME"``, ``"QE"``, ``"YE"``, so a daily bar stamped at
            midnight of the week's last session belongs to that week; left otherwise, so
            an hourly bar stamped at 23:00 belongs to its own day).
        offset : str, optional
            Shift of the bin edges, as pandas' ``offset`` (e.g. ``"21h"`` with
            ``rule="D"`` for FX days that end at 21:00 UTC, 5 pm New York in summer).

        Returns
        -------
        Bars
            (T', N), T' <= T, same symbols, name and source. Each bar is stamped at the
            latest source timestamp in its bin (not at the bin edge), so it never carries a
            value from after its own timestamp and keeps the source's stamping convention
            (a daily bar at midnight of its session date, an hourly bar at its start).

        Raises
        ------
        ValueError
            ``rule`` (or ``offset``) is not a pandas offset alias, or ``closed`` is not
            "left", "right" or None.

        Notes
        -----
        Causal: a bar stamped at or before t depends only on source bars at or before t.
        The bins are those of :meth:`pandas.DataFrame.resample` with the given ``rule``
        and ``closed``.
        """
        if closed not in (None, "left", "right"):
            raise ValueError(f"closed must be 'left', 'right' or None, got {closed!r}")
        for name, value in (("rule", rule), ("offset", offset)):
            if value is None and name == "offset":
                continue
            try:
                pd.tseries.frequencies.to_offset(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} must be a pandas offset alias such as 'W-FRI', "
                                 f"'ME', 'D' or '21h', got {value!r} ({exc})") from None
        T = self.T
        # on naive UTC stamps (the same bins): pandas ignores ``offset`` for day rules on
        # a tz-aware index
        rows = pd.Series(np.arange(T), index=self._index.tz_localize(None))
        # the last source row of each non-empty bin; bins are runs of consecutive rows,
        # so row i is in the first bin whose last row is >= i
        last_row = (rows.resample(rule, closed=closed, offset=offset).max().dropna()
                    .astype(np.int64).to_numpy())
        bins = np.searchsorted(last_row, np.arange(T), side="left")
        out: dict[str, np.ndarray] = {}
        how = {"open": "first", "high": "max", "low": "min", "close": "last"}
        for f in FIELDS:
            frame = pd.DataFrame(self._data[f])
            g = frame.groupby(bins, sort=True)
            out[f] = (g.sum(min_count=1) if f == "volume" else g.agg(how[f])).to_numpy()
        index = self._index[last_row]
        keep = np.isfinite(out["close"]).any(axis=1)
        data = {f: np.ascontiguousarray(out[f][keep], dtype=np.float64) for f in FIELDS}
        return Bars._trusted(index[keep], self._symbols, data, self._name, self._source)

    @staticmethod
    def union(bars_list: Iterable[Bars], name: str | None = None) -> Bars:
        """Put several panels on the union of their calendars.

        Parameters
        ----------
        bars_list : iterable of Bars
            Panels with disjoint symbols.
        name : str, optional
            Label of the result.

        Returns
        -------
        Bars
            (T_union, sum N_i); each asset is NaN (no bar) at timestamps of the union where its
            own panel has none. Nothing is forward-filled.

        Raises
        ------
        ValueError
            Empty input or a symbol present in two panels.
        """
        items = list(bars_list)
        if not items:
            raise ValueError("union needs at least one Bars")
        symbols: list[str] = []
        for b in items:
            symbols.extend(b.symbols)
        if len(set(symbols)) != len(symbols):
            dups = sorted({s for s in symbols if symbols.count(s) > 1})
            raise ValueError(f"duplicate symbols across panels: {dups}")
        index = items[0].index
        for b in items[1:]:
            index = index.union(b.index)
        T, N = len(index), len(symbols)
        data = {f: np.full((T, N), np.nan) for f in FIELDS}
        j0 = 0
        for b in items:
            rows = index.get_indexer(b.index)
            for f in FIELDS:
                data[f][rows, j0 : j0 + b.N] = b[f]
            j0 += b.N
        src = "union(" + ", ".join(b.source for b in items) + ")"
        return Bars._trusted(index, symbols, data, name=name, source=src)

    # ---------------------------------------------------------------- diagnostics
    def data_hash(self) -> str:
        """Return a content hash of the panel.

        Returns
        -------
        str
            SHA-256 hex digest of the index (int64 ns since epoch, UTC), the symbols and each
            field's little-endian float64 bytes with every NaN replaced by one canonical NaN
            and -0.0 by 0.0 (as :meth:`equals` compares them).
            The name and source are not hashed. Equal panels give equal hashes; any change of a
            value, timestamp or symbol changes it.
        """
        h = hashlib.sha256()
        h.update(b"workbench.Bars.v1")
        h.update(np.asarray(self._index.asi8, dtype="<i8").tobytes())
        for s in self._symbols:
            b = s.encode("utf-8")
            h.update(len(b).to_bytes(8, "little") + b)
        for f in FIELDS:
            # + 0.0 turns -0.0 into 0.0 and leaves every other value's bits as they are
            a = (np.where(np.isnan(self._data[f]), np.nan, self._data[f]) + 0.0).astype("<f8")
            h.update(f.encode() + a.tobytes())
        return h.hexdigest()

    def _spans(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = self.mask
        has = np.asarray(m.any(axis=0))
        if self.T == 0:  # argmax of an empty axis raises
            none = np.full(self.N, -1, dtype=np.int64)
            return has, none, none
        first = np.where(has, np.argmax(m, axis=0), -1)
        last = np.where(has, self.T - 1 - np.argmax(m[::-1], axis=0), -1)
        return has, first, last

    def _runs(self, j: int, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """Start (inclusive) and stop (exclusive) rows of missing runs in [first, last]."""
        miss = ~self.mask[first : last + 1, j]
        d = np.diff(np.concatenate([[0], miss.astype(np.int8), [0]]))
        return np.flatnonzero(d == 1) + first, np.flatnonzero(d == -1) + first

    def summary(self) -> pd.DataFrame:
        """Per-symbol coverage.

        Returns
        -------
        pandas.DataFrame
            One row per symbol (index ``symbol``), columns ``first``, ``last`` (timestamps of the
            first / last bar, NaT if none), ``n_bars``, ``n_missing`` (panel timestamps between
            first and last where the symbol has no bar) and ``longest_gap`` (longest run of
            such timestamps, in panel rows).
        """
        has, first, last = self._spans()
        n_bars = self.mask.sum(axis=0)
        longest = np.zeros(self.N, dtype=np.int64)
        for j in np.flatnonzero(has):
            s, e = self._runs(int(j), int(first[j]), int(last[j]))
            longest[j] = (e - s).max() if len(s) else 0
        nat = pd.NaT
        return pd.DataFrame(
            {
                "first": [self._index[i] if h else nat for i, h in zip(first, has)],
                "last": [self._index[i] if h else nat for i, h in zip(last, has)],
                "n_bars": n_bars.astype(np.int64),
                "n_missing": np.where(has, last - first + 1 - n_bars, 0).astype(np.int64),
                "longest_gap": longest,
            },
            index=pd.Index(self._symbols, name="symbol", dtype="str"),
        )

    def gaps(self, min_length: int = 1) -> pd.DataFrame:
        """List runs of missing bars inside each symbol's [first bar, last bar] range.

        Parameters
        ----------
        min_length : int, default 1
            Keep runs of at least this many panel rows.

        Returns
        -------
        pandas.DataFrame
            Columns ``symbol``, ``start``, ``end`` (timestamps of the first and last panel row
            of the run, inclusive) and ``n_missing`` (run length in panel rows), ordered by
            symbol position then start.
        """
        has, first, last = self._spans()
        rows: dict[str, list] = {"symbol": [], "start": [], "end": [], "n_missing": []}
        for j in np.flatnonzero(has):
            s, e = self._runs(int(j), int(first[j]), int(last[j]))
            keep = (e - s) >= min_length
            s, e = s[keep], e[keep]
            rows["symbol"].extend([self._symbols[j]] * len(s))
            rows["start"].extend(self._index[s])
            rows["end"].extend(self._index[e - 1])
            rows["n_missing"].extend((e - s).tolist())
        return pd.DataFrame(
            {
                "symbol": pd.array(rows["symbol"], dtype="str"),
                "start": pd.DatetimeIndex(rows["start"], dtype="datetime64[ns, UTC]"),
                "end": pd.DatetimeIndex(rows["end"], dtype="datetime64[ns, UTC]"),
                "n_missing": np.asarray(rows["n_missing"], dtype=np.int64),
            }
        )


def _timestamp_as_column(df: pd.DataFrame) -> pd.DataFrame:
    """Move named index levels that are not also columns into columns.

    A ``timestamp`` index, or a ``(timestamp, symbol)`` MultiIndex as ``set_index`` or a
    pandas-written Parquet file gives, then reads like the long layout's columns.
    """
    cols = {str(c).strip().lower() for c in df.columns}
    levels = [
        i
        for i, n in enumerate(df.index.names)
        if n is not None and str(n).strip().lower() not in cols
    ]
    if not levels:
        return df
    return df.reset_index(level=levels)
