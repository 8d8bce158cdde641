"""scikit-learn style hyperparameter helpers shared by the estimators (torch-free)."""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["EstimatorParams"]


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
