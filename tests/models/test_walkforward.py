import pandas as pd

from workbench.models._walkforward import fold_dates


def test_fold_dates_of_an_empty_validation_block_is_blank():
    """``walk_forward_splits(valid_fraction=0)`` gives ``valid=slice(s, s)``: no dates."""
    idx = pd.date_range("2000-01-03", periods=10, freq="B", tz="UTC")
    row = fold_dates(0, idx, slice(0, 6), slice(6, 6), slice(6, 10))
    assert row == {"fold": 0, "train": "2000-01-03 .. 2000-01-10", "valid": "",
                   "test": "2000-01-11 .. 2000-01-14"}
