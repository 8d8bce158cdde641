"""A small trained ensemble for the live app, trained once and kept in the model registry."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

__all__ = ["demo_ensemble"]

log = logging.getLogger("workbench.live")


#: Training settings of the default registry folder ``live-demo-<train_end>``.
DEFAULT_EPOCHS = 3
#: Card field (``save_model(extra=...)``) recording the settings an ensemble was trained with.
CARD_KEY = "live_demo"


def demo_ensemble(path: str | Path | None = None, *, train_end: str = "2008-12-31",
                  epochs: int = DEFAULT_EPOCHS, retrain: bool = False) -> Any:
    """Load (or train once and save) the live app's ensemble.

    Four members on the bundled daily universe up to ``train_end``, the last 15 % of
    those rows as validation: ``LinearModel``, ``MLPModel(hidden_size=16)``,
    ``CNNModel(channels=8)`` and ``DeepMomentumLSTM(hidden_size=16)``, Sharpe loss,
    ``seq_len=burn_in=63``, combined with confidence weights
    (:class:`workbench.models.Ensemble`). Trained in about 20-60 s on 2 CPU cores, then
    saved with :func:`workbench.models.save_model`, its training settings
    (``train_end``, ``epochs``) recorded in the card's ``live_demo`` field; later calls
    with the same settings load it. A saved ensemble whose recorded settings differ
    from the requested ones (or that records none) is trained again and replaced.

    Parameters
    ----------
    path : str or Path, optional
        Registry folder; default ``<data_dir>/models/live-demo-<train_end>`` for the
        default ``epochs`` and ``<data_dir>/models/live-demo-<train_end>-epochs<epochs>``
        otherwise (so each setting keeps its own cached ensemble).
    train_end : str, default "2008-12-31"
        Last training/validation date, so replaying later years is out of sample.
    epochs : int, default 3
        Training epochs per member (early stopping on the validation Sharpe).
    retrain : bool, default False
        Train again even if a saved ensemble with these settings exists.

    Returns
    -------
    workbench.models.Ensemble
        Fitted, inputs ``MomentumDataset`` features (``nret_*``, ``macd_*``).

    Raises
    ------
    ValueError
        If ``epochs`` is not an integer >= 1 or ``train_end`` is not a string.
    """
    from workbench._storage import data_dir
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
    from workbench.models._sequence import _is_int, check_param

    check_param("epochs", epochs, _is_int(epochs, 1), "an integer >= 1")
    if not isinstance(train_end, str):
        raise ValueError(f"train_end must be a date string such as '2008-12-31', got "
                         f"{train_end!r}")
    settings = {"train_end": train_end, "epochs": int(epochs)}
    target = (Path(path) if path is not None
              else data_dir() / "models" / _default_folder(train_end, int(epochs)))
    if target.exists() and not retrain:
        saved = _saved_settings(target)
        if saved == settings:
            return load_model(target)
        log.info("live demo: %s holds an ensemble trained with %s, not %s; training again",
                 target, saved, settings)
    ds = MomentumDataset.from_bars(load_universe("daily", end=train_end))
    T = ds.shape[0]
    valid = slice(int(T * 0.85), T)
    train = slice(0, valid.start - 1)
    common = {"epochs": int(epochs), "patience": 3, "seq_len": 63, "burn_in": 63,
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
    save_model(ens, target, dataset=ds, overwrite=True, extra={CARD_KEY: settings})
    return ens


def _default_folder(train_end: str, epochs: int) -> str:
    """Registry folder name of the demo ensemble trained with these settings."""
    suffix = "" if epochs == DEFAULT_EPOCHS else f"-epochs{epochs}"
    return f"live-demo-{train_end}{suffix}"


def _saved_settings(target: Path) -> dict[str, Any] | None:
    """The training settings a saved demo ensemble records (None if unknown/unreadable)."""
    from workbench.models import read_card

    try:
        saved = read_card(target).get(CARD_KEY)
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None
