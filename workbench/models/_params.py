"""scikit-learn style hyperparameter helpers shared by the estimators (torch-free)."""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["EstimatorParams", "record_training_window", "restore_training_window",
           "training_window_meta"]


class EstimatorParams:
    """``get_params`` / ``set_params`` / ``repr`` from the constructor's signature.

    Subclasses list every hyperparameter in ``__init__`` and store each under its own
    name (the scikit-learn estimator convention).
    """

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters as a dict (constructor arguments).

        Parameters
        ----------
        deep : bool, default True
            Accepted for scikit-learn compatibility (``sklearn.base.clone`` passes
            ``deep=False``); no hyperparameter is itself an estimator, so it changes
            nothing.

        Returns
        -------
        dict
            ``{name: value}`` in the constructor's order.
        """
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {k: getattr(self, k) for k in names}

    def set_params(self, **params: Any) -> Any:
        """Set hyperparameters and return ``self``.

        Raises
        ------
        ValueError
            On a name that is not a hyperparameter (the valid names are listed).
        """
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"{type(self).__name__} has no hyperparameter {k!r}; "
                                 f"valid: {sorted(valid)}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def record_training_window(model: Any, index: Any, train: slice, valid: slice | None) -> None:
    """Set ``model.training_window_`` (rows) and ``model.training_dates_`` (timestamps).

    Parameters
    ----------
    model : estimator
        The model being fitted.
    index : pandas.DatetimeIndex, length T
        The dataset's timestamps.
    train : slice
        Training rows ``[start, stop)`` with ``start < stop``.
    valid : slice or None
        Validation rows, or None without validation (recorded as ``-1, -1``).

    Notes
    -----
    ``training_dates_`` holds the ISO 8601 timestamps of the first and last training row.
    Training reads targets realised at bars up to the last one, so a later block is out of
    sample for the model only from that timestamp on (:meth:`Ensemble.fit` checks its
    validation rows against it, by date, since a loaded model's rows may belong to
    another dataset).
    """
    model.training_window_ = (int(train.start), int(train.stop),
                              int(valid.start) if valid is not None else -1,
                              int(valid.stop) if valid is not None else -1)
    model.training_dates_ = (index[train.start].isoformat(), index[train.stop - 1].isoformat())


def training_window_meta(model: Any) -> dict[str, list]:
    """``training_window_`` and ``training_dates_`` as JSON lists (empty when unset)."""
    return {"training_window_": list(getattr(model, "training_window_", ())),
            "training_dates_": list(getattr(model, "training_dates_", ()))}


def restore_training_window(model: Any, meta: dict[str, Any]) -> None:
    """Set the attributes of :func:`training_window_meta` back from ``meta``.

    Folders saved before ``training_dates_`` existed restore it as ``()``.
    """
    model.training_window_ = tuple(meta.get("training_window_", ()))
    model.training_dates_ = tuple(str(d) for d in meta.get("training_dates_", ()))
