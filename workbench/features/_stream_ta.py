"""Streaming classes of the trend / bands / volume / volatility features.

Each class keeps O(window) state per symbol (a ``(S, N)`` state matrix plus ``(w, N)``
ring buffers) and advances all N symbols by one bar with a single numba call. The step
kernels below mirror the arithmetic of the batch kernels of
:mod:`workbench.features._cpu_ta` operation for operation (same seeding, same rolling
sums and sliding Welford updates, same exact re-sync schedule), so a stream's output at
every bar equals the batch output's row for that bar, bit for bit.

Missing bars: a bar is present for a symbol when every input of the feature is finite
there; otherwise the symbol's state is left untouched and NaN is written.

Per-update cost (the techniques of :mod:`workbench.features._stream_core`): one loop
over the N symbols per kernel call; per-symbol helpers take and return scalars only
(arrays passed to a helper cost reference-count operations at every symbol); the exact
re-sync of a rolling window (O(w), every w values) is deferred to the end of the bar and
run for all the symbols due at once, with the symbols in the inner loop, so that
aligned symbols vectorise; nothing is allocated per update.

numba is imported lazily, when the first stream object is built, so importing this
module (and the registry that names these classes) keeps ``import workbench.features``
light: :func:`_ensure_jit` replaces the plain kernels below with
``numba.njit(cache=True, error_model="numpy")`` dispatchers.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from workbench.features import _stream_core as _core
from workbench.features._api import _int, _positive

__all__ = [
    "ATRStream",
    "BollingerBandwidthStream",
    "BollingerPctBStream",
    "CloseWindowGroup",
    "GarmanKlassStream",
    "KurtosisStream",
    "MomentumStream",
    "OBVStream",
    "ParkinsonStream",
    "PricePositionStream",
    "ROCStream",
    "SkewnessStream",
    "VWAPStream",
    "VolOfVolStream",
    "VolumeZScoreStream",
]

NAN = math.nan
_LN2 = math.log(2.0)
_GK_C = 2.0 * _LN2 - 1.0
# as _cpu._EXACT_W: windows up to this length are re-synced exactly at every value
_EXACT_W = 16
# as _cpu_ta._VAR_FLOOR: a window whose population variance is at most this is constant
_VAR_FLOOR = 1e-14

# Bound from _stream_core by _ensure_jit (its numba dispatchers): Welford slide of one
# value on scalars, the grouped exact re-sync of the windows due at a bar, and the
# outputs of a full window (SMA / std / bands) for CloseWindowGroup.
_slide = None
_resync = None
_rolling_out = None

# --------------------------------------------------------------------------- #
# kernels (plain functions until _ensure_jit turns them into numba dispatchers)
# --------------------------------------------------------------------------- #


def _runs_sum(buf, pend, n, w, st, row):
    """Exact rolling sums ``st[row, j] = sum(buf[0:w, j])`` of the symbols ``pend[:n]``.

    Same arithmetic as the re-sync of ``_cpu_ta._sum_update`` (run when the ring wraps,
    so ring row 0 holds the oldest value): ``acc = 0; acc += buf[q]`` for q = 0 .. w-1.
    ``pend`` is increasing; runs of adjacent symbols are summed with the symbols in the
    inner loop over contiguous memory (1-D slices, so the loops vectorise).
    """
    m = 0
    while m < n:
        j0 = pend[m]
        e = m + 1
        while e < n and pend[e] == pend[e - 1] + 1:
            e += 1
        j1 = j0 + e - m
        s = st[row, j0:j1]
        for t in range(j1 - j0):
            s[t] = 0.0
        for q in range(w):
            b = buf[q, j0:j1]
            for t in range(j1 - j0):
                s[t] += b[t]
        m = e


def _runs_mom4(buf, pend, n, w, st):
    """Exact re-sync of the moment sums (rows 3-7 of ``st``: K, s1..s4) of ``pend[:n]``.

    Same arithmetic as the exact branch of ``_cpu_ta._mom4_push`` (ring rows 0 .. w-1 in
    order): ``K += sum(buf - K) / w``, then the sums of d, d^2, d^3, d^4 with
    ``d = buf - K``. Runs of adjacent symbols go with the symbols in the inner loop
    (1-D slices, so the loops vectorise).
    """
    m = 0
    while m < n:
        j0 = pend[m]
        e = m + 1
        while e < n and pend[e] == pend[e - 1] + 1:
            e += 1
        j1 = j0 + e - m
        nr = j1 - j0
        K = st[3, j0:j1]
        a1 = st[4, j0:j1]
        a2 = st[5, j0:j1]
        a3 = st[6, j0:j1]
        a4 = st[7, j0:j1]
        for t in range(nr):
            a1[t] = 0.0
        for q in range(w):
            b = buf[q, j0:j1]
            for t in range(nr):
                a1[t] += b[t] - K[t]
        for t in range(nr):
            K[t] = K[t] + a1[t] / w
            a1[t] = 0.0
            a2[t] = 0.0
            a3[t] = 0.0
            a4[t] = 0.0
        for q in range(w):
            b = buf[q, j0:j1]
            for t in range(nr):
                d = b[t] - K[t]
                d2 = d * d
                a1[t] += d
                a2[t] += d2
                a3[t] += d2 * d
                a4[t] += d2 * d2
        m = e


def _roc_kern(v, st, buf, k, what, out):
    # st rows: valid count, ring position (ring: the last k valid values)
    for j in range(v.shape[0]):
        x = v[j]
        if not (x == x):
            out[j, 0] = NAN
            continue
        i = st[0, j]
        p = int(st[1, j])
        old = buf[p, j]
        buf[p, j] = x
        st[0, j] = i + 1.0
        st[1, j] = p + 1 if p + 1 < k else 0
        if i < k:
            o = NAN
        elif what == 1:
            o = x - old
        elif old == 0.0:
            o = NAN
        else:
            o = ((x / old) - 1.0) * 100.0
        out[j, 0] = o


def _atr_kern(h, lo, c, st, period, out):
    # st rows: valid count, previous close, ATR (seed sum while warming up)
    for j in range(c.shape[0]):
        hv = h[j]
        lv = lo[j]
        cv = c[j]
        if not (hv == hv and lv == lv and cv == cv):
            out[j, 0] = NAN
            continue
        i = st[0, j]
        st[0, j] = i + 1.0
        pc = st[1, j]
        st[1, j] = cv
        if i == 0.0:
            st[2, j] = 0.0
            out[j, 0] = NAN
            continue
        tr = hv - lv
        a1 = abs(pc - hv)
        a2 = abs(pc - lv)
        if a1 > tr:
            tr = a1
        if a2 > tr:
            tr = a2
        if i < period:
            st[2, j] += tr
            out[j, 0] = NAN
            continue
        if i == period:
            a = (st[2, j] + tr) / period
        else:
            a = (st[2, j] * (period - 1) + tr) / period
        st[2, j] = a
        out[j, 0] = a


def _obv_kern(c, v, st, out):
    # st rows: valid count, previous close, OBV
    for j in range(c.shape[0]):
        cv = c[j]
        vv = v[j]
        if not (cv == cv and vv == vv):
            out[j, 0] = NAN
            continue
        if st[0, j] == 0.0:
            o = vv
        else:
            pc = st[1, j]
            o = st[2, j]
            if cv > pc:
                o += vv
            elif cv < pc:
                o -= vv
        st[2, j] = o
        st[1, j] = cv
        st[0, j] += 1.0
        out[j, 0] = o


def _pp_kern(h, lo, c, ist, mxv, mxi, mnv, mni, w, mask, out):
    # ist rows (int64): valid count, max-deque head, tail, min-deque head, tail; the deques
    # (values and valid-bar numbers) are (capacity, N) rings indexed by & mask, as
    # _cpu_ta._pp_step
    for j in range(c.shape[0]):
        hv = h[j]
        lv = lo[j]
        cv = c[j]
        if not (hv == hv and lv == lv and cv == cv):
            out[j, 0] = NAN
            continue
        i = ist[0, j]
        ist[0, j] = i + 1
        old = i - w
        hd = ist[1, j]
        tl = ist[2, j]
        while tl > hd and mxi[hd & mask, j] <= old:
            hd += 1
        while tl > hd and mxv[(tl - 1) & mask, j] <= hv:
            tl -= 1
        mxv[tl & mask, j] = hv
        mxi[tl & mask, j] = i
        tl += 1
        ist[1, j] = hd
        ist[2, j] = tl
        hi = mxv[hd & mask, j]
        hd = ist[3, j]
        tl = ist[4, j]
        while tl > hd and mni[hd & mask, j] <= old:
            hd += 1
        while tl > hd and mnv[(tl - 1) & mask, j] >= lv:
            tl -= 1
        mnv[tl & mask, j] = lv
        mni[tl & mask, j] = i
        tl += 1
        ist[3, j] = hd
        ist[4, j] = tl
        low = mnv[hd & mask, j]
        if i < w - 1:
            out[j, 0] = NAN
            continue
        rng = hi - low
        out[j, 0] = (cv - low) / rng if rng > 0.0 else NAN


def _bands_out(x, r, K, mean, m2, w, k, what):
    """Bollinger %b (what 0), bandwidth (1) or volume z-score (2) of a full window.

    ``r`` is the length of the current run of identical values (exact constant-window
    test), ``(K, mean, m2)`` the window state; as ``_cpu_ta._bb_step`` / ``_vz_step``.
    """
    mid = K + mean
    if what == 2:
        if r >= w:
            return NAN
        if not (m2 > 0.0):
            return NAN
        return (x - mid) / math.sqrt(m2 / (w - 1))
    v2 = m2 if m2 > 0.0 else 0.0
    hw = k * math.sqrt(v2 / w)
    up = mid + hw
    lo = mid - hw
    if r >= w:  # constant window: zero-width bands
        if what == 0:
            return NAN
        return 0.0 if mid != 0.0 else NAN
    d = up - lo
    if what == 0:
        return (x - lo) / d if d > 0.0 else NAN
    return d / mid if mid != 0.0 else NAN


def _bands_kern(v, st, buf, iscr, fscr, tmp, w, k, what, out):
    # st rows 0-4: rolling window (count, position, K, mean, m2); 5: last value; 6: run
    pend = iscr[0]
    n = 0
    for j in range(v.shape[0]):
        x = v[j]
        o = NAN
        if x == x:
            r = st[6, j] + 1.0 if x == st[5, j] else 1.0
            st[6, j] = r
            st[5, j] = x
            i = int(st[0, j])
            p = int(st[1, j])
            y = buf[p, j]
            buf[p, j] = x
            st[0, j] = i + 1
            st[1, j] = p + 1 if p + 1 < w else 0
            K, mu, m2, s = _slide(i, p, st[2, j], st[3, j], st[4, j], x, y, w)
            st[2, j] = K
            st[3, j] = mu
            st[4, j] = m2
            if s == 1:
                o = _bands_out(x, r, K, mu, m2, w, k, what)
            elif s == 2:
                pend[n] = j
                n += 1
        out[j, 0] = o
    _resync(st, 0, buf, w, pend, n, iscr, fscr, tmp)
    for m in range(n):
        j = pend[m]
        out[j, 0] = _bands_out(v[j], st[6, j], st[2, j], st[3, j], st[4, j], w, k, what)


def _win_val(x, r, K, mean, m2, w, kind, c):
    """Output(s) of member kind ``kind`` of a close window group (scalars only).

    Kinds 0-2: SMA, std sqrt(m2 / c), Bollinger bands (``_core._rolling_out`` with what
    = kind); 3-4: Bollinger %b and bandwidth (:func:`_bands_out` with what = kind - 3,
    ``c`` = k).
    """
    if kind <= 2:
        return _rolling_out(K, mean, m2, w, kind, c)
    return _bands_out(x, r, K, mean, m2, w, c, kind - 3), NAN, NAN


def _win_group_kern(v, st, buf, iscr, fscr, tmp, w, kinds, cs, cols, out):
    # One rolling window of v shared by several outputs (see CloseWindowGroup). st rows
    # 0-4: rolling window (count, position, K, mean, m2); 5: last value; 6: run (as
    # _bands_kern). Member m: kind kinds[m], parameter cs[m], first column cols[m] of out
    # (Bollinger bands, kind 2, fill three columns).
    pend = iscr[0]
    n = 0
    nm = kinds.shape[0]
    for j in range(v.shape[0]):
        x = v[j]
        s = 0
        if x == x:
            r = st[6, j] + 1.0 if x == st[5, j] else 1.0
            st[6, j] = r
            st[5, j] = x
            i = int(st[0, j])
            p = int(st[1, j])
            y = buf[p, j]
            buf[p, j] = x
            st[0, j] = i + 1
            st[1, j] = p + 1 if p + 1 < w else 0
            K, mu, m2, s = _slide(i, p, st[2, j], st[3, j], st[4, j], x, y, w)
            st[2, j] = K
            st[3, j] = mu
            st[4, j] = m2
            if s == 1:
                for m in range(nm):
                    o1, o2, o3 = _win_val(x, r, K, mu, m2, w, kinds[m], cs[m])
                    col = cols[m]
                    out[j, col] = o1
                    if kinds[m] == 2:
                        out[j, col + 1] = o2
                        out[j, col + 2] = o3
            elif s == 2:
                pend[n] = j
                n += 1
        if s == 0:
            for m in range(nm):
                col = cols[m]
                out[j, col] = NAN
                if kinds[m] == 2:
                    out[j, col + 1] = NAN
                    out[j, col + 2] = NAN
    _resync(st, 0, buf, w, pend, n, iscr, fscr, tmp)
    for q in range(n):
        j = pend[q]
        for m in range(nm):
            o1, o2, o3 = _win_val(v[j], st[6, j], st[2, j], st[3, j], st[4, j], w, kinds[m],
                                  cs[m])
            col = cols[m]
            out[j, col] = o1
            if kinds[m] == 2:
                out[j, col + 1] = o2
                out[j, col + 2] = o3


def _vwap_kern(h, lo, c, v, st, bpv, bv, iscr, w, out):
    # st rows: valid count, ring position, sum(tp v), sum(v), number of non-zero volumes
    pend = iscr[0]
    n = 0
    for j in range(c.shape[0]):
        hv = h[j]
        lv = lo[j]
        cv = c[j]
        vv = v[j]
        if not (hv == hv and lv == lv and cv == cv and vv == vv):
            out[j, 0] = NAN
            continue
        i = int(st[0, j])
        st[0, j] = i + 1
        p = int(st[1, j])
        st[1, j] = p + 1 if p + 1 < w else 0
        if i >= w and bv[p, j] != 0.0:
            st[4, j] -= 1.0
        if vv != 0.0:
            st[4, j] += 1.0
        pv = ((hv + lv + cv) / 3.0) * vv
        if i < w - 1:
            if i == 0:
                st[2, j] = 0.0
                st[3, j] = 0.0
            st[2, j] += pv
            st[3, j] += vv
            bpv[p, j] = pv
            bv[p, j] = vv
            out[j, 0] = NAN
            continue
        if p == w - 1:  # the ring wraps: exact sums, below
            bpv[p, j] = pv
            bv[p, j] = vv
            pend[n] = j
            n += 1
            continue
        st[2, j] += pv - bpv[p, j]
        bpv[p, j] = pv
        st[3, j] += vv - bv[p, j]
        bv[p, j] = vv
        out[j, 0] = st[2, j] / st[3, j] if st[4, j] != 0.0 else NAN
    _runs_sum(bpv, pend, n, w, st, 2)
    _runs_sum(bv, pend, n, w, st, 3)
    for m in range(n):
        j = pend[m]
        out[j, 0] = st[2, j] / st[3, j] if st[4, j] != 0.0 else NAN


def _vov_kern(v, st, buf1, buf2, iscr, fscr, tmp, vw, w, scale, out):
    # st row 0: last valid close; rows 1-5: window of log returns; 6-10: window of the
    # volatility (count, position, K, mean, m2 each); 11: this bar's volatility.
    # Stage 1 pushes the returns (symbols due for a re-sync wait for it); stage 2 pushes
    # the volatilities of the symbols whose return window is full.
    pend = iscr[0]
    pq = iscr[2]
    n = 0
    nq = 0
    for j in range(v.shape[0]):
        x = v[j]
        out[j, 0] = NAN
        if not (x == x):
            continue
        lp = st[0, j]
        st[0, j] = x
        if not (lp == lp):
            continue
        r = math.log(x / lp)
        i = int(st[1, j])
        p = int(st[2, j])
        y = buf1[p, j]
        buf1[p, j] = r
        st[1, j] = i + 1
        st[2, j] = p + 1 if p + 1 < vw else 0
        K, mu, m2, s = _slide(i, p, st[3, j], st[4, j], st[5, j], r, y, vw)
        st[3, j] = K
        st[4, j] = mu
        st[5, j] = m2
        if s == 1:
            s2 = m2 if m2 > 0.0 else 0.0
            st[11, j] = math.sqrt(s2 / (vw - 1)) * scale
            pq[nq] = j
            nq += 1
        elif s == 2:
            pend[n] = j
            n += 1
    _resync(st, 1, buf1, vw, pend, n, iscr, fscr, tmp)
    for m in range(n):
        j = pend[m]
        s2 = st[5, j] if st[5, j] > 0.0 else 0.0
        st[11, j] = math.sqrt(s2 / (vw - 1)) * scale
        pq[nq] = j
        nq += 1
    n = 0
    for m in range(nq):
        j = pq[m]
        x = st[11, j]
        i = int(st[6, j])
        p = int(st[7, j])
        y = buf2[p, j]
        buf2[p, j] = x
        st[6, j] = i + 1
        st[7, j] = p + 1 if p + 1 < w else 0
        K, mu, m2, s = _slide(i, p, st[8, j], st[9, j], st[10, j], x, y, w)
        st[8, j] = K
        st[9, j] = mu
        st[10, j] = m2
        if s == 1:
            s2 = m2 if m2 > 0.0 else 0.0
            out[j, 0] = math.sqrt(s2 / (w - 1))
        elif s == 2:
            pend[n] = j
            n += 1
    _resync(st, 6, buf2, w, pend, n, iscr, fscr, tmp)
    for m in range(n):
        j = pend[m]
        s2 = st[10, j] if st[10, j] > 0.0 else 0.0
        out[j, 0] = math.sqrt(s2 / (w - 1))


def _mom_out(s1, s2, s3, s4, w, what):
    """Skewness G1 (what 0) / excess kurtosis G2 (1) as pandas, from shifted power sums."""
    n = float(w)
    a = s1 / n
    q2 = s2 / n
    q3 = s3 / n
    aa = a * a
    m2 = q2 - aa
    if not (m2 > _VAR_FLOOR):
        return NAN
    m3 = q3 - 3.0 * a * q2 + 2.0 * aa * a
    if what == 0:
        return math.sqrt(n * (n - 1.0)) * m3 / ((n - 2.0) * m2 * math.sqrt(m2))
    q4 = s4 / n
    m4 = q4 - 4.0 * a * q3 + 6.0 * aa * q2 - 3.0 * aa * aa
    g = (n * n - 1.0) * m4 / (m2 * m2) - 3.0 * (n - 1.0) * (n - 1.0)
    return g / ((n - 2.0) * (n - 3.0))


def _moments_kern(v, st, buf, iscr, w, what, out):
    # st rows: last valid close, count of returns, ring position, K, s1, s2, s3, s4
    # (sums of (r - K)^p over the window; as _cpu_ta._mom4_push)
    pend = iscr[0]
    n = 0
    for j in range(v.shape[0]):
        x = v[j]
        out[j, 0] = NAN
        if not (x == x):
            continue
        lp = st[0, j]
        st[0, j] = x
        if not (lp == lp):
            continue
        r = math.log(x / lp)
        i = int(st[1, j])
        st[1, j] = i + 1
        p = int(st[2, j])
        st[2, j] = p + 1 if p + 1 < w else 0
        if i < w - 1:
            if i == 0:
                st[3, j] = r
                st[4, j] = 0.0
                st[5, j] = 0.0
                st[6, j] = 0.0
                st[7, j] = 0.0
            d = r - st[3, j]
            d2 = d * d
            st[4, j] += d
            st[5, j] += d2
            st[6, j] += d2 * d
            st[7, j] += d2 * d2
            buf[p, j] = r
        elif w <= _EXACT_W or p == w - 1:
            buf[p, j] = r
            pend[n] = j
            n += 1
        else:
            kk = st[3, j]
            d = r - kk
            e = buf[p, j] - kk
            buf[p, j] = r
            d2 = d * d
            e2 = e * e
            s1 = st[4, j] + (d - e)
            s2 = st[5, j] + (d2 - e2)
            s3 = st[6, j] + (d2 * d - e2 * e)
            s4 = st[7, j] + (d2 * d2 - e2 * e2)
            st[4, j] = s1
            st[5, j] = s2
            st[6, j] = s3
            st[7, j] = s4
            out[j, 0] = _mom_out(s1, s2, s3, s4, w, what)
    _runs_mom4(buf, pend, n, w, st)
    for m in range(n):
        j = pend[m]
        out[j, 0] = _mom_out(st[4, j], st[5, j], st[6, j], st[7, j], w, what)


def _range_out(s, w, what, scale):
    m = s / w
    if what == 0:
        m = m / (4.0 * _LN2)
        if m < 0.0:
            m = 0.0  # a sum of squares; only rounding can make it negative
    elif m < 0.0:
        return NAN
    return math.sqrt(m * scale)


def _range_kern(o, h, lo, c, st, buf, iscr, w, what, scale, out):
    # Parkinson (what 0: inputs h, lo) or Garman-Klass (1: o, h, lo, c) rolling mean of
    # the squared-range terms. st rows: valid count, ring position, rolling sum.
    pend = iscr[0]
    n = 0
    for j in range(h.shape[0]):
        hv = h[j]
        lv = lo[j]
        if what == 0:
            if not (hv == hv and lv == lv):
                out[j, 0] = NAN
                continue
            u = math.log(hv / lv)
            g = u * u
        else:
            ov = o[j]
            cv = c[j]
            if not (ov == ov and hv == hv and lv == lv and cv == cv):
                out[j, 0] = NAN
                continue
            u = math.log(hv / lv)
            z = math.log(cv / ov)
            g = 0.5 * u * u - _GK_C * z * z
        i = int(st[0, j])
        st[0, j] = i + 1
        p = int(st[1, j])
        st[1, j] = p + 1 if p + 1 < w else 0
        if i < w - 1:
            if i == 0:
                st[2, j] = 0.0
            st[2, j] += g
            buf[p, j] = g
            out[j, 0] = NAN
        elif p == w - 1:  # the ring wraps: exact sum, below
            buf[p, j] = g
            pend[n] = j
            n += 1
        else:
            s = st[2, j] + (g - buf[p, j])
            st[2, j] = s
            buf[p, j] = g
            out[j, 0] = _range_out(s, w, what, scale)
    _runs_sum(buf, pend, n, w, st, 2)
    for m in range(n):
        j = pend[m]
        out[j, 0] = _range_out(st[2, j], w, what, scale)


# helpers first: a caller resolves its callees from this namespace when it compiles
_INLINE = ("_bands_out", "_mom_out", "_range_out", "_win_val")
_KERNELS = (*_INLINE, "_runs_sum", "_runs_mom4", "_roc_kern", "_atr_kern", "_obv_kern",
            "_pp_kern", "_bands_kern", "_vwap_kern", "_vov_kern", "_moments_kern",
            "_range_kern", "_win_group_kern")
_jitted = False


def _ensure_jit() -> None:
    """Replace the kernels above by numba dispatchers (once; imports numba)."""
    global _jitted
    if _jitted:
        return
    from numba import njit

    _core._ensure_jit()
    g = globals()
    g["_slide"] = _core._slide
    g["_resync"] = _core._resync
    g["_rolling_out"] = _core._rolling_out
    for name in _KERNELS:
        if name in _INLINE:
            g[name] = njit(cache=True, error_model="numpy", inline="always")(g[name])
        else:
            g[name] = njit(cache=True, error_model="numpy")(g[name])
    _jitted = True


# --------------------------------------------------------------------------- #
# streaming classes
# --------------------------------------------------------------------------- #


class _Base(_core._Stream):
    """Shared plumbing (state allocation, reset, state size): see ``_stream_core._Stream``."""

    inputs: ClassVar[tuple[str, ...]] = ("close",)
    n_outputs: ClassVar[int] = 1

    def __init__(self, n_symbols: int, **params):
        _ensure_jit()
        super().__init__(n_symbols, **params)


class ROCStream(_Base):
    """Streaming :func:`~workbench.features._ta.roc` (ring of the last ``period`` closes)."""

    _what = 0
    _n_state = 2

    def __init__(self, n_symbols: int, period: int = 10):
        self._period = _int(period, "period", 1)
        super().__init__(n_symbols, period=self._period)

    def _rings(self) -> tuple[int, ...]:
        return (self._period,)

    def update(self, x, out):
        _roc_kern(x["close"], self._st, self._bufs[0], self._period, self._what, out)


class MomentumStream(ROCStream):
    """Streaming :func:`~workbench.features._ta.momentum`."""

    _what = 1


class ATRStream(_Base):
    """Streaming :func:`~workbench.features._ta.atr` (previous close and Wilder average)."""

    inputs = ("high", "low", "close")
    _n_state = 3

    def __init__(self, n_symbols: int, period: int = 14):
        self._period = _int(period, "period", 1)
        super().__init__(n_symbols, period=self._period)

    def update(self, x, out):
        _atr_kern(x["high"], x["low"], x["close"], self._st, self._period, out)


class OBVStream(_Base):
    """Streaming :func:`~workbench.features._ta.obv`."""

    inputs = ("close", "volume")
    _n_state = 3

    def __init__(self, n_symbols: int):
        super().__init__(n_symbols)

    def update(self, x, out):
        _obv_kern(x["close"], x["volume"], self._st, out)


def _pp_capacity(w: int) -> int:
    """Ring capacity of the price-position deques: a power of two >= ``w`` (as the batch)."""
    return 1 << max(0, int(w) - 1).bit_length()


class PricePositionStream(_Base):
    """Streaming :func:`~workbench.features._ta.price_position` (monotonic deques)."""

    inputs = ("high", "low", "close")

    def __init__(self, n_symbols: int, window: int = 14):
        self._w = _int(window, "window", 1)
        cap = _pp_capacity(self._w)  # ring size: power of two >= window
        self._mask = cap - 1
        super().__init__(n_symbols, window=self._w)

    def reset(self) -> None:
        super().reset()
        N = self.n_symbols
        cap = self._mask + 1
        self._ist = np.zeros((5, N), np.int64)
        self._deq = (np.zeros((cap, N)), np.zeros((cap, N), np.int64), np.zeros((cap, N)),
                     np.zeros((cap, N), np.int64))

    @property
    def state_nbytes(self) -> int:
        return super().state_nbytes + self._ist.nbytes + sum(a.nbytes for a in self._deq)

    def update(self, x, out):
        d = self._deq
        _pp_kern(x["high"], x["low"], x["close"], self._ist, d[0], d[1], d[2], d[3], self._w,
                 self._mask, out)


class BollingerPctBStream(_Base):
    """Streaming :func:`~workbench.features._ta.bollinger_percent_b`."""

    _what = 0
    _n_state = 7

    def __init__(self, n_symbols: int, window: int = 20, k: float = 2.0):
        self._w = _int(window, "window", 2)
        self._kk = _positive(k, "k")
        super().__init__(n_symbols, window=self._w, k=self._kk)

    def _init_state(self, st: np.ndarray) -> None:
        st[:] = 0.0
        st[5] = np.nan  # no last value: the first one starts a run

    def _rings(self) -> tuple[int, ...]:
        return (self._w,)

    def update(self, x, out):
        _bands_kern(x["close"], self._st, self._bufs[0], self._iscr, self._fscr, self._tmp,
                    self._w, self._kk, self._what, out)

    def _fuse_key(self) -> tuple | None:
        """Same key as every window of close of this length: see :class:`CloseWindowGroup`."""
        return (CloseWindowGroup, self.n_symbols, self._w)

    def _win_kind(self) -> tuple[int, float]:
        return 3 + self._what, self._kk


class BollingerBandwidthStream(BollingerPctBStream):
    """Streaming :func:`~workbench.features._ta.bollinger_bandwidth`."""

    _what = 1


class VWAPStream(_Base):
    """Streaming :func:`~workbench.features._ta.rolling_vwap` (rings of tp*v and v)."""

    inputs = ("high", "low", "close", "volume")
    _n_state = 5

    def __init__(self, n_symbols: int, window: int = 20):
        self._w = _int(window, "window", 1)
        super().__init__(n_symbols, window=self._w)

    def _rings(self) -> tuple[int, ...]:
        return (self._w, self._w)

    def update(self, x, out):
        _vwap_kern(x["high"], x["low"], x["close"], x["volume"], self._st, self._bufs[0],
                   self._bufs[1], self._iscr, self._w, out)


class VolumeZScoreStream(BollingerPctBStream):
    """Streaming :func:`~workbench.features._ta.volume_zscore`."""

    inputs = ("volume",)
    _what = 2

    def __init__(self, n_symbols: int, window: int = 20):
        self._w = _int(window, "window", 2)
        self._kk = 0.0
        _Base.__init__(self, n_symbols, window=self._w)

    def update(self, x, out):
        _bands_kern(x["volume"], self._st, self._bufs[0], self._iscr, self._fscr, self._tmp,
                    self._w, 0.0, 2, out)

    def _fuse_key(self) -> None:
        return None  # a window of volume: nothing to share with the windows of close


class VolOfVolStream(_Base):
    """Streaming :func:`~workbench.features._ta.vol_of_vol` (two chained rolling windows)."""

    _n_state = 12

    def __init__(self, n_symbols: int, vol_window: int = 20, window: int = 60,
                 periods_per_year: float = 252):
        self._vw = _int(vol_window, "vol_window", 2)
        self._w = _int(window, "window", 2)
        ppy = _positive(periods_per_year, "periods_per_year")
        self._scale = math.sqrt(ppy)
        super().__init__(n_symbols, vol_window=self._vw, window=self._w, periods_per_year=ppy)

    def _init_state(self, st: np.ndarray) -> None:
        st[:] = 0.0
        st[0] = np.nan  # no previous close

    def _rings(self) -> tuple[int, ...]:
        return (self._vw, self._w)

    def update(self, x, out):
        _vov_kern(x["close"], self._st, self._bufs[0], self._bufs[1], self._iscr, self._fscr,
                  self._tmp, self._vw, self._w, self._scale, out)


class SkewnessStream(_Base):
    """Streaming :func:`~workbench.features._ta.rolling_skewness`."""

    _what = 0
    _min = 3
    _n_state = 8

    def __init__(self, n_symbols: int, window: int = 60):
        self._w = _int(window, "window", self._min)
        super().__init__(n_symbols, window=self._w)

    def _init_state(self, st: np.ndarray) -> None:
        st[:] = 0.0
        st[0] = np.nan  # no previous close

    def _rings(self) -> tuple[int, ...]:
        return (self._w,)

    def update(self, x, out):
        _moments_kern(x["close"], self._st, self._bufs[0], self._iscr, self._w, self._what,
                      out)


class KurtosisStream(SkewnessStream):
    """Streaming :func:`~workbench.features._ta.rolling_kurtosis`."""

    _what = 1
    _min = 4


class ParkinsonStream(_Base):
    """Streaming :func:`~workbench.features._ta.parkinson_volatility`."""

    inputs: ClassVar[tuple[str, ...]] = ("high", "low")
    _what = 0
    _n_state = 3

    def __init__(self, n_symbols: int, window: int = 20, periods_per_year: float = 252):
        self._w = _int(window, "window", 1)
        self._ppy = _positive(periods_per_year, "periods_per_year")
        super().__init__(n_symbols, window=self._w, periods_per_year=self._ppy)

    def _rings(self) -> tuple[int, ...]:
        return (self._w,)

    def update(self, x, out):
        h = x["high"]
        _range_kern(h, h, x["low"], h, self._st, self._bufs[0], self._iscr, self._w, 0,
                    self._ppy, out)


class GarmanKlassStream(ParkinsonStream):
    """Streaming :func:`~workbench.features._ta.garman_klass_volatility`."""

    inputs: ClassVar[tuple[str, ...]] = ("open", "high", "low", "close")
    _what = 1

    def update(self, x, out):
        _range_kern(x["open"], x["high"], x["low"], x["close"], self._st, self._bufs[0],
                    self._iscr, self._w, 1, self._ppy, out)


class CloseWindowGroup:
    """Streams holding the same rolling window of close, advanced as one.

    SMA, rolling std, Bollinger bands, %b and bandwidth with one window length keep the
    same state (the Welford window of close, its exact re-syncs, and for %b/bandwidth
    the run of identical values), so one state and one kernel call per bar serve them
    all; each output is exactly the member stream's.

    Parameters
    ----------
    members : list of (stream, int)
        Member streams (equal ``_fuse_key()``; each has ``_win_kind() -> (kind, c)``) and
        the first column of each one's outputs in the ``(N, F)`` output matrix passed to
        :meth:`update`.
    """

    def __init__(self, members: list[tuple[Any, int]]):
        _ensure_jit()
        lead = members[0][0]
        key = lead._fuse_key()
        if any(s._fuse_key() != key for s, _ in members):
            raise ValueError("CloseWindowGroup members must share n_symbols and window")
        N = self.n_symbols = key[1]
        w = self.window = key[2]
        self._st = np.zeros((7, N))
        self._st[5] = np.nan  # no last value: the first one starts a run
        self._buf = np.zeros((w, N))
        self._iscr = np.zeros((4, N), dtype=np.int64)
        self._fscr = np.zeros((4, N))
        self._tmp = np.zeros((w, min(N, _core._BLK)))
        kinds = [s._win_kind() for s, _ in members]
        self._kinds = np.array([k for k, _ in kinds], np.int64)
        self._cs = np.array([float(c) for _, c in kinds])
        self._cols = np.array([c for _, c in members], np.int64)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        """Advance one bar; ``out`` is the whole ``(N, F)`` output matrix."""
        _win_group_kern(x["close"], self._st, self._buf, self._iscr, self._fscr, self._tmp,
                        self.window, self._kinds, self._cs, self._cols, out)
