"""Market data: the ``Bars`` panel, bundled real datasets, CSV/Parquet I/O and validation.

A :class:`Bars` holds OHLCV for N symbols over T UTC timestamps as (T, N) float64 arrays, NaN
where a symbol has no bar. Bundled loaders read real history shipped with installed packages
(``arch``, ``bokeh_sampledata``, ``backtesting``); nothing is downloaded. User files are
validated with one clear :class:`DataValidationError` per problem.
"""

from ._bars import Bars
from ._bundled import (
    UNIVERSES,
    list_universes,
    load_bokeh_stocks,
    load_btcusd_monthly,
    load_eurusd_hourly,
    load_goog_backtesting,
    load_nasdaq,
    load_sp500,
    load_universe,
    load_vix,
    load_wti,
)
from ._io import read_csv, read_parquet, write_csv, write_parquet
from ._orderbook import (
    BOOK_FIELDS,
    BOOK_RULES,
    OrderBook,
    OrderBookValidationError,
    read_orderbook_csv,
    read_orderbook_parquet,
)
from ._validation import RULES, DataValidationError

__all__ = [
    "BOOK_FIELDS",
    "BOOK_RULES",
    "Bars",
    "OrderBook",
    "OrderBookValidationError",
    "read_orderbook_csv",
    "read_orderbook_parquet",
    "DataValidationError",
    "RULES",
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
    "read_csv",
    "read_parquet",
    "write_csv",
    "write_parquet",
]
