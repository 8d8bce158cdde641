"""CPU backend of the trend / bands / volume / volatility catalogue features (private).

Same layout as :mod:`workbench.features._cpu`: each batch driver runs ``prange`` over
blocks of adjacent assets and walks ``t = 0 .. T-1`` inside a block, reading one
contiguous row segment of each C-ordered (T, N) input per step and keeping small
per-asset state arrays (valid-bar counts, ring buffers ``(w, nb)`` of the last ``w``
valid values, running sums). A bar is present for an asset when every input of the
feature is finite there; otherwise the asset's state is left untouched and NaN is
written, so each asset is computed on its own sequence of valid bars.

The per-asset arithmetic lives in ``_*_step`` functions (``inline="always"``) shared
by the batch drivers (``*_nb``) and the streaming drivers (``*_stream_nb``, one call
per bar for all N symbols, used by :mod:`workbench.features._stream_ta`), so a stream
reproduces the batch output step by step.

The plain-Python functions at the bottom are the backend entry points used by
:mod:`workbench.features._ta`; they take validated 2-D float64 arrays.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from workbench.features._cpu import _EXACT_W, _roll_push, _span, _stream

NAN = np.nan
_LN2 = math.log(2.0)
_GK_C = 2.0 * _LN2 - 1.0

# --------------------------------------------------------------------------- #
# shared per-asset state updates
# --------------------------------------------------------------------------- #


@njit(cache=True, error_model="numpy", inline="always")
def _sum_update(i, b, xv, w, s, buf):
    """Rolling sum of the last ``w`` values: push value number ``i`` (0-based) of asset ``b``.

    ``buf`` is a (w, nb) ring (value i at row i % w), ``s[b]`` the running sum. The sum
    is recomputed exactly from the ring (oldest first) whenever the ring wraps
    (i % w == w - 1, including the first full window), and slid (add new, subtract
    old) in between, so rounding drift never spans more than ``w`` updates.
    """
    p = i % w
    if i < w - 1:
        if i == 0:
            s[b] = 0.0
        s[b] += xv
        buf[p, b] = xv
    elif p == w - 1:
        buf[p, b] = xv
        acc = 0.0
        for q in range(w):
            acc += buf[q, b]
        s[b] = acc
    else:
        s[b] += xv - buf[p, b]
        buf[p, b] = xv


@njit(cache=True, error_model="numpy", inline="always")
def _run_update(b, xv, last, run):
    """Length of the current run of identical values (exact constant-window test)."""
    r = run[b] + 1 if xv == last[b] else 1
    run[b] = r
    last[b] = xv
    return r


@njit(cache=True, error_model="numpy", inline="always")
def _mom4_push(i, b, xv, w, K, s1, s2, s3, s4, buf):
    """Rolling sums of (x - K)^p, p = 1..4, over the last ``w`` values of asset ``b``.

    ``K`` is a shift reset to the window mean at every exact re-sync (when the ring
    wraps, including the first full window, or at every value for windows of at most
    ``_EXACT_W`` values); in between, the sums slide (add the
    entering value's powers, subtract the leaving value's). Central moments follow
    from sums of small, mean-centred deviations, never from raw power sums of the
    series. Returns True once the window is full.
    """
    p = i % w
    if i < w - 1:
        if i == 0:
            K[b] = xv
            s1[b] = 0.0
            s2[b] = 0.0
            s3[b] = 0.0
            s4[b] = 0.0
        d = xv - K[b]
        d2 = d * d
        s1[b] += d
        s2[b] += d2
        s3[b] += d2 * d
        s4[b] += d2 * d2
        buf[p, b] = xv
    elif w <= _EXACT_W or p == w - 1:
        buf[p, b] = xv
        kk = K[b]
        acc = 0.0
        for q in range(w):
            acc += buf[q, b] - kk
        kk = kk + acc / w
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        a4 = 0.0
        for q in range(w):
            d = buf[q, b] - kk
            d2 = d * d
            a1 += d
            a2 += d2
            a3 += d2 * d
            a4 += d2 * d2
        K[b] = kk
        s1[b] = a1
        s2[b] = a2
        s3[b] = a3
        s4[b] = a4
    else:
        kk = K[b]
        d = xv - kk
        e = buf[p, b] - kk
        buf[p, b] = xv
        d2 = d * d
        e2 = e * e
        s1[b] += d - e
        s2[b] += d2 - e2
        s3[b] += d2 * d - e2 * e
        s4[b] += d2 * d2 - e2 * e2
    return i >= w - 1


# --------------------------------------------------------------------------- #
# per-asset steps (one valid-or-missing bar of one asset)
# --------------------------------------------------------------------------- #


@njit(cache=True, error_model="numpy", inline="always")
def _roc_step(b, v, k, what, cnt, buf):
    """ROC (what 0) = 100 (v / v_{-k} - 1) or MOM (what 1) = v - v_{-k}; TA-Lib ROC / MOM."""
    if not (v == v):
        return NAN
    i = cnt[b]
    p = i % k
    old = buf[p, b]
    buf[p, b] = v
    cnt[b] = i + 1
    if i < k:
        return NAN
    if what == 1:
        return v - old
    if old == 0.0:
        return NAN
    return ((v / old) - 1.0) * 100.0


@njit(cache=True, error_model="numpy", inline="always")
def _atr_step(b, h, lo, c, period, cnt, prevc, atr):
    """TA-Lib ATR: Wilder average of the true range, seeded with the mean of ``period`` TRs."""
    if not (h == h and lo == lo and c == c):
        return NAN
    i = cnt[b]
    cnt[b] = i + 1
    pc = prevc[b]
    prevc[b] = c
    if i == 0:
        atr[b] = 0.0
        return NAN
    tr = h - lo
    a1 = abs(pc - h)
    a2 = abs(pc - lo)
    if a1 > tr:
        tr = a1
    if a2 > tr:
        tr = a2
    if i < period:
        atr[b] += tr
        return NAN
    if i == period:
        a = (atr[b] + tr) / period
    else:
        a = (atr[b] * (period - 1) + tr) / period
    atr[b] = a
    return a


@njit(cache=True, error_model="numpy", inline="always")
def _obv_step(b, c, v, cnt, prevc, obv):
    """TA-Lib OBV: starts at the first volume, then +/- volume on up/down closes."""
    if not (c == c and v == v):
        return NAN
    if cnt[b] == 0:
        o = v
    else:
        pc = prevc[b]
        o = obv[b]
        if c > pc:
            o += v
        elif c < pc:
            o -= v
    obv[b] = o
    prevc[b] = c
    cnt[b] += 1
    return o


def pp_capacity(w: int) -> int:
    """Ring capacity of the price-position deques: a power of two >= ``w`` (index by mask)."""
    return 1 << max(0, int(w) - 1).bit_length()


@njit(cache=True, error_model="numpy", inline="always")
def _pp_step(b, h, lo, c, w, mask, cnt, mxv, mxi, mxh, mxt, mnv, mni, mnh, mnt):
    """(c - min low) / (max high - min low) over the last ``w`` valid bars.

    Monotonic deques per asset (values ``mxv``/``mnv`` and valid-bar numbers
    ``mxi``/``mni`` in (capacity, nb) rings indexed by ``& mask``, head/tail
    counters): O(1) amortised per bar. A deque never holds more than ``w`` entries.
    """
    if not (h == h and lo == lo and c == c):
        return NAN
    i = cnt[b]
    cnt[b] = i + 1
    old = i - w
    # rolling max of high
    hd = mxh[b]
    tl = mxt[b]
    while tl > hd and mxi[hd & mask, b] <= old:
        hd += 1
    while tl > hd and mxv[(tl - 1) & mask, b] <= h:
        tl -= 1
    mxv[tl & mask, b] = h
    mxi[tl & mask, b] = i
    tl += 1
    mxh[b] = hd
    mxt[b] = tl
    hi = mxv[hd & mask, b]
    # rolling min of low
    hd = mnh[b]
    tl = mnt[b]
    while tl > hd and mni[hd & mask, b] <= old:
        hd += 1
    while tl > hd and mnv[(tl - 1) & mask, b] >= lo:
        tl -= 1
    mnv[tl & mask, b] = lo
    mni[tl & mask, b] = i
    tl += 1
    mnh[b] = hd
    mnt[b] = tl
    low = mnv[hd & mask, b]
    if i < w - 1:
        return NAN
    rng = hi - low
    if rng > 0.0:
        return (c - low) / rng
    return NAN


@njit(cache=True, error_model="numpy", inline="always")
def _bb_step(b, c, w, k, cnt, K, mean, m2, buf, last, run):
    """Bollinger %b and bandwidth from the bands of ``bollinger`` (population std)."""
    if not (c == c):
        return NAN, NAN
    r = _run_update(b, c, last, run)
    if not _roll_push(b, c, w, cnt, K, mean, m2, buf):
        return NAN, NAN
    mid = K[b] + mean[b]
    v2 = m2[b]
    v2 = v2 if v2 > 0.0 else 0.0
    hw = k * math.sqrt(v2 / w)
    up = mid + hw
    lo = mid - hw
    if r >= w:  # constant window: zero-width bands
        return NAN, (0.0 if mid != 0.0 else NAN)
    d = up - lo
    pb = (c - lo) / d if d > 0.0 else NAN
    bw = d / mid if mid != 0.0 else NAN
    return pb, bw


@njit(cache=True, error_model="numpy", inline="always")
def _vwap_step(b, h, lo, c, v, w, cnt, spv, sv, nz, bpv, bv):
    """sum(tp v) / sum(v) over the last ``w`` valid bars, tp = (h + l + c) / 3."""
    if not (h == h and lo == lo and c == c and v == v):
        return NAN
    i = cnt[b]
    cnt[b] = i + 1
    if i >= w:
        nz[b] -= bv[i % w, b] != 0.0
    nz[b] += v != 0.0
    tp = (h + lo + c) / 3.0
    _sum_update(i, b, tp * v, w, spv, bpv)
    _sum_update(i, b, v, w, sv, bv)
    if i < w - 1 or nz[b] == 0:
        return NAN
    return spv[b] / sv[b]


@njit(cache=True, error_model="numpy", inline="always")
def _vz_step(b, v, w, cnt, K, mean, m2, buf, last, run):
    """(v - mean) / std (ddof=1) over the last ``w`` valid volumes, v included."""
    if not (v == v):
        return NAN
    r = _run_update(b, v, last, run)
    if not _roll_push(b, v, w, cnt, K, mean, m2, buf):
        return NAN
    if r >= w:
        return NAN
    s2 = m2[b]
    if not (s2 > 0.0):
        return NAN
    return (v - (K[b] + mean[b])) / math.sqrt(s2 / (w - 1))


@njit(cache=True, error_model="numpy", inline="always")
def _vov_step(b, c, vw, w, scale, last, cnt1, K1, mean1, m21, buf1, cnt2, K2, mean2, m22, buf2):
    """Rolling std (ddof=1) over ``w`` bars of the annualised rolling volatility."""
    if not (c == c):
        return NAN
    p = last[b]
    last[b] = c
    if not (p == p):
        return NAN
    r = math.log(c / p)
    if not _roll_push(b, r, vw, cnt1, K1, mean1, m21, buf1):
        return NAN
    s2 = m21[b] if m21[b] > 0.0 else 0.0
    vol = math.sqrt(s2 / (vw - 1)) * scale  # == rolling_volatility's value
    if not _roll_push(b, vol, w, cnt2, K2, mean2, m22, buf2):
        return NAN
    s2 = m22[b] if m22[b] > 0.0 else 0.0
    return math.sqrt(s2 / (w - 1))


# pandas' rule: a window whose population variance is at most this is treated as constant
# (log returns are dimensionless, so this absolute floor does not depend on price scale)
_VAR_FLOOR = 1e-14


@njit(cache=True, error_model="numpy", inline="always")
def _moments_step(b, c, w, what, last, cnt, K, s1, s2, s3, s4, buf):
    """Rolling skewness (what 0) or excess kurtosis (what 1) of log returns, pandas' G1/G2."""
    if not (c == c):
        return NAN
    p = last[b]
    last[b] = c
    if not (p == p):
        return NAN
    x = math.log(c / p)
    i = cnt[b]
    cnt[b] = i + 1
    if not _mom4_push(i, b, x, w, K, s1, s2, s3, s4, buf):
        return NAN
    n = float(w)
    a = s1[b] / n
    q2 = s2[b] / n
    q3 = s3[b] / n
    aa = a * a
    m2 = q2 - aa
    if not (m2 > _VAR_FLOOR):
        return NAN
    m3 = q3 - 3.0 * a * q2 + 2.0 * aa * a
    if what == 0:
        return math.sqrt(n * (n - 1.0)) * m3 / ((n - 2.0) * m2 * math.sqrt(m2))
    q4 = s4[b] / n
    m4 = q4 - 4.0 * a * q3 + 6.0 * aa * q2 - 3.0 * aa * aa
    g = (n * n - 1.0) * m4 / (m2 * m2) - 3.0 * (n - 1.0) * (n - 1.0)
    return g / ((n - 2.0) * (n - 3.0))


