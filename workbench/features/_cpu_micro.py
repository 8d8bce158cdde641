"""CPU backend of the microstructure, cross-asset and order-book features (private).

Same layout as :mod:`workbench.features._cpu`: each batch driver (``*_nb``) runs
``prange`` over blocks of adjacent assets and walks ``t = 0 .. T-1`` inside a block,
reading one contiguous row segment of each C-ordered (T, N) input per step and
updating small per-asset state arrays (last valid price, ring buffers ``(w, N)``,
running sums or co-moments).

The per-row arithmetic lives in ``*_row`` functions over an asset range ``[j0, j1)``;
the batch drivers call them once per row and block, the streaming classes of
:mod:`workbench.features._stream_micro` once per bar for all N symbols, on state
arrays of the same layout. Batch and stream therefore do the same floating-point
operations in the same order and agree bit for bit.

Per-asset features (Corwin-Schultz, Roll, Amihud) compute on each asset's own sequence
of valid bars: a NaN input leaves the asset's state untouched and writes NaN.
Cross-asset features (correlation, beta, mean pairwise correlation) use windows of
*panel rows* (the union calendar) and pairwise-complete observations.

Rolling sums and co-moments slide (add the entering value, remove the leaving one;
Welford-style co-moment updates for covariances) and are recomputed exactly from
the ring every ``w`` pushes, so rounding drift never spans more than one window.

The L2 order-book kernels at the bottom are element-wise functions of an array
namespace ``xp`` (numpy, or cupy for device arrays).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from workbench.features._cpu import _span

NAN = np.nan
#: 3 - 2 sqrt(2), the Corwin-Schultz denominator
_CS_K = 3.0 - 2.0 * math.sqrt(2.0)
#: "row index" of a change that never happened (flat-series tracking)
_NEVER = -(1 << 62)

# --------------------------------------------------------------------------- #
# Corwin & Schultz (2012) high-low spread
# --------------------------------------------------------------------------- #


@njit(cache=True, inline="always")
def _cs_estimate(h, lo, hp, lp):
    """Two-bar Corwin-Schultz spread estimate S (negative values set to 0)."""
    a = math.log(h / lo)
    b = math.log(hp / lp)
    beta = a * a + b * b
    hh = h if h > hp else hp
    ll = lo if lo < lp else lp
    g = math.log(hh / ll)
    gamma = g * g
    alpha = (math.sqrt(2.0 * beta) - math.sqrt(beta)) / _CS_K - math.sqrt(gamma / _CS_K)
    e = math.exp(alpha)
    s = 2.0 * (e - 1.0) / (1.0 + e)
    return s if s > 0.0 else 0.0


@njit(cache=True, inline="always")
def _ring_sum_push(j, xv, w, cnt, s, ring):
    """Push ``xv`` into asset ``j``'s ring of the last ``w`` values; keep their sum.

    The sum slides in between and is recomputed exactly (oldest first) each time the
    ring wraps. Returns the number of values pushed so far.
    """
    c = cnt[j]
    p = c % w
    if c >= w:
        s[j] = s[j] + xv - ring[p, j]
    else:
        s[j] = s[j] + xv
    ring[p, j] = xv
    c += 1
    cnt[j] = c
    if c % w == 0:
        acc = 0.0
        for q in range(w):
            acc += ring[q, j]
        s[j] = acc
    return c


@njit(cache=True)
def cs_row(h, lo, o, j0, j1, w, ph, pl, cnt, s, ring):
    """One row of Corwin-Schultz for assets ``[j0, j1)``; state: last high/low, ring of S."""
    for j in range(j0, j1):
        hv = h[j]
        lv = lo[j]
        if not (hv == hv and lv == lv):
            o[j] = NAN
            continue
        hp = ph[j]
        lp = pl[j]
        ph[j] = hv
        pl[j] = lv
        if not (hp == hp):
            o[j] = NAN
            continue
        c = _ring_sum_push(j, _cs_estimate(hv, lv, hp, lp), w, cnt, s, ring)
        o[j] = s[j] / w if c >= w else NAN


@njit(cache=True, parallel=True)
def cs_nb(h, lo, out, nblk, w, ph, pl, cnt, s, ring):
    T, N = h.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        for t in range(T):
            cs_row(h[t], lo[t], out[t], j0, j1, w, ph, pl, cnt, s, ring)


# --------------------------------------------------------------------------- #
# Amihud (2002) illiquidity
# --------------------------------------------------------------------------- #


@njit(cache=True)
def amihud_row(c, v, o, j0, j1, w, scale, last, cnt, s, m, ring):
    """One row of Amihud for assets ``[j0, j1)``.

    State: last valid close, ring (w, N) of the last ``w`` terms ``|r| / (p v)`` (NaN
    for a skipped term), running sum ``s`` and count ``m`` of the finite terms.
    """
    for j in range(j0, j1):
        p = c[j]
        if not (p == p):
            o[j] = NAN
            continue
        pp = last[j]
        last[j] = p
        if not (pp == pp):
            o[j] = NAN
            continue
        dv = p * v[j]
        term = abs(p / pp - 1.0) / dv if (dv == dv and dv != 0.0) else NAN
        k = cnt[j]
        q = k % w
        if k >= w:
            old = ring[q, j]
            if old == old:
                s[j] -= old
                m[j] -= 1.0
        ring[q, j] = term
        if term == term:
            s[j] += term
            m[j] += 1.0
        k += 1
        cnt[j] = k
        if k % w == 0:
            acc = 0.0
            n = 0.0
            for r in range(w):
                x = ring[r, j]
                if x == x:
                    acc += x
                    n += 1.0
            s[j] = acc
            m[j] = n
        o[j] = scale * (s[j] / m[j]) if (k >= w and m[j] > 0.0) else NAN


@njit(cache=True, parallel=True)
def amihud_nb(c, v, out, nblk, w, scale, last, cnt, s, m, ring):
    T, N = c.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        for t in range(T):
            amihud_row(c[t], v[t], out[t], j0, j1, w, scale, last, cnt, s, m, ring)


# --------------------------------------------------------------------------- #
# rolling co-moments of a pair (x, y): Welford add/remove, exact re-sync
# --------------------------------------------------------------------------- #


@njit(cache=True, inline="always")
def _cm_add(k, x, y, n, mx, my, cxx, cyy, cxy):
    nn = n[k] + 1.0
    dx = x - mx[k]
    dy = y - my[k]
    mxn = mx[k] + dx / nn
    myn = my[k] + dy / nn
    cxx[k] += dx * (x - mxn)
    cyy[k] += dy * (y - myn)
    cxy[k] += dx * (y - myn)
    mx[k] = mxn
    my[k] = myn
    n[k] = nn


@njit(cache=True, inline="always")
def _cm_remove(k, x, y, n, mx, my, cxx, cyy, cxy):
    nn = n[k] - 1.0
    if nn <= 0.0:
        n[k] = 0.0
        mx[k] = 0.0
        my[k] = 0.0
        cxx[k] = 0.0
        cyy[k] = 0.0
        cxy[k] = 0.0
        return
    mxo = mx[k]
    myo = my[k]
    mxn = mxo - (x - mxo) / nn
    myn = myo - (y - myo) / nn
    cxx[k] -= (x - mxn) * (x - mxo)
    cyy[k] -= (y - myn) * (y - myo)
    cxy[k] -= (x - mxn) * (y - myo)
    mx[k] = mxn
    my[k] = myn
    n[k] = nn


@njit(cache=True, inline="always")
def _cm_push(j, x, y, w, cnt, n, mx, my, cxx, cyy, cxy, rx, ry):
    """Push the pair (x, y) (NaN in either: not counted) into asset ``j``'s window.

    ``rx``/``ry`` are (w, N) rings of the last ``w`` pushed pairs. The co-moments
    (count ``n``, means, ``cxx``, ``cyy``, ``cxy`` = sums of centred products) of the
    finite pairs in the ring slide by Welford removal/addition and are recomputed
    exactly (two-pass, oldest first) each time the ring wraps. Returns pushes so far.
    """
    c = cnt[j]
    p = c % w
    if c >= w:
        xo = rx[p, j]
        yo = ry[p, j]
        if xo == xo and yo == yo:
            _cm_remove(j, xo, yo, n, mx, my, cxx, cyy, cxy)
    rx[p, j] = x
    ry[p, j] = y
    if x == x and y == y:
        _cm_add(j, x, y, n, mx, my, cxx, cyy, cxy)
    c += 1
    cnt[j] = c
    if c % w == 0:
        nn = 0.0
        sx = 0.0
        sy = 0.0
        q = p
        for _ in range(w):
            q = q + 1 if q + 1 < w else 0
            a = rx[q, j]
            b = ry[q, j]
            if a == a and b == b:
                nn += 1.0
                sx += a
                sy += b
        if nn > 0.0:
            ax = sx / nn
            ay = sy / nn
        else:
            ax = 0.0
            ay = 0.0
        sxx = 0.0
        syy = 0.0
        sxy = 0.0
        for _ in range(w):
            q = q + 1 if q + 1 < w else 0
            a = rx[q, j]
            b = ry[q, j]
            if a == a and b == b:
                sxx += (a - ax) * (a - ax)
                syy += (b - ay) * (b - ay)
                sxy += (a - ax) * (b - ay)
        n[j] = nn
        mx[j] = ax
        my[j] = ay
        cxx[j] = sxx
        cyy[j] = syy
        cxy[j] = sxy
    return c


@njit(cache=True, inline="always")
def _flat_track(k, x, y, t, lastx, lasty, lastrow, chx, chy):
    """Record where the pair-valid x (y) sequence last changed value.

    ``chx[k]`` is the row of the pair-valid observation just before the latest change
    of x; the x values counted in the window of rows ``[t - w + 1, t]`` differ (exact
    zero-variance test, immune to Welford rounding) iff ``chx[k] >= t - w + 1``.
    """
    lr = lastrow[k]
    if lr != _NEVER:
        if x != lastx[k]:
            chx[k] = lr
        if y != lasty[k]:
            chy[k] = lr
    lastx[k] = x
    lasty[k] = y
    lastrow[k] = t


# --------------------------------------------------------------------------- #
# Roll (1984) spread
# --------------------------------------------------------------------------- #


@njit(cache=True)
def roll_row(c, o, j0, j1, w, last, prevr, cnt, n, mx, my, cxx, cyy, cxy, rx, ry):
    """One row of Roll's spread for assets ``[j0, j1)`` (window of ``w`` return pairs)."""
    for j in range(j0, j1):
        v = c[j]
        if not (v == v):
            o[j] = NAN
            continue
        p = last[j]
        last[j] = v
        r = math.log(v / p)  # NaN at the first valid bar
        rp = prevr[j]
        if r == r:
            prevr[j] = r
        if not (r == r and rp == rp):
            o[j] = NAN
            continue
        k = _cm_push(j, r, rp, w, cnt, n, mx, my, cxx, cyy, cxy, rx, ry)
        if k >= w:
            cov = cxy[j] / (w - 1.0)
            o[j] = 2.0 * math.sqrt(-cov) if cov < 0.0 else 0.0
        else:
            o[j] = NAN


