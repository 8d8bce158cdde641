"""GPU backend: CuPy ``RawModule`` kernels with the CPU backend's semantics (private).

Imported only by :func:`workbench.features._api._backend` for ``backend="cupy"``;
cupy itself is imported lazily, at the first kernel call. The CUDA C source is
``_gpu_kernels.cu`` beside this file (double precision, compiled once per process
by NVRTC with ``--fmad=false`` so no multiply-add is contracted, as in numba: the
kernels do the numba kernels' floating-point operations in the same order,
reciprocal multiplies included, so CPU and GPU agree bit for bit except where a
CUDA ``log``/``exp`` differs from libm's by an ulp).

Design (DESIGN.md sec. 3): one thread per asset (per ``(pair, asset)`` for the
Baz MACD signals) walks ``t = 0 .. T-1`` over the C-ordered (T, N) array, so
consecutive threads read consecutive addresses at every step (coalesced).
Recurrences (EMA, RSI, MACD, EWM variance, ATR, OBV) keep their state in
registers; rolling windows keep a per-thread ring buffer in a (w, N) scratch
array (also coalesced) with the CPU kernels' sliding updates (Welford moments,
window sums, co-moments) and their exact re-syncs every ``w`` values. A NaN input
leaves the asset's state untouched and writes NaN, so each asset is computed on
its own sequence of valid bars, exactly as in :mod:`workbench.features._cpu`.
The mean pairwise correlation runs one thread per asset pair (O(T N^2) work) in
chunks of rows, then reduces each row's pair correlations in the CPU's fixed
block order.

Entry points carry the names and argument order of the CPU modules' entry
points. They take 2-D float64 arrays: CuPy arrays (results stay on the device)
or NumPy arrays (copied in, results copied back as NumPy arrays). Multi-output
features return tuples as on the CPU.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

KERNEL_SOURCE = Path(__file__).with_name("_gpu_kernels.cu")
_BLOCK = 128
_NVRTC_OPTIONS = ("--std=c++11", "--fmad=false")


class _CupyDevice:
    """Array namespace and kernel launcher on the current CUDA device."""

    def __init__(self) -> None:
        import cupy

        self.xp = cupy
        self._module = None

    def _get_module(self):
        if self._module is None:
            self._module = self.xp.RawModule(code=KERNEL_SOURCE.read_text(), options=_NVRTC_OPTIONS)
        return self._module

    def is_device(self, a: Any) -> bool:
        return isinstance(a, self.xp.ndarray)

    def to_device(self, a: Any):
        return self.xp.ascontiguousarray(self.xp.asarray(a, dtype=self.xp.float64))

    def to_host(self, a: Any) -> np.ndarray:
        return self.xp.asnumpy(a)

    def launch(self, name: str, nthreads: int, *args: Any) -> None:
        if nthreads <= 0:
            return
        kernel = self._get_module().get_function(name)
        grid = min((nthreads + _BLOCK - 1) // _BLOCK, 65535)
        kernel((grid,), (_BLOCK,), tuple(_kernel_arg(a) for a in args))


def _kernel_arg(a: Any) -> Any:
    # every integer parameter of the kernels is `long long`, every scalar `double`
    if isinstance(a, (bool, np.bool_)):
        return np.int64(int(a))
    if isinstance(a, (int, np.integer)):
        return np.int64(a)
    if isinstance(a, (float, np.floating)):
        return np.float64(a)
    return a


_DEVICE: Any = None


def _device() -> Any:
    """The launcher (created at first use; tests may substitute a host emulation)."""
    global _DEVICE
    if _DEVICE is None:
        _DEVICE = _CupyDevice()
    return _DEVICE


def _inputs(*arrays: Any) -> tuple[Any, list, bool]:
    """Device copies of ``arrays`` (C-ordered float64) and whether to return host arrays."""
    d = _device()
    host = not all(d.is_device(a) for a in arrays)
    return d, [d.to_device(a) for a in arrays], host


def _outputs(d: Any, host: bool, *outs: Any) -> Any:
    res = tuple(d.to_host(o) if host else o for o in outs)
    return res[0] if len(res) == 1 else res


def _empty(d: Any, *shape: int):
    return d.xp.empty(shape, dtype=d.xp.float64)


def _scratch(d: Any, rows: int, cols: int):
    return d.xp.empty((max(1, rows), max(1, cols)), dtype=d.xp.float64)


def _unary(name: str, x: Any, *params: Any, scratch: int = 0) -> Any:
    """Run a one-input, one-output kernel ``name(x, out, [buf,] T, N, *params)``."""
    d, (x,), host = _inputs(x)
    T, N = x.shape
    out = _empty(d, T, N)
    if scratch:
        d.launch(name, N, x, out, _scratch(d, scratch, N), T, N, *params)
    else:
        d.launch(name, N, x, out, T, N, *params)
    return _outputs(d, host, out)


# --------------------------------------------------------------------------- #
# entry points of workbench.features._cpu
# --------------------------------------------------------------------------- #


def simple_returns(x):
    return _unary("wb_returns", x, 0)


def log_returns(x):
    return _unary("wb_returns", x, 1)


def _rolling(x, window, what, c):
    d, (x,), host = _inputs(x)
    T, N = x.shape
    o1 = _empty(d, T, N)
    o2 = _empty(d, T, N) if what == 2 else o1
    o3 = _empty(d, T, N) if what == 2 else o1
    buf = _scratch(d, window, N)
    d.launch("wb_rolling", N, x, o1, o2, o3, buf, T, N, window, what, float(c))
    return _outputs(d, host, o1, o2, o3) if what == 2 else _outputs(d, host, o1)


def sma(x, window):
    return _rolling(x, window, 0, 0.0)


def ema(x, span):
    return _unary("wb_ema", x, span)


def rolling_std(x, window, ddof):
    return _rolling(x, window, 1, float(window - ddof))


def rsi(x, period):
    return _unary("wb_rsi", x, period)


def macd(x, fast, slow, signal):
    d, (x,), host = _inputs(x)
    T, N = x.shape
    line, sig, hist = _empty(d, T, N), _empty(d, T, N), _empty(d, T, N)
    d.launch("wb_macd", N, x, line, sig, hist, T, N, fast, slow, signal)
    return _outputs(d, host, line, sig, hist)


def bollinger(x, window, k):
    return _rolling(x, window, 2, float(k))


def rolling_volatility(x, window, periods_per_year):
    return _unary("wb_rolling_volatility", x, window, math.sqrt(periods_per_year), scratch=window)


def ewm_volatility(x, span, scale, min_periods):
    return _unary("wb_ewm_volatility", x, 2.0 / (span + 1.0), min_periods, float(scale), 0)


def ex_ante_volatility(x, span, periods_per_year):
    return _unary("wb_ewm_volatility", x, 2.0 / (span + 1.0), span, math.sqrt(periods_per_year), 1)


def _into(d: Any, out: Any, res: Any, off: int, host: bool) -> Any:
    """Copy the (T, N, K) device result ``res`` into ``out[..., off:off+K]``; return ``out``."""
    K = res.shape[2]
    if d.is_device(out):
        out[:, :, off : off + K] = res
    else:
        out[:, :, off : off + K] = d.to_host(res)
    return out


def normalised_returns(x, horizons, span, out=None, off=0):
    d, (x,), host = _inputs(x)
    T, N = x.shape
    h = [int(k) for k in horizons]
    H = len(h)
    hz = d.xp.asarray(np.asarray(h, dtype=np.int64))
    R = max(h) + 1
    direct = out is not None and d.is_device(out) and out.flags.c_contiguous
    res = out if direct else _empty(d, T, N, H)
    C, o0 = (out.shape[2], off) if direct else (H, 0)
    ring = _scratch(d, R, N)
    d.launch(
        "wb_normalised_returns", N, x, res, ring, hz, H, R, T, N, 2.0 / (span + 1.0), span, C, o0
    )
    if direct:
        return out
    if out is not None:
        return _into(d, out, res, off, host)
    return _outputs(d, host, res)


def macd_signals(x, pairs, price_window, signal_window, out=None, off=0):
    d, (x,), host = _inputs(x)
    T, N = x.shape
    pr = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    P = pr.shape[0]
    shorts = d.xp.asarray(np.ascontiguousarray(pr[:, 0]))
    longs = d.xp.asarray(np.ascontiguousarray(pr[:, 1]))
    direct = out is not None and d.is_device(out) and out.flags.c_contiguous
    res = out if direct else _empty(d, T, N, P)
    C, o0 = (out.shape[2], off) if direct else (P, 0)
    pbuf = _scratch(d, price_window, P * N)
    qbuf = _scratch(d, signal_window, P * N)
    d.launch(
        "wb_macd_signals", P * N, x, res, pbuf, qbuf, shorts, longs, P, T, N,
        price_window, signal_window, C, o0,
    )  # fmt: skip
    if direct:
        return out
    if out is not None:
        return _into(d, out, res, off, host)
    return _outputs(d, host, res)


def deep_momentum_features(x, horizons, pairs, span, price_window, signal_window):
    d, (xd,), host = _inputs(x)
    T, N = xd.shape
    H = len(horizons)
    out = _empty(d, T, N, H + len(pairs))
    normalised_returns(xd, horizons, span, out=out, off=0)
    macd_signals(xd, pairs, price_window, signal_window, out=out, off=H)
    return _outputs(d, host, out)


# --------------------------------------------------------------------------- #
# entry points of the catalogue modules (_cpu_ta, _cpu_micro)
# --------------------------------------------------------------------------- #


def roc(x, period):
    return _unary("wb_roc", x, period, 0, scratch=period)


def momentum(x, period):
    return _unary("wb_roc", x, period, 1, scratch=period)


def atr(high, low, close, period):
    d, (h, lo, c), host = _inputs(high, low, close)
    T, N = c.shape
    out = _empty(d, T, N)
    d.launch("wb_atr", N, h, lo, c, out, T, N, period)
    return _outputs(d, host, out)


def obv(close, volume):
    d, (c, v), host = _inputs(close, volume)
    T, N = c.shape
    out = _empty(d, T, N)
    d.launch("wb_obv", N, c, v, out, T, N)
    return _outputs(d, host, out)


def price_position(high, low, close, window):
    d, (h, lo, c), host = _inputs(high, low, close)
    T, N = c.shape
    out = _empty(d, T, N)
    hb, lb = _scratch(d, window, N), _scratch(d, window, N)
    d.launch("wb_price_position", N, h, lo, c, out, hb, lb, T, N, window)
    return _outputs(d, host, out)


def bollinger_pct_b_bandwidth(close, window, k):
    """Fused pass: (%b, bandwidth), each (T, N) (as ``_cpu_ta.bollinger_pct_b_bandwidth``)."""
    d, (c,), host = _inputs(close)
    T, N = c.shape
    pb, bw = _empty(d, T, N), _empty(d, T, N)
    d.launch("wb_bollinger_pb", N, c, pb, bw, _scratch(d, window, N), T, N, window, float(k))
    return _outputs(d, host, pb, bw)


def rolling_vwap(high, low, close, volume, window):
    d, (h, lo, c, v), host = _inputs(high, low, close, volume)
    T, N = c.shape
    out = _empty(d, T, N)
    bpv, bv = _scratch(d, window, N), _scratch(d, window, N)
    d.launch("wb_rolling_vwap", N, h, lo, c, v, out, bpv, bv, T, N, window)
    return _outputs(d, host, out)


def volume_zscore(volume, window):
    return _unary("wb_volume_zscore", volume, window, scratch=window)


def vol_of_vol(close, vol_window, window, periods_per_year):
    d, (c,), host = _inputs(close)
    T, N = c.shape
    vol = _empty(d, T, N)
    scale = math.sqrt(periods_per_year)
    d.launch(
        "wb_rolling_volatility", N, c, vol, _scratch(d, vol_window, N), T, N, vol_window, scale
    )
    out = _empty(d, T, N)
    # rolling std (ddof=1) over the valid (non-NaN) volatility values of each asset
    # (mode 3: sqrt(m2 / (window - 1)), a true division as in _cpu_ta._vov_step)
    d.launch("wb_rolling", N, vol, out, out, out, _scratch(d, window, N), T, N, window, 3,
             float(window - 1))  # fmt: skip
    return _outputs(d, host, out)


def rolling_skewness(close, window):
    return _unary("wb_rolling_moments", close, window, 0, scratch=window)


def rolling_kurtosis(close, window):
    return _unary("wb_rolling_moments", close, window, 1, scratch=window)


def _range_vol(open_, high, low, close, window, periods_per_year, kind):
    d, (o, h, lo, c), host = _inputs(open_, high, low, close)
    T, N = h.shape
    out = _empty(d, T, N)
    buf = _scratch(d, window, N)
    d.launch(
        "wb_range_volatility", N, o, h, lo, c, out, buf, T, N, window,
        float(periods_per_year), kind,
    )  # fmt: skip
    return _outputs(d, host, out)


def parkinson_volatility(high, low, window, periods_per_year):
    # open/close are not read for kind 0: pass high/low in their places
    return _range_vol(high, high, low, low, window, periods_per_year, 0)


def garman_klass_volatility(open_, high, low, close, window, periods_per_year):
    return _range_vol(open_, high, low, close, window, periods_per_year, 1)


def corwin_schultz_spread(high, low, window):
    d, (h, lo), host = _inputs(high, low)
    T, N = h.shape
    out = _empty(d, T, N)
    d.launch("wb_corwin_schultz", N, h, lo, out, _scratch(d, window, N), T, N, window)
    return _outputs(d, host, out)


def roll_spread(close, window):
    return _unary("wb_roll_spread", close, window, scratch=2 * window)


def amihud_illiquidity(close, volume, window, scale):
    d, (c, v), host = _inputs(close, volume)
    T, N = c.shape
    out = _empty(d, T, N)
    d.launch("wb_amihud", N, c, v, out, _scratch(d, window, N), T, N, window, float(scale))
    return _outputs(d, host, out)


def _corr_beta(close, market, window, min_periods, kind):
    d, (c,), host = _inputs(close)
    T, N = c.shape
    market = int(market)
    if not -N <= market < N:
        raise ValueError(f"market must be a column index in [0, {N}), got {market}")
    market %= N
    minp = float(window if min_periods is None else min_periods)
    r = _empty(d, T, N)
    d.launch("wb_returns", N, c, r, T, N, 1)
    out = _empty(d, T, N)
    buf = _scratch(d, 2 * window, N)  # rings of the (asset, market) return pairs
    d.launch("wb_corr_beta", N, r, c, out, buf, T, N, market, window, minp, kind)
    return _outputs(d, host, out)


def rolling_correlation(close, market, window, min_periods):
    return _corr_beta(close, market, window, min_periods, 0)


def rolling_beta(close, market, window, min_periods):
    return _corr_beta(close, market, window, min_periods, 1)


# mean pairwise correlation: number of per-pair state rows (n, means, co-moments, flat
# tracking) and the "row" of a change that never happened (as _cpu_micro._NEVER)
_MPC_STATE = 11
_MPC_NEVER = -(1 << 62)
# number of reduction blocks of the pairs (as _cpu_micro._PAIR_BLOCKS; same bounds)
_PAIR_BLOCKS = 16
# elements of the (rows, P) chunk of per-pair correlations held on the device at once
_MPC_CHUNK = 1 << 25


def _pair_bounds(P: int) -> np.ndarray:
    """Bounds of the reduction blocks of ``P`` pairs (as ``_cpu_micro.pair_bounds``)."""
    nblk = max(1, min(_PAIR_BLOCKS, P))
    return np.linspace(0, P, nblk + 1).round().astype(np.int64)


def mean_pairwise_correlation(close, window, min_periods):
    """(T,) mean over all asset pairs of the rolling correlation of log returns.

    Same definition and arithmetic as ``_cpu_micro.mean_pairwise_correlation``: per
    pair, pairwise-complete Welford co-moments over the last ``window`` panel rows with
    an exact re-sync every ``window`` rows, NaN where a pair has fewer than
    ``min_periods`` counted rows, a constant series, or an asset without a bar at t;
    the mean of the defined pairs is summed in the CPU's fixed blocks and order.

    One thread per pair walks the rows in chunks of at most ``_MPC_CHUNK / P`` rows
    (the chunk's (rows, P) correlations are then reduced per row by
    ``wb_mpc_block_sums`` / ``wb_mpc_combine``). Work O(T N^2), device memory
    O(N^2 + T N) besides the chunk.
    """
    d, (c,), host = _inputs(close)
    T, N = c.shape
    xp = d.xp
    out = xp.full((T,), math.nan, dtype=xp.float64)
    if N < 2 or T == 0:
        return _outputs(d, host, out)
    P = N * (N - 1) // 2
    r = _empty(d, T, N)
    d.launch("wb_returns", N, c, r, T, N, 1)
    st = xp.zeros((_MPC_STATE, P), dtype=xp.float64)
    st[_MPC_STATE - 3 :] = float(_MPC_NEVER)  # last-value row, change rows: none yet
    bounds = xp.asarray(_pair_bounds(P))
    NB = int(bounds.shape[0]) - 1
    R = max(1, min(T, _MPC_CHUNK // P))
    rc = _empty(d, R, P)
    acc, cnt = _empty(d, R, NB), _empty(d, R, NB)
    for t0 in range(0, T, R):
        rows = min(R, T - t0)
        d.launch("wb_mpc_pairs", P, r, c, rc, st, T, N, P, window, float(min_periods),
                 t0, t0 + rows)  # fmt: skip
        d.launch("wb_mpc_block_sums", rows * NB, rc, bounds, acc, cnt, P, NB, rows)
        d.launch("wb_mpc_combine", rows, acc, cnt, out, NB, t0, rows)
    return _outputs(d, host, out)
