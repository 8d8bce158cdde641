"""Momentum Transformer: variable selection, gated residuals and causal self-attention.

A decoder-only Temporal Fusion Transformer in the spirit of Wood, Giegerich, Roberts &
Zohren (2021), "Trading with the Momentum Transformer: An Intelligent and Interpretable
Architecture", built from the parts of Lim, Arik, Loeff & Pfister (2021), "Temporal
Fusion Transformers for Interpretable Multi-horizon Time Series Forecasting": a variable
selection network, gated residual networks (GRN), gated add & norm, and masked
multi-head self-attention, with a tanh position head per step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as fn

from workbench.models._attention import causal_attention_lanes, from_lanes, to_lanes
from workbench.models._sequence import SequenceModel, _is_int, check_param

__all__ = ["MomentumTransformer", "MomentumTransformerNetwork", "GatedResidualNetwork",
           "VariableSelectionNetwork"]


class GatedLinearUnit(nn.Module):
    """Dropout, then ``GLU(g) = sigmoid(W4 g + b4) * (W5 g + b5)`` (TFT eq. 5).

    Shapes: ``(..., d_in) -> (..., d_out)``.
    """

    def __init__(self, d_in: int, d_out: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(d_in, 2 * d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return fn.glu(self.linear(self.dropout(x)), dim=-1)


class GatedResidualNetwork(nn.Module):
    """Gated residual network of the Temporal Fusion Transformer (Lim et al. 2021, eq. 2-4).

    ``GRN(a) = LayerNorm(skip(a) + GLU(W1 ELU(W2 a + b2) + b1))`` where ``skip`` is the
    identity when ``d_in == d_out`` and a linear map otherwise (or when ``project_skip``).

    Parameters
    ----------
    d_in, d_hidden, d_out : int
        Input, hidden and output widths.
    dropout : float
        Dropout before the GLU gate.
    project_skip : bool, default False
        Use a linear skip even when ``d_in == d_out``.

    Notes
    -----
    Shapes: ``(..., d_in) -> (..., d_out)``; position-wise (no mixing across time).
    """

    def __init__(self, d_in: int, d_hidden: int, d_out: int, dropout: float,
                 project_skip: bool = False):
        super().__init__()
        linear = project_skip or d_in != d_out
        self.skip: nn.Module = nn.Linear(d_in, d_out) if linear else nn.Identity()
        self.fc2 = nn.Linear(d_in, d_hidden)
        self.fc1 = nn.Linear(d_hidden, d_hidden)
        self.gate = GatedLinearUnit(d_hidden, d_out, dropout)
        self.norm = nn.LayerNorm(d_out)

    def forward(self, a: torch.Tensor) -> torch.Tensor:  # noqa: D102
        eta = self.fc1(fn.elu(self.fc2(a)))
        return self.norm(self.skip(a) + self.gate(eta))


class VariableSelectionNetwork(nn.Module):
    """Variable selection network of the TFT (Lim et al. 2021, section 4.2), per time step.

    Each of the F inputs is embedded to ``d_model`` by its own linear map
    ``e_j = w_j x_j + b_j``; a GRN over the inputs gives softmax weights ``v`` over the F
    variables; the selected embedding ``sum_j v_j e_j`` passes through one GRN.

    Parameters
    ----------
    n_features : int
        Input variables F.
    d_model : int
        Embedding width.
    dropout : float
        Dropout inside the GRNs.

    Notes
    -----
    ``forward(x)`` maps ``(B, L, F)`` to ``((B, L, d_model), weights (B, L, F))``; the
    weights of each step sum to 1. Position-wise (no mixing across time).

    Two simplifications against the TFT, both for inference cost (the ensemble's CPU
    latency goal): (1) the embeddings are linear, so the selection GRN's input layers
    (``F d -> d`` and the ``F d -> F`` skip) compose with them into affine maps of ``x``
    itself and the selection GRN is computed on ``x`` (``F -> F``, hidden ``d_model``,
    linear skip): the same function class; (2) the TFT's F per-variable GRNs
    (``sum_j v_j GRN_j(e_j)``) are replaced by one GRN after the weighted sum
    (``GRN(sum_j v_j e_j)``), which cuts the per-step work about tenfold (F d-wide GRNs
    become one) while keeping the selection weights ``v`` as the interpretable output.
    """

    def __init__(self, n_features: int, d_model: int, dropout: float):
        super().__init__()
        self.embed_w = nn.Parameter(torch.empty(n_features, d_model).uniform_(-1.0, 1.0))
        self.embed_b = nn.Parameter(torch.empty(n_features, d_model).uniform_(-1.0, 1.0))
        self.selector = GatedResidualNetwork(n_features, d_model, n_features, dropout,
                                             project_skip=True)
        self.post = GatedResidualNetwork(d_model, d_model, d_model, dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: D102
        weights = _softmax_small(self.selector(x))  # (B, L, F)
        # sum_j v_j (w_j x_j + b_j) as two (F -> d) products
        selected = (weights * x) @ self.embed_w + weights @ self.embed_b  # (B, L, d)
        return self.post(selected), weights


def _softmax_small(z: torch.Tensor) -> torch.Tensor:
    """Softmax over a short last axis (the F variables), ``(..., F) -> (..., F)``.

    The same function as ``torch.softmax(z, -1)`` (max-shifted exponentials over their
    sum; equal to float rounding), written out because ATen's CPU softmax kernel is slow
    on a last axis this short: 0.16 ms instead of 0.68 ms for (64, 63, 10) on one core.
    """
    e = (z - z.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


def sinusoidal_encoding(length: int, d_model: int) -> torch.Tensor:
    """Sinusoidal positional encoding of Vaswani et al. (2017), shape (length, d_model).

    ``PE[p, 2i] = sin(p / 10000^(2i/d))``, ``PE[p, 2i+1] = cos(p / 10000^(2i/d))``.
    """
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32)
                     * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : d_model // 2]
    return pe


class _CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which step t attends to steps <= t.

    ``fused`` (default False) switches inference on float32 CPU tensors with autograd
    off to the fused lane-major kernel of :mod:`workbench.models._attention`; training
    and every other case use ATen's ``scaled_dot_product_attention``.
    """

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.fused = False

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        B, L, d = t.shape
        return t.view(B, L, self.n_heads, d // self.n_heads).transpose(1, 2)  # (B, H, L, dh)

    def forward(self, h: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """``(B, L, d)`` -> ``(B, L, d)``, or ``(B, 1, d)`` for the last query alone."""
        if (self.fused and h.device.type == "cpu" and h.dtype == torch.float32
                and not torch.is_grad_enabled()):
            return self._fused(h, last_only)
        k, v = (self._heads(t) for t in self.kv(h).chunk(2, dim=-1))
        if last_only:
            q = self._heads(self.q(h[:, -1:]))
            a = fn.scaled_dot_product_attention(q, k, v)  # the last query sees every key
        else:
            q = self._heads(self.q(h))
            a = fn.scaled_dot_product_attention(q, k, v, is_causal=True)
        B, _, Lq, dh = a.shape
        return self.out(a.transpose(1, 2).reshape(B, Lq, self.n_heads * dh))

    def _fused(self, h: torch.Tensor, last_only: bool) -> torch.Tensor:
        B, _, d = h.shape
        H = self.n_heads
        k, v = (to_lanes(t, H) for t in self.kv(h).chunk(2, dim=-1))
        q = to_lanes(self.q(h[:, -1:] if last_only else h), H)
        a = causal_attention_lanes(q, k, v, 1.0 / math.sqrt(d // H))
        return self.out(from_lanes(a, B, H))

    def weights(self, h: torch.Tensor) -> torch.Tensor:
        """Attention weights ``(B, H, L, L)``: row t is a distribution over keys <= t."""
        q = self._heads(self.q(h))
        k = self._heads(self.kv(h).chunk(2, -1)[0])
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        L = h.shape[1]
        future = torch.ones(L, L, dtype=torch.bool, device=h.device).triu(1)
        return torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)


class _DecoderLayer(nn.Module):
    """Causal self-attention, gated add & norm, then a position-wise GRN feed-forward."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.attn = _CausalSelfAttention(d_model, n_heads)
        self.gate = GatedLinearUnit(d_model, d_model, dropout)
        self.norm = nn.LayerNorm(d_model)
        self.ffn = GatedResidualNetwork(d_model, d_model, d_model, dropout)

    def forward(self, h: torch.Tensor, last_only: bool = False) -> torch.Tensor:  # noqa: D102
        a = self.attn(h, last_only=last_only)
        res = h[:, -1:] if last_only else h
        return self.ffn(self.norm(res + self.gate(a)))


class MomentumTransformerNetwork(nn.Module):
    """Decoder-only TFT: VSN -> positional encoding -> causal attention layers -> tanh head.

    Per step: variable selection over the F inputs (:class:`VariableSelectionNetwork`),
    plus a sinusoidal positional encoding; ``n_layers`` decoder layers, each masked
    multi-head self-attention, gated add & norm and a GRN feed-forward; a final gated
    add & norm back to the layer stack's input (TFT's skip over the temporal block);
    ``tanh(linear)`` position head.

    Parameters
    ----------
    n_features : int
        Input features F.
    d_model : int
        Model width (divisible by ``n_heads``).
    n_heads : int
        Attention heads.
    n_layers : int
        Decoder layers.
    dropout : float
        Dropout before every GLU gate.

    Notes
    -----
    ``(B, L, F)`` -> positions ``(B, L)`` in [-1, 1]; the output at step t depends on steps
    <= t only. Simplifications against Wood et al. (2021): no LSTM encoder (positional
    encoding instead), standard (not TFT's interpretable, value-sharing) multi-head
    attention, no static covariates.
    """

    pe: torch.Tensor
    _fused_plan: Any  # workbench.models._fused._Plan once built

    def __init__(self, n_features: int, d_model: int, n_heads: int, n_layers: int,
                 dropout: float):
        super().__init__()
        self.d_model = d_model
        self.vsn = VariableSelectionNetwork(n_features, d_model, dropout)
        self.layers = nn.ModuleList(_DecoderLayer(d_model, n_heads, dropout)
                                    for _ in range(n_layers))
        self.out_gate = GatedLinearUnit(d_model, d_model, dropout)
        self.out_norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 1)
        self.register_buffer("pe", sinusoidal_encoding(512, d_model), persistent=False)
        self.fused = False
        self._fused_plan = None

    def _positions(self, length: int) -> torch.Tensor:
        """Positional encoding of ``length`` steps, ``(length, d)``.

        A view of the stored 512-step table; longer sequences compute theirs (no state
        change).
        """
        pe = self.pe
        if length > pe.shape[0]:
            pe = sinusoidal_encoding(length, self.d_model).to(device=pe.device, dtype=pe.dtype)
        return pe[:length]

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """VSN output plus positional encoding ``(B, L, d)`` and VSN weights ``(B, L, F)``."""
        h, w = self.vsn(x)
        return h + self._positions(x.shape[1]), w

    def _head(self, h: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        h = self.out_norm(skip + self.out_gate(h))
        return torch.tanh(self.head(h)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        skip, _ = self._embed(x)
        h = skip
        for layer in self.layers:
            h = layer(h)
        return self._head(h, skip)

    def forward_last(self, x: torch.Tensor) -> torch.Tensor:
        """Last step's position only, ``(B, L, F) -> (B,)``.

        Every layer but the last runs over all steps (their outputs are the last layer's
        keys and values); the last layer computes one query, attending to all steps, and
        its feed-forward and head for that step alone. With :meth:`set_fused_attention`
        on, eval-mode inference (autograd off, not being traced by ``torch.compile``) on a
        non-empty float32 CPU batch runs the fused lane-major path of
        :mod:`workbench.models._fused` instead (equal to float32 rounding).
        """
        if (self.fused and not self.training and x.device.type == "cpu"
                and x.dtype == torch.float32 and x.numel() and not torch.is_grad_enabled()
                and not torch.compiler.is_compiling()):
            from workbench.models._fused import fused_forward_last

            return fused_forward_last(self, x)
        skip, _ = self._embed(x)
        h = skip
        for layer in self.layers[:-1]:
            h = layer(h)
        h = self.layers[-1](h, last_only=True)
        return self._head(h, skip[:, -1:])[:, -1]

    def set_fused_attention(self, on: bool = True) -> MomentumTransformerNetwork:
        """Serve attention with the fused CPU kernel (``on``) or ATen's SDPA; returns self.

        With ``on``, inference (autograd off) on float32 CPU tensors runs the lane-major
        kernel of :mod:`workbench.models._attention` (~2.5x faster than SDPA for 4 heads
        of width 8 over 63 steps, equal to float32 rounding), and eval-mode
        :meth:`forward_last` runs the whole last-step path fused
        (:func:`workbench.models._fused.fused_forward_last`: lane-major activations, one
        ``torch.mm`` per composed linear map and numba kernels for the rest, ~2.3-2.8x
        faster than the module path at batch 64 on one core); training, CUDA and other
        dtypes keep the module path and SDPA. The setting is not part of the weights or
        the saved card.

        Parameters
        ----------
        on : bool, default True
            Use the fused kernel where it applies.

        Returns
        -------
        MomentumTransformerNetwork
            This network (changed in place).
        """
        self.fused = bool(on)
        self._fused_plan = None  # built on first use, from the weights then
        for layer in self.layers:
            layer.attn.fused = bool(on)  # type: ignore[union-attr]
        return self

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Last layer's attention weights, ``(B, L, F)`` -> ``(B, n_heads, L, L)``.

        Entry ``[b, h, t, s]`` is the weight step t puts on step s (0 for s > t); every
        row sums to 1.
        """
        h, _ = self._embed(x)
        for layer in self.layers[:-1]:
            h = layer(h)
        last: _DecoderLayer = self.layers[-1]  # type: ignore[assignment]
        return last.attn.weights(h)

    def variable_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Variable selection weights, ``(B, L, F)`` -> ``(B, L, F)`` (each step sums to 1)."""
        return self.vsn(x)[1]


class MomentumTransformer(SequenceModel):
    """Momentum Transformer: a decoder-only Temporal Fusion Transformer trading member.

    Wood, Giegerich, Roberts & Zohren (2021), "Trading with the Momentum Transformer: An
    Intelligent and Interpretable Architecture": per-step variable selection over the
    momentum features, causal multi-head self-attention over the sequence with gated
    residual networks (Lim et al. 2021, TFT), and a tanh position head, trained end to
    end on the Sharpe loss through :class:`~workbench.models.SequenceModel`. See
    :class:`MomentumTransformerNetwork` for the architecture and its simplifications.

    Parameters
    ----------
    d_model : int, default 32
        Model width (divisible by ``n_heads``).
    n_heads : int, default 4
        Attention heads.
    n_layers : int, default 2
        Decoder layers (attention + GRN feed-forward).
    dropout, seq_len, burn_in, batch_size, lr, max_grad_norm, epochs, patience, loss, \
cost_bps, target_vol, seed, device, progress
        See :class:`~workbench.models.SequenceModel`.

    Attributes
    ----------
    network_ : MomentumTransformerNetwork
        Fitted network (best validation epoch), on CPU.
    history_, best_epoch_, best_valid_sharpe_, n_features_in_, feature_names_in_, \
training_window_, training_dates_
        See :class:`~workbench.models.SequenceModel`.

    Raises
    ------
    ValueError
        From ``fit`` when ``d_model``, ``n_heads`` or ``n_layers`` is not an int >= 1 or
        ``d_model`` is not divisible by ``n_heads`` (the message names both).
    """

    def __init__(
        self,
        d_model: int = 32,
        n_heads: int = 4,
        n_layers: int = 2,
        dropout: float = 0.3,
        seq_len: int = 63,
        burn_in: int = 63,
        batch_size: int = 64,
        lr: float = 1e-3,
        max_grad_norm: float = 1.0,
        epochs: int = 50,
        patience: int = 10,
        loss: str = "sharpe",
        cost_bps: float = 0.0,
        target_vol: float = 0.15,
        seed: int = 0,
        device: str = "auto",
        progress: bool = True,
    ):
        super().__init__(dropout=dropout, seq_len=seq_len, burn_in=burn_in,
                         batch_size=batch_size, lr=lr, max_grad_norm=max_grad_norm,
                         epochs=epochs, patience=patience, loss=loss, cost_bps=cost_bps,
                         target_vol=target_vol, seed=seed, device=device, progress=progress)
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_layers = n_layers

    def _validate_extra(self) -> None:
        check_param("d_model", self.d_model, _is_int(self.d_model, 1), "an int >= 1")
        check_param("n_heads", self.n_heads, _is_int(self.n_heads, 1), "an int >= 1")
        check_param("n_layers", self.n_layers, _is_int(self.n_layers, 1), "an int >= 1")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model must be divisible by n_heads, got d_model="
                             f"{self.d_model!r} and n_heads={self.n_heads!r}")

    def _build_network(self, n_features: int) -> MomentumTransformerNetwork:
        return MomentumTransformerNetwork(n_features, int(self.d_model), int(self.n_heads),
                                          int(self.n_layers), float(self.dropout))

    def _inspect(self, x: np.ndarray, what: str) -> np.ndarray:
        if not hasattr(self, "network_"):
            raise ValueError(f"{type(self).__name__} is not fitted; call fit() first")
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3 or x.shape[-1] != self.n_features_in_:
            raise ValueError(f"x must have shape (B, L, {self.n_features_in_}), got {x.shape}")
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        net = self.network_
        was_training = net.training
        net.eval()
        try:
            with torch.inference_mode():
                return getattr(net, what)(torch.from_numpy(x)).numpy().astype(np.float64)
        finally:
            net.train(was_training)

    def attention_weights(self, x: np.ndarray) -> np.ndarray:
        """Last attention layer's weights for plots.

        Parameters
        ----------
        x : numpy.ndarray, shape (B, L, F)
            Feature sequences (non-finite values read as 0, as in training windows).

        Returns
        -------
        numpy.ndarray, shape (B, n_heads, L, L)
            ``[b, h, t, s]``: weight of step s in step t's attention (0 for s > t); rows
            sum to 1.

        Raises
        ------
        ValueError
            If the model is not fitted or ``x`` is not (B, L, n_features_in_).
        """
        return self._inspect(x, "attention_weights")

    def variable_weights(self, x: np.ndarray) -> np.ndarray:
        """Variable selection weights for plots.

        Parameters
        ----------
        x : numpy.ndarray, shape (B, L, F)
            Feature sequences (non-finite values read as 0).

        Returns
        -------
        numpy.ndarray, shape (B, L, F)
            Softmax weight of each input variable at each step (sums to 1 over F).

        Raises
        ------
        ValueError
            If the model is not fitted or ``x`` is not (B, L, n_features_in_).
        """
        return self._inspect(x, "variable_weights")