@njit(cache=True, parallel=True)
def roll_nb(c, out, nblk, w, last, prevr, cnt, n, mx, my, cxx, cyy, cxy, rx, ry):
    T, N = c.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        for t in range(T):
            roll_row(c[t], out[t], j0, j1, w, last, prevr, cnt, n, mx, my, cxx, cyy, cxy,
                     rx, ry)


# --------------------------------------------------------------------------- #
# rolling correlation / beta to a market asset (panel-row windows)
# --------------------------------------------------------------------------- #


@njit(cache=True)
def corr_row(c, rm, oc, ob, j0, j1, t, w, minp, mkt, last, cnt, n, mx, my, cxx, cyy, cxy,
             rx, ry, lastx, lasty, lastrow, chx, chy):
    """One panel row of correlation (``oc``) and beta (``ob``) to the market return ``rm``.

    Every asset pushes one pair per row (NaN if its own or the market's return is
    missing), so the window is the last ``w`` panel rows. Output is NaN where the
    asset has no bar, fewer than ``minp`` pairs count, or either return is constant
    over the counted pairs.
    """
    lo = t - w + 1
    for j in range(j0, j1):
        v = c[j]
        p = last[j]
        r = math.log(v / p)
        if v == v:
            last[j] = v
        ok = r == r and rm == rm
        _cm_push(j, r, rm, w, cnt, n, mx, my, cxx, cyy, cxy, rx, ry)
        if ok:
            _flat_track(j, r, rm, t, lastx, lasty, lastrow, chx, chy)
        rc = NAN
        rb = NAN
        if v == v and n[j] >= minp and chx[j] >= lo and chy[j] >= lo:
            sxx = cxx[j]
            syy = cyy[j]
            if sxx > 0.0 and syy > 0.0:
                if j == mkt:
                    rc = 1.0
                    rb = 1.0
                else:
                    rc = cxy[j] / math.sqrt(sxx * syy)
                    rc = 1.0 if rc > 1.0 else (-1.0 if rc < -1.0 else rc)
                    rb = cxy[j] / syy
        oc[j] = rc
        ob[j] = rb


