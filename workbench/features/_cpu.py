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


@njit(cache=True, error_model="numpy", inline="always")
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


@njit(cache=True, error_model="numpy", inline="always")
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


@njit(cache=True, error_model="numpy")
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
            mean = old + (xs - ys) * (1.0 / w)
            m2 += (xs - ys) * (xs - mean + ys - old)
        if i >= w - 1:
            mean_o[i] = K + mean
            m2_o[i] = m2 if m2 > 0.0 else 0.0
        else:
            mean_o[i] = NAN
            m2_o[i] = NAN


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy", inline="always")
def _std_from_var(x, scale):
    # pandas' zsqrt: sqrt, 0 for non-positive, NaN stays NaN
    if x > 0.0:
        return math.sqrt(x) * scale
    if x == x:
        return 0.0
    return x


# --------------------------------------------------------------------------- #
# streaming drivers: time outer, a contiguous block of assets inner
# --------------------------------------------------------------------------- #
#
# Each driver splits the N assets into ``nblk`` blocks of adjacent columns and
# runs ``prange`` over the blocks. Within a block it walks t = 0 .. T-1 and, for
# each asset of the block, reads x[t, j] (a contiguous row segment of the
# C-ordered (T, N) array), updates that asset's small state (counts of valid
# bars seen, EMA values, Wilder averages, a ring buffer of the last ``w`` valid
# values) and writes out[t, j] (again a contiguous row segment). A NaN input
# leaves the asset's state untouched and writes NaN, so every asset is computed
# on its own sequence of valid bars with no copy of it. The per-asset updates
# are written branch-free (selects) where that lets the inner loop vectorise
# across assets; the arithmetic per asset is the same in every lane, so results
# do not depend on how assets are grouped. Outputs are allocated by numpy by the
# caller (hugepage-backed, unlike numba's allocator) and passed in.


@njit(cache=True, error_model="numpy", inline="always")
def _span(N, nblk, kb):
    bs = (N + nblk - 1) // nblk
    j0 = kb * bs
    j1 = min(N, j0 + bs)
    return j0, j1


@njit(cache=True, error_model="numpy", parallel=True)
def returns_nb(x, out, nblk, log):
    T, N = x.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        nb = j1 - j0
        if nb <= 0:
            continue
        last = np.full(nb, NAN)  # last valid value (NaN before the first one)
        for t in range(T):
            for b in range(nb):
                v = x[t, j0 + b]
                p = last[b]
                if log:
                    r = math.log(v / p)
                else:
                    r = v / p - 1.0
                out[t, j0 + b] = r  # NaN if v or p is NaN
                last[b] = v if v == v else p


@njit(cache=True, error_model="numpy")
def _ema_block(x, out, j0, nb, span):
    T = x.shape[0]
    k = 2.0 / (span + 1.0)
    fspan = float(span)
    cnt = np.zeros(nb)  # valid bars seen
    ssum = np.zeros(nb)  # seed sum
    prev = np.zeros(nb)
    for t in range(T):
        for b in range(nb):
            v = x[t, j0 + b]
            ok = v == v
            c = cnt[b]
            c1 = c + 1.0
            s0 = ssum[b]
            s1 = s0 + v
            pv = prev[b]
            e1 = (v - pv) * k + pv
            e2 = s1 / fspan
            e = e1 if c >= fspan else (e2 if c1 == fspan else pv)
            good = ok & (c1 >= fspan)
            out[t, j0 + b] = e if good else NAN
            cnt[b] = c1 if ok else c
            ssum[b] = s1 if ok else s0
            prev[b] = e if ok else pv


@njit(cache=True, error_model="numpy", parallel=True)
def ema_nb(x, out, nblk, span):
    N = x.shape[1]
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        if j1 > j0:
            _ema_block(x, out, j0, j1 - j0, span)


@njit(cache=True, error_model="numpy")
def _seeding(x, t, j0, nb, cnt, last):
    """Number of assets whose bar t is valid and whose valid-bar count is <= ``last``."""
    s = 0
    for b in range(nb):
        v = x[t, j0 + b]
        s += (v == v) & (cnt[b] <= last)
    return s


