"""Baseline strategies wrapped as estimators, so their parameters can be tuned like a model."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.models._params import EstimatorParams

__all__ = ["TSMOMStrategy", "MACDStrategy"]


def _check_int(name: str, value: Any, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")


class _Strategy(EstimatorParams):
    """Estimator contract for rule-based baselines: ``fit`` learns nothing."""

    def fit(self, dataset, train: slice, valid: slice | None = None, *,
            callbacks=()) -> _Strategy:
        """Record the training window (rule-based: nothing is learned); returns ``self``."""
        self.n_features_in_ = int(dataset.features.shape[-1])
        self.train_rows_ = (int(train.start or 0), int(train.stop))
        return self

    def predict_dataset(self, dataset, rows: slice | None = None) -> np.ndarray:
        """Positions, shape (T, N), in [-1, 1]; 0 outside ``rows`` and where there is no bar.

        Raises
        ------
        ValueError
            If the strategy is not fitted.
        """
        if not hasattr(self, "train_rows_"):
            raise ValueError(f"{type(self).__name__} is not fitted; call fit first")
        pos = np.nan_to_num(np.asarray(self._positions(dataset.close), dtype=np.float64))
        if rows is not None:
            keep = np.zeros(pos.shape[0], dtype=bool)
            keep[rows] = True
            pos[~keep] = 0.0
        return np.clip(pos, -1.0, 1.0)

    def _positions(self, close: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class TSMOMStrategy(_Strategy):
    """Time-series momentum ``sign(p_t / p_{t-lookback} - 1)`` as a tunable estimator.

    Parameters
    ----------
    lookback : int, default 252
        Lookback in bars, >= 1.

    Raises
    ------
    ValueError
        If ``lookback`` is not an integer >= 1.

    Notes
    -----
    Source: Moskowitz, Ooi and Pedersen (2012); see :func:`workbench.backtest.tsmom`.
    """

    def __init__(self, lookback: int = 252):
        _check_int("lookback", lookback, 1)
        self.lookback = lookback

    def _positions(self, close: np.ndarray) -> np.ndarray:
        from workbench.backtest import tsmom

        return tsmom(close, lookback=int(self.lookback))


class MACDStrategy(_Strategy):
    """One Baz et al. MACD signal through the response function, as a tunable estimator.

    Position ``phi(Y_t)`` with ``Y`` the MACD signal of the ``(short, long)`` pair
    (:func:`workbench.features.macd_signal`) and ``phi`` the response function
    (:func:`workbench.backtest.macd_response`).

    Parameters
    ----------
    short, long : int
        EWM time scales in bars, ``1 <= short < long`` (defaults 8 and 24).

    Raises
    ------
    ValueError
        If a scale is not an integer >= 1 or ``short >= long``.

    Notes
    -----
    Source: Baz et al. (2015), "Dissecting Investment Strategies in the Cross Section and
    Time Series".
    """

    def __init__(self, short: int = 8, long: int = 24):
        _check_int("short", short, 1)
        _check_int("long", long, 2)
        if short >= long:
            raise ValueError(f"short must be < long, got short={short!r}, long={long!r}")
        self.short = short
        self.long = long

    def _positions(self, close: np.ndarray) -> np.ndarray:
        from workbench.backtest import macd_response
        from workbench.features import macd_signal

        return np.asarray(macd_response(macd_signal(close, int(self.short), int(self.long))))