@njit(cache=True, parallel=True)
def corr_nb(c, rm, oc, ob, nblk, w, minp, mkt, last, cnt, n, mx, my, cxx, cyy, cxy, rx, ry,
            lastx, lasty, lastrow, chx, chy):
    T, N = c.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        for t in range(T):
            corr_row(c[t], rm[t], oc[t], ob[t], j0, j1, t, w, minp, mkt, last, cnt, n, mx,
                     my, cxx, cyy, cxy, rx, ry, lastx, lasty, lastrow, chx, chy)


@njit(cache=True)
def market_return_row(c, mkt, mlast):
    """Market log return of one row over its previous valid close (``mlast``: (1,) state)."""
    v = c[mkt]
    r = math.log(v / mlast[0])
    if v == v:
        mlast[0] = v
    return r


@njit(cache=True)
def market_returns_nb(c, mkt):
    """Log returns of column ``mkt`` over its previous valid bar, shape (T,)."""
    T = c.shape[0]
    out = np.empty(T)
    mlast = np.full(1, NAN)
    for t in range(T):
        out[t] = market_return_row(c[t], mkt, mlast)
    return out


# --------------------------------------------------------------------------- #
# mean pairwise correlation (all pairs i < j, panel-row windows)
# --------------------------------------------------------------------------- #