@njit(cache=True, error_model="numpy")
def _rsi_block(x, out, j0, nb, period):
    T = x.shape[0]
    fp = float(period)
    pm1 = fp - 1.0
    rfp = 1.0 / fp
    cnt = np.zeros(nb)  # valid bars seen
    last = np.zeros(nb)
    gain = np.zeros(nb)
    loss = np.zeros(nb)
    for t in range(T):
        if _seeding(x, t, j0, nb, cnt, fp) == 0:
            # no asset is in its seed phase at this bar: Wilder updates only
            for b in range(nb):
                v = x[t, j0 + b]
                ok = v == v
                d = v - last[b]
                up = d if d > 0.0 else 0.0
                dn = -d if d < 0.0 else 0.0
                g0 = gain[b]
                l0 = loss[b]
                g = (g0 * pm1 + up) * rfp
                lo = (l0 * pm1 + dn) * rfp
                tot = g + lo
                r = 100.0 * (g / tot) if tot != 0.0 else 0.0
                good = ok & (cnt[b] >= fp)
                out[t, j0 + b] = r if good else NAN
                cnt[b] = cnt[b] + 1.0 if ok else cnt[b]
                last[b] = v if ok else last[b]
                gain[b] = g if ok else g0
                loss[b] = lo if ok else l0
        else:
            for b in range(nb):
                v = x[t, j0 + b]
                ok = v == v
                c = cnt[b]
                d = v - last[b]
                up = d if d > 0.0 else 0.0
                dn = -d if d < 0.0 else 0.0
                g0 = gain[b]
                l0 = loss[b]
                ng = (g0 * pm1 if c > fp else g0) + up
                nl = (l0 * pm1 if c > fp else l0) + dn
                if c >= fp:
                    g = ng * rfp
                    lo = nl * rfp
                elif c > 0.0:
                    g = ng
                    lo = nl
                else:
                    g = g0
                    lo = l0
                tot = g + lo
                r = 100.0 * (g / tot) if tot != 0.0 else 0.0
                good = ok & (c >= fp)
                out[t, j0 + b] = r if good else NAN
                cnt[b] = c + 1.0 if ok else c
                last[b] = v if ok else last[b]
                gain[b] = g if ok else g0
                loss[b] = lo if ok else l0


@njit(cache=True, error_model="numpy", parallel=True)
def rsi_nb(x, out, nblk, period):
    """TA-Lib RSI (Wilder smoothing, seed = mean of the first ``period`` changes)."""
    N = x.shape[1]
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        if j1 > j0:
            _rsi_block(x, out, j0, j1 - j0, period)


@njit(cache=True, error_model="numpy")
def _macd_block(x, line_o, sig_o, hist_o, j0, nb, fast, slow, signal):
    T = x.shape[0]
    kf = 2.0 / (fast + 1.0)
    ks = 2.0 / (slow + 1.0)
    kg = 2.0 / (signal + 1.0)
    ff = float(fast)
    fs = float(slow)
    fg = float(signal)
    s0 = fs - 1.0  # first valid bar with a line
    first = s0 + fg - 1.0  # first valid bar with all outputs
    f0 = fs - ff  # first valid bar in the fast seed
    cnt = np.zeros(nb)
    ssl = np.zeros(nb)  # slow seed sum
    sfa = np.zeros(nb)  # fast seed sum
    ef = np.zeros(nb)
    es = np.zeros(nb)
    lsum = np.zeros(nb)  # signal seed sum
    sg = np.zeros(nb)
    for t in range(T):
        if _seeding(x, t, j0, nb, cnt, first) == 0:
            # no asset is in its seed phase at this bar: plain EMA updates
            for b in range(nb):
                v = x[t, j0 + b]
                ok = v == v
                f1 = ef[b]
                s1 = es[b]
                g1 = sg[b]
                f = (v - f1) * kf + f1
                s = (v - s1) * ks + s1
                line = f - s
                g = (line - g1) * kg + g1
                good = ok & (cnt[b] >= first)
                line_o[t, j0 + b] = line if good else NAN
                sig_o[t, j0 + b] = g if good else NAN
                hist_o[t, j0 + b] = line - g if good else NAN
                cnt[b] = cnt[b] + 1.0 if ok else cnt[b]
                ef[b] = f if ok else f1
                es[b] = s if ok else s1
                sg[b] = g if ok else g1
        else:
            for b in range(nb):
                v = x[t, j0 + b]
                if not (v == v):
                    line_o[t, j0 + b] = NAN
                    sig_o[t, j0 + b] = NAN
                    hist_o[t, j0 + b] = NAN
                    continue
                c = cnt[b]
                if c < fs:
                    ssl[b] += v
                    if c >= f0:
                        sfa[b] += v
                if c > s0:
                    ef[b] = (v - ef[b]) * kf + ef[b]
                    es[b] = (v - es[b]) * ks + es[b]
                elif c == s0:
                    ef[b] = sfa[b] / ff
                    es[b] = ssl[b] / fs
                line = ef[b] - es[b]
                if c >= s0 and c <= first:
                    lsum[b] += line
                if c > first:
                    sg[b] = (line - sg[b]) * kg + sg[b]
                elif c == first:
                    sg[b] = lsum[b] / fg
                if c >= first:
                    g = sg[b]
                    line_o[t, j0 + b] = line
                    sig_o[t, j0 + b] = g
                    hist_o[t, j0 + b] = line - g
                else:
                    line_o[t, j0 + b] = NAN
                    sig_o[t, j0 + b] = NAN
                    hist_o[t, j0 + b] = NAN
                cnt[b] = c + 1.0