@njit(cache=True, error_model="numpy", inline="always")
def _range_vol_step(b, o, h, lo, c, w, what, scale, cnt, s, buf):
    """Parkinson (what 0) or Garman-Klass (what 1) rolling range volatility."""
    if what == 0:
        if not (h == h and lo == lo):
            return NAN
        u = math.log(h / lo)
        g = u * u
    else:
        if not (o == o and h == h and lo == lo and c == c):
            return NAN
        u = math.log(h / lo)
        z = math.log(c / o)
        g = 0.5 * u * u - _GK_C * z * z
    i = cnt[b]
    cnt[b] = i + 1
    _sum_update(i, b, g, w, s, buf)
    if i < w - 1:
        return NAN
    m = s[b] / w
    if what == 0:
        m = m / (4.0 * _LN2)
        if m < 0.0:
            m = 0.0  # a sum of squares; only rounding can make it negative
    elif m < 0.0:
        return NAN
    return math.sqrt(m * scale)


# --------------------------------------------------------------------------- #
# batch drivers: prange over blocks of adjacent assets, time outer
# --------------------------------------------------------------------------- #


@njit(cache=True, error_model="numpy", parallel=True)
def roc_nb(x, out, nblk, period, what):
    T, N = x.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        nb = j1 - j0
        if nb <= 0:
            continue
        cnt = np.zeros(nb, np.int64)
        buf = np.zeros((period, nb))
        for t in range(T):
            for b in range(nb):
                out[t, j0 + b] = _roc_step(b, x[t, j0 + b], period, what, cnt, buf)


