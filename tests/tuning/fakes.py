"""Crafted estimators for the tuning tests: known validation curves, controllable cost."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from workbench.models._params import EstimatorParams

_FITS = [0]


class CraftedModel(EstimatorParams):
    """Estimator whose per-epoch validation Sharpe is ``quality * (epoch + 1)``.

    ``predict`` returns ``tanh(quality * feature_0)``, so the validation metrics depend on
    ``quality`` too. ``sleep_s`` per epoch makes a trial last long enough to be killed.
    With ``die_at_fit=k`` (or env ``CRAFTED_DIE_AT_FIT``) the process SIGKILLs itself
    in the middle of its k-th fit (1-based), like a kernel that is restarted.
    """

    def __init__(self, quality: float = 0.0, epochs: int = 6, sleep_s: float = 0.0,
                 die_at_fit: int = 0, progress: bool = False):
        if not -10.0 <= quality <= 10.0:
            raise ValueError(f"quality must be in [-10, 10], got {quality!r}")
        self.quality = quality
        self.epochs = epochs
        self.sleep_s = sleep_s
        self.die_at_fit = die_at_fit
        self.progress = progress

    def fit(self, dataset, train, valid=None, *, callbacks=()):
        _FITS[0] += 1
        die = self.die_at_fit or int(os.environ.get("CRAFTED_DIE_AT_FIT", "0"))
        self.history_ = []
        for epoch in range(self.epochs):
            if self.sleep_s:
                time.sleep(self.sleep_s)
            if die and _FITS[0] == die and epoch == self.epochs // 2:
                os.kill(os.getpid(), signal.SIGKILL)
            rec = {"epoch": epoch, "train_loss": -self.quality,
                   "valid_sharpe": self.quality * (epoch + 1), "seconds": 0.0}
            self.history_.append(rec)
            if any(cb(self, rec) for cb in callbacks):
                break
        self.fitted_ = True
        return self

    def predict(self, features, rows=None):
        pos = np.tanh(self.quality * np.nan_to_num(features[..., 0]))
        if rows is not None:
            keep = np.zeros(pos.shape[0], dtype=bool)
            keep[rows] = True
            pos[~keep] = 0.0
        return pos


class BrokenModel(CraftedModel):
    """Estimator whose every fit raises, like a model with a bug."""

    def fit(self, dataset, train, valid=None, *, callbacks=()):
        raise FloatingPointError(f"loss diverged (quality={self.quality!r})")
