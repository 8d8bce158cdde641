"""Purged walk-forward validation folds that end before the out-of-sample test period."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["TuningFold", "tuning_folds", "resolve_test_start"]


@dataclass(frozen=True)
class TuningFold:
    """One validation fold of a tuning run (positional row slices).

    Attributes
    ----------
    train : slice
        Rows ``[0, valid.start - embargo)`` the trial fits on (expanding window).
    valid : slice
        Validation rows scored by the objective.
    valid_start, valid_end : pandas.Timestamp
        First and last timestamp of ``valid`` (inclusive).
    """

    train: slice
    valid: slice
    valid_start: pd.Timestamp
    valid_end: pd.Timestamp


def resolve_test_start(index: pd.DatetimeIndex, test_start=None,
                       holdout_fraction: float = 0.2) -> int:
    """Row where the out-of-sample test period starts.

    Parameters
    ----------
    index : pandas.DatetimeIndex, shape (T,)
    test_start : str, Timestamp or None
        First test timestamp (inclusive); None holds out the last ``holdout_fraction``
        of the rows.
    holdout_fraction : float, default 0.2
        In ``(0, 1)``.

    Returns
    -------
    int
        Row ``s`` with ``index[s] >= test_start``; rows ``>= s`` are never scored.

    Raises
    ------
    ValueError
        If ``holdout_fraction`` is out of range or ``test_start`` is not a timestamp.
    """
    if not isinstance(index, pd.DatetimeIndex) or len(index) == 0:
        raise ValueError("index must be a non-empty pandas.DatetimeIndex")
    if test_start is None:
        if not 0.0 < float(holdout_fraction) < 1.0:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction!r}")
        return int(len(index) * (1.0 - float(holdout_fraction)))
    try:
        ts = pd.Timestamp(test_start)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"test_start must be a timestamp, got {test_start!r}") from exc
    if index.tz is not None and ts.tzinfo is None:
        ts = ts.tz_localize(index.tz)
    elif index.tz is None and ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    return int(index.searchsorted(ts, side="left"))


def tuning_folds(index: pd.DatetimeIndex, *, test_start=None, n_folds: int = 3,
                 valid_fraction: float = 0.3, embargo: int = 1,
                 holdout_fraction: float = 0.2) -> list[TuningFold]:
    """Expanding-window validation folds purged by an embargo, all before the test period.

    With ``P`` pre-test rows (rows before ``test_start``), the last
    ``valid_fraction * P`` rows before an ``embargo``-row gap are cut into ``n_folds``
    consecutive validation blocks of ``L`` rows. Fold ``k`` validates on block ``k`` and
    trains on every row up to ``embargo`` rows before it::

        L       = floor(valid_fraction * P / n_folds)
        end     = P - embargo                       # last valid row + 1
        valid_k = [end - (n_folds - k) * L, end - (n_folds - k - 1) * L)
        train_k = [0, valid_k.start - embargo)

    So no validation row is within ``embargo`` rows of a training row of its fold
    (the label ``r_{t+1}`` of the last training row cannot reach the validation block)
    and none is within ``embargo`` rows of the test period.

    Parameters
    ----------
    index : pandas.DatetimeIndex, shape (T,)
        Timestamps of the dataset.
    test_start : str, Timestamp or None
        First timestamp of the out-of-sample test period; see :func:`resolve_test_start`.
    n_folds : int, default 3
        Number of validation blocks, >= 1.
    valid_fraction : float, default 0.3
        Share of the pre-test rows used for validation, in ``(0, 1)``.
    embargo : int, default 1
        Rows dropped between train and validation and before the test period, >= 0
        (the label horizon; 1 for next-day returns).
    holdout_fraction : float, default 0.2
        Test share when ``test_start`` is None.

    Returns
    -------
    list of TuningFold
        In chronological order.

    Raises
    ------
    ValueError
        If a parameter is out of range, or a fold would have fewer than 2 validation rows
        or no training rows (the message gives the row counts).

    Notes
    -----
    Purging and embargo after de Prado (2018), "Advances in Financial Machine
    Learning", sections 7.4.1-7.4.2.
    """
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 1:
        raise ValueError(f"n_folds must be an integer >= 1, got {n_folds!r}")
    if isinstance(embargo, bool) or not isinstance(embargo, (int, np.integer)) or embargo < 0:
        raise ValueError(f"embargo must be an integer >= 0, got {embargo!r}")
    if not 0.0 < float(valid_fraction) < 1.0:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction!r}")
    p = resolve_test_start(index, test_start, holdout_fraction)
    length = int(float(valid_fraction) * p / n_folds)
    end = p - embargo
    first = end - n_folds * length
    if length < 2 or first - embargo <= 0:
        raise ValueError(
            f"cannot cut {n_folds} validation folds from {p} pre-test rows "
            f"(valid_fraction={valid_fraction!r}, embargo={embargo!r}): each would have "
            f"{length} rows and the first would train on {max(first - embargo, 0)} rows"
        )
    folds = []
    for k in range(n_folds):
        v0 = first + k * length
        v1 = v0 + length
        folds.append(TuningFold(train=slice(0, v0 - embargo), valid=slice(v0, v1),
                                valid_start=index[v0], valid_end=index[v1 - 1]))
    return folds
