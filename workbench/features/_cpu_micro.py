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


@njit(cache=True, error_model="numpy", inline="always")
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


@njit(cache=True, error_model="numpy", inline="always")
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


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy", parallel=True)
def cs_nb(h, lo, out, nblk, w, ph, pl, cnt, s, ring):
    T, N = h.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        for t in range(T):
            cs_row(h[t], lo[t], out[t], j0, j1, w, ph, pl, cnt, s, ring)


# --------------------------------------------------------------------------- #
# Amihud (2002) illiquidity
# --------------------------------------------------------------------------- #


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy", parallel=True)
def amihud_nb(c, v, out, nblk, w, scale, last, cnt, s, m, ring):
    T, N = c.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        for t in range(T):
            amihud_row(c[t], v[t], out[t], j0, j1, w, scale, last, cnt, s, m, ring)


# --------------------------------------------------------------------------- #
# rolling co-moments of a pair (x, y): Welford add/remove, exact re-sync
# --------------------------------------------------------------------------- #


@njit(cache=True, error_model="numpy", inline="always")
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


@njit(cache=True, error_model="numpy", inline="always")
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


@njit(cache=True, error_model="numpy", inline="always")
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


@njit(cache=True, error_model="numpy", inline="always")
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


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy", parallel=True)
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


