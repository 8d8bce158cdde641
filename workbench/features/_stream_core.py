"""Streaming classes of the first feature set (returns, TA-Lib family, volatility, deep momentum).

Each class implements :class:`workbench.features._stream_base.StreamFeature`: per-symbol
state in a few small arrays (a ``(S, N)`` float64 state matrix, plus ``(w, N)`` ring
buffers for rolling windows) and one numba call per bar that advances all N symbols.
The step kernels mirror the arithmetic of the batch kernels in
:mod:`workbench.features._cpu` operation for operation (same seeding, same sliding
Welford update with the same exact re-sync schedule, same EWM recursions), so a stream's
output at every bar equals the batch output's row for that bar.

Missing bars: a NaN input leaves a symbol's state untouched and writes NaN.

Per-update cost: each step kernel is one loop over the N symbols. Per-symbol helpers take
and return scalars only (an array passed to a helper costs reference-count operations at
every symbol, ~5x the arithmetic). The exact re-sync of a rolling window (O(w), every w
values) is deferred to the end of the bar and run for all symbols due at once, with the
symbols in the inner loop: independent sums interleave instead of each symbol running one
latency-bound chain, and aligned symbols (same ring position) vectorise.

numba is imported lazily, when the first stream object is built, so importing this module
(and the registry that names these classes) keeps ``import workbench.features`` light.
The kernels below are plain functions at import time; :func:`_ensure_jit` replaces them
in this module's namespace with ``numba.njit(cache=True, error_model="numpy")``
dispatchers (the numpy error model gives inf/NaN on a division by zero, as the parallel
batch drivers do, instead of raising).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from workbench.features._api import _int, _positive, _vol_span
from workbench.features._stream_base import StreamFeature

__all__ = [
    "BollingerStream",
    "EMAStream",
    "ExAnteVolatilityStream",
    "LogReturnsStream",
    "MACDSignalGroup",
    "MACDSignalStream",
    "MACDStream",
    "NormalisedReturnStream",
    "NormalisedReturnsGroup",
    "RSIStream",
    "ReturnsStream",
    "RollingStdStream",
    "RollingVolatilityStream",
    "SMAStream",
]

NAN = math.nan
# windows up to this length are recomputed exactly at every step (as _cpu._EXACT_W)
_EXACT_W = 16

# --------------------------------------------------------------------------- #
# kernels (plain functions until _ensure_jit turns them into numba dispatchers)
# --------------------------------------------------------------------------- #


def _slide(i, p, K, mean, m2, xv, y, w):
    """Welford step of a rolling window on scalars; value number ``i`` enters at ring row ``p``.

    ``(K, mean, m2)`` is the window state (values shifted by K), ``y`` the value leaving
    (the ring's old row ``p``; unused while ``i < w``). Same numerics as
    ``_cpu._roll_push`` / ``_cpu._rolling_moments``: Welford while filling, sliding
    replacement update after, and an exact two-pass re-sync every ``w`` values (at every
    value for ``w <= 16``). The re-sync is not done here: the caller stores the value
    and passes the symbol to :func:`_resync`, grouped over all symbols due at this bar.

    Returns ``(K, mean, m2, status)``; status 0 while the window is filling, 1 when it is
    full and up to date, 2 when it is full and the symbol awaits :func:`_resync`.
    (Scalars only: array arguments to a per-symbol helper cost reference-count
    operations at every symbol.)
    """
    if i < w:
        if i == 0:
            K = xv
            mean = 0.0
            m2 = 0.0
        xs = xv - K
        d = xs - mean
        mean += d / (i + 1)
        m2 += d * (xs - mean)
        return K, mean, m2, (1 if i >= w - 1 else 0)
    if w <= _EXACT_W or p == w - 1:
        return K, mean, m2, 2
    xs = xv - K
    ys = y - K
    mu = mean + (xs - ys) * (1.0 / w)
    m2 += (xs - ys) * (xs - mu + ys - mean)
    return K, mu, m2, 1


# symbols per gathered block in the re-sync of symbols that are not in step
_BLK = 64


def _resync_run(buf, k0, j0, n, w, K, mean, m2, acc):
    """Exact re-sync of ``n`` windows stored side by side in ``buf[:, j0 : j0+n]``.

    The oldest value of every window is at row ``k0`` (rows wrap at ``w``); ``K``,
    ``mean``, ``m2`` are the windows' state, 1-D of length ``n``, updated in place. Each
    window's arithmetic and its order are those of ``_cpu._roll_push``: sum of
    ``buf - K`` oldest first, ``K += sum / w``, again with the new K to get the mean,
    then the sum of squared deviations. Windows are in the inner loop over contiguous
    memory (offset-free indices), so the loops vectorise across symbols.
    """
    a = acc[:n]
    for m in range(n):
        a[m] = 0.0
    k = k0
    for _ in range(w):
        row = buf[k, j0 : j0 + n]
        for m in range(n):
            a[m] += row[m] - K[m]
        k = k + 1 if k + 1 < w else 0
    for m in range(n):
        K[m] = K[m] + a[m] / w
        a[m] = 0.0
    for _ in range(w):
        row = buf[k, j0 : j0 + n]
        for m in range(n):
            a[m] += row[m] - K[m]
        k = k + 1 if k + 1 < w else 0
    for m in range(n):
        mean[m] = a[m] / w
        a[m] = 0.0
    for _ in range(w):
        row = buf[k, j0 : j0 + n]
        for m in range(n):
            d = row[m] - K[m] - mean[m]
            a[m] += d * d
        k = k + 1 if k + 1 < w else 0
    for m in range(n):
        m2[m] = a[m]


def _resync(st, r, buf, w, pend, n, iscr, fscr, tmp):
    """Exact re-sync of the windows of symbols ``pend[:n]`` (increasing), see :func:`_slide`.

    State rows ``r .. r+4`` of ``st``: count, ring position, K, mean, m2. Runs of at
    least 8 adjacent symbols at the same ring row (bars aligned across symbols, the usual
    case) are re-synced in place. The other symbols (list in ``iscr[3]``) go in blocks of
    ``tmp.shape[1]``: their windows are gathered oldest-first into the scratch ``tmp``
    (at least w rows), their (K, mean, m2) into ``small``, re-synced there and scattered
    back. Either way :func:`_resync_run` does the arithmetic. ``pend`` is left as it was.
    ``fscr`` rows: 0 accumulators, 1-3 ``small``.
    """
    acc = fscr[0]
    small = fscr[1:4]
    rest = iscr[3]
    nr = 0
    m = 0
    while m < n:
        j0 = pend[m]
        k0 = int(st[r + 1, j0])  # oldest value's row (the newest is just before it)
        e = m + 1
        while e < n and pend[e] == pend[e - 1] + 1 and int(st[r + 1, pend[e]]) == k0:
            e += 1
        if e - m >= 8:
            j1 = j0 + e - m
            _resync_run(buf, k0, j0, e - m, w, st[r + 2, j0:j1], st[r + 3, j0:j1],
                        st[r + 4, j0:j1], acc)
        else:
            for t in range(m, e):
                rest[nr] = pend[t]
                nr += 1
        m = e
    blk = tmp.shape[1]
    for c0 in range(0, nr, blk):
        cn = min(blk, nr - c0)
        for m in range(cn):
            j = rest[c0 + m]
            k = int(st[r + 1, j])
            for t in range(w):
                tmp[t, m] = buf[k, j]
                k = k + 1 if k + 1 < w else 0
            small[0, m] = st[r + 2, j]
        _resync_run(tmp, 0, 0, cn, w, small[0], small[1], small[2], acc)
        for m in range(cn):
            j = rest[c0 + m]
            st[r + 2, j] = small[0, m]
            st[r + 3, j] = small[1, m]
            st[r + 4, j] = small[2, m]


def _returns_step(v, st, log, out):
    # st[0]: last valid price (NaN before the first)
    for j in range(v.shape[0]):
        x = v[j]
        p = st[0, j]
        if log:
            r = math.log(x / p)
        else:
            r = x / p - 1.0
        out[j, 0] = r
        if x == x:
            st[0, j] = x


def _ema_step(v, st, span, out):
    # st rows: valid count, seed sum, ema (as _cpu._ema_block)
    k = 2.0 / (span + 1.0)
    fspan = float(span)
    for j in range(v.shape[0]):
        x = v[j]
        c = st[0, j]
        c1 = c + 1.0
        s1 = st[1, j] + x
        pv = st[2, j]
        if c >= fspan:
            e = (x - pv) * k + pv
        elif c1 == fspan:
            e = s1 / fspan
        else:
            e = pv
        if x == x:
            out[j, 0] = e if c1 >= fspan else NAN
            st[0, j] = c1
            st[1, j] = s1
            st[2, j] = e
        else:
            out[j, 0] = NAN


def _rsi_step(v, st, period, out):
    # st rows: valid count, last price, avg gain, avg loss (as _cpu._rsi_block)
    fp = float(period)
    pm1 = fp - 1.0
    rfp = 1.0 / fp
    for j in range(v.shape[0]):
        x = v[j]
        if not (x == x):
            out[j, 0] = NAN
            continue
        c = st[0, j]
        d = x - st[1, j]
        up = d if d > 0.0 else 0.0
        dn = -d if d < 0.0 else 0.0
        g0 = st[2, j]
        l0 = st[3, j]
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
        if c >= fp:
            tot = g + lo
            out[j, 0] = 100.0 * (g / tot) if tot != 0.0 else 0.0
        else:
            out[j, 0] = NAN
        st[0, j] = c + 1.0
        st[1, j] = x
        st[2, j] = g
        st[3, j] = lo


def _macd_step(v, st, fast, slow, signal, out):
    # st rows: count, slow seed sum, fast seed sum, fast ema, slow ema, signal seed sum,
    # signal ema (as _cpu._macd_block)
    kf = 2.0 / (fast + 1.0)
    ks = 2.0 / (slow + 1.0)
    kg = 2.0 / (signal + 1.0)
    ff = float(fast)
    fs = float(slow)
    fg = float(signal)
    s0 = fs - 1.0
    first = s0 + fg - 1.0
    f0 = fs - ff
    for j in range(v.shape[0]):
        x = v[j]
        if not (x == x):
            out[j, 0] = NAN
            out[j, 1] = NAN
            out[j, 2] = NAN
            continue
        c = st[0, j]
        if c < fs:
            st[1, j] += x
            if c >= f0:
                st[2, j] += x
        if c > s0:
            st[3, j] = (x - st[3, j]) * kf + st[3, j]
            st[4, j] = (x - st[4, j]) * ks + st[4, j]
        elif c == s0:
            st[3, j] = st[2, j] / ff
            st[4, j] = st[1, j] / fs
        line = st[3, j] - st[4, j]
        if c >= s0 and c <= first:
            st[5, j] += line
        if c > first:
            st[6, j] = (line - st[6, j]) * kg + st[6, j]
        elif c == first:
            st[6, j] = st[5, j] / fg
        if c >= first:
            g = st[6, j]
            out[j, 0] = line
            out[j, 1] = g
            out[j, 2] = line - g
        else:
            out[j, 0] = NAN
            out[j, 1] = NAN
            out[j, 2] = NAN
        st[0, j] = c + 1.0


def _rolling_out(K, mean, m2, w, what, c):
    """Outputs of a full window: (SMA | std sqrt(m2 / c) | upper, middle, lower)."""
    mid = K + mean
    v2 = m2 if m2 > 0.0 else 0.0
    if what == 0:
        return mid, NAN, NAN
    if what == 1:
        return math.sqrt(v2 * (1.0 / c)), NAN, NAN
    hw = c * math.sqrt(v2 * (1.0 / w))
    return mid + hw, mid, mid - hw


def _rolling_step(v, st, buf, iscr, fscr, tmp, w, what, c, out):
    """what: 0 -> SMA, 1 -> std sqrt(m2 / c), 2 -> Bollinger mean +/- c sqrt(m2 / w).

    st rows: count, ring position, K, mean, m2.
    """
    pend = iscr[0]
    n = 0
    for j in range(v.shape[0]):
        x = v[j]
        r1 = NAN
        r2 = NAN
        r3 = NAN
        if x == x:
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
                r1, r2, r3 = _rolling_out(K, mu, m2, w, what, c)
            elif s == 2:
                pend[n] = j
                n += 1
        out[j, 0] = r1
        if what == 2:
            out[j, 1] = r2
            out[j, 2] = r3
    _resync(st, 0, buf, w, pend, n, iscr, fscr, tmp)
    for m in range(n):
        j = pend[m]
        r1, r2, r3 = _rolling_out(st[2, j], st[3, j], st[4, j], w, what, c)
        out[j, 0] = r1
        if what == 2:
            out[j, 1] = r2
            out[j, 2] = r3


def _rolling_vol_step(v, st, buf, iscr, fscr, tmp, w, scale, out):
    # st rows 0-4: rolling window of log returns (count, position, K, mean, m2);
    # row 5: last valid price
    pend = iscr[0]
    n = 0
    for j in range(v.shape[0]):
        x = v[j]
        o = NAN
        if x == x:
            lp = st[5, j]
            st[5, j] = x
            if lp == lp:
                r = math.log(x / lp)
                i = int(st[0, j])
                p = int(st[1, j])
                y = buf[p, j]
                buf[p, j] = r
                st[0, j] = i + 1
                st[1, j] = p + 1 if p + 1 < w else 0
                K, mu, m2, s = _slide(i, p, st[2, j], st[3, j], st[4, j], r, y, w)
                st[2, j] = K
                st[3, j] = mu
                st[4, j] = m2
                if s == 1:
                    s2 = m2 if m2 > 0.0 else 0.0
                    o = math.sqrt(s2 / (w - 1)) * scale
                elif s == 2:
                    pend[n] = j
                    n += 1
        out[j, 0] = o
    _resync(st, 0, buf, w, pend, n, iscr, fscr, tmp)
    for m in range(n):
        j = pend[m]
        s2 = st[4, j] if st[4, j] > 0.0 else 0.0
        out[j, 0] = math.sqrt(s2 / (w - 1)) * scale


def _ewm_ret(c, mean, cov, sw, sw2, ow, xv, alpha, fminp, scale):
    """One observation ``xv`` (a simple return) of the EWM variance, on scalars.

    State: observation count, mean, cov, sum of weights, sum of squared weights, old
    weight (pandas ``ewmcov``, adjust=True, bias-corrected; as
    ``_cpu.ewm_volatility_nb``). Returns the new state and the EWM std times ``scale``
    (NaN before ``fminp`` observations).
    """
    o = NAN
    if c == 0.0:
        return 1.0, xv, 0.0, 1.0, 1.0, 1.0, o
    owf = 1.0 - alpha
    s1 = sw * owf
    s2 = sw2 * (owf * owf)
    w0 = ow * owf
    mu = mean
    if mu != xv:
        mu = (w0 * mean + xv) / (w0 + 1.0)
    cv = (w0 * (cov + (mean - mu) * (mean - mu)) + ((xv - mu) * (xv - mu))) / (w0 + 1.0)
    s1 += 1.0
    s2 += 1.0
    w0 += 1.0
    if c + 1.0 >= fminp:
        num = s1 * s1
        den = num - s2
        if den > 0.0:
            var = (num / den) * cv
            if var > 0.0:
                o = math.sqrt(var) * scale
            elif var == var:
                o = 0.0
            else:
                o = var
    return c + 1.0, mu, cv, s1, s2, w0, o


def _ex_ante_step(v, st, alpha, fminp, scale, out):
    # st rows: last valid price, then the EWM state of _ewm_ret
    for j in range(v.shape[0]):
        x = v[j]
        o = NAN
        if x == x:
            lp = st[0, j]
            st[0, j] = x
            if lp == lp:
                c, mu, cv, s1, s2, w0, o = _ewm_ret(st[1, j], st[2, j], st[3, j], st[4, j],
                                                    st[5, j], st[6, j], x / lp - 1.0, alpha,
                                                    fminp, scale)
                st[1, j] = c
                st[2, j] = mu
                st[3, j] = cv
                st[4, j] = s1
                st[5, j] = s2
                st[6, j] = w0
        out[j, 0] = o


def _nret_step(v, st, pbuf, ks, cols, alpha, fminp, out):
    # st row 0: valid price count; row 1: last valid price; rows 2-7: EWM state of daily
    # returns. pbuf: ring of the last M = pbuf.shape[0] valid prices, price number i at row
    # i % M. One state serves the horizons ks (each < M, same span): horizon ks[h] goes
    # to column cols[h] of out.
    m = pbuf.shape[0]
    nh = ks.shape[0]
    for j in range(v.shape[0]):
        x = v[j]
        if not (x == x):
            for h in range(nh):
                out[j, cols[h]] = NAN
            continue
        i = int(st[0, j])
        st[0, j] = i + 1
        lp = st[1, j]
        st[1, j] = x
        sig = NAN
        if lp == lp:
            c, mu, cv, s1, s2, w0, sig = _ewm_ret(st[2, j], st[3, j], st[4, j], st[5, j],
                                                  st[6, j], st[7, j], x / lp - 1.0, alpha,
                                                  fminp, 1.0)
            st[2, j] = c
            st[3, j] = mu
            st[4, j] = cv
            st[5, j] = s1
            st[6, j] = s2
            st[7, j] = w0
        pbuf[i % m, j] = x
        for h in range(nh):
            k = ks[h]
            if i < k:
                out[j, cols[h]] = NAN
            else:
                out[j, cols[h]] = (x / pbuf[(i - k) % m, j] - 1.0) / (sig * math.sqrt(k))


def _q_of(m2, ms, ml, pw):
    """Baz q = (m(S) - m(L)) / std(price, pw, ddof=1); NaN where that std is 0."""
    m2 = m2 if m2 > 0.0 else 0.0
    d = math.sqrt(m2 / (pw - 1))
    return (ms - ml) / d if d > 0.0 else NAN


def _y_of(q, m2, sw):
    """Baz Y = q / std(q, sw, ddof=1); NaN where that std is 0."""
    s2 = m2 if m2 > 0.0 else 0.0
    sd = math.sqrt(s2 / (sw - 1))
    return q / sd if sd > 0.0 else NAN


def _macd_signal_step(v, st, pbuf, qbuf, iscr, fscr, tmp, a_s, a_l, pw, sw, cols, out):
    # st rows 0-4: price window (count, position, K, mean, m2), shared by the H signals
    # (a_s, a_l of length H); signal h uses rows b .. b+7, b = 5 + 8h: 5-9 window of q
    # (ring qbuf[h]); 10: EWMA m(S); 11: EWMA m(L) (pandas ewm(alpha=1/S, adjust=False),
    # seeded with the first valid price, as _cpu._ewm_mean_noadjust); 12: this bar's q.
    # Its output goes to column cols[h] of out.
    # Stage 1 runs over all symbols; symbols whose price window is due for a re-sync wait
    # for it (stage 2), those whose window of q is due wait for that one (stage 3).
    nh = cols.shape[0]
    pend = iscr[0]
    pq = iscr[2]
    n = 0
    nq = 0
    for j in range(v.shape[0]):
        x = v[j]
        for h in range(nh):
            out[j, cols[h]] = NAN
        if not (x == x):
            continue
        i = int(st[0, j])
        for h in range(nh):
            b = 8 * h
            if i == 0:
                st[10 + b, j] = x
                st[11 + b, j] = x
            else:
                ah = a_s[h]
                oh = 1.0 - ah
                ms = st[10 + b, j]
                if ms != x:
                    st[10 + b, j] = (oh * ms + ah * x) / (oh + ah)
                ah = a_l[h]
                oh = 1.0 - ah
                ml = st[11 + b, j]
                if ml != x:
                    st[11 + b, j] = (oh * ml + ah * x) / (oh + ah)
        p = int(st[1, j])
        y = pbuf[p, j]
        pbuf[p, j] = x
        st[0, j] = i + 1
        st[1, j] = p + 1 if p + 1 < pw else 0
        K, mu, m2, s = _slide(i, p, st[2, j], st[3, j], st[4, j], x, y, pw)
        st[2, j] = K
        st[3, j] = mu
        st[4, j] = m2
        if s == 2:
            pend[n] = j
            n += 1
        elif s == 1:
            for h in range(nh):
                b = 8 * h
                st[12 + b, j] = _q_of(m2, st[10 + b, j], st[11 + b, j], pw)
            pq[nq] = j  # q ready: push it below
            nq += 1
    _resync(st, 0, pbuf, pw, pend, n, iscr, fscr, tmp)
    for m in range(n):
        j = pend[m]
        for h in range(nh):
            b = 8 * h
            st[12 + b, j] = _q_of(st[4, j], st[10 + b, j], st[11 + b, j], pw)
        pq[nq] = j
        nq += 1
    # push q of the symbols in pq[:nq]; re-syncs of the window of q are again grouped
    for h in range(nh):
        b = 8 * h
        qb = qbuf[h]
        col = cols[h]
        n = 0
        for m in range(nq):
            j = pq[m]
            q = st[12 + b, j]
            if not (q == q):
                # a NaN q: the batch kernel's rolling std of q restarts after it
                st[5 + b, j] = 0.0
                st[6 + b, j] = 0.0
                continue
            i = int(st[5 + b, j])
            p = int(st[6 + b, j])
            y = qb[p, j]
            qb[p, j] = q
            st[5 + b, j] = i + 1
            st[6 + b, j] = p + 1 if p + 1 < sw else 0
            K, mu, m2, s = _slide(i, p, st[7 + b, j], st[8 + b, j], st[9 + b, j], q, y, sw)
            st[7 + b, j] = K
            st[8 + b, j] = mu
            st[9 + b, j] = m2
            if s == 1:
                out[j, col] = _y_of(q, m2, sw)
            elif s == 2:
                pend[n] = j
                n += 1
        _resync(st, 5 + b, qb, sw, pend, n, iscr, fscr, tmp)
        for m in range(n):
            j = pend[m]
            out[j, col] = _y_of(st[12 + b, j], st[9 + b, j], sw)


# helpers first: a caller resolves its callees from this namespace when it compiles
_INLINE = ("_slide", "_rolling_out", "_ewm_ret", "_q_of", "_y_of")
_KERNELS = (*_INLINE, "_resync_run", "_resync", "_returns_step", "_ema_step", "_rsi_step",
            "_macd_step", "_rolling_step", "_rolling_vol_step", "_ex_ante_step", "_nret_step",
            "_macd_signal_step")
_jitted = False


def _ensure_jit() -> None:
    """Replace the kernels above by numba dispatchers (once; imports numba)."""
    global _jitted
    if _jitted:
        return
    from numba import njit

    g = globals()
    for name in _KERNELS:
        if name in _INLINE:
            g[name] = njit(cache=True, error_model="numpy", inline="always")(g[name])
        else:
            g[name] = njit(cache=True, error_model="numpy")(g[name])
    _jitted = True


# --------------------------------------------------------------------------- #
# streaming classes
# --------------------------------------------------------------------------- #


class _Stream(StreamFeature):
    """Shared plumbing: state allocation, :meth:`reset`, :attr:`state_nbytes`."""

    _n_state: ClassVar[int] = 1

    def __init__(self, n_symbols: int, **params: Any):
        super().__init__(n_symbols, **params)
        _ensure_jit()
        self.reset()

    def _rings(self) -> tuple[int, ...]:
        """Row counts of the (rows, N) ring buffers this feature needs."""
        return ()

    def _init_state(self, st: np.ndarray) -> None:
        st[:] = 0.0

    def reset(self) -> None:
        """Forget all history (state as after construction)."""
        N = self.n_symbols
        self._st = np.empty((self._n_state, N))
        self._init_state(self._st)
        self._bufs = tuple(np.zeros((w, N)) for w in self._rings())
        # scratch of the grouped re-syncs (see _resync): symbol lists, accumulators and
        # small state, gathered windows
        self._iscr = np.zeros((4, N), dtype=np.int64)
        self._fscr = np.zeros((4, N))
        self._tmp = np.zeros((max(self._rings(), default=1), min(N, _BLK)))

    @property
    def state_nbytes(self) -> int:
        """Bytes of state held (constant over the stream's life)."""
        return int(self._st.nbytes + sum(b.nbytes for b in self._bufs) + self._iscr.nbytes
                   + self._fscr.nbytes + self._tmp.nbytes)


class ReturnsStream(_Stream):
    """Simple return ``p_t / p_{t'} - 1`` over each symbol's previous valid bar."""

    _log: ClassVar[bool] = False

    def __init__(self, n_symbols: int):
        super().__init__(n_symbols)

    def _init_state(self, st: np.ndarray) -> None:
        st[:] = NAN

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        _returns_step(x["close"], self._st, self._log, out)


class LogReturnsStream(ReturnsStream):
    """Log return ``ln(p_t / p_{t'})`` over each symbol's previous valid bar."""

    _log = True


class SMAStream(_Stream):
    """Simple moving average over the last ``window`` valid bars (stream of :func:`sma`)."""

    _n_state = 5

    def __init__(self, n_symbols: int, window: int = 20):
        self.window = _int(window, "window", 1)
        super().__init__(n_symbols, window=self.window)

    def _rings(self) -> tuple[int, ...]:
        return (self.window,)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        _rolling_step(x["close"], self._st, self._bufs[0], self._iscr, self._fscr, self._tmp,
                      self.window, 0, 1.0, out)

    def _fuse_key(self) -> tuple:
        """Same key as every window of close of this length (``_stream_ta.CloseWindowGroup``)."""
        from workbench.features._stream_ta import CloseWindowGroup

        return (CloseWindowGroup, self.n_symbols, self.window)

    def _win_kind(self) -> tuple[int, float]:
        return 0, 1.0


class RollingStdStream(_Stream):
    """Rolling standard deviation over the last ``window`` valid bars (of :func:`rolling_std`)."""

    _n_state = 5

    def __init__(self, n_symbols: int, window: int = 20, ddof: int = 0):
        self.window = _int(window, "window", 2)
        self.ddof = _int(ddof, "ddof", 0)
        if self.ddof >= self.window:
            raise ValueError(f"ddof must be an int in [0, window={self.window}), got {ddof}")
        super().__init__(n_symbols, window=self.window, ddof=self.ddof)

    def _rings(self) -> tuple[int, ...]:
        return (self.window,)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        _rolling_step(x["close"], self._st, self._bufs[0], self._iscr, self._fscr, self._tmp,
                      self.window, 1, float(self.window - self.ddof), out)

    def _fuse_key(self) -> tuple:
        """Same key as every window of close of this length (``_stream_ta.CloseWindowGroup``)."""
        from workbench.features._stream_ta import CloseWindowGroup

        return (CloseWindowGroup, self.n_symbols, self.window)

    def _win_kind(self) -> tuple[int, float]:
        return 1, float(self.window - self.ddof)


class BollingerStream(_Stream):
    """Bollinger upper/middle/lower bands (stream of :func:`bollinger`)."""

    _n_state = 5
    n_outputs = 3

    def __init__(self, n_symbols: int, window: int = 20, k: float = 2.0):
        self.window = _int(window, "window", 2)
        self.k = _positive(k, "k")
        super().__init__(n_symbols, window=self.window, k=self.k)

    def _rings(self) -> tuple[int, ...]:
        return (self.window,)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        _rolling_step(x["close"], self._st, self._bufs[0], self._iscr, self._fscr, self._tmp,
                      self.window, 2, self.k, out)

    def _fuse_key(self) -> tuple:
        """Same key as every window of close of this length (``_stream_ta.CloseWindowGroup``)."""
        from workbench.features._stream_ta import CloseWindowGroup

        return (CloseWindowGroup, self.n_symbols, self.window)

    def _win_kind(self) -> tuple[int, float]:
        return 2, self.k


class EMAStream(_Stream):
    """TA-Lib EMA seeded with the SMA of the first ``span`` valid values (of :func:`ema`)."""

    _n_state = 3

    def __init__(self, n_symbols: int, span: int = 20):
        self.span = _int(span, "span", 1)
        super().__init__(n_symbols, span=self.span)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        _ema_step(x["close"], self._st, self.span, out)


class RSIStream(_Stream):
    """Wilder RSI, TA-Lib seeding (stream of :func:`rsi`)."""

    _n_state = 4

    def __init__(self, n_symbols: int, period: int = 14):
        self.period = _int(period, "period", 1)
        super().__init__(n_symbols, period=self.period)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        _rsi_step(x["close"], self._st, self.period, out)


class MACDStream(_Stream):
    """MACD line/signal/histogram with TA-Lib alignment (stream of :func:`macd`)."""

    _n_state = 7
    n_outputs = 3

    def __init__(self, n_symbols: int, fast: int = 12, slow: int = 26, signal: int = 9):
        self.fast = _int(fast, "fast", 1)
        self.slow = _int(slow, "slow", 2)
        self.signal = _int(signal, "signal", 1)
        if self.fast >= self.slow:
            raise ValueError(f"fast must be < slow={self.slow}, got {self.fast}")
        super().__init__(n_symbols, fast=self.fast, slow=self.slow, signal=self.signal)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        _macd_step(x["close"], self._st, self.fast, self.slow, self.signal, out)


class RollingVolatilityStream(_Stream):
    """Annualised rolling std (ddof=1) of log returns (stream of :func:`rolling_volatility`)."""

    _n_state = 6

    def __init__(self, n_symbols: int, window: int = 20, periods_per_year: float = 252):
        self.window = _int(window, "window", 2)
        self.periods_per_year = _positive(periods_per_year, "periods_per_year")
        self._scale = math.sqrt(self.periods_per_year)
        super().__init__(n_symbols, window=self.window, periods_per_year=self.periods_per_year)

    def _init_state(self, st: np.ndarray) -> None:
        st[:] = 0.0
        st[5] = NAN  # no previous price

    def _rings(self) -> tuple[int, ...]:
        return (self.window,)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        _rolling_vol_step(x["close"], self._st, self._bufs[0], self._iscr, self._fscr,
                          self._tmp, self.window, self._scale, out)


class ExAnteVolatilityStream(_Stream):
    """Annualised EWM std of simple returns (stream of :func:`ex_ante_volatility`)."""

    _n_state = 7

    def __init__(self, n_symbols: int, span: int = 60, periods_per_year: float = 252):
        self.span = _vol_span(span)
        self.periods_per_year = _positive(periods_per_year, "periods_per_year")
        self._alpha = 2.0 / (self.span + 1.0)
        self._scale = math.sqrt(self.periods_per_year)
        super().__init__(n_symbols, span=self.span, periods_per_year=self.periods_per_year)

    def _init_state(self, st: np.ndarray) -> None:
        st[:] = 0.0
        st[0] = NAN

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        _ex_ante_step(x["close"], self._st, self._alpha, float(self.span), self._scale, out)


class NormalisedReturnStream(_Stream):
    """``r_{t-k,t} / (sigma_t sqrt(k))`` for one horizon ``k`` (of :func:`normalised_returns`)."""

    _n_state = 8

    def __init__(self, n_symbols: int, horizon: int = 1, span: int = 60):
        self.horizon = _int(horizon, "horizon", 1)
        self.span = _vol_span(span)
        self._alpha = 2.0 / (self.span + 1.0)
        super().__init__(n_symbols, horizon=self.horizon, span=self.span)

    def _init_state(self, st: np.ndarray) -> None:
        st[:] = 0.0
        st[1] = NAN  # no previous price

    def _rings(self) -> tuple[int, ...]:
        return (self.horizon + 1,)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        _nret_step(x["close"], self._st, self._bufs[0], self._ks, self._cols, self._alpha,
                   float(self.span), out)

    def reset(self) -> None:
        super().reset()
        self._ks = np.array([self.horizon], np.int64)
        self._cols = np.zeros(1, np.int64)

    def _fuse_key(self) -> tuple:
        """Horizons with one span share the EWM state and a price ring when fused."""
        return (NormalisedReturnsGroup, self.n_symbols, self.span)


class NormalisedReturnsGroup:
    """Several :class:`NormalisedReturnStream` horizons with one span, advanced as one.

    Their EWM variance state is identical (it depends on the span only) and one ring of
    the last ``max(horizon) + 1`` prices serves every horizon, so one kernel call per bar
    computes all of them, each output exactly the member stream's.

    Parameters
    ----------
    members : list of (NormalisedReturnStream, int)
        Member streams (one span) and the column of each one's output in the ``(N, F)``
        output matrix passed to :meth:`update`.
    """

    def __init__(self, members: list[tuple[NormalisedReturnStream, int]]):
        lead = members[0][0]
        if any(s._fuse_key() != lead._fuse_key() for s, _ in members):
            raise ValueError("NormalisedReturnsGroup members must share n_symbols and span")
        self.n_symbols, self.span, self._alpha = lead.n_symbols, lead.span, lead._alpha
        self._ks = np.array([s.horizon for s, _ in members], np.int64)
        self._cols = np.array([c for _, c in members], np.int64)
        self._st = lead._st
        self._buf = np.zeros((int(self._ks.max()) + 1, self.n_symbols))

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        """Advance one bar; ``out`` is the whole ``(N, F)`` output matrix."""
        _nret_step(x["close"], self._st, self._buf, self._ks, self._cols, self._alpha,
                   float(self.span), out)


class MACDSignalStream(_Stream):
    """Baz et al. (2015) MACD signal ``Y`` for one (short, long) pair (of :func:`macd_signal`)."""

    _n_state = 13

    def __init__(self, n_symbols: int, short: int = 8, long: int = 24, price_window: int = 63,
                 signal_window: int = 252):
        self.short = _int(short, "short", 1)
        self.long = _int(long, "long", 2)
        if self.short >= self.long:
            raise ValueError(f"short must be < long={self.long}, got {self.short}")
        self.price_window = _int(price_window, "price_window", 2)
        self.signal_window = _int(signal_window, "signal_window", 2)
        super().__init__(n_symbols, short=self.short, long=self.long,
                         price_window=self.price_window, signal_window=self.signal_window)

    def _rings(self) -> tuple[int, ...]:
        return (self.price_window,)

    def reset(self) -> None:
        super().reset()
        self._qbuf = np.zeros((1, self.signal_window, self.n_symbols))
        self._tmp = np.zeros((max(self.price_window, self.signal_window),
                              min(self.n_symbols, _BLK)))
        self._a_s = np.array([1.0 / float(self.short)])
        self._a_l = np.array([1.0 / float(self.long)])
        self._cols = np.zeros(1, np.int64)

    @property
    def state_nbytes(self) -> int:
        """Bytes of state held (constant over the stream's life)."""
        return super().state_nbytes + self._qbuf.nbytes

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        _macd_signal_step(x["close"], self._st, self._bufs[0], self._qbuf, self._iscr,
                          self._fscr, self._tmp, self._a_s, self._a_l, self.price_window,
                          self.signal_window, self._cols, out)

    def _fuse_key(self) -> tuple:
        """Signals with one price and signal window share the price window when fused."""
        return (MACDSignalGroup, self.n_symbols, self.price_window, self.signal_window)


class MACDSignalGroup:
    """Several :class:`MACDSignalStream` (short, long) pairs with equal windows, as one.

    The rolling std of price over ``price_window`` (and its exact re-syncs) is the same
    for every pair, so it is kept once; each pair keeps its EWMAs and its window of q.
    One kernel call per bar computes all pairs, each output exactly the member stream's.

    Parameters
    ----------
    members : list of (MACDSignalStream, int)
        Member streams (equal windows) and the column of each one's output in the
        ``(N, F)`` output matrix passed to :meth:`update`.
    """

    def __init__(self, members: list[tuple[MACDSignalStream, int]]):
        lead = members[0][0]
        if any(s._fuse_key() != lead._fuse_key() for s, _ in members):
            raise ValueError("MACDSignalGroup members must share n_symbols and windows")
        N = self.n_symbols = lead.n_symbols
        self.price_window, self.signal_window = lead.price_window, lead.signal_window
        H = len(members)
        self._st = np.zeros((5 + 8 * H, N))
        self._pbuf = np.zeros((self.price_window, N))
        self._qbuf = np.zeros((H, self.signal_window, N))
        self._iscr = np.zeros((4, N), dtype=np.int64)
        self._fscr = np.zeros((4, N))
        self._tmp = np.zeros((max(self.price_window, self.signal_window), min(N, _BLK)))
        self._a_s = np.array([1.0 / float(s.short) for s, _ in members])
        self._a_l = np.array([1.0 / float(s.long) for s, _ in members])
        self._cols = np.array([c for _, c in members], np.int64)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        """Advance one bar; ``out`` is the whole ``(N, F)`` output matrix."""
        _macd_signal_step(x["close"], self._st, self._pbuf, self._qbuf, self._iscr,
                          self._fscr, self._tmp, self._a_s, self._a_l, self.price_window,
                          self.signal_window, self._cols, out)
