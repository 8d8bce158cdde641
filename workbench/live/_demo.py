"""A small trained ensemble for the live app, trained once and kept in the model registry."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

__all__ = ["demo_ensemble"]

log = logging.getLogger("workbench.live")


def demo_ensemble(path: str | Path | None = None, *, train_end: str = "2008-12-31",
                  epochs: int = 3, retrain: bool = False) -> Any:
    """Load (or train once and save) the live app's ensemble.

    Four members on the bundled daily universe up to ``train_end``, the last 15 % of
    those rows as validation: ``LinearModel``, ``MLPModel(hidden_size=16)``,
    ``CNNModel(channels=8)`` and ``DeepMomentumLSTM(hidden_size=16)``, Sharpe loss,
    ``seq_len=burn_in=63``, combined with confidence weights
    (:class:`workbench.models.Ensemble`). Trained in about 20-60 s on 2 CPU cores, then
    saved with :func:`workbench.models.save_model`; later calls load it.

    Parameters
    ----------
    path : str or Path, optional
        Registry folder; default ``<data_dir>/models/live-demo-<train_end>``.
    train_end : str, default "2008-12-31"
        Last training/validation date, so replaying later years is out of sample.
    epochs : int, default 3
        Training epochs per member (early stopping on the validation Sharpe).
    retrain : bool, default False
        Train again even if a saved ensemble exists.

    Returns
    -------
    workbench.models.Ensemble
        Fitted, inputs ``MomentumDataset`` features (``nret_*``, ``macd_*``).
    """
    from workbench.data import load_universe
    from workbench.models import (
        CNNModel,
        DeepMomentumLSTM,
        Ensemble,
        LinearModel,
        MLPModel,
        MomentumDataset,
        load_model,
        save_model,
    )
    from workbench.tuning._storage import data_dir

    target = (Path(path) if path is not None
              else data_dir() / "models" / f"live-demo-{train_end}")
    if target.exists() and not retrain:
        return load_model(target)
    ds = MomentumDataset.from_bars(load_universe("daily", end=train_end))
    T = ds.shape[0]
    valid = slice(int(T * 0.85), T)
    train = slice(0, valid.start - 1)
    common = {"epochs": epochs, "patience": 3, "seq_len": 63, "burn_in": 63,
              "device": "cpu", "progress": False}
    members = {
        "linear": LinearModel(**common),
        "mlp": MLPModel(hidden_size=16, **common),
        "cnn": CNNModel(channels=8, **common),
        "lstm": DeepMomentumLSTM(hidden_size=16, **common),
    }
    for name, m in members.items():
        log.info("live demo: training %s", name)
        m.fit(ds, train, valid)
    ens = Ensemble(members, method="confidence").fit(ds, valid)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_model(ens, target, dataset=ds, overwrite=True)
    return ens
