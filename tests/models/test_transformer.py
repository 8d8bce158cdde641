import numpy as np
import pytest
import torch

from workbench.models import MomentumTransformer
from workbench.models._transformer import (
    GatedResidualNetwork,
    MomentumTransformerNetwork,
    VariableSelectionNetwork,
    sinusoidal_encoding,
)

from . import contract
from .conftest import synthetic_dataset


def _model(**kw):
    base = dict(d_model=8, n_heads=2, n_layers=2, seq_len=21, burn_in=21, epochs=2, patience=2,
                batch_size=16, lr=5e-3, seed=7, device="cpu", progress=False)
    base.update(kw)
    return MomentumTransformer(**base)


@pytest.fixture(scope="module")
def fitted():
    ds = synthetic_dataset()
    return _model().fit(ds, contract.TRAIN, contract.VALID), ds


def test_fit_sets_attributes_and_history(fitted):
    model, ds = fitted
    contract.check_fit_attributes(model, ds, max_records=2)
    assert isinstance(model.network_, MomentumTransformerNetwork)


def test_predictions_are_causal(fitted):
    contract.check_causal(*fitted)


def test_registry_round_trip(fitted):
    contract.check_registry_round_trip(*fitted)


def test_predict_sequences_is_the_networks_last_step(fitted):
    contract.check_predict_sequences_is_last_step(*fitted)


def test_training_is_deterministic(dataset):
    contract.check_deterministic(lambda **kw: _model(epochs=1, **kw), dataset)


def test_training_never_reads_targets_after_train_window(dataset):
    contract.check_no_target_after_train_window(lambda **kw: _model(epochs=1, **kw), dataset)


def test_learns_a_predictable_signal():
    contract.check_learns(lambda **kw: _model(n_layers=1, epochs=3, patience=3, **kw))


def test_params_api():
    contract.check_params_api(_model, ("d_model", "n_heads", "n_layers"))
    assert list(MomentumTransformer().get_params())[:3] == ["d_model", "n_heads", "n_layers"]
    assert MomentumTransformer().get_params()["d_model"] == 32


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"d_model": 30, "n_heads": 4}, "d_model must be divisible by n_heads, got d_model=30 "
                                     "and n_heads=4"),
     ({"d_model": 0}, "d_model must be an int >= 1, got 0"),
     ({"n_heads": 0}, "n_heads must be an int >= 1, got 0"),
     ({"n_layers": 1.0}, "n_layers must be an int >= 1, got 1.0"),
     ({"seq_len": 1}, "seq_len must be an int >= 2, got 1")],
)
def test_bad_hyperparameters_name_parameter(dataset, kw, match):
    with pytest.raises(ValueError, match=match):
        _model(**kw).fit(dataset, slice(0, 300), slice(300, 400))


@pytest.mark.parametrize(("d_model", "n_heads", "n_layers"), [(8, 2, 1), (8, 2, 2), (12, 3, 3),
                                                              (7, 1, 1)])
def test_forward_last_equals_last_step_of_forward(d_model, n_heads, n_layers):
    torch.manual_seed(0)
    net = MomentumTransformerNetwork(5, d_model, n_heads, n_layers, dropout=0.3)
    # includes a length beyond the positional-encoding table (512 steps)
    contract.check_forward_last(net, 5, lengths=(1, 2, 21, 63, 600))
    assert net.pe.shape[0] == 512  # long inputs leave the module's state alone


def test_network_is_causal_step_by_step():
    torch.manual_seed(0)
    net = MomentumTransformerNetwork(4, 8, 2, 2, dropout=0.0).eval()
    x = torch.randn(3, 30, 4)
    with torch.inference_mode():
        base = net(x)
        for t in (0, 10, 28):
            y = x.clone()
            y[:, t + 1 :] = 100.0
            out = net(y)
            torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], atol=1e-6, rtol=0)
            assert not torch.allclose(out[:, t + 1 :], base[:, t + 1 :])


def test_attention_weights_are_causal_distributions(fitted):
    model, ds = fitted
    x = ds.features[100:140].transpose(1, 0, 2)  # (3, 40, 4) with a NaN-free window
    w = model.attention_weights(x)
    assert w.shape == (3, 2, 40, 40)
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, atol=1e-6)
    assert np.all(np.triu(w, k=1) == 0.0)  # step t puts no weight on steps after t
    assert np.all(np.diagonal(w, axis1=-2, axis2=-1) > 0)
    assert not np.allclose(w[..., 10, :11], 1.0 / 11)  # trained weights are not uniform


def test_variable_weights_are_distributions(fitted):
    model, ds = fitted
    x = ds.features[:40].transpose(1, 0, 2)  # asset 1 has NaN inputs here (read as 0)
    v = model.variable_weights(x)
    assert v.shape == (3, 40, 4)
    assert np.all(v > 0)
    np.testing.assert_allclose(v.sum(axis=-1), 1.0, atol=1e-6)
    assert v.std(axis=(0, 1)).max() > 0  # weights vary with the inputs


def test_inspection_methods_check_state_and_shape(fitted):
    model, _ = fitted
    with pytest.raises(ValueError, match="not fitted"):
        _model().attention_weights(np.zeros((1, 5, 4)))
    with pytest.raises(ValueError, match=r"shape \(B, L, 4\)"):
        model.variable_weights(np.zeros((1, 5, 3)))
    model.network_.train()
    model.attention_weights(np.zeros((1, 5, 4)))
    assert model.network_.training  # mode restored
    model.network_.eval()


def test_variable_selection_network_parts():
    torch.manual_seed(0)
    vsn = VariableSelectionNetwork(3, 8, dropout=0.0).eval()
    x = torch.randn(2, 7, 3)
    out, w = vsn(x)
    assert out.shape == (2, 7, 8) and w.shape == (2, 7, 3)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 7))
    # per time step: the step's output depends only on that step's inputs
    y = x.clone()
    y[:, 3] = 9.0
    out2, _ = vsn(y)
    torch.testing.assert_close(out2[:, :3], out[:, :3], atol=0, rtol=0)
    torch.testing.assert_close(out2[:, 4:], out[:, 4:], atol=0, rtol=0)


def test_gated_residual_network_shapes_and_norm():
    torch.manual_seed(0)
    grn = GatedResidualNetwork(6, 8, 4, dropout=0.0)
    y = grn(torch.randn(5, 6))
    assert y.shape == (5, 4)
    torch.testing.assert_close(y.mean(-1), torch.zeros(5), atol=1e-5, rtol=0)  # LayerNorm
    same = GatedResidualNetwork(4, 8, 4, dropout=0.0)
    assert isinstance(same.skip, torch.nn.Identity)


def test_sinusoidal_encoding():
    pe = sinusoidal_encoding(10, 7)
    assert pe.shape == (10, 7)
    torch.testing.assert_close(pe[0, 0::2], torch.zeros(4))
    torch.testing.assert_close(pe[0, 1::2], torch.ones(3))
    torch.testing.assert_close(pe[3, 0], torch.sin(torch.tensor(3.0)))
