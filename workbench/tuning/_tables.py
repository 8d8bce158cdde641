"""Tables of a study: every trial, and the non-dominated (Pareto) trials."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["trials_table", "pareto_front", "objective_names", "is_non_dominated"]

#: Study user attribute holding the objective names (set by :func:`workbench.tuning.tune`).
OBJECTIVES_ATTR = "workbench_objectives"


def objective_names(study) -> list[str]:
    """Names of a study's objectives, in order.

    Parameters
    ----------
    study : optuna.study.Study

    Returns
    -------
    list of str
        From the study's ``workbench_objectives`` user attribute when
        :func:`workbench.tuning.tune` created it, else ``value`` (one objective) or
        ``value_0, value_1, ...``.
    """
    names = study.user_attrs.get(OBJECTIVES_ATTR)
    n = len(study.directions)
    if isinstance(names, list) and len(names) == n:
        return [str(x) for x in names]
    return ["value"] if n == 1 else [f"value_{i}" for i in range(n)]


def trials_table(study, states: Any = None) -> pd.DataFrame:
    """One row per trial: number, state, objective values, parameters, timing, retries.

    Parameters
    ----------
    study : optuna.study.Study
    states : iterable of optuna.trial.TrialState, optional
        Keep only trials in these states (default: all).

    Returns
    -------
    pandas.DataFrame
        Columns ``number``, ``state`` (name), one column per objective (see
        :func:`objective_names`; NaN for unfinished trials), ``params_<name>`` per
        parameter, ``datetime_start``, ``datetime_complete``, ``duration_s``, ``worker``
        (the worker's ``host:pid`` user attribute when set), ``retry_of`` (number of the
        failed trial this trial retries, or -1) and ``pruned_at`` (last reported step of
        pruned trials, else -1). Indexed by position, sorted by trial number.
    """
    import warnings

    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    names = objective_names(study)
    trials = study.get_trials(deepcopy=False, states=states)
    rows = []
    for t in trials:
        row: dict[str, Any] = {"number": t.number, "state": t.state.name}
        values = t.values if t.values is not None else [np.nan] * len(names)
        for name, v in zip(names, values):
            row[name] = float(v)
        for key, v in t.params.items():
            row[f"params_{key}"] = v
        row["datetime_start"] = t.datetime_start
        row["datetime_complete"] = t.datetime_complete
        if t.datetime_start is not None and t.datetime_complete is not None:
            row["duration_s"] = (t.datetime_complete - t.datetime_start).total_seconds()
        else:
            row["duration_s"] = np.nan
        row["worker"] = t.user_attrs.get("worker", "")
        with warnings.catch_warnings():  # "experimental" in Optuna since 2.8
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = RetryHeartbeatStaleTrialCallback.retried_trial_number(t)
        row["retry_of"] = -1 if retry is None else int(retry)
        row["pruned_at"] = (t.last_step if t.state.name == "PRUNED" and t.last_step is not None
                            else -1)
        rows.append(row)
    base = ["number", "state", *names]
    if not rows:
        return pd.DataFrame(columns=[*base, "datetime_start", "datetime_complete", "duration_s",
                                     "worker", "retry_of", "pruned_at"])
    df = pd.DataFrame(rows)
    params = sorted(c for c in df.columns if c.startswith("params_"))
    rest = ["datetime_start", "datetime_complete", "duration_s", "worker", "retry_of",
            "pruned_at"]
    return df[base + params + rest].sort_values("number").reset_index(drop=True)


def is_non_dominated(values: np.ndarray, maximize: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``values`` that no other row dominates.

    Parameters
    ----------
    values : numpy.ndarray, shape (n, k)
        Objective values of ``n`` points (finite).
    maximize : numpy.ndarray, shape (k,) of bool
        Direction per objective.

    Returns
    -------
    numpy.ndarray, shape (n,) of bool
        True where no other row is at least as good in every objective and strictly
        better in one (Pareto dominance; duplicates of a non-dominated point are all kept).
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError(f"values must be 2-D (n, k), got shape {v.shape}")
    sign = np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)
    v = v * sign  # now every objective is minimised
    n = v.shape[0]
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        better_eq = (v <= v[i]).all(axis=1)
        strictly = (v < v[i]).any(axis=1)
        if (better_eq & strictly).any():
            keep[i] = False
    return keep


def pareto_front(study) -> pd.DataFrame:
    """The non-dominated completed trials of a (multi-objective) study.

    Parameters
    ----------
    study : optuna.study.Study

    Returns
    -------
    pandas.DataFrame
        The rows of :func:`trials_table` for the completed trials that no other completed
        trial dominates (recomputed here from the stored values, not trusted from the
        sampler), sorted by the first objective, best first, and by trial number among
        equal first objectives. For a single-objective study: the best trial(s).
    """
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    table = trials_table(study, states=(TrialState.COMPLETE,))
    names = objective_names(study)
    if table.empty:
        return table
    maximize = np.array([d == StudyDirection.MAXIMIZE for d in study.directions])
    values = table[names].to_numpy(dtype=float)
    finite = np.isfinite(values).all(axis=1)
    table, values = table[finite], values[finite]
    if table.empty:
        return table.reset_index(drop=True)
    front = table[is_non_dominated(values, maximize)]
    # ties in the first objective (3+ objectives, or duplicates): the earliest trial
    # first, so the default choice of tune/refit_trial is reproducible (and matches
    # Optuna's best_trial for one objective)
    return front.sort_values([names[0], "number"], ascending=[not maximize[0], True],
                             kind="mergesort").reset_index(drop=True)