@njit(cache=True, error_model="numpy", parallel=True)
def atr_nb(h, lo, c, out, nblk, period):
    T, N = c.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        nb = j1 - j0
        if nb <= 0:
            continue
        cnt = np.zeros(nb, np.int64)
        prevc = np.zeros(nb)
        atr = np.zeros(nb)
        for t in range(T):
            for b in range(nb):
                j = j0 + b
                out[t, j] = _atr_step(b, h[t, j], lo[t, j], c[t, j], period, cnt, prevc, atr)


@njit(cache=True, error_model="numpy", parallel=True)
def obv_nb(c, v, out, nblk):
    T, N = c.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        nb = j1 - j0
        if nb <= 0:
            continue
        cnt = np.zeros(nb, np.int64)
        prevc = np.zeros(nb)
        obv = np.zeros(nb)
        for t in range(T):
            for b in range(nb):
                j = j0 + b
                out[t, j] = _obv_step(b, c[t, j], v[t, j], cnt, prevc, obv)


@njit(cache=True, error_model="numpy")
def _pp_state(nb, cap):
    return (np.zeros(nb, np.int64), np.zeros((cap, nb)), np.zeros((cap, nb), np.int64),
            np.zeros(nb, np.int64), np.zeros(nb, np.int64), np.zeros((cap, nb)),
            np.zeros((cap, nb), np.int64), np.zeros(nb, np.int64), np.zeros(nb, np.int64))


