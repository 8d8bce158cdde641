"""Public feature functions: validation, dtype handling and backend dispatch.

The kernels live in backend modules (:mod:`workbench.features._cpu` today; a
CuPy ``_gpu`` module with the same entry-point names can sit beside it). Each
public function validates its arguments here, resolves the backend with
:func:`_backend` and calls the backend's entry point of the same name with a
2-D float64 array.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import numbers
import os
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from workbench._checks import is_finite_real, is_real

__all__ = [
    "FEATURE_NAMES",
    "bollinger",
    "deep_momentum_features",
    "describe",
    "ema",
    "ewm_volatility",
    "ex_ante_volatility",
    "log_returns",
    "macd",
    "macd_signal",
    "macd_signals",
    "normalised_returns",
    "rolling_std",
    "rolling_volatility",
    "rsi",
    "simple_returns",
    "sma",
]

_BACKENDS = ("auto", "cpu", "cupy")

# --------------------------------------------------------------------------- #
# backend dispatch
# --------------------------------------------------------------------------- #


@functools.cache
def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device (checked once per process).

    ``backend="auto"`` then runs the CuPy kernels; set ``WORKBENCH_BACKEND=cpu`` to keep
    "auto" on the CPU.
    """
    if os.environ.get("WORKBENCH_BACKEND", "").lower() == "cpu":
        return False
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except Exception:  # noqa: BLE001 - CUDA driver/runtime missing
        return False


def _backend(backend: str) -> ModuleType:
    """Return the kernel module for ``backend``.

    This is the single dispatch point: ``"cpu"`` (and ``"auto"`` without a GPU) give the numba
    module; ``"cupy"`` needs cupy and a ``workbench.features._gpu`` module
    exposing the same entry points as ``_cpu``.
    """
    if not isinstance(backend, str) or backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    if backend == "auto" and gpu_available():
        backend = "cupy"
    if backend == "cupy":
        try:
            importlib.import_module("cupy")
        except Exception as exc:  # ImportError, or CUDA runtime errors on import
            raise RuntimeError(
                "backend='cupy' requested but cupy is not importable "
                f"({type(exc).__name__}: {exc}); install the 'gpu' extra or use backend='cpu'"
            ) from exc
        try:
            return importlib.import_module("workbench.features._gpu")
        except ImportError as exc:
            raise RuntimeError(
                "backend='cupy' requested but this version of workbench.features has no "
                "GPU kernels (workbench.features._gpu); use backend='cpu'"
            ) from exc
    from workbench.features import _cpu

    return _cpu


def _kernels(backend: str, cpu_module: str) -> ModuleType:
    """Kernel module of one feature family for ``backend``.

    ``cpu_module`` names the family's numba module (e.g. ``"_cpu_ta"``); the GPU backend
    serves every family from the single ``workbench.features._gpu`` module, whose entry
    points carry the same names as the CPU modules' entry points.
    """
    mod = _backend(backend)
    cpu = importlib.import_module(f"workbench.features.{cpu_module}")
    if mod.__name__.endswith("._cpu"):
        return cpu
    return _GpuFamily(mod, cpu, strict=backend == "cupy")  # type: ignore[return-value]


class _GpuFamily:
    """GPU kernels of one feature family, with a CPU fallback under ``backend="auto"``.

    A kernel the GPU module lacks runs on the CPU under "auto"; an explicit
    ``backend="cupy"`` raises a RuntimeError naming the missing kernel.
    """

    def __init__(self, gpu: ModuleType, cpu: ModuleType, strict: bool):
        self._gpu, self._cpu, self._strict = gpu, cpu, strict
        self.__name__ = gpu.__name__

    def __getattr__(self, name: str) -> Any:
        if hasattr(self._gpu, name):
            return getattr(self._gpu, name)
        if self._strict:
            raise RuntimeError(f"backend='cupy': no GPU kernel for {name!r} yet; "
                               "use backend='cpu' or 'auto' for this feature")
        return getattr(self._cpu, name)


# --------------------------------------------------------------------------- #
# validation helpers
# --------------------------------------------------------------------------- #


