"""Purged walk-forward validation folds that end before the out-of-sample test period."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from workbench._checks import is_real

from ._strategies import _check_int

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
        First test timestamp (inclusive), after ``index[0]`` and at most ``index[-1]``;
        None holds out the last ``holdout_fraction`` of the rows.
    holdout_fraction : float, default 0.2
        In ``(0, 1)``; used only when ``test_start`` is None.

    Returns
    -------
    int
        Row ``s`` with ``index[s] >= test_start``; rows ``>= s`` are never scored.

    Raises
    ------
    ValueError
        If ``index`` is not a non-empty DatetimeIndex, ``holdout_fraction`` is not a
        number in range, ``test_start`` is not a timestamp, or ``test_start`` is after
        the data's last timestamp (no test period would be left) or not after its first
        (no rows to tune on); the message names ``test_start`` and that timestamp.
    """
    if not isinstance(index, pd.DatetimeIndex) or len(index) == 0:
        raise ValueError("index must be a non-empty pandas.DatetimeIndex")
    if test_start is None:
        if not (is_real(holdout_fraction) and 0.0 < float(holdout_fraction) < 1.0):
            raise ValueError(f"holdout_fraction must be a number in (0, 1), got "
                             f"{holdout_fraction!r}")
        # at least one test row, however small the fraction (1 - 1e-17 rounds to 1.0)
        return min(int(len(index) * (1.0 - float(holdout_fraction))), len(index) - 1)
    try:
        ts = pd.Timestamp(test_start)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"test_start must be a timestamp, got {test_start!r}") from exc
    if pd.isna(ts):  # NaN, "" and "NaT" parse to NaT, which compares after every row
        raise ValueError(f"test_start must be a timestamp, got {test_start!r}")
    if index.tz is not None and ts.tzinfo is None:
        ts = ts.tz_localize(index.tz)
    elif index.tz is None and ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    row = int(index.searchsorted(ts, side="left"))
    if row == len(index):
        raise ValueError(
            f"test_start {ts} is after the data's last timestamp {index[-1]}, so there would "
            "be no test period: give a test_start on or before it (or None to hold out the "
            "last holdout_fraction of the rows)"
        )
    if row == 0:
        raise ValueError(
            f"test_start {ts} is not after the data's first timestamp {index[0]}, so no rows "
            "are left before the test period to tune on"
        )
    return row


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
        First timestamp of the out-of-sample test period, after the first timestamp of
        ``index`` and at most its last (so a test period is left); see
        :func:`resolve_test_start`.
    n_folds : int, default 3
        Number of validation blocks, >= 1.
    valid_fraction : float, default 0.3
        Share of the pre-test rows used for validation, in ``(0, 1)``.
    embargo : int, default 1
        Rows dropped between train and validation and before the test period, >= 0
        (the label horizon; 1 for next-day returns).
    holdout_fraction : float, default 0.2
        Test share when ``test_start`` is None, in ``(0, 1)``.

    Returns
    -------
    list of TuningFold
        In chronological order.

    Raises
    ------
    ValueError
        If a parameter is of the wrong type or out of range (the message names it and
        its value), ``test_start`` is after the last timestamp of ``index`` or not after
        its first (see :func:`resolve_test_start`), or a fold would have fewer than 2
        validation rows or no training rows (the message gives the row counts and the
        test start).

    Notes
    -----
    Purging and embargo after de Prado (2018), "Advances in Financial Machine
    Learning", sections 7.4.1-7.4.2.
    """
    _check_int("n_folds", n_folds, 1)
    _check_int("embargo", embargo, 0)
    if not (is_real(valid_fraction) and 0.0 < float(valid_fraction) < 1.0):
        raise ValueError(f"valid_fraction must be a number in (0, 1), got {valid_fraction!r}")
    p = resolve_test_start(index, test_start, holdout_fraction)
    return _folds_before(index, p, n_folds=n_folds, valid_fraction=valid_fraction,
                         embargo=embargo)


def _folds_before(index: pd.DatetimeIndex, p: int, *, n_folds: int, valid_fraction: float,
                  embargo: int) -> list[TuningFold]:
    """Folds on rows ``[0, p)`` of checked arguments; ``p == len(index)``: no test period.

    :func:`tuning_folds` refuses a ``test_start`` after the data, but studies stored
    before it did hold no test start and were tuned on every row; their workers rebuild
    those folds with ``p = len(index)``.
    """
    length = int(float(valid_fraction) * p / n_folds)
    end = p - embargo
    first = end - n_folds * length
    if length < 2 or first - embargo <= 0:
        where = (f"the {p} rows before test_start {index[p]}" if p < len(index)
                 else f"the {p} rows of the data")
        raise ValueError(
            f"cannot cut {n_folds} validation folds from {where} (data from {index[0]}; "
            f"valid_fraction={valid_fraction!r}, embargo={embargo!r}): each would have "
            f"{length} rows and the first would train on {max(first - embargo, 0)} rows "
            "(more rows before the test period or fewer folds are needed)"
        )
    folds = []
    for k in range(n_folds):
        v0 = first + k * length
        v1 = v0 + length
        folds.append(TuningFold(train=slice(0, v0 - embargo), valid=slice(v0, v1),
                                valid_start=index[v0], valid_end=index[v1 - 1]))
    return folds
