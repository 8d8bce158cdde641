import math

import numpy as np
import pytest
import torch

from workbench.models import captured_returns, sharpe_loss


def _ref_sharpe(x, r, s, tgt=0.15, cost_bps=0.0):
    x, r, s = (np.asarray(a, dtype=np.float64) for a in (x, r, s))
    R = x * (tgt / s) * r
    if cost_bps:
        xs = x / s
        prev = np.concatenate([np.zeros((x.shape[0], 1)), xs[:, :-1]], axis=1)
        R = R - cost_bps * 1e-4 * tgt * np.abs(xs - prev)
    return -math.sqrt(252) * R.mean() / R.std()


def test_sharpe_loss_matches_float64_reference():
    rng = np.random.default_rng(1)
    x = np.tanh(rng.normal(size=(4, 30)))
    r = rng.normal(0.0005, 0.01, size=(4, 30))
    s = rng.uniform(0.1, 0.4, size=(4, 30))
    for cost in (0.0, 10.0):
        got = sharpe_loss(torch.tensor(x), torch.tensor(r), torch.tensor(s), cost_bps=cost)
        assert float(got) == pytest.approx(_ref_sharpe(x, r, s, cost_bps=cost), rel=1e-9)


def test_sharpe_loss_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    x = torch.tensor(np.tanh(rng.normal(size=(3, 20))), requires_grad=True)
    r = torch.tensor(rng.normal(0.0, 0.01, size=(3, 20)))
    s = torch.tensor(rng.uniform(0.1, 0.3, size=(3, 20)))
    assert torch.autograd.gradcheck(
        lambda a: sharpe_loss(a, r, s, cost_bps=5.0), (x,), eps=1e-6, atol=1e-6
    )


def test_sharpe_gradient_direction_increases_sharpe():
    # A step against the gradient must lower the loss (raise the Sharpe ratio).
    rng = np.random.default_rng(3)
    x = torch.zeros(2, 50, requires_grad=True)
    r = torch.tensor(rng.normal(0.001, 0.01, size=(2, 50)))
    s = torch.full((2, 50), 0.2, dtype=torch.float64)
    x0 = (x.detach() + 0.1).double().requires_grad_(True)
    loss = sharpe_loss(x0, r, s)
    loss.backward()
    x1 = x0.detach() - 0.01 * x0.grad
    assert sharpe_loss(x1, r, s).item() < loss.item()
    # Positions aligned with the sign of the next return give a positive Sharpe ratio.
    assert float(sharpe_loss(torch.sign(r), r, s)) < 0


def test_mask_excludes_pairs():
    r = torch.tensor([[0.01, -0.02, 0.03, 100.0]], dtype=torch.float64)
    x = torch.ones_like(r)
    s = torch.full_like(r, 0.15)
    m = torch.tensor([[True, True, True, False]])
    full = sharpe_loss(x[:, :3], r[:, :3], s[:, :3])
    assert float(sharpe_loss(x, r, s, m)) == pytest.approx(float(full), rel=1e-12)
    with pytest.raises(ValueError, match="at least 2 valid pairs"):
        sharpe_loss(x, r, s, torch.zeros_like(m))


def test_turnover_cost_in_captured_returns():
    x = torch.tensor([[1.0, 1.0, -1.0]], dtype=torch.float64)
    r = torch.tensor([[0.01, 0.01, 0.01]], dtype=torch.float64)
    s = torch.tensor([[0.15, 0.30, 0.15]], dtype=torch.float64)
    got = captured_returns(x, r, s, cost_bps=10.0).numpy()[0]
    c = 1e-3
    exp = [
        1 * 1 * 0.01 - c * 0.15 * abs(1 / 0.15 - 0),
        1 * 0.5 * 0.01 - c * 0.15 * abs(1 / 0.30 - 1 / 0.15),
        -1 * 1 * 0.01 - c * 0.15 * abs(-1 / 0.15 - 1 / 0.30),
    ]
    np.testing.assert_allclose(got, exp, rtol=1e-12)


def test_torch_captured_returns_match_numpy_backtest_formula():
    """The differentiable loss and the backtest's numpy formula are the same equation."""
    from workbench.backtest import strategy_returns

    rng = np.random.default_rng(5)
    T, N = 40, 3
    x = np.tanh(rng.normal(size=(T, N)))
    r = rng.normal(0, 0.01, size=(T, N))
    s = rng.uniform(0.1, 0.4, size=(T, N))
    per_asset = strategy_returns(x, s, r, target_vol=0.15, cost_bps=7.0).per_asset
    got = captured_returns(torch.tensor(x.T), torch.tensor(r.T), torch.tensor(s.T),
                           cost_bps=7.0).numpy().T
    np.testing.assert_allclose(got, per_asset, rtol=1e-12)


@pytest.mark.parametrize("name", ["sharpe", "mse", "binary"])
def test_masked_out_nan_returns_and_vol_keep_gradients_finite(name):
    """Masked pairs (no bar, warm-up) may hold NaN: value and gradient as if absent."""
    from workbench.models import LOSSES

    rng = np.random.default_rng(7)
    x = np.tanh(rng.normal(size=(3, 25)))
    r = rng.normal(0.0, 0.01, size=(3, 25))
    s = rng.uniform(0.1, 0.3, size=(3, 25))
    m = rng.random((3, 25)) > 0.3
    r_nan, s_nan = r.copy(), s.copy()
    r_nan[~m], s_nan[~m] = np.nan, np.nan
    loss = LOSSES[name]
    grads, values = [], []
    for rr, ss in ((r, s), (r_nan, s_nan)):
        xt = torch.tensor(x, requires_grad=True)
        v = loss(xt, torch.tensor(rr), torch.tensor(ss), torch.tensor(m), cost_bps=10.0)
        v.backward()
        values.append(v.item())
        grads.append(xt.grad.numpy())
    assert np.isfinite(grads[1]).all()
    assert values[1] == pytest.approx(values[0], rel=1e-12)
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-10, atol=1e-14)


def test_masked_gap_costs_the_change_across_it_like_strategy_returns():
    """A gap (invalid pairs inside an asset's history) holds the position: the torch loss
    charges the change across it, as the backtest's strategy_returns does."""
    from workbench.backtest import strategy_returns

    rng = np.random.default_rng(11)
    T, N = 30, 3
    x = np.tanh(rng.normal(size=(T, N)))
    r = rng.normal(0, 0.01, size=(T, N))
    s = rng.uniform(0.1, 0.4, size=(T, N))
    s[5:8, 0] = np.nan  # gaps: no bar, no sigma
    s[20, 2] = np.nan
    s[:3, 1] = np.nan  # warm-up before the first bar
    ok = np.isfinite(s)
    exp = strategy_returns(x, s, r, target_vol=0.15, cost_bps=9.0).per_asset
    xt = torch.tensor(x.T, requires_grad=True)
    got = captured_returns(xt, torch.tensor(r.T), torch.tensor(s.T), cost_bps=9.0,
                           mask=torch.tensor(ok.T))
    np.testing.assert_allclose(got.detach().numpy().T[ok], exp[ok], rtol=1e-12)
    got[torch.tensor(ok.T)].sum().backward()
    assert torch.isfinite(xt.grad).all()
