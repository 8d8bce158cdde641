"""Numba kernel of :mod:`workbench.models._attention` (imported on first use: numba is heavy).

Lane-major causal softmax attention: the batch x head axis ``W`` is innermost and
contiguous, so each line below is a vector operation over lanes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_F = np.float32
# Cephes ``expf``: Cody-Waite reduction by ln 2, degree-6 polynomial on [-ln2/2, ln2/2]
# (relative error ~1 ulp)
_LOG2E = _F(1.4426950408889634)
_LN2_HI = _F(0.693359375)
_LN2_LO = _F(-2.12194440e-4)
_C1, _C2, _C3 = _F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3)
_C4, _C5, _C6 = _F(4.1665795894e-2), _F(1.6666665459e-1), _F(5.0000001201e-1)
#: Scores below the row maximum by more than this are clamped (exp stays a normal float).
EXP_FLOOR = _F(-87.0)
_HALF, _ONE, _ZERO, _LOWEST = _F(0.5), _F(1.0), _F(0.0), _F(-3.0e38)


# 'contract' (FMA) only: no fast-math NaN assumptions, so a NaN input stays NaN
@njit(cache=True, nogil=True, boundscheck=False, fastmath={"contract"})
def attend(q, k, v, out, scale):  # pragma: no cover - compiled by numba
    """``out[i] = softmax_u<=t(q[i] . k[u] * scale) @ v`` per lane, ``t = L - Lq + i``.

    ``q``/``out`` (Lq, D, W), ``k``/``v`` (L, D, W), float32, C-contiguous.
    """
    Lq, D, W = q.shape
    L = k.shape[0]
    off = L - Lq
    s = np.empty((L, W), dtype=np.float32)
    m = np.empty(W, dtype=np.float32)
    den = np.empty(W, dtype=np.float32)
    acc = np.empty((D, W), dtype=np.float32)
    bits = np.empty(W, dtype=np.int32)
    pow2 = bits.view(np.float32)
    for i in range(Lq):
        t = off + i
        for j in range(W):
            m[j] = _LOWEST
        for u in range(t + 1):  # scores of the keys at or before step t
            for j in range(W):
                s[u, j] = _ZERO
            for c in range(D):
                for j in range(W):
                    s[u, j] += q[i, c, j] * k[u, c, j]
            for j in range(W):
                x = s[u, j] * scale
                s[u, j] = x
                m[j] = x if x > m[j] else m[j]
        for j in range(W):
            den[j] = _ZERO
        for c in range(D):
            for j in range(W):
                acc[c, j] = _ZERO
        for u in range(t + 1):
            for j in range(W):
                x = s[u, j] - m[j]
                x = EXP_FLOOR if x < EXP_FLOOR else x  # (NaN passes through)
                ni = np.int32(_HALF - x * _LOG2E)  # x <= 0: n = -ni = round(x / ln 2)
                nf = -_F(ni)
                r = x - nf * _LN2_HI - nf * _LN2_LO
                p = ((((_C1 * r + _C2) * r + _C3) * r + _C4) * r + _C5) * r + _C6
                s[u, j] = p * r * r + r + _ONE  # exp(r)
                bits[j] = (np.int32(127) - ni) << 23  # 2^n as a float's bits
            for j in range(W):
                e = s[u, j] * pow2[j]
                s[u, j] = e
                den[j] += e
            for c in range(D):
                for j in range(W):
                    acc[c, j] += s[u, j] * v[u, c, j]
        for c in range(D):
            for j in range(W):
                out[i, c, j] = acc[c, j] / den[j]