@njit(cache=True)
def mpc_block(rnew, rold, has_old, win, s0, resync, cnew, t, w, minp, p0, p1, pi, pj,
              n, mx, my, cxx, cyy, cxy, lastx, lasty, lastrow, chx, chy):
    """Update pairs ``[p0, p1)`` with one panel row; return (sum, count) of defined correlations.

    ``rnew``/``rold``: (N,) returns entering / leaving the window (``rold`` used when
    ``has_old``); ``win``: (w, N) returns of the window's rows, chronological row k at
    ``win[(s0 + k) % w]`` (read when ``resync``: exact two-pass recomputation);
    ``cnew``: (N,) closes of this row (a pair counts only where both assets have a bar).
    """
    lo = t - w + 1
    acc = 0.0
    cntd = 0.0
    for p in range(p0, p1):
        i = pi[p]
        j = pj[p]
        if has_old:
            xo = rold[i]
            yo = rold[j]
            if xo == xo and yo == yo:
                _cm_remove(p, xo, yo, n, mx, my, cxx, cyy, cxy)
        x = rnew[i]
        y = rnew[j]
        if x == x and y == y:
            _cm_add(p, x, y, n, mx, my, cxx, cyy, cxy)
            _flat_track(p, x, y, t, lastx, lasty, lastrow, chx, chy)
        if resync:
            nn = 0.0
            sx = 0.0
            sy = 0.0
            for k in range(w):
                q = (s0 + k) % w
                a = win[q, i]
                b = win[q, j]
                if a == a and b == b:
                    nn += 1.0
                    sx += a
                    sy += b
            ax = sx / nn if nn > 0.0 else 0.0
            ay = sy / nn if nn > 0.0 else 0.0
            sxx = 0.0
            syy = 0.0
            sxy = 0.0
            for k in range(w):
                q = (s0 + k) % w
                a = win[q, i]
                b = win[q, j]
                if a == a and b == b:
                    sxx += (a - ax) * (a - ax)
                    syy += (b - ay) * (b - ay)
                    sxy += (a - ax) * (b - ay)
            n[p] = nn
            mx[p] = ax
            my[p] = ay
            cxx[p] = sxx
            cyy[p] = syy
            cxy[p] = sxy
        ci = cnew[i]
        cj = cnew[j]
        if (ci == ci and cj == cj and n[p] >= minp and chx[p] >= lo and chy[p] >= lo
                and cxx[p] > 0.0 and cyy[p] > 0.0):
            rc = cxy[p] / math.sqrt(cxx[p] * cyy[p])
            rc = 1.0 if rc > 1.0 else (-1.0 if rc < -1.0 else rc)
            acc += rc
            cntd += 1.0
    return acc, cntd