@njit(cache=True, error_model="numpy")
def _window_state(nb, w):
    """Per-asset sliding-window moments for ``nb`` assets: count, shift, mean, M2, ring."""
    return (np.zeros(nb, np.int64), np.zeros(nb), np.zeros(nb), np.zeros(nb),
            np.zeros((w, nb)))


@njit(cache=True, error_model="numpy", parallel=True)
def price_position_nb(h, lo, c, out, nblk, w, cap):
    T, N = c.shape
    mask = cap - 1
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        nb = j1 - j0
        if nb <= 0:
            continue
        cnt, mxv, mxi, mxh, mxt, mnv, mni, mnh, mnt = _pp_state(nb, cap)
        for t in range(T):
            for b in range(nb):
                j = j0 + b
                out[t, j] = _pp_step(b, h[t, j], lo[t, j], c[t, j], w, mask, cnt, mxv, mxi,
                                     mxh, mxt, mnv, mni, mnh, mnt)


@njit(cache=True, error_model="numpy", parallel=True)
def bollinger_pb_nb(c, pb_o, bw_o, nblk, w, k):
    T, N = c.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        nb = j1 - j0
        if nb <= 0:
            continue
        cnt, K, mean, m2, buf = _window_state(nb, w)
        last = np.full(nb, NAN)
        run = np.zeros(nb, np.int64)
        for t in range(T):
            for b in range(nb):
                j = j0 + b
                pb, bw = _bb_step(b, c[t, j], w, k, cnt, K, mean, m2, buf, last, run)
                pb_o[t, j] = pb
                bw_o[t, j] = bw


