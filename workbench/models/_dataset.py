"""Model-ready arrays built from a ``Bars`` panel: features, targets and ex-ante vol."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["MomentumDataset"]


@dataclass(frozen=True)
class MomentumDataset:
    """Aligned inputs and targets for deep-momentum models.

    Attributes
    ----------
    index : pandas.DatetimeIndex, length T
        UTC timestamps.
    symbols : tuple of str, length N
        Asset names.
    features : numpy.ndarray, shape (T, N, F)
        Model inputs at t (causal; NaN during warm-up and where the asset has no bar).
    feature_names : tuple of str, length F
        Names of the last axis of ``features``.
    returns : numpy.ndarray, shape (T, N)
        Daily simple returns ``r_t = p_t / p_{t-1} - 1``.
    next_returns : numpy.ndarray, shape (T, N)
        Targets ``r_{t+1}`` (the return realised after the decision at t); NaN at T-1.
    sigma : numpy.ndarray, shape (T, N)
        Ex-ante annualised volatility (EWM std of daily returns, span 60, x sqrt(252)).
    close : numpy.ndarray, shape (T, N)
        Close prices (NaN where no bar).
    data_hash : str
        ``Bars.data_hash()`` of the source panel, for provenance.
    """

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    features: np.ndarray
    feature_names: tuple[str, ...]
    returns: np.ndarray
    next_returns: np.ndarray
    sigma: np.ndarray
    close: np.ndarray
    data_hash: str = ""
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_bars(cls, bars, *, span: int = 60) -> MomentumDataset:
        """Build the deep-momentum dataset (DESIGN.md sections 3 and 5) from a panel.

        Features are the normalised returns over 1, 21, 63, 126 and 252 days and the
        three Baz et al. MACD signals (8, 24), (16, 48), (32, 96).

        Parameters
        ----------
        bars : workbench.data.Bars
            Panel of N assets over T timestamps.
        span : int, default 60
            EWM span of the ex-ante volatility estimate.

        Returns
        -------
        MomentumDataset
        """
        from workbench import features as ft

        close = np.asarray(bars["close"], dtype=np.float64)
        feats, names = ft.deep_momentum_features(close, span=span)
        returns = ft.simple_returns(close)
        sigma = ft.ex_ante_volatility(close, span=span)
        next_returns = next_period(returns, close)
        return cls(
            index=bars.index,
            symbols=tuple(bars.symbols),
            features=feats,
            feature_names=tuple(names),
            returns=returns,
            next_returns=next_returns,
            sigma=sigma,
            close=close,
            data_hash=bars.data_hash(),
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(T, N, F)``."""
        return self.features.shape  # type: ignore[return-value]

    def valid_mask(self, before: int | None = None) -> np.ndarray:
        """Pairs usable as training targets, shape (T, N).

        True where all features, ``sigma > 0`` and the next return are finite.

        Parameters
        ----------
        before : int, optional
            Also require the target ``r_{t+1}`` to be realised at a bar before row
            ``before`` (the asset's next bar after t, as :func:`next_period` reads it from
            ``close``), so a fit or a validation score on rows ``[start, before)`` never
            reads a return realised at or after ``before``. Negative values count from
            the end, as in slicing.

        Returns
        -------
        numpy.ndarray of bool, shape (T, N)
        """
        ok = np.isfinite(self.features).all(axis=-1)
        ok &= np.isfinite(self.sigma) & (self.sigma > 0)
        ok &= np.isfinite(self.next_returns)
        if before is not None:
            T = ok.shape[0]
            stop = slice(None, int(before)).indices(T)[1]
            present = np.isfinite(np.asarray(self.close, dtype=np.float64))[:stop]
            # the last bar of each asset before ``stop``: its target (and that of any
            # later row) is realised at or after ``stop``
            last = np.full(ok.shape[1], -1)
            if stop > 0:
                last = np.where(present.any(axis=0),
                                stop - 1 - np.argmax(present[::-1], axis=0), -1)
            ok &= np.arange(T)[:, None] < last[None, :]
        return ok

    def input_mask(self) -> np.ndarray:
        """Pairs where a prediction can be made, shape (T, N): features and sigma finite."""
        ok = np.isfinite(self.features).all(axis=-1)
        ok &= np.isfinite(self.sigma) & (self.sigma > 0)
        return ok


def next_period(returns: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Return of each asset's next available bar, aligned to the decision time.

    Parameters
    ----------
    returns : numpy.ndarray, shape (T, N)
        Simple returns over each asset's previous valid bar (NaN where no bar).
    close : numpy.ndarray, shape (T, N)
        Close prices; NaN marks a missing bar.

    Returns
    -------
    numpy.ndarray, shape (T, N)
        ``out[t, j]`` = return realised at the asset's next bar after t (NaN at the
        last bar and where the asset has no bar at t).
    """
    T, N = returns.shape
    out = np.full((T, N), np.nan)
    present = np.isfinite(close)
    for j in range(N):  # N is small (assets); the work per asset is vectorised
        rows = np.flatnonzero(present[:, j])
        if rows.size > 1:
            out[rows[:-1], j] = returns[rows[1:], j]
    return out
