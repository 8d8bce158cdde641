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
        tr, va, te = fold_slices(k, sp)
        model = model_factory(k)
        fit_tagged(model, dataset, tr, va, callbacks, fold=k)
        pos = model.predict(dataset.features, rows=te)
        positions[te] = pos[te]
        models.append(model)
        for rec in getattr(model, "history_", []):
            hist.append({"fold": k, **rec})
        folds.append({
            **fold_dates(k, idx, tr, va, te),
            "best_epoch": getattr(model, "best_epoch_", np.nan),
            "valid_sharpe": getattr(model, "best_valid_sharpe_", np.nan),
        })
    return WalkForwardResult(positions, models, pd.DataFrame(hist), pd.DataFrame(folds))


def fold_slices(k: int, split: Any) -> tuple[slice, slice, slice]:
    """Train, valid and test rows of split ``k`` as slices; overlapping blocks raise."""
    tr, va, te = _as_slice(split.train), _as_slice(split.valid), _as_slice(split.test)
    if va.stop > te.start or tr.stop > va.start:
        raise ValueError(f"split {k}: train/valid/test rows overlap ({tr}, {va}, {te})")
    return tr, va, te


def fold_dates(k: int, index: pd.DatetimeIndex, tr: slice, va: slice,
               te: slice) -> dict[str, Any]:
    """``{"fold", "train", "valid", "test"}`` with each block's first .. last date."""
    def span(sl: slice) -> str:
        start = sl.start or 0
        if sl.stop <= start:  # an empty block (e.g. no validation tail)
            return ""
        return f"{index[start].date()} .. {index[sl.stop - 1].date()}"

    return {"fold": k, "train": span(tr), "valid": span(va), "test": span(te)}


def fit_tagged(model: Any, dataset, train: slice, valid: slice,
               callbacks: Sequence[Callable[[Any, dict], Any]], **tags: Any) -> Any:
    """``model.fit(dataset, train, valid)``, each callback's record extended by ``tags``.

    Without callbacks ``fit`` is called without the keyword, so models that do not take
    callbacks still fit.
    """
    if not callbacks:
        return model.fit(dataset, train, valid)

    def tagged(cb: Callable[[Any, dict], Any]) -> Callable[[Any, dict], Any]:
        return lambda m, record: cb(m, {**record, **tags})

    return model.fit(dataset, train, valid, callbacks=[tagged(cb) for cb in callbacks])


def _as_slice(x) -> slice:
    if isinstance(x, slice):
        return x
    arr = np.asarray(x)
    if arr.size == 0:
        raise ValueError("a split has an empty block")
    return slice(int(arr[0]), int(arr[-1]) + 1)
