import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench.data as wd
from workbench.data import Bars

UTC = "UTC"


def _check_valid(b: Bars):
    # re-run full validation on a fresh copy
    Bars(b.index, b.symbols, *(b[f] for f in b.FIELDS), validate=True)
    assert str(b.index.tz) == UTC
    assert b.index.is_monotonic_increasing and b.index.is_unique


def _day(x):
    return pd.Timestamp(x, tz=UTC)


def test_import_is_light():
    code = (
        "import sys, workbench.data; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('panel', 'bokeh', 'torch', 'vectorbt', 'arch', 'backtesting', 'bokeh_sampledata')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    ("loader", "symbol"), [(wd.load_sp500, "SP500"), (wd.load_nasdaq, "NASDAQ")]
)
def test_arch_indices(loader, symbol):
    b = loader()
    _check_valid(b)
    assert b.symbols == (symbol,)
    assert b.index[0] == _day("1999-01-04")
    assert b.index[-1].year == 2018
    assert b.mask.all()
    assert b.T > 5000
    assert (b.index == b.index.normalize()).all()  # midnight UTC


def test_bokeh_stocks():
    b = wd.load_bokeh_stocks()
    _check_valid(b)
    assert b.symbols == ("AAPL", "GOOG", "IBM", "MSFT")
    assert b.index[0] == _day("2000-03-01")
    assert b.index[-1] == _day("2013-03-01")
    goog = b.select("GOOG")
    assert not goog.mask[goog.index < _day("2004-08-19")].any()
    assert goog.mask[goog.index == _day("2004-08-19")].all()
    assert wd.load_bokeh_stocks(("IBM",)).symbols == ("IBM",)
    with pytest.raises(ValueError):
        wd.load_bokeh_stocks(("XYZ",))


def test_bokeh_split_adjustment():
    from bokeh_sampledata import stocks

    b = wd.load_bokeh_stocks()
    c = b["close"]
    with np.errstate(invalid="ignore"):
        r = c[1:] / c[:-1] - 1
    big = {
        (b.symbols[j], str(b.index[t + 1].date()))
        for t, j in zip(*np.nonzero(np.abs(np.nan_to_num(r)) > 0.40))
    }
    # the only > 40% daily move left is real: AAPL's profit-warning crash (-52%, 2000-09-29)
    assert big == {("AAPL", "2000-09-29")}
    # AAPL 2:1 splits on 2000-06-21 and 2005-02-28: raw prices halve, adjusted ones do not
    raw = pd.Series(stocks.AAPL["close"], index=pd.to_datetime(stocks.AAPL["date"]))
    aapl = b.to_wide("close")["AAPL"]
    for day in ("2000-06-21", "2005-02-28"):
        i = raw.index.get_loc(pd.Timestamp(day))
        assert raw.iloc[i] / raw.iloc[i - 1] < 0.55
        j = aapl.index.get_loc(_day(day))
        assert abs(aapl.iloc[j] / aapl.iloc[j - 1] - 1) < 0.1
    # adjusted close equals the package's adj_close; volume scaled by the inverse factor
    np.testing.assert_allclose(aapl.dropna().to_numpy(), stocks.AAPL["adj_close"], rtol=1e-12)
    vol = b.to_wide("volume")["AAPL"].dropna().to_numpy()
    factor = np.asarray(stocks.AAPL["adj_close"]) / np.asarray(stocks.AAPL["close"])
    np.testing.assert_allclose(vol, np.asarray(stocks.AAPL["volume"]) / factor, rtol=1e-12)


def test_eurusd_hourly():
    b = wd.load_eurusd_hourly()
    _check_valid(b)
    assert b.symbols == ("EURUSD",)
    assert b.index[0] == _day("2017-04-19 09:00")
    assert b.index[-1].year == 2018
    assert (b.index.minute == 0).all()
    assert (b.index != b.index.normalize()).any()  # intraday
    assert 0.9 < np.nanmedian(b["close"]) < 1.5
    # the docstring's reading of the naive stamps as UTC bar starts: each trading week opens
    # at 5 pm New York (Sunday 21:00 UTC in summer, 22:00 in winter) and its last bar starts
    # one hour before the next 5 pm close (Friday 20:00 / 21:00 UTC)
    gap = np.flatnonzero(np.diff(b.index.asi8) > 3 * 3_600 * 10**9)
    opens, lasts = b.index[gap + 1], b.index[gap]
    assert set(opens.day_name()) <= {"Sunday", "Monday"} and set(opens.hour) == {21, 22}
    assert set(lasts.day_name()) == {"Friday"} and set(lasts.hour) == {20, 21}
    ny_open = opens.tz_convert("America/New_York")
    assert (ny_open.hour == 17).all()