@njit(cache=True, error_model="numpy", parallel=True)
def macd_nb(x, line_o, sig_o, hist_o, nblk, fast, slow, signal):
    """TA-Lib MACD with its alignment.

    Slow EMA seeded with the SMA of the first ``slow`` valid values; fast EMA
    seeded with the SMA of the ``fast`` values ending at valid bar slow-1; the
    line starts at slow-1; the signal EMA is seeded with the SMA of the first
    ``signal`` line values; all three outputs start at valid bar
    slow-1+signal-1.
    """
    N = x.shape[1]
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        if j1 > j0:
            _macd_block(x, line_o, sig_o, hist_o, j0, j1 - j0, fast, slow, signal)


@njit(cache=True, error_model="numpy", inline="always")
def _roll_push(b, xv, w, cnt, K, mean, m2, buf):
    """Push valid value ``xv`` into asset ``b``'s rolling window state.

    Same numerics as :func:`_rolling_moments` (sliding Welford on values shifted
    by ``K``, exact two-pass re-sync every ``w`` values, or at every value for
    ``w <= _EXACT_W``). ``buf`` is a (w, nb) ring of the last ``w`` values, value
    number i at row i % w. Returns True once the window is full.
    """
    i = cnt[b]
    p = i % w
    if i < w:
        if i == 0:
            K[b] = xv
            mean[b] = 0.0
            m2[b] = 0.0
        xs = xv - K[b]
        mu = mean[b]
        d = xs - mu
        mu += d / (i + 1)
        m2[b] += d * (xs - mu)
        mean[b] = mu
        buf[p, b] = xv
    else:
        y = buf[p, b]
        buf[p, b] = xv
        if w <= _EXACT_W or p == w - 1:
            # exact re-sync over the window, oldest first, re-centred on its mean
            kk = K[b]
            s = 0.0
            q = p
            for _ in range(w):
                q = q + 1 if q + 1 < w else 0
                s += buf[q, b] - kk
            kk = kk + s / w
            s = 0.0
            for _ in range(w):
                q = q + 1 if q + 1 < w else 0
                s += buf[q, b] - kk
            mu = s / w
            s2 = 0.0
            for _ in range(w):
                q = q + 1 if q + 1 < w else 0
                d = buf[q, b] - kk - mu
                s2 += d * d
            K[b] = kk
            mean[b] = mu
            m2[b] = s2
        else:
            kk = K[b]
            xs = xv - kk
            ys = y - kk
            old = mean[b]
            mu = old + (xs - ys) * (1.0 / w)
            m2[b] += (xs - ys) * (xs - mu + ys - old)
            mean[b] = mu
    cnt[b] = i + 1
    return i >= w - 1


