"""Shared data and reference helpers for tests/features (not a test module)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def sp500_close() -> pd.Series:
    from arch.data import sp500

    s = sp500.load()["Close"].astype(float)
    s.index = pd.DatetimeIndex(s.index)
    return s


def bokeh_close(symbol: str) -> pd.Series:
    from bokeh_sampledata import stocks

    d = getattr(stocks, symbol)
    return pd.Series(np.asarray(d["close"], float), index=pd.DatetimeIndex(d["date"]), name=symbol)


def real_panel() -> np.ndarray:
    """Union-calendar (T, N) panel: S&P 500, AAPL, GOOG (listed 2004), MSFT.

    AAPL/GOOG/MSFT end in 2013 and start in 2000/2004, so the panel has leading
    and trailing NaNs (and any calendar differences become inner holes).
    """
    cols = [sp500_close().rename("SPX")] + [bokeh_close(s) for s in ("AAPL", "GOOG", "MSFT")]
    df = pd.concat(cols, axis=1, join="outer").sort_index()
    return df.to_numpy(dtype=float)


def random_walk(T: int, N: int, seed: int = 0, p0: float = 100.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return p0 * np.exp(np.cumsum(rng.normal(0.0, 0.015, size=(T, N)), axis=0))


def per_valid(func, col: np.ndarray):
    """Apply ``func`` (1-D -> array(s)) to the valid part of ``col``, scatter back."""
    col = np.asarray(col, float)
    m = ~np.isnan(col)
    res = func(col[m])
    single = not isinstance(res, tuple)
    res = (res,) if single else res
    outs = []
    for r in res:
        r = np.asarray(r, float)
        o = np.full(col.shape + r.shape[1:], np.nan)
        o[m] = r
        outs.append(o)
    return outs[0] if single else tuple(outs)


def per_column(func, x: np.ndarray):
    """``per_valid`` over every column of a (T, N) array, stacked on axis 1."""
    cols = [per_valid(func, x[:, j]) for j in range(x.shape[1])]
    if isinstance(cols[0], tuple):
        return tuple(np.stack([c[i] for c in cols], axis=1) for i in range(len(cols[0])))
    return np.stack(cols, axis=1)


def assert_close(actual, desired, rtol=1e-9, atol=1e-12):
    """assert_allclose with identical NaN positions (equal_nan requires it)."""
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    assert actual.shape == desired.shape, (actual.shape, desired.shape)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(desired))
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol, equal_nan=True)


def public_features(**kw):
    """name -> callable(close) for every public feature; ``kw`` (dtype, backend) passed to all."""
    import workbench.features as F

    return {
        "simple_returns": lambda x: F.simple_returns(x, **kw),
        "log_returns": lambda x: F.log_returns(x, **kw),
        "sma": lambda x: F.sma(x, 10, **kw),
        "ema": lambda x: F.ema(x, 10, **kw),
        "rolling_std_0": lambda x: F.rolling_std(x, 20, **kw),
        "rolling_std_1": lambda x: F.rolling_std(x, 7, ddof=1, **kw),
        "rsi": lambda x: F.rsi(x, **kw),
        "macd": lambda x: F.macd(x, **kw),
        "bollinger": lambda x: F.bollinger(x, **kw),
        "rolling_volatility": lambda x: F.rolling_volatility(x, **kw),
        "ewm_volatility": lambda x: F.ewm_volatility(F.simple_returns(x), span=20, **kw),
        "ex_ante_volatility": lambda x: F.ex_ante_volatility(x, **kw),
        "normalised_returns": lambda x: F.normalised_returns(x, (1, 5, 21), span=20, **kw),
        "macd_signal": lambda x: F.macd_signal(x, 8, 24, price_window=20, signal_window=40, **kw),
        "macd_signals": lambda x: F.macd_signals(x, ((2, 6), (8, 24)), 20, 40, **kw),
        "deep_momentum_features": lambda x: F.deep_momentum_features(x, **kw)[0],
    }


def as_tuple(res):
    return res if isinstance(res, tuple) else (res,)


def nan_panel(T: int = 700, N: int = 4, seed: int = 0) -> np.ndarray:
    """Random walks with a late listing, an early delisting and inner holes."""
    x = random_walk(T, N, seed=seed)
    x[:50, 1] = np.nan
    x[T - 80 :, 2] = np.nan
    rng = np.random.default_rng(seed + 1)
    holes = rng.choice(np.arange(60, T - 100), size=25, replace=False)
    x[holes, 3] = np.nan
    x[[100, 101, 102], 0] = np.nan
    return x
