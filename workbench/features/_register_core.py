"""Catalogue entries of the first feature set (the public functions of :mod:`._api`).

Importing this module registers one :class:`~workbench.features._catalogue.FeatureDef`
per feature; it imports neither numba nor the kernels (the streaming classes jit their
kernels when first built, the batch functions dispatch when first called).

Registry names: ``returns``, ``log_returns``, ``sma``, ``ema``, ``rolling_std``, ``rsi``,
``macd``, ``bollinger``, ``rolling_volatility``, ``ex_ante_volatility``,
``normalised_return``, ``macd_signal``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.features import _api as A
from workbench.features import _stream_core as S
from workbench.features._catalogue import FeatureDef, register

__all__ = ["CORE_FEATURES", "normalised_return"]


def normalised_return(
    close: Any,
    horizon: int = 1,
    span: int = 60,
    *,
    dtype: Any = np.float64,
    backend: str = "auto",
) -> np.ndarray:
    """Volatility-normalised return over one horizon.

    ``r_{t-k,t} / (sigma_t * sqrt(k))``: channel ``horizon`` of
    :func:`workbench.features.normalised_returns`.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices; NaN marks a missing bar.
    horizon : int, optional
        Return horizon ``k`` in valid bars, >= 1 (default 1).
    span : int, optional
        EWM span of the daily (not annualised) volatility, >= 2 (default 60).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Dimensionless.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array or ``horizon``/``span`` is not an
        int >= 1.
        Also if ``close`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Source: Lim, Zohren & Roberts (2019), sec. 3 inputs; DESIGN.md sec. 5.
    """
    horizon = A._int(horizon, "horizon", 1)
    return A.normalised_returns(close, (horizon,), span, dtype=dtype, backend=backend)[..., 0]


# batch wrappers whose defaults are the registry defaults (the public functions have no
# default for these parameters); ``**kw`` passes dtype / backend
def _sma(close: Any, window: int = 20, **kw: Any) -> np.ndarray:
    return A.sma(close, window, **kw)


def _ema(close: Any, span: int = 20, **kw: Any) -> np.ndarray:
    return A.ema(close, span, **kw)


def _rolling_std(close: Any, window: int = 20, ddof: int = 0, **kw: Any) -> np.ndarray:
    return A.rolling_std(close, window, ddof, **kw)


def _ex_ante(close: Any, span: int = 60, periods_per_year: float = 252, **kw: Any) -> np.ndarray:
    return A.ex_ante_volatility(close, span, periods_per_year, **kw)


def _macd_signal(close: Any, short: int = 8, long: int = 24, price_window: int = 63,
                 signal_window: int = 252, **kw: Any) -> np.ndarray:
    return A.macd_signal(close, short, long, price_window, signal_window, **kw)


_C = ("close",)

CORE_FEATURES: tuple[FeatureDef, ...] = (
    FeatureDef(
        "returns", "trend", _C, {}, ("",), A.simple_returns, S.ReturnsStream,
        "Simple return r_t = p_t / p_{t'} - 1 over the previous valid bar; "
        "Lim, Zohren & Roberts (2019).",
        positive=_C,
    ),
    FeatureDef(
        "log_returns", "trend", _C, {}, ("",), A.log_returns, S.LogReturnsStream,
        "Log return ln(p_t / p_{t'}) over the previous valid bar; standard definition "
        "(Campbell, Lo & MacKinlay 1997, ch. 1).",
        positive=_C,
    ),
    FeatureDef(
        "sma", "trend", _C, {"window": 20}, ("",), _sma, S.SMAStream,
        "Simple moving average mean(p_{t-w+1..t}) over w valid bars; talib.SMA.",
    ),
    FeatureDef(
        "ema", "trend", _C, {"span": 20}, ("",), _ema, S.EMAStream,
        "EMA e_t = e_{t-1} + 2/(span+1) (p_t - e_{t-1}), seeded with the SMA of the first "
        "span values; talib.EMA.",
    ),
    FeatureDef(
        "rolling_std", "volatility", _C, {"window": 20, "ddof": 0}, ("",), _rolling_std,
        S.RollingStdStream,
        "Rolling std sqrt(sum (p - mean)^2 / (w - ddof)) over w valid bars; talib.STDDEV "
        "(ddof=0), pandas rolling std (ddof=1).",
    ),
    FeatureDef(
        "rsi", "trend", _C, {"period": 14}, ("",), A.rsi, S.RSIStream,
        "RSI 100 * avg_gain / (avg_gain + avg_loss), Wilder smoothing seeded with the mean "
        "of the first period changes; Wilder (1978), talib.RSI.",
    ),
    FeatureDef(
        "macd", "trend", _C, {"fast": 12, "slow": 26, "signal": 9}, ("line", "signal", "hist"),
        A.macd, S.MACDStream,
        "MACD line EMA_fast - EMA_slow, signal EMA_signal(line), hist line - signal, "
        "TA-Lib alignment; Appel (1979), talib.MACD.",
    ),
    FeatureDef(
        "bollinger", "bands", _C, {"window": 20, "k": 2.0}, ("upper", "middle", "lower"),
        A.bollinger, S.BollingerStream,
        "Bollinger bands SMA_w +/- k * population std_w; Bollinger (2001), talib.BBANDS.",
    ),
    FeatureDef(
        "rolling_volatility", "volatility", _C, {"window": 20, "periods_per_year": 252}, ("",),
        A.rolling_volatility, S.RollingVolatilityStream,
        "Annualised rolling vol std(ln returns, w, ddof=1) * sqrt(periods_per_year); pandas "
        "log(p).diff().rolling(w).std() (close-to-close estimator).",
        positive=_C,
    ),
    FeatureDef(
        "ex_ante_volatility", "volatility", _C, {"span": 60, "periods_per_year": 252}, ("",),
        _ex_ante, S.ExAnteVolatilityStream,
        "Ex-ante vol sigma_t = EWM std (span, adjust=True, bias-corrected) of simple returns "
        "* sqrt(periods_per_year); Lim, Zohren & Roberts (2019).",
        positive=_C,
    ),
    FeatureDef(
        "normalised_return", "deep-momentum", _C, {"horizon": 1, "span": 60}, ("",),
        normalised_return, S.NormalisedReturnStream,
        "Normalised return (p_t / p_{t-k} - 1) / (sigma_daily_t * sqrt(k)), sigma = EWM std "
        "(span) of daily returns; Lim, Zohren & Roberts (2019).",
        positive=_C,
    ),
    FeatureDef(
        "macd_signal", "deep-momentum", _C,
        {"short": 8, "long": 24, "price_window": 63, "signal_window": 252}, ("",),
        _macd_signal, S.MACDSignalStream,
        "Baz MACD signal Y = q / std(q, 252), q = (m(S) - m(L)) / std(p, 63), m(S) = "
        "EWMA(p, alpha=1/S); Baz et al. (2015).",
    ),
)

for _defn in CORE_FEATURES:
    register(_defn)
