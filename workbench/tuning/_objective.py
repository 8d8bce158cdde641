"""The walk-forward objective: fit on each purged fold, score the validation blocks."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["OBJECTIVES", "WalkForwardObjective", "validation_metrics", "check_objectives"]

#: Objective name -> Optuna direction. Metrics of the validation blocks' portfolio
#: returns (vol-targeted, net of ``cost_bps``); ``max_drawdown`` is a positive fraction.
OBJECTIVES: dict[str, str] = {
    "sharpe": "maximize",
    "sortino": "maximize",
    "calmar": "maximize",
    "annual_return": "maximize",
    "max_drawdown": "minimize",
    "turnover": "minimize",
    "annual_vol": "minimize",
}

_METRIC_KEYS = {
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "calmar": "Calmar",
    "annual_return": "annual return",
    "annual_vol": "annual vol",
}


def check_objectives(objectives: Any) -> list[str]:
    """Validate objective names; a single name becomes a one-element list.

    Raises
    ------
    ValueError
        If empty, duplicated or not in :data:`OBJECTIVES` (the known names are listed).
    """
    names = [objectives] if isinstance(objectives, str) else list(objectives)
    if not names:
        raise ValueError("objectives must name at least one metric")
    for n in names:
        if n not in OBJECTIVES:
            raise ValueError(f"unknown objective {n!r}; known: {sorted(OBJECTIVES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"objectives must not repeat, got {names}")
    return names


def validation_metrics(positions: np.ndarray, dataset, blocks: Sequence[slice], *,
                       target_vol: float = 0.15, cost_bps: float = 0.0) -> dict[str, float]:
    """Portfolio metrics of positions over the validation blocks.

    For each block the vol-targeted portfolio returns
    (:func:`workbench.backtest.strategy_returns`; every block starts flat and pays for
    building its book) are concatenated; turnover is the row-weighted mean of the blocks'
    annualised turnover of :func:`workbench.backtest.portfolio_weights`.

    Parameters
    ----------
    positions : numpy.ndarray, shape (T, N)
        Positions in [-1, 1] (rows outside the blocks are ignored).
    dataset : MomentumDataset
        Supplies ``sigma`` and ``next_returns`` (T, N).
    blocks : sequence of slice
        Validation row ranges.
    target_vol : float, default 0.15
        Annualised target volatility per asset.
    cost_bps : float, default 0.0
        Cost per unit of vol-scaled turnover, basis points.

    Returns
    -------
    dict of str to float
        ``sharpe``, ``sortino``, ``calmar``, ``annual_return``, ``annual_vol`` (all
        annualised with 252 periods), ``max_drawdown`` (positive fraction, 0.2 = 20 %)
        and ``turnover`` (annualised, fraction of equity per year); plus ``n_days``.
    """
    from workbench.backtest import (
        performance_metrics,
        portfolio_weights,
        strategy_returns,
        turnover,
    )

    rets, turns, lengths = [], [], []
    for b in blocks:
        pos = positions[b]
        sig = dataset.sigma[b]
        r = strategy_returns(pos, sig, dataset.next_returns[b], target_vol=target_vol,
                             cost_bps=cost_bps).portfolio
        rets.append(r)
        turns.append(turnover(portfolio_weights(pos, sig, target_vol=target_vol)))
        lengths.append(pos.shape[0])
    r = np.concatenate(rets) if rets else np.empty(0)
    m = performance_metrics(r[np.isfinite(r)])
    w = np.asarray(lengths, dtype=float)
    t = np.asarray(turns, dtype=float)
    ok = np.isfinite(t)
    out = {key: float(m[col]) for key, col in _METRIC_KEYS.items()}
    out["max_drawdown"] = abs(float(m["max drawdown"]))
    out["turnover"] = float((t[ok] * w[ok]).sum() / w[ok].sum()) if ok.any() else float("nan")
    out["n_days"] = int(np.isfinite(r).sum())
    return out


def _steps_per_fold(model: Any) -> int:
    epochs = getattr(model, "epochs", None)
    if isinstance(epochs, (int, np.integer)) and epochs > 0:
        return int(epochs)
    trees = getattr(model, "n_estimators", None)
    if isinstance(trees, (int, np.integer)) and trees > 0:
        return int(math.ceil(trees / 10))
    return 1


def model_positions(model: Any, dataset, rows: slice) -> np.ndarray:
    """(T, N) positions of a fitted estimator on ``rows`` (0 elsewhere).

    Uses ``model.predict_dataset(dataset, rows)`` when the estimator has it (rule-based
    strategies that read prices), else ``model.predict(dataset.features, rows=rows)``.
    """
    if hasattr(model, "predict_dataset"):
        return np.asarray(model.predict_dataset(dataset, rows), dtype=np.float64)
    return np.asarray(model.predict(dataset.features, rows=rows), dtype=np.float64)


class WalkForwardObjective:
    """Optuna objective: sample parameters, fit per fold, score the validation blocks.

    Each trial builds ``model_factory(**fixed, **params)`` once per fold, fits it on the
    fold's training rows with early stopping on its validation rows, predicts the
    validation rows and scores the concatenated validation returns
    (:func:`validation_metrics`). Test-period rows are never predicted or scored.

    With one objective that is maximised (``sharpe``, ``sortino``, ``calmar``,
    ``annual_return``), every epoch's validation Sharpe (the ``valid_sharpe`` of the fit
    callback record) is reported to the trial at step ``fold * steps_per_fold + i``
    (``steps_per_fold`` = the model's ``epochs``, or ``n_estimators / 10`` for the
    trees; the largest over the space when ``epochs`` or ``n_estimators`` is searched,
    so every trial's fold ``k`` starts at the same step and the pruner compares
    Sharpes of the same validation block) and the trial is pruned
    (``optuna.TrialPruned``) as soon as the study's pruner says so. A minimised
    objective (``max_drawdown``, ``turnover``, ``annual_vol``) has no per-epoch proxy of
    its own direction (its pruner would stop the trials with the *highest* Sharpe), and
    Optuna cannot prune multi-objective trials, so nothing is reported then.

    A sampled combination the estimator rejects (its constructor or ``_validate_params``
    raises ValueError/TypeError, e.g. MACD ``short >= long`` when both are searched over
    overlapping ranges) is pruned before any fit, with the reason in the ``rejected``
    user attribute: TPE then learns to avoid that region, where a FAIL would tell it
    nothing and would count towards ``optimize_until``'s consecutive failures. Errors
    during ``fit`` (a diverged loss) still fail the trial.

    Parameters
    ----------
    model_factory : callable
        A model class or ``factory(**params) -> estimator`` (see
        :func:`workbench.tuning.tune`).
    space : dict of str to optuna distribution
        Parsed search space.
    dataset : MomentumDataset
    folds : sequence of TuningFold
        From :func:`workbench.tuning.tuning_folds`.
    objectives : sequence of str
        Names in :data:`OBJECTIVES`.
    fixed : mapping, optional
        Constructor arguments used for every trial.
    target_vol, cost_bps : float
        Sizing and costs of the validation metrics (see :func:`validation_metrics`).

    Notes
    -----
    Each trial records ``worker`` (``host:pid``), ``metrics`` (all of
    :func:`validation_metrics`) and ``fold_sharpe`` (per fold) as user attributes. A
    trial whose objective value is not finite (NaN: a flat book; +-inf: validation
    returns without spread) is returned as NaN, so Optuna records it as FAIL, with the
    reason in its ``fail_reason`` user attribute.
    """

    def __init__(self, model_factory: Callable[..., Any], space: Mapping[str, Any], dataset,
                 folds: Sequence[Any], objectives: Sequence[str] = ("sharpe",), *,
                 fixed: Mapping[str, Any] | None = None, target_vol: float = 0.15,
                 cost_bps: float = 0.0):
        self.model_factory = model_factory
        self.space = dict(space)
        self.dataset = dataset
        self.folds = list(folds)
        self.objectives = check_objectives(objectives)
        self.fixed = dict(fixed or {})
        self.target_vol = float(target_vol)
        self.cost_bps = float(cost_bps)

    def build(self, params: Mapping[str, Any]) -> Any:
        """A fresh estimator for ``params`` (plus the fixed arguments)."""
        return self.model_factory(**self.fixed, **params)

    def _build_for(self, trial, params: Mapping[str, Any]) -> Any:
        """:meth:`build` and the estimator's parameter check; a rejection prunes the trial.

        Raises
        ------
        optuna.TrialPruned
            If the constructor or the estimator's ``_validate_params`` raises ValueError or
            TypeError (a combination outside a conditional range, e.g. ``short >= long``);
            the reason is kept in the trial's ``rejected`` user attribute.
        """
        import optuna

        from ._spaces import check_params

        try:
            return check_params(self.build(params))
        except (TypeError, ValueError) as exc:
            trial.set_user_attr("rejected", str(exc))
            raise optuna.TrialPruned(f"the model rejects {dict(params)}: {exc}") from exc

    def _stride(self, params: Mapping[str, Any]) -> int:
        """Steps per fold shared by every trial: the most any point of the space takes."""
        from ._spaces import _distributions

        d = _distributions()
        widest = dict(params)
        for name in ("epochs", "n_estimators"):
            dist = self.space.get(name)
            if isinstance(dist, (d.IntDistribution, d.FloatDistribution)):
                widest[name] = int(dist.high)
            elif isinstance(dist, d.CategoricalDistribution):
                ints = [c for c in dist.choices
                        if isinstance(c, (int, np.integer)) and not isinstance(c, bool)]
                if ints:
                    widest[name] = int(max(ints))
        try:
            most = _steps_per_fold(self.build(widest))
        except (TypeError, ValueError):  # a factory that rejects the combination
            most = 1
        return max(most, _steps_per_fold(self.build(params)))

    def __call__(self, trial) -> float | tuple[float, ...]:
        """Run one trial; returns the objective value(s) in :attr:`objectives` order."""
        import optuna

        from ._spaces import sample_params

        params = sample_params(trial, self.space)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        single = len(self.objectives) == 1
        # the reported Sharpe is "higher is better": only a maximised objective may prune on it
        prunable = single and OBJECTIVES[self.objectives[0]] == "maximize"
        T, N = self.dataset.next_returns.shape
        positions = np.zeros((T, N))
        fold_sharpe = []
        stride = self._stride(params) if prunable else 1
        for k, fold in enumerate(self.folds):
            model = self._build_for(trial, params)
            spf = min(_steps_per_fold(model), stride)
            calls = [0]

            def report(_model, record, k=k, spf=spf, calls=calls):
                step = k * stride + min(calls[0], spf - 1)
                calls[0] += 1
                value = record.get("valid_sharpe")
                if value is None or not math.isfinite(value):
                    return None
                trial.report(float(value), step)
                if trial.should_prune():
                    raise optuna.TrialPruned(
                        f"pruned at fold {k}, step {step}: validation Sharpe {value:.3f}")
                return None

            model.fit(self.dataset, fold.train, fold.valid,
                      callbacks=[report] if prunable else [])
            pos = model_positions(model, self.dataset, fold.valid)
            positions[fold.valid] = pos[fold.valid]
            fold_sharpe.append(validation_metrics(
                positions, self.dataset, [fold.valid], target_vol=self.target_vol,
                cost_bps=self.cost_bps)["sharpe"])
        metrics = validation_metrics(positions, self.dataset, [f.valid for f in self.folds],
                                     target_vol=self.target_vol, cost_bps=self.cost_bps)
        trial.set_user_attr("metrics", {k: _jsonable(v) for k, v in metrics.items()})
        trial.set_user_attr("fold_sharpe", [_jsonable(v) for v in fold_sharpe])
        values = tuple(float(metrics[name]) for name in self.objectives)
        bad = [f"{name}={v}" for name, v in zip(self.objectives, values)
               if not math.isfinite(v)]
        if bad:
            # NaN (a flat book: 0/0) and +-inf (returns without spread, Sortino without a
            # losing day) rank nothing: FAIL the trial (Optuna fails NaN values), rather
            # than complete it with an inf that Optuna's best_trial would pick and the
            # Pareto table drops
            trial.set_user_attr("fail_reason", f"non-finite objective {', '.join(bad)} on "
                                               f"{metrics['n_days']} validation days")
            values = tuple(v if math.isfinite(v) else float("nan") for v in values)
        return values[0] if single else values


def _jsonable(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v