def _device_namespace(x: Any) -> ModuleType | None:
    """The cupy module if ``x`` is a cupy array, else None (never imports cupy otherwise)."""
    if type(x).__module__.split(".")[0] == "cupy" and hasattr(x, "__cuda_array_interface__"):
        return importlib.import_module("cupy")
    return None


def _as_panel(x: Any, name: str, *, positive: bool = False) -> tuple[np.ndarray, bool]:
    """Validate a (T,) or (T, N) numeric array; return a 2-D float64 array and a 1-D flag.

    With ``positive=True`` (prices of a feature built on price ratios or log prices)
    every finite value must be > 0; NaN still marks a missing bar
    (:func:`_check_positive`).

    A cupy array is validated on the device and returned as a 2-D float64 cupy
    array (for ``backend="cupy"``, whose kernels then return cupy arrays).
    """
    xp = _device_namespace(x)
    if xp is not None:
        return _as_device_panel(x, name, xp, positive=positive)
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be a numeric (T, N) array, got {type(x).__name__}") from exc
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise ValueError(
            f"{name} must be a numeric (T, N) array of real numbers, got dtype {arr.dtype}"
        )
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be a 1-D (T,) or 2-D (T, N) array, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains +/-inf; use NaN for a missing bar")
    one_d = arr.ndim == 1
    if one_d:
        arr = arr[:, None]
    if positive:
        _check_positive(arr, name, one_d=one_d)
    return arr, one_d


def _check_positive(arr: Any, name: str, *, one_d: bool = False,
                    symbols: Sequence[str] | None = None) -> None:
    """Raise if a (T, N) price panel holds a finite value <= 0 (NaN = no bar passes).

    Features on price ratios or log prices (returns, volatilities, spreads,
    correlations) are undefined there: a price of 0 would give an infinite return and
    poison every later window of the asset. One vectorised pass (a NaN-skipping
    minimum, no temporary) on numpy arrays; a cupy array is checked on its device.

    Parameters
    ----------
    arr : numpy.ndarray or cupy.ndarray, shape (T, N)
        Prices, float64.
    name : str
        Input name for the message (e.g. ``"close"``).
    one_d : bool, optional
        The caller was given a (T,) array: the message gives the row only.
    symbols : sequence of str, optional
        (N,) column symbols, named in the message.

    Raises
    ------
    ValueError
        Naming ``name``, the first offending row (earliest timestamp, then lowest
        column), its column and symbol, and the value.
    """
    if arr.size == 0:
        return
    if isinstance(arr, np.ndarray) and not np.fmin.reduce(arr, axis=None) <= 0:
        return  # (the minimum is NaN only if every value is)
    bad = (arr <= 0) & (arr != -np.inf)  # -inf: the callers' own "contains inf" error
    _raise_first(arr, bad, f"{name} must hold positive prices", one_d, symbols)


def _raise_first(arr: Any, bad: Any, rule: str, one_d: bool,
                 symbols: Sequence[str] | None) -> None:
    """Raise ``ValueError(rule ...)`` at the first True of ``bad`` (T, N), if any.

    The first is the earliest row, then the lowest column; the message names the row,
    column, symbol (when given) and the value.
    """
    if not bool(bad.any()):
        return
    k = int(bad.argmax())  # row-major: the earliest row, then the lowest column
    t, j = divmod(k, arr.shape[1])
    where = f"row {t}" if one_d else f"row {t}, column {j}"
    if symbols is not None:
        where += f" (symbol {symbols[j]!r})"
    raise ValueError(f"{rule} (NaN marks a missing bar); got {float(arr[t, j])!r} at {where}")


def _check_nonnegative(arr: Any, name: str, *, one_d: bool = False,
                       symbols: Sequence[str] | None = None) -> None:
    """Raise if a (T, N) panel holds a negative value (NaN = no bar passes).

    For volumes used as weights or denominators (rolling VWAP, Amihud): a negative
    volume would give a VWAP outside the bars' prices or a negative illiquidity.

    Parameters
    ----------
    arr : numpy.ndarray or cupy.ndarray, shape (T, N)
        Float64 values.
    name : str
        Input name for the message (e.g. ``"volume"``).
    one_d : bool, optional
        The caller was given a (T,) array: the message gives the row only.
    symbols : sequence of str, optional
        (N,) column symbols, named in the message.

    Raises
    ------
    ValueError
        Naming ``name``, the first offending row (then lowest column), its column and
        symbol, and the value.
    """
    if arr.size == 0:
        return
    _raise_first(arr, arr < 0, f"{name} must be >= 0", one_d, symbols)


