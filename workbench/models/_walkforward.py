"""Walk-forward (expanding window) training of position models."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["WalkForwardResult", "walk_forward"]


@dataclass
class WalkForwardResult:
    """Out-of-sample positions stitched from the test blocks of a walk-forward run.

    Attributes
    ----------
    positions : numpy.ndarray, shape (T, N)
        Test-block positions in [-1, 1]; NaN on rows that are in no test block.
    models : list
        The fitted model of each fold.
    history : pandas.DataFrame
        Per fold and epoch: ``fold, epoch, train_loss, valid_sharpe, seconds``.
    folds : pandas.DataFrame
        Per fold: train/valid/test date ranges, best epoch, best validation Sharpe.
    """

    positions: np.ndarray
    models: list
    history: pd.DataFrame
    folds: pd.DataFrame

    @property
    def test_rows(self) -> np.ndarray:
        """Rows covered by some test block, shape (T,) bool."""
        return np.isfinite(self.positions).any(axis=1)


def walk_forward(
    model_factory: Callable[[int], Any],
    dataset,
    splits: Sequence,
    *,
    progress: bool = True,
    callbacks: Sequence[Callable[[Any, dict], Any]] = (),
) -> WalkForwardResult:
    """Fit one model per split and predict its test block (expanding window).

    Parameters
    ----------
    model_factory : callable
        ``model_factory(fold) -> estimator`` with ``fit(dataset, train, valid)`` and
        ``predict(features, rows=...)`` (e.g. ``lambda k: DeepMomentumLSTM(seed=k)``).
    dataset : MomentumDataset
        Features (T, N, F) and targets.
    splits : sequence of split objects
        Each has ``train``, ``valid`` and ``test`` slices of rows (see
        :func:`workbench.backtest.walk_forward_splits`).
    progress : bool, default True
        tqdm bar over folds.
    callbacks : sequence of callable, optional
        Passed to each fold's ``fit`` as ``callback(model, record)`` with ``record``
        (the epoch's history entry) extended by ``"fold"`` (e.g. a
        :class:`widgets.TrainingMonitor`); a truthy return stops that fold's training.

    Returns
    -------
    WalkForwardResult

    Raises
    ------
    ValueError
        If ``splits`` is empty or a test block starts before its validation block ends.
    """
    from tqdm.auto import tqdm

    if len(splits) == 0:
        raise ValueError("splits is empty: the data is too short for the walk-forward setup")
    T, N, _ = dataset.features.shape
    positions = np.full((T, N), np.nan)
    models, hist, folds = [], [], []
    idx = dataset.index
    for k, sp in enumerate(tqdm(splits, desc="walk-forward folds", disable=not progress)):
        tr, va, te = _as_slice(sp.train), _as_slice(sp.valid), _as_slice(sp.test)
        if va.stop > te.start or tr.stop > va.start:
            raise ValueError(f"split {k}: train/valid/test rows overlap ({tr}, {va}, {te})")
        model = model_factory(k)
        if callbacks:
            model.fit(dataset, tr, va, callbacks=[_with_fold(cb, k) for cb in callbacks])
        else:
            model.fit(dataset, tr, va)
        pos = model.predict(dataset.features, rows=te)
        positions[te] = pos[te]
        models.append(model)
        for rec in getattr(model, "history_", []):
            hist.append({"fold": k, **rec})
        folds.append({
            "fold": k,
            "train": f"{idx[tr.start].date()} .. {idx[tr.stop - 1].date()}",
            "valid": f"{idx[va.start].date()} .. {idx[va.stop - 1].date()}",
            "test": f"{idx[te.start].date()} .. {idx[te.stop - 1].date()}",
            "best_epoch": getattr(model, "best_epoch_", np.nan),
            "valid_sharpe": getattr(model, "best_valid_sharpe_", np.nan),
        })
    return WalkForwardResult(positions, models, pd.DataFrame(hist), pd.DataFrame(folds))


def _with_fold(cb: Callable[[Any, dict], Any], fold: int) -> Callable[[Any, dict], Any]:
    def wrapped(model: Any, record: dict) -> Any:
        return cb(model, {**record, "fold": fold})

    return wrapped


def _as_slice(x) -> slice:
    if isinstance(x, slice):
        return x
    arr = np.asarray(x)
    if arr.size == 0:
        raise ValueError("a split has an empty block")
    return slice(int(arr[0]), int(arr[-1]) + 1)
