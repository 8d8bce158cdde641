"""CSV / Parquet readers and writers for :class:`~workbench.data.Bars` (long or wide layout)."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from ._bars import Bars
from ._validation import FIELDS, DataValidationError, parse_long, parse_wide

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
        carrying an offset are converted to UTC.
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
    try:
        header = pd.read_csv(path, nrows=0)
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError("empty input", source=source, detail="file is empty") from exc
    text_cols = {
        c: "str" for c in header.columns if str(c).strip().lower() in ("timestamp", "symbol")
    }
    df = pd.read_csv(path, dtype=text_cols)
    return _build(df, layout, source, tz, name)


def read_parquet(
    path: PathLike, *, layout: str = "auto", tz: str = "UTC", name: str | None = None
) -> Bars:
    """Read and validate a Parquet file of bars.

    Parameters
    ----------
    path : str or os.PathLike
        Parquet file (read with pyarrow). The timestamp column may be a timestamp type (naive or
        tz-aware) or text.
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
    df = pd.read_parquet(path)
    if "timestamp" not in {str(c).lower() for c in df.columns} and df.index.name == "timestamp":
        df = df.reset_index()
    return _build(df, layout, str(path), tz, name)


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


def write_csv(bars: Bars, path: PathLike, *, layout: str = "long") -> None:
    """Write a panel to CSV so that :func:`read_csv` reads it back unchanged.

    Parameters
    ----------
    bars : Bars
        Panel to write.
    path : str or os.PathLike
        Destination file (overwritten).
    layout : {"long", "wide"}, default "long"
        Long: present bars only, columns ``timestamp symbol open high low close volume``.
        Wide: one row per timestamp, columns ``timestamp`` and ``"<field>/<symbol>"``; absent
        bars are empty cells.

    Raises
    ------
    ValueError
        Unknown ``layout``.

    Notes
    -----
    Timestamps are written in ISO format with a ``+00:00`` offset; floats with round-trip
    precision. A long file cannot carry timestamps at which no symbol has a bar.
    """
    _table(bars, layout).to_csv(path, index=False)


def write_parquet(bars: Bars, path: PathLike, *, layout: str = "long") -> None:
    """Write a panel to Parquet (pyarrow) so that :func:`read_parquet` reads it back unchanged.

    Parameters
    ----------
    bars : Bars
        Panel to write.
    path : str or os.PathLike
        Destination file (overwritten).
    layout : {"long", "wide"}, default "long"
        As in :func:`write_csv`; the timestamp column is a UTC timestamp type.

    Raises
    ------
    ValueError
        Unknown ``layout``.
    """
    _table(bars, layout).to_parquet(path, index=False)