def _as_device_panel(x: Any, name: str, xp: ModuleType, *,
                     positive: bool = False) -> tuple[Any, bool]:
    """:func:`_as_panel` for a cupy array: same checks and messages, result stays on the device."""
    if x.dtype == np.bool_ or not (
        np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    ):
        raise ValueError(
            f"{name} must be a numeric (T, N) array of real numbers, got dtype {x.dtype}"
        )
    if x.ndim not in (1, 2):
        raise ValueError(f"{name} must be a 1-D (T,) or 2-D (T, N) array, got shape {x.shape}")
    arr = x.astype(xp.float64, copy=False)
    if bool(xp.isinf(arr).any()):
        raise ValueError(f"{name} contains +/-inf; use NaN for a missing bar")
    one_d = arr.ndim == 1
    if one_d:
        arr = arr[:, None]
    if positive:
        _check_positive(arr, name, one_d=one_d)
    return arr, one_d


def _int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _vol_span(value: Any) -> int:
    """An EWM volatility span: an int >= 2 (span 1 gives an all-NaN std)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
        raise ValueError(
            f"span must be an int >= 2 for an EWM volatility, got {value!r} (span 1 is "
            "alpha = 1: every return but the latest has weight 0, so the bias-corrected "
            "std is undefined and the output would be all NaN)")
    return int(value)


def _positive(value: Any, name: str) -> float:
    if not is_finite_real(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _out_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be float64 or float32, got {dtype!r}") from exc
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32, got {dtype!r}")
    return dt


def _finish(out: np.ndarray, one_d: bool, dt: np.dtype) -> np.ndarray:
    if one_d:
        out = out[:, 0]
    if dt != out.dtype:
        out = out.astype(dt)
    return out


def _horizons(horizons: Any) -> tuple[int, ...]:
    if isinstance(horizons, (str, bytes)) or not isinstance(horizons, Sequence) or not horizons:
        raise ValueError(f"horizons must be a non-empty sequence of ints >= 1, got {horizons!r}")
    return tuple(_int(h, "horizons", 1) for h in horizons)


def _pairs(pairs: Any) -> tuple[tuple[int, int], ...]:
    msg = (
        "pairs must be a non-empty sequence of (short, long) int pairs with "
        f"1 <= short < long, got {pairs!r}"
    )
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence) or not pairs:
        raise ValueError(msg)
    res = []
    for p in pairs:
        if isinstance(p, (str, bytes)) or not isinstance(p, Sequence) or len(p) != 2:
            raise ValueError(msg)
        s = _int(p[0], "short", 1)
        lg = _int(p[1], "long", 1)
        if s >= lg:
            raise ValueError(msg)
        res.append((s, lg))
    return tuple(res)


# --------------------------------------------------------------------------- #
# returns
# --------------------------------------------------------------------------- #


def simple_returns(close: Any, *, dtype: Any = np.float64, backend: str = "auto") -> np.ndarray:
    """Simple returns over each asset's previous valid bar.

    ``r_t = p_t / p_{t'} - 1`` where ``t'`` is the asset's previous non-NaN bar
    (a holiday hole does not produce a NaN after it).

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices; NaN marks a missing bar.
    dtype : {float64, float32}, optional
        Output dtype (computation is float64).
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Simple (not log) returns, not annualised. NaN at each asset's first valid
        bar and at every NaN input row.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array, contains inf, or ``dtype``
        is not float32/float64.
        Also if ``close`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Source: Lim, Zohren & Roberts (2019), "Enhancing time series momentum
    strategies using deep neural networks", r_t definition (DESIGN.md sec. 5).
    """
    mod = _backend(backend)
    x, one_d = _as_panel(close, "close", positive=True)
    dt = _out_dtype(dtype)
    return _finish(mod.simple_returns(x), one_d, dt)


def log_returns(close: Any, *, dtype: Any = np.float64, backend: str = "auto") -> np.ndarray:
    """Log returns over each asset's previous valid bar.

    ``r_t = ln(p_t / p_{t'})`` where ``t'`` is the asset's previous non-NaN bar.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices; NaN marks a missing bar.
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Log returns (natural log, not annualised); NaN at each asset's first valid
        bar and at NaN input rows.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array or contains inf.
        Also if ``close`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.
    """
    mod = _backend(backend)
    x, one_d = _as_panel(close, "close", positive=True)
    dt = _out_dtype(dtype)
    return _finish(mod.log_returns(x), one_d, dt)


# --------------------------------------------------------------------------- #
# TA-Lib family
# --------------------------------------------------------------------------- #


def sma(x: Any, window: int, *, dtype: Any = np.float64, backend: str = "auto") -> np.ndarray:
    """Simple moving average over the last ``window`` valid bars.

    Parameters
    ----------
    x : array_like, shape (T, N) or (T,)
        Input series; NaN marks a missing bar.
    window : int
        Number of valid bars, >= 1.
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Same units as ``x``; the first ``window - 1`` valid bars are NaN.

    Raises
    ------
    ValueError
        If ``x`` is not a numeric 1-D/2-D array or ``window`` is not an int >= 1.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Matches ``talib.SMA(x, timeperiod=window)`` on each asset's valid bars.
    Computed with a sliding Welford update, re-synced exactly every ``window``
    bars.
    """
    mod = _backend(backend)
    a, one_d = _as_panel(x, "x")
    window = _int(window, "window", 1)
    dt = _out_dtype(dtype)
    return _finish(mod.sma(a, window), one_d, dt)


def ema(x: Any, span: int, *, dtype: Any = np.float64, backend: str = "auto") -> np.ndarray:
    """Exponential moving average, TA-Lib convention.

    ``alpha = 2 / (span + 1)``; seeded with the simple mean of the first ``span``
    valid values, so the first output is at the asset's valid bar ``span - 1``.

    Parameters
    ----------
    x : array_like, shape (T, N) or (T,)
        Input series; NaN marks a missing bar.
    span : int
        Period, >= 1.
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Same units as ``x``.

    Raises
    ------
    ValueError
        If ``x`` is not a numeric 1-D/2-D array or ``span`` is not an int >= 1.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Matches ``talib.EMA(x, timeperiod=span)`` (default compatibility mode).
    """
    mod = _backend(backend)
    a, one_d = _as_panel(x, "x")
    span = _int(span, "span", 1)
    dt = _out_dtype(dtype)
    return _finish(mod.ema(a, span), one_d, dt)


def rolling_std(
    x: Any, window: int, ddof: int = 0, *, dtype: Any = np.float64, backend: str = "auto"
) -> np.ndarray:
    """Rolling standard deviation over the last ``window`` valid bars.

    Parameters
    ----------
    x : array_like, shape (T, N) or (T,)
        Input series; NaN marks a missing bar.
    window : int
        Number of valid bars, >= 2 and > ``ddof``.
    ddof : int, optional
        Delta degrees of freedom: 0 (population, default) or 1 (sample).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Same units as ``x``; the first ``window - 1`` valid bars are NaN.

    Raises
    ------
    ValueError
        If ``x`` is not a numeric 1-D/2-D array, ``window`` is not an int >= 2 or
        ``ddof`` is not an int in [0, window).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    ``ddof=0`` matches ``talib.STDDEV(x, timeperiod=window, nbdev=1)``;
    ``ddof=1`` matches ``pandas.Series.rolling(window).std()``. Sliding Welford
    update (no sum of squares), re-synced exactly every ``window`` bars.
    """
    mod = _backend(backend)
    a, one_d = _as_panel(x, "x")
    window = _int(window, "window", 2)
    ddof = _int(ddof, "ddof", 0)
    if ddof >= window:
        raise ValueError(f"ddof must be an int in [0, window={window}), got {ddof}")
    dt = _out_dtype(dtype)
    return _finish(mod.rolling_std(a, window, ddof), one_d, dt)


def rsi(
    close: Any, period: int = 14, *, dtype: Any = np.float64, backend: str = "auto"
) -> np.ndarray:
    """Relative strength index with Wilder smoothing.

    Average gain/loss seeded with the simple mean of the first ``period`` price
    changes, then ``avg = (avg * (period - 1) + change) / period``;
    ``RSI = 100 * avg_gain / (avg_gain + avg_loss)`` (0 when both are 0).

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Prices; NaN marks a missing bar.
    period : int, optional
        Wilder period, >= 1 (default 14).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        RSI in [0, 100]; the first ``period`` valid bars are NaN.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array or ``period`` is not an int >= 1.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Matches ``talib.RSI(close, timeperiod=period)``, except that TA-Lib returns 0
    when ``avg_gain + avg_loss`` is below 1e-8 in absolute terms, while this
    returns 0 only when it is exactly 0 (keeps the RSI scale invariant).
    Source: Wilder (1978), "New Concepts in Technical Trading Systems".
    """
    mod = _backend(backend)
    a, one_d = _as_panel(close, "close")
    period = _int(period, "period", 1)
    dt = _out_dtype(dtype)
    return _finish(mod.rsi(a, period), one_d, dt)


def macd(
    close: Any,
    fast: int = 12,
    slow: int = 26,
    signal: int = 9,
    *,
    dtype: Any = np.float64,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal line and histogram, TA-Lib convention.

    ``line = EMA_fast - EMA_slow``, ``signal = EMA_signal(line)``,
    ``hist = line - signal``, with TA-Lib's alignment: the slow EMA is seeded
    with the mean of the first ``slow`` valid values, the fast EMA with the mean
    of the ``fast`` values ending at that same bar, the signal EMA with the mean
    of the first ``signal`` line values; all three outputs start at the asset's
    valid bar ``slow - 1 + signal - 1``.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Prices; NaN marks a missing bar.
    fast, slow, signal : int, optional
        EMA periods (12, 26, 9); ``1 <= fast < slow``, ``signal >= 1``.
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    line, signal, hist : numpy.ndarray, each shape (T, N) or (T,)
        In price units.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array, a period is not an int >= 1,
        or ``fast >= slow`` (TA-Lib silently swaps them instead).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Matches ``talib.MACD(close, fastperiod=fast, slowperiod=slow,
    signalperiod=signal)`` (all three outputs). Source: Appel (1979).
    """
    mod = _backend(backend)
    a, one_d = _as_panel(close, "close")
    fast = _int(fast, "fast", 1)
    slow = _int(slow, "slow", 2)
    signal = _int(signal, "signal", 1)
    if fast >= slow:
        raise ValueError(f"fast must be < slow={slow}, got {fast}")
    dt = _out_dtype(dtype)
    line, sig, hist = mod.macd(a, fast, slow, signal)
    return _finish(line, one_d, dt), _finish(sig, one_d, dt), _finish(hist, one_d, dt)


def bollinger(
    close: Any,
    window: int = 20,
    k: float = 2.0,
    *,
    dtype: Any = np.float64,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger bands: SMA plus/minus ``k`` population standard deviations.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Prices; NaN marks a missing bar.
    window : int, optional
        Number of valid bars, >= 2 (default 20).
    k : float, optional
        Band width in standard deviations, > 0 (default 2).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    upper, middle, lower : numpy.ndarray, each shape (T, N) or (T,)
        In price units; the first ``window - 1`` valid bars are NaN.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array, ``window`` is not an int >= 2
        or ``k`` is not a finite number > 0.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Matches ``talib.BBANDS(close, timeperiod=window, nbdevup=k, nbdevdn=k,
    matype=0)``. TA-Lib uses a running sum of squares; this uses a sliding
    Welford update (more accurate on long or high-priced series). Source:
    Bollinger (2001).
    """
    mod = _backend(backend)
    a, one_d = _as_panel(close, "close")
    window = _int(window, "window", 2)
    k = _positive(k, "k")
    dt = _out_dtype(dtype)
    up, mid, lo = mod.bollinger(a, window, k)
    return _finish(up, one_d, dt), _finish(mid, one_d, dt), _finish(lo, one_d, dt)


# --------------------------------------------------------------------------- #
# volatility
# --------------------------------------------------------------------------- #


def rolling_volatility(
    close: Any,
    window: int = 20,
    periods_per_year: float = 252,
    *,
    dtype: Any = np.float64,
    backend: str = "auto",
) -> np.ndarray:
    """Annualised rolling volatility of log returns.

    Sample standard deviation (ddof=1) of the last ``window`` log returns (over
    valid bars) times ``sqrt(periods_per_year)``.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices; NaN marks a missing bar.
    window : int, optional
        Number of returns, >= 2 (default 20).
    periods_per_year : float, optional
        Annualisation factor, > 0 (252 for daily bars).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Annualised volatility of log returns (a fraction, 0.2 = 20%); the first
        ``window`` valid bars are NaN.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array, ``window`` is not an int >= 2
        or ``periods_per_year`` is not a finite number > 0.
        Also if ``close`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Equals ``np.log(s).diff().rolling(window).std() * sqrt(periods_per_year)``
    in pandas on each asset's valid bars.
    """
    mod = _backend(backend)
    a, one_d = _as_panel(close, "close", positive=True)
    window = _int(window, "window", 2)
    ppy = _positive(periods_per_year, "periods_per_year")
    dt = _out_dtype(dtype)
    return _finish(mod.rolling_volatility(a, window, ppy), one_d, dt)


def ewm_volatility(
    returns: Any,
    span: float = 60,
    periods_per_year: float = 252,
    annualise: bool = True,
    min_periods: int | None = None,
    *,
    dtype: Any = np.float64,
    backend: str = "auto",
) -> np.ndarray:
    """Exponentially weighted volatility of returns (bias-corrected EWM std).

    Parameters
    ----------
    returns : array_like, shape (T, N) or (T,)
        Returns (simple or log; the output has the same convention); NaN marks a
        missing bar and is skipped, not decayed over.
    span : float, optional
        EWM span, > 1; ``alpha = 2 / (span + 1)`` (default 60).
    periods_per_year : float, optional
        Annualisation factor, > 0 (default 252).
    annualise : bool, optional
        Multiply by ``sqrt(periods_per_year)`` (default True).
    min_periods : int, optional
        Valid observations required before output, >= 1 (default ``ceil(span)``).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Volatility as a fraction per period, or annualised if ``annualise``.

    Raises
    ------
    ValueError
        If ``returns`` is not a numeric 1-D/2-D array, ``span`` <= 1,
        ``periods_per_year`` <= 0 or ``min_periods`` is not an int >= 1.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Equals ``pandas.Series.ewm(span=span, adjust=True,
    min_periods=min_periods).std()`` on each asset's valid observations,
    computed with pandas' online ``ewmcov`` recursion (weighted Welford update).
    """
    mod = _backend(backend)
    a, one_d = _as_panel(returns, "returns")
    if not is_real(span) or not span > 1:
        raise ValueError(f"span must be a number > 1 for an EWM volatility, got {span!r} "
                         "(span 1 is alpha = 1: the bias-corrected std is undefined, all NaN)")
    ppy = _positive(periods_per_year, "periods_per_year")
    minp = math.ceil(span) if min_periods is None else _int(min_periods, "min_periods", 1)
    dt = _out_dtype(dtype)
    scale = math.sqrt(ppy) if annualise else 1.0
    return _finish(mod.ewm_volatility(a, float(span), scale, minp), one_d, dt)


def ex_ante_volatility(
    close: Any,
    span: int = 60,
    periods_per_year: float = 252,
    *,
    dtype: Any = np.float64,
    backend: str = "auto",
) -> np.ndarray:
    """Ex-ante volatility sigma_t of the deep momentum family.

    ``ewm_volatility(simple_returns(close), span, periods_per_year,
    annualise=True)``, computed in one pass per asset.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices; NaN marks a missing bar.
    span : int, optional
        EWM span of daily simple returns, >= 2 (default 60).
    periods_per_year : float, optional
        Annualisation factor, > 0 (default 252).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Annualised volatility of simple returns; NaN until ``span`` returns exist.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array, ``span`` is not an int >= 2
        or ``periods_per_year`` is not a finite number > 0.
        Also if ``close`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Source: Lim, Zohren & Roberts (2019); DESIGN.md sec. 5 sigma_t.
    """
    mod = _backend(backend)
    a, one_d = _as_panel(close, "close", positive=True)
    span = _vol_span(span)
    ppy = _positive(periods_per_year, "periods_per_year")
    dt = _out_dtype(dtype)
    return _finish(mod.ex_ante_volatility(a, span, ppy), one_d, dt)


# --------------------------------------------------------------------------- #
# deep momentum inputs
# --------------------------------------------------------------------------- #


def normalised_returns(
    close: Any,
    horizons: Sequence[int] = (1, 21, 63, 126, 252),
    span: int = 60,
    *,
    dtype: Any = np.float64,
    backend: str = "auto",
) -> np.ndarray:
    """Volatility-normalised returns over several horizons.

    ``r_{t-k,t} / (sigma_t * sqrt(k))`` with ``r_{t-k,t} = p_t / p_{t-k} - 1``
    over the asset's valid bars (``t-k`` is ``k`` valid bars back) and
    ``sigma_t`` the daily (not annualised) EWM std of simple returns.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices; NaN marks a missing bar.
    horizons : sequence of int, optional
        Return horizons ``k`` in bars, each >= 1 (default 1, 21, 63, 126, 252).
    span : int, optional
        EWM span of the daily volatility, >= 2 (default 60).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N, H) or (T, H)
        Dimensionless; channel ``h`` is horizon ``horizons[h]``.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array, a horizon is not an int >= 1
        or ``span`` is not an int >= 2.
        Also if ``close`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Source: Lim, Zohren & Roberts (2019), sec. 3 inputs; DESIGN.md sec. 5.
    """
    mod = _backend(backend)
    a, one_d = _as_panel(close, "close", positive=True)
    hz = _horizons(horizons)
    span = _vol_span(span)
    dt = _out_dtype(dtype)
    return _finish(mod.normalised_returns(a, hz, span), one_d, dt)


def macd_signals(
    close: Any,
    pairs: Sequence[tuple[int, int]] = ((8, 24), (16, 48), (32, 96)),
    price_window: int = 63,
    signal_window: int = 252,
    *,
    dtype: Any = np.float64,
    backend: str = "auto",
) -> np.ndarray:
    """Baz et al. (2015) MACD signals for several (short, long) pairs.

    For each pair ``(S, L)``: ``m(S)`` is the recursive EWMA of price with
    ``alpha = 1/S`` (half-life ``ln 0.5 / ln(1 - 1/S)``; pandas
    ``ewm(alpha=1/S, adjust=False).mean()``, seeded with the first valid price),
    ``q = (m(S) - m(L)) / std(price, price_window, ddof=1)`` and
    ``Y = q / std(q, signal_window, ddof=1)``.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Prices; NaN marks a missing bar.
    pairs : sequence of (int, int), optional
        ``(short, long)`` time scales, ``1 <= short < long``.
    price_window : int, optional
        Rolling window of the price std, >= 2 (default 63).
    signal_window : int, optional
        Rolling window of the std of ``q``, >= 2 (default 252).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N, P) or (T, P)
        Dimensionless signals; NaN for the first
        ``price_window + signal_window - 2`` valid bars, and where a price or
        ``q`` std in the window is 0.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array, ``pairs`` is malformed or a
        window is not an int >= 2.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Source: Baz, Granger, Harvey, Le Roux & Rattray (2015), "Dissecting
    investment strategies in the cross section and time series"; DESIGN.md
    sec. 5.
    """
    mod = _backend(backend)
    a, one_d = _as_panel(close, "close")
    pr = _pairs(pairs)
    pw = _int(price_window, "price_window", 2)
    sw = _int(signal_window, "signal_window", 2)
    dt = _out_dtype(dtype)
    return _finish(mod.macd_signals(a, pr, pw, sw), one_d, dt)


def macd_signal(
    close: Any,
    short: int,
    long: int,
    price_window: int = 63,
    signal_window: int = 252,
    *,
    dtype: Any = np.float64,
    backend: str = "auto",
) -> np.ndarray:
    """Baz et al. (2015) MACD signal ``Y`` for one ``(short, long)`` pair.

    See :func:`macd_signals` for the formula.

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Prices; NaN marks a missing bar.
    short, long : int
        Time scales, ``1 <= short < long``.
    price_window : int, optional
        Rolling window of the price std, >= 2 (default 63).
    signal_window : int, optional
        Rolling window of the std of ``q``, >= 2 (default 252).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    numpy.ndarray, shape (T, N) or (T,)
        Dimensionless signal.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array, ``short``/``long`` are not
        ints with ``1 <= short < long``, or a window is not an int >= 2.
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Source: Baz et al. (2015); DESIGN.md sec. 5.
    """
    short = _int(short, "short", 1)
    long = _int(long, "long", 2)
    if short >= long:
        raise ValueError(f"short must be < long={long}, got {short}")
    out = macd_signals(
        close,
        ((short, long),),
        price_window,
        signal_window,
        dtype=dtype,
        backend=backend,
    )
    return out[..., 0]


def deep_momentum_features(
    close: Any,
    horizons: Sequence[int] = (1, 21, 63, 126, 252),
    pairs: Sequence[tuple[int, int]] = ((8, 24), (16, 48), (32, 96)),
    span: int = 60,
    *,
    dtype: Any = np.float64,
    backend: str = "auto",
) -> tuple[np.ndarray, list[str]]:
    """Input features of the deep momentum network (Lim, Zohren & Roberts 2019).

    Normalised returns for every horizon followed by Baz MACD signals for every
    pair (price window 63, signal window 252).

    Parameters
    ----------
    close : array_like, shape (T, N) or (T,)
        Positive prices; NaN marks a missing bar.
    horizons : sequence of int, optional
        Return horizons in bars (default 1, 21, 63, 126, 252).
    pairs : sequence of (int, int), optional
        MACD ``(short, long)`` pairs (default (8, 24), (16, 48), (32, 96)).
    span : int, optional
        EWM span of the daily volatility used for normalisation, >= 2 (default 60).
    dtype : {float64, float32}, optional
        Output dtype.
    backend : {"auto", "cpu", "cupy"}, optional
        Kernel backend.

    Returns
    -------
    features : numpy.ndarray, shape (T, N, F) or (T, F)
        ``F = len(horizons) + len(pairs)``, dimensionless.
    names : list of str
        ``"nret_<k>"`` per horizon then ``"macd_<S>_<L>"`` per pair.

    Raises
    ------
    ValueError
        If ``close`` is not a numeric 1-D/2-D array or a parameter is invalid.
        Also if ``close`` holds a finite price <= 0 (the message names the first
        offending row and column; NaN, a missing bar, is allowed).
    RuntimeError
        If ``backend="cupy"`` and cupy is not importable.

    Notes
    -----
    Source: Lim, Zohren & Roberts (2019), "Enhancing time series momentum
    strategies using deep neural networks"; DESIGN.md sec. 3 and 5.
    """
    mod = _backend(backend)
    a, one_d = _as_panel(close, "close", positive=True)
    hz = _horizons(horizons)
    pr = _pairs(pairs)
    span = _vol_span(span)
    dt = _out_dtype(dtype)
    out = mod.deep_momentum_features(a, hz, pr, span, 63, 252)
    names = [f"nret_{k}" for k in hz] + [f"macd_{s}_{lg}" for s, lg in pr]
    return _finish(out, one_d, dt), names


# --------------------------------------------------------------------------- #
# catalogue
# --------------------------------------------------------------------------- #

FEATURE_NAMES: tuple[str, ...] = tuple(n for n in __all__ if n not in ("FEATURE_NAMES", "describe"))


def describe() -> dict[str, str]:
    """Return ``{name: first docstring line}`` for every public feature function.

    Returns
    -------
    dict of str to str
        One entry per name in :data:`FEATURE_NAMES`.
    """
    g = globals()
    return {n: (g[n].__doc__ or "").strip().splitlines()[0] for n in FEATURE_NAMES}
