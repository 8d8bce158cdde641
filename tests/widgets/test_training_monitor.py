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
