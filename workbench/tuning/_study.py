"""Studies: ``tune`` from a notebook, workers on any machine, refit and save the chosen trial."""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ._folds import TuningFold, _folds_before, tuning_folds
from ._objective import OBJECTIVES, WalkForwardObjective, check_objectives
from ._spaces import (
    default_space,
    parse_space,
    space_from_json,
    space_to_json,
    validate_space,
)
from ._storage import GRACE_PERIOD, HEARTBEAT_INTERVAL, MAX_RETRY, mask_url, resolve_storage
from ._tables import OBJECTIVES_ATTR, pareto_front, trials_table

__all__ = [
    "TuningResult",
    "tune",
    "create_study",
    "run_worker",
    "load_study",
    "refit_trial",
    "optimize_until",
    "TASK_ATTR",
]

log = logging.getLogger("workbench.tuning")

#: Study user attribute holding the JSON task that workers rebuild the objective from.
TASK_ATTR = "workbench_task"
TASK_FORMAT = "workbench-tuning/1"

#: Model classes a worker imports from a stored task without ``allow_import``.
_STRATEGIES = {
    "TSMOMStrategy": "workbench.tuning._strategies.TSMOMStrategy",
    "MACDStrategy": "workbench.tuning._strategies.MACDStrategy",
}


@dataclass
class TuningResult:
    """Outcome of :func:`tune`.

    Attributes
    ----------
    study : optuna.study.Study
        The study (in its storage; reload it with :func:`load_study`).
    trials : pandas.DataFrame
        :func:`workbench.tuning.trials_table` of every trial.
    pareto : pandas.DataFrame
        Non-dominated completed trials (the best trial for one objective).
    best_trial : int
        Number of the chosen trial (the best, or the chosen Pareto trial).
    best_params : dict
        Its parameters.
    best_values : dict
        Its objective values by name.
    model : estimator or None
        The chosen trial re-fitted on the last fold's training rows (every pre-test row
        before the last validation block and its embargo), early-stopped on the last
        validation block (None with ``refit=False``).
    model_path : pathlib.Path or None
        Registry folder of the saved model (None when not saved).
    folds : list of TuningFold
        The validation folds used.
    test_start : pandas.Timestamp
        First timestamp of the untouched test period.
    """

    study: Any
    trials: pd.DataFrame
    pareto: pd.DataFrame
    best_trial: int
    best_params: dict[str, Any]
    best_values: dict[str, float]
    model: Any = None
    model_path: Path | None = None
    folds: list[TuningFold] = field(default_factory=list)
    test_start: pd.Timestamp | None = None


# -- task (what workers need to rebuild the objective) ------------------------------------
def _class_path(factory: Any) -> str | None:
    if isinstance(factory, type):
        return f"{factory.__module__}.{factory.__qualname__}"
    return None


def _allowed_paths() -> dict[str, str]:
    from workbench.models._registry import ALLOWED_CLASSES

    out = {k: v for k, v in ALLOWED_CLASSES.items() if k != "Ensemble"}
    out.update(_STRATEGIES)
    return out


def _import_model(path: str, allow_import: Sequence[str] = ()) -> Any:
    """Import a model class named in a stored task, refusing anything not allowed."""
    known = _allowed_paths()
    public = {f"workbench.models.{k}": v for k, v in known.items()}
    public.update({f"workbench.tuning.{k}": v for k, v in _STRATEGIES.items()})
    target = public.get(path, path)
    ok = target in known.values() or any(
        target == p or target.startswith(p.rstrip(".") + ".") for p in allow_import)
    if not ok:
        raise ValueError(
            f"the study's model {path!r} is not a workbench model; a worker imports only "
            f"{sorted(known)} unless allowed with --allow-import MODULE"
        )
    module, _, name = target.rpartition(".")
    try:
        obj = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import the study's model {path!r}: {exc}") from exc
    return obj


def _jsonable(obj: Any) -> bool:
    try:
        json.dumps(obj, allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False


def _data_spec(data: Any) -> tuple[Any, dict[str, Any] | None]:
    """(dataset, spec) from a dataset, a Bars panel, a universe name or a spec dict."""
    from workbench.models import MomentumDataset

    if isinstance(data, MomentumDataset):
        return data, None
    if isinstance(data, str):
        data = {"universe": data}
    if isinstance(data, Mapping):
        unknown = set(data) - {"universe", "start", "end"}
        if "universe" not in data or unknown:
            raise ValueError("data spec must be {'universe': name, 'start': ..., 'end': ...}, "
                             f"got {dict(data)!r}")
        spec = {"universe": str(data["universe"]),
                "start": None if data.get("start") is None else str(data["start"]),
                "end": None if data.get("end") is None else str(data["end"])}
        return _load_data(spec), spec
    if hasattr(data, "symbols") and hasattr(data, "data_hash"):
        return MomentumDataset.from_bars(data), None
    raise ValueError("data must be a MomentumDataset, a Bars panel, a bundled universe name or "
                     f"a spec dict, got {type(data).__name__}")


def _load_data(spec: Mapping[str, Any]):
    from workbench.data import load_universe
    from workbench.models import MomentumDataset

    bars = load_universe(spec["universe"], start=spec.get("start"), end=spec.get("end"))
    return MomentumDataset.from_bars(bars)


def _pruner(name: Any, single: bool):
    import optuna

    if isinstance(name, optuna.pruners.BasePruner):
        return name
    if name is None or name == "none" or not single:
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto",
                                              reduction_factor=3)
    raise ValueError(f"pruner must be 'median', 'hyperband', 'none', None or an Optuna pruner, "
                     f"got {name!r}")


