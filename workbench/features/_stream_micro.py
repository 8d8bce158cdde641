"""Streaming classes of the microstructure, cross-asset and order-book features.

Each class keeps O(window) state per symbol (a ``(S, N)`` state matrix and ``(w, N)``
rings of the last ``window`` values) and advances all N symbols by one bar with a single
numba call. The step kernels below mirror the per-row functions of
:mod:`workbench.features._cpu_micro` operation for operation (same rolling sums,
Welford co-moment add/remove, same exact re-sync schedule, same flat-series tracking),
so every step's output equals the batch output's row bit for bit.

Per-update cost (the techniques of :mod:`workbench.features._stream_core`): one loop
over the N symbols; per-symbol helpers take and return scalars only (an array passed to
a per-symbol helper costs reference-count operations at every symbol); the exact
re-sync of a window (O(w), every w values) is deferred to the end of the bar and run
for all the symbols due at once with the symbols in the inner loop (aligned symbols
vectorise); nothing is allocated per update.

Per-symbol state is O(window); work per bar is O(1) per symbol (amortised), O(N^2) for
mean pairwise correlation (:func:`workbench.features._cpu_micro.mpc_row`, shared with the
batch kernel), and O(k) for the stateless order-book features.
"""

from __future__ import annotations

import math
import numbers
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from numba import njit

from workbench.features import _cpu_micro as K
from workbench.features._api import _int, _positive
from workbench.features._cpu_micro import _cs_estimate
from workbench.features._stream_base import StreamFeature

__all__ = [
    "AmihudStream",
    "BetaStream",
    "CorrelationStream",
    "CorwinSchultzStream",
    "DepthImbalanceStream",
    "DepthStream",
    "MeanPairwiseCorrelationStream",
    "PriceImpactStream",
    "RelativeSpreadStream",
    "RollStream",
    "SpreadStream",
    "WeightedMidStream",
]

NAN = math.nan
#: "row index" of a change that never happened (as _cpu_micro._NEVER, held in float64)
_NEVER = float(K._NEVER)


def _vec(x: dict[str, np.ndarray], name: str, n: int) -> np.ndarray:
    a = np.ascontiguousarray(x[name], dtype=np.float64)
    if a.shape != (n,):
        raise ValueError(f"input {name!r} must have shape ({n},), got {a.shape}")
    return a


def _min_periods(min_periods: Any, window: int) -> int:
    if min_periods is None:
        return window
    mp = _int(min_periods, "min_periods", 2)
    if mp > window:
        raise ValueError(f"min_periods must be an int in [2, window={window}], got {min_periods!r}")
    return mp


def _market(market: Any, n: int, symbols: Sequence[str] | None) -> int:
    """Column index of ``market``: an int in [0, n) or a symbol name found in ``symbols``."""
    if isinstance(market, str):
        if symbols is None:
            raise ValueError(f"market {market!r} is a symbol name; pass symbols= to resolve it "
                             f"(or give the market's column index)")
        syms = list(symbols)
        if market not in syms:
            raise ValueError(f"market {market!r} is not among the symbols {syms}")
        return syms.index(market)
    if (isinstance(market, bool) or not isinstance(market, numbers.Integral)
            or not 0 <= int(market) < n):
        raise ValueError(f"market must be a column index in [0, {n}) or a symbol name, "
                         f"got {market!r}")
    return int(market)


# --------------------------------------------------------------------------- #
# step kernels: one call per bar for all N symbols
# --------------------------------------------------------------------------- #


