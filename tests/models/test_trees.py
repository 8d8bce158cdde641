import lightgbm as lgb
import numpy as np
import pytest

from workbench.models import BoostedTreesModel, score_positions

from . import contract
from .conftest import synthetic_dataset


def _model(**kw):
    # n_jobs=1: on tiny data, and on a busy 2-core machine, OpenMP threads only add waits
    base = dict(n_estimators=60, num_leaves=7, min_child_samples=20, patience=30, seed=3,
                n_jobs=1, progress=False)
    base.update(kw)
    return BoostedTreesModel(**base)


@pytest.fixture(scope="module")
def fitted():
    ds = synthetic_dataset()
    return _model().fit(ds, contract.TRAIN, contract.VALID), ds


def test_fit_sets_attributes_and_history(fitted):
    model, ds = fitted
    contract.check_fit_attributes(model, ds, max_records=6)
    assert [h["epoch"] for h in model.history_] == list(range(10, 10 * len(model.history_) + 1,
                                                               10))
    assert model.booster_.num_trees() == model.best_epoch_
    assert isinstance(model.booster_, lgb.Booster)
    assert model.context_length == 1
    assert all(np.isfinite(h["train_loss"]) and h["seconds"] >= 0 for h in model.history_)


def test_predictions_are_causal(fitted):
    contract.check_causal(*fitted)


def test_registry_round_trip(fitted):
    model, ds = fitted
    contract.check_registry_round_trip(model, ds)
    tensors, meta = model._registry_state()
    assert tensors == {}
    assert isinstance(meta["booster"], str) and meta["booster"].startswith("tree")
    with pytest.raises(ValueError, match="does not parse"):
        BoostedTreesModel._registry_restore(model.get_params(), {}, {**meta, "booster": "x"})
    with pytest.raises(ValueError, match="n_features_in_"):
        BoostedTreesModel._registry_restore(model.get_params(), {},
                                            {**meta, "n_features_in_": 5})


def test_predict_sequences_reads_the_last_step(fitted):
    model, ds = fitted
    x = ds.features[300:342].transpose(1, 0, 2).copy()  # (N, 42, F)
    x[0, :-1] = np.nan  # earlier steps are not read
    got = model.predict_sequences(x)
    assert got.shape == (3,)
    np.testing.assert_array_equal(got, model.predict(ds.features)[341])
    np.testing.assert_allclose(got, 2 * model.booster_.predict(x[:, -1]) - 1, rtol=0,
                               atol=1e-12)
    x[2, -1, 0] = np.nan
    assert model.predict_sequences(x)[2] == 0.0  # flat when a last-step input is missing


@pytest.mark.parametrize(("n_jobs", "n_estimators"), [(1, 30), (2, 10)])
def test_training_is_deterministic(dataset, n_jobs, n_estimators):
    # n_jobs=2 (the default) kept short: two OpenMP threads on a busy 2-core machine crawl
    contract.check_deterministic(
        lambda **kw: _model(n_jobs=n_jobs, n_estimators=n_estimators, **kw), dataset)


def test_training_never_reads_targets_after_train_window(dataset):
    contract.check_no_target_after_train_window(_model, dataset)


def test_learns_a_predictable_signal():
    m = contract.check_learns(lambda **kw: _model(n_estimators=100, **kw))
    assert m.best_valid_sharpe_ > 2.0


def test_early_stopping_keeps_the_best_trees():
    ds = synthetic_dataset(T=1500, N=4, seed=3)
    m = _model(n_estimators=300, num_leaves=31, min_child_samples=5, learning_rate=0.3,
               patience=20).fit(ds, slice(0, 1000), slice(1000, 1200))
    epochs = [h["epoch"] for h in m.history_]
    assert epochs[-1] < 300  # stopped early (overfits quickly at this learning rate)
    assert epochs[-1] - m.best_epoch_ >= 20
    assert m.booster_.num_trees() == m.best_epoch_
    pos = m.predict(ds.features)
    np.testing.assert_allclose(score_positions(pos, ds, slice(1000, 1200), within=True),
                               m.best_valid_sharpe_, rtol=1e-9)