def test_goog_backtesting():
    b = wd.load_goog_backtesting()
    _check_valid(b)
    assert b.symbols == ("GOOG",)
    assert b.index[0] == _day("2004-08-19")
    assert b.index[-1].year == 2013


def test_btcusd_monthly_matches_the_shipped_file():
    b = wd.load_btcusd_monthly()
    _check_valid(b)
    assert b.symbols == ("BTCUSD",) and b.T == 156
    assert b.index[0] == _day("2012-01-31") and b.index[-1] == _day("2024-12-31")
    assert (b.index == b.index + pd.offsets.MonthEnd(0)).all()  # one bar per month end
    # against the raw CSV read independently of the loader
    import backtesting

    raw = pd.read_csv(Path(backtesting.__file__).parent / "test" / "BTCUSD.csv", index_col=0)
    np.testing.assert_array_equal(b["close"][:, 0], raw["Close"].to_numpy())
    np.testing.assert_array_equal(b["volume"][:, 0], raw["Volume"].to_numpy())
    assert wd.load_universe("btcusd_monthly").symbols == ("BTCUSD",)


@pytest.mark.parametrize("loader, module, column, symbol, first", [
    (wd.load_vix, "vix", "vix", "VIX", "2014-01-03"),
    (wd.load_wti, "wti", "DCOILWTICO", "WTI", "1986-01-02"),
])
def test_close_only_arch_series(loader, module, column, symbol, first):
    import importlib

    raw = importlib.import_module(f"arch.data.{module}").load()[column]
    b = loader()
    _check_valid(b)
    assert b.symbols == (symbol,) and b.index[0] == _day(first)
    present = raw.dropna()
    assert b.T == len(present) < len(raw)  # the source's empty dates have no bar
    np.testing.assert_array_equal(b["close"][:, 0], present.to_numpy())
    for f in ("open", "high", "low"):  # close only: a flat bar at the close
        np.testing.assert_array_equal(b[f][:, 0], b["close"][:, 0])
    assert np.isnan(b["volume"]).all() and b.mask.all()
    assert symbol in wd.load_universe("vix_wti").symbols


def test_universes_listed():
    assert wd.list_universes() == sorted(
        ["btcusd_monthly", "daily", "daily_indices", "daily_stocks", "eurusd_hourly", "vix_wti"]
    )
    assert set(wd.UNIVERSES) == set(wd.list_universes())
    with pytest.raises(ValueError, match="daily_indices"):
        wd.load_universe("nope")


def test_daily_universe_union_calendar():
    u = wd.load_universe("daily")
    _check_valid(u)
    assert u.name == "daily"
    assert u.symbols == ("SP500", "NASDAQ", "AAPL", "GOOG", "IBM", "MSFT")
    expected = wd.load_sp500().index
    for b in (wd.load_nasdaq(), wd.load_bokeh_stocks()):
        expected = expected.union(b.index)
    assert u.index.equals(expected)
    goog = u.select("GOOG")
    assert not goog.mask[u.index < _day("2004-08-19")].any()
    assert goog.mask[u.index == _day("2004-08-19")].all()
    # each asset keeps its own bars exactly; no forward fill
    sp = u.select("SP500").loc()
    np.testing.assert_array_equal(sp["close"][:, 0], wd.load_sp500()["close"][:, 0])
    assert int(u.mask[:, 2].sum()) == wd.load_bokeh_stocks(("AAPL",)).T


def test_universe_slicing_and_other_universes():
    u = wd.load_universe("daily", start="2005-01-01", end="2005-12-31")
    assert u.index[0] >= _day("2005-01-01") and u.index[-1] <= _day("2005-12-31")
    assert u.mask.all()
    assert wd.load_universe("daily_indices").symbols == ("SP500", "NASDAQ")
    assert wd.load_universe("daily_stocks").symbols == ("AAPL", "GOOG", "IBM", "MSFT")
    assert wd.load_universe("eurusd_hourly").symbols == ("EURUSD",)


def test_cached_universe_cannot_be_mutated():
    u = wd.load_universe("daily_indices")
    before = u.data_hash()
    with pytest.raises(ValueError):
        u["close"][0, 0] = -1.0
    with pytest.raises(ValueError):
        u.mask[0, 0] = False
    again = wd.load_universe("daily_indices")
    assert again.data_hash() == before
