import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.backtest import walk_forward_splits


def _bdays(start, end):
    return pd.bdate_range(start, end, tz="UTC")


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 6),
    st.floats(0.0, 0.3),
    st.integers(0, 10),
    st.integers(0, 200),
)
def test_split_properties(test_years, min_train_years, valid_fraction, embargo, offset):
    index = _bdays("2000-01-01", "2014-06-30")[offset:]
    splits = walk_forward_splits(index, test_years, min_train_years, valid_fraction, embargo)
    assert splits
    first = splits[0]
    start_year = index[0].year + (0 if index[0].month == 1 else 1)
    assert index[first.test.start].year == start_year + min_train_years
    assert index[first.test.start].month == 1  # calendar-year blocks
    # test blocks tile [first test start, end) without overlap
    assert splits[-1].test.stop == len(index)
    for a, b in zip(splits, splits[1:]):
        assert a.test.stop == b.test.start
    for sp in splits:
        s = sp.test.start
        assert sp.train.start == 0 and sp.train.stop > 0
        assert sp.train.stop <= sp.valid.start and sp.valid.stop <= s
        assert sp.valid.stop == s - embargo  # embargo between valid and test
        n_valid = sp.valid.stop - sp.valid.start
        assert n_valid == int(np.ceil(valid_fraction * s))
        if n_valid:
            assert sp.valid.start - sp.train.stop == embargo  # embargo between train and valid
        assert sp.test_start == index[s] and sp.test_end == index[sp.test.stop - 1]
        years = {ts.year for ts in index[sp.test]}
        assert len(years) <= test_years
        assert max(years) - min(years) < test_years


def test_split_hand_case():
    index = _bdays("2000-01-01", "2003-12-31")
    splits = walk_forward_splits(index, test_years=1, min_train_years=2, valid_fraction=0.1,
                                 embargo=5)
    assert [sp.test_start.year for sp in splits] == [2002, 2003]
    sp = splits[0]
    s = index.searchsorted(pd.Timestamp("2002-01-01", tz="UTC"))
    assert sp.test.start == s
    n_valid = int(np.ceil(0.1 * s))
    assert sp.valid == slice(s - 5 - n_valid, s - 5)
    assert sp.train == slice(0, s - 10 - n_valid)
    # no validation tail: one embargo between train and test
    no_valid = walk_forward_splits(index, test_years=1, min_train_years=2, valid_fraction=0.0,
                                   embargo=5)[0]
    assert no_valid.train == slice(0, s - 5) and no_valid.valid == slice(s - 5, s - 5)
    # a history starting in mid-January counts that year whole: first test year 2000 + 2
    late = walk_forward_splits(index[10:], test_years=1, min_train_years=2)
    assert index[10].month == 1 and late[0].test_start.year == 2002


def test_split_errors():
    index = _bdays("2000-01-01", "2003-12-31")
    with pytest.raises(ValueError, match="valid_fraction"):
        walk_forward_splits(index, valid_fraction=1.0)
    for bad in ("0.1", None, float("nan"), True):  # named, not a bare float() error
        with pytest.raises(ValueError, match=r"valid_fraction must be a number in \[0, 1\)"):
            walk_forward_splits(index, valid_fraction=bad)
    with pytest.raises(ValueError, match="embargo"):
        walk_forward_splits(index, embargo=-1)
    with pytest.raises(ValueError, match="strictly increasing"):
        walk_forward_splits(index[::-1])
    with pytest.raises(ValueError, match="index"):
        walk_forward_splits(np.arange(10))
    assert walk_forward_splits(index, min_train_years=10) == []
