"""The Momentum Transformer's fused lane-major last-step path against its module path."""

import copy

import pytest
import torch

from workbench.models._fused import fused_forward_last
from workbench.models._transformer import MomentumTransformerNetwork


def _net(F=10, d=32, H=4, layers=2, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    net = MomentumTransformerNetwork(F, d, H, layers, dropout).eval()
    with torch.no_grad():  # spread the weights beyond the init's scale (LN, gates bite)
        for p in net.parameters():
            p.mul_(1.5).add_(0.1 * torch.randn_like(p))
    return net


def _x(B, L, F, seed=1):
    return torch.randn(B, L, F, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("F", "d", "H", "layers", "B", "L"), [
    (10, 32, 4, 2, 64, 63),  # the served configuration (two chunks of 32 rows)
    (10, 32, 4, 2, 100, 63),  # chunks of 32, 32, 32 and 4 rows
    (10, 32, 4, 2, 1, 63),
    (5, 8, 2, 1, 3, 1),  # one layer (it is the last), one step
    (3, 16, 4, 3, 5, 20),  # three layers
    (4, 12, 3, 2, 7, 9),  # head width 4, odd lanes
    (6, 10, 2, 2, 4, 11),  # head width 5: the dot products' remainder terms
    (4, 8, 2, 2, 2, 600),  # longer than the stored positional table (512)
])
def test_fused_last_step_matches_module_path(F, d, H, layers, B, L):
    net = _net(F, d, H, layers, seed=B + L)
    x = _x(B, L, F, seed=L)
    with torch.inference_mode():
        want = net.forward_last(x)
        got = fused_forward_last(net, x)
    assert got.shape == (B,) and got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0, atol=2e-6)


def test_network_serves_the_fused_path_only_for_eval_inference():
    net = _net()
    x = _x(8, 63, 10)
    with torch.inference_mode():
        module = net.forward_last(x)
        net.set_fused_attention(True)
        fused = net.forward_last(x)
    assert not torch.equal(fused, module)  # the fused path ran (float rounding differs)
    torch.testing.assert_close(fused, module, rtol=0, atol=2e-6)
    with torch.no_grad():  # eval mode, autograd off: fused
        assert torch.equal(net.forward_last(x), fused)
    grad = net.forward_last(x)  # autograd on: the module path, differentiable
    assert grad.requires_grad
    grad.sum().backward()
    net.zero_grad()
    net.train()  # training mode (dropout would apply): module path
    with torch.no_grad():
        torch.testing.assert_close(net.forward_last(x), module, rtol=0, atol=1e-6)
        assert not torch.equal(net.forward_last(x), fused)
    net.eval().set_fused_attention(False)
    with torch.inference_mode():
        assert torch.equal(net.forward_last(x), module)


def test_torch_compile_traces_the_module_path():
    net = _net(F=4, d=8, H=2, layers=2).set_fused_attention(True)
    x = _x(3, 10, 4)
    with torch.inference_mode():
        want = net.forward_last(x)
        try:
            compiled = torch.compile(net.forward_last, backend="eager")
            got = compiled(x)
        except Exception as exc:  # noqa: BLE001 - no working compiler here
            pytest.skip(f"torch.compile unavailable: {exc}")
    torch.testing.assert_close(got, want, rtol=0, atol=2e-6)


def test_plan_follows_weight_updates():
    net = _net(F=4, d=8, H=2).set_fused_attention(True)
    module = copy.deepcopy(net).set_fused_attention(False)
    x = _x(5, 30, 4)
    with torch.inference_mode():
        before = net.forward_last(x)
    with torch.no_grad():  # an in-place update, as an optimiser step makes
        for a, b in ((net.layers[1].ffn.fc1.weight, module.layers[1].ffn.fc1.weight),
                     (net.vsn.embed_b, module.vsn.embed_b)):
            a.add_(0.5)
            b.add_(0.5)
    with torch.inference_mode():
        after = net.forward_last(x)
        assert not torch.allclose(after, before)
        torch.testing.assert_close(after, module.forward_last(x), rtol=0, atol=2e-6)
    other = _net(F=4, d=8, H=2, seed=9)
    net.load_state_dict(other.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(net.forward_last(x), other.forward_last(x), rtol=0,
                                   atol=2e-6)


def test_each_sequence_is_its_own_lane():
    net = _net()
    x = _x(6, 63, 10)
    with torch.inference_mode():
        base = fused_forward_last(net, x)
        x2 = x.clone()
        x2[2, 40, 3] = float("nan")  # one bad value in sequence 2
        x2[4] = 1e3 * torch.randn(63, 10)  # another sequence changed wholesale
        out = fused_forward_last(net, x2)
    assert torch.isnan(out[2])  # NaN reaches its own position (the engine's health sees it)
    keep = [0, 1, 3, 5]
    assert torch.equal(out[keep], base[keep])
    assert torch.isfinite(out[4])


def test_last_step_equals_the_full_forward_at_every_prefix():
    # the last step's position at step t is the position of the prefix ending at t
    net = _net(F=4, d=8, H=2)
    x = _x(3, 40, 4)
    with torch.inference_mode():
        full = net(x)  # (B, L) module path over every step
        for t in (0, 17, 39):
            torch.testing.assert_close(fused_forward_last(net, x[:, : t + 1]), full[:, t],
                                       rtol=0, atol=2e-6)


def test_bad_input_is_named():
    net = _net(F=4, d=8, H=2)
    with pytest.raises(ValueError, match=r"x must be a non-empty \(B, L, 4\) float32 CPU "
                                         r"tensor, got \(2, 5, 3\) torch.float32"):
        fused_forward_last(net, torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="torch.float64"):
        fused_forward_last(net, torch.zeros(2, 5, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"got \(0, 5, 4\)"):
        fused_forward_last(net, torch.zeros(0, 5, 4))
    net.set_fused_attention(True)
    with torch.inference_mode():  # the network itself serves empty batches on its module path
        assert net.forward_last(torch.zeros(0, 5, 4)).shape == (0,)


def test_exp32_is_accurate_and_clamps():
    import numpy as np

    from workbench.models._lanes_nb import EXP_CEIL, EXP_FLOOR, exp32

    xs = np.linspace(-87.0, 88.0, 4001, dtype=np.float32)
    got = np.array([exp32(x) for x in xs], dtype=np.float64)
    want = np.exp(xs.astype(np.float64))
    assert np.max(np.abs(got / want - 1.0)) < 3e-7  # ~2 ulp of float32
    assert exp32(np.float32(-200.0)) == np.float32(np.exp(np.float64(EXP_FLOOR)))
    assert exp32(np.float32(200.0)) == np.float32(np.exp(np.float64(EXP_CEIL)))
    assert np.isnan(exp32(np.float32("nan")))
