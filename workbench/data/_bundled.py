"""Real market data bundled with installed packages (no network access).

Sources
-------
- ``arch`` (``arch.data.sp500``, ``arch.data.nasdaq``): S&P 500 and NASDAQ Composite index daily
  OHLCV, 1999-01-04 to 2018-12-31 (Yahoo Finance export shipped with arch); ``arch.data.vix``
  and ``arch.data.wti``: the CBOE VIX close 2014-01-03 to 2019-01-03 and the WTI crude oil spot
  price (FRED ``DCOILWTICO``) 1986-01-02 to 2019-01-03, daily closes only.
- ``bokeh_sampledata.stocks``: AAPL, GOOG, IBM, MSFT daily OHLCV, 2000-03-01 (GOOG 2004-08-19)
  to 2013-03-01, raw (split-unadjusted) prices plus an adjusted close.
- ``backtesting`` (files ``backtesting/test/EURUSD.csv``, ``GOOG.csv`` and ``BTCUSD.csv``):
  EUR/USD hourly 2017-04-19 to 2018-02-07, GOOG daily 2004-08-19 to 2013-03-01 and BTC/USD
  monthly 2012-01 to 2024-12.

Every loader is cached; the returned :class:`~workbench.data.Bars` are immutable (read-only
arrays), so sharing the cached object is safe.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._bars import Bars
from ._validation import FIELDS

__all__ = [
    "UNIVERSES",
    "list_universes",
    "load_bokeh_stocks",
    "load_btcusd_monthly",
    "load_eurusd_hourly",
    "load_goog_backtesting",
    "load_nasdaq",
    "load_sp500",
    "load_vix",
    "load_wti",
    "load_universe",
]

#: Universe name -> symbols it contains (see :func:`load_universe`).
UNIVERSES: dict[str, tuple[str, ...]] = {
    "daily": ("SP500", "NASDAQ", "AAPL", "GOOG", "IBM", "MSFT"),
    "daily_indices": ("SP500", "NASDAQ"),
    "daily_stocks": ("AAPL", "GOOG", "IBM", "MSFT"),
    "eurusd_hourly": ("EURUSD",),
    "btcusd_monthly": ("BTCUSD",),
    "vix_wti": ("VIX", "WTI"),
}

_BOKEH_SYMBOLS = ("AAPL", "GOOG", "IBM", "MSFT")
#: Relative size of an OHLC inconsistency that is treated as float rounding and clipped.
_ROUNDING_RTOL = 1e-9


def _from_ohlcv(df: pd.DataFrame, symbol: str, source: str, tz_naive_as: str = "UTC") -> Bars:
    """Build a one-symbol panel from a frame with Open/High/Low/Close/Volume columns."""
    idx = pd.DatetimeIndex(df.index)
    idx = idx.tz_localize(tz_naive_as) if idx.tz is None else idx
    cols = {c.lower(): c for c in df.columns}
    arrays = [df[cols[f]].to_numpy(dtype=np.float64).reshape(-1, 1) for f in FIELDS]
    return Bars(idx, (symbol,), *arrays, name=symbol, source=source)


@functools.cache
def _load_arch(module: str, symbol: str) -> Bars:
    import importlib

    df = importlib.import_module(f"arch.data.{module}").load()
    return _from_ohlcv(df, symbol, source=f"arch.data.{module}")


def load_sp500() -> Bars:
    """Load S&P 500 index daily bars from ``arch.data.sp500``.

    Returns
    -------
    Bars
        (T, 1) panel, symbol ``"SP500"``, 1999-01-04 to 2018-12-31, index points (raw close;
        "Adj Close" is not used), volume in shares. Dates are midnight UTC.

    Raises
    ------
    ImportError
        ``arch`` is not installed.
    """
    return _load_arch("sp500", "SP500")


def load_nasdaq() -> Bars:
    """Load NASDAQ Composite daily bars from ``arch.data.nasdaq``.

    Returns
    -------
    Bars
        (T, 1) panel, symbol ``"NASDAQ"``, 1999-01-04 to 2018-12-31, index points, volume in
        shares. Dates are midnight UTC.

    Raises
    ------
    ImportError
        ``arch`` is not installed.
    """
    return _load_arch("nasdaq", "NASDAQ")


@functools.cache
def _load_arch_close(module: str, column: str, symbol: str) -> Bars:
    """A close-only ``arch`` series as bars: open = high = low = close, volume NaN.

    Dates without a value (NaN in the source, e.g. holidays in FRED data) have no bar.
    """
    import importlib

    close = importlib.import_module(f"arch.data.{module}").load()[column].dropna()
    px = close.to_numpy(dtype=np.float64).reshape(-1, 1)
    idx = pd.DatetimeIndex(close.index).tz_localize("UTC")
    return Bars(idx, (symbol,), px, px, px, px, np.full_like(px, np.nan), name=symbol,
                source=f"arch.data.{module}")


def load_vix() -> Bars:
    """Load the CBOE Volatility Index (VIX) daily close from ``arch.data.vix``.

    Returns
    -------
    Bars
        (T, 1) panel, symbol ``"VIX"``, 2014-01-03 to 2019-01-03, index points (annualised
        implied volatility in percent). Close only: open, high and low equal the close and
        volume is NaN, so range-based features (ATR, Parkinson, Garman-Klass, Corwin-Schultz)
        are 0 or undefined on it. Dates are midnight UTC; dates without a value in the
        source have no bar.

    Raises
    ------
    ImportError
        ``arch`` is not installed.
    """
    return _load_arch_close("vix", "vix", "VIX")


def load_wti() -> Bars:
    """Load the West Texas Intermediate crude oil spot price from ``arch.data.wti``.

    Returns
    -------
    Bars
        (T, 1) panel, symbol ``"WTI"``, 1986-01-02 to 2019-01-03, USD per barrel (FRED series
        ``DCOILWTICO``, Cushing, Oklahoma). Close only, as in :func:`load_vix`. Dates are
        midnight UTC; the source's missing dates (exchange holidays) have no bar.

    Raises
    ------
    ImportError
        ``arch`` is not installed.
    """
    return _load_arch_close("wti", "DCOILWTICO", "WTI")


def _clip_rounding(o, h, lo, c):
    """Clip OHLC inconsistencies no larger than float rounding; leave real ones to validation."""
    hi_req = np.fmax(np.fmax(o, c), lo)
    lo_req = np.fmin(np.fmin(o, c), h)
    tol = _ROUNDING_RTOL * np.abs(hi_req)
    fix_h = (h < hi_req) & (hi_req - h <= tol)
    fix_l = (lo > lo_req) & (lo - lo_req <= tol)
    return np.where(fix_h, hi_req, h), np.where(fix_l, lo_req, lo)


@functools.cache
def _load_bokeh_one(symbol: str) -> Bars:
    from bokeh_sampledata import stocks

    if symbol not in _BOKEH_SYMBOLS:
        raise ValueError(f"unknown bokeh_sampledata stock {symbol!r}; have {_BOKEH_SYMBOLS}")
    d = getattr(stocks, symbol)
    idx = pd.DatetimeIndex(pd.to_datetime(pd.Series(d["date"]), format="%Y-%m-%d"))
    raw = {k: np.asarray(d[k], dtype=np.float64) for k in ("open", "high", "low", "close")}
    factor = np.asarray(d["adj_close"], dtype=np.float64) / raw["close"]
    o, h, lo, c = (raw[k] * factor for k in ("open", "high", "low", "close"))
    h, lo = _clip_rounding(o, h, lo, c)
    v = np.asarray(d["volume"], dtype=np.float64) / factor
    arrays = [a.reshape(-1, 1) for a in (o, h, lo, c, v)]
    return Bars(
        idx.tz_localize("UTC"),
        (symbol,),
        *arrays,
        name=symbol,
        source=f"bokeh_sampledata.stocks.{symbol}",
    )


def load_bokeh_stocks(symbols: Sequence[str] = _BOKEH_SYMBOLS) -> Bars:
    """Load split- and dividend-adjusted daily stock bars from ``bokeh_sampledata.stocks``.

    Parameters
    ----------
    symbols : sequence of str, default ("AAPL", "GOOG", "IBM", "MSFT")
        Any of those four.

    Returns
    -------
    Bars
        (T, N) panel on the union calendar 2000-03-01 .. 2013-03-01 (GOOG from 2004-08-19, NaN
        before), prices in USD, volume in adjusted shares, dates at midnight UTC.

    Raises
    ------
    ValueError
        Unknown symbol.
    DataValidationError
        The adjusted data break the OHLC rules by more than float rounding.

    Notes
    -----
    The package ships raw (split-unadjusted) open/high/low/close with an adjusted close. With
    ``f = adj_close / close`` the loader returns ``open*f, high*f, low*f, close*f`` (so the
    close equals ``adj_close``) and ``volume / f``, making the series continuous across splits
    and dividends. Where the product leaves high below max(open, close) (or low above their
    min) by at most 1e-9 relative -- float rounding -- high (low) is set to that bound; larger
    violations are not fixed and raise.

    The shipped adjusted close was computed after the data's end, so the levels are on a later
    share basis: AAPL's 7:1 split of 2014 and the dividends paid up to the download are in
    every factor (AAPL's last close is 56.14, the quoted close of 2013-03-01 was 430.47; GOOG's
    factor is 0.5015 throughout). Returns are right; price levels, and volume in shares, are
    not the ones quoted at the time.
    """
    if isinstance(symbols, str):
        symbols = (symbols,)
    parts = [_load_bokeh_one(s) for s in symbols]
    if len(parts) == 1:
        return parts[0]
    return Bars.union(parts, name="bokeh_stocks")


def _backtesting_csv(filename: str) -> pd.DataFrame:
    # Locate the package's data file without importing ``backtesting`` (which imports bokeh).
    spec = importlib.util.find_spec("backtesting")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the 'backtesting' package is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "test", filename)
    return pd.read_csv(path, index_col=0, parse_dates=True)


@functools.cache
def load_eurusd_hourly() -> Bars:
    """Load EUR/USD hourly bars shipped with ``backtesting`` (``backtesting.test.EURUSD``).

    Returns
    -------
    Bars
        (T, 1) panel, symbol ``"EURUSD"``, 2017-04-19 09:00 to 2018-02-07 15:00, price in USD per
        EUR, volume as given by the source (tick volume).

    Raises
    ------
    ImportError
        ``backtesting`` is not installed.

    Notes
    -----
    The source timestamps are naive; they are taken to be UTC, which the trading week bears
    out: its first bar is Sunday 21:00 (22:00 in winter) and its last Friday 20:00 (21:00),
    i.e. 5 pm New York. Each timestamp is the start of its hour: the bar stamped ``t`` holds
    the prices of ``[t, t + 1h)``, so its close is known only at ``t + 1h`` (daily bars here
    are stamped at midnight of their session date instead). The CSV file is read directly
    from the installed package so that ``backtesting`` (and with it bokeh) is not imported.
    """
    df = _backtesting_csv("EURUSD.csv")
    return _from_ohlcv(df, "EURUSD", source="backtesting.test.EURUSD")


@functools.cache
def load_goog_backtesting() -> Bars:
    """Load GOOG daily bars shipped with ``backtesting`` (``backtesting.test.GOOG``).

    Returns
    -------
    Bars
        (T, 1) panel, symbol ``"GOOG"``, 2004-08-19 to 2013-03-01, USD, volume in shares,
        dates at midnight UTC.

    Raises
    ------
    ImportError
        ``backtesting`` is not installed.
    """
    df = _backtesting_csv("GOOG.csv")
    return _from_ohlcv(df, "GOOG", source="backtesting.test.GOOG")


@functools.cache
def load_btcusd_monthly() -> Bars:
    """Load BTC/USD monthly bars shipped with ``backtesting`` (``backtesting.test.BTCUSD``).

    Returns
    -------
    Bars
        (T, 1) panel, symbol ``"BTCUSD"``, 156 monthly bars stamped at each month's last
        calendar day, 2012-01-31 to 2024-12-31 (midnight UTC): open, high, low and close of
        the month in USD per bitcoin, volume in bitcoin as given by the source.

    Raises
    ------
    ImportError
        ``backtesting`` is not installed.

    Notes
    -----
    Monthly bars: annualise with 12 periods per year (e.g.
    ``performance_metrics(r, periods_per_year=12)``), not the daily default of 252.
    """
    df = _backtesting_csv("BTCUSD.csv")
    return _from_ohlcv(df, "BTCUSD", source="backtesting.test.BTCUSD")


def list_universes() -> list[str]:
    """Return the names accepted by :func:`load_universe`, sorted."""
    return sorted(UNIVERSES)


@functools.cache
def _universe(name: str) -> Bars:
    if name == "daily":
        parts = [load_sp500(), load_nasdaq(), load_bokeh_stocks()]
    elif name == "daily_indices":
        parts = [load_sp500(), load_nasdaq()]
    elif name == "daily_stocks":
        parts = [load_bokeh_stocks()]
    elif name == "eurusd_hourly":
        parts = [load_eurusd_hourly()]
    elif name == "btcusd_monthly":
        parts = [load_btcusd_monthly()]
    elif name == "vix_wti":
        parts = [load_vix(), load_wti()]
    else:  # pragma: no cover - guarded by load_universe
        raise ValueError(name)
    return Bars.union(parts, name=name)


def load_universe(name: str = "daily", start=None, end=None) -> Bars:
    """Load a named universe of bundled data on one union calendar.

    Parameters
    ----------
    name : str, default "daily"
        ``"daily"`` (SP500, NASDAQ, AAPL, GOOG, IBM, MSFT: price indices, whose returns leave
        out dividends, beside stocks adjusted for them), ``"daily_indices"`` (SP500, NASDAQ),
        ``"daily_stocks"`` (adjusted AAPL, GOOG, IBM, MSFT), ``"eurusd_hourly"`` (EURUSD),
        ``"btcusd_monthly"`` (BTCUSD, monthly bars) or ``"vix_wti"`` (VIX and WTI daily
        closes, close-only bars).
    start, end : str, datetime-like or None
        Inclusive bounds passed to :meth:`Bars.loc`.

    Returns
    -------
    Bars
        (T, N) panel named ``name``; each symbol is NaN on union dates where it has no bar.

    Raises
    ------
    ValueError
        Unknown name (the message lists the valid ones).
    """
    if name not in UNIVERSES:
        raise ValueError(f"unknown universe {name!r}; valid names: {list_universes()}")
    bars = _universe(name)
    if start is not None or end is not None:
        bars = bars.loc(start, end)
    return bars