@njit(cache=True, error_model="numpy")
def _runs_sum(buf, pend, n, w, st, row):
    """Exact ring sums ``st[row, j] = sum(buf[0:w, j])`` of the symbols ``pend[:n]``.

    Same arithmetic as the re-sync in ``_cpu_micro._ring_sum_push`` (run when the ring
    wraps, ring row 0 holding the oldest value): ``acc = 0; acc += buf[q]``, q = 0..w-1.
    ``pend`` is increasing; runs of adjacent symbols go with the symbols in the inner
    loop (1-D slices over contiguous memory, so the loops vectorise).
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


@njit(cache=True, error_model="numpy")
def _runs_cm(rx, ry, pend, n, w, st, r0, ri):
    """Exact two-pass co-moments of the pairs in rings ``rx``/``ry`` for ``pend[:n]``.

    State rows ``r0 .. r0+5`` of ``st``: count, mean x, mean y, cxx, cyy, cxy. Same
    arithmetic as the re-sync in ``_cpu_micro._cm_push`` (run when the ring wraps, so
    rows 0 .. w-1 are oldest first; pairs with a NaN are skipped). A skipped pair adds
    +0.0 to a sum here, which leaves it unchanged: a sum that starts at +0.0 is never
    -0.0 in round-to-nearest.

    With ``ri >= 0``, rows ``ri .. ri+2`` hold the first pass already done (count, sum
    of x, sum of y of the valid pairs, accumulated as each pair was pushed into rows
    0, 1, ..., w-1 by the caller: the same additions in the same order); they
    are used, then zeroed for the next window, and only the second pass runs here.
    """
    m = 0
    while m < n:
        j0 = pend[m]
        e = m + 1
        while e < n and pend[e] == pend[e - 1] + 1:
            e += 1
        j1 = j0 + e - m
        nr = j1 - j0
        nn = st[r0, j0:j1]
        ax = st[r0 + 1, j0:j1]
        ay = st[r0 + 2, j0:j1]
        sxx = st[r0 + 3, j0:j1]
        syy = st[r0 + 4, j0:j1]
        sxy = st[r0 + 5, j0:j1]
        if ri >= 0:
            inn = st[ri, j0:j1]
            iax = st[ri + 1, j0:j1]
            iay = st[ri + 2, j0:j1]
            for t in range(nr):
                nn[t] = inn[t]
                ax[t] = iax[t]
                ay[t] = iay[t]
                inn[t] = 0.0
                iax[t] = 0.0
                iay[t] = 0.0
        else:
            for t in range(nr):
                nn[t] = 0.0
                ax[t] = 0.0
                ay[t] = 0.0
            for q in range(w):
                a = rx[q, j0:j1]
                b = ry[q, j0:j1]
                for t in range(nr):
                    at = a[t]
                    bt = b[t]
                    ok = (at == at) & (bt == bt)  # no short circuit: the loop vectorises
                    nn[t] += 1.0 if ok else 0.0
                    ax[t] += at if ok else 0.0
                    ay[t] += bt if ok else 0.0
        for t in range(nr):
            c = nn[t]
            ax[t] = ax[t] / c if c > 0.0 else 0.0
            ay[t] = ay[t] / c if c > 0.0 else 0.0
            sxx[t] = 0.0
            syy[t] = 0.0
            sxy[t] = 0.0
        for q in range(w):
            a = rx[q, j0:j1]
            b = ry[q, j0:j1]
            for t in range(nr):
                at = a[t]
                bt = b[t]
                ok = (at == at) & (bt == bt)
                da = at - ax[t]
                db = bt - ay[t]
                sxx[t] += da * da if ok else 0.0
                syy[t] += db * db if ok else 0.0
                sxy[t] += da * db if ok else 0.0
        m = e


@njit(cache=True, error_model="numpy", inline="always")
def _cm_add(n, mx, my, cxx, cyy, cxy, x, y):
    """Welford addition of the pair (x, y) on scalars (as ``_cpu_micro._cm_add``)."""
    nn = n + 1.0
    dx = x - mx
    dy = y - my
    mxn = mx + dx / nn
    myn = my + dy / nn
    return nn, mxn, myn, cxx + dx * (x - mxn), cyy + dy * (y - myn), cxy + dx * (y - myn)


@njit(cache=True, error_model="numpy", inline="always")
def _cm_remove(n, mx, my, cxx, cyy, cxy, x, y):
    """Welford removal of the pair (x, y) on scalars (as ``_cpu_micro._cm_remove``)."""
    nn = n - 1.0
    if nn <= 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    mxn = mx - (x - mx) / nn
    myn = my - (y - my) / nn
    return (nn, mxn, myn, cxx - (x - mxn) * (x - mx), cyy - (y - myn) * (y - my),
            cxy - (x - mxn) * (y - my))


@njit(cache=True, error_model="numpy")
def _cs_kern(h, lo, st, ring, pend, w, out):
    # st rows: last high, last low, number of estimates, ring position, rolling sum of
    # the two-bar estimates S (as _cpu_micro.cs_row / _ring_sum_push)
    n = 0
    for j in range(h.shape[0]):
        hv = h[j]
        lv = lo[j]
        if not (hv == hv and lv == lv):
            out[j, 0] = NAN
            continue
        hp = st[0, j]
        lp = st[1, j]
        st[0, j] = hv
        st[1, j] = lv
        if not (hp == hp):
            out[j, 0] = NAN
            continue
        x = _cs_estimate(hv, lv, hp, lp)
        c = st[2, j]
        p = int(st[3, j])
        if c >= w:
            s = st[4, j] + x - ring[p, j]
        else:
            s = st[4, j] + x
        st[4, j] = s
        ring[p, j] = x
        c += 1.0
        st[2, j] = c
        st[3, j] = p + 1 if p + 1 < w else 0
        if p == w - 1:  # the ring wraps: exact sum, below
            pend[n] = j
            n += 1
        else:
            out[j, 0] = s / w if c >= w else NAN
    _runs_sum(ring, pend, n, w, st, 4)
    for m in range(n):
        j = pend[m]
        out[j, 0] = st[4, j] / w


@njit(cache=True, error_model="numpy")
def _amihud_kern(c, v, st, ring, pend, w, scale, out):
    # st rows: last valid close, count of terms, ring position, sum and count of the
    # finite terms |r| / (p v) in the ring (as _cpu_micro.amihud_row)
    n = 0
    for j in range(c.shape[0]):
        p = c[j]
        if not (p == p):
            out[j, 0] = NAN
            continue
        pp = st[0, j]
        st[0, j] = p
        if not (pp == pp):
            out[j, 0] = NAN
            continue
        dv = p * v[j]
        term = abs(p / pp - 1.0) / dv if (dv == dv and dv != 0.0) else NAN
        k = st[1, j]
        q = int(st[2, j])
        s = st[3, j]
        m = st[4, j]
        if k >= w:
            old = ring[q, j]
            if old == old:
                s -= old
                m -= 1.0
        ring[q, j] = term
        if term == term:
            s += term
            m += 1.0
        k += 1.0
        st[1, j] = k
        st[2, j] = q + 1 if q + 1 < w else 0
        if q == w - 1:  # the ring wraps: exact sums, below
            pend[n] = j
            n += 1
            continue
        st[3, j] = s
        st[4, j] = m
        out[j, 0] = scale * (s / m) if (k >= w and m > 0.0) else NAN
    # exact re-sync: sum and count of the finite terms, ring rows in order
    i = 0
    while i < n:
        j0 = pend[i]
        e = i + 1
        while e < n and pend[e] == pend[e - 1] + 1:
            e += 1
        j1 = j0 + e - i
        sa = st[3, j0:j1]
        ma = st[4, j0:j1]
        for t in range(j1 - j0):
            sa[t] = 0.0
            ma[t] = 0.0
        for q in range(w):
            b = ring[q, j0:j1]
            for t in range(j1 - j0):
                x = b[t]
                ok = x == x
                sa[t] += x if ok else 0.0
                ma[t] += 1.0 if ok else 0.0
        i = e
    for i in range(n):
        j = pend[i]
        m = st[4, j]
        out[j, 0] = scale * (st[3, j] / m) if m > 0.0 else NAN


@njit(cache=True, error_model="numpy")
def _roll_kern(c, st, rx, ry, pend, w, out):
    # st rows: last valid close, previous return, pairs pushed, ring position, then the
    # co-moments of the (r_t, r_{t-1}) pairs in the ring: count, mean x, mean y, cxx, cyy,
    # cxy (as _cpu_micro.roll_row / _cm_push)
    n = 0
    for j in range(c.shape[0]):
        v = c[j]
        if not (v == v):
            out[j, 0] = NAN
            continue
        r = math.log(v / st[0, j])  # NaN at the first valid bar
        st[0, j] = v
        rp = st[1, j]
        if r == r:
            st[1, j] = r
        if not (r == r and rp == rp):
            out[j, 0] = NAN
            continue
        k = st[2, j]
        q = int(st[3, j])
        nn, mx, my, cxx, cyy, cxy = st[4, j], st[5, j], st[6, j], st[7, j], st[8, j], st[9, j]
        if k >= w:
            xo = rx[q, j]
            yo = ry[q, j]
            if xo == xo and yo == yo:
                nn, mx, my, cxx, cyy, cxy = _cm_remove(nn, mx, my, cxx, cyy, cxy, xo, yo)
        rx[q, j] = r
        ry[q, j] = rp
        nn, mx, my, cxx, cyy, cxy = _cm_add(nn, mx, my, cxx, cyy, cxy, r, rp)
        st[4, j] = nn
        st[5, j] = mx
        st[6, j] = my
        st[7, j] = cxx
        st[8, j] = cyy
        st[9, j] = cxy
        k += 1.0
        st[2, j] = k
        st[3, j] = q + 1 if q + 1 < w else 0
        if q == w - 1:  # the ring wraps: exact co-moments, below
            pend[n] = j
            n += 1
        elif k >= w:
            cov = cxy / (w - 1.0)
            out[j, 0] = 2.0 * math.sqrt(-cov) if cov < 0.0 else 0.0
        else:
            out[j, 0] = NAN
    _runs_cm(rx, ry, pend, n, w, st, 4, -1)
    for m in range(n):
        j = pend[m]
        cov = st[9, j] / (w - 1.0)
        out[j, 0] = 2.0 * math.sqrt(-cov) if cov < 0.0 else 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _corr_out(v, n, cxx, cyy, cxy, chx, chy, lo, minp, is_mkt, which):
    """Correlation (which 0) or beta (1) of one symbol, as ``_cpu_micro.corr_row``."""
    if v == v and n >= minp and chy >= lo and cyy > 0.0:
        if is_mkt:
            return 1.0
        if chx >= lo and cxx > 0.0:
            if which == 1:
                return cxy / cyy
            rc = cxy / math.sqrt(cxx * cyy)
            return 1.0 if rc > 1.0 else (-1.0 if rc < -1.0 else rc)
        if which == 1:  # the symbol's returns are constant: beta exactly 0
            return 0.0
    return NAN


@njit(cache=True, error_model="numpy")
def _corr_kern(c, g, st, rx, ry, pend, w, minp, mkt, which, cols, out):
    # g: market's last valid close, panel rows so far. st rows: last valid close; pair
    # co-moments of (r, r_market) over the last w panel rows (count, mean x, mean y, cxx,
    # cyy, cxy); flat-series tracking (last x, last y, last row, chx, chy). Every symbol
    # pushes one pair per row, so the rings are aligned and all re-sync at the same row.
    # One state serves several outputs: output m (correlation if which[m] == 0, beta if
    # 1; min_periods minp[m]) goes to column cols[m] of out.
    t = int(g[1])
    g[1] = t + 1.0
    mv = c[mkt]
    rm = math.log(mv / g[0])
    if mv == mv:
        g[0] = mv
    lo = float(t - w + 1)
    q = t % w
    has_old = t >= w
    resync = (t + 1) % w == 0
    rmok = rm == rm
    N = c.shape[0]
    nout = cols.shape[0]
    for j in range(N):
        v = c[j]
        r = math.log(v / st[0, j])
        if v == v:
            st[0, j] = v
        nn, mx, my, cxx, cyy, cxy = st[1, j], st[2, j], st[3, j], st[4, j], st[5, j], st[6, j]
        if has_old:
            xo = rx[q, j]
            yo = ry[q, j]
            if xo == xo and yo == yo:
                nn, mx, my, cxx, cyy, cxy = _cm_remove(nn, mx, my, cxx, cyy, cxy, xo, yo)
        rx[q, j] = r
        ry[q, j] = rm
        if r == r and rmok:
            nn, mx, my, cxx, cyy, cxy = _cm_add(nn, mx, my, cxx, cyy, cxy, r, rm)
            # first pass of the next exact re-sync, in ring order (rows 0 .. w-1)
            st[12, j] += 1.0
            st[13, j] += r
            st[14, j] += rm
            lr = st[9, j]
            if lr != _NEVER:
                if r != st[7, j]:
                    st[10, j] = lr
                if rm != st[8, j]:
                    st[11, j] = lr
            st[7, j] = r
            st[8, j] = rm
            st[9, j] = t
        st[1, j] = nn
        st[2, j] = mx
        st[3, j] = my
        st[4, j] = cxx
        st[5, j] = cyy
        st[6, j] = cxy
        if not resync:
            for m in range(nout):
                out[j, cols[m]] = _corr_out(v, nn, cxx, cyy, cxy, st[10, j], st[11, j], lo,
                                            minp[m], j == mkt, which[m])
    if resync:
        for j in range(N):
            pend[j] = j
        _runs_cm(rx, ry, pend, N, w, st, 1, 12)
        for j in range(N):
            for m in range(nout):
                out[j, cols[m]] = _corr_out(c[j], st[1, j], st[4, j], st[5, j], st[6, j],
                                            st[10, j], st[11, j], lo, minp[m], j == mkt,
                                            which[m])


# --------------------------------------------------------------------------- #
# OHLCV microstructure
# --------------------------------------------------------------------------- #


class CorwinSchultzStream(StreamFeature):
    """Streaming :func:`~workbench.features._micro.corwin_schultz_spread` (inputs high, low)."""

    inputs: ClassVar[tuple[str, ...]] = ("high", "low")
    n_outputs: ClassVar[int] = 1

    def __init__(self, n_symbols: int, window: int = 20):
        super().__init__(n_symbols, window=window)
        self.window = _int(window, "window", 1)
        n = self.n_symbols
        self._st = np.zeros((5, n))
        self._st[:2] = np.nan  # no previous high / low
        self._ring = np.zeros((self.window, n))
        self._pend = np.zeros(n, np.int64)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        n = self.n_symbols
        _cs_kern(_vec(x, "high", n), _vec(x, "low", n), self._st, self._ring, self._pend,
                 self.window, out)


class RollStream(StreamFeature):
    """Streaming :func:`~workbench.features._micro.roll_spread` (input close)."""

    inputs: ClassVar[tuple[str, ...]] = ("close",)
    n_outputs: ClassVar[int] = 1

    def __init__(self, n_symbols: int, window: int = 20):
        super().__init__(n_symbols, window=window)
        self.window = _int(window, "window", 2)
        n = self.n_symbols
        self._st = np.zeros((10, n))
        self._st[:2] = np.nan  # no previous close / return
        self._rx = np.full((self.window, n), np.nan)
        self._ry = np.full((self.window, n), np.nan)
        self._pend = np.zeros(n, np.int64)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        _roll_kern(_vec(x, "close", self.n_symbols), self._st, self._rx, self._ry, self._pend,
                   self.window, out)


class AmihudStream(StreamFeature):
    """Streaming :func:`~workbench.features._micro.amihud_illiquidity` (inputs close, volume)."""

    inputs: ClassVar[tuple[str, ...]] = ("close", "volume")
    n_outputs: ClassVar[int] = 1

    def __init__(self, n_symbols: int, window: int = 20, scale: float = 1e6):
        super().__init__(n_symbols, window=window, scale=scale)
        self.window = _int(window, "window", 1)
        self.scale = _positive(scale, "scale")
        n = self.n_symbols
        self._st = np.zeros((5, n))
        self._st[0] = np.nan  # no previous close
        self._ring = np.full((self.window, n), np.nan)
        self._pend = np.zeros(n, np.int64)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        n = self.n_symbols
        _amihud_kern(_vec(x, "close", n), _vec(x, "volume", n), self._st, self._ring,
                     self._pend, self.window, self.scale, out)


# --------------------------------------------------------------------------- #
# cross-asset
# --------------------------------------------------------------------------- #


class _CorrBetaStream(StreamFeature):
    inputs: ClassVar[tuple[str, ...]] = ("close",)
    n_outputs: ClassVar[int] = 1
    _which = 0

    def __init__(self, n_symbols: int, market: int | str = 0, window: int = 60,
                 min_periods: int | None = None, symbols: Sequence[str] | None = None):
        super().__init__(n_symbols, market=market, window=window, min_periods=min_periods)
        n = self.n_symbols
        self.market = _market(market, n, symbols)
        self.window = _int(window, "window", 2)
        self.min_periods = _min_periods(min_periods, self.window)
        self._minp = np.array([float(self.min_periods)])
        self._whichs = np.array([self._which], np.int64)
        self._cols = np.zeros(1, np.int64)
        self._g = np.array([np.nan, 0.0])  # market's last valid close, rows so far
        self._st = np.zeros((15, n))  # rows 12-14: first pass of the next re-sync
        self._st[0] = np.nan  # no previous close
        self._st[7:9] = 0.0
        self._st[9:12] = _NEVER
        self._rx = np.full((self.window, n), np.nan)
        self._ry = np.full((self.window, n), np.nan)
        self._pend = np.zeros(n, np.int64)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        _corr_kern(_vec(x, "close", self.n_symbols), self._g, self._st, self._rx, self._ry,
                   self._pend, self.window, self._minp, self.market, self._whichs,
                   self._cols, out)

    def _fuse_key(self) -> tuple:
        """Streams with equal keys hold identical state; the first item fuses them."""
        return (CorrBetaGroup, self.n_symbols, self.market, self.window)


class CorrelationStream(_CorrBetaStream):
    """Streaming :func:`~workbench.features._micro.rolling_correlation` (input close).

    O(window) state and O(1) work (amortised) per symbol per bar.
    """

    _which = 0


class BetaStream(_CorrBetaStream):
    """Streaming :func:`~workbench.features._micro.rolling_beta` (input close)."""

    _which = 1


class CorrBetaGroup:
    """Several correlation / beta streams with one market and window, advanced as one.

    Their co-moment state depends on the market and the window only (``min_periods``
    and correlation-vs-beta act on the outputs), so one state and one kernel call per
    bar serve them all; each output is exactly the member stream's output.

    Parameters
    ----------
    members : list of (_CorrBetaStream, int)
        The member streams (equal :meth:`_CorrBetaStream._fuse_key`) and the column of
        each one's output in the ``(N, F)`` output matrix passed to :meth:`update`.
    """

    def __init__(self, members: list[tuple[_CorrBetaStream, int]]):
        lead = members[0][0]
        if any(s._fuse_key() != lead._fuse_key() for s, _ in members):
            raise ValueError("CorrBetaGroup members must share n_symbols, market and window")
        self.n_symbols, self.market, self.window = lead.n_symbols, lead.market, lead.window
        self._g, self._st, self._rx, self._ry, self._pend = (lead._g, lead._st, lead._rx,
                                                              lead._ry, lead._pend)
        self._minp = np.array([float(s.min_periods) for s, _ in members])
        self._whichs = np.array([s._which for s, _ in members], np.int64)
        self._cols = np.array([c for _, c in members], np.int64)

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        """Advance one bar; ``out`` is the whole ``(N, F)`` output matrix."""
        _corr_kern(_vec(x, "close", self.n_symbols), self._g, self._st, self._rx, self._ry,
                   self._pend, self.window, self._minp, self.market, self._whichs,
                   self._cols, out)


class MeanPairwiseCorrelationStream(StreamFeature):
    """Streaming :func:`~workbench.features._micro.mean_pairwise_correlation` (input close).

    O(N^2) state and work per bar (the batch kernel's row function); the market-wide
    value is written for every symbol (as the batch function's (T,) series);
    :class:`~workbench.features.FeatureStream` then sets NaN where a symbol has no bar,
    as ``FeatureSet`` does.
    """

    inputs: ClassVar[tuple[str, ...]] = ("close",)
    n_outputs: ClassVar[int] = 1

    def __init__(self, n_symbols: int, window: int = 60, min_periods: int | None = None):
        super().__init__(n_symbols, window=window, min_periods=min_periods)
        n = self.n_symbols
        self.window = _int(window, "window", 2)
        self.min_periods = _min_periods(min_periods, self.window)
        self._minp = float(self.min_periods)
        self._last = np.full(n, np.nan)
        self._ring = np.full((self.window, n), np.nan)
        self._rold = np.empty(n)
        self._state = K.mpc_state(n, self.window) if n >= 2 else ()
        self._t = 0

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        n = self.n_symbols
        c = _vec(x, "close", n)
        t = self._t
        self._t = t + 1
        if n < 2:
            out[:, 0] = np.nan
            return
        out[:, 0] = K.mpc_stream_step(c, self._last, self._ring, self._rold, t, self.window,
                                      self._minp, *self._state)


# --------------------------------------------------------------------------- #
# order book (stateless)
# --------------------------------------------------------------------------- #


class _BookStream(StreamFeature):
    inputs: ClassVar[tuple[str, ...]] = ("bid_px", "ask_px")
    n_outputs: ClassVar[int] = 1

    def _args(self, x: dict[str, np.ndarray]) -> list[np.ndarray]:
        args = []
        for f in self.inputs:
            a = np.asarray(x[f], dtype=np.float64)
            if a.ndim != 2 or a.shape[0] != self.n_symbols:
                raise ValueError(f"input {f!r} must have shape (N={self.n_symbols}, k), "
                                 f"got {a.shape}")
            args.append(a[None])
        return args

    @abstractmethod
    def _compute(self, args: list[np.ndarray]) -> np.ndarray:
        """The batch L2 function on a one-snapshot (1, N, k) batch -> (1, N)."""

    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, 0] = self._compute(self._args(x))[0]


class SpreadStream(_BookStream):
    """Streaming :func:`~workbench.features._micro.spread` (inputs bid_px, ask_px; (N, k) each)."""

    def _compute(self, args):
        return K.l2_spread(np, *args)


class RelativeSpreadStream(_BookStream):
    """Streaming :func:`~workbench.features._micro.relative_spread`."""

    def _compute(self, args):
        return K.l2_relative_spread(np, *args)


class _SizedBookStream(_BookStream):
    inputs: ClassVar[tuple[str, ...]] = ("bid_px", "ask_px", "bid_sz", "ask_sz")


class _LevelsBookStream(_SizedBookStream):
    def __init__(self, n_symbols: int, levels: int = 5):
        super().__init__(n_symbols, levels=levels)
        self.levels = _int(levels, "levels", 1)


class DepthImbalanceStream(_LevelsBookStream):
    """Streaming :func:`~workbench.features._micro.depth_imbalance`."""

    def _compute(self, args):
        return K.l2_depth_imbalance(np, *args, self.levels)


class DepthStream(_LevelsBookStream):
    """Streaming :func:`~workbench.features._micro.depth`."""

    def _compute(self, args):
        return K.l2_depth(np, *args, self.levels)


class WeightedMidStream(_SizedBookStream):
    """Streaming :func:`~workbench.features._micro.weighted_mid`."""

    def _compute(self, args):
        return K.l2_weighted_mid(np, *args)


class PriceImpactStream(_SizedBookStream):
    """Streaming :func:`~workbench.features._micro.price_impact`."""

    def _compute(self, args):
        return K.l2_price_impact(np, *args)