@njit(cache=True, error_model="numpy")
def _roll_block(x, o1, o2, o3, j0, nb, w, what, c):
    """Rolling window kernel over assets ``j0 .. j0+nb-1``.

    what: 0 -> SMA into o1; 1 -> std ``sqrt(m2 / c)`` into o1 (c = window - ddof);
    2 -> Bollinger bands ``mean +/- c * sqrt(m2 / w)`` into o1 (upper), o2
    (middle), o3 (lower).

    While every row seen so far was fully valid or fully missing for the block,
    all its assets share one valid-bar count and ring position, and each row is
    one vectorisable pass over the block (the ring row is contiguous); at the
    first partly missing row the block switches for good to the per-asset path
    (:func:`_roll_push`). Both paths do the same arithmetic per asset.
    """
    T = x.shape[0]
    cnt = np.zeros(nb, np.int64)
    K = np.zeros(nb)
    mean = np.zeros(nb)
    m2 = np.zeros(nb)
    s = np.empty(nb)
    kk = np.empty(nb)
    buf = np.empty((w, nb))
    aligned = True
    ia = 0  # common count of valid bars while aligned
    for t in range(T):
        if aligned:
            nv = 0
            for b in range(nb):
                v = x[t, j0 + b]
                nv += v == v
            if nv == 0:
                for b in range(nb):
                    o1[t, j0 + b] = NAN
                    if what == 2:
                        o2[t, j0 + b] = NAN
                        o3[t, j0 + b] = NAN
                continue
            if nv < nb:
                aligned = False
                for b in range(nb):
                    cnt[b] = ia
        if aligned:
            i = ia
            p = i % w
            if i < w:
                if i == 0:
                    for b in range(nb):
                        K[b] = x[t, j0 + b]
                        mean[b] = 0.0
                        m2[b] = 0.0
                for b in range(nb):
                    xv = x[t, j0 + b]
                    xs = xv - K[b]
                    mu = mean[b]
                    d = xs - mu
                    mu += d / (i + 1)
                    m2[b] += d * (xs - mu)
                    mean[b] = mu
                    buf[p, b] = xv
            elif w <= _EXACT_W or p == w - 1:
                for b in range(nb):
                    buf[p, b] = x[t, j0 + b]
                    s[b] = 0.0
                q = p
                for _ in range(w):
                    q = q + 1 if q + 1 < w else 0
                    for b in range(nb):
                        s[b] += buf[q, b] - K[b]
                for b in range(nb):
                    kk[b] = K[b] + s[b] / w
                    s[b] = 0.0
                for _ in range(w):
                    q = q + 1 if q + 1 < w else 0
                    for b in range(nb):
                        s[b] += buf[q, b] - kk[b]
                for b in range(nb):
                    mean[b] = s[b] / w
                    K[b] = kk[b]
                    m2[b] = 0.0
                for _ in range(w):
                    q = q + 1 if q + 1 < w else 0
                    for b in range(nb):
                        d = buf[q, b] - K[b] - mean[b]
                        m2[b] += d * d
            else:
                for b in range(nb):
                    xv = x[t, j0 + b]
                    y = buf[p, b]
                    buf[p, b] = xv
                    k0 = K[b]
                    xs = xv - k0
                    ys = y - k0
                    old = mean[b]
                    mu = old + (xs - ys) * (1.0 / w)
                    m2[b] += (xs - ys) * (xs - mu + ys - old)
                    mean[b] = mu
            ia = i + 1
            full = i >= w - 1
            for b in range(nb):
                mid = K[b] + mean[b]
                v2 = m2[b]
                v2 = v2 if v2 > 0.0 else 0.0
                if what == 0:
                    o1[t, j0 + b] = mid if full else NAN
                elif what == 1:
                    o1[t, j0 + b] = math.sqrt(v2 * (1.0 / c)) if full else NAN
                else:
                    hw = c * math.sqrt(v2 * (1.0 / w))
                    o1[t, j0 + b] = mid + hw if full else NAN
                    o2[t, j0 + b] = mid if full else NAN
                    o3[t, j0 + b] = mid - hw if full else NAN
        else:
            for b in range(nb):
                v = x[t, j0 + b]
                r1 = NAN
                r2 = NAN
                r3 = NAN
                if v == v:
                    if _roll_push(b, v, w, cnt, K, mean, m2, buf):
                        mid = K[b] + mean[b]
                        v2 = m2[b]
                        v2 = v2 if v2 > 0.0 else 0.0
                        if what == 0:
                            r1 = mid
                        elif what == 1:
                            r1 = math.sqrt(v2 * (1.0 / c))
                        else:
                            hw = c * math.sqrt(v2 * (1.0 / w))
                            r1 = mid + hw
                            r2 = mid
                            r3 = mid - hw
                o1[t, j0 + b] = r1
                if what == 2:
                    o2[t, j0 + b] = r2
                    o3[t, j0 + b] = r3


