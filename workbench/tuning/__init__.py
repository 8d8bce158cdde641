"""Hyperparameter tuning with Optuna: walk-forward objectives, pruning, Pareto fronts, workers.

One call from a notebook tunes any member of the zoo or a baseline strategy::

    from workbench.models import DeepMomentumLSTM
    from workbench.tuning import tune
    result = tune(DeepMomentumLSTM, data="daily", n_trials=30)     # TPE + median pruning
    result.pareto, result.best_params, result.model_path

    tune(DeepMomentumLSTM, objectives=("sharpe", "max_drawdown", "turnover"))  # NSGA-II

Studies are stored with their task (model, space, data, folds, objectives) in SQLite by
default (``<data_dir>/tuning/studies.db``; resumes after a kernel restart) or in any
PostgreSQL database, which ``workbench tune worker --study NAME --storage URL`` processes
on other machines join. Dead workers are found by heartbeat and their trials retried
(DESIGN.md section 8). Optuna is imported on first use.
"""

from __future__ import annotations

from workbench._lazy import lazy_exports

_EXPORTS = {
    "tune": "workbench.tuning._study",
    "create_study": "workbench.tuning._study",
    "run_worker": "workbench.tuning._study",
    "load_study": "workbench.tuning._study",
    "refit_trial": "workbench.tuning._study",
    "optimize_until": "workbench.tuning._study",
    "TuningResult": "workbench.tuning._study",
    "WalkForwardObjective": "workbench.tuning._objective",
    "validation_metrics": "workbench.tuning._objective",
    "OBJECTIVES": "workbench.tuning._objective",
    "TuningFold": "workbench.tuning._folds",
    "tuning_folds": "workbench.tuning._folds",
    "parse_space": "workbench.tuning._spaces",
    "validate_space": "workbench.tuning._spaces",
    "default_space": "workbench.tuning._spaces",
    "deep_momentum_space": "workbench.tuning._spaces",
    "resolve_storage": "workbench.tuning._storage",
    "default_storage_url": "workbench.tuning._storage",
    "data_dir": "workbench.tuning._storage",
    "mask_url": "workbench.tuning._storage",
    "StorageError": "workbench.tuning._storage",
    "trials_table": "workbench.tuning._tables",
    "pareto_front": "workbench.tuning._tables",
    "objective_names": "workbench.tuning._tables",
    "TSMOMStrategy": "workbench.tuning._strategies",
    "MACDStrategy": "workbench.tuning._strategies",
    "LocalPostgres": "workbench.tuning._local_pg",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