@njit(cache=True, error_model="numpy")
def corr_row(c, rm, oc, ob, j0, j1, t, w, minp, mkt, last, cnt, n, mx, my, cxx, cyy, cxy,
             rx, ry, lastx, lasty, lastrow, chx, chy):
    """One panel row of correlation (``oc``) and beta (``ob``) to the market return ``rm``.

    Every asset pushes one pair per row (NaN if its own or the market's return is
    missing), so the window is the last ``w`` panel rows. Output is NaN where the
    asset has no bar, fewer than ``minp`` pairs count, or the market's return is
    constant over the counted pairs; where only the asset's return is constant, the
    correlation is NaN and the beta exactly 0 (``cov = 0``, ``var(r_m) > 0``).
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
        if v == v and n[j] >= minp and chy[j] >= lo and cyy[j] > 0.0:
            syy = cyy[j]
            if j == mkt:
                rc = 1.0
                rb = 1.0
            elif chx[j] >= lo and cxx[j] > 0.0:
                sxx = cxx[j]
                rc = cxy[j] / math.sqrt(sxx * syy)
                rc = 1.0 if rc > 1.0 else (-1.0 if rc < -1.0 else rc)
                rb = cxy[j] / syy
            else:  # the asset's returns are constant: no co-movement, beta exactly 0
                rb = 0.0
        oc[j] = rc
        ob[j] = rb


@njit(cache=True, error_model="numpy", parallel=True)
def corr_nb(c, rm, oc, ob, nblk, w, minp, mkt, last, cnt, n, mx, my, cxx, cyy, cxy, rx, ry,
            lastx, lasty, lastrow, chx, chy):
    T, N = c.shape
    for kb in prange(nblk):
        j0, j1 = _span(N, nblk, kb)
        for t in range(T):
            corr_row(c[t], rm[t], oc[t], ob[t], j0, j1, t, w, minp, mkt, last, cnt, n, mx,
                     my, cxx, cyy, cxy, rx, ry, lastx, lasty, lastrow, chx, chy)


@njit(cache=True, error_model="numpy")
def market_return_row(c, mkt, mlast):
    """Market log return of one row over its previous valid close (``mlast``: (1,) state)."""
    v = c[mkt]
    r = math.log(v / mlast[0])
    if v == v:
        mlast[0] = v
    return r


@njit(cache=True, error_model="numpy")
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
#
# Per pair (i, j) the co-moments of the rows where both returns are finite slide by
# Welford removal / addition (``_cm_remove`` / ``_cm_add``) and are recomputed exactly
# (two-pass, chronological) every ``w`` rows. The pairs are held in two forms:
#
# * clean pairs: the two assets had the same validity mask on every row since the
#   start of the last exact window. Then the pair's count, means, cxx and cyy are the
#   two assets' own (per-asset state ``A``), and every Welford step on cxy factors into
#   per-asset terms: removal ``cxy -= ra_i * rb_j``, addition ``cxy += aa_i * ab_j``. Only
#   cxy is kept per pair, packed row-major (pair ``p(i, j) = off[i] + j - i - 1``), and
#   a bar updates it with one vectorised loop over j per asset i (rank-1 add/remove).
#   The exact re-sync is then ``cxy = D^T D`` over the centred window ``D``, summed
#   row by row in time order. The per-asset test "x constant over the window" equals
#   the pair's (same counted rows).
# * dirty pairs (a bar where exactly one of the two has a return): full per-pair state
#   in ``dst`` (the arithmetic of the per-pair kernel), materialised from the clean
#   state when the masks first differ, with the flat-series tracking replayed over the
#   window (its test depends on the window's values only). A dirty pair turns clean
#   again at an exact re-sync whose window has equal masks for the two assets.
#
# Both forms do every pair's floating-point operations in the per-pair order, so the
# result does not depend on which form a pair is in. The mean over pairs is summed in
# ``_PAIR_BLOCKS`` blocks of consecutive pairs (each block in pair order, then the
# blocks in order): fixed, so batch and stream agree bit for bit.

#: number of pair blocks of the reduction (fixed, so the batch and stream sums share one order)
_PAIR_BLOCKS = 16


@njit(cache=True, error_model="numpy", inline="always")
def _cma(n, mx, my, cxx, cyy, cxy, x, y):
    """Welford addition of the pair (x, y) on scalars (as :func:`_cm_add`)."""
    nn = n + 1.0
    dx = x - mx
    dy = y - my
    mxn = mx + dx / nn
    myn = my + dy / nn
    return nn, mxn, myn, cxx + dx * (x - mxn), cyy + dy * (y - myn), cxy + dx * (y - myn)


@njit(cache=True, error_model="numpy", inline="always")
def _cmr(n, mx, my, cxx, cyy, cxy, x, y):
    """Welford removal of the pair (x, y) on scalars (as :func:`_cm_remove`)."""
    nn = n - 1.0
    if nn <= 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    mxn = mx - (x - mx) / nn
    myn = my - (y - my) / nn
    return (nn, mxn, myn, cxx - (x - mxn) * (x - mx), cyy - (y - myn) * (y - my),
            cxy - (x - mxn) * (y - my))


@njit(cache=True, error_model="numpy", inline="always")
def _pair_corr(n, cxx, cyy, cxy, chx, chy, lo, minp):
    """Clipped correlation of a pair, NaN where not defined (as the per-pair kernel)."""
    if n >= minp and chx >= lo and chy >= lo and cxx > 0.0 and cyy > 0.0:
        rc = cxy / math.sqrt(cxx * cyy)
        return 1.0 if rc > 1.0 else (-1.0 if rc < -1.0 else rc)
    return NAN


@njit(cache=True, error_model="numpy")
def _mpc_dirty_add(i, j, p, t, w, win, M, A, cxy, dflag, dlist, nd, dst):
    """Turn the clean pair ``p = (i, j)`` dirty at the start of row ``t``.

    Its Welford state is the clean one (per-asset state and ``cxy[p]``); its
    flat-series tracking is replayed from rows ``t-w+1 .. t-1`` of the window.
    """
    dst[p, 0] = A[0, i]
    dst[p, 1] = A[1, i]
    dst[p, 2] = A[1, j]
    dst[p, 3] = A[2, i]
    dst[p, 4] = A[2, j]
    dst[p, 5] = cxy[p]
    lx = 0.0
    ly = 0.0
    lr = float(_NEVER)
    chx = float(_NEVER)
    chy = float(_NEVER)
    for u in range(max(0, t - w + 1), t):
        row = win[u % M]
        x = row[i]
        y = row[j]
        if x == x and y == y:
            if lr != _NEVER:
                if x != lx:
                    chx = lr
                if y != ly:
                    chy = lr
            lx = x
            ly = y
            lr = float(u)
    dst[p, 6] = lx
    dst[p, 7] = ly
    dst[p, 8] = lr
    dst[p, 9] = chx
    dst[p, 10] = chy
    dst[p, 11] = i
    dst[p, 12] = j
    dflag[p] = 1
    dlist[nd[0]] = p
    nd[0] += 1


@njit(cache=True, error_model="numpy")
def mpc_row(rnew, rold, has_old, win, M, cnew, t, w, minp, off, bounds, A, S, cxy, rc, dflag,
            dlist, nd, dst, lst, D, words, red):
    """Advance the mean pairwise correlation by panel row ``t``; return its value.

    ``rnew``/``rold``: (N,) log returns entering / leaving the window (``rold`` read when
    ``has_old``); row ``u`` of the window (``t-w+1 <= u <= t``) is ``win[u % M]`` (the
    (T, N) panel with ``M = T``, or a ring of ``M = w`` rows); ``cnew``: (N,) closes of
    row ``t`` (a pair counts only where both assets have a bar). State: ``A`` (6, N)
    per-asset count, mean, cxx, flat tracking (last value, its row, change row);
    ``cxy`` (P,) clean pairs' co-moment; ``dflag``/``dlist``/``nd``/``dst`` (P, 13)
    the dirty pairs. Scratch: ``S`` (6, N), ``rc`` (P,), ``lst`` (N,) int64, ``D``
    (w, N), ``words`` (nw, N) uint64, ``red`` (2, nblk). See the comment above.
    """
    N = rnew.shape[0]
    lo = float(t - w + 1)
    resync = (t + 1) % w == 0
    # 1. clean pairs whose masks differ at this row turn dirty (before any update)
    nv = 0
    for i in range(N):
        x = rnew[i]
        nv += x == x
    if 0 < nv < N:
        want = nv * 2 < N  # the minority: valid assets if fewer, else the invalid ones
        nm = 0
        for i in range(N):
            x = rnew[i]
            if (x == x) == want:
                lst[nm] = i
                nm += 1
        for k in range(nm):
            a = lst[k]
            for b in range(N):
                y = rnew[b]
                if (y == y) != want:
                    i = a if a < b else b
                    j = b if a < b else a
                    p = off[i] + j - i - 1
                    if dflag[p] == 0:
                        _mpc_dirty_add(i, j, p, t, w, win, M, A, cxy, dflag, dlist, nd, dst)
    # 2. per-asset Welford removal / addition and flat tracking; rank-1 factors in S
    ra = S[0]
    rb = S[1]
    aa = S[2]
    ab = S[3]
    fl = S[4]  # bit 1: removal, 2: removal emptied the window, 4: addition
    for i in range(N):
        n = A[0, i]
        m = A[1, i]
        c = A[2, i]
        f = 0.0
        ra[i] = 0.0
        rb[i] = 0.0
        aa[i] = 0.0
        ab[i] = 0.0
        if has_old:
            x = rold[i]
            if x == x:
                nn = n - 1.0
                if nn <= 0.0:
                    n = 0.0
                    m = 0.0
                    c = 0.0
                    f = 3.0
                else:
                    mn = m - (x - m) / nn
                    ra[i] = x - mn
                    rb[i] = x - m
                    c = c - (x - mn) * (x - m)
                    n = nn
                    m = mn
                    f = 1.0
        x = rnew[i]
        if x == x:
            nn = n + 1.0
            dx = x - m
            mn = m + dx / nn
            aa[i] = dx
            ab[i] = x - mn
            c = c + dx * (x - mn)
            n = nn
            m = mn
            f += 4.0
            lr = A[4, i]
            if lr != _NEVER and x != A[3, i]:
                A[5, i] = lr
            A[3, i] = x
            A[4, i] = t
        A[0, i] = n
        A[1, i] = m
        A[2, i] = c
        fl[i] = f
    # 3. dirty pairs: the per-pair kernel's steps
    ndirty = nd[0]
    for k in range(ndirty):
        p = dlist[k]
        i = int(dst[p, 11])
        j = int(dst[p, 12])
        n, mx, my, sxx, syy, sxy = dst[p, 0], dst[p, 1], dst[p, 2], dst[p, 3], dst[p, 4], dst[p, 5]
        if has_old:
            xo = rold[i]
            yo = rold[j]
            if xo == xo and yo == yo:
                n, mx, my, sxx, syy, sxy = _cmr(n, mx, my, sxx, syy, sxy, xo, yo)
        x = rnew[i]
        y = rnew[j]
        if x == x and y == y:
            n, mx, my, sxx, syy, sxy = _cma(n, mx, my, sxx, syy, sxy, x, y)
            lr = dst[p, 8]
            if lr != _NEVER:
                if x != dst[p, 6]:
                    dst[p, 9] = lr
                if y != dst[p, 7]:
                    dst[p, 10] = lr
            dst[p, 6] = x
            dst[p, 7] = y
            dst[p, 8] = t
        dst[p, 0] = n
        dst[p, 1] = mx
        dst[p, 2] = my
        dst[p, 3] = sxx
        dst[p, 4] = syy
        dst[p, 5] = sxy
    # 4. exact re-sync every w rows, else the rank-1 update of the clean pairs' cxy
    if resync:
        _mpc_resync(t, w, win, M, A, cxy, dflag, dlist, nd, dst, off, D, words)
    else:
        for i in range(N - 1):
            f = fl[i]
            if f == 0.0:
                continue
            # packed row of asset i against j = i+1 .. N-1 (1-D slices: the loops vectorise)
            n = N - i - 1
            c = cxy[off[i]:off[i] + n]
            a = ra[i]
            b = aa[i]
            rj = rb[i + 1:]
            aj = ab[i + 1:]
            if f == 5.0:  # removal and addition (the usual bar)
                for k in range(n):
                    c[k] = (c[k] - a * rj[k]) + b * aj[k]
            elif f == 1.0:
                for k in range(n):
                    c[k] = c[k] - a * rj[k]
            elif f == 4.0:
                for k in range(n):
                    c[k] = c[k] + b * aj[k]
            elif f == 7.0:  # the removal emptied the window (cxy reset to 0), then addition
                for k in range(n):
                    c[k] = 0.0 + b * aj[k]
            else:
                for k in range(n):
                    c[k] = 0.0
    # 5. correlations: clean pairs from the per-asset terms, then the dirty pairs'
    e = S[5]
    for i in range(N):
        ok = (cnew[i] == cnew[i] and A[0, i] >= minp and A[5, i] >= lo and A[2, i] > 0.0)
        e[i] = 1.0 if ok else 0.0
    cc = A[2]
    for i in range(N - 1):
        n = N - i - 1
        o = rc[off[i]:off[i] + n]
        if e[i] == 0.0:
            for k in range(n):
                o[k] = NAN
            continue
        c = cxy[off[i]:off[i] + n]
        cj = cc[i + 1:]
        ej = e[i + 1:]
        ci = cc[i]
        for k in range(n):
            v = c[k] / math.sqrt(ci * cj[k])
            v = 1.0 if v > 1.0 else (-1.0 if v < -1.0 else v)
            o[k] = v if ej[k] != 0.0 else NAN
    ndirty = nd[0]
    for k in range(ndirty):
        p = dlist[k]
        i = int(dst[p, 11])
        j = int(dst[p, 12])
        if cnew[i] == cnew[i] and cnew[j] == cnew[j]:
            rc[p] = _pair_corr(dst[p, 0], dst[p, 3], dst[p, 4], dst[p, 5], dst[p, 9],
                               dst[p, 10], lo, minp)
        else:
            rc[p] = NAN
    return _mpc_reduce(rc, bounds, red)


@njit(cache=True, error_model="numpy", inline="always")
def _sum4(x0, x1, x2, x3, L):
    """Sums of the finite values of ``x0[:L]`` .. ``x3[:L]``, each in order (4 chains)."""
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for k in range(L):
        v0 = x0[k]
        v1 = x1[k]
        v2 = x2[k]
        v3 = x3[k]
        # += 0.0 for a NaN is exact: a sum that starts at +0.0 is never -0.0
        a0 += v0 if v0 == v0 else 0.0
        a1 += v1 if v1 == v1 else 0.0
        a2 += v2 if v2 == v2 else 0.0
        a3 += v3 if v3 == v3 else 0.0
    return a0, a1, a2, a3


@njit(cache=True, error_model="numpy")
def _mpc_reduce(rc, bounds, red):
    """Mean of the finite ``rc``: each block's sum in pair order, then the blocks in order.

    The blocks' first ``L`` (the shortest block's length) terms are summed four blocks
    at a time (independent chains instead of one latency-bound chain), then each
    block's tail; counts of finite terms per block separately (exact integers).
    """
    nb = bounds.shape[0] - 1
    acc = red[0]
    cnt = red[1]
    L = bounds[1] - bounds[0]
    for b in range(nb):
        L = min(L, bounds[b + 1] - bounds[b])
    b = 0
    while b + 4 <= nb:
        s0, s1, s2, s3 = _sum4(rc[bounds[b]:], rc[bounds[b + 1]:], rc[bounds[b + 2]:],
                               rc[bounds[b + 3]:], L)
        acc[b] = s0
        acc[b + 1] = s1
        acc[b + 2] = s2
        acc[b + 3] = s3
        b += 4
    for b2 in range(b, nb):
        x = rc[bounds[b2]:]
        a = 0.0
        for k in range(L):
            v = x[k]
            a += v if v == v else 0.0
        acc[b2] = a
    for b in range(nb):
        x = rc[bounds[b]:bounds[b + 1]]
        a = acc[b]
        for k in range(L, x.shape[0]):
            v = x[k]
            if v == v:
                a += v
        acc[b] = a
        c = 0
        for k in range(x.shape[0]):
            c += x[k] == x[k]
        cnt[b] = c
    s = acc[0]
    c = cnt[0]
    for b in range(1, nb):
        s += acc[b]
        c += cnt[b]
    return s / c if c > 0.0 else NAN


@njit(cache=True, error_model="numpy")
def _mpc_resync(t, w, win, M, A, cxy, dflag, dlist, nd, dst, off, D, words):
    """Exact two-pass co-moments over window rows ``t-w+1 .. t`` (oldest first)."""
    N = A.shape[1]
    t0 = t - w + 1
    # per asset: count, mean, cxx; validity mask words
    for i in range(N):
        A[0, i] = 0.0
        A[1, i] = 0.0
        A[2, i] = 0.0
    words[:, :] = 0
    for k in range(w):
        row = win[(t0 + k) % M]
        wk = k >> 6
        bit = np.uint64(1) << np.uint64(k & 63)
        for i in range(N):
            x = row[i]
            ok = x == x
            A[0, i] += 1.0 if ok else 0.0
            A[1, i] += x if ok else 0.0
            if ok:
                words[wk, i] |= bit
    for i in range(N):
        n = A[0, i]
        A[1, i] = A[1, i] / n if n > 0.0 else 0.0
    for k in range(w):
        row = win[(t0 + k) % M]
        dk = D[k]
        for i in range(N):
            x = row[i]
            ok = x == x
            d = x - A[1, i]
            dk[i] = d if ok else 0.0
            A[2, i] += d * d if ok else 0.0
    # clean pairs: cxy = sum over the window's rows of the centred products, in time
    # order. D is 0 where an asset has no return; a clean pair's two assets have returns
    # on the same rows, so the other rows add 0 * 0 = +0.0 (exact no-ops: a sum from
    # +0.0 is never -0.0) and no mask is needed.
    nw = words.shape[0]
    for i in range(N - 1):
        n = N - i - 1
        c = cxy[off[i]:off[i] + n]
        for m in range(n):
            c[m] = 0.0
        for k in range(w):
            a = D[k, i]
            dk = D[k, i + 1:]
            for m in range(n):
                c[m] += a * dk[m]
    # dirty pairs: the per-pair two-pass; clean again where the masks are equal
    ndirty = nd[0]
    keep = 0
    for k in range(ndirty):
        p = dlist[k]
        i = int(dst[p, 11])
        j = int(dst[p, 12])
        nn = 0.0
        sx = 0.0
        sy = 0.0
        for q in range(w):
            row = win[(t0 + q) % M]
            a = row[i]
            b = row[j]
            if a == a and b == b:
                nn += 1.0
                sx += a
                sy += b
        ax = sx / nn if nn > 0.0 else 0.0
        ay = sy / nn if nn > 0.0 else 0.0
        sxx = 0.0
        syy = 0.0
        sxy = 0.0
        for q in range(w):
            row = win[(t0 + q) % M]
            a = row[i]
            b = row[j]
            if a == a and b == b:
                sxx += (a - ax) * (a - ax)
                syy += (b - ay) * (b - ay)
                sxy += (a - ax) * (b - ay)
        dst[p, 0] = nn
        dst[p, 1] = ax
        dst[p, 2] = ay
        dst[p, 3] = sxx
        dst[p, 4] = syy
        dst[p, 5] = sxy
        same = True
        for q in range(nw):
            if words[q, i] != words[q, j]:
                same = False
                break
        if same:
            dflag[p] = 0
        else:
            dlist[keep] = p
            keep += 1
    nd[0] = keep


@njit(cache=True, error_model="numpy")
def log_return_row(c, last, r):
    """(N,) log returns of one row over each asset's previous valid close; updates ``last``."""
    for j in range(c.shape[0]):
        v = c[j]
        r[j] = math.log(v / last[j])
        if v == v:
            last[j] = v


