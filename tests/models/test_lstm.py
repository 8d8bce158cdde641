import numpy as np
import pytest
import torch

from workbench.models import DeepMomentumLSTM, walk_forward

from .conftest import synthetic_dataset


def _model(**kw):
    base = dict(hidden_size=8, seq_len=21, burn_in=21, epochs=4, patience=3, batch_size=16,
                lr=5e-3, seed=7, device="cpu", progress=False)
    base.update(kw)
    return DeepMomentumLSTM(**base)


def test_fit_sets_attributes_and_history(dataset):
    m = _model().fit(dataset, slice(0, 400), slice(400, 500))
    assert m.n_features_in_ == 4
    assert m.feature_names_in_ == ("f0", "f1", "f2", "f3")
    assert 1 <= len(m.history_) <= 4
    assert {"epoch", "train_loss", "valid_sharpe", "seconds"} <= set(m.history_[0])
    assert m.best_epoch_ in [h["epoch"] for h in m.history_]
    pos = m.predict(dataset.features)
    assert pos.shape == (600, 3)
    assert np.all(np.abs(pos) <= 1.0)
    # No prediction where inputs are missing (asset 1 warm-up): flat.
    assert np.all(pos[:20, 1] == 0.0)


def test_learns_a_predictable_signal():
    ds = synthetic_dataset(T=1500, N=4, seed=3)
    m = _model(epochs=15, patience=15).fit(ds, slice(0, 1000), slice(1000, 1200))
    assert m.best_valid_sharpe_ > 1.0
    assert m.history_[0]["train_loss"] > min(h["train_loss"] for h in m.history_)


def test_predictions_are_causal(dataset):
    m = _model(epochs=2).fit(dataset, slice(0, 400), slice(400, 500))
    base = m.predict(dataset.features)
    for t in (30, 200, 421, 598):
        pert = dataset.features.copy()
        pert[t + 1 :] = np.random.default_rng(t).normal(size=pert[t + 1 :].shape) * 10
        out = m.predict(pert)
        np.testing.assert_array_equal(out[: t + 1], base[: t + 1])
        if t < 590:
            assert not np.array_equal(out[t + 1 :], base[t + 1 :])


def test_training_is_deterministic(dataset):
    a = _model().fit(dataset, slice(0, 400), slice(400, 500))
    b = _model().fit(dataset, slice(0, 400), slice(400, 500))
    assert [h["train_loss"] for h in a.history_] == [h["train_loss"] for h in b.history_]
    np.testing.assert_array_equal(a.predict(dataset.features), b.predict(dataset.features))
    c = _model(seed=8).fit(dataset, slice(0, 400), slice(400, 500))
    assert not np.array_equal(a.predict(dataset.features), c.predict(dataset.features))


def test_training_never_reads_targets_after_train_window(dataset):
    m1 = _model(epochs=2).fit(dataset, slice(0, 300))
    changed = dataset.next_returns.copy()
    changed[299:] = 0.5  # the target of row 299 is the return realised at row 300
    ds2 = type(dataset)(**{**dataset.__dict__, "next_returns": changed})
    m2 = _model(epochs=2).fit(ds2, slice(0, 300))
    np.testing.assert_array_equal(m1.predict(dataset.features), m2.predict(dataset.features))


@pytest.mark.parametrize(
    ("param", "value", "match"),
    [("hidden_size", 0, "hidden_size must be an int >= 1, got 0"),
     ("dropout", 1.5, "dropout must be in \\[0, 1\\), got 1.5"),
     ("loss", "hinge", "loss must be one of"),
     ("seq_len", 1, "seq_len must be an int >= 2, got 1"),
     ("lr", float("inf"), "lr must be a finite number > 0, got inf"),
     ("target_vol", float("inf"), "target_vol must be a finite number > 0, got inf"),
     ("max_grad_norm", float("nan"), "max_grad_norm must be a finite number > 0, got nan")],
)
def test_bad_hyperparameters_name_parameter(dataset, param, value, match):
    with pytest.raises(ValueError, match=match):
        _model(**{param: value}).fit(dataset, slice(0, 300), slice(300, 400))