@njit(cache=True, error_model="numpy", parallel=True)
def rolling_nb(x, out, nblk, window, ddof, what):
    """what: 0 -> rolling mean (SMA), 1 -> rolling std with ``ddof``."""
    N = x.shape[1]
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        if j1 > j0:
            _roll_block(x, out, out, out, j0, j1 - j0, window, what, float(window - ddof))


@njit(cache=True, error_model="numpy", parallel=True)
def bollinger_nb(x, upper, middle, lower, nblk, window, k):
    N = x.shape[1]
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        if j1 > j0:
            _roll_block(x, upper, middle, lower, j0, j1 - j0, window, 2, k)


@njit(cache=True, error_model="numpy", parallel=True)
def rolling_volatility_nb(x, out, nblk, window, scale):
    """Rolling std (ddof=1) of log returns over ``window`` returns, times ``scale``."""
    T, N = x.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        nb = j1 - j0
        if nb <= 0:
            continue
        last = np.full(nb, NAN)
        cnt = np.zeros(nb, np.int64)
        K = np.zeros(nb)
        mean = np.zeros(nb)
        m2 = np.zeros(nb)
        buf = np.empty((window, nb))
        for t in range(T):
            for b in range(nb):
                v = x[t, j0 + b]
                o = NAN
                if v == v:
                    p = last[b]
                    if p == p:
                        r = math.log(v / p)
                        if _roll_push(b, r, window, cnt, K, mean, m2, buf):
                            s2 = m2[b] if m2[b] > 0.0 else 0.0
                            o = math.sqrt(s2 / (window - 1)) * scale
                    last[b] = v
                out[t, j0 + b] = o


@njit(cache=True, error_model="numpy", parallel=True)
def ewm_volatility_nb(x, out, nblk, alpha, minp, scale, from_prices):
    """EWM std of ``x`` (returns), or of simple returns of ``x`` if ``from_prices``.

    Streaming form of :func:`_ewm_var_core` (pandas ``ewm(adjust=True).var()``).
    """
    T, N = x.shape
    owf = 1.0 - alpha
    fminp = float(minp)
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        nb = j1 - j0
        if nb <= 0:
            continue
        last = np.full(nb, NAN)
        cnt = np.zeros(nb)  # observations seen
        mean = np.zeros(nb)
        cov = np.zeros(nb)
        sw = np.zeros(nb)
        sw2 = np.zeros(nb)
        ow = np.zeros(nb)
        for t in range(T):
            for b in range(nb):
                v = x[t, j0 + b]
                if from_prices:
                    ok = v == v and last[b] == last[b]
                    xv = v / last[b] - 1.0
                    if v == v:
                        last[b] = v
                else:
                    ok = v == v
                    xv = v
                o = NAN
                if ok:
                    c = cnt[b]
                    if c == 0.0:
                        mean[b] = xv
                        cov[b] = 0.0
                        sw[b] = 1.0
                        sw2[b] = 1.0
                        ow[b] = 1.0
                    else:
                        s1 = sw[b] * owf
                        s2 = sw2[b] * (owf * owf)
                        w0 = ow[b] * owf
                        om = mean[b]
                        mu = om
                        if mu != xv:
                            mu = (w0 * om + xv) / (w0 + 1.0)
                        cv = (w0 * (cov[b] + (om - mu) * (om - mu)) + ((xv - mu) * (xv - mu))) / (
                            w0 + 1.0
                        )
                        s1 += 1.0
                        s2 += 1.0
                        w0 += 1.0
                        mean[b] = mu
                        cov[b] = cv
                        sw[b] = s1
                        sw2[b] = s2
                        ow[b] = w0
                        if c + 1.0 >= fminp:
                            num = s1 * s1
                            den = num - s2
                            if den > 0.0:
                                o = _std_from_var((num / den) * cv, scale)
                    cnt[b] = c + 1.0
                out[t, j0 + b] = o