@njit(cache=True, error_model="numpy", parallel=True)
def vwap_nb(h, lo, c, v, out, nblk, w):
    T, N = c.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        nb = j1 - j0
        if nb <= 0:
            continue
        cnt = np.zeros(nb, np.int64)
        spv = np.zeros(nb)
        sv = np.zeros(nb)
        nz = np.zeros(nb, np.int64)
        bpv = np.zeros((w, nb))
        bv = np.zeros((w, nb))
        for t in range(T):
            for b in range(nb):
                j = j0 + b
                out[t, j] = _vwap_step(b, h[t, j], lo[t, j], c[t, j], v[t, j], w, cnt, spv, sv,
                                       nz, bpv, bv)


@njit(cache=True, error_model="numpy", parallel=True)
def volume_zscore_nb(v, out, nblk, w):
    T, N = v.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        nb = j1 - j0
        if nb <= 0:
            continue
        cnt, K, mean, m2, buf = _window_state(nb, w)
        last = np.full(nb, NAN)
        run = np.zeros(nb, np.int64)
        for t in range(T):
            for b in range(nb):
                j = j0 + b
                out[t, j] = _vz_step(b, v[t, j], w, cnt, K, mean, m2, buf, last, run)


@njit(cache=True, error_model="numpy", parallel=True)
def vol_of_vol_nb(c, out, nblk, vw, w, scale):
    T, N = c.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        nb = j1 - j0
        if nb <= 0:
            continue
        last = np.full(nb, NAN)
        cnt1, K1, mean1, m21, buf1 = _window_state(nb, vw)
        cnt2, K2, mean2, m22, buf2 = _window_state(nb, w)
        for t in range(T):
            for b in range(nb):
                j = j0 + b
                out[t, j] = _vov_step(b, c[t, j], vw, w, scale, last, cnt1, K1, mean1, m21,
                                      buf1, cnt2, K2, mean2, m22, buf2)


@njit(cache=True, error_model="numpy", parallel=True)
def moments_nb(c, out, nblk, w, what):
    T, N = c.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        nb = j1 - j0
        if nb <= 0:
            continue
        last = np.full(nb, NAN)
        cnt = np.zeros(nb, np.int64)
        K = np.zeros(nb)
        s1 = np.zeros(nb)
        s2 = np.zeros(nb)
        s3 = np.zeros(nb)
        s4 = np.zeros(nb)
        buf = np.zeros((w, nb))
        for t in range(T):
            for b in range(nb):
                j = j0 + b
                out[t, j] = _moments_step(b, c[t, j], w, what, last, cnt, K, s1, s2, s3, s4,
                                          buf)


@njit(cache=True, error_model="numpy", parallel=True)
def range_vol_nb(o, h, lo, c, out, nblk, w, what, scale):
    T, N = h.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        nb = j1 - j0
        if nb <= 0:
            continue
        cnt = np.zeros(nb, np.int64)
        s = np.zeros(nb)
        buf = np.zeros((w, nb))
        for t in range(T):
            for b in range(nb):
                j = j0 + b
                out[t, j] = _range_vol_step(b, o[t, j], h[t, j], lo[t, j], c[t, j], w, what,
                                            scale, cnt, s, buf)


# --------------------------------------------------------------------------- #
# streaming drivers: one bar for all N symbols (state arrays sized N)
# --------------------------------------------------------------------------- #


@njit(cache=True, error_model="numpy")
def roc_stream_nb(x, out, period, what, cnt, buf):
    for b in range(x.shape[0]):
        out[b, 0] = _roc_step(b, x[b], period, what, cnt, buf)


@njit(cache=True, error_model="numpy")
def atr_stream_nb(h, lo, c, out, period, cnt, prevc, atr):
    for b in range(c.shape[0]):
        out[b, 0] = _atr_step(b, h[b], lo[b], c[b], period, cnt, prevc, atr)


@njit(cache=True, error_model="numpy")
def obv_stream_nb(c, v, out, cnt, prevc, obv):
    for b in range(c.shape[0]):
        out[b, 0] = _obv_step(b, c[b], v[b], cnt, prevc, obv)


@njit(cache=True, error_model="numpy")
def price_position_stream_nb(h, lo, c, out, w, mask, cnt, mxv, mxi, mxh, mxt, mnv, mni, mnh,
                             mnt):
    for b in range(c.shape[0]):
        out[b, 0] = _pp_step(b, h[b], lo[b], c[b], w, mask, cnt, mxv, mxi, mxh, mxt, mnv, mni,
                             mnh, mnt)


