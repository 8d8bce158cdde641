import numpy as np
import pytest

from widgets import TrainingMonitor
from workbench.models import DeepMomentumLSTM, walk_forward

from ..models.conftest import synthetic_dataset


@pytest.fixture
def dataset():
    return synthetic_dataset(T=400, N=2, F=3)


def _model(seed=0, epochs=3):
    return DeepMomentumLSTM(hidden_size=4, seq_len=21, burn_in=10, epochs=epochs, patience=5,
                            batch_size=16, seed=seed, device="cpu", progress=False)


def test_monitor_records_every_epoch_and_streams_to_charts(dataset):
    mon = TrainingMonitor()
    layout = mon.panel()
    m = _model().fit(dataset, slice(0, 250), slice(250, 320), callbacks=[mon])
    rec = mon.records
    assert list(rec["epoch"]) == [h["epoch"] for h in m.history_]
    np.testing.assert_allclose(rec["valid_sharpe"], [h["valid_sharpe"] for h in m.history_])
    # the chart sources hold the same points (pushed while fit ran, not after)
    loss_src, sharpe_src = mon._sources["DeepMomentumLSTM"]
    assert list(loss_src.data["epoch"]) == list(rec["epoch"])
    np.testing.assert_allclose(sharpe_src.data["value"], rec["valid_sharpe"])
    summary = mon._table.value
    assert summary.loc[0, "best_epoch"] == m.best_epoch_
    assert "epoch 3" in mon._status.object
    assert layout is not None


def test_monitor_one_series_per_fold_in_walk_forward(dataset):
    from types import SimpleNamespace as S

    splits = [S(train=slice(0, 200), valid=slice(200, 260), test=slice(260, 330)),
              S(train=slice(0, 270), valid=slice(270, 330), test=slice(330, 400))]
    mon = TrainingMonitor()
    walk_forward(lambda k: _model(seed=k, epochs=2), dataset, splits, progress=False,
                 callbacks=[mon])
    assert set(mon.records["series"]) == {"fold 0 · DeepMomentumLSTM",
                                          "fold 1 · DeepMomentumLSTM"}
    assert len(mon._sources) == 2
    mon.clear()
    assert mon.records.empty and not mon._sources


def test_callback_seen_by_fit_each_epoch_and_can_stop(dataset):
    seen = []

    def stop_after_two(model, rec):
        seen.append(rec["epoch"])
        return rec["epoch"] >= 2

    m = _model(epochs=6).fit(dataset, slice(0, 250), slice(250, 320),
                             callbacks=[stop_after_two])
    assert seen == [1, 2]
    assert len(m.history_) == 2


def test_boosted_trees_get_their_own_charts_counted_in_trees(dataset):
    """The trees log every 10 trees (x = number of trees, up to n_estimators) and a log
    loss: drawn on the epoch charts they stretched the x axis to 300 "epochs" (the torch
    curves squeezed into the first tenth) and mixed log loss with negative Sharpe."""
    from workbench.models import BoostedTreesModel

    mon = TrainingMonitor()
    layout = mon.panel()
    _model(epochs=2).fit(dataset, slice(0, 250), slice(250, 320), callbacks=[mon])
    trees = BoostedTreesModel(n_estimators=30, seed=0, progress=False)
    trees.fit(dataset, slice(0, 250), slice(250, 320), callbacks=[mon])
    rec = mon.records
    assert set(rec["unit"]) == {"epoch", "trees"}
    assert list(rec.loc[rec["series"] == "BoostedTreesModel", "epoch"]) == [
        h["epoch"] for h in trees.history_]

    def names(fig):
        return {r.name for r in fig.renderers}

    assert names(mon._loss_fig) == names(mon._sharpe_fig) == {"DeepMomentumLSTM"}
    assert names(mon._tree_loss_fig) == names(mon._tree_sharpe_fig) == {"BoostedTreesModel"}
    assert mon._tree_loss_fig.xaxis[0].axis_label == "number of trees"
    assert "log loss" in mon._tree_loss_fig.yaxis[0].axis_label
    assert mon._loss_fig.xaxis[0].axis_label == "epoch"
    assert mon._trees_row.visible
    summary = mon._table.value.set_index("series")
    assert summary.loc["BoostedTreesModel", "unit"] == "trees"
    assert summary.loc["BoostedTreesModel", "epochs"] == trees.history_[-1]["epoch"]
    assert "trees" in mon._status.object
    mon.clear()
    assert not mon._trees_row.visible and not mon._tree_loss_fig.renderers
    assert layout is not None


def test_trees_row_hidden_until_a_tree_model_reports(dataset):
    mon = TrainingMonitor()
    mon.panel()
    assert not mon._trees_row.visible
    _model(epochs=1).fit(dataset, slice(0, 250), slice(250, 320), callbacks=[mon])
    assert not mon._trees_row.visible


def test_bad_records_and_arguments_are_named_errors():
    """A record without an epoch was a bare KeyError('epoch') raised inside fit; a record
    that is not a mapping an AttributeError; height='abc' a bare int() error."""
    mon = TrainingMonitor()
    with pytest.raises(ValueError, match=r"TrainingMonitor: record.*'epoch'.*\{'train_loss'"):
        mon(object(), {"train_loss": 1.0})
    with pytest.raises(ValueError, match=r"'epoch' must be an integer.*'x'"):
        mon(object(), {"epoch": "x"})
    with pytest.raises(TypeError, match="TrainingMonitor: record must be a mapping.*NoneType"):
        mon(object(), None)
    assert mon.records.empty  # nothing half-recorded
    for bad in ("abc", -5, 0, 2.5):
        with pytest.raises(ValueError, match=f"height must be an int > 0, got {bad!r}"):
            TrainingMonitor(height=bad)


def test_nan_losses_are_shown_not_crashed(dataset):
    mon = TrainingMonitor()
    mon(object(), {"epoch": 1, "train_loss": float("nan"), "valid_sharpe": float("nan")})
    summary = mon._table.value
    assert summary.loc[0, "epochs"] == 1 and np.isnan(summary.loc[0, "best_valid_sharpe"])
    assert "epoch 1" in mon._status.object