# --------------------------------------------------------------------------- #
# per-asset drivers (gather / compute / scatter): deep-momentum inputs
# --------------------------------------------------------------------------- #


@njit(cache=True, error_model="numpy", parallel=True)
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


@njit(cache=True, error_model="numpy", parallel=True)
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


@njit(cache=True, error_model="numpy")
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
    """C-ordered float64 (T, N) array and the asset block size for the per-asset drivers."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    N = x.shape[1]
    # blocks of up to 8 adjacent assets (one 64-byte cache line), but enough blocks to
    # keep every thread busy on narrow panels
    blk = max(1, min(8, -(-N // (4 * numba.get_num_threads()))))
    return x, blk


# streaming drivers: columns per block below which a panel is not split further
_MIN_COLS = 64


def _stream(x: np.ndarray, nout: int = 1) -> tuple:
    """C-ordered float64 ``x``, ``nout`` fresh (T, N) outputs and the number of asset blocks.

    One block of adjacent columns per thread (fewer on narrow panels). Outputs
    come from numpy, whose large allocations are hugepage-advised: first-touch
    page faults are a large part of the cost of a fresh 80 MB output.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    T, N = x.shape
    nblk = max(1, min(numba.get_num_threads(), N // _MIN_COLS))
    outs = tuple(np.empty((T, N)) for _ in range(nout))
    if T * N >= _PREFAULT:
        for o in outs:
            _prefault(o.reshape(-1))
    return (x, *outs, nblk)


# outputs of at least this many elements are pre-faulted in parallel
_PREFAULT = 1 << 20


@njit(cache=True, error_model="numpy", parallel=True)
def _prefault(flat):
    """Touch one element per 4 KiB page of a fresh array, threads on disjoint page ranges.

    The drivers split columns, so both threads would otherwise fault (and the
    kernel zero) the same huge pages of a fresh output one after the other.
    """
    n = flat.shape[0]
    step = 512
    nch = (n + step - 1) // step
    for i in prange(nch):
        flat[i * step] = 0.0


def _run1(kernel, x, *args):
    x, out, nblk = _stream(x)
    kernel(x, out, nblk, *args)
    return out


def simple_returns(x):
    return _run1(returns_nb, x, False)


def log_returns(x):
    return _run1(returns_nb, x, True)


def sma(x, window):
    return _run1(rolling_nb, x, window, 0, 0)


def ema(x, span):
    return _run1(ema_nb, x, span)


def rolling_std(x, window, ddof):
    return _run1(rolling_nb, x, window, ddof, 1)


def rsi(x, period):
    return _run1(rsi_nb, x, period)


def macd(x, fast, slow, signal):
    x, line, sig, hist, nblk = _stream(x, 3)
    macd_nb(x, line, sig, hist, nblk, fast, slow, signal)
    return line, sig, hist


def bollinger(x, window, k):
    x, upper, middle, lower, nblk = _stream(x, 3)
    bollinger_nb(x, upper, middle, lower, nblk, window, float(k))
    return upper, middle, lower


def rolling_volatility(x, window, periods_per_year):
    return _run1(rolling_volatility_nb, x, window, math.sqrt(periods_per_year))


def ewm_volatility(x, span, scale, min_periods):
    return _run1(ewm_volatility_nb, x, 2.0 / (span + 1.0), min_periods, scale, False)


def ex_ante_volatility(x, span, periods_per_year):
    return _run1(ewm_volatility_nb, x, 2.0 / (span + 1.0), span, math.sqrt(periods_per_year), True)


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
