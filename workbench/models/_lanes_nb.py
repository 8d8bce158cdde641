"""Numba kernels of the lane-major CPU inference paths (imported on first use: numba is heavy).

Every array here is "lane-major": its last axis is the long, contiguous lane axis (tokens
``t * B + b`` of a batch of sequences, or the batch alone), so each inner loop below is a
vector operation over lanes and reductions over features (layer norm, the softmax over
variables) run down rows instead of across them. Used by :mod:`workbench.models._attention`
(the fused attention op) and :mod:`workbench.models._fused` (the Momentum Transformer's
fused last-step path).

All kernels are compiled with FMA contraction only (``fastmath={"contract"}``): no fast-math
NaN assumptions, so a NaN input gives NaN in its own lanes and the serving engine's health
check sees it.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_F = np.float32
# Cephes ``expf``: Cody-Waite reduction by ln 2, degree-6 polynomial on [-ln2/2, ln2/2]
# (relative error ~1 ulp)
_LOG2E = _F(1.4426950408889634)
_LN2_HI = _F(0.693359375)
_LN2_LO = _F(-2.12194440e-4)
_C1, _C2, _C3 = _F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3)
_C4, _C5, _C6 = _F(4.1665795894e-2), _F(1.6666665459e-1), _F(5.0000001201e-1)
#: Arguments of the exponential are clamped to [EXP_FLOOR, EXP_CEIL] (2^n stays a normal
#: float): exp(-87) = 1.6e-38 stands in for anything smaller, exp(88) = 1.7e38 for larger.
EXP_FLOOR = _F(-87.0)
EXP_CEIL = _F(88.0)
_HALF, _ONE, _ZERO, _LOWEST = _F(0.5), _F(1.0), _F(0.0), _F(-3.0e38)

# error_model="numpy": x / 0 is inf or NaN, no Python ZeroDivisionError check (which would
# stop the loops from vectorising)
_jit = njit(cache=True, nogil=True, boundscheck=False, fastmath={"contract"},
            error_model="numpy")


@intrinsic
def _float_from_bits(typingctx, bits):  # pragma: no cover - compiled by numba
    """Reinterpret an int32's bits as a float32 (a bitcast LLVM vectorises)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@_jit
def exp32(x):  # pragma: no cover - compiled by numba
    """``exp(x)`` of a float32, vectorisable (Cephes expf; NaN stays NaN)."""
    x = EXP_FLOOR if x < EXP_FLOOR else x
    x = EXP_CEIL if x > EXP_CEIL else x
    fl = np.floor(x * _LOG2E + _HALF)  # n = round(x / ln 2)
    r = x - fl * _LN2_HI - fl * _LN2_LO
    p = ((((_C1 * r + _C2) * r + _C3) * r + _C4) * r + _C5) * r + _C6
    return (p * r * r + r + _ONE) * _float_from_bits((np.int32(fl) + np.int32(127)) << 23)


@_jit
def _exp_nonpositive(x):  # pragma: no cover - compiled by numba
    """:func:`exp32` for ``x <= 0`` (NaN stays NaN): one clamp, rounding by truncation."""
    x = EXP_FLOOR if x < EXP_FLOOR else x
    ni = np.int32(_HALF - x * _LOG2E)  # x <= 0: n = -ni = round(x / ln 2)
    nf = -_F(ni)
    r = x - nf * _LN2_HI - nf * _LN2_LO
    p = ((((_C1 * r + _C2) * r + _C3) * r + _C4) * r + _C5) * r + _C6
    return (p * r * r + r + _ONE) * _float_from_bits((np.int32(127) - ni) << 23)