def _sampler(single: bool, seed: int | None):
    import optuna

    if single:
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                          n_startup_trials=8)
    return optuna.samplers.NSGAIISampler(seed=seed)


def _resume_seed(seed: int | None, study) -> int | None:
    """Sampler seed for a process that (re)joins ``study`` holding ``n`` trials.

    A freshly seeded sampler replays the same random draws, so a study resumed with the
    seed it was created with would propose its first trials' parameters again. ``n = 0``
    keeps ``seed`` (a new study draws what it always drew); otherwise the seed is mixed
    with ``n`` by ``numpy.random.SeedSequence`` (not ``seed + n``: NumPy's legacy
    generator gives nearly equal first draws for seeds 0 and 3), so a resumed study is
    reproducible from its stored state and does not repeat itself.
    """
    if seed is None:
        return None
    n = len(study.get_trials(deepcopy=False))
    if n == 0:
        return int(seed)
    import numpy as np

    return int(np.random.SeedSequence([abs(int(seed)), n]).generate_state(1)[0])


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _task_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    keys = sorted((set(old) | set(new)) - {"n_trials", "created"})
    return [k for k in keys if old.get(k) != new.get(k)]


# -- the optimisation loop --------------------------------------------------------------
def _worker_id() -> str:
    """``host:pid`` of this process, the ``worker`` user attribute of its trials."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as fh:
            for line in fh:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _process_alive(pid: int, since: float | None = None) -> bool:
    """Whether process ``pid`` of this host still runs the trial started at ``since``.

    False when no such process exists, when it is a zombie (killed, not yet reaped by its
    parent), or (where ``/proc`` tells start times) when the process holding that id
    started after ``since`` (epoch seconds), i.e. the id was reused by a later process.
    True when it cannot be told (the trial may be alive: never failed by mistake). This
    process itself counts as dead for a trial started before it (a restarted container
    whose process got the same id).
    """
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, another user's
        pass
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:  # no /proc (macOS) or it ended just now: the kill probe decides
        return True
    fields = text[text.rfind(")") + 2:].split()
    if not fields or fields[0] in ("Z", "X"):
        return False
    boot = _boot_time()
    if since is not None and boot is not None and len(fields) > 19:
        try:
            started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
        except (ValueError, OSError):
            return True
        if started > since + 2.0:  # (start times are rounded to clock ticks / seconds)
            return False
    return True


def _fail_orphaned_trials(study, max_retry: int | None = MAX_RETRY) -> list[int]:
    """Fail (and queue retries of) RUNNING trials whose worker process on this host died.

    For storages without heartbeats (a journal file, or SQLite opened with
    ``heartbeat_interval=None``), where :func:`optuna.storages.fail_stale_trials` does
    nothing: a killed kernel's trial would stay RUNNING for ever, and a study resumed to
    the same ``n_trials`` would wait on it for ever. A trial is orphaned when its
    ``worker`` attribute names this host and a process that no longer runs (see
    :func:`_process_alive`); trials of other hosts, or without that attribute, are left
    alone. Each orphan is set to FAIL and re-queued (WAITING) with the same parameters,
    at most ``max_retry`` times, as ``RetryHeartbeatStaleTrialCallback`` re-queues a trial
    whose heartbeat went stale (so ``trials_table``'s ``retry_of`` names it).

    Returns
    -------
    list of int
        Numbers of the trials failed here.
    """
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.storages._heartbeat import is_heartbeat_enabled
    from optuna.trial import TrialState

    storage = study._storage
    if is_heartbeat_enabled(storage):
        return []  # fail_stale_trials covers every host
    host = socket.gethostname()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker")
        if not isinstance(worker, str):
            continue
        where, _, pid = worker.rpartition(":")
        if where != host or not pid.isdigit():
            continue
        since = t.datetime_start.timestamp() if t.datetime_start is not None else None
        if _process_alive(int(pid), since):
            continue
        try:
            if storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                failed.append(t)
        except optuna.exceptions.UpdateFinishedTrialError:  # another worker failed it first
            continue
    if not failed:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retried = {n for t in study.get_trials(deepcopy=False)
                   for n in RetryHeartbeatStaleTrialCallback.retry_history(t)}
    for t in failed:
        log.warning("trial %d: its worker %s is gone (this storage has no heartbeats); "
                    "set it to FAIL", t.number, t.user_attrs.get("worker"))
        frozen = storage.get_trial(t._trial_id)
        if frozen.state != TrialState.FAIL or t.number in retried:
            continue
        # as RetryHeartbeatStaleTrialCallback, without the dead worker's ``worker``
        # attribute: the retry must not look orphaned before its new worker stamps it
        history = [*frozen.system_attrs.get("retry_history", []), frozen.number]
        if max_retry is not None and max_retry < len(history):
            continue
        system_attrs = {**frozen.system_attrs, "retry_history": history,
                        "failed_trial": frozen.system_attrs.get("failed_trial",
                                                                frozen.number)}
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, params=frozen.params,
            distributions=frozen.distributions,
            user_attrs={k: v for k, v in frozen.user_attrs.items() if k != "worker"},
            system_attrs=system_attrs))
        log.warning("trial %d: queued a retry with the same parameters", t.number)
    return [t.number for t in failed]


def _heartbeats(study) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return bool(is_heartbeat_enabled(study._storage))


def _counts(study) -> dict[str, int]:
    out = {"COMPLETE": 0, "RUNNING": 0, "WAITING": 0, "PRUNED": 0, "FAIL": 0}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def optimize_until(study, objective: Callable[[Any], Any], n_trials: int, *,
                   timeout: float | None = None, callbacks: Sequence[Callable] = (),
                   poll_s: float = 1.0, max_consecutive_failures: int = 5,
                   max_retry: int | None = MAX_RETRY) -> dict[str, int]:
    """Run trials until the study holds ``n_trials`` COMPLETE trials (shared by all workers).

    Any number of processes may run this loop on one study. Before each trial a worker
    fails heartbeat-stale trials (their retry is queued as WAITING by the storage's
    callback, see :func:`workbench.tuning.resolve_storage`). In a storage without
    heartbeats (a journal file, or SQLite opened with ``heartbeat_interval=None``) it
    instead fails the RUNNING trials whose worker was a process of this host that is gone
    (a killed kernel) and queues their retries the same way; RUNNING trials of other
    hosts cannot be judged there and are waited for. It starts a new trial only
    while ``complete + running < n_trials`` or a retry is waiting, and otherwise waits for
    the running trials, because one of them may still die and need its retry. A trial
    that starts when enough earlier trials are already complete or running (a race
    between workers) is pruned as surplus at once, so the study ends with exactly
    ``n_trials`` complete trials.

    Parameters
    ----------
    study : optuna.study.Study
    objective : callable
        ``objective(trial) -> value(s)``.
    n_trials : int
        Target number of COMPLETE trials in the study (not per call): re-running after an
        interruption continues where the study stopped.
    timeout : float, optional
        Stop starting trials after this many seconds.
    callbacks : sequence of callable
        Optuna ``callback(study, frozen_trial)`` after each trial of this process.
    poll_s : float, default 1.0
        Seconds between checks while waiting for other workers' trials.
    max_consecutive_failures : int, default 5
        A trial whose objective raises an exception or returns NaN is recorded as FAIL
        and the loop goes on (a KeyboardInterrupt still stops it); raise after this many
        failed trials in a row in this process.
    max_retry : int or None, default 3
        Retries of a trial whose dead worker is found without heartbeats (see above;
        with heartbeats the storage's callback decides).

    Returns
    -------
    dict
        Trial counts per state at the end.

    Raises
    ------
    ValueError
        If ``n_trials`` is not a positive integer.
    RuntimeError
        After ``max_consecutive_failures`` failed trials in a row; the message names the
        last failed trial and its exception, which is chained as ``__cause__``.
    """
    import optuna
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    _quiet_optuna()
    deadline = None if timeout is None else time.monotonic() + float(timeout)
    failures = [0]
    last_reason = [""]
    error: list[BaseException | None] = [None]  # exception of the trial in progress
    last_error: list[BaseException | None] = [None]

    def gated(trial):
        error[0] = None
        # first: a RUNNING trial without heartbeats is judged alive by its worker's pid
        trial.set_user_attr("worker", _worker_id())
        ahead = 0
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,
                                                          TrialState.RUNNING)):
            if t.state == TrialState.COMPLETE or t.number < trial.number:
                ahead += 1
        if ahead >= n_trials:
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned(f"surplus: {ahead} earlier trials already fill the "
                                     f"study's {n_trials}")
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as exc:  # recorded as FAIL by Optuna (catch=Exception below)
            error[0] = exc
            raise

    def watch(st, frozen):
        if frozen.state == TrialState.FAIL:
            failures[0] += 1
            last_error[0] = error[0]
            why = frozen.user_attrs.get("fail_reason")
            last_reason[0] = (f"trial {frozen.number}: {error[0]!r}" if error[0] is not None
                              else f"trial {frozen.number}: {why}" if why
                              else f"trial {frozen.number} returned no finite value(s)")
        elif frozen.state == TrialState.COMPLETE:
            failures[0] = 0

    warned = False
    while True:
        fail_stale_trials(study)
        c = _counts(study)
        if c["RUNNING"] and _fail_orphaned_trials(study, max_retry):
            c = _counts(study)
        if c["COMPLETE"] >= n_trials:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        if failures[0] >= max_consecutive_failures:
            raise RuntimeError(f"{failures[0]} trials in a row failed in this worker; last "
                               f"reason: {last_reason[0]}") from last_error[0]
        if c["WAITING"] == 0 and c["COMPLETE"] + c["RUNNING"] >= n_trials:
            if not warned and not _heartbeats(study):
                warned = True
                log.warning(
                    "study %r: waiting for %d RUNNING trial(s) to reach %d complete ones; "
                    "this storage has no heartbeats, so a trial whose worker on another "
                    "host died stays RUNNING (use PostgreSQL, or SQLite with heartbeats, "
                    "for many machines)", study.study_name, c["RUNNING"], n_trials)
            time.sleep(poll_s)  # the running trials may still fail and need a retry
            continue
        study.optimize(gated, n_trials=1, callbacks=[watch, *callbacks], catch=(Exception,))
    return _counts(study)


# -- public API --------------------------------------------------------------------------
def _open_storage(storage: Any, heartbeat_interval, grace_period, max_retry,
                  create: bool = True):
    return resolve_storage(storage, heartbeat_interval=heartbeat_interval,
                           grace_period=grace_period, max_retry=max_retry, create=create)


def load_study(study_name: str, storage: Any = None, *, heartbeat_interval: int | None =
               HEARTBEAT_INTERVAL, grace_period: int | None = GRACE_PERIOD,
               max_retry: int = MAX_RETRY, create: bool = False):
    """Load an existing study by name.

    Parameters
    ----------
    study_name : str
    storage : None, str or optuna storage
        See :func:`workbench.tuning.resolve_storage` (None: the SQLite default).
    heartbeat_interval, grace_period, max_retry
        Heartbeat settings of this process's storage connection.
    create : bool, default False
        False: a SQLite or journal file that does not exist is a :class:`StorageError`
        (a mistyped path leaves no empty database behind; loading from a new file could
        never find the study anyway). True creates it empty first, as ``tune`` does.

    Returns
    -------
    optuna.study.Study

    Raises
    ------
    StorageError
        If the storage cannot be opened, or (``create=False``, the default) its file does
        not exist.
    ValueError
        If no study of that name exists there (the existing names are listed).
    """
    import optuna

    _quiet_optuna()
    st = _open_storage(storage, heartbeat_interval, grace_period, max_retry, create=create)
    try:
        return optuna.load_study(study_name=study_name, storage=st)
    except KeyError as exc:
        names = [s.study_name for s in optuna.get_all_study_summaries(st)]
        where = mask_url(storage) if isinstance(storage, str) else "the storage"
        raise ValueError(f"no study {study_name!r} in {where}; studies there: {names}") from exc


def _prepare(model_factory, space, *, data, objectives, n_trials, storage, study_name,
             test_start, n_folds, valid_fraction, embargo, fixed, pruner, sampler, seed,
             target_vol, cost_bps, heartbeat_interval, grace_period, max_retry):
    import optuna

    _quiet_optuna()
    objectives = check_objectives(objectives)
    single = len(objectives) == 1
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    fixed = dict(fixed or {})
    if "progress" not in fixed and _takes(model_factory, "progress"):
        fixed["progress"] = False
    parsed = parse_space(default_space(model_factory) if space is None else space)
    # a model that stops early on its own validation Sharpe scores it with the study's
    # costs and vol target, so early stopping and the pruner see the Sharpe the trial is
    # ranked by (net of costs), not the gross one
    for key, value in (("cost_bps", cost_bps), ("target_vol", target_vol)):
        if key not in fixed and key not in parsed and _takes(model_factory, key):
            fixed[key] = float(value)
    validate_space(parsed, model_factory, fixed)
    pruner_obj = _pruner(pruner, single)
    dataset, spec = _data_spec(data)
    folds = tuning_folds(dataset.index, test_start=test_start, n_folds=n_folds,
                         valid_fraction=valid_fraction, embargo=embargo)
    # tuning_folds leaves at least one test row (it refuses a test_start after the data)
    test_ts = dataset.index[folds[-1].valid.stop + embargo]
    model_name = getattr(model_factory, "__name__", "model")
    name = study_name or f"{model_name}-{'+'.join(objectives)}"
    task = {
        "format": TASK_FORMAT,
        "model": _class_path(model_factory),
        "fixed": fixed if _jsonable(fixed) else None,
        "space": space_to_json(parsed),
        "data": spec,
        "data_hash": dataset.data_hash,
        "folds": {"test_start": test_ts.isoformat(),
                  "n_folds": n_folds, "valid_fraction": float(valid_fraction),
                  "embargo": int(embargo)},
        "objectives": objectives,
        "pruner": pruner if isinstance(pruner, str) or pruner is None else "custom",
        "target_vol": float(target_vol),
        "cost_bps": float(cost_bps),
    }
    st = _open_storage(storage, heartbeat_interval, grace_period, max_retry)
    study = optuna.create_study(
        storage=st, study_name=name, load_if_exists=True,
        directions=[OBJECTIVES[n] for n in objectives],
        sampler=sampler or _sampler(single, seed), pruner=pruner_obj)
    old = study.user_attrs.get(TASK_ATTR)
    if old is not None:
        diff = _task_differences(old, task)
        if diff:
            raise ValueError(f"study {name!r} already exists with a different task (differs "
                             f"in {diff}); pass another study_name to start a new one")
    if sampler is None:  # a resumed study must not re-draw the points it already has
        study.sampler = _sampler(single, _resume_seed(seed, study))
    study.set_user_attr(TASK_ATTR, {**task, "n_trials": n_trials})
    study.set_user_attr(OBJECTIVES_ATTR, objectives)
    objective = WalkForwardObjective(model_factory, parsed, dataset, folds, objectives,
                                     fixed=fixed, target_vol=target_vol, cost_bps=cost_bps)
    return study, objective, folds, test_ts


def create_study(model_factory: Any, space: Mapping[str, Any] | None = None, *,
                 data: Any = "daily", objectives: str | Sequence[str] = ("sharpe",),
                 n_trials: int = 30, storage: Any = None, study_name: str | None = None,
                 test_start: Any = None, n_folds: int = 3, valid_fraction: float = 0.3,
                 embargo: int = 1, fixed: Mapping[str, Any] | None = None,
                 pruner: Any = "median", seed: int | None = 0, target_vol: float = 0.15,
                 cost_bps: float = 0.0):
    """Create (or check and load) a study and its task without running any trial.

    For many machines: create once, then start ``workbench tune worker --study NAME
    --storage URL`` anywhere. Arguments as in :func:`tune`.

    Returns
    -------
    optuna.study.Study

    Raises
    ------
    ValueError, StorageError
        As :func:`tune`.
    """
    study, _, _, _ = _prepare(
        model_factory, space, data=data, objectives=objectives, n_trials=n_trials,
        storage=storage, study_name=study_name, test_start=test_start, n_folds=n_folds,
        valid_fraction=valid_fraction, embargo=embargo, fixed=fixed, pruner=pruner,
        sampler=None, seed=seed, target_vol=target_vol, cost_bps=cost_bps,
        heartbeat_interval=None, grace_period=None, max_retry=MAX_RETRY)
    return study


def tune(
    model_factory: Any,
    space: Mapping[str, Any] | None = None,
    *,
    data: Any = "daily",
    objectives: str | Sequence[str] = ("sharpe",),
    n_trials: int = 30,
    storage: Any = None,
    study_name: str | None = None,
    test_start: Any = None,
    n_folds: int = 3,
    valid_fraction: float = 0.3,
    embargo: int = 1,
    fixed: Mapping[str, Any] | None = None,
    pruner: Any = "median",
    sampler: Any = None,
    seed: int | None = 0,
    timeout: float | None = None,
    target_vol: float = 0.15,
    cost_bps: float = 0.0,
    refit: bool = True,
    save_to: str | Path | None = None,
    choose: int | None = None,
    callbacks: Sequence[Callable] = (),
    progress: bool = True,
    heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
    grace_period: int | None = GRACE_PERIOD,
    max_retry: int = MAX_RETRY,
) -> TuningResult:
    """Tune a model (or baseline) on purged walk-forward validation folds with Optuna.

    One objective (e.g. validation Sharpe): TPE sampling, with pruning on the per-epoch
    validation Sharpe when the objective is maximised. Several (e.g.
    ``("sharpe", "max_drawdown", "turnover")``): NSGA-II, and :attr:`TuningResult.pareto`
    holds the non-dominated trials. Objectives are computed on validation blocks before
    ``test_start`` only (see :func:`workbench.tuning.tuning_folds`); the test period is
    never scored.

    The study lives in ``storage`` under ``study_name`` together with a JSON task
    (model, fixed arguments, space, data, folds, objectives), so re-running ``tune``
    after a kernel restart resumes it, and ``workbench tune worker --study NAME
    --storage URL`` processes on other machines join it (PostgreSQL). ``n_trials`` is
    the number of COMPLETE trials the study should end with, counted over all workers.

    Parameters
    ----------
    model_factory : class or callable
        A model class of the zoo (``DeepMomentumLSTM``, ``MomentumTransformer``, ...),
        a baseline (``TSMOMStrategy``, ``MACDStrategy``) or ``factory(**params) ->
        estimator`` with ``fit(dataset, train, valid, callbacks=...)`` and ``predict``.
        Workers can join only when it is a class they can import.
    space : mapping, optional
        Search space (see :func:`workbench.tuning.parse_space`); default
        :func:`workbench.tuning.default_space` of the model class.
    data : MomentumDataset, Bars, str or dict, default "daily"
        The data: a bundled universe name or ``{"universe", "start", "end"}`` (workers
        rebuild it and check its hash), or an in-memory dataset/panel (this process only).
    objectives : str or sequence of str, default ("sharpe",)
        Names in :data:`workbench.tuning.OBJECTIVES`.
    n_trials : int, default 30
        COMPLETE trials the study should hold at the end.
    storage : None, str or optuna storage
        None: SQLite in the project's data directory; or any URL accepted by
        :func:`workbench.tuning.resolve_storage` (``postgresql://...`` for many workers).
    study_name : str, optional
        Default ``"<Model>-<objectives>"``. An existing study of that name is resumed
        if its task matches; a different task is an error (nothing stored is changed).
    test_start : str or Timestamp, optional
        Start of the untouched test period (default: the last 20 % of rows); within the
        data (after its first timestamp, at most its last).
    n_folds, valid_fraction, embargo
        Validation folds (see :func:`workbench.tuning.tuning_folds`).
    fixed : mapping, optional
        Constructor arguments for every trial (e.g. ``{"epochs": 20}``).
    pruner : {"median", "hyperband", "none"} or optuna pruner, default "median"
        Used with one maximised objective only (it prunes on the per-epoch validation
        Sharpe, see :class:`workbench.tuning.WalkForwardObjective`).
    sampler : optuna sampler, optional
        Default TPE (one objective) or NSGA-II (several), seeded with ``seed``.
    seed : int or None, default 0
        Seed of the default sampler; a resumed study seeds it with ``seed`` mixed with
        the number of trials already stored, so it does not propose its first points
        again.
    timeout : float, optional
        Seconds after which no new trial starts.
    target_vol, cost_bps : float
        Sizing (annualised vol target) and costs (bps of vol-scaled turnover) of the
        validation metrics. Also given to a model that takes them (the zoo's early
        stopping and the per-epoch Sharpe the pruner sees are then net of the same costs)
        unless ``fixed`` or the space names them.
    refit : bool, default True
        Re-fit the chosen trial on the last fold's training rows (every pre-test row before
        the last validation block and its embargo; early stopping on that validation
        block) and save it to the registry.
    save_to : str or Path, optional
        Registry folder; default ``<data_dir>/models/<study_name>/trial-<n>``.
        Rule-based baselines are re-fitted but not saved (the registry holds models).
        An earlier save of the same trial (same study, parameters and data) there is
        replaced; anything else there is never overwritten (``FileExistsError``).
    choose : int, optional
        Trial number to re-fit; default the best trial, or for several objectives the
        Pareto trial with the best first objective (the earliest trial among ties).
    callbacks : sequence of callable
        Optuna ``callback(study, frozen_trial)`` after each trial.
    progress : bool, default True
        tqdm bar of completed trials.
    heartbeat_interval, grace_period, max_retry
        Dead-worker detection (see :func:`workbench.tuning.resolve_storage`).

    Returns
    -------
    TuningResult

    Raises
    ------
    ValueError
        Bad search space (names the parameter), unknown objective, bad data, fold
        arguments that :func:`workbench.tuning.tuning_folds` refuses (e.g. a
        ``test_start`` after the data's last timestamp), a study of the same name with a
        different task, or no completed trial to choose from.
    StorageError
        Storage URL that cannot be used.
    FileExistsError
        If ``save_to`` (or the default folder) holds something other than an earlier
        save of the chosen trial; the study and its trials are kept.
    """
    study, objective, folds, test_ts = _prepare(
        model_factory, space, data=data, objectives=objectives, n_trials=n_trials,
        storage=storage, study_name=study_name, test_start=test_start, n_folds=n_folds,
        valid_fraction=valid_fraction, embargo=embargo, fixed=fixed, pruner=pruner,
        sampler=sampler, seed=seed, target_vol=target_vol, cost_bps=cost_bps,
        heartbeat_interval=heartbeat_interval, grace_period=grace_period, max_retry=max_retry)
    name = study.study_name
    bar_cb: list[Callable] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        done = _counts(study)["COMPLETE"]
        bar = tqdm(total=n_trials, initial=min(done, n_trials), desc=f"tuning {name}")

        def tick(st_, frozen):
            bar.n = min(_counts(st_)["COMPLETE"], n_trials)
            bar.refresh()

        bar_cb = [tick]
    try:
        optimize_until(study, objective, n_trials, timeout=timeout,
                       callbacks=[*bar_cb, *callbacks], max_retry=max_retry)
    finally:
        if bar is not None:
            bar.close()
    result = _summarise(study, choose)
    result.folds, result.test_start = folds, test_ts
    if refit:
        result.model, result.model_path = _refit(study, objective, result.best_trial, folds,
                                                 objective.dataset, save_to, name)
    return result


def _takes(factory: Any, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def _summarise(study, choose: int | None) -> TuningResult:
    from optuna.trial import TrialState

    table = trials_table(study)
    front = pareto_front(study)
    names = list(study.user_attrs.get(OBJECTIVES_ATTR) or [])
    if front.empty:
        raise ValueError(f"study {study.study_name!r} has no completed trial to choose from")
    if choose is None:
        number = int(front.iloc[0]["number"])
    else:
        done = {t.number for t in study.get_trials(deepcopy=False,
                                                   states=(TrialState.COMPLETE,))}
        if choose not in done:
            raise ValueError(f"choose={choose!r} is not a completed trial of "
                             f"{study.study_name!r}")
        number = int(choose)
    trial = study.trials[number]
    if not names:
        names = ["value"] if len(trial.values) == 1 else [f"value_{i}"
                                                         for i in range(len(trial.values))]
    return TuningResult(study=study, trials=table, pareto=front, best_trial=number,
                        best_params=dict(trial.params),
                        best_values=dict(zip(names, map(float, trial.values))))


def _refit(study, objective: WalkForwardObjective, number: int, folds: Sequence[TuningFold],
           dataset, save_to, name: str):
    """Fit the chosen trial on every pre-test row; save it with the trial on its card."""
    from workbench.models._registry import ALLOWED_CLASSES, save_model

    from ._storage import data_dir

    trial = study.trials[number]
    model = objective.build(dict(trial.params))
    target: Path | None = None
    if type(model).__name__ in ALLOWED_CLASSES:
        target = Path(save_to) if save_to is not None else (
            data_dir() / "models" / _safe(name) / f"trial-{number}")
        _check_replaceable(target, study.study_name, number, dict(trial.params),
                           dataset.data_hash)
    last = folds[-1]
    model.fit(dataset, last.train, last.valid)
    path = None
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        names = list(study.user_attrs.get(OBJECTIVES_ATTR) or [])
        extra = {"tuning": {"study": study.study_name, "trial": number,
                            "objectives": dict(zip(names, map(_finite, trial.values))),
                            "params": dict(trial.params),
                            "test_start": study.user_attrs.get(TASK_ATTR, {}).get(
                                "folds", {}).get("test_start")}}
        path = save_model(model, target, dataset=dataset, overwrite=True, extra=extra)
    return model, path


def _check_replaceable(target: Path, study_name: str, number: int, params: dict[str, Any],
                       data_hash: str) -> None:
    """Refuse to replace a saved model at ``target`` that is not this trial's re-fit.

    Re-fitting the same trial of the same study on the same data replaces its earlier
    save; anything else there (another model, another study or trial, other data) is kept.

    Raises
    ------
    FileExistsError
        If ``target`` exists and does not hold a save of this very trial.
    """
    if not (target.exists() or target.is_symlink()):
        return
    from workbench.models import read_card

    try:
        card = read_card(target)
    except (OSError, ValueError):
        card = {}
    tuning = card.get("tuning") if isinstance(card, dict) else None
    window = card.get("training_window") if isinstance(card, dict) else None
    same = (isinstance(tuning, dict) and tuning.get("study") == study_name
            and tuning.get("trial") == number and tuning.get("params") == params
            and isinstance(window, dict) and window.get("data_hash") == data_hash)
    if not same:
        what = (f"trial {tuning.get('trial')} of study {tuning.get('study')!r}"
                if isinstance(tuning, dict) else "something that is not a re-fit of a trial")
        raise FileExistsError(
            f"{target} already holds {what}; not replacing it with trial {number} of study "
            f"{study_name!r} (the study is kept): pass another save_to, e.g. to "
            "workbench.tuning.refit_trial"
        )


def _finite(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _objective_from_task(task: Mapping[str, Any], *, allow_import: Sequence[str] = (),
                         dataset=None) -> tuple[WalkForwardObjective, list[TuningFold]]:
    if not isinstance(task, Mapping) or task.get("format") != TASK_FORMAT:
        raise ValueError(f"the study has no {TASK_FORMAT} task; create it with "
                         "workbench.tuning.tune first")
    if task.get("model") is None:
        raise ValueError("the study's model factory is not an importable class, so only the "
                         "process that created it can run its trials")
    if task.get("fixed") is None:
        raise ValueError("the study's fixed arguments are not JSON; workers cannot join it")
    factory = _import_model(task["model"], allow_import)
    if dataset is None:
        if task.get("data") is None:
            raise ValueError("the study was created with an in-memory dataset; workers need "
                             "data='universe' or {'universe', 'start', 'end'} in tune()")
        dataset = _load_data(task["data"])
    if task.get("data_hash") and dataset.data_hash != task["data_hash"]:
        raise ValueError(f"data hash {dataset.data_hash} differs from the study's "
                         f"{task['data_hash']}: this machine's bundled data is not the same")
    f = task["folds"]
    if f["test_start"]:
        folds = tuning_folds(dataset.index, test_start=f["test_start"], n_folds=f["n_folds"],
                             valid_fraction=f["valid_fraction"], embargo=f["embargo"])
    else:  # stored before tuning_folds refused a test_start after the data: every row
        folds = _folds_before(dataset.index, len(dataset.index), n_folds=f["n_folds"],
                              valid_fraction=f["valid_fraction"], embargo=f["embargo"])
    objective = WalkForwardObjective(factory, space_from_json(task["space"]), dataset, folds,
                                     task["objectives"], fixed=task["fixed"],
                                     target_vol=task["target_vol"], cost_bps=task["cost_bps"])
    return objective, folds


def run_worker(study_name: str, storage: Any, n_trials: int | None = None, *,
               timeout: float | None = None, allow_import: Sequence[str] = (),
               seed: int | None = None, heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
               grace_period: int | None = GRACE_PERIOD, max_retry: int = MAX_RETRY,
               callbacks: Sequence[Callable] = ()) -> dict[str, int]:
    """Join an existing study and run trials until it holds ``n_trials`` complete ones.

    This is what ``workbench tune worker`` runs; start it on as many machines as you
    like with the same PostgreSQL URL. The objective is rebuilt from the study's stored
    task (model class, space, data spec, folds, objectives).

    Parameters
    ----------
    study_name : str
        Name given to :func:`tune` (or its default ``"<Model>-<objectives>"``).
    storage : str or optuna storage
        Same storage the study was created in.
    n_trials : int, optional
        Target COMPLETE trials of the study; default the number stored by :func:`tune`.
    timeout : float, optional
        Seconds after which this worker starts no new trial.
    allow_import : sequence of str
        Extra module prefixes whose classes the task may name (e.g. your own models);
        by default only the workbench zoo and baselines are imported.
    seed : int, optional
        Sampler seed of this worker (default: derived from the process id, so workers
        do not propose the same first points); mixed with the number of trials already
        in the study, as in :func:`tune`.
    heartbeat_interval, grace_period, max_retry
        Dead-worker detection (see :func:`workbench.tuning.resolve_storage`).
    callbacks : sequence of callable
        Optuna ``callback(study, frozen_trial)`` after each trial of this worker.

    Returns
    -------
    dict
        Trial counts per state when the worker stops.

    Raises
    ------
    ValueError
        Unknown study, a study without a task workers can run, a model class that is
        not allowed, or data whose hash differs from the study's.
    StorageError
        Storage URL that cannot be used, or a SQLite/journal file that does not exist
        (a worker joins an existing study and never creates the file).
    """
    import optuna

    study = load_study(study_name, storage, heartbeat_interval=heartbeat_interval,
                       grace_period=grace_period, max_retry=max_retry, create=False)
    task = study.user_attrs.get(TASK_ATTR)
    objective, _ = _objective_from_task(task, allow_import=allow_import)
    single = len(objective.objectives) == 1
    seed = _resume_seed(seed if seed is not None else os.getpid(), study)
    study = optuna.load_study(study_name=study_name, storage=study._storage,
                              sampler=_sampler(single, seed),
                              pruner=_pruner(task.get("pruner", "median")
                                             if task.get("pruner") != "custom" else "median",
                                             single))
    target = int(n_trials if n_trials is not None else task.get("n_trials", 1))
    return optimize_until(study, objective, target, timeout=timeout, callbacks=callbacks,
                          max_retry=max_retry)


def refit_trial(study, number: int | None = None, *, dataset=None, save_to=None,
                allow_import: Sequence[str] = ()) -> tuple[Any, Path | None]:
    """Re-fit a trial of a study (default: the best / first Pareto trial) and save it.

    Parameters
    ----------
    study : optuna.study.Study
        A study created by :func:`tune` (its stored task rebuilds model and folds).
    number : int, optional
        Completed trial to re-fit, e.g. one picked from the Pareto table.
    dataset : MomentumDataset, optional
        Needed when the study was created with an in-memory dataset.
    save_to : str or Path, optional
        Registry folder (default ``<data_dir>/models/<study>/trial-<n>``).
    allow_import : sequence of str
        As in :func:`run_worker`.

    Returns
    -------
    (estimator, pathlib.Path or None)
        The fitted model and its registry folder (None for rule-based baselines).

    Raises
    ------
    ValueError
        If ``number`` is not a completed trial or the task cannot be rebuilt.
    FileExistsError
        If ``save_to`` holds something other than an earlier save of this trial.
    """
    chosen = _summarise(study, number)
    objective, folds = _objective_from_task(study.user_attrs.get(TASK_ATTR),
                                            allow_import=allow_import, dataset=dataset)
    return _refit(study, objective, chosen.best_trial, folds, objective.dataset, save_to,
                  study.study_name)
