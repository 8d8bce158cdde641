"""CPU backend: fused numba kernels over time-contiguous memory (private).

Every driver takes a C-ordered (T, N) float64 array ``x``, runs ``prange``
over blocks of adjacent assets and, per block:

1. compresses each asset's valid (non-NaN) bars into a time-contiguous scratch
   row (reading whole cache lines of the (T, N) array: a block-wise transposed
   copy, never a full-size one),
2. runs a sequential core per asset over its compressed series (one pass,
   shared state: e.g. MACD line/signal/hist, Bollinger bands together),
3. scatters the results back to the (T, N) C-ordered output, writing NaN at
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

import numba
import numpy as np
from numba import njit, prange

NAN = np.nan
# windows up to this length are recomputed exactly (two-pass) at every step
_EXACT_W = 16

# --------------------------------------------------------------------------- #
# gather / scatter
# --------------------------------------------------------------------------- #


@njit(cache=True, inline="always")
def _gather(x, j0, nb, v, cnt):
    """Compress assets ``j0 .. j0+nb-1`` of the C-ordered (T, N) ``x``.

    Row ``b`` of ``v`` receives asset ``j0+b``'s valid values, ``cnt[b]`` their
    number. Reading a block of adjacent assets per time step keeps the (T, N)
    reads cache-line sized; the scratch rows are time-contiguous, so this is
    the block-wise transposed copy.
    """
    T = x.shape[0]
    for b in range(nb):
        cnt[b] = 0
    for t in range(T):
        for b in range(nb):
            val = x[t, j0 + b]
            if val == val:
                k = cnt[b]
                v[b, k] = val
                cnt[b] = k + 1


@njit(cache=True, inline="always")
def _scatter(o, x, pos, out, j0, nb):
    """Write row ``b`` of ``o`` to asset ``j0+b`` of (T, N) ``out`` at its valid rows of ``x``."""
    for b in range(nb):
        pos[b] = 0
    for t in range(out.shape[0]):
        for b in range(nb):
            if x[t, j0 + b] == x[t, j0 + b]:
                k = pos[b]
                out[t, j0 + b] = o[b, k]
                pos[b] = k + 1
            else:
                out[t, j0 + b] = NAN


@njit(cache=True, inline="always")
def _scatter3(o, x, pos, out, j0, nb, c):
    """As :func:`_scatter` into channel ``c`` of a (T, N, C) ``out``."""
    for b in range(nb):
        pos[b] = 0
    for t in range(out.shape[0]):
        for b in range(nb):
            if x[t, j0 + b] == x[t, j0 + b]:
                k = pos[b]
                out[t, j0 + b, c] = o[b, k]
                pos[b] = k + 1
            else:
                out[t, j0 + b, c] = NAN


# --------------------------------------------------------------------------- #
# sequential cores over a compressed series v[0:n] (o receives n values)
# --------------------------------------------------------------------------- #


@njit(cache=True)
def _rolling_moments(v, n, w, mean_o, m2_o):
    """Rolling mean and sum of squared deviations over windows of ``w``.

    Sliding Welford replacement update (``y`` leaves, ``x`` enters) on values
    shifted by a reference level ``K``; every ``w`` steps the window is
    recomputed exactly (two-pass) and ``K`` is reset to its mean (windows of at
    most ``_EXACT_W`` bars are recomputed exactly at every step). Rounding drift
    is therefore bounded, and the update works on local deviations rather than
    price levels (no cancellation on high-priced, low-volatility series).
    Positions before the first full window get NaN. ``v`` holds valid bars only.
    """
    if n == 0:
        return
    K = v[0]
    mean = 0.0  # mean of the shifted values v - K
    m2 = 0.0
    for i in range(n):
        x = v[i]
        if i < w:
            xs = x - K
            d = xs - mean
            mean += d / (i + 1)
            m2 += d * (xs - mean)
        elif w <= _EXACT_W or (i + 1) % w == 0:
            # exact re-sync over v[i-w+1 .. i], re-centred on its mean
            s = 0.0
            for k in range(i - w + 1, i + 1):
                s += v[k] - K
            K = K + s / w
            s = 0.0
            for k in range(i - w + 1, i + 1):
                s += v[k] - K
            mean = s / w
            m2 = 0.0
            for k in range(i - w + 1, i + 1):
                d = v[k] - K - mean
                m2 += d * d
        else:
            xs = x - K
            ys = v[i - w] - K
            old = mean
            mean = old + (xs - ys) / w
            m2 += (xs - ys) * (xs - mean + ys - old)
        if i >= w - 1:
            mean_o[i] = K + mean
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
    """Online recursion of pandas ``ewm(alpha=alpha, adjust=True).var(bias=False)``.

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
    """Recursive EWMA as pandas ``ewm(alpha=alpha, adjust=False).mean()``, seeded with v[0]."""
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
def returns_nb(x, blk, log):
    T, N = x.shape
    out = np.empty((T, N))
    for kb in prange((N + blk - 1) // blk):
        j0 = kb * blk
        nb = min(blk, N - j0)
        v = np.empty((nb, T))
        o = np.empty((nb, T))
        cnt = np.empty(nb, np.int64)
        pos = np.empty(nb, np.int64)
        _gather(x, j0, nb, v, cnt)
        for b in range(nb):
            n = cnt[b]
            if n > 0:
                o[b, 0] = NAN
            for i in range(1, n):
                o[b, i] = math.log(v[b, i] / v[b, i - 1]) if log else v[b, i] / v[b, i - 1] - 1.0
        _scatter(o, x, pos, out, j0, nb)
    return out


@njit(cache=True, parallel=True)
def rolling_nb(x, blk, window, ddof, what):
    """what: 0 -> rolling mean (SMA), 1 -> rolling std with ``ddof``."""
    T, N = x.shape
    out = np.empty((T, N))
    for kb in prange((N + blk - 1) // blk):
        j0 = kb * blk
        nb = min(blk, N - j0)
        v = np.empty((nb, T))
        o = np.empty((nb, T))
        cnt = np.empty(nb, np.int64)
        pos = np.empty(nb, np.int64)
        scratch = np.empty(T)
        _gather(x, j0, nb, v, cnt)
        for b in range(nb):
            n = cnt[b]
            if what == 0:
                _rolling_moments(v[b], n, window, o[b], scratch)
            else:
                _rolling_moments(v[b], n, window, scratch, o[b])
                for i in range(n):
                    o[b, i] = math.sqrt(o[b, i] / (window - ddof))
        _scatter(o, x, pos, out, j0, nb)
    return out


@njit(cache=True, parallel=True)
def ema_nb(x, blk, span):
    T, N = x.shape
    out = np.empty((T, N))
    for kb in prange((N + blk - 1) // blk):
        j0 = kb * blk
        nb = min(blk, N - j0)
        v = np.empty((nb, T))
        o = np.empty((nb, T))
        cnt = np.empty(nb, np.int64)
        pos = np.empty(nb, np.int64)
        _gather(x, j0, nb, v, cnt)
        for b in range(nb):
            _ema_core(v[b], cnt[b], span, o[b])
        _scatter(o, x, pos, out, j0, nb)
    return out


@njit(cache=True, parallel=True)
def rsi_nb(x, blk, period):
    T, N = x.shape
    out = np.empty((T, N))
    for kb in prange((N + blk - 1) // blk):
        j0 = kb * blk
        nb = min(blk, N - j0)
        v = np.empty((nb, T))
        o = np.empty((nb, T))
        cnt = np.empty(nb, np.int64)
        pos = np.empty(nb, np.int64)
        _gather(x, j0, nb, v, cnt)
        for b in range(nb):
            _rsi_core(v[b], cnt[b], period, o[b])
        _scatter(o, x, pos, out, j0, nb)
    return out


@njit(cache=True, parallel=True)
def macd_nb(x, blk, fast, slow, signal):
    T, N = x.shape
    line = np.empty((T, N))
    sig = np.empty((T, N))
    hist = np.empty((T, N))
    for kb in prange((N + blk - 1) // blk):
        j0 = kb * blk
        nb = min(blk, N - j0)
        v = np.empty((nb, T))
        a = np.empty((nb, T))
        g = np.empty((nb, T))
        h = np.empty((nb, T))
        cnt = np.empty(nb, np.int64)
        pos = np.empty(nb, np.int64)
        _gather(x, j0, nb, v, cnt)
        for b in range(nb):
            _macd_core(v[b], cnt[b], fast, slow, signal, a[b], g[b], h[b])
        _scatter(a, x, pos, line, j0, nb)
        _scatter(g, x, pos, sig, j0, nb)
        _scatter(h, x, pos, hist, j0, nb)
    return line, sig, hist


@njit(cache=True, parallel=True)
def bollinger_nb(x, blk, window, k):
    T, N = x.shape
    upper = np.empty((T, N))
    middle = np.empty((T, N))
    lower = np.empty((T, N))
    for kb in prange((N + blk - 1) // blk):
        j0 = kb * blk
        nb = min(blk, N - j0)
        v = np.empty((nb, T))
        mean = np.empty((nb, T))
        m2 = np.empty((nb, T))
        cnt = np.empty(nb, np.int64)
        pos = np.empty(nb, np.int64)
        _gather(x, j0, nb, v, cnt)
        for b in range(nb):
            n = cnt[b]
            _rolling_moments(v[b], n, window, mean[b], m2[b])
            # v becomes the upper band, m2 the lower band
            for i in range(n):
                hw = k * math.sqrt(m2[b, i] / window)
                m2[b, i] = mean[b, i] - hw
                v[b, i] = mean[b, i] + hw
        _scatter(v, x, pos, upper, j0, nb)
        _scatter(mean, x, pos, middle, j0, nb)
        _scatter(m2, x, pos, lower, j0, nb)
    return upper, middle, lower


@njit(cache=True, parallel=True)
def rolling_volatility_nb(x, blk, window, scale):
    T, N = x.shape
    out = np.empty((T, N))
    for kb in prange((N + blk - 1) // blk):
        j0 = kb * blk
        nb = min(blk, N - j0)
        v = np.empty((nb, T))
        o = np.empty((nb, T))
        cnt = np.empty(nb, np.int64)
        pos = np.empty(nb, np.int64)
        r = np.empty(T)
        mean = np.empty(T)
        m2 = np.empty(T)
        _gather(x, j0, nb, v, cnt)
        for b in range(nb):
            n = cnt[b]
            if n > 0:
                o[b, 0] = NAN
            if n > 1:
                # log returns r[0:n-1], r[i-1] = log(v[i] / v[i-1])
                for i in range(1, n):
                    r[i - 1] = math.log(v[b, i] / v[b, i - 1])
                _rolling_moments(r, n - 1, window, mean, m2)
                for i in range(1, n):
                    o[b, i] = math.sqrt(m2[i - 1] / (window - 1)) * scale
        _scatter(o, x, pos, out, j0, nb)
    return out


@njit(cache=True, inline="always")
def _std_from_var(x, scale):
    # pandas' zsqrt: sqrt, 0 for non-positive, NaN stays NaN
    if x > 0.0:
        return math.sqrt(x) * scale
    if x == x:
        return 0.0
    return x


@njit(cache=True, parallel=True)
def ewm_volatility_nb(x, blk, alpha, minp, scale, from_prices):
    """EWM std of ``x`` (returns), or of simple returns of ``x`` if ``from_prices``."""
    T, N = x.shape
    out = np.empty((T, N))
    for kb in prange((N + blk - 1) // blk):
        j0 = kb * blk
        nb = min(blk, N - j0)
        v = np.empty((nb, T))
        o = np.empty((nb, T))
        cnt = np.empty(nb, np.int64)
        pos = np.empty(nb, np.int64)
        r = np.empty(T)
        var = np.empty(T)
        _gather(x, j0, nb, v, cnt)
        for b in range(nb):
            n = cnt[b]
            if from_prices:
                if n > 0:
                    o[b, 0] = NAN
                if n > 1:
                    for i in range(1, n):
                        r[i - 1] = v[b, i] / v[b, i - 1] - 1.0
                    _ewm_var_core(r, n - 1, alpha, minp, var)
                    for i in range(1, n):
                        o[b, i] = _std_from_var(var[i - 1], scale)
            else:
                _ewm_var_core(v[b], n, alpha, minp, var)
                for i in range(n):
                    o[b, i] = _std_from_var(var[i], scale)
        _scatter(o, x, pos, out, j0, nb)
    return out


@njit(cache=True, parallel=True)
def normalised_returns_nb(x, blk, horizons, alpha, minp, out, off):
    """Write r_{t-k,t} / (sigma_daily_t sqrt(k)) into out[:, :, off + h]."""
    T, N = x.shape
    H = horizons.shape[0]
    for kb in prange((N + blk - 1) // blk):
        j0 = kb * blk
        nb = min(blk, N - j0)
        v = np.empty((nb, T))
        sig = np.empty((nb, T))
        o = np.empty((nb, T))
        cnt = np.empty(nb, np.int64)
        pos = np.empty(nb, np.int64)
        r = np.empty(T)
        var = np.empty(T)
        _gather(x, j0, nb, v, cnt)
        for b in range(nb):
            n = cnt[b]
            if n > 0:
                sig[b, 0] = NAN
            if n > 1:
                for i in range(1, n):
                    r[i - 1] = v[b, i] / v[b, i - 1] - 1.0
                _ewm_var_core(r, n - 1, alpha, minp, var)
                for i in range(1, n):
                    sig[b, i] = _std_from_var(var[i - 1], 1.0)
        for h in range(H):
            k = horizons[h]
            sk = math.sqrt(k)
            for b in range(nb):
                for i in range(cnt[b]):
                    if i < k:
                        o[b, i] = NAN
                    else:
                        o[b, i] = (v[b, i] / v[b, i - k] - 1.0) / (sig[b, i] * sk)
            _scatter3(o, x, pos, out, j0, nb, off + h)


@njit(cache=True, parallel=True)
def macd_signals_nb(x, blk, shorts, longs, price_window, signal_window, out, off):
    """Baz et al. (2015) MACD signals for every (short, long) pair into out[:, :, off + p]."""
    T, N = x.shape
    P = shorts.shape[0]
    for kb in prange((N + blk - 1) // blk):
        j0 = kb * blk
        nb = min(blk, N - j0)
        v = np.empty((nb, T))
        y = np.empty((nb, T))
        pstd = np.empty((nb, T))
        cnt = np.empty(nb, np.int64)
        pos = np.empty(nb, np.int64)
        pmean = np.empty(T)
        ms = np.empty(T)
        ml = np.empty(T)
        q = np.empty(T)
        qm = np.empty(T)
        q2 = np.empty(T)
        _gather(x, j0, nb, v, cnt)
        start = price_window - 1  # first index with a price std
        for b in range(nb):
            n = cnt[b]
            _rolling_moments(v[b], n, price_window, pmean, pstd[b])
            for i in range(n):
                pstd[b, i] = math.sqrt(pstd[b, i] / (price_window - 1))
        for p in range(P):
            for b in range(nb):
                n = cnt[b]
                _ewm_mean_noadjust(v[b], n, 1.0 / shorts[p], ms)
                _ewm_mean_noadjust(v[b], n, 1.0 / longs[p], ml)
                nq = n - start if n > start else 0
                for i in range(nq):
                    d = pstd[b, start + i]
                    q[i] = (ms[start + i] - ml[start + i]) / d if d > 0.0 else NAN
                # rolling std of q, NaN-aware: a window with a NaN q gives NaN
                _rolling_moments_nanaware(q, nq, signal_window, qm, q2)
                for i in range(n):
                    if i < start:
                        y[b, i] = NAN
                    else:
                        s2 = q2[i - start]
                        if s2 == s2:
                            sd = math.sqrt(s2 / (signal_window - 1))
                            y[b, i] = q[i - start] / sd if sd > 0.0 else NAN
                        else:
                            y[b, i] = NAN
            _scatter3(y, x, pos, out, j0, nb, off + p)


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


def _prep(x: np.ndarray) -> tuple[np.ndarray, int]:
    """C-ordered float64 (T, N) array and the asset block size for the drivers."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    N = x.shape[1]
    # blocks of up to 8 adjacent assets (one 64-byte cache line), but enough blocks to
    # keep every thread busy on narrow panels
    blk = max(1, min(8, -(-N // (4 * numba.get_num_threads()))))
    return x, blk


def simple_returns(x):
    return returns_nb(*_prep(x), False)


def log_returns(x):
    return returns_nb(*_prep(x), True)


def sma(x, window):
    return rolling_nb(*_prep(x), window, 0, 0)


def ema(x, span):
    return ema_nb(*_prep(x), span)


def rolling_std(x, window, ddof):
    return rolling_nb(*_prep(x), window, ddof, 1)


def rsi(x, period):
    return rsi_nb(*_prep(x), period)


def macd(x, fast, slow, signal):
    return macd_nb(*_prep(x), fast, slow, signal)


def bollinger(x, window, k):
    return bollinger_nb(*_prep(x), window, float(k))


def rolling_volatility(x, window, periods_per_year):
    return rolling_volatility_nb(*_prep(x), window, math.sqrt(periods_per_year))


def ewm_volatility(x, span, scale, min_periods):
    return ewm_volatility_nb(*_prep(x), 2.0 / (span + 1.0), min_periods, scale, False)


def ex_ante_volatility(x, span, periods_per_year):
    return ewm_volatility_nb(*_prep(x), 2.0 / (span + 1.0), span, math.sqrt(periods_per_year), True)


def normalised_returns(x, horizons, span, out=None, off=0):
    x, blk = _prep(x)
    T, N = x.shape
    h = np.asarray(horizons, dtype=np.int64)
    if out is None:
        out = np.empty((T, N, h.shape[0]))
    normalised_returns_nb(x, blk, h, 2.0 / (span + 1.0), span, out, off)
    return out


def macd_signals(x, pairs, price_window, signal_window, out=None, off=0):
    x, blk = _prep(x)
    T, N = x.shape
    pr = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    if out is None:
        out = np.empty((T, N, pr.shape[0]))
    shorts = np.ascontiguousarray(pr[:, 0])
    longs = np.ascontiguousarray(pr[:, 1])
    macd_signals_nb(x, blk, shorts, longs, price_window, signal_window, out, off)
    return out


def deep_momentum_features(x, horizons, pairs, span, price_window, signal_window):
    x = np.ascontiguousarray(x, dtype=np.float64)
    T, N = x.shape
    H = len(horizons)
    out = np.empty((T, N, H + len(pairs)))
    normalised_returns(x, horizons, span, out=out, off=0)
    macd_signals(x, pairs, price_window, signal_window, out=out, off=H)
    return out
