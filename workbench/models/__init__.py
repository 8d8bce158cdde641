"""Models trained on the Sharpe ratio: losses, the deep momentum LSTM, walk-forward training.

torch is imported on first access to a torch-backed name, so ``import workbench.models``
stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MomentumDataset": "workbench.models._dataset",
    "DeepMomentumLSTM": "workbench.models._lstm",
    "LSTMNetwork": "workbench.models._lstm",
    "pairwise_sharpe": "workbench.models._lstm",
    "resolve_device": "workbench.models._lstm",
    "sharpe_loss": "workbench.models._losses",
    "mse_loss": "workbench.models._losses",
    "binary_loss": "workbench.models._losses",
    "captured_returns": "workbench.models._losses",
    "LOSSES": "workbench.models._losses",
    "walk_forward": "workbench.models._walkforward",
    "WalkForwardResult": "workbench.models._walkforward",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'workbench.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
