import re

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
    assert resolve_test_start(idx, holdout_fraction=1e-17) == 999  # a test row is left
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


@pytest.mark.parametrize("name, value", [
    ("valid_fraction", "abc"), ("valid_fraction", None), ("valid_fraction", "0.5"),
    ("valid_fraction", True), ("n_folds", "3"), ("n_folds", None), ("n_folds", 2.0),
    ("embargo", "1"), ("embargo", None),
])
def test_non_numeric_parameters_are_named_with_their_value(name, value):
    with pytest.raises(ValueError, match=rf"^{name} must be .*, got {re.escape(repr(value))}$"):
        tuning_folds(_index(), **{name: value})


@pytest.mark.parametrize("value", ["abc", None, [0.2]])
def test_non_numeric_holdout_fraction_is_named_with_its_value(value):
    with pytest.raises(ValueError,
                       match=rf"^holdout_fraction must be .*, got {re.escape(repr(value))}$"):
        tuning_folds(_index(), holdout_fraction=value)
    # ignored when test_start is given: it holds the test period instead
    assert tuning_folds(_index(), test_start="2006-01-02", holdout_fraction=value)


@pytest.mark.parametrize("value", [float("nan"), "", "NaT", pd.NaT])
def test_a_missing_test_start_is_not_read_as_after_the_data(value):
    with pytest.raises(ValueError, match="test_start must be a timestamp"):
        tuning_folds(_index(), test_start=value)


@pytest.mark.parametrize("test_start", ["2030-01-01", pd.Timestamp("2007-09-01", tz="UTC")])
def test_test_start_after_the_data_is_refused_naming_the_last_timestamp(test_start):
    idx = _index()  # last timestamp 2007-08-31
    with pytest.raises(ValueError, match=r"test_start .* is after the data's last timestamp "
                                         r"2007-08-31 00:00:00\+00:00.*no test period"):
        tuning_folds(idx, test_start=test_start)
    # the last timestamp itself leaves a one-row test period
    assert tuning_folds(idx, test_start=idx[-1])[-1].valid.stop == len(idx) - 2


@pytest.mark.parametrize("test_start", ["1990-01-01", "2000-01-03"])
def test_test_start_at_or_before_the_data_start_is_refused_naming_it(test_start):
    with pytest.raises(ValueError, match=r"test_start .* is not after the data's first "
                                         r"timestamp 2000-01-03 00:00:00\+00:00"):
        tuning_folds(_index(), test_start=test_start)


def test_too_few_rows_before_test_start_names_it():
    with pytest.raises(ValueError, match=r"cannot cut 3 validation folds from the 13 rows "
                                         r"before test_start 2000-01-20 00:00:00\+00:00"):
        tuning_folds(_index(), test_start="2000-01-20")
