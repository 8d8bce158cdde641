"""Expanding-window walk-forward splits with a validation tail and an embargo gap.

Source: the expanding-window protocol of Lim, Zohren and Roberts (2019), section 5 (retrain every
test block, last 10 % of the training data held out for validation); embargo gap after de Prado
(2018), "Advances in Financial Machine Learning", section 7.4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench._checks import is_real

__all__ = ["Split", "walk_forward_splits"]


@dataclass(frozen=True)
class Split:
    """One walk-forward fold; slices are positional (``index[split.train]``, ``X[split.test]``).

    Attributes
    ----------
    train : slice
        Bars ``[0, train.stop)`` used to fit.
    valid : slice
        Validation tail (early stopping, model selection); may be empty when ``valid_fraction ==
        0``.
    test : slice
        Out-of-sample bars of this block.
    test_start : pandas.Timestamp
        First timestamp of the test block (inclusive).
    test_end : pandas.Timestamp
        Last timestamp of the test block (inclusive).
    """

    train: slice
    valid: slice
    test: slice
    test_start: pd.Timestamp
    test_end: pd.Timestamp


def _year_start(year: int, tz) -> pd.Timestamp:
    return pd.Timestamp(year=year, month=1, day=1, tz=tz)


def walk_forward_splits(
    index: pd.DatetimeIndex,
    test_years: int = 1,
    min_train_years: int = 5,
    valid_fraction: float = 0.1,
    embargo: int = 0,
) -> list[Split]:
    """Expanding-window walk-forward splits over calendar-year test blocks.

    The first test block starts on 1 January of ``Y0 = year(index[0]) + min_train_years``, plus one
    year unless ``index[0]`` falls in January: a history that starts in January counts that year
    whole (a daily index starts on the year's first trading day, Jan 2-4 or later, so the first
    pre-test window may fall a few days short of ``min_train_years`` years). Block ``k`` covers
    the calendar years ``[Y0 + k * test_years, Y0 + (k + 1) * test_years)`` (the last block is
    cut at ``index[-1]``); blocks without bars are skipped. So the test blocks tile every bar from
    the first test start to the end, without overlap. For a block starting at bar ``s`` (the
    pre-test window is ``[0, s)``)::

        n_valid = ceil(valid_fraction * s)
        valid   = [s - embargo - n_valid, s - embargo)
        train   = [0, s - 2 * embargo - n_valid)

    i.e. ``embargo`` bars are dropped between train and valid and between valid and test. Without a
    validation tail (``n_valid = 0``) one embargo separates train and test: ``train = [0, s -
    embargo)``.

    Parameters
    ----------
    index : pandas.DatetimeIndex, shape (T,)
        Strictly increasing timestamps (UTC recommended) of the bars.
    test_years : int, default 1
        Calendar years per test block, >= 1.
    min_train_years : int, default 5
        Minimum length of the first pre-test window in years, >= 0.
    valid_fraction : float, default 0.1
        Fraction of the pre-test window held out as validation tail, in ``[0, 1)``.
    embargo : int, default 0
        Bars dropped on each side of the validation tail (e.g. the label horizon), >= 0.

    Returns
    -------
    list of Split
        In chronological order; empty when the index ends before the first test start.

    Raises
    ------
    ValueError
        If ``index`` is not a strictly increasing DatetimeIndex, a parameter is out of range, or a
        fold would have an empty training window (naming the test start).
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(f"index must be a pandas.DatetimeIndex, got {type(index).__name__}")
    if len(index) == 0:
        raise ValueError("index must not be empty")
    if not index.is_monotonic_increasing or not index.is_unique:
        raise ValueError("index must be strictly increasing (sorted, no duplicate timestamps)")
    for name, value, lo in (("test_years", test_years, 1), ("min_train_years", min_train_years, 0),
                            ("embargo", embargo, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    if not (is_real(valid_fraction) and 0.0 <= valid_fraction < 1.0):
        raise ValueError(f"valid_fraction must be a number in [0, 1), got {valid_fraction!r}")

    tz = index.tz
    year = index[0].year + min_train_years + (0 if index[0].month == 1 else 1)
    splits: list[Split] = []
    last = index[-1]
    while _year_start(year, tz) <= last:
        start = int(index.searchsorted(_year_start(year, tz), side="left"))
        stop = int(index.searchsorted(_year_start(year + test_years, tz), side="left"))
        year += test_years
        if stop <= start:
            continue
        n_valid = math.ceil(valid_fraction * start)
        valid_stop = start - embargo
        valid_start = valid_stop - n_valid
        train_stop = valid_start - (embargo if n_valid > 0 else 0)
        if train_stop <= 0:
            raise ValueError(
                f"empty training window for the test block starting {index[start]}: pre-test "
                f"window has {start} bars, valid_fraction={valid_fraction!r}, embargo={embargo!r}"
            )
        splits.append(
            Split(
                train=slice(0, train_stop),
                valid=slice(valid_start, valid_stop),
                test=slice(start, stop),
                test_start=index[start],
                test_end=index[stop - 1],
            )
        )
    return splits