@_jit
def attend(q, k, v, out, scale):  # pragma: no cover - compiled by numba
    """Causal softmax attention per head and lane.

    ``q``/``out`` (H, D, Lq, B), ``k``/``v`` (H, D, L, B), float32, C-contiguous:
    ``out[h, :, i] = softmax_{u <= t}(q[h, :, i] . k[h, :, u] * scale) @ v[h, :, u]`` with
    ``t = L - Lq + i`` (the queries are the last Lq steps), the row maximum subtracted.

    The work runs on ``W = H * B`` lanes (the heads' keys and values are first laid side by
    side, ``(D, L, W)``: long rows vectorise better than B alone), and the dot products and
    weighted sums take four terms per pass over a row of lanes (fewer loads and stores per
    multiply-add).
    """
    H, D, Lq, B = q.shape
    L = k.shape[2]
    W = H * B
    off = L - Lq
    if H == 1:
        kl, vl = k[0], v[0]
    else:
        kl = np.empty((D, L, W), dtype=np.float32)
        vl = np.empty((D, L, W), dtype=np.float32)
        for h in range(H):
            for c in range(D):
                for u in range(L):
                    for b in range(B):
                        kl[c, u, h * B + b] = k[h, c, u, b]
                        vl[c, u, h * B + b] = v[h, c, u, b]
    ql = np.empty((D, W), dtype=np.float32)
    s = np.empty((L, W), dtype=np.float32)
    m = np.empty(W, dtype=np.float32)
    den = np.empty(W, dtype=np.float32)
    acc = np.empty((D, W), dtype=np.float32)
    for i in range(Lq):
        t = off + i
        for h in range(H):
            for c in range(D):
                for b in range(B):
                    ql[c, h * B + b] = q[h, c, i, b]
        for j in range(W):
            m[j] = _LOWEST
        for u in range(t + 1):  # scores of the keys at or before step t
            su = s[u]
            for j in range(W):
                su[j] = _ZERO
            c = 0
            while c < D:
                if c + 4 <= D:
                    q0, q1, q2, q3 = ql[c], ql[c + 1], ql[c + 2], ql[c + 3]
                    k0, k1, k2, k3 = kl[c, u], kl[c + 1, u], kl[c + 2, u], kl[c + 3, u]
                    for j in range(W):
                        su[j] += q0[j] * k0[j] + q1[j] * k1[j] + q2[j] * k2[j] + q3[j] * k3[j]
                    c += 4
                else:
                    q0, k0 = ql[c], kl[c, u]
                    for j in range(W):
                        su[j] += q0[j] * k0[j]
                    c += 1
            for j in range(W):
                x = su[j] * scale
                su[j] = x
                m[j] = x if x > m[j] else m[j]
        for j in range(W):
            den[j] = _ZERO
        for u in range(t + 1):
            su = s[u]
            for j in range(W):
                e = _exp_nonpositive(su[j] - m[j])
                su[j] = e
                den[j] += e
        n = t + 1
        for c in range(D):
            ac = acc[c]
            for j in range(W):
                ac[j] = _ZERO
            for u in range(0, n, 4):  # (values past step t are never read)
                if u + 4 <= n:
                    s0, s1, s2, s3 = s[u], s[u + 1], s[u + 2], s[u + 3]
                    v0, v1, v2, v3 = vl[c, u], vl[c, u + 1], vl[c, u + 2], vl[c, u + 3]
                    for j in range(W):
                        ac[j] += s0[j] * v0[j] + s1[j] * v1[j] + s2[j] * v2[j] + s3[j] * v3[j]
                else:
                    for uu in range(u, n):
                        su, vu = s[uu], vl[c, uu]
                        for j in range(W):
                            ac[j] += su[j] * vu[j]
        for h in range(H):
            for c in range(D):
                for b in range(B):
                    out[h, c, i, b] = acc[c, h * B + b] / den[h * B + b]


@_jit
def bias_elu(z, b):  # pragma: no cover - compiled by numba
    """``z[r] = ELU(z[r] + b[r])`` in place (alpha 1) for the ``len(b)`` rows of z (R, T)."""
    T = z.shape[1]
    for r in range(b.shape[0]):
        br = b[r]
        for j in range(T):
            x = z[r, j] + br
            z[r, j] = x if x > _ZERO else exp32(x) - _ONE


@_jit
def gated_add_norm(g, bg, res, rb, gamma, beta, eps, out):  # pragma: no cover
    """``out = LayerNorm(res + rb + GLU(g + bg))`` down the rows of each lane.

    ``g`` (2d, T) gate pre-activations, ``bg`` (2d,); ``res`` (d, T) residual, ``rb`` (d,)
    its bias; ``gamma``/``beta`` (d,) and ``eps`` the layer norm's; ``out`` (d, T).
    ``GLU(a) = a[:d] * sigmoid(a[d:])``; the variance is the biased one, as torch's.
    """
    d, T = out.shape
    mean = np.zeros(T, dtype=np.float32)
    var = np.zeros(T, dtype=np.float32)
    for r in range(d):
        b0, b1, br = bg[r], bg[d + r], rb[r]
        for j in range(T):
            y = res[r, j] + br + (g[r, j] + b0) / (_ONE + exp32(-(g[d + r, j] + b1)))
            out[r, j] = y
            mean[j] += y
    inv_d = _ONE / _F(d)
    for j in range(T):
        mean[j] *= inv_d
    for r in range(d):
        for j in range(T):
            dev = out[r, j] - mean[j]
            var[j] += dev * dev
    for j in range(T):
        var[j] = _ONE / np.sqrt(var[j] * inv_d + eps)
    for r in range(d):
        gr, br = gamma[r], beta[r]
        for j in range(T):
            out[r, j] = (out[r, j] - mean[j]) * var[j] * gr + br


@_jit
def select_variables(z, x, u):  # pragma: no cover - compiled by numba
    """Variable selection: ``v = softmax(z)`` down the F rows; ``u = [v * x; v]``.

    ``z``, ``x`` (F, T); ``u`` (2F, T).
    """
    F, T = z.shape
    m = np.full(T, _LOWEST, dtype=np.float32)
    den = np.zeros(T, dtype=np.float32)
    for r in range(F):
        for j in range(T):
            m[j] = z[r, j] if z[r, j] > m[j] else m[j]
    for r in range(F):
        for j in range(T):
            e = _exp_nonpositive(z[r, j] - m[j])
            u[F + r, j] = e
            den[j] += e
    for j in range(T):
        den[j] = _ONE / den[j]
    for r in range(F):
        for j in range(T):
            v = u[F + r, j] * den[j]
            u[F + r, j] = v
            u[r, j] = v * x[r, j]
