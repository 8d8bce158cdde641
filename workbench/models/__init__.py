"""The model zoo: Sharpe-trained members, ensembles, an inference engine and a registry.

Members follow one estimator contract (DESIGN.md section 4): the constructor stores
hyperparameters; ``fit(dataset, train, valid)`` sets attributes ending in ``_``;
``predict(features)`` returns positions in [-1, 1] of shape (T, N) and
``predict_sequences(x)`` the last step's position of (B, L, F) sequences.

torch (and lightgbm) are imported on first access to a name that needs them, so
``import workbench.models`` stays light.
"""

from __future__ import annotations

from workbench._lazy import lazy_exports

_EXPORTS = {
    "MomentumDataset": "workbench.models._dataset",
    # torch members
    "SequenceModel": "workbench.models._sequence",
    "score_positions": "workbench.models._sequence",
    "last_step": "workbench.models._sequence",
    "pairwise_sharpe": "workbench.models._sequence",
    "resolve_device": "workbench.models._sequence",
    "DeepMomentumLSTM": "workbench.models._lstm",
    "LSTMNetwork": "workbench.models._lstm",
    "LinearModel": "workbench.models._zoo",
    "MLPModel": "workbench.models._zoo",
    "CNNModel": "workbench.models._zoo",
    "MomentumTransformer": "workbench.models._transformer",
    # gradient-boosted trees member
    "BoostedTreesModel": "workbench.models._trees",
    # losses
    "sharpe_loss": "workbench.models._losses",
    "mse_loss": "workbench.models._losses",
    "binary_loss": "workbench.models._losses",
    "captured_returns": "workbench.models._losses",
    "LOSSES": "workbench.models._losses",
    # training
    "walk_forward": "workbench.models._walkforward",
    "WalkForwardResult": "workbench.models._walkforward",
    # ensembles and serving
    "Ensemble": "workbench.models._ensemble",
    "walk_forward_ensemble": "workbench.models._ensemble",
    "EnsembleWalkForward": "workbench.models._ensemble",
    "InferenceEngine": "workbench.models._engine",
    # registry
    "save_model": "workbench.models._registry",
    "load_model": "workbench.models._registry",
    "read_card": "workbench.models._registry",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
