import numpy as np
import pytest
import torch

from workbench.models import CNNModel, LinearModel, MLPModel
from workbench.models._zoo import CNNNetwork, LinearNetwork, MLPNetwork

from . import contract
from .conftest import synthetic_dataset

SMALL = {LinearModel: {}, MLPModel: {"hidden_size": 8}, CNNModel: {"channels": 8}}
OWN = {LinearModel: (), MLPModel: ("hidden_size", "num_layers", "activation"),
       CNNModel: ("channels", "kernel_size", "num_layers")}
CLASSES = list(SMALL)


def _maker(cls, **defaults):
    def make(**kw):
        base = dict(seq_len=21, burn_in=21, epochs=3, patience=3, batch_size=16, lr=5e-3,
                    seed=7, device="cpu", progress=False, **SMALL[cls])
        base.update(defaults)
        base.update(kw)
        return cls(**base)

    return make


@pytest.fixture(scope="module", params=CLASSES, ids=lambda c: c.__name__)
def fitted(request):
    ds = synthetic_dataset()
    return _maker(request.param)().fit(ds, contract.TRAIN, contract.VALID), ds


def test_fit_sets_attributes_and_history(fitted):
    model, ds = fitted
    contract.check_fit_attributes(model, ds, max_records=3)


def test_predictions_are_causal(fitted):
    contract.check_causal(*fitted)


def test_registry_round_trip(fitted):
    contract.check_registry_round_trip(*fitted)


def test_predict_sequences_is_the_networks_last_step(fitted):
    contract.check_predict_sequences_is_last_step(*fitted)


def test_fitted_network_forward_last(fitted):
    contract.check_forward_last(fitted[0].network_, 4)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_training_is_deterministic(dataset, cls):
    contract.check_deterministic(_maker(cls, epochs=2), dataset)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_training_never_reads_targets_after_train_window(dataset, cls):
    contract.check_no_target_after_train_window(_maker(cls, epochs=1), dataset)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_learns_a_predictable_signal(cls):
    contract.check_learns(_maker(cls, epochs=6, patience=6))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_params_api(cls):
    contract.check_params_api(_maker(cls), OWN[cls])


@pytest.mark.parametrize(
    ("cls", "param", "value", "match"),
    [(MLPModel, "hidden_size", 0, "hidden_size must be an int >= 1, got 0"),
     (MLPModel, "num_layers", 0, "num_layers must be an int >= 1, got 0"),
     (MLPModel, "activation", "relu", "activation must be one of \\['elu', 'tanh'\\], got 'relu'"),
     (CNNModel, "kernel_size", 0, "kernel_size must be an int >= 1, got 0"),
     (CNNModel, "channels", 2.5, "channels must be an int >= 1, got 2.5"),
     (CNNModel, "num_layers", True, "num_layers must be an int >= 1, got True"),
     (LinearModel, "dropout", 1.0, "dropout must be in \\[0, 1\\), got 1.0")],
)
def test_bad_hyperparameters_name_parameter(dataset, cls, param, value, match):
    with pytest.raises(ValueError, match=match):
        _maker(cls)(**{param: value}).fit(dataset, slice(0, 300), slice(300, 400))


@pytest.mark.parametrize(
    "network",
    [LinearNetwork(4, 0.2), MLPNetwork(4, 8, 1, 0.2), MLPNetwork(4, 8, 3, 0.2, "tanh"),
     CNNNetwork(4, 8, 3, 3, 0.2), CNNNetwork(4, 4, 2, 1, 0.0), CNNNetwork(4, 4, 5, 4, 0.0),
     CNNNetwork(4, 4, 1, 2, 0.0)],
    ids=lambda n: type(n).__name__,
)
def test_forward_last_equals_last_step_of_forward(network):
    # lengths below, at and above the CNN receptive fields (15, 5, 61, 1)
    contract.check_forward_last(network, 4, lengths=(1, 2, 4, 5, 6, 14, 15, 16, 61, 63, 70))


@pytest.mark.parametrize(
    "network", [LinearNetwork(4, 0.0), MLPNetwork(4, 8, 2, 0.0), CNNNetwork(4, 8, 3, 3, 0.0)],
    ids=lambda n: type(n).__name__,
)
def test_networks_are_causal_step_by_step(network):
    network.eval()
    x = torch.randn(3, 30, 4, generator=torch.Generator().manual_seed(1))
    base = network(x)
    for t in (0, 10, 28):
        y = x.clone()
        y[:, t + 1 :] = 100.0
        out = network(y)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], atol=0, rtol=0)
        assert not torch.equal(out[:, t + 1 :], base[:, t + 1 :])


@pytest.mark.parametrize("network", [LinearNetwork(4, 0.0), MLPNetwork(4, 8, 2, 0.0)],
                         ids=lambda n: type(n).__name__)
def test_per_step_networks_read_only_their_step(network):
    network.eval()
    x = torch.randn(3, 10, 4, generator=torch.Generator().manual_seed(2))
    y = x.clone()
    y[:, :5] = -7.0  # change the past of step 5: step 5 must not move
    torch.testing.assert_close(network(y)[:, 5:], network(x)[:, 5:], atol=0, rtol=0)


def test_cnn_reads_exactly_its_receptive_field():
    net = CNNNetwork(4, 8, 3, 3, 0.0).eval()
    R = net.receptive_field
    assert R == 1 + 2 * (1 + 2 + 4)
    x = torch.randn(2, 40, 4, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        base = net.forward_last(x)
        before = x.clone()
        before[:, : 40 - R] = 50.0  # older than the receptive field: no effect
        torch.testing.assert_close(net.forward_last(before), base, atol=0, rtol=0)
        torch.testing.assert_close(net(before)[:, -1], base, atol=1e-6, rtol=0)
        inside = x.clone()
        inside[:, 40 - R] = 50.0  # the oldest step it reads: an effect
        assert not torch.allclose(net(inside)[:, -1], base)


def test_mlp_activation_and_depth_are_used(dataset):
    a = _maker(MLPModel, epochs=1)(num_layers=2, activation="tanh").fit(dataset, slice(0, 300))
    linears = [m for m in a.network_.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3  # two hidden layers and the head
    assert any(isinstance(m, torch.nn.Tanh) for m in a.network_.modules())


def test_predict_before_fit_and_wrong_shape(dataset):
    for cls in CLASSES:
        with pytest.raises(ValueError, match="not fitted"):
            _maker(cls)().predict(dataset.features)
    m = _maker(LinearModel, epochs=1)().fit(dataset, slice(0, 300))
    with pytest.raises(ValueError, match=r"shape \(T, N, 4\)"):
        m.predict(dataset.features[:, :, :3])
    with pytest.raises(ValueError, match=r"shape \(B, L, 4\)"):
        m.predict_sequences(np.zeros((2, 5, 3)))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_validation_score_ignores_returns_after_the_block(cls):
    contract.check_validation_ignores_returns_after_block(_maker(cls, epochs=2),
                                                          synthetic_dataset())


def test_no_target_after_train_window_across_a_gap():
    contract.check_no_target_after_train_window_with_gap(_maker(LinearModel, epochs=2))


def test_empty_valid_means_no_validation():
    contract.check_empty_valid_means_no_validation(_maker(LinearModel, epochs=4, patience=1),
                                                   synthetic_dataset())
