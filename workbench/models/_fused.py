"""Fused lane-major CPU inference of the Momentum Transformer's last step.

At serving batch sizes (64 sequences of 63 steps) the transformer's eager forward is
dominated not by its matrix products but by everything around them: ~40 small ATen calls
each for the gated residual networks' ELU, GLU and layer norms, bias broadcasts and the
copies between layouts, all on ``(B * L, 32)`` token-major tensors whose 32-wide rows
vectorise poorly (a layer norm is a horizontal reduction per token). This path keeps every
activation "lane-major", ``(features, tokens)`` with token ``t * B + b`` contiguous, so

- each linear map is one ``torch.mm`` of the weight ``(out, in)`` by the activations
  ``(in, T)`` (oneDNN/MKL, ~130 GFLOP/s on one core of the benchmark VM);
- each nonlinearity block (bias + ELU; GLU + residual + layer norm; the variable-selection
  softmax; causal attention per head) is one numba kernel of
  :mod:`workbench.models._lanes_nb` that runs down the rows with every line a vector
  operation over tokens;
- linear maps with nothing nonlinear between them are composed once, in float64, when the
  plan is built: a GRN's ``fc1`` into its GLU gate, a decoder layer's attention output
  projection into its gate, and the variable selection's embeddings into the following
  GRN's first layer and skip.

Rows are served in chunks of about 2048 tokens (32 sequences of 63 steps), whose ~30
activation arrays stay in a core's L2 cache. The result equals the module path
(:meth:`MomentumTransformerNetwork.forward_last`) to float32 rounding (max abs difference
~1e-6 on positions in the tests), with the exponential of
:func:`workbench.models._lanes_nb.exp32` (arguments clamped to [-87, 88]).
Inference only: CPU float32, autograd off, eval mode; the network decides when to use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from workbench.models._attention import lanes_kernels as _nb

if TYPE_CHECKING:
    from workbench.models._transformer import MomentumTransformerNetwork

__all__ = ["fused_forward_last"]

#: Tokens (rows x steps) per pass: 2016 tokens of 32 features keep the ~30 activation
#: arrays of a pass within a 2 MiB L2 cache; one pass over 64 x 63 tokens was ~30% slower
#: than two passes over 32 x 63 on the benchmark VM.
_CHUNK_TOKENS = 2048


def _f32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).contiguous()


def _vec(t: torch.Tensor) -> np.ndarray:
    return _f32(t).numpy()


@dataclass(frozen=True)
class _Norm:
    gamma: np.ndarray  # (d,)
    beta: np.ndarray  # (d,)
    eps: np.float32

    @classmethod
    def of(cls, norm: torch.nn.LayerNorm) -> _Norm:
        return cls(_vec(norm.weight), _vec(norm.bias), np.float32(norm.eps))


@dataclass(frozen=True)
class _GRN:
    """A GRN with ``fc1`` composed into its gate: ``LN(skip + GLU(Wg ELU(W_in a + b_in) + bg))``.

    ``w_in`` is ``(h + o, i)`` with the skip's rows after fc2's when the skip is linear
    (its bias ``skip_b``), ``(h, i)`` for an identity skip (``skip_b`` zeros).
    """

    w_in: torch.Tensor
    b_in: np.ndarray
    skip_b: np.ndarray
    w_gate: torch.Tensor  # (2o, h)
    b_gate: np.ndarray  # (2o,)
    norm: _Norm
    linear_skip: bool

    @classmethod
    def of(cls, grn: Any, pre: torch.Tensor | None = None) -> _GRN:
        """Plan of ``grn``; ``pre`` (i, i') is a linear map applied to its input first."""
        w2 = grn.fc2.weight.double()
        lin = grn.gate.linear
        w_gate = lin.weight.double() @ grn.fc1.weight.double()
        b_gate = lin.weight.double() @ grn.fc1.bias.double() + lin.bias.double()
        o = grn.norm.normalized_shape[0]
        if isinstance(grn.skip, torch.nn.Linear):
            w_skip, b_skip = grn.skip.weight.double(), grn.skip.bias.double()
        else:
            w_skip, b_skip = None, torch.zeros(o, dtype=torch.float64)
        if pre is not None:  # compose: fc2 (and the skip, an identity made explicit)
            w2 = w2 @ pre
            w_skip = pre if w_skip is None else w_skip @ pre
        rows = w2 if w_skip is None else torch.cat([w2, w_skip])
        return cls(_f32(rows), _vec(grn.fc2.bias), _vec(b_skip), _f32(w_gate), _vec(b_gate),
                   _Norm.of(grn.norm), w_skip is not None)

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        """``(i, T) -> (o, T)``."""
        nb = _nb()
        z = torch.mm(self.w_in, a)
        h = self.b_in.shape[0]
        nb.bias_elu(z.numpy()[:h], self.b_in)
        g = torch.mm(self.w_gate, z[:h])
        res = z[h:] if self.linear_skip else a
        return _gated_norm(g, self.b_gate, res, self.skip_b, self.norm)


def _gated_norm(g: torch.Tensor, bg: np.ndarray, res: torch.Tensor, rb: np.ndarray,
                norm: _Norm) -> torch.Tensor:
    out = torch.empty((norm.gamma.shape[0], g.shape[1]))
    _nb().gated_add_norm(g.numpy(), bg, res.contiguous().numpy(), rb, norm.gamma, norm.beta,
                         norm.eps, out.numpy())
    return out


@dataclass(frozen=True)
class _Layer:
    w_qkv: torch.Tensor  # (3d, d): q rows, then k, then v
    b_qkv: torch.Tensor  # (3d, 1)
    w_og: torch.Tensor  # (2d, d): the gate composed with the attention's output projection
    b_og: np.ndarray  # (2d,)
    zeros: np.ndarray  # (d,)
    norm: _Norm
    ffn: _GRN
    n_heads: int

    @classmethod
    def of(cls, layer: Any) -> _Layer:
        attn, gate = layer.attn, layer.gate.linear
        d = attn.q.weight.shape[0]
        w_og = gate.weight.double() @ attn.out.weight.double()
        b_og = gate.weight.double() @ attn.out.bias.double() + gate.bias.double()
        return cls(_f32(torch.cat([attn.q.weight, attn.kv.weight])),
                   _f32(torch.cat([attn.q.bias, attn.kv.bias])[:, None]), _f32(w_og),
                   _vec(b_og), np.zeros(d, np.float32), _Norm.of(layer.norm),
                   _GRN.of(layer.ffn), attn.n_heads)

    def __call__(self, h: torch.Tensor, L: int, B: int, last_only: bool) -> torch.Tensor:
        """``(d, L * B) -> (d, L * B)``, or ``(d, B)`` for the last step alone."""
        d = self.w_og.shape[1]
        H = self.n_heads
        if last_only:
            kv = torch.addmm(self.b_qkv[d:], self.w_qkv[d:], h)
            q = torch.addmm(self.b_qkv[:d], self.w_qkv[:d], h[:, -B:])
            k, v, res, Lq = kv[:d], kv[d:], h[:, -B:], 1
        else:
            qkv = torch.addmm(self.b_qkv, self.w_qkv, h)
            q, k, v, res, Lq = qkv[:d], qkv[d:2 * d], qkv[2 * d:], h, L
        a = torch.empty((d, Lq * B))
        _nb().attend(q.reshape(H, d // H, Lq, B).numpy(), k.view(H, d // H, L, B).numpy(),
                     v.view(H, d // H, L, B).numpy(), a.view(H, d // H, Lq, B).numpy(),
                     np.float32(1.0 / math.sqrt(d // H)))
        g = torch.mm(self.w_og, a)
        return self.ffn(_gated_norm(g, self.b_og, res, self.zeros, self.norm))


@dataclass(frozen=True)
class _Plan:
    params: tuple[torch.nn.Parameter, ...]
    key: tuple
    selector: _GRN  # F -> F, linear skip
    post: _GRN  # u = [v * x; v] (2F) -> d: the embeddings composed in
    layers: tuple[_Layer, ...]
    w_out_gate: torch.Tensor  # (2d, d)
    b_out_gate: np.ndarray
    zeros: np.ndarray
    out_norm: _Norm
    w_head: torch.Tensor  # (1, d)
    b_head: torch.Tensor  # (1, 1)


def _key(params: tuple[torch.nn.Parameter, ...]) -> tuple:
    # (inference tensors, made under torch.inference_mode, have no version counter)
    return tuple((p.data_ptr(), -1 if p.is_inference() else p._version) for p in params)


def _build(net: MomentumTransformerNetwork) -> _Plan:
    vsn = net.vsn
    params = tuple(net.parameters())
    with torch.no_grad():
        # selected = E^T (v * x) + Eb^T v = w_sel @ u
        w_sel = torch.cat([vsn.embed_w.double().T, vsn.embed_b.double().T], dim=1)
        d = net.d_model
        return _Plan(params, _key(params), _GRN.of(vsn.selector), _GRN.of(vsn.post, pre=w_sel),
                     tuple(_Layer.of(layer) for layer in net.layers),
                     _f32(net.out_gate.linear.weight), _vec(net.out_gate.linear.bias),
                     np.zeros(d, np.float32), _Norm.of(net.out_norm), _f32(net.head.weight),
                     _f32(net.head.bias[:, None]))


def _plan(net: MomentumTransformerNetwork) -> _Plan:
    """The network's plan, rebuilt when a parameter's values or storage changed.

    The check reads each parameter's version counter (bumped by every in-place update:
    optimiser steps, ``load_state_dict``) and data pointer (``.data`` reassigned, ``.to``).
    Not seen: in-place changes to inference tensors (which have no version counter), and
    a parameter replaced by a new ``Parameter`` object;
    :meth:`MomentumTransformerNetwork.set_fused_attention` drops the plan.
    """
    plan = getattr(net, "_fused_plan", None)
    if plan is None or _key(plan.params) != plan.key:
        plan = _build(net)
        net._fused_plan = plan
    return plan


def fused_forward_last(net: MomentumTransformerNetwork, x: torch.Tensor) -> torch.Tensor:
    """Last step's position of a :class:`MomentumTransformerNetwork`, fused for CPU inference.

    Parameters
    ----------
    net : MomentumTransformerNetwork
        The network (eval mode; its dropout is not applied).
    x : torch.Tensor, shape (B, L, F)
        float32 CPU inputs.

    Returns
    -------
    torch.Tensor, shape (B,)
        Positions in [-1, 1], equal to ``net.forward_last(x)`` on the module path to float32
        rounding.

    Raises
    ------
    ValueError
        When ``x`` is not a non-empty ``(B, L, F)`` float32 CPU tensor with ``F`` the
        network's input width (the message gives the shape and dtype).
    """
    n_features = net.vsn.embed_w.shape[0]
    if (x.dim() != 3 or x.dtype != torch.float32 or x.device.type != "cpu"
            or x.shape[2] != n_features or x.numel() == 0):
        raise ValueError(f"fused_forward_last: x must be a non-empty (B, L, {n_features}) "
                         f"float32 CPU tensor, got {tuple(x.shape)} {x.dtype} on {x.device}")
    B, L, F = x.shape
    plan = _plan(net)
    rows = max(1, _CHUNK_TOKENS // L)
    if B > rows:  # chunks of rows whose activations stay in a core's L2 cache
        return torch.cat([_forward(net, plan, x[i:i + rows]) for i in range(0, B, rows)])
    return _forward(net, plan, x)


def _forward(net: MomentumTransformerNetwork, plan: _Plan, x: torch.Tensor) -> torch.Tensor:
    B, L, F = x.shape
    xl = x.permute(2, 1, 0).reshape(F, L * B).contiguous()  # token t * B + b
    z = plan.selector(xl)  # (F, T) selection logits
    u = torch.empty((2 * F, L * B))
    _nb().select_variables(z.numpy(), xl.numpy(), u.numpy())
    h0 = plan.post(u)  # (d, T)
    h0.view(-1, L, B).add_(net._positions(L).T[:, :, None])
    h = h0
    for i, layer in enumerate(plan.layers):
        h = layer(h, L, B, last_only=i == len(plan.layers) - 1)
    g = torch.mm(plan.w_out_gate, h)
    y = _gated_norm(g, plan.b_out_gate, h0[:, -B:], plan.zeros, plan.out_norm)
    return torch.tanh(torch.addmm(plan.b_head, plan.w_head, y))[0]