@njit(cache=True, error_model="numpy")
def mpc_stream_step(c, last, ring, rold, t, w, minp, off, bounds, A, S, cxy, rc, dflag, dlist,
                    nd, dst, lst, D, words, red):
    """One streaming bar: log returns of closes ``c`` into the (w, N) ring, then :func:`mpc_row`."""
    q = t % w
    row = ring[q]
    for j in range(c.shape[0]):
        rold[j] = row[j]
        v = c[j]
        row[j] = math.log(v / last[j])
        if v == v:
            last[j] = v
    return mpc_row(row, rold, t >= w, ring, w, c, t, w, minp, off, bounds, A, S, cxy, rc,
                   dflag, dlist, nd, dst, lst, D, words, red)


@njit(cache=True, error_model="numpy")
def mpc_nb(c, r, out, w, minp, off, bounds, A, S, cxy, rc, dflag, dlist, nd, dst, lst, D,
           words, red):
    """Batch driver: :func:`mpc_row` for rows 0 .. T-1 of the (T, N) log returns ``r``."""
    T = c.shape[0]
    for t in range(T):
        t_old = t - w if t >= w else 0
        out[t] = mpc_row(r[t], r[t_old], t >= w, r, T, c[t], t, w, minp, off, bounds, A, S,
                         cxy, rc, dflag, dlist, nd, dst, lst, D, words, red)


