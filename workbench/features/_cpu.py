"""CPU backend: fused numba kernels over time-contiguous memory (private).

Every driver takes a (T, N) float64 array ``xf`` that is Fortran-ordered (each
asset's series contiguous), runs ``prange`` over assets and, per asset:

1. compresses the asset's valid (non-NaN) bars into a contiguous scratch vector,
2. runs a sequential core over that compressed series (one pass, shared state),
3. scatters the result back to the (T, N) C-ordered output, writing NaN at
   every row whose input was NaN.

So a hole on a union calendar neither resets state nor leaks NaN, warm-up rows
are NaN, and every output at t depends only on inputs at or before t.

The plain-Python functions at the bottom (``sma``, ``ema``, ...) are the
backend entry points used by :mod:`workbench.features._api`; they take a
validated 2-D float64 array in any memory order and return float64 arrays.
A future ``_gpu.py`` exposes the same entry points.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

NAN = np.nan

# --------------------------------------------------------------------------- #
# gather / scatter
# --------------------------------------------------------------------------- #


@njit(cache=True, inline="always")
def _compress(col, idx, v):
    n = 0
    for t in range(col.shape[0]):
        x = col[t]
        if x == x:
            idx[n] = t
            v[n] = x
            n += 1
    return n


@njit(cache=True, inline="always")
def _scatter(o, idx, n, out, j):
    k = 0
    for t in range(out.shape[0]):
        if k < n and idx[k] == t:
            out[t, j] = o[k]
            k += 1
        else:
            out[t, j] = NAN


@njit(cache=True, inline="always")
def _scatter3(o, idx, n, out, j, c):
    k = 0
    for t in range(out.shape[0]):
        if k < n and idx[k] == t:
            out[t, j, c] = o[k]
            k += 1
        else:
            out[t, j, c] = NAN


# --------------------------------------------------------------------------- #
# sequential cores over a compressed series v[0:n] (o receives n values)
# --------------------------------------------------------------------------- #


@njit(cache=True)
def _rolling_moments(v, n, w, mean_o, m2_o):
    """Rolling mean and sum of squared deviations over windows of ``w``.

    Sliding Welford replacement update (``y`` leaves, ``x`` enters), re-synced
    with an exact two-pass computation every ``w`` steps so rounding drift is
    bounded; positions before the first full window get NaN. Non-finite values
    are not expected here (callers pass only valid bars).
    """
    mean = 0.0
    m2 = 0.0
    for i in range(n):
        x = v[i]
        if i < w:
            d = x - mean
            mean += d / (i + 1)
            m2 += d * (x - mean)
        elif (i + 1) % w == 0:
            # exact re-sync over v[i-w+1 .. i]
            s = 0.0
            for k in range(i - w + 1, i + 1):
                s += v[k]
            mean = s / w
            m2 = 0.0
            for k in range(i - w + 1, i + 1):
                d = v[k] - mean
                m2 += d * d
        else:
            y = v[i - w]
            old = mean
            mean = old + (x - y) / w
            m2 += (x - y) * (x - mean + y - old)
        if i >= w - 1:
            mean_o[i] = mean
            m2_o[i] = m2 if m2 > 0.0 else 0.0
        else:
            mean_o[i] = NAN
            m2_o[i] = NAN


@njit(cache=True)
def _ema_core(v, n, span, o):
    """TA-Lib EMA: k = 2/(span+1), seed = SMA of the first ``span`` values."""
    k = 2.0 / (span + 1.0)
    if n < span:
        for i in range(n):
            o[i] = NAN
        return
    s = 0.0
    for i in range(span):
        s += v[i]
        o[i] = NAN
    prev = s / span
    o[span - 1] = prev
    for i in range(span, n):
        prev = (v[i] - prev) * k + prev
        o[i] = prev


@njit(cache=True)
def _rsi_core(v, n, period, o):
    """TA-Lib RSI (Wilder smoothing, seed = mean of the first ``period`` changes)."""
    for i in range(min(n, period)):
        o[i] = NAN
    if n <= period:
        if n > 0:
            o[n - 1] = NAN
        return
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        d = v[i] - v[i - 1]
        if d < 0:
            loss -= d
        else:
            gain += d
    loss /= period
    gain /= period
    tot = gain + loss
    o[period] = 100.0 * (gain / tot) if tot != 0.0 else 0.0
    pm1 = period - 1.0
    for i in range(period + 1, n):
        d = v[i] - v[i - 1]
        loss *= pm1
        gain *= pm1
        if d < 0:
            loss -= d
        else:
            gain += d
        loss /= period
        gain /= period
        tot = gain + loss
        o[i] = 100.0 * (gain / tot) if tot != 0.0 else 0.0


@njit(cache=True)
def _macd_core(v, n, fast, slow, signal, line_o, sig_o, hist_o):
    """TA-Lib MACD with its alignment.

    Slow EMA seeded with the SMA of v[0:slow]; fast EMA seeded with the SMA of
    the ``fast`` values ending at index slow-1; line starts at slow-1; the
    signal EMA is seeded with the SMA of the first ``signal`` line values; all
    three outputs start at slow-1+signal-1.
    """
    first = slow - 1 + signal - 1
    for i in range(min(n, first)):
        line_o[i] = NAN
        sig_o[i] = NAN
        hist_o[i] = NAN
    if n <= first:
        return
    kf = 2.0 / (fast + 1.0)
    ks = 2.0 / (slow + 1.0)
    kg = 2.0 / (signal + 1.0)
    s = 0.0
    for i in range(slow):
        s += v[i]
    es = s / slow
    s = 0.0
    for i in range(slow - fast, slow):
        s += v[i]
    ef = s / fast
    line = ef - es
    ssum = line
    for i in range(slow, first + 1):
        x = v[i]
        ef = (x - ef) * kf + ef
        es = (x - es) * ks + es
        line = ef - es
        ssum += line
    sig = ssum / signal
    line_o[first] = line
    sig_o[first] = sig
    hist_o[first] = line - sig
    for i in range(first + 1, n):
        x = v[i]
        ef = (x - ef) * kf + ef
        es = (x - es) * ks + es
        line = ef - es
        sig = (line - sig) * kg + sig
        line_o[i] = line
        sig_o[i] = sig
        hist_o[i] = line - sig


@njit(cache=True)
def _ewm_var_core(v, n, alpha, minp, o):
    """pandas ``ewm(alpha=alpha, adjust=True).var(bias=False)`` online recursion.

    Port of pandas' ``ewmcov`` (x == y, adjust=True, ignore_na irrelevant as
    ``v`` holds valid observations only). Outputs the variance (not std).
    """
    if n == 0:
        return
    owf = 1.0 - alpha
    new_wt = 1.0
    mean = v[0]
    cov = 0.0
    sum_wt = 1.0
    sum_wt2 = 1.0
    old_wt = 1.0
    o[0] = NAN  # bias=False: undefined with one observation
    for i in range(1, n):
        x = v[i]
        sum_wt *= owf
        sum_wt2 *= owf * owf
        old_wt *= owf
        old_mean = mean
        if mean != x:
            mean = (old_wt * old_mean + new_wt * x) / (old_wt + new_wt)
        cov = (
            old_wt * (cov + (old_mean - mean) * (old_mean - mean))
            + new_wt * ((x - mean) * (x - mean))
        ) / (old_wt + new_wt)
        sum_wt += new_wt
        sum_wt2 += new_wt * new_wt
        old_wt += new_wt
        if i + 1 >= minp:
            num = sum_wt * sum_wt
            den = num - sum_wt2
            o[i] = (num / den) * cov if den > 0.0 else NAN
        else:
            o[i] = NAN


@njit(cache=True)
def _ewm_mean_noadjust(v, n, alpha, o):
    """pandas ``ewm(alpha=alpha, adjust=False).mean()`` seeded with v[0]."""
    if n == 0:
        return
    owf = 1.0 - alpha
    m = v[0]
    o[0] = m
    for i in range(1, n):
        x = v[i]
        if m != x:
            m = (owf * m + alpha * x) / (owf + alpha)
        o[i] = m


# --------------------------------------------------------------------------- #
# parallel drivers: xf is (T, N) Fortran-ordered float64
# --------------------------------------------------------------------------- #


@njit(cache=True, parallel=True)
def returns_nb(xf, log):
    T, N = xf.shape
    out = np.empty((T, N))
    for j in prange(N):
        idx = np.empty(T, np.int64)
        v = np.empty(T)
        o = np.empty(T)
        n = _compress(xf[:, j], idx, v)
        if n > 0:
            o[0] = NAN
        for i in range(1, n):
            o[i] = math.log(v[i] / v[i - 1]) if log else v[i] / v[i - 1] - 1.0
        _scatter(o, idx, n, out, j)
    return out


@njit(cache=True, parallel=True)
def sma_nb(xf, window):
    T, N = xf.shape
    out = np.empty((T, N))
    for j in prange(N):
        idx = np.empty(T, np.int64)
        v = np.empty(T)
        mean = np.empty(T)
        m2 = np.empty(T)
        n = _compress(xf[:, j], idx, v)
        _rolling_moments(v, n, window, mean, m2)
        _scatter(mean, idx, n, out, j)
    return out


@njit(cache=True, parallel=True)
def rolling_std_nb(xf, window, ddof):
    T, N = xf.shape
    out = np.empty((T, N))
    for j in prange(N):
        idx = np.empty(T, np.int64)
        v = np.empty(T)
        mean = np.empty(T)
        m2 = np.empty(T)
        n = _compress(xf[:, j], idx, v)
        _rolling_moments(v, n, window, mean, m2)
        for i in range(n):
            m2[i] = math.sqrt(m2[i] / (window - ddof))
        _scatter(m2, idx, n, out, j)
    return out


@njit(cache=True, parallel=True)
def ema_nb(xf, span):
    T, N = xf.shape
    out = np.empty((T, N))
    for j in prange(N):
        idx = np.empty(T, np.int64)
        v = np.empty(T)
        o = np.empty(T)
        n = _compress(xf[:, j], idx, v)
        _ema_core(v, n, span, o)
        _scatter(o, idx, n, out, j)
    return out


@njit(cache=True, parallel=True)
def rsi_nb(xf, period):
    T, N = xf.shape
    out = np.empty((T, N))
    for j in prange(N):
        idx = np.empty(T, np.int64)
        v = np.empty(T)
        o = np.empty(T)
        n = _compress(xf[:, j], idx, v)
        _rsi_core(v, n, period, o)
        _scatter(o, idx, n, out, j)
    return out


@njit(cache=True, parallel=True)
def macd_nb(xf, fast, slow, signal):
    T, N = xf.shape
    line = np.empty((T, N))
    sig = np.empty((T, N))
    hist = np.empty((T, N))
    for j in prange(N):
        idx = np.empty(T, np.int64)
        v = np.empty(T)
        a = np.empty(T)
        b = np.empty(T)
        c = np.empty(T)
        n = _compress(xf[:, j], idx, v)
        _macd_core(v, n, fast, slow, signal, a, b, c)
        _scatter(a, idx, n, line, j)
        _scatter(b, idx, n, sig, j)
        _scatter(c, idx, n, hist, j)
    return line, sig, hist


@njit(cache=True, parallel=True)
def bollinger_nb(xf, window, k):
    T, N = xf.shape
    upper = np.empty((T, N))
    middle = np.empty((T, N))
    lower = np.empty((T, N))
    for j in prange(N):
        idx = np.empty(T, np.int64)
        v = np.empty(T)
        mean = np.empty(T)
        m2 = np.empty(T)
        n = _compress(xf[:, j], idx, v)
        _rolling_moments(v, n, window, mean, m2)
        # reuse v for the band half-width (v is no longer needed)
        for i in range(n):
            v[i] = k * math.sqrt(m2[i] / window)
        for i in range(n):
            m2[i] = mean[i] - v[i]
            v[i] = mean[i] + v[i]
        _scatter(v, idx, n, upper, j)
        _scatter(mean, idx, n, middle, j)
        _scatter(m2, idx, n, lower, j)
    return upper, middle, lower


@njit(cache=True, parallel=True)
def rolling_volatility_nb(xf, window, scale):
    T, N = xf.shape
    out = np.empty((T, N))
    for j in prange(N):
        idx = np.empty(T, np.int64)
        v = np.empty(T)
        mean = np.empty(T)
        m2 = np.empty(T)
        o = np.empty(T)
        n = _compress(xf[:, j], idx, v)
        if n > 0:
            o[0] = NAN
        if n > 1:
            # log returns r[0:n-1], r[i-1] = log(v[i]/v[i-1])
            r = np.empty(n - 1)
            for i in range(1, n):
                r[i - 1] = math.log(v[i] / v[i - 1])
            _rolling_moments(r, n - 1, window, mean, m2)
            for i in range(1, n):
                o[i] = math.sqrt(m2[i - 1] / (window - 1)) * scale
        _scatter(o, idx, n, out, j)
    return out


@njit(cache=True, parallel=True)
def ewm_volatility_nb(xf, alpha, minp, scale):
    T, N = xf.shape
    out = np.empty((T, N))
    for j in prange(N):
        idx = np.empty(T, np.int64)
        v = np.empty(T)
        o = np.empty(T)
        n = _compress(xf[:, j], idx, v)
        _ewm_var_core(v, n, alpha, minp, o)
        for i in range(n):
            x = o[i]
            o[i] = math.sqrt(x) * scale if x > 0.0 else (0.0 if x == 0.0 else x)
        _scatter(o, idx, n, out, j)
    return out


@njit(cache=True, parallel=True)
def ex_ante_volatility_nb(xf, alpha, minp, scale):
    """Simple returns over valid bars, then pandas EWM std, in one pass per asset."""
    T, N = xf.shape
    out = np.empty((T, N))
    for j in prange(N):
        idx = np.empty(T, np.int64)
        v = np.empty(T)
        o = np.empty(T)
        n = _compress(xf[:, j], idx, v)
        if n > 0:
            o[0] = NAN
        if n > 1:
            r = np.empty(n - 1)
            for i in range(1, n):
                r[i - 1] = v[i] / v[i - 1] - 1.0
            _ewm_var_core(r, n - 1, alpha, minp, v)  # v reused as scratch
            for i in range(1, n):
                x = v[i - 1]
                o[i] = math.sqrt(x) * scale if x > 0.0 else (0.0 if x == 0.0 else x)
        _scatter(o, idx, n, out, j)
    return out


@njit(cache=True, parallel=True)
def normalised_returns_nb(xf, horizons, alpha, minp, out, off):
    """Write r_{t-k,t} / (sigma_daily_t sqrt(k)) into out[:, :, off + h]."""
    T, N = xf.shape
    H = horizons.shape[0]
    for j in prange(N):
        idx = np.empty(T, np.int64)
        v = np.empty(T)
        sig = np.empty(T)
        o = np.empty(T)
        n = _compress(xf[:, j], idx, v)
        if n > 0:
            sig[0] = NAN
        if n > 1:
            r = np.empty(n - 1)
            for i in range(1, n):
                r[i - 1] = v[i] / v[i - 1] - 1.0
            _ewm_var_core(r, n - 1, alpha, minp, o)
            for i in range(1, n):
                x = o[i - 1]
                sig[i] = math.sqrt(x) if x > 0.0 else (0.0 if x == 0.0 else x)
        for h in range(H):
            k = horizons[h]
            sk = math.sqrt(k)
            for i in range(n):
                if i < k:
                    o[i] = NAN
                else:
                    o[i] = (v[i] / v[i - k] - 1.0) / (sig[i] * sk)
            _scatter3(o, idx, n, out, j, off + h)


@njit(cache=True, parallel=True)
def macd_signals_nb(xf, shorts, longs, price_window, signal_window, out, off):
    """Baz et al. (2015) MACD signals for every (short, long) pair into out[:, :, off + p]."""
    T, N = xf.shape
    P = shorts.shape[0]
    for j in prange(N):
        idx = np.empty(T, np.int64)
        v = np.empty(T)
        pmean = np.empty(T)
        pstd = np.empty(T)
        ms = np.empty(T)
        ml = np.empty(T)
        q = np.empty(T)
        qm = np.empty(T)
        q2 = np.empty(T)
        n = _compress(xf[:, j], idx, v)
        _rolling_moments(v, n, price_window, pmean, pstd)
        for i in range(n):
            pstd[i] = math.sqrt(pstd[i] / (price_window - 1))
        start = price_window - 1  # first index with a price std
        for p in range(P):
            _ewm_mean_noadjust(v, n, 1.0 / shorts[p], ms)
            _ewm_mean_noadjust(v, n, 1.0 / longs[p], ml)
            nq = n - start if n > start else 0
            for i in range(nq):
                d = pstd[start + i]
                q[i] = (ms[start + i] - ml[start + i]) / d if d > 0.0 else NAN
            # rolling std of q, NaN-aware: a window with a NaN q gives NaN
            _rolling_moments_nanaware(q, nq, signal_window, qm, q2)
            for i in range(n):
                if i < start:
                    ms[i] = NAN
                else:
                    s2 = q2[i - start]
                    if s2 == s2:
                        sd = math.sqrt(s2 / (signal_window - 1))
                        ms[i] = q[i - start] / sd if sd > 0.0 else NAN
                    else:
                        ms[i] = NAN
            _scatter3(ms, idx, n, out, j, off + p)


@njit(cache=True)
def _rolling_moments_nanaware(v, n, w, mean_o, m2_o):
    """:func:`_rolling_moments` where any NaN inside a window makes that window NaN."""
    # find runs of finite values and apply the plain kernel on each run
    i = 0
    while i < n:
        if not (v[i] == v[i]):
            mean_o[i] = NAN
            m2_o[i] = NAN
            i += 1
            continue
        s = i
        while i < n and v[i] == v[i]:
            i += 1
        _rolling_moments(v[s:i], i - s, w, mean_o[s:i], m2_o[s:i])


# --------------------------------------------------------------------------- #
# backend entry points (plain Python; same names in a future _gpu.py)
# --------------------------------------------------------------------------- #


def _tm(x: np.ndarray) -> np.ndarray:
    """Time-contiguous float64 view/copy of a (T, N) array."""
    return np.asfortranarray(x, dtype=np.float64)


def simple_returns(x):
    return returns_nb(_tm(x), False)


def log_returns(x):
    return returns_nb(_tm(x), True)


def sma(x, window):
    return sma_nb(_tm(x), window)


def ema(x, span):
    return ema_nb(_tm(x), span)


def rolling_std(x, window, ddof):
    return rolling_std_nb(_tm(x), window, ddof)


def rsi(x, period):
    return rsi_nb(_tm(x), period)


def macd(x, fast, slow, signal):
    return macd_nb(_tm(x), fast, slow, signal)


def bollinger(x, window, k):
    return bollinger_nb(_tm(x), window, float(k))


def rolling_volatility(x, window, periods_per_year):
    return rolling_volatility_nb(_tm(x), window, math.sqrt(periods_per_year))


def ewm_volatility(x, span, scale, min_periods):
    return ewm_volatility_nb(_tm(x), 2.0 / (span + 1.0), min_periods, scale)


def ex_ante_volatility(x, span, periods_per_year):
    return ex_ante_volatility_nb(_tm(x), 2.0 / (span + 1.0), span, math.sqrt(periods_per_year))


def normalised_returns(x, horizons, span, out=None, off=0):
    xf = _tm(x)
    T, N = xf.shape
    h = np.asarray(horizons, dtype=np.int64)
    if out is None:
        out = np.empty((T, N, h.shape[0]))
    normalised_returns_nb(xf, h, 2.0 / (span + 1.0), span, out, off)
    return out


def macd_signals(x, pairs, price_window, signal_window, out=None, off=0):
    xf = _tm(x)
    T, N = xf.shape
    pr = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    if out is None:
        out = np.empty((T, N, pr.shape[0]))
    macd_signals_nb(
        xf,
        np.ascontiguousarray(pr[:, 0]),
        np.ascontiguousarray(pr[:, 1]),
        price_window,
        signal_window,
        out,
        off,
    )
    return out


def deep_momentum_features(x, horizons, pairs, span, price_window, signal_window):
    xf = _tm(x)
    T, N = xf.shape
    H = len(horizons)
    out = np.empty((T, N, H + len(pairs)))
    normalised_returns(xf, horizons, span, out=out, off=0)
    macd_signals(xf, pairs, price_window, signal_window, out=out, off=H)
    return out
