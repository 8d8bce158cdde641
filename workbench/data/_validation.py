"""Validation of OHLCV inputs: one clear :class:`DataValidationError` per problem.

Everything here is vectorised over rows (numpy / pandas column operations only); the only Python
loops run over columns or symbols.  The functions that parse user tables (long or wide layout)
return plain arrays, so :mod:`workbench.data._bars` can build a ``Bars`` without re-validating.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["RULES", "DataValidationError", "validate_panel", "parse_long", "parse_wide"]

FIELDS = ("open", "high", "low", "close", "volume")
PRICE_FIELDS = ("open", "high", "low", "close")

#: Rule names, in the order in which they are checked.
RULES = (
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


class DataValidationError(ValueError):
    """A market-data input broke one validation rule.

    Parameters
    ----------
    rule : str
        One of :data:`RULES`, e.g. ``"non-positive price"``.
    source : str, default "<arrays>"
        File path, ``"<dataframe>"`` or ``"<arrays>"``.
    column : str, optional
        Offending column, as named in the input (e.g. ``"close"`` or ``"close/AAPL"``).
    symbol : str, optional
        Offending symbol.
    timestamp : pandas.Timestamp, optional
        Offending timestamp (UTC) when it could be parsed.
    row : int, optional
        1-based data row of the file / DataFrame (header not counted).
    value : object, optional
        The offending value.
    detail : str, optional
        Extra explanation appended to the message.

    Attributes
    ----------
    rule, source, column, symbol, timestamp, row, value, detail
        As given; absent parts are ``None``.

    Notes
    -----
    Subclasses :class:`ValueError`. The message reads like
    ``"prices.csv: column 'close', symbol 'AAPL', timestamp 2020-01-03 00:00:00+00:00 (row 17):
    non-positive price (value -1.0)"``; parts that do not apply are omitted.
    """

    def __init__(
        self,
        rule: str,
        *,
        source: str = "<arrays>",
        column: str | None = None,
        symbol: str | None = None,
        timestamp: Any = None,
        row: int | None = None,
        value: Any = None,
        detail: str | None = None,
    ) -> None:
        self.rule = rule
        self.source = str(source)
        self.column = column
        self.symbol = symbol
        self.timestamp = timestamp
        self.row = None if row is None else int(row)
        self.value = _py(value)
        self.detail = detail
        super().__init__(self._message())

    def _message(self) -> str:
        parts = []
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        if self.symbol is not None:
            parts.append(f"symbol {self.symbol!r}")
        if self.timestamp is not None:
            parts.append(f"timestamp {self.timestamp}")
        where = ", ".join(parts)
        if self.row is not None:
            where = f"{where} (row {self.row})" if where else f"row {self.row}"
        msg = f"{self.source}: {where}: {self.rule}" if where else f"{self.source}: {self.rule}"
        if self.value is not None:
            msg += f" (value {self.value!r})"
        if self.detail:
            msg += f"; {self.detail}"
        return msg

    def __reduce__(self):  # keep the exception picklable (multiprocessing, joblib)
        kwargs = dict(
            source=self.source,
            column=self.column,
            symbol=self.symbol,
            timestamp=self.timestamp,
            row=self.row,
            value=self.value,
            detail=self.detail,
        )
        return (_rebuild_error, (self.rule, kwargs))


def _rebuild_error(rule: str, kwargs: dict) -> DataValidationError:
    return DataValidationError(rule, **kwargs)


def _py(value: Any) -> Any:
    """Numpy scalars -> Python scalars so messages read ``-1.0``, not ``np.float64(-1.0)``."""
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------------------------
# value rules on a (M, 5) matrix of bars
# --------------------------------------------------------------------------------------------

# A locator turns (bar number m, field number k) into the keyword arguments of the error.
Locator = Callable[[int, int], dict]


def _first(bad: np.ndarray) -> tuple[int, int] | None:
    """First True of a (M, K) boolean matrix in row-major order, or None."""
    flat = bad.reshape(-1)
    i = int(np.argmax(flat))
    if not flat[i]:
        return None
    return divmod(i, bad.shape[1])


def check_values(X: np.ndarray, locate: Locator, source: str) -> None:
    """Check the value rules on a (M, 5) float64 matrix of bars (columns open..volume).

    A bar whose four prices and volume are all NaN is an absent bar and passes. Rules, in order:
    non-finite value (inf anywhere, a NaN price in a bar that has any other value), non-positive
    price, negative volume, high < low, close outside [low, high], open outside [low, high].
    """
    P = X[:, :4]
    V = X[:, 4]
    nan_p = np.isnan(P)
    present = ~nan_p.all(axis=1) | ~np.isnan(V)
    o, h, lo, c = P[:, 0], P[:, 1], P[:, 2], P[:, 3]
    zeros = np.zeros((X.shape[0], 1), dtype=bool)
    with np.errstate(invalid="ignore"):
        checks = (
            (
                "non-finite value",
                lambda: np.isinf(X) | np.hstack([nan_p & present[:, None], zeros]),
            ),
            ("non-positive price", lambda: np.hstack([P <= 0, zeros])),
            (
                "negative volume",
                lambda: np.hstack([np.zeros_like(P, dtype=bool), (V < 0)[:, None]]),
            ),
            ("high < low", lambda: _col(X.shape[0], 1, h < lo)),
            ("close outside [low, high]", lambda: _col(X.shape[0], 3, (c < lo) | (c > h))),
            ("open outside [low, high]", lambda: _col(X.shape[0], 0, (o < lo) | (o > h))),
        )
        for rule, make in checks:
            hit = _first(make())
            if hit is not None:
                m, k = hit
                detail = None
                if rule == "non-finite value" and np.isnan(X[m, k]):
                    detail = "a bar must have all of open, high, low, close or none of them"
                elif rule == "high < low":
                    detail = f"high {float(X[m, 1])!r} < low {float(X[m, 2])!r}"
                elif rule.endswith("outside [low, high]"):
                    detail = f"low {float(X[m, 2])!r}, high {float(X[m, 1])!r}"
                raise DataValidationError(
                    rule, source=source, value=X[m, k], detail=detail, **locate(m, k)
                )


def _col(M: int, k: int, col: np.ndarray) -> np.ndarray:
    out = np.zeros((M, 5), dtype=bool)
    out[:, k] = col
    return out


def validate_panel(
    index: pd.DatetimeIndex,
    symbols: Sequence[str],
    data: dict[str, np.ndarray],
    source: str = "<arrays>",
) -> None:
    """Check the missing-bar convention and OHLC consistency of a (T, N) panel.

    Parameters
    ----------
    index : pandas.DatetimeIndex
        (T,) UTC timestamps.
    symbols : sequence of str
        (N,) symbols.
    data : dict of str to ndarray
        Field name -> (T, N) float64 array, for every name in ``FIELDS``.
    source : str
        Used in error messages.

    Raises
    ------
    DataValidationError
        First violated rule (row-major order over (t, field), then symbol).
    """
    T, N = len(index), len(symbols)
    if T and N:
        X = np.stack([data[f] for f in FIELDS], axis=-1).reshape(T * N, 5)

        def locate(m: int, k: int) -> dict:
            t, j = divmod(m, N)
            return dict(column=FIELDS[k], symbol=symbols[j], timestamp=index[t])

        check_values(X, locate, source)
    check_index(index, source)


def check_index(index: pd.DatetimeIndex, source: str = "<arrays>") -> None:
    """Require a strictly increasing index.

    Raises
    ------
    DataValidationError
        Rule ``"duplicate timestamp"`` or ``"unsorted timestamps"``.
    """
    ts = index.asi8
    if len(ts) < 2:
        return
    d = np.diff(ts)
    if (d > 0).all():
        return
    dup = _dup_rows(ts)
    if dup is not None:
        raise DataValidationError(
            "duplicate timestamp", source=source, timestamp=index[dup], row=dup + 1
        )
    t = int(np.argmax(d <= 0)) + 1
    raise DataValidationError(
        "unsorted timestamps",
        source=source,
        timestamp=index[t],
        row=t + 1,
        detail=f"follows {index[t - 1]}",
    )


def _dup_rows(ts: np.ndarray, codes: np.ndarray | None = None) -> int | None:
    """Position of the first row (in input order) that repeats an earlier (code, timestamp)."""
    pos = np.arange(len(ts))
    keys = (pos, ts) if codes is None else (pos, ts, codes)
    order = np.lexsort(keys)
    same = ts[order][1:] == ts[order][:-1]
    if codes is not None:
        same &= codes[order][1:] == codes[order][:-1]
    if not same.any():
        return None
    return int(order[1:][same].min())


# --------------------------------------------------------------------------------------------
# timestamps and numbers
# --------------------------------------------------------------------------------------------

_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})\s*$")


def parse_timestamps(
    values: pd.Series, *, source: str, column: str, tz: str = "UTC"
) -> pd.DatetimeIndex:
    """Parse a column of timestamps to a UTC ``DatetimeIndex`` (ns).

    Naive values are localised to ``tz`` and converted to UTC; values with offsets are
    converted to UTC. Text is read as ISO 8601, else in one format for the whole column (see
    ``_parse_strings``: month-first unless only day-first reads every value).

    Raises
    ------
    DataValidationError
        ``"unparseable timestamp"`` (includes empty cells) or ``"mixed time zones"`` (naive
        mixed with aware values, or UTC offsets that no single IANA time zone has at those
        instants; one zone's daylight-saving changes, e.g. ``-05:00`` and ``-04:00`` in
        America/New_York, are accepted).
    """
    values = pd.Series(values).reset_index(drop=True)
    null = values.isna().to_numpy()
    if null.any():
        r = int(np.argmax(null))
        raise DataValidationError(
            "unparseable timestamp",
            source=source,
            column=column,
            row=r + 1,
            value=None,
            detail="empty timestamp",
        )
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        parsed = values
    else:
        if (
            pd.api.types.is_object_dtype(values)
            and len(values)
            and isinstance(values.iloc[0], pd.Timestamp | np.datetime64)
        ):
            s = values.astype(str)
        else:
            s = values.astype("str")
        parsed = _parse_strings(s, source=source, column=column)
    dti = pd.DatetimeIndex(parsed)
    try:
        if dti.tz is None:
            dti = dti.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        dti = dti.tz_convert("UTC").as_unit("ns")
    except Exception as exc:  # ambiguous / nonexistent local times, out of ns range
        raise DataValidationError(
            "unparseable timestamp", source=source, column=column, detail=str(exc)
        ) from exc
    return dti.rename("timestamp")


def _parse_strings(s: pd.Series, *, source: str, column: str) -> pd.Series:
    """Parse text timestamps: ISO 8601, else one format for the whole column.

    A non-ISO column is read with the format inferred from its first value, month-first
    (``01/02/2020`` is 2 January), else day-first when that is the only one format that reads
    every value (``13/02/2020`` in the column makes it day-first). Formats are never mixed
    within a column: parsing value by value would read ``01/02/2020`` month-first and
    ``13/02/2020`` day-first, silently shuffling the dates.
    """
    mixed_error = False
    for kwargs in ({"format": "ISO8601"}, {}, {"dayfirst": True}):
        try:
            with warnings.catch_warnings():  # "could not infer format": handled below
                warnings.simplefilter("ignore", UserWarning)
                return pd.to_datetime(s, **kwargs)
        except (ValueError, TypeError) as exc:
            if "Mixed timezones" in str(exc):
                mixed_error = True
                break
    if not mixed_error:
        coerced = pd.to_datetime(s, format="mixed", utc=True, errors="coerce")
        bad = coerced.isna().to_numpy()
        if bad.any():
            r = int(np.argmax(bad))
            epoch = re.fullmatch(r"\s*-?\d+(\.\d*)?\s*", str(s.iloc[r])) is not None
            raise _unparseable(
                s, r, source, column,
                "a plain number, e.g. a Unix epoch, whose unit cannot be told: convert the "
                "column first, e.g. pd.to_datetime(df['timestamp'], unit='s' or 'ms')"
                if epoch
                else None,
            )
        try:  # every value parses on its own: formats differ (or time zones do)
            pd.to_datetime(s, format="mixed")
        except (ValueError, TypeError) as exc:
            if "Mixed timezones" not in str(exc):
                raise DataValidationError(
                    "unparseable timestamp", source=source, column=column, detail=str(exc)
                ) from exc
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                first_fmt = pd.to_datetime(s, errors="coerce").isna().to_numpy()
            r = int(np.argmax(first_fmt)) if first_fmt.any() else 0
            raise _unparseable(
                s, r, source, column,
                f"not in the format of row 1 ({s.iloc[0]!r}); timestamps must share one "
                "format (ISO 8601 recommended), as mixing them can mix day-first and "
                "month-first dates",
            )
    off = s.str.extract(_OFFSET, expand=False)
    off = off.str.replace("Z", "+00:00").str.replace(r"^([+-]\d{2})(\d{2})$", r"\1:\2", regex=True)
    if off.notna().all():  # every value carries an offset: one zone's DST changes are fine
        one_zone = _one_zone_utc(s, off)
        if one_zone is not None:
            return one_zone
    # mixed time zones: locate the first value whose offset differs from the first row's
    off = off.fillna("naive").to_numpy(dtype=object)
    diff = off != off[0]
    row = int(np.argmax(diff)) + 1 if diff.any() else None
    value = s.iloc[row - 1] if row is not None else None
    raise DataValidationError(
        "mixed time zones",
        source=source,
        column=column,
        row=row,
        value=value,
        detail=f"first row has offset {off[0]}" if row is not None else None,
    )


def _unparseable(
    s: pd.Series, r: int, source: str, column: str, detail: str | None
) -> DataValidationError:
    """The ``"unparseable timestamp"`` error of 0-based row ``r`` of ``s``."""
    return DataValidationError(
        "unparseable timestamp", source=source, column=column, row=r + 1, value=s.iloc[r],
        detail=detail,
    )


def _one_zone_utc(s: pd.Series, off: pd.Series) -> pd.Series | None:
    """UTC times of ISO 8601 text whose UTC offsets are those of one IANA time zone, or None.

    Local exchange times written by pandas from a tz-aware column (``-05:00`` in winter,
    ``-04:00`` in summer for America/New_York) carry different offsets but one zone: each
    value still converts to UTC exactly. The offsets are accepted when some zone of the
    system's tz database has exactly that offset at every value's instant; offsets no single
    zone explains (a ``+02:00`` among ``+01:00`` values in January) stay ``"mixed time
    zones"``.
    """
    import zoneinfo

    try:
        utc = pd.DatetimeIndex(pd.to_datetime(s, format="ISO8601", utc=True))
    except (ValueError, TypeError):
        return None
    sign = np.where(off.str[0] == "-", -1, 1)
    given = sign * (off.str[1:3].astype(int) * 3600 + off.str[-2:].astype(int) * 60)
    given = given.to_numpy(dtype=np.int64)
    naive_utc = utc.tz_localize(None)

    def offsets(zone: str, rows: np.ndarray) -> np.ndarray:
        local = naive_utc[rows].tz_localize("UTC").tz_convert(zone).tz_localize(None)
        return np.asarray((local - naive_utc[rows]).total_seconds(), dtype=np.int64)

    # screen the zones on the rows around each change of offset, then check every row
    change = np.flatnonzero(np.diff(given) != 0)
    probe = np.unique(np.concatenate([[0, len(given) - 1], change, change + 1]))[:256]
    for zone in sorted(zoneinfo.available_timezones()):
        try:
            if not np.array_equal(offsets(zone, probe), given[probe]):
                continue
        except Exception:  # a zone pandas cannot use
            continue
        if np.array_equal(offsets(zone, np.arange(len(given))), given):
            return pd.Series(utc)
    return None


def to_float(values: Any, *, source: str, column: str) -> np.ndarray:
    """Convert one column to float64, raising ``"non-numeric"`` at its first bad cell.

    Empty cells become NaN (whether NaN is allowed there is checked later).
    """
    s = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    num = pd.to_numeric(s, errors="coerce")
    bad = (num.isna() & s.notna()).to_numpy()
    if bad.any() or pd.api.types.is_bool_dtype(s):
        r = int(np.argmax(bad)) if bad.any() else 0
        raise DataValidationError(
            "non-numeric", source=source, column=column, row=r + 1, value=s.iloc[r]
        )
    return num.to_numpy(dtype=np.float64, na_value=np.nan)


def _empty(df: pd.DataFrame, source: str) -> None:
    if len(df) == 0 or df.shape[1] == 0:
        raise DataValidationError("empty input", source=source, detail="no data rows")


# --------------------------------------------------------------------------------------------
# long layout
# --------------------------------------------------------------------------------------------


def parse_long(
    df: pd.DataFrame, *, source: str = "<dataframe>", tz: str = "UTC"
) -> tuple[pd.DatetimeIndex, tuple[str, ...], dict[str, np.ndarray]]:
    """Validate a long table and pivot it to a panel.

    Parameters
    ----------
    df : pandas.DataFrame
        Columns ``timestamp symbol open high low close [volume]`` (case-insensitive; other
        columns are ignored), one row per (timestamp, symbol) bar, any row order. A row whose
        prices and volume are all empty is an absent bar.
    source : str
        Used in error messages.
    tz : str
        Time zone of naive timestamps.

    Returns
    -------
    index : pandas.DatetimeIndex
        (T,) sorted unique UTC timestamps that have at least one bar.
    symbols : tuple of str
        (N,) symbols, sorted.
    data : dict of str to ndarray
        Field -> (T, N) float64, NaN where a symbol has no bar.

    Raises
    ------
    DataValidationError
        First violated rule (see :data:`RULES`); duplicate and unsorted timestamps are judged per
        symbol in row order.
    """
    _empty(df, source)
    cols = _lower_map(df.columns, source)
    for req in ("timestamp", "symbol", *PRICE_FIELDS):
        if req not in cols:
            raise DataValidationError(
                "missing column",
                source=source,
                column=req,
                detail=f"found columns {[str(c) for c in df.columns]}",
            )
    ts_col = cols["timestamp"]
    index = parse_timestamps(df[ts_col], source=source, column=str(ts_col), tz=tz)
    ts = index.asi8
    M = len(df)
    X = np.full((M, 5), np.nan)
    names = []
    for k, f in enumerate(FIELDS):
        if f in cols:
            X[:, k] = to_float(df[cols[f]], source=source, column=str(cols[f]))
            names.append(str(cols[f]))
        else:
            names.append(f)
    sym_raw = df[cols["symbol"]].reset_index(drop=True)
    sym_null = _blank(sym_raw)
    if sym_null.any():
        r = int(np.argmax(sym_null))
        raise DataValidationError(
            "non-finite value",
            source=source,
            column=str(cols["symbol"]),
            row=r + 1,
            timestamp=index[r],
            value=None,
            detail="empty symbol",
        )
    codes, uniques = pd.factorize(sym_raw.astype("str"), sort=True)
    symbols = tuple(str(u) for u in uniques)

    def locate(m: int, k: int) -> dict:
        return dict(column=names[k], symbol=symbols[codes[m]], timestamp=index[m], row=m + 1)

    check_values(X, locate, source)

    dup = _dup_rows(ts, codes)
    if dup is not None:
        raise DataValidationError(
            "duplicate timestamp",
            source=source,
            column=str(ts_col),
            symbol=symbols[codes[dup]],
            timestamp=index[dup],
            row=dup + 1,
        )
    order = np.argsort(codes, kind="stable")
    back = (ts[order][1:] < ts[order][:-1]) & (codes[order][1:] == codes[order][:-1])
    if back.any():
        r = int(order[1:][back].min())
        raise DataValidationError(
            "unsorted timestamps",
            source=source,
            column=str(ts_col),
            symbol=symbols[codes[r]],
            timestamp=index[r],
            row=r + 1,
        )

    present = ~np.isnan(X[:, 3])
    ts_p, codes_p, X_p = ts[present], codes[present], X[present]
    uniq, tpos = np.unique(ts_p, return_inverse=True)
    T, N = len(uniq), len(symbols)
    data = {}
    for k, f in enumerate(FIELDS):
        a = np.full((T, N), np.nan)
        a[tpos, codes_p] = X_p[:, k]
        data[f] = a
    out_index = pd.DatetimeIndex(uniq.astype("datetime64[ns]"), name="timestamp").tz_localize("UTC")
    return out_index, symbols, data


def _lower_map(columns: pd.Index, source: str,
               error: type[DataValidationError] = DataValidationError) -> dict[str, Any]:
    """Column names read case- and space-insensitively -> the column as given.

    Raises ``error("duplicate column")`` when two columns read the same (e.g. ``Close``
    and ``close``): which one holds the data cannot be guessed.
    """
    out: dict[str, Any] = {}
    for c in columns:
        key = str(c).strip().lower()
        if key in out:
            raise error("duplicate column", source=source, column=str(c),
                        detail=f"{str(out[key])!r} and {str(c)!r} name the same column "
                               "(names are read case-insensitively); keep one")
        out[key] = c
    return out


def _blank(symbols: pd.Series) -> np.ndarray:
    """(n,) bool: a missing symbol or one that is empty or only spaces."""
    text = symbols.astype("str").str.strip()
    return (symbols.isna() | (text == "")).to_numpy()


# --------------------------------------------------------------------------------------------
# wide layout
# --------------------------------------------------------------------------------------------


def parse_wide(
    df: pd.DataFrame, *, source: str = "<dataframe>", tz: str = "UTC"
) -> tuple[pd.DatetimeIndex, tuple[str, ...], dict[str, np.ndarray]]:
    """Validate a wide table and turn it into a panel.

    Parameters
    ----------
    df : pandas.DataFrame
        A ``timestamp`` column (case-insensitive) and columns named ``"<field>/<symbol>"``
        (field case-insensitive, e.g. ``close/AAPL``); each symbol needs open, high, low and
        close, volume is optional. Other columns are ignored. One row per timestamp; a symbol
        whose cells in a row are all empty has no bar there.
    source : str
        Used in error messages.
    tz : str
        Time zone of naive timestamps.

    Returns
    -------
    index : pandas.DatetimeIndex
        (T,) UTC timestamps (one per row).
    symbols : tuple of str
        (N,) symbols in order of first appearance among the columns.
    data : dict of str to ndarray
        Field -> (T, N) float64.

    Raises
    ------
    DataValidationError
        First violated rule; duplicate / unsorted timestamps are judged on the timestamp column.
    """
    _empty(df, source)
    # '<field>/<symbol>' columns are matched below (their symbol part keeps its case)
    cols = _lower_map(pd.Index([c for c in df.columns if "/" not in str(c)]), source)
    if "timestamp" not in cols:
        raise DataValidationError(
            "missing column",
            source=source,
            column="timestamp",
            detail=f"found columns {[str(c) for c in df.columns]}",
        )
    table: dict[tuple[str, str], Any] = {}
    symbols: list[str] = []
    for c in df.columns:
        name = str(c)
        if "/" not in name:
            continue
        field, sym = name.split("/", 1)
        field = field.strip().lower()
        if field not in FIELDS or not sym:
            continue
        if (field, sym) in table:
            raise DataValidationError(
                "duplicate column", source=source, column=name, symbol=sym,
                detail=f"{str(table[(field, sym)])!r} and {name!r} name the same column "
                       "(fields are read case-insensitively); keep one")
        table[(field, sym)] = c
        if sym not in symbols:
            symbols.append(sym)
    if not symbols:
        raise DataValidationError(
            "missing column",
            source=source,
            column="close/<symbol>",
            detail="a wide table needs columns named '<field>/<symbol>', e.g. 'close/AAPL'",
        )
    for sym in symbols:
        for f in PRICE_FIELDS:
            if (f, sym) not in table:
                raise DataValidationError(
                    "missing column", source=source, column=f"{f}/{sym}", symbol=sym
                )
    ts_col = cols["timestamp"]
    index = parse_timestamps(df[ts_col], source=source, column=str(ts_col), tz=tz)
    T, N = len(df), len(symbols)
    X = np.full((T, N, 5), np.nan)
    for j, sym in enumerate(symbols):
        for k, f in enumerate(FIELDS):
            if (f, sym) in table:
                c = table[(f, sym)]
                X[:, j, k] = to_float(df[c], source=source, column=str(c))

    def locate(m: int, k: int) -> dict:
        t, j = divmod(m, N)
        c = table.get((FIELDS[k], symbols[j]), f"{FIELDS[k]}/{symbols[j]}")
        return dict(column=str(c), symbol=symbols[j], timestamp=index[t], row=t + 1)

    check_values(X.reshape(T * N, 5), locate, source)
    ts = index.asi8
    dup = _dup_rows(ts)
    if dup is not None:
        raise DataValidationError(
            "duplicate timestamp",
            source=source,
            column=str(ts_col),
            timestamp=index[dup],
            row=dup + 1,
        )
    back = ts[1:] < ts[:-1]
    if back.any():
        r = int(np.argmax(back)) + 1
        raise DataValidationError(
            "unsorted timestamps",
            source=source,
            column=str(ts_col),
            timestamp=index[r],
            row=r + 1,
            detail=f"follows {index[r - 1]}",
        )
    data = {f: np.ascontiguousarray(X[:, :, k]) for k, f in enumerate(FIELDS)}
    return index, tuple(symbols), data