def test_row_slices_read_as_python_slicing(dataset):
    m = _model(epochs=1).fit(dataset, slice(0, None), slice(-100, None))  # open/negative ends
    T = dataset.features.shape[0]
    assert m.training_window_ == (0, T, T - 100, T)
    full = m.predict(dataset.features)
    tail = m.predict(dataset.features, rows=slice(-100, None))  # the last 100 rows only
    np.testing.assert_array_equal(tail[-100:], full[-100:])
    assert not tail[:-100].any() and full[:-100].any()
    with pytest.raises(ValueError, match="rows must be a slice of rows with step 1, got "
                                         "slice\\(0, 10, 2\\)"):
        m.predict(dataset.features, rows=slice(0, 10, 2))
    with pytest.raises(ValueError, match="train must be a slice of rows with step 1"):
        _model(epochs=1).fit(dataset, [0, 1, 2])


def _poison_after_epoch_1(model, record):
    # stands in for a step that overflows: the weights are non-finite from epoch 2 on
    if record["epoch"] == 1:
        with torch.no_grad():
            next(model.network_.parameters()).fill_(float("nan"))


def test_divergence_is_an_error_not_nan_positions(dataset):
    with pytest.raises(ValueError, match="training diverged at epoch 2 .* lower lr"):
        _model(epochs=3).fit(dataset, slice(0, 300), callbacks=[_poison_after_epoch_1])
    # with validation, the best epoch before the divergence is kept, with a warning
    with pytest.warns(RuntimeWarning, match="diverged at epoch 2 .* keeping the best epoch"):
        m = _model(epochs=3).fit(dataset, slice(0, 300), slice(300, 400),
                                 callbacks=[_poison_after_epoch_1])
    assert m.best_epoch_ == 1 and len(m.history_) == 1
    assert np.isfinite(m.predict(dataset.features)).all()


def test_predict_before_fit_and_wrong_shape(dataset):
    with pytest.raises(ValueError, match="not fitted"):
        _model().predict(dataset.features)
    m = _model(epochs=1).fit(dataset, slice(0, 300))
    with pytest.raises(ValueError, match=r"shape \(T, N, 4\)"):
        m.predict(dataset.features[:, :, :3])


@pytest.mark.parametrize("loss", ["mse", "binary"])
def test_alternative_losses_train(dataset, loss):
    m = _model(loss=loss, epochs=2).fit(dataset, slice(0, 400), slice(400, 500))
    assert np.isfinite(m.history_[-1]["train_loss"])


def test_walk_forward_stitches_test_blocks(dataset):
    class S:
        def __init__(self, tr, va, te):
            self.train, self.valid, self.test = tr, va, te

    splits = [S(slice(0, 300), slice(301, 350), slice(351, 450)),
              S(slice(0, 400), slice(401, 449), slice(450, 600))]
    res = walk_forward(lambda k: _model(epochs=2, seed=k), dataset, splits, progress=False)
    assert res.positions.shape == (600, 3)
    assert np.isnan(res.positions[:351]).all()
    assert np.isfinite(res.positions[351:]).all()
    assert list(res.folds["fold"]) == [0, 1]
    assert set(res.history["fold"]) == {0, 1}
    bad = [S(slice(0, 300), slice(280, 350), slice(351, 450))]
    with pytest.raises(ValueError, match="overlap"):
        walk_forward(lambda k: _model(), dataset, bad, progress=False)


def test_predictions_never_use_dropout(dataset):
    m = _model(dropout=0.5, epochs=1).fit(dataset, slice(0, 300))
    m.network_.train()  # even if left in training mode, predict is deterministic
    a = m.predict(dataset.features)
    b = m.predict(dataset.features)
    np.testing.assert_array_equal(a, b)
    assert m.network_.training  # and the mode is restored


def test_params_api_and_sklearn_clone():
    from . import contract

    contract.check_params_api(_model, ("hidden_size", "num_layers"))