def pair_offsets(N: int) -> np.ndarray:
    """(N,) int64 start of each asset's packed row: pair ``p(i, j) = off[i] + j - i - 1``."""
    i = np.arange(N, dtype=np.int64)
    return i * (2 * N - i - 1) // 2


def pair_bounds(P: int) -> np.ndarray:
    """Bounds of the ``_PAIR_BLOCKS`` reduction blocks of ``P`` pairs (fewer if P is small)."""
    nblk = max(1, min(_PAIR_BLOCKS, P))
    return np.linspace(0, P, nblk + 1).round().astype(np.int64)


def mpc_state(N: int, w: int) -> tuple:
    """Fresh state and scratch of :func:`mpc_row` for N assets: the arguments from ``off``."""
    P = N * (N - 1) // 2
    bounds = pair_bounds(P)
    A = np.zeros((6, N))
    A[4:] = float(_NEVER)  # flat tracking: no valid value yet
    dst = np.zeros((P, 13))
    return (pair_offsets(N), bounds, A, np.zeros((6, N)), np.zeros(P), np.empty(P),
            np.zeros(P, np.uint8), np.zeros(P, np.int64), np.zeros(1, np.int64), dst,
            np.zeros(N, np.int64), np.zeros((w, N)), np.zeros(((w + 63) // 64, N), np.uint64),
            np.zeros((2, bounds.shape[0] - 1)))


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
    out = np.empty(T)
    mpc_nb(c, r, out, window, float(min_periods), *mpc_state(N, window))
    return out


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
