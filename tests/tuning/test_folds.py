import numpy as np
import pandas as pd
import pytest

from workbench.tuning import tuning_folds
from workbench.tuning._folds import resolve_test_start


def _index(n=2000):
    return pd.bdate_range("2000-01-03", periods=n, tz="UTC")


@pytest.mark.parametrize("n_folds, embargo, frac", [(1, 0, 0.2), (3, 1, 0.3), (5, 5, 0.5)])
def test_folds_are_purged_and_never_reach_the_test_period(n_folds, embargo, frac):
    idx = _index()
    test_start = idx[1500]
    folds = tuning_folds(idx, test_start=test_start, n_folds=n_folds, embargo=embargo,
                         valid_fraction=frac)
    assert len(folds) == n_folds
    for k, f in enumerate(folds):
        assert f.train.start == 0
        assert f.valid.start - f.train.stop == embargo
        assert f.valid.stop <= 1500 - embargo
        assert idx[f.valid.stop - 1] < test_start
        assert f.valid_start == idx[f.valid.start] and f.valid_end == idx[f.valid.stop - 1]
        if k:
            assert f.valid.start == folds[k - 1].valid.stop  # blocks tile, expanding train
            assert f.train.stop > folds[k - 1].train.stop
    assert folds[-1].valid.stop == 1500 - embargo
    rows = np.concatenate([np.arange(f.valid.start, f.valid.stop) for f in folds])
    assert len(rows) == len(set(rows))


def test_default_holds_out_the_last_fifth_and_tz_naive_start():
    idx = _index(1000)
    assert resolve_test_start(idx) == 800
    assert resolve_test_start(idx, "2000-01-10") == 5
    folds = tuning_folds(idx)
    assert folds[-1].valid.stop + 1 == 800


@pytest.mark.parametrize("kw, match", [
    ({"n_folds": 0}, "n_folds"), ({"embargo": -1}, "embargo"),
    ({"valid_fraction": 1.0}, "valid_fraction"), ({"test_start": "2000-01-20"}, "cannot cut"),
    ({"test_start": object()}, "test_start must be a timestamp"),
    ({"holdout_fraction": 0.0}, "holdout_fraction"),
])
def test_bad_fold_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        tuning_folds(_index(), **kw)