@njit(cache=True, error_model="numpy")
def bollinger_pb_stream_nb(c, out, which, w, k, cnt, K, mean, m2, buf, last, run):
    for b in range(c.shape[0]):
        pb, bw = _bb_step(b, c[b], w, k, cnt, K, mean, m2, buf, last, run)
        out[b, 0] = pb if which == 0 else bw


@njit(cache=True, error_model="numpy")
def vwap_stream_nb(h, lo, c, v, out, w, cnt, spv, sv, nz, bpv, bv):
    for b in range(c.shape[0]):
        out[b, 0] = _vwap_step(b, h[b], lo[b], c[b], v[b], w, cnt, spv, sv, nz, bpv, bv)


@njit(cache=True, error_model="numpy")
def volume_zscore_stream_nb(v, out, w, cnt, K, mean, m2, buf, last, run):
    for b in range(v.shape[0]):
        out[b, 0] = _vz_step(b, v[b], w, cnt, K, mean, m2, buf, last, run)


@njit(cache=True, error_model="numpy")
def vol_of_vol_stream_nb(c, out, vw, w, scale, last, cnt1, K1, mean1, m21, buf1, cnt2, K2,
                         mean2, m22, buf2):
    for b in range(c.shape[0]):
        out[b, 0] = _vov_step(b, c[b], vw, w, scale, last, cnt1, K1, mean1, m21, buf1, cnt2,
                              K2, mean2, m22, buf2)


@njit(cache=True, error_model="numpy")
def moments_stream_nb(c, out, w, what, last, cnt, K, s1, s2, s3, s4, buf):
    for b in range(c.shape[0]):
        out[b, 0] = _moments_step(b, c[b], w, what, last, cnt, K, s1, s2, s3, s4, buf)


@njit(cache=True, error_model="numpy")
def range_vol_stream_nb(o, h, lo, c, out, w, what, scale, cnt, s, buf):
    for b in range(h.shape[0]):
        out[b, 0] = _range_vol_step(b, o[b], h[b], lo[b], c[b], w, what, scale, cnt, s, buf)


# --------------------------------------------------------------------------- #
# backend entry points (plain Python; same names in a future _gpu.py)
# --------------------------------------------------------------------------- #


def _c(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def roc(x, period):
    x, out, nblk = _stream(x)
    roc_nb(x, out, nblk, period, 0)
    return out


def momentum(x, period):
    x, out, nblk = _stream(x)
    roc_nb(x, out, nblk, period, 1)
    return out


def atr(high, low, close, period):
    c, out, nblk = _stream(close)
    atr_nb(_c(high), _c(low), c, out, nblk, period)
    return out


def obv(close, volume):
    c, out, nblk = _stream(close)
    obv_nb(c, _c(volume), out, nblk)
    return out


def price_position(high, low, close, window):
    c, out, nblk = _stream(close)
    price_position_nb(_c(high), _c(low), c, out, nblk, window, pp_capacity(window))
    return out


def bollinger_pct_b_bandwidth(close, window, k):
    """Fused pass: (%b, bandwidth)."""
    c, pb, bw, nblk = _stream(close, 2)
    bollinger_pb_nb(c, pb, bw, nblk, window, float(k))
    return pb, bw


def rolling_vwap(high, low, close, volume, window):
    c, out, nblk = _stream(close)
    vwap_nb(_c(high), _c(low), c, _c(volume), out, nblk, window)
    return out


def volume_zscore(volume, window):
    v, out, nblk = _stream(volume)
    volume_zscore_nb(v, out, nblk, window)
    return out


def vol_of_vol(close, vol_window, window, periods_per_year):
    c, out, nblk = _stream(close)
    vol_of_vol_nb(c, out, nblk, vol_window, window, math.sqrt(periods_per_year))
    return out


def rolling_skewness(close, window):
    c, out, nblk = _stream(close)
    moments_nb(c, out, nblk, window, 0)
    return out


def rolling_kurtosis(close, window):
    c, out, nblk = _stream(close)
    moments_nb(c, out, nblk, window, 1)
    return out


def parkinson_volatility(high, low, window, periods_per_year):
    h, out, nblk = _stream(high)
    lo = _c(low)
    range_vol_nb(h, h, lo, h, out, nblk, window, 0, float(periods_per_year))
    return out


def garman_klass_volatility(open_, high, low, close, window, periods_per_year):
    c, out, nblk = _stream(close)
    range_vol_nb(_c(open_), _c(high), _c(low), c, out, nblk, window, 1, float(periods_per_year))
    return out
