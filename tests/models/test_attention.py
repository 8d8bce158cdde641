"""The fused CPU attention kernel against ATen's scaled_dot_product_attention."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as fn

from workbench.models._attention import causal_attention_lanes, from_lanes, to_lanes
from workbench.models._transformer import MomentumTransformerNetwork


def _heads(B=6, H=4, L=63, D=8, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return tuple(scale * torch.randn(B, H, L, D, generator=g) for _ in range(3))


def _lanes(t):  # (B, H, L, D) -> (D, L, B * H)
    B, H, L, D = t.shape
    return to_lanes(t.transpose(1, 2).reshape(B, L, H * D), H)


def _unlanes(o, B, H):  # (D, Lq, B * H) -> (B, H, Lq, D)
    D, Lq, _ = o.shape
    return from_lanes(o, B, H).view(B, Lq, H, D).transpose(1, 2)


def _fused(q, k, v):
    B, H, _, D = q.shape
    return _unlanes(causal_attention_lanes(_lanes(q), _lanes(k), _lanes(v), 1 / math.sqrt(D)),
                    B, H)


def test_lane_layout_round_trips():
    t = torch.randn(3, 7, 12)
    lanes = to_lanes(t, 4)
    assert lanes.shape == (3, 7, 12)
    assert lanes[1, 5, 2 * 4 + 3] == t[2, 5, 3 * 3 + 1]  # step 5, width 1, batch 2, head 3
    torch.testing.assert_close(from_lanes(lanes, 3, 4), t, rtol=0, atol=0)


@pytest.mark.parametrize(("B", "H", "L", "D"), [(6, 4, 63, 8), (1, 1, 1, 8), (3, 2, 5, 3),
                                                (2, 4, 300, 16)])
def test_causal_attention_matches_sdpa(B, H, L, D):
    q, k, v = _heads(B, H, L, D, seed=L)
    want = fn.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(_fused(q, k, v), want, rtol=0, atol=2e-6)


@pytest.mark.parametrize("Lq", [1, 2, 17])
def test_trailing_queries_see_every_earlier_key(Lq):
    q, k, v = _heads(seed=Lq)
    mask = torch.ones(Lq, 63, dtype=torch.bool).tril(63 - Lq)  # query i sits at step 63-Lq+i
    want = fn.scaled_dot_product_attention(q[:, :, -Lq:], k, v, attn_mask=mask)
    torch.testing.assert_close(_fused(q[:, :, -Lq:], k, v), want, rtol=0, atol=2e-6)


def test_wide_score_ranges_stay_finite_and_normalised():
    q, k, v = _heads(scale=12.0, seed=3)  # scores spread over hundreds: exp underflows
    got = _fused(q, k, v)
    assert torch.isfinite(got).all()
    exact = fn.scaled_dot_product_attention(q.double(), k.double(), v.double(), is_causal=True)
    aten = fn.scaled_dot_product_attention(q, k, v, is_causal=True)
    err = float((got.double() - exact).abs().max())  # float32 rounding of scores ~1e3
    assert err <= 2 * float((aten.double() - exact).abs().max()) + 1e-6
    ones = _fused(q, k, torch.ones_like(v))  # weights sum to one
    torch.testing.assert_close(ones, torch.ones_like(ones), rtol=0, atol=1e-6)


def test_is_causal_exactly():
    q, k, v = _heads(seed=5)
    base = _fused(q, k, v)
    t = 40
    k2, v2 = k.clone(), v.clone()
    k2[:, :, t + 1:] = 1e3 * torch.randn_like(k2[:, :, t + 1:])
    v2[:, :, t + 1:] = float("nan")
    q2 = q.clone()
    q2[:, :, t + 1:] = -7.0
    out = _fused(q2, k2, v2)
    torch.testing.assert_close(out[:, :, : t + 1], base[:, :, : t + 1], rtol=0, atol=0)


def test_nan_input_gives_nan_in_its_lane_only():
    q, k, v = _heads(B=2, H=2, L=10, D=4, seed=6)
    k[1, 0, 3, 2] = float("nan")
    out = _fused(q, k, v)
    assert torch.isnan(out[1, 0, 3:]).all()  # every query that sees step 3
    assert not torch.isnan(out[1, 0, :3]).any()
    assert not torch.isnan(out[0]).any() and not torch.isnan(out[1, 1]).any()


def test_bad_input_is_named():
    q = torch.zeros(4, 8, 6)
    with pytest.raises(ValueError, match="k must be a 3-D float32 CPU tensor, got \\(4, 8, 6\\) "
                                         "torch.float64"):
        causal_attention_lanes(q, q.double(), q, 1.0)
    with pytest.raises(ValueError, match="Lq <= L"):
        causal_attention_lanes(torch.zeros(4, 9, 6), q, q, 1.0)
    with pytest.raises(ValueError, match="do not line up"):
        causal_attention_lanes(q, q, torch.zeros(4, 8, 7), 1.0)
    with pytest.raises(ValueError, match="do not line up"):
        causal_attention_lanes(torch.zeros(3, 8, 6), q, q, 1.0)


def test_op_registration_is_consistent():
    q, k, v = (_lanes(t) for t in _heads(B=2, H=2, L=9, D=4, seed=8))
    torch.library.opcheck(causal_attention_lanes, (q[:, -3:].contiguous(), k, v, 0.5),
                          test_utils=("test_schema", "test_faketensor"))


@pytest.mark.parametrize(("d_model", "n_heads", "n_layers"), [(32, 4, 2), (8, 2, 1)])
def test_transformer_with_fused_attention_matches_sdpa(d_model, n_heads, n_layers):
    torch.manual_seed(0)
    net = MomentumTransformerNetwork(5, d_model, n_heads, n_layers, 0.0).eval()
    x = torch.randn(7, 63, 5)
    with torch.inference_mode():
        full, last = net(x), net.forward_last(x)
        assert net.set_fused_attention(True) is net
        torch.testing.assert_close(net(x), full, rtol=0, atol=1e-6)
        torch.testing.assert_close(net.forward_last(x), last, rtol=0, atol=1e-6)
        assert not torch.equal(net.forward_last(x), last)  # the kernel did run
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net.set_fused_attention(False)
    assert state.keys() == net.state_dict().keys()  # not part of the weights


def test_training_keeps_differentiable_attention():
    torch.manual_seed(1)
    net = MomentumTransformerNetwork(5, 8, 2, 2, 0.0).set_fused_attention(True)
    x = torch.randn(3, 21, 5)
    out = net(x)  # autograd on: SDPA
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    with torch.inference_mode():
        net.set_fused_attention(False)
        np.testing.assert_array_equal(net(x).numpy(), out.detach().numpy())