@njit(cache=True, parallel=True)
def mpc_nb(c, r, psum, pcnt, w, minp, bounds, pi, pj, n, mx, my, cxx, cyy, cxy,
           lastx, lasty, lastrow, chx, chy):
    """Batch driver: ``prange`` over pair blocks ``[bounds[k], bounds[k+1])``, time inner.

    ``r`` is the (T, N) log-return panel; block partial sums/counts go to ``psum``/
    ``pcnt`` (nblk, T) and are reduced by the caller in block order.
    """
    T = c.shape[0]
    nblk = bounds.shape[0] - 1
    for kb in prange(nblk):
        p0 = bounds[kb]
        p1 = bounds[kb + 1]
        for t in range(T):
            has_old = t >= w
            t_old = t - w if has_old else 0
            resync = (t + 1) % w == 0
            t_win = t - w + 1 if t + 1 >= w else 0
            a, b = mpc_block(r[t], r[t_old], has_old, r[t_win:t_win + w], 0, resync, c[t], t,
                             w, minp, p0, p1, pi, pj, n, mx, my, cxx, cyy, cxy, lastx, lasty,
                             lastrow, chx, chy)
            psum[kb, t] = a
            pcnt[kb, t] = b


@njit(cache=True)
def log_return_row(c, last, r):
    """(N,) log returns of one row over each asset's previous valid close; updates ``last``."""
    for j in range(c.shape[0]):
        v = c[j]
        r[j] = math.log(v / last[j])
        if v == v:
            last[j] = v


#: number of pair blocks (fixed, so the batch and stream reductions share one order)
_PAIR_BLOCKS = 16