def test_without_validation_keeps_every_tree(dataset):
    m = _model(n_estimators=25).fit(dataset, contract.TRAIN)
    assert m.best_epoch_ == 25 == m.booster_.num_trees()
    assert [h["epoch"] for h in m.history_] == [10, 20, 25]
    assert np.isnan(m.best_valid_sharpe_)
    assert m.training_window_ == (0, 400, -1, -1)


def test_callbacks_see_records_and_can_stop(dataset):
    seen = []

    def cb(model, rec):
        seen.append(rec)
        return len(seen) == 2

    m = _model().fit(dataset, contract.TRAIN, contract.VALID, callbacks=[cb])
    assert len(m.history_) == 2 and seen == m.history_
    assert m.best_epoch_ in (10, 20)


def test_return_weighting_changes_the_model(dataset):
    a = _model(weight_by_return=True).fit(dataset, contract.TRAIN)
    b = _model(weight_by_return=False).fit(dataset, contract.TRAIN)
    assert not np.array_equal(a.predict(dataset.features), b.predict(dataset.features))


def test_params_api():
    contract.check_params_api(_model, ("n_estimators", "learning_rate", "num_leaves"))
    p = BoostedTreesModel().get_params()
    assert p["n_estimators"] == 300 and p["n_jobs"] == 2 and p["weight_by_return"] is True


@pytest.mark.parametrize(
    ("param", "value", "match"),
    [("num_leaves", 1, "num_leaves must be an int >= 2, got 1"),
     ("n_estimators", 0, "n_estimators must be an int >= 1, got 0"),
     ("learning_rate", 0.0, "learning_rate must be a number > 0, got 0.0"),
     ("subsample", 1.5, "subsample must be in \\(0, 1\\], got 1.5"),
     ("colsample_bytree", 0, "colsample_bytree must be in \\(0, 1\\], got 0"),
     ("reg_lambda", -1.0, "reg_lambda must be a number >= 0, got -1.0"),
     ("weight_by_return", "yes", "weight_by_return must be a bool, got 'yes'"),
     ("n_jobs", 0, "n_jobs must be an int >= 1, got 0")],
)
def test_bad_hyperparameters_name_parameter(dataset, param, value, match):
    with pytest.raises(ValueError, match=match):
        _model(**{param: value}).fit(dataset, slice(0, 300), slice(300, 400))


def test_errors(dataset):
    with pytest.raises(ValueError, match="not fitted"):
        _model().predict(dataset.features)
    with pytest.raises(ValueError, match="fewer than 2 valid"):
        _model().fit(dataset, slice(0, 1))
    m = _model(n_estimators=10).fit(dataset, contract.TRAIN)
    with pytest.raises(ValueError, match=r"features must have shape \(T, N, 4\)"):
        m.predict(dataset.features[:, :, :3])
    with pytest.raises(ValueError, match=r"x must have shape \(B, L, 4\)"):
        m.predict_sequences(np.zeros((2, 4)))


def test_validation_score_ignores_returns_after_the_block():
    contract.check_validation_ignores_returns_after_block(_model, synthetic_dataset())


def test_no_target_after_train_window_across_a_gap():
    contract.check_no_target_after_train_window_with_gap(_model)


def test_open_and_negative_row_bounds_read_as_slicing(dataset):
    """``fit`` reads ``train``/``valid`` as ``x[rows]`` does, like the torch members."""
    a = _model(n_estimators=20).fit(dataset, slice(0, 400), slice(400, 500))
    b = _model(n_estimators=20).fit(dataset, slice(None, -200), slice(-200, -100))
    assert b.training_window_ == a.training_window_ == (0, 400, 400, 500)
    np.testing.assert_array_equal(a.predict(dataset.features), b.predict(dataset.features))
    with pytest.raises(ValueError, match="train must be a slice"):
        _model().fit(dataset, slice(0, 400, 2))


def test_empty_valid_means_no_validation():
    contract.check_empty_valid_means_no_validation(
        lambda: _model(n_estimators=40, patience=10), synthetic_dataset())
