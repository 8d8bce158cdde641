"""CSV / Parquet readers and writers for :class:`~workbench.data.Bars` (long or wide layout)."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from ._bars import Bars, _timestamp_as_column
from ._validation import FIELDS, DataValidationError, parse_long, parse_wide, validate_panel

__all__ = ["read_csv", "read_parquet", "write_csv", "write_parquet"]

_LAYOUTS = ("auto", "long", "wide")
PathLike = str | os.PathLike


def _check_layout(layout: str, allowed: tuple[str, ...] = _LAYOUTS) -> None:
    if layout not in allowed:
        raise ValueError(f"layout must be one of {allowed}, got {layout!r}")


def _build(df: pd.DataFrame, layout: str, source: str, tz: str, name: str | None) -> Bars:
    if len(df.columns) == 0 or len(df) == 0:
        raise DataValidationError("empty input", source=source, detail="no data rows")
    if layout == "auto":
        has_symbol = any(str(c).strip().lower() == "symbol" for c in df.columns)
        layout = "long" if has_symbol else "wide"
    parse = parse_long if layout == "long" else parse_wide
    index, symbols, data = parse(df, source=source, tz=tz)
    return Bars._trusted(index, symbols, data, name=name, source=source)


def read_csv(
    path: PathLike, *, layout: str = "auto", tz: str = "UTC", name: str | None = None
) -> Bars:
    """Read and validate a CSV file of bars.

    Parameters
    ----------
    path : str or os.PathLike
        CSV file with a header row.
    layout : {"auto", "long", "wide"}, default "auto"
        ``"long"``: columns ``timestamp symbol open high low close [volume]`` (case-insensitive,
        one row per bar, a missing volume column gives NaN volume). ``"wide"``: a ``timestamp``
        column and columns ``"<field>/<symbol>"`` such as ``close/AAPL``. ``"auto"``: long if a
        ``symbol`` column exists, else wide.
    tz : str, default "UTC"
        Time zone of naive timestamps; they are localised to it, then converted to UTC. Values
        carrying an offset are converted to UTC; their offsets may differ only as one time
        zone's do (daylight saving, e.g. ``-05:00``/``-04:00`` in New York), else the file is
        rejected as ``"mixed time zones"``. Timestamps are ISO 8601 or share one other
        format, month-first (``01/02/2020`` is 2 January) unless only day-first reads them all
        (a ``13/02/2020`` makes the column day-first); two formats in one column are an error.
    name : str, optional
        Label of the returned panel.

    Returns
    -------
    Bars
        (T, N) panel with a UTC index; long files give symbols sorted alphabetically, wide files
        keep the column order.

    Raises
    ------
    DataValidationError
        The first violated rule, naming the file, column, symbol, timestamp and 1-based data row
        (rules in order: empty input, missing column, unparseable timestamp, mixed time zones,
        non-numeric, non-finite value, non-positive price, negative volume, high < low, close
        outside [low, high], open outside [low, high], duplicate timestamp, unsorted timestamps).
    ValueError
        Unknown ``layout``.
    FileNotFoundError
        No such file.
    """
    _check_layout(layout)
    source = str(path)
    df = read_csv_table(path, ("timestamp", "symbol"), error=DataValidationError)
    return _build(df, layout, source, tz, name)


def read_csv_table(
    path: PathLike, text_columns: tuple[str, ...], *, error: type[DataValidationError]
) -> pd.DataFrame:
    """Read a CSV with a header row, the named columns as text.

    Parameters
    ----------
    path : str or os.PathLike
        CSV file.
    text_columns : tuple of str
        Lower-case names of the columns read as ``str`` (matched case-insensitively);
        ``"symbol"`` among them keeps its cells literally: only an empty cell is missing, so
        tickers such as ``NA`` (National Bank of Canada) or ``NULL`` are not read as NaN.
    error : type
        :class:`DataValidationError` subclass raised for an empty file.

    Returns
    -------
    pandas.DataFrame
        The table; numeric columns get pandas' usual missing-value markers.

    Raises
    ------
    DataValidationError
        Rule ``"empty input"``: the file is empty.
    FileNotFoundError
        No such file.
    """
    try:
        header = pd.read_csv(path, nrows=0)
    except pd.errors.EmptyDataError as exc:
        raise error("empty input", source=str(path), detail="file is empty") from exc
    names = [str(c).strip().lower() for c in header.columns]
    text = {c: "str" for c, n in zip(header.columns, names) if n in text_columns}
    df = pd.read_csv(path, dtype=text)
    if "symbol" in text_columns and "symbol" in names:
        pos = names.index("symbol")
        sym = df.iloc[:, pos]
        if sym.isna().any():  # re-read literally: "NA", "null", "None"... are symbols
            literal = pd.read_csv(
                path, usecols=[pos], dtype="str", keep_default_na=False, na_values=[""]
            ).iloc[:, 0]
            df[df.columns[pos]] = literal.to_numpy()
    return df


def read_parquet(
    path: PathLike, *, layout: str = "auto", tz: str = "UTC", name: str | None = None
) -> Bars:
    """Read and validate a Parquet file of bars.

    Parameters
    ----------
    path : str or os.PathLike
        Parquet file (read with pyarrow). The timestamp column may be a timestamp type (naive or
        tz-aware) or text. Index columns stored by pandas (e.g. from
        ``df.set_index(["timestamp", "symbol"]).to_parquet(path)``) are read as columns.
    layout, tz, name
        As in :func:`read_csv`.

    Returns
    -------
    Bars
        (T, N) panel with a UTC index.

    Raises
    ------
    DataValidationError
        As in :func:`read_csv`.
    ValueError
        Unknown ``layout``.
    """
    _check_layout(layout)
    df = _timestamp_as_column(pd.read_parquet(path))
    return _build(df, layout, str(path), tz, name)


def _check_writable(bars: Bars, path: PathLike, layout: str) -> None:
    """Raise if the reader would reject the file, before the destination is touched.

    A ``Bars`` built with ``validate=False`` may break the bar rules; an empty table cannot be
    read back either. Overwriting a good file with one of those loses the good file.
    """
    if not isinstance(bars, Bars):
        raise TypeError(f"bars must be a workbench.data.Bars, got {type(bars).__name__}")
    _check_layout(layout, ("long", "wide"))
    rows = int(bars.mask.sum()) if layout == "long" else bars.T
    if rows == 0 or bars.N == 0:
        raise DataValidationError(
            "empty input",
            source=bars.source,
            detail=f"a {layout} table of this {bars.T} x {bars.N} panel has no bars; "
            f"{os.fspath(path)!s} was not written",
        )
    try:
        validate_panel(bars.index, bars.symbols, {f: bars[f] for f in FIELDS}, bars.source)
    except DataValidationError as exc:
        note = f"{os.fspath(path)!s} was not written (the reader would reject it)"
        raise DataValidationError(
            exc.rule,
            source=exc.source,
            column=exc.column,
            symbol=exc.symbol,
            timestamp=exc.timestamp,
            value=exc.value,
            detail=f"{exc.detail}; {note}" if exc.detail else note,
        ) from exc


def _table(bars: Bars, layout: str) -> pd.DataFrame:
    _check_layout(layout, ("long", "wide"))
    if layout == "long":
        return bars.to_long()
    cols: dict[str, Any] = {"timestamp": bars.index}
    for f in FIELDS:
        arr = bars[f]
        for j, s in enumerate(bars.symbols):
            cols[f"{f}/{s}"] = arr[:, j]
    return pd.DataFrame(cols)


def _write_atomic(path: PathLike, write: Any) -> None:
    """Call ``write(tmp)`` on a sibling temporary file, then rename it over ``path``.

    An interrupted or failed write leaves an existing ``path`` as it was (``os.replace`` is
    atomic within one file system) and removes the temporary file.
    """
    dest = os.fspath(path)
    head, tail = os.path.split(dest)
    tmp = os.path.join(head, f".{tail}.{os.getpid()}.partial")
    try:
        write(tmp)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_csv(bars: Bars, path: PathLike, *, layout: str = "long") -> None:
    """Write a panel to CSV so that :func:`read_csv` reads it back unchanged.

    Parameters
    ----------
    bars : Bars
        Panel to write.
    path : str or os.PathLike
        Destination file, replaced atomically: the table goes to a temporary file beside it
        that is then renamed over ``path``, so an interrupted write never leaves a truncated
        file or loses the one that was there.
    layout : {"long", "wide"}, default "long"
        Long: present bars only, columns ``timestamp symbol open high low close volume``.
        Wide: one row per timestamp, columns ``timestamp`` and ``"<field>/<symbol>"``; absent
        bars are empty cells.

    Raises
    ------
    DataValidationError
        Before ``path`` is opened (an existing file is left as it was): the panel breaks a bar
        rule (possible for ``Bars(..., validate=False)``), or it has no bar to write (rule
        ``"empty input"``); :func:`read_csv` would reject either file.
    ValueError
        Unknown ``layout``.

    Notes
    -----
    Timestamps are written in ISO format with a ``+00:00`` offset; floats with round-trip
    precision. A long file cannot carry timestamps at which no symbol has a bar, nor symbols
    without any bar.
    """
    _check_writable(bars, path, layout)
    table = _table(bars, layout)
    _write_atomic(path, lambda tmp: table.to_csv(tmp, index=False))


def write_parquet(bars: Bars, path: PathLike, *, layout: str = "long") -> None:
    """Write a panel to Parquet (pyarrow) so that :func:`read_parquet` reads it back unchanged.

    Parameters
    ----------
    bars : Bars
        Panel to write.
    path : str or os.PathLike
        Destination file, replaced atomically as in :func:`write_csv`.
    layout : {"long", "wide"}, default "long"
        As in :func:`write_csv`; the timestamp column is a UTC timestamp type.

    Raises
    ------
    DataValidationError
        As in :func:`write_csv`: nothing is written when :func:`read_parquet` would reject
        the file.
    ValueError
        Unknown ``layout``.
    """
    _check_writable(bars, path, layout)
    table = _table(bars, layout)
    _write_atomic(path, lambda tmp: table.to_parquet(tmp, index=False))
