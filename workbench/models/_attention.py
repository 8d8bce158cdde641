"""Fused causal self-attention for CPU inference (a numba kernel behind a torch op).

The Momentum Transformer's attention has tiny heads (``d_model / n_heads``, 8 in the
default configuration) over short windows (63 steps), where ATen's CPU
``scaled_dot_product_attention`` spends most of its time on per-head bookkeeping and on
exponentials of masked (``-inf``) scores: 2.4 ms for a causal (64, 4, 63, 8) call on one
core of the benchmark VM. This kernel lays the batch and head axes out as the innermost,
contiguous "lane" axis ``W = B * H`` and loops over query and key steps, so every
arithmetic line is a vector operation over lanes; it visits only the keys at or before
each query (nothing is masked, so nothing is thrown away) and evaluates the exponential
with a vectorisable polynomial. The same call takes ~0.9 ms (``benchmarks/
bench_inference.py`` reports the served ensemble).

It computes the standard softmax attention ``softmax(q k^T / sqrt(d_h)) v`` (Vaswani et
al. 2017) with the row maximum subtracted; it equals ATen's to float32 rounding (max abs
difference ~1e-6 on N(0, 1) inputs), with one deliberate difference: a score more than 87
below its row's maximum weighs ``exp(-87)`` (1.6e-38) instead of less, which no float32
sum of weights near 1 can register. Forward only (no autograd): training keeps ATen's
differentiable attention, serving opts in (:meth:`MomentumTransformerNetwork.
set_fused_attention`, ``InferenceEngine(fused_attention=True)``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

__all__ = ["causal_attention_lanes", "to_lanes", "from_lanes"]


@functools.cache
def lanes_kernels() -> Any:
    """The numba kernels module :mod:`workbench.models._lanes_nb`, imported on first use.

    Its kernels are compiled or loaded from numba's cache then (numba is heavy).
    """
    from workbench.models import _lanes_nb

    return _lanes_nb


@torch.library.custom_op("workbench::causal_attention_lanes", mutates_args=())
def causal_attention_lanes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           scale: float) -> torch.Tensor:
    """Causal softmax attention over lane-major float32 CPU tensors.

    Parameters
    ----------
    q : torch.Tensor, shape (D, Lq, W)
        Queries of the last ``Lq`` steps; ``W`` lanes (batch x heads), head width ``D``.
    k, v : torch.Tensor, shape (D, L, W)
        Keys and values of all ``L >= Lq`` steps.
    scale : float
        Score scale, usually ``1 / sqrt(D)``.

    Returns
    -------
    torch.Tensor, shape (D, Lq, W)
        Query ``i`` attends to steps ``0 .. L - Lq + i`` (query ``i`` sits at step
        ``L - Lq + i``), with softmax weights over those steps.

    Raises
    ------
    ValueError
        When a tensor is not float32 on the CPU or the shapes do not line up (the
        message names the tensor and its shape).
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dtype != torch.float32 or t.device.type != "cpu" or t.dim() != 3:
            raise ValueError(f"causal_attention_lanes: {name} must be a 3-D float32 CPU "
                             f"tensor, got {tuple(t.shape)} {t.dtype} on {t.device}")
    if (k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[2] != k.shape[2]
            or q.shape[1] > k.shape[1]):
        raise ValueError(f"causal_attention_lanes: shapes q {tuple(q.shape)}, k "
                         f"{tuple(k.shape)}, v {tuple(v.shape)} do not line up as (D, Lq, W), "
                         "(D, L, W), (D, L, W) with Lq <= L")
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    out = torch.empty_like(q)
    if out.numel():
        lanes_kernels().attend(q.numpy()[None], k.numpy()[None], v.numpy()[None],
                               out.numpy()[None], np.float32(scale))
    return out


@causal_attention_lanes.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    return q.new_empty(q.shape)  # contiguous, as the kernel returns it


def to_lanes(t: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``(B, L, H * D)`` -> lane-major ``(D, L, B * H)`` (lane ``b * H + h``)."""
    B, L, d = t.shape
    return t.view(B, L, n_heads, d // n_heads).permute(3, 1, 0, 2).reshape(
        d // n_heads, L, B * n_heads)


def from_lanes(o: torch.Tensor, batch: int, n_heads: int) -> torch.Tensor:
    """Lane-major ``(D, L, B * H)`` -> ``(B, L, H * D)``; the inverse of :func:`to_lanes`."""
    D, L, _ = o.shape
    return o.view(D, L, batch, n_heads).permute(2, 1, 3, 0).reshape(batch, L, n_heads * D)
