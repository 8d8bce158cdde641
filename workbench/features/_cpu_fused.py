"""Fused CPU kernel: many close-only indicators in one pass over a (T, N) panel (private).

One numba kernel interprets a small *program* (an instruction list of int/float arrays
built by :func:`plan`) and computes, in a single walk over time, any combination of

``sma(window)``, ``ema(span)``, ``rolling_std(window, ddof)``, ``rsi(period)``,
``macd(fast, slow, signal)``, ``bollinger(window, k)``, ``roc(period)``,
``momentum(period)``, ``returns``, ``log_returns``, ``rolling_volatility(window, ppy)``

(several instances of each), writing every output straight into its slab
``out[f, :, j]`` of a preallocated (F, T, N) block (float64 or float32).

Layout (as :mod:`workbench.features._cpu`): ``prange`` over blocks of adjacent assets;
inside a block, time outer, each instruction runs one loop over the block's assets on
small per-asset state rows. State is shared where indicators share it: one rolling
mean / sum-of-squared-deviations state per distinct window feeds every SMA, rolling
std (any ddof) and Bollinger band of that window (Bollinger's middle *is* the SMA, and
``sqrt(m2 / w)`` is computed once for rolling std (ddof=0) and all Bollinger bands);
one log-return row feeds every rolling volatility; all instructions share one read
of the price row, one validity test and one last-valid-price row.

While every row seen so far was fully valid or fully missing for the block, all its
assets share one valid-bar count, every branch on the warm-up phase is a scalar one
and each instruction is a vectorisable loop ("aligned" mode). At the first partly
missing row the block switches for good to per-asset steps (each asset its own
count). Both modes perform the arithmetic of the per-feature kernels
(:mod:`._cpu`, :mod:`._cpu_ta`) operation for operation, so results are bitwise
identical to the public per-feature functions; the per-asset rolling-window and
ROC steps *are* theirs (:func:`._cpu._roll_push`, :func:`._cpu_ta._roc_step`).
Constant divisors are applied as a multiply by their reciprocal everywhere (Wilder
``/ period``, the sliding-mean ``/ w``, ``sqrt(m2 / w)`` and ``sqrt(m2 / (w - ddof))``), as
in those kernels and in :mod:`._stream_core`; the re-sync and seed divisions stay divisions.

Missing bars (NaN) leave an asset's state untouched and write NaN; warm-up rows are
NaN; outputs at t use inputs at or before t only. An inf input is counted (the
caller raises, as the per-feature functions do).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from workbench.features._cpu import _EXACT_W, _roll_push
from workbench.features._cpu_ta import _roc_step

__all__ = ["FUSABLE", "FusedProgram", "plan", "run"]

NAN = np.nan

# op codes
_EMA = 1
_RSI = 2
_MACD = 3
_ROLL = 4  # rolling mean / m2 state (prices, or log returns when p2 == 1)
_SMA = 5  # emit: rolling mean
_STD = 6  # emit: sqrt(m2 / (w - ddof))
_BB = 7  # emit: Bollinger bands
_ROC = 8  # roc (p2 == 0) / momentum (p2 == 1)
_RET = 9  # simple (p1 == 0) / log (p1 == 1) returns
_RVOL = 10  # emit: sqrt(m2 / (w - 1)) * scale over log returns

# program columns
_OP, _P1, _P2, _P3, _O1, _O2, _O3, _FS, _CS, _FLAG = range(10)
_NCOL = 10

# roll state rows (offsets from the op's float slot): K, mean, m2, then scratch rows
# mid (rolling mean, NaN before the window is full), v2 (clamped m2), sd0 (sqrt(v2 / w)),
# then the (w, nb) ring of the last w values
_R_K, _R_MEAN, _R_M2, _R_MID, _R_V2, _R_SD0, _R_BUF = range(7)

#: Catalogue features the fused kernel computes (all close-only).
FUSABLE = frozenset({"sma", "ema", "rolling_std", "rsi", "macd", "bollinger", "roc",
                     "momentum", "returns", "log_returns", "rolling_volatility"})


# --------------------------------------------------------------------------- #
# aligned mode: every asset of the block valid at this row, common count i
# --------------------------------------------------------------------------- #


@njit(cache=True, error_model="numpy")
def _ema_row(xr, o, ssum, prev, i, span):
    nb = xr.shape[0]
    fspan = float(span)
    k = 2.0 / (span + 1.0)
    if i + 1 < span:
        for b in range(nb):
            ssum[b] = ssum[b] + xr[b]
            o[b] = NAN
    elif i + 1 == span:
        for b in range(nb):
            s1 = ssum[b] + xr[b]
            ssum[b] = s1
            e = s1 / fspan
            prev[b] = e
            o[b] = e
    else:
        for b in range(nb):
            pv = prev[b]
            e = (xr[b] - pv) * k + pv
            prev[b] = e
            o[b] = e


@njit(cache=True, error_model="numpy")
def _rsi_row(xr, o, last, gain, loss, i, period):
    nb = xr.shape[0]
    fp = float(period)
    pm1 = fp - 1.0
    rfp = 1.0 / fp
    if i == 0:
        for b in range(nb):
            o[b] = NAN
    elif i > period:
        for b in range(nb):
            d = xr[b] - last[b]
            up = d if d > 0.0 else 0.0
            dn = -d if d < 0.0 else 0.0
            g = (gain[b] * pm1 + up) * rfp
            lo = (loss[b] * pm1 + dn) * rfp
            gain[b] = g
            loss[b] = lo
            tot = g + lo
            o[b] = 100.0 * (g / tot) if tot != 0.0 else 0.0
    elif i == period:
        for b in range(nb):
            d = xr[b] - last[b]
            up = d if d > 0.0 else 0.0
            dn = -d if d < 0.0 else 0.0
            g = (gain[b] + up) * rfp
            lo = (loss[b] + dn) * rfp
            gain[b] = g
            loss[b] = lo
            tot = g + lo
            o[b] = 100.0 * (g / tot) if tot != 0.0 else 0.0
    else:
        for b in range(nb):
            d = xr[b] - last[b]
            up = d if d > 0.0 else 0.0
            dn = -d if d < 0.0 else 0.0
            gain[b] = gain[b] + up
            loss[b] = loss[b] + dn
            o[b] = NAN


@njit(cache=True, error_model="numpy")
def _macd_row(xr, o1, o2, o3, st, i, fast, slow, signal):
    """MACD row; ``st`` rows: slow/fast seed sums, fast/slow EMAs, signal seed sum, signal."""
    nb = xr.shape[0]
    kf = 2.0 / (fast + 1.0)
    ks = 2.0 / (slow + 1.0)
    kg = 2.0 / (signal + 1.0)
    s0 = slow - 1
    first = s0 + signal - 1
    if i > first:
        ef = st[2]
        es = st[3]
        sg = st[5]
        for b in range(nb):
            v = xr[b]
            f1 = ef[b]
            s1 = es[b]
            g1 = sg[b]
            f = (v - f1) * kf + f1
            s = (v - s1) * ks + s1
            line = f - s
            g = (line - g1) * kg + g1
            ef[b] = f
            es[b] = s
            sg[b] = g
            o1[b] = line
            o2[b] = g
            o3[b] = line - g
        return
    ff = float(fast)
    fs = float(slow)
    fg = float(signal)
    f0 = slow - fast
    for b in range(nb):
        v = xr[b]
        if i < slow:
            st[0, b] += v
            if i >= f0:
                st[1, b] += v
        if i > s0:
            st[2, b] = (v - st[2, b]) * kf + st[2, b]
            st[3, b] = (v - st[3, b]) * ks + st[3, b]
        elif i == s0:
            st[2, b] = st[1, b] / ff
            st[3, b] = st[0, b] / fs
        line = st[2, b] - st[3, b]
        if i >= s0:
            st[4, b] += line
        if i == first:
            st[5, b] = st[4, b] / fg
        if i >= first:
            g = st[5, b]
            o1[b] = line
            o2[b] = g
            o3[b] = line - g
        else:
            o1[b] = NAN
            o2[b] = NAN
            o3[b] = NAN


@njit(cache=True, error_model="numpy")
def _roll_row(xr, st, i, w, want_sd0):
    """Rolling-window state (sliding Welford, exact re-sync), as ``_cpu._roll_block``."""
    nb = xr.shape[0]
    K = st[_R_K]
    mean = st[_R_MEAN]
    m2 = st[_R_M2]
    mid = st[_R_MID]
    v2o = st[_R_V2]
    sd0 = st[_R_SD0]
    buf = st[_R_BUF:_R_BUF + w]
    rw = 1.0 / w
    p = i % w
    if i < w:
        if i == 0:
            for b in range(nb):
                K[b] = xr[b]
                mean[b] = 0.0
                m2[b] = 0.0
        for b in range(nb):
            xv = xr[b]
            xs = xv - K[b]
            mu = mean[b]
            d = xs - mu
            mu += d / (i + 1)
            m2[b] += d * (xs - mu)
            mean[b] = mu
            buf[p, b] = xv
    elif w <= _EXACT_W or p == w - 1:
        # sd0 serves as the accumulator row here (rewritten below)
        s = sd0
        for b in range(nb):
            buf[p, b] = xr[b]
            s[b] = 0.0
        q = p
        for _ in range(w):
            q = q + 1 if q + 1 < w else 0
            for b in range(nb):
                s[b] += buf[q, b] - K[b]
        for b in range(nb):
            K[b] = K[b] + s[b] / w
            s[b] = 0.0
        for _ in range(w):
            q = q + 1 if q + 1 < w else 0
            for b in range(nb):
                s[b] += buf[q, b] - K[b]
        for b in range(nb):
            mean[b] = s[b] / w
            m2[b] = 0.0
        for _ in range(w):
            q = q + 1 if q + 1 < w else 0
            for b in range(nb):
                d = buf[q, b] - K[b] - mean[b]
                m2[b] += d * d
    else:
        for b in range(nb):
            xv = xr[b]
            y = buf[p, b]
            buf[p, b] = xv
            k0 = K[b]
            xs = xv - k0
            ys = y - k0
            old = mean[b]
            mu = old + (xs - ys) * rw
            m2[b] += (xs - ys) * (xs - mu + ys - old)
            mean[b] = mu
    if i >= w - 1:
        for b in range(nb):
            mid[b] = K[b] + mean[b]
            v2 = m2[b]
            v2 = v2 if v2 > 0.0 else 0.0
            v2o[b] = v2
            if want_sd0:
                sd0[b] = math.sqrt(v2 * rw)
    else:
        for b in range(nb):
            mid[b] = NAN
            v2o[b] = NAN
            sd0[b] = NAN


@njit(cache=True, error_model="numpy")
def _roc_row(xr, o, buf, i, k, what):
    nb = xr.shape[0]
    p = i % k
    if i < k:
        for b in range(nb):
            buf[p, b] = xr[b]
            o[b] = NAN
    elif what == 1:
        for b in range(nb):
            v = xr[b]
            old = buf[p, b]
            buf[p, b] = v
            o[b] = v - old
    else:
        for b in range(nb):
            v = xr[b]
            old = buf[p, b]
            buf[p, b] = v
            o[b] = ((v / old) - 1.0) * 100.0 if old != 0.0 else NAN


# --------------------------------------------------------------------------- #
# per-asset mode: each asset its own valid-bar count cnt[b]
# --------------------------------------------------------------------------- #


@njit(cache=True, error_model="numpy")
def _ema_assets(xr, o, ssum, prev, cnt, span):
    fspan = float(span)
    k = 2.0 / (span + 1.0)
    for b in range(xr.shape[0]):
        v = xr[b]
        if not (v == v):
            o[b] = NAN
            continue
        i = cnt[b]
        s1 = ssum[b] + v
        ssum[b] = s1
        if i + 1 < span:
            o[b] = NAN
        elif i + 1 == span:
            e = s1 / fspan
            prev[b] = e
            o[b] = e
        else:
            pv = prev[b]
            e = (v - pv) * k + pv
            prev[b] = e
            o[b] = e


@njit(cache=True, error_model="numpy")
def _rsi_assets(xr, o, last, gain, loss, cnt, period):
    fp = float(period)
    pm1 = fp - 1.0
    rfp = 1.0 / fp
    for b in range(xr.shape[0]):
        v = xr[b]
        i = cnt[b]
        if not (v == v) or i == 0:
            o[b] = NAN
            continue
        d = v - last[b]
        up = d if d > 0.0 else 0.0
        dn = -d if d < 0.0 else 0.0
        if i > period:
            g = (gain[b] * pm1 + up) * rfp
            lo = (loss[b] * pm1 + dn) * rfp
        elif i == period:
            g = (gain[b] + up) * rfp
            lo = (loss[b] + dn) * rfp
        else:
            g = gain[b] + up
            lo = loss[b] + dn
        gain[b] = g
        loss[b] = lo
        if i >= period:
            tot = g + lo
            o[b] = 100.0 * (g / tot) if tot != 0.0 else 0.0
        else:
            o[b] = NAN


@njit(cache=True, error_model="numpy")
def _macd_assets(xr, o1, o2, o3, st, cnt, fast, slow, signal):
    kf = 2.0 / (fast + 1.0)
    ks = 2.0 / (slow + 1.0)
    kg = 2.0 / (signal + 1.0)
    ff = float(fast)
    fs = float(slow)
    fg = float(signal)
    s0 = slow - 1
    first = s0 + signal - 1
    f0 = slow - fast
    for b in range(xr.shape[0]):
        v = xr[b]
        if not (v == v):
            o1[b] = NAN
            o2[b] = NAN
            o3[b] = NAN
            continue
        i = cnt[b]
        if i > first:
            f1 = st[2, b]
            s1 = st[3, b]
            g1 = st[5, b]
            f = (v - f1) * kf + f1
            s = (v - s1) * ks + s1
            line = f - s
            g = (line - g1) * kg + g1
            st[2, b] = f
            st[3, b] = s
            st[5, b] = g
            o1[b] = line
            o2[b] = g
            o3[b] = line - g
            continue
        if i < slow:
            st[0, b] += v
            if i >= f0:
                st[1, b] += v
        if i > s0:
            st[2, b] = (v - st[2, b]) * kf + st[2, b]
            st[3, b] = (v - st[3, b]) * ks + st[3, b]
        elif i == s0:
            st[2, b] = st[1, b] / ff
            st[3, b] = st[0, b] / fs
        line = st[2, b] - st[3, b]
        if i >= s0:
            st[4, b] += line
        if i == first:
            st[5, b] = st[4, b] / fg
        if i >= first:
            g = st[5, b]
            o1[b] = line
            o2[b] = g
            o3[b] = line - g
        else:
            o1[b] = NAN
            o2[b] = NAN
            o3[b] = NAN


@njit(cache=True, error_model="numpy")
def _roll_assets(xr, st, rcnt, w, want_sd0):
    """Per-asset rolling state via ``_cpu._roll_push``; ``xr`` NaN = no value."""
    K = st[_R_K]
    mean = st[_R_MEAN]
    m2 = st[_R_M2]
    mid = st[_R_MID]
    v2o = st[_R_V2]
    sd0 = st[_R_SD0]
    buf = st[_R_BUF:_R_BUF + w]
    rw = 1.0 / w
    for b in range(xr.shape[0]):
        xv = xr[b]
        r1 = NAN
        r2 = NAN
        r3 = NAN
        if xv == xv:
            if _roll_push(b, xv, w, rcnt, K, mean, m2, buf):
                r1 = K[b] + mean[b]
                v2 = m2[b]
                v2 = v2 if v2 > 0.0 else 0.0
                r2 = v2
                if want_sd0:
                    r3 = math.sqrt(v2 * rw)
        mid[b] = r1
        v2o[b] = r2
        sd0[b] = r3


@njit(cache=True, error_model="numpy")
def _roc_assets(xr, o, buf, rcnt, k, what):
    for b in range(xr.shape[0]):
        o[b] = _roc_step(b, xr[b], k, what, rcnt, buf)


# --------------------------------------------------------------------------- #
# emits (mode independent: read the roll state's scratch rows, NaN propagates)
# --------------------------------------------------------------------------- #


@njit(cache=True, error_model="numpy")
def _copy_row(src, o):
    for b in range(src.shape[0]):
        o[b] = src[b]


@njit(cache=True, error_model="numpy")
def _std_row(v2, o, c):
    rc = 1.0 / c
    for b in range(v2.shape[0]):
        o[b] = math.sqrt(v2[b] * rc)


@njit(cache=True, error_model="numpy")
def _bb_row(mid, sd0, o1, o2, o3, k):
    for b in range(mid.shape[0]):
        m = mid[b]
        hw = k * sd0[b]
        o1[b] = m + hw
        o2[b] = m
        o3[b] = m - hw


@njit(cache=True, error_model="numpy")
def _rvol_row(v2, o, w, scale):
    for b in range(v2.shape[0]):
        o[b] = math.sqrt(v2[b] / (w - 1)) * scale


@njit(cache=True, error_model="numpy")
def _ret_row(xr, last, o, log):
    if log:
        for b in range(xr.shape[0]):
            o[b] = math.log(xr[b] / last[b])
    else:
        for b in range(xr.shape[0]):
            o[b] = xr[b] / last[b] - 1.0


# --------------------------------------------------------------------------- #
# the kernel
# --------------------------------------------------------------------------- #


@njit(cache=True, error_model="numpy")
def _run_row(x, out, t, j0, j1, prog, fpar, fs, cs, last, lr, cnt, ia, aligned, need_lr):
    """Execute the program on row ``t`` of assets ``j0 .. j1-1``.

    ``aligned``: every asset valid at t and all share the count ``ia``; otherwise the
    per-asset counts ``cnt`` (and count rows ``cs``) are used and NaN bars skipped.
    """
    nb = j1 - j0
    xr = x[t, j0:j1]
    if need_lr:
        # log return of this bar (NaN on the first valid bar and at holes)
        for b in range(nb):
            v = xr[b]
            p = last[b]
            r = NAN
            if v == v and p == p:
                r = math.log(v / p)
            lr[b] = r
    for q in range(prog.shape[0]):
        op = prog[q, _OP]
        p1 = prog[q, _P1]
        p2 = prog[q, _P2]
        p3 = prog[q, _P3]
        f1 = prog[q, _O1]
        s = prog[q, _FS]
        if op == _RET:
            _ret_row(xr, last, out[f1, t, j0:j1], p1 == 1)
        elif op == _SMA:
            _copy_row(fs[p2 + _R_MID], out[f1, t, j0:j1])
        elif op == _STD:
            if prog[q, _FLAG] == 1:
                _copy_row(fs[p2 + _R_SD0], out[f1, t, j0:j1])
            else:
                _std_row(fs[p2 + _R_V2], out[f1, t, j0:j1], fpar[q, 0])
        elif op == _BB:
            _bb_row(fs[p2 + _R_MID], fs[p2 + _R_SD0], out[f1, t, j0:j1],
                    out[prog[q, _O2], t, j0:j1], out[prog[q, _O3], t, j0:j1], fpar[q, 0])
        elif op == _RVOL:
            _rvol_row(fs[p2 + _R_V2], out[f1, t, j0:j1], p1, fpar[q, 0])
        elif aligned:
            if op == _EMA:
                _ema_row(xr, out[f1, t, j0:j1], fs[s], fs[s + 1], ia, p1)
            elif op == _RSI:
                _rsi_row(xr, out[f1, t, j0:j1], last, fs[s], fs[s + 1], ia, p1)
            elif op == _MACD:
                _macd_row(xr, out[f1, t, j0:j1], out[prog[q, _O2], t, j0:j1],
                          out[prog[q, _O3], t, j0:j1], fs[s:s + 6], ia, p1, p2, p3)
            elif op == _ROLL:
                if p2 == 0:
                    _roll_row(xr, fs[s:s + _R_BUF + p1], ia, p1, prog[q, _FLAG] == 1)
                elif ia >= 1:
                    _roll_row(lr, fs[s:s + _R_BUF + p1], ia - 1, p1, prog[q, _FLAG] == 1)
                else:
                    for b in range(nb):
                        fs[s + _R_MID, b] = NAN
                        fs[s + _R_V2, b] = NAN
                        fs[s + _R_SD0, b] = NAN
            elif op == _ROC:
                _roc_row(xr, out[f1, t, j0:j1], fs[s:s + p1], ia, p1, p2)
        else:
            if op == _EMA:
                _ema_assets(xr, out[f1, t, j0:j1], fs[s], fs[s + 1], cnt, p1)
            elif op == _RSI:
                _rsi_assets(xr, out[f1, t, j0:j1], last, fs[s], fs[s + 1], cnt, p1)
            elif op == _MACD:
                _macd_assets(xr, out[f1, t, j0:j1], out[prog[q, _O2], t, j0:j1],
                             out[prog[q, _O3], t, j0:j1], fs[s:s + 6], cnt, p1, p2, p3)
            elif op == _ROLL:
                src = xr if p2 == 0 else lr
                _roll_assets(src, fs[s:s + _R_BUF + p1], cs[prog[q, _CS]], p1,
                             prog[q, _FLAG] == 1)
            elif op == _ROC:
                _roc_assets(xr, out[f1, t, j0:j1], fs[s:s + p1], cs[prog[q, _CS]], p1, p2)


@njit(cache=True, error_model="numpy")
def _fused_block(x, out, j0, j1, prog, fpar, nfs, ncs, need_lr):
    """Run the program over assets ``j0 .. j1-1``; return the number of inf inputs."""
    T = x.shape[0]
    nb = j1 - j0
    fs = np.zeros((nfs, nb))
    cs = np.zeros((max(ncs, 1), nb), np.int64)
    last = np.full(nb, NAN)
    lr = np.empty(nb)
    cnt = np.zeros(nb, np.int64)
    aligned = True
    ia = 0
    ninf = 0
    for t in range(T):
        nv = 0
        for b in range(nb):
            v = x[t, j0 + b]
            nv += v == v
            ninf += abs(v) == np.inf
        if aligned and nv == nb:
            _run_row(x, out, t, j0, j1, prog, fpar, fs, cs, last, lr, cnt, ia, True, need_lr)
            for b in range(nb):
                last[b] = x[t, j0 + b]
            ia += 1
            continue
        if aligned and nv > 0:
            # first partly missing row: switch to per-asset counts for good
            aligned = False
            for b in range(nb):
                cnt[b] = ia
            for q in range(prog.shape[0]):
                if prog[q, _OP] == _ROLL or prog[q, _OP] == _ROC:
                    c = ia if prog[q, _P2] == 0 or prog[q, _OP] == _ROC else max(ia - 1, 0)
                    for b in range(nb):
                        cs[prog[q, _CS], b] = c
        # per-asset row (also used for all-missing rows while aligned: no state read)
        _run_row(x, out, t, j0, j1, prog, fpar, fs, cs, last, lr, cnt, ia, False, need_lr)
        for b in range(nb):
            v = x[t, j0 + b]
            if v == v:
                cnt[b] += 1
                last[b] = v
    return ninf


@njit(cache=True, error_model="numpy", parallel=True)
def fused_nb(x, out, c0, c1, nblk, prog, fpar, nfs, ncs, need_lr):
    """Run the program on columns ``c0 .. c1-1`` of ``x`` into ``out[:, :, c0:c1]``.

    ``x`` (T, N) float64 C-ordered, ``out`` (F, T, N) float64/float32 C-ordered.
    Returns the number of +/-inf inputs seen.
    """
    n = c1 - c0
    bs = (n + nblk - 1) // nblk
    ninf = np.zeros(nblk, np.int64)
    for kb in prange(nblk):
        j0 = c0 + kb * bs
        j1 = min(c1, j0 + bs)
        if j1 > j0:
            ninf[kb] = _fused_block(x, out, j0, j1, prog, fpar, nfs, ncs, need_lr)
    return ninf.sum()


# --------------------------------------------------------------------------- #
# planning (plain Python)
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class FusedProgram:
    """A compiled instruction list for :func:`fused_nb`.

    Attributes
    ----------
    prog : numpy.ndarray, shape (n_ops, 10), int64
        Op code, integer parameters, output slab indices, state slots, flags.
    fpar : numpy.ndarray, shape (n_ops, 1), float64
        Float parameter of each op (Bollinger k, std divisor, volatility scale).
    n_float_state, n_count_state : int
        Rows of per-asset float state and of per-asset count state.
    need_log_returns : bool
        Whether a rolling volatility needs the per-bar log return.
    """

    prog: np.ndarray
    fpar: np.ndarray
    n_float_state: int
    n_count_state: int
    need_log_returns: bool


def plan(features: Sequence[tuple[str, dict, Sequence[int]]]) -> FusedProgram:
    """Build the program for ``features``: ``(name, params, output slab indices)`` each.

    ``name`` is in :data:`FUSABLE`; ``params`` are the full (validated) parameters of
    the catalogue entry; the slab indices give, per output in catalogue order, the
    index ``f`` of ``out[f]`` that receives it.

    Raises
    ------
    ValueError
        On a feature the fused kernel does not cover.
    """
    ops: list[list[int]] = []
    fps: list[float] = []
    nfs = 0
    ncs = 0
    rolls: dict[tuple[int, int], int] = {}  # (window, source) -> op index

    def add(row: list[int], fp: float = 0.0) -> int:
        ops.append(row + [0] * (_NCOL - len(row)))
        fps.append(fp)
        return len(ops) - 1

    def roll(w: int, src: int) -> int:
        nonlocal nfs, ncs
        key = (w, src)
        if key not in rolls:
            q = add([_ROLL, w, src, 0, -1, -1, -1, nfs, ncs, 0])
            nfs += _R_BUF + w
            ncs += 1
            rolls[key] = q
        return rolls[key]

    # state ops first (in feature order), then emits reading them
    emits: list[tuple[list[int], float, int | None]] = []
    for name, p, slabs in features:
        o = list(slabs) + [-1] * (3 - len(slabs))
        if name == "ema":
            add([_EMA, int(p["span"]), 0, 0, o[0], -1, -1, nfs])
            nfs += 2
        elif name == "rsi":
            add([_RSI, int(p["period"]), 0, 0, o[0], -1, -1, nfs])
            nfs += 2
        elif name == "macd":
            add([_MACD, int(p["fast"]), int(p["slow"]), int(p["signal"]), o[0], o[1], o[2],
                 nfs])
            nfs += 6
        elif name in ("roc", "momentum"):
            k = int(p["period"])
            add([_ROC, k, 0 if name == "roc" else 1, 0, o[0], -1, -1, nfs, ncs])
            nfs += k
            ncs += 1
        elif name in ("returns", "log_returns"):
            emits.append(([_RET, 0 if name == "returns" else 1, 0, 0, o[0]], 0.0, None))
        elif name == "sma":
            w = int(p["window"])
            emits.append(([_SMA, w, 0, 0, o[0]], 0.0, roll(w, 0)))
        elif name == "rolling_std":
            w, ddof = int(p["window"]), int(p["ddof"])
            q = roll(w, 0)
            if ddof == 0:
                ops[q][_FLAG] = 1
            emits.append(([_STD, w, 0, 0, o[0], -1, -1, 0, 0, int(ddof == 0)],
                          float(w - ddof), q))
        elif name == "bollinger":
            w = int(p["window"])
            q = roll(w, 0)
            ops[q][_FLAG] = 1
            emits.append(([_BB, w, 0, 0, o[0], o[1], o[2]], float(p["k"]), q))
        elif name == "rolling_volatility":
            w = int(p["window"])
            emits.append(([_RVOL, w, 0, 0, o[0]], math.sqrt(float(p["periods_per_year"])),
                          roll(w, 1)))
        else:
            raise ValueError(f"feature {name!r} is not covered by the fused kernel; "
                             f"fusable: {sorted(FUSABLE)}")
    for row, fp, state in emits:
        if state is not None:
            row = row + [0] * (_NCOL - len(row))
            row[_P2] = ops[state][_FS]
        add(row, fp)
    need_lr = any(r[_OP] == _ROLL and r[_P2] == 1 for r in ops)
    prog = np.array(ops, dtype=np.int64).reshape(-1, _NCOL)
    fpar = np.array(fps, dtype=np.float64).reshape(-1, 1)
    return FusedProgram(prog, fpar, max(nfs, 1), ncs, need_lr)


# columns per block below which a panel is not split further (as _cpu._MIN_COLS)
_MIN_COLS = 64


def run(program: FusedProgram, x: np.ndarray, out: np.ndarray, cols: slice | None = None, *,
        name: str = "close") -> None:
    """Execute ``program`` on columns ``cols`` of ``x`` into ``out[:, :, cols]``.

    Parameters
    ----------
    program : FusedProgram
        From :func:`plan`.
    x : numpy.ndarray, shape (T, N), float64, C-ordered
        Prices; NaN marks a missing bar.
    out : numpy.ndarray, shape (F, T, N), float64 or float32, C-ordered
        Receives each output in its slab; other slabs are not touched.
    cols : slice, optional
        Contiguous asset range (default all).
    name : str, optional
        Input name used in the inf error message.

    Raises
    ------
    ValueError
        If ``x`` contains +/-inf (the outputs are then partly written).
    """
    T, N = x.shape
    c0, c1 = (0, N) if cols is None else (cols.start or 0, N if cols.stop is None else cols.stop)
    n = c1 - c0
    if n <= 0 or program.prog.shape[0] == 0:
        return
    nblk = max(1, min(numba.get_num_threads(), n // _MIN_COLS))
    ninf = fused_nb(x, out, c0, c1, nblk, program.prog, program.fpar, program.n_float_state,
                    program.n_count_state, program.need_log_returns)
    if ninf:
        raise ValueError(f"{name} contains +/-inf; use NaN for a missing bar")