def pair_layout(N: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair indices ``(pi, pj)`` of all i < j (row-major) and the block bounds."""
    iu, ju = np.triu_indices(N, k=1)
    P = iu.shape[0]
    nblk = max(1, min(_PAIR_BLOCKS, P))
    bounds = np.linspace(0, P, nblk + 1).round().astype(np.int64)
    return iu.astype(np.int64), ju.astype(np.int64), bounds


def pair_state(P: int) -> tuple:
    """Fresh pair state: n, mx, my, cxx, cyy, cxy, lastx, lasty, lastrow, chx, chy."""
    z = tuple(np.zeros(P) for _ in range(6))
    return (*z, np.zeros(P), np.zeros(P), np.full(P, _NEVER, np.int64),
            np.full(P, _NEVER, np.int64), np.full(P, _NEVER, np.int64))


def reduce_pairs(psum: np.ndarray, pcnt: np.ndarray) -> np.ndarray:
    """Mean over blocks (sequential in block order); NaN where no pair is defined."""
    s = psum[0].copy()
    k = pcnt[0].copy()
    for b in range(1, psum.shape[0]):
        s += psum[b]
        k += pcnt[b]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > 0, s / np.where(k > 0, k, 1.0), np.nan)


# --------------------------------------------------------------------------- #
# state allocation (shared with the streaming classes)
# --------------------------------------------------------------------------- #


def cs_state(N: int, w: int) -> tuple:
    """ph, pl, cnt, s, ring."""
    return (np.full(N, NAN), np.full(N, NAN), np.zeros(N, np.int64), np.zeros(N),
            np.zeros((w, N)))


def amihud_state(N: int, w: int) -> tuple:
    """last, cnt, s, m, ring."""
    return (np.full(N, NAN), np.zeros(N, np.int64), np.zeros(N), np.zeros(N),
            np.full((w, N), NAN))


def cm_state(N: int, w: int) -> tuple:
    """cnt, n, mx, my, cxx, cyy, cxy, rx, ry."""
    return (np.zeros(N, np.int64), *(np.zeros(N) for _ in range(6)), np.full((w, N), NAN),
            np.full((w, N), NAN))


def flat_state(N: int) -> tuple:
    """lastx, lasty, lastrow, chx, chy."""
    return (np.zeros(N), np.zeros(N), np.full(N, _NEVER, np.int64),
            np.full(N, _NEVER, np.int64), np.full(N, _NEVER, np.int64))


# --------------------------------------------------------------------------- #
# backend entry points (plain Python; validated 2-D float64 inputs)
# --------------------------------------------------------------------------- #


def _c(a: np.ndarray) -> np.ndarray:
    if hasattr(a, "get") and not isinstance(a, np.ndarray):  # a cupy array (CPU fallback)
        a = a.get()
    return np.ascontiguousarray(a, dtype=np.float64)


def _nblk(N: int) -> int:
    import numba

    return max(1, min(numba.get_num_threads(), N // 64))


def corwin_schultz_spread(high, low, window):
    h, lo = _c(high), _c(low)
    T, N = h.shape
    out = np.empty((T, N))
    cs_nb(h, lo, out, _nblk(N), window, *cs_state(N, window))
    return out


def amihud_illiquidity(close, volume, window, scale):
    c, v = _c(close), _c(volume)
    T, N = c.shape
    out = np.empty((T, N))
    amihud_nb(c, v, out, _nblk(N), window, float(scale), *amihud_state(N, window))
    return out


def roll_spread(close, window):
    c = _c(close)
    T, N = c.shape
    out = np.empty((T, N))
    roll_nb(c, out, _nblk(N), window, np.full(N, NAN), np.full(N, NAN),
            *cm_state(N, window))
    return out


def correlation_beta(close, market, window, min_periods):
    c = _c(close)
    T, N = c.shape
    oc = np.empty((T, N))
    ob = np.empty((T, N))
    rm = market_returns_nb(c, market)
    corr_nb(c, rm, oc, ob, _nblk(N), window, float(min_periods), market, np.full(N, NAN),
            *cm_state(N, window), *flat_state(N))
    return oc, ob


def rolling_correlation(close, market, window, min_periods):
    return correlation_beta(close, market, window, min_periods)[0]


def rolling_beta(close, market, window, min_periods):
    return correlation_beta(close, market, window, min_periods)[1]


def mean_pairwise_correlation(close, window, min_periods):
    from workbench.features._cpu import log_returns

    c = _c(close)
    T, N = c.shape
    if N < 2:
        return np.full(T, np.nan)
    r = log_returns(c)
    pi, pj, bounds = pair_layout(N)
    nb = bounds.shape[0] - 1
    psum = np.zeros((nb, T))
    pcnt = np.zeros((nb, T))
    mpc_nb(c, r, psum, pcnt, window, float(min_periods), bounds, pi, pj,
           *pair_state(pi.shape[0]))
    return reduce_pairs(psum, pcnt)


# --------------------------------------------------------------------------- #
# L2 order-book kernels (element-wise, array namespace ``xp``)
# --------------------------------------------------------------------------- #


def _two_sided(xp, bid_px, ask_px):
    """(…) bool: both best levels present."""
    return ~(xp.isnan(bid_px[..., 0]) | xp.isnan(ask_px[..., 0]))


def l2_spread(xp, bid_px, ask_px):
    return ask_px[..., 0] - bid_px[..., 0]


def l2_mid(xp, bid_px, ask_px):
    return (ask_px[..., 0] + bid_px[..., 0]) / 2.0


def l2_relative_spread(xp, bid_px, ask_px):
    return l2_spread(xp, bid_px, ask_px) / l2_mid(xp, bid_px, ask_px)


def _top_sum(xp, sz, levels):
    top = sz[..., :levels]
    return xp.where(xp.isnan(top), 0.0, top).sum(axis=-1)


def l2_depth_imbalance(xp, bid_px, ask_px, bid_sz, ask_sz, levels):
    b = _top_sum(xp, bid_sz, levels)
    a = _top_sum(xp, ask_sz, levels)
    tot = b + a
    ok = _two_sided(xp, bid_px, ask_px) & (tot > 0)
    return xp.where(ok, (b - a) / xp.where(ok, tot, 1.0), xp.nan)


def l2_depth(xp, bid_px, ask_px, bid_sz, ask_sz, levels):
    tot = _top_sum(xp, bid_sz, levels) + _top_sum(xp, ask_sz, levels)
    return xp.where(_two_sided(xp, bid_px, ask_px), tot, xp.nan)


def l2_weighted_mid(xp, bid_px, ask_px, bid_sz, ask_sz):
    b0, a0 = bid_px[..., 0], ask_px[..., 0]
    bs, az = bid_sz[..., 0], ask_sz[..., 0]
    tot = bs + az
    ok = tot > 0  # False for NaN
    return xp.where(ok, (b0 * az + a0 * bs) / xp.where(ok, tot, 1.0), xp.nan)


def l2_price_impact(xp, bid_px, ask_px, bid_sz, ask_sz):
    mid = l2_mid(xp, bid_px, ask_px)
    return xp.abs(l2_weighted_mid(xp, bid_px, ask_px, bid_sz, ask_sz) - mid) / mid
