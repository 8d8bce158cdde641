import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from tests.models.conftest import synthetic_dataset
from tests.tuning.fakes import CraftedModel
from workbench.models import LinearModel, read_card
from workbench.tuning import (
    StorageError,
    TSMOMStrategy,
    create_study,
    load_study,
    resolve_storage,
    trials_table,
    tune,
)
from workbench.tuning._tables import is_non_dominated

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_single_objective_tpe_prunes_a_crafted_objective(data_dir):
    ds = synthetic_dataset(T=500, N=2)
    res = tune(CraftedModel, {"quality": (-1.0, 1.0)}, data=ds, n_trials=16,
               fixed={"epochs": 5}, n_folds=2, refit=False, progress=False)
    states = res.trials["state"].value_counts()
    assert states["COMPLETE"] == 16
    assert states.get("PRUNED", 0) >= 3  # the median pruner stops the poor ones
    pruned = res.trials[res.trials.state == "PRUNED"]
    complete = res.trials[res.trials.state == "COMPLETE"]
    assert pruned["params_quality"].max() < complete["params_quality"].max()
    assert (pruned["pruned_at"] >= 3).all()  # warm-up steps are never pruned
    assert res.best_trial == int(complete.loc[complete.sharpe.idxmax(), "number"])
    assert res.best_values["sharpe"] == pytest.approx(complete.sharpe.max())
    # the default storage is the SQLite file in the data directory
    assert (data_dir / "tuning" / "studies.db").exists()
    assert res.study.study_name == "CraftedModel-sharpe"


def test_no_pruner_prunes_nothing(data_dir):
    res = tune(CraftedModel, {"quality": (-1.0, 1.0)}, data=synthetic_dataset(T=500, N=2),
               n_trials=10, fixed={"epochs": 5}, n_folds=2, pruner="none", refit=False,
               progress=False)
    assert set(res.trials.state) == {"COMPLETE"}


def test_multi_objective_pareto_front_is_non_dominated(data_dir):
    ds = synthetic_dataset(T=600, N=3)
    res = tune(CraftedModel, {"quality": (-3.0, 3.0), "epochs": (1, 3)}, data=ds,
               objectives=("sharpe", "max_drawdown", "turnover"), n_trials=20, n_folds=2,
               refit=False, progress=False)
    assert isinstance(res.study.sampler, optuna.samplers.NSGAIISampler)
    front, table = res.pareto, res.trials
    assert len(front) >= 1 and (front.state == "COMPLETE").all()
    names = ["sharpe", "max_drawdown", "turnover"]
    v = table[names].to_numpy()
    sign = np.array([-1.0, 1.0, 1.0])  # minimise all
    fv = front[names].to_numpy() * sign
    for row in fv:  # nothing in the study dominates a front member
        dom = (v * sign <= row).all(axis=1) & (v * sign < row).any(axis=1)
        assert not dom.any()
    outside = table[~table.number.isin(front.number)][names].to_numpy() * sign
    for row in outside:  # everything else is dominated by some front member
        assert ((fv <= row).all(axis=1) & (fv < row).any(axis=1)).any()
    assert front.sharpe.is_monotonic_decreasing
    assert res.best_trial == int(front.iloc[0]["number"])


def test_is_non_dominated_small_cases():
    # maximise the first, minimise the second: trade-offs survive, duplicates both stay
    v = np.array([[1.0, 1.0], [2.0, 2.0], [0.5, 0.5], [1.0, 1.0], [0.9, 1.5]])
    assert is_non_dominated(v, np.array([True, False])).tolist() == [True, True, True, True,
                                                                     False]
    assert is_non_dominated(v, np.array([True, True])).tolist() == [False, True, False, False,
                                                                    False]
    with pytest.raises(ValueError, match="2-D"):
        is_non_dominated(np.ones(3), np.array([True]))


def test_resume_after_a_killed_kernel_with_the_sqlite_default(tmp_path, monkeypatch):
    """A process dies in the middle of a trial; tune() again finishes the same study."""
    env = {**os.environ, "WORKBENCH_DATA_DIR": str(tmp_path), "CRAFTED_DIE_AT_FIT": "7",
           "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    script = (
        "from tests.models.conftest import synthetic_dataset\n"
        "from tests.tuning.fakes import CraftedModel\n"
        "from workbench.tuning import tune\n"
        "tune(CraftedModel, {'quality': (-1.0, 1.0)}, data=synthetic_dataset(T=500, N=2),\n"
        "     n_trials=8, n_folds=2, fixed={'epochs': 4}, pruner='none', refit=False,\n"
        "     progress=False, heartbeat_interval=1, grace_period=2)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, timeout=120,
                          capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr  # SIGKILL in the 7th fit = 4th trial
    # (monkeypatch restores the caller's WORKBENCH_DATA_DIR, e.g. make test's temp dir:
    # deleting it sent every later test and notebook to the checkout's .workbench)
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path))
    study = load_study("CraftedModel-sharpe", heartbeat_interval=None)
    first = {t.number: (t.params, t.values) for t in study.trials
             if t.state.name == "COMPLETE"}
    assert len(first) == 3
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3 + ["RUNNING"]
    res = tune(CraftedModel, {"quality": (-1.0, 1.0)}, data=synthetic_dataset(T=500, N=2),
               n_trials=8, n_folds=2, fixed={"epochs": 4}, pruner="none", refit=False,
               progress=False, heartbeat_interval=1, grace_period=2)
    t = res.trials
    assert (t.state == "COMPLETE").sum() == 8
    for number, (params, values) in first.items():  # nothing completed is lost or changed
        row = t[t.number == number].iloc[0]
        assert row.state == "COMPLETE" and row.sharpe == values[0]
        assert row.params_quality == params["quality"]
    assert t.loc[t.number == 3, "state"].item() == "FAIL"  # the trial running at the kill
    retry = t[t.retry_of == 3]
    assert len(retry) == 1 and retry.state.item() == "COMPLETE"
    assert retry.params_quality.item() == t.loc[t.number == 3, "params_quality"].item()


def test_a_different_task_under_the_same_name_is_refused_and_nothing_is_lost(data_dir):
    ds = synthetic_dataset(T=500, N=2)
    tune(CraftedModel, {"quality": (-1.0, 1.0)}, data=ds, n_trials=3, n_folds=2,
         fixed={"epochs": 2}, refit=False, progress=False, study_name="s")
    with pytest.raises(ValueError, match=r"study 's' already exists with a different task "
                                         r"\(differs in \['space'\]\)"):
        tune(CraftedModel, {"quality": (-2.0, 1.0)}, data=ds, n_trials=3, n_folds=2,
             fixed={"epochs": 2}, refit=False, progress=False, study_name="s")
    assert (trials_table(load_study("s")).state == "COMPLETE").sum() == 3
    # more trials of the same task continue the study
    res = tune(CraftedModel, {"quality": (-1.0, 1.0)}, data=ds, n_trials=5, n_folds=2,
               fixed={"epochs": 2}, refit=False, progress=False, study_name="s")
    assert (res.trials.state == "COMPLETE").sum() == 5 and len(res.trials) == 5


@pytest.mark.parametrize("url, exc, match", [
    ("mysql://u:secret@host/db", StorageError, r"unsupported storage 'mysql://u:\*\*\*@host"),
    ("sqlite:////no/such/folder/x.db", StorageError, "folder /no/such/folder does not exist"),
    ("journal:///no/such/folder/x.log", StorageError, "folder /no/such/folder does not exist"),
    ("postgresql://u:secret@127.0.0.1:1/db", StorageError,
     r"cannot open storage 'postgresql\+psycopg2://u:\*\*\*@127.0.0.1:1/db'"),
    ("", StorageError, "must be a URL"),
    ("sqlite:///", StorageError, r"names no file: use sqlite:///path"),  # not in memory
    ("sqlite:////tmp", StorageError, "names a folder"),
    ("journal:", StorageError, "names a folder"),  # was an IsADirectoryError
    ("journal:///tmp", StorageError, "names a folder"),
    (42, StorageError, "must be a URL"),
])
def test_bad_storage_urls_give_clear_errors(url, exc, match):
    with pytest.raises(exc, match=match) as info:
        resolve_storage(url)
    assert "secret" not in str(info.value)


def test_journal_and_sqlite_storages_both_hold_a_study(tmp_path):
    for url in (f"sqlite:///{tmp_path}/a.db", str(tmp_path / "b.log")):
        study = create_study(TSMOMStrategy, data={"universe": "daily", "start": "2004-01-01",
                                                  "end": "2010-12-31"},
                             storage=url, study_name="ts", n_trials=2)
        again = load_study("ts", url)
        assert again.user_attrs["workbench_task"]["model"].endswith("TSMOMStrategy")
        assert study.study_name == "ts"
    with pytest.raises(ValueError, match=r"no study 'nope' .*studies there: \['ts'\]"):
        load_study("nope", f"sqlite:///{tmp_path}/a.db")


def test_bad_arguments_are_clear(data_dir):
    ds = synthetic_dataset(T=500, N=2)
    with pytest.raises(ValueError, match="unknown objective 'sharp'"):
        tune(CraftedModel, {"quality": (-1.0, 1.0)}, data=ds, objectives="sharp")
    with pytest.raises(ValueError, match="n_trials must be an integer >= 1"):
        tune(CraftedModel, {"quality": (-1.0, 1.0)}, data=ds, n_trials=0)
    with pytest.raises(ValueError, match="'quality'.*rejects the value 20.0"):
        tune(CraftedModel, {"quality": (-1.0, 20.0)}, data=ds)
    with pytest.raises(ValueError, match="pruner must be"):
        tune(CraftedModel, {"quality": (-1.0, 1.0)}, data=ds, pruner="aggressive")
    with pytest.raises(ValueError, match="data must be"):
        tune(CraftedModel, {"quality": (-1.0, 1.0)}, data=3.0)
    assert not (data_dir / "tuning" / "studies.db").exists() or not optuna.get_all_study_names(
        f"sqlite:///{data_dir}/tuning/studies.db")


def test_baseline_strategy_is_tunable_on_real_data(data_dir):
    res = tune(TSMOMStrategy, data={"universe": "daily", "start": "2000-01-01",
                                    "end": "2012-12-31"}, n_trials=5, progress=False)
    assert (res.trials.state == "COMPLETE").sum() == 5
    assert 21 <= res.best_params["lookback"] <= 252
    assert res.model.lookback == res.best_params["lookback"]
    assert res.model_path is None  # rule-based: re-fitted, not saved to the model registry
    assert res.test_start is not None and res.folds[-1].valid_end < res.test_start


@pytest.mark.slow
def test_best_trial_refits_and_saves_with_the_trial_number_on_its_card(data_dir):
    res = tune(LinearModel, data={"universe": "daily", "start": "2004-01-01",
                                  "end": "2012-12-31"}, n_trials=3, fixed={"epochs": 2},
               progress=False)
    card = read_card(res.model_path)
    assert card["tuning"]["trial"] == res.best_trial
    assert card["tuning"]["study"] == "LinearModel-sharpe"
    assert card["tuning"]["params"] == res.best_params
    assert card["params"]["lr"] == res.best_params["lr"]
    assert res.model_path == data_dir / "models" / "LinearModel-sharpe" / f"trial-{res.best_trial}"
    # the re-fit saw no row of the test period
    import pandas as pd

    assert pd.Timestamp(card["training_window"]["valid_dates"][1]) < res.test_start
    assert card["training_window"]["valid_rows"][1] == res.folds[-1].valid.stop


def test_a_resumed_study_does_not_propose_its_first_points_again(data_dir):
    """Re-running tune() with the same seed continues the search instead of replaying it."""
    ds = synthetic_dataset(T=500, N=2)
    kw = dict(data=ds, n_folds=2, fixed={"epochs": 2}, pruner="none", refit=False,
              progress=False)
    first = tune(CraftedModel, {"quality": (-1.0, 1.0)}, n_trials=3, study_name="r", **kw)
    resumed = tune(CraftedModel, {"quality": (-1.0, 1.0)}, n_trials=6, study_name="r", **kw)
    q = resumed.trials.sort_values("number")["params_quality"].tolist()
    assert q[:3] == first.trials.sort_values("number")["params_quality"].tolist()
    assert len(set(q)) == 6, q  # before: trials 3-5 repeated trials 0-2 exactly
    assert min(abs(a - b) for a in q[3:] for b in q[:3]) > 1e-3, q  # not near-copies
    # still reproducible: a fresh study with the same seed draws the same first points,
    # and resuming it the same way draws the same next ones
    again = tune(CraftedModel, {"quality": (-1.0, 1.0)}, n_trials=3, study_name="r2", **kw)
    again = tune(CraftedModel, {"quality": (-1.0, 1.0)}, n_trials=6, study_name="r2", **kw)
    assert again.trials.sort_values("number")["params_quality"].tolist() == q


def test_failed_trials_are_counted_and_the_loop_goes_on(data_dir):
    """A trial that raises is a FAIL; only max_consecutive_failures in a row stop the loop."""
    from workbench.tuning import optimize_until

    calls = [0]

    def flaky(trial):
        calls[0] += 1
        x = trial.suggest_float("x", 0.0, 1.0)
        if calls[0] == 2:
            raise FloatingPointError(f"diverged at x={x}")
        return x

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    counts = optimize_until(study, flaky, 4)
    assert counts["COMPLETE"] == 4 and counts["FAIL"] == 1

    def broken(trial):
        trial.suggest_float("x", 0.0, 1.0)
        raise KeyError("no column 'close'")

    study = optuna.create_study()
    with pytest.raises(RuntimeError, match=r"3 trials in a row failed .*trial 2: "
                                           r"KeyError\(\"no column 'close'\"\)") as info:
        optimize_until(study, broken, 4, max_consecutive_failures=3)
    assert isinstance(info.value.__cause__, KeyError)
    assert [t.state.name for t in study.trials] == ["FAIL"] * 3

    def nan(trial):
        trial.suggest_float("x", 0.0, 1.0)
        return float("nan")

    with pytest.raises(RuntimeError, match="trial 1 returned no finite value"):
        optimize_until(optuna.create_study(), nan, 4, max_consecutive_failures=2)


def test_refit_never_replaces_another_saved_model(data_dir, tmp_path):
    from workbench.models import save_model

    ds = synthetic_dataset(T=500, N=2)
    other = LinearModel(epochs=1, progress=False).fit(ds, slice(0, 300), slice(300, 400))
    keep = save_model(other, tmp_path / "production", dataset=ds)
    before = (keep / "card.json").read_bytes()
    kw = dict(data=ds, n_folds=2, fixed={"epochs": 1}, n_trials=1, progress=False)
    with pytest.raises(FileExistsError, match=r"production already holds something that is "
                                              r"not a re-fit of a trial.*study is kept"):
        tune(LinearModel, {"lr": (1e-3, 1e-2, "log")}, save_to=keep, study_name="lin", **kw)
    assert (keep / "card.json").read_bytes() == before  # the other model is untouched
    assert (trials_table(load_study("lin")).state == "COMPLETE").sum() == 1
    # re-fitting the same trial again replaces its own earlier save
    res = tune(LinearModel, {"lr": (1e-3, 1e-2, "log")}, study_name="lin", **kw)
    again = tune(LinearModel, {"lr": (1e-3, 1e-2, "log")}, study_name="lin", **kw)
    assert again.model_path == res.model_path
    assert read_card(again.model_path)["tuning"]["trial"] == res.best_trial
    # a different study whose default folder collides with this one's is refused
    with pytest.raises(FileExistsError, match=r"trial 0 of study 'lin'"):
        tune(LinearModel, {"lr": (1e-3, 1e-2, "log")}, study_name="lin", seed=5,
             storage=f"sqlite:///{tmp_path}/other.db", **kw)


def test_resolve_storage_create_false_refuses_missing_files_and_opens_existing(tmp_path):
    for url, path in ((f"sqlite:///{tmp_path}/a.db", tmp_path / "a.db"),
                      (f"journal:///{tmp_path}/b.log", tmp_path / "b.log"),
                      (str(tmp_path / "c.jsonl"), tmp_path / "c.jsonl")):
        with pytest.raises(StorageError, match=rf"does not exist \(no file .*{path.name}\)"):
            resolve_storage(url, create=False)
        with pytest.raises(StorageError, match="does not exist"):
            load_study("ts", url, create=False)
        assert not path.exists()
        resolve_storage(url)  # the default creates it (tune, create_study)
        assert path.is_file()
        assert resolve_storage(url, create=False) is not None


DAILY = {"universe": "daily", "start": "2004-01-01", "end": "2010-12-31"}


def test_a_test_start_after_the_data_is_refused_before_anything_is_stored(tmp_path):
    url = f"sqlite:///{tmp_path}/a.db"
    with pytest.raises(ValueError, match="after the data's last timestamp 2010-12-3"):
        create_study(TSMOMStrategy, data=DAILY, storage=url, study_name="ts",
                     test_start="2011-06-01")
    assert not optuna.get_all_study_names(url)


def test_a_study_stored_without_a_test_start_still_rebuilds_its_folds(tmp_path):
    """Studies stored before such a test_start was refused tuned on every row."""
    from workbench.tuning._study import TASK_ATTR, _objective_from_task

    url = f"sqlite:///{tmp_path}/a.db"
    study = create_study(TSMOMStrategy, data=DAILY, storage=url, study_name="ts",
                         n_trials=1, embargo=2)
    task = dict(study.user_attrs[TASK_ATTR])
    task["folds"] = dict(task["folds"], test_start=None)
    objective, folds = _objective_from_task(task)
    rows = len(objective.dataset.index)
    assert len(folds) == 3 and folds[-1].valid.stop == rows - 2


@pytest.mark.parametrize("kind", ["journal", "sqlite-without-heartbeat"])
def test_resume_after_a_killed_kernel_without_heartbeats(tmp_path, kind):
    """The killed trial stays RUNNING in a storage without heartbeats; resuming must not hang.

    Before: the loop waited for ever on the dead kernel's RUNNING trial (3 complete + 1
    running = n_trials), and no retry could ever come.
    """
    url = (str(tmp_path / "studies.log") if kind == "journal"
           else f"sqlite:///{tmp_path}/studies.db")
    script = (
        "import sys\n"
        "from tests.models.conftest import synthetic_dataset\n"
        "from tests.tuning.fakes import CraftedModel\n"
        "from workbench.tuning import tune\n"
        "res = tune(CraftedModel, {'quality': (-1.0, 1.0)}, data=synthetic_dataset(T=500, N=2),\n"
        "           n_trials=4, n_folds=2, fixed={'epochs': 4}, pruner='none', refit=False,\n"
        "           progress=False, storage=sys.argv[1], study_name='k',\n"
        "           heartbeat_interval=None)\n"
        "print('complete', (res.trials.state == 'COMPLETE').sum())\n"
    )
    env = {**os.environ, "WORKBENCH_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": "1"}
    killed = subprocess.run([sys.executable, "-c", script, url], cwd=ROOT, timeout=120,
                            env={**env, "CRAFTED_DIE_AT_FIT": "7"}, capture_output=True,
                            text=True)
    assert killed.returncode == -9, killed.stderr  # SIGKILL in the 7th fit = 4th trial
    study = load_study("k", url, heartbeat_interval=None)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3 + ["RUNNING"]
    dead_params = study.trials[3].params
    resumed = subprocess.run([sys.executable, "-c", script, url], cwd=ROOT, timeout=120,
                             env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "complete 4" in resumed.stdout
    assert "trial 3: its worker" in resumed.stderr and "is gone" in resumed.stderr
    t = trials_table(load_study("k", url, heartbeat_interval=None))
    assert t.state.tolist() == ["COMPLETE"] * 3 + ["FAIL", "COMPLETE"]
    retry = t[t.retry_of == 3]  # re-run with the dead trial's parameters
    assert len(retry) == 1 and retry.params_quality.item() == dead_params["quality"]


def test_orphaned_trials_are_only_those_of_dead_processes_of_this_host(tmp_path):
    import socket
    import time

    from workbench.tuning._study import _fail_orphaned_trials, _process_alive

    # a zombie (killed, not reaped yet) is dead; a live process is alive, unless it started
    # after the trial did (its pid was reused)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.5)
        assert _process_alive(child.pid)
        assert _process_alive(child.pid, since=time.time())
        if Path("/proc/stat").exists():
            assert not _process_alive(child.pid, since=time.time() - 3600)
        child.kill()
        time.sleep(0.3)
        if Path(f"/proc/{child.pid}/stat").exists():  # still a zombie: not reaped
            assert not _process_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not _process_alive(child.pid)
    assert _process_alive(os.getpid())
    assert _process_alive(os.getpid(), since=time.time())  # a trial of this process
    if Path("/proc/stat").exists():  # a trial of an earlier process that had this pid
        assert not _process_alive(os.getpid(), since=time.time() - 10 * 86400)

    study = optuna.create_study(storage=resolve_storage(str(tmp_path / "s.log")))
    host = socket.gethostname()
    for worker in (f"{host}:{child.pid}", f"{host}:{os.getpid()}", f"other-host:{child.pid}",
                   None):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        if worker is not None:
            trial.set_user_attr("worker", worker)
    assert _fail_orphaned_trials(study) == [0]
    states = [t.state.name for t in study.trials]
    assert states == ["FAIL", "RUNNING", "RUNNING", "RUNNING", "WAITING"]
    retry = study.trials[4]
    assert retry.params == study.trials[0].params
    assert "worker" not in retry.user_attrs  # its new worker stamps it
    assert retry.system_attrs["failed_trial"] == 0
    assert _fail_orphaned_trials(study) == []  # once only
    # a storage with heartbeats is left to optuna's fail_stale_trials
    hb = optuna.create_study(storage=resolve_storage(f"sqlite:///{tmp_path}/h.db",
                                                     heartbeat_interval=60))
    with pytest.warns(UserWarning, match="Heartbeat"):  # ask() outside optimize
        hb.ask().set_user_attr("worker", f"{host}:{child.pid}")
    assert _fail_orphaned_trials(hb) == []


def test_load_study_never_creates_a_storage_file(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    for url, path in ((f"sqlite:///{tmp_path}/typo.db", tmp_path / "typo.db"),
                      (str(tmp_path / "typo.log"), tmp_path / "typo.log"),
                      (None, tmp_path / "data" / "tuning" / "studies.db")):
        with pytest.raises(StorageError, match="does not exist"):
            load_study("s", url)
        assert not path.exists()


def test_pareto_ties_in_the_first_objective_list_the_earliest_trial_first():
    from workbench.tuning import pareto_front

    rng = np.random.default_rng(0)
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    for _ in range(80):  # many ties in the first objective, trade-offs in the others
        a = rng.normal()
        study.tell(study.ask(), [float(rng.integers(0, 3)), a, -a])
    front = pareto_front(study)
    assert len(front) > 20
    assert front.value_0.is_monotonic_decreasing
    for _, group in front.groupby("value_0"):  # before: arbitrary (unstable sort)
        assert group.number.is_monotonic_increasing


def test_conditional_ranges_are_accepted_and_invalid_draws_pruned(data_dir):
    from workbench.tuning import MACDStrategy, validate_space
    from workbench.tuning._spaces import parse_space

    # short in (2, 40) and long in (10, 60) overlap: short=40 is valid beside long=60
    validate_space(parse_space({"short": (2, 40), "long": (10, 60)}), MACDStrategy)
    with pytest.raises(ValueError, match=r"'short'.*rejects the value 40 \(nor beside any "
                                         r"bound of the other searched parameters \['long'\]"):
        validate_space(parse_space({"short": (2, 40), "long": (25, 30)}), MACDStrategy)
    space = {"short": (2, 40), "long": (10, 60)}
    kw = dict(data=DAILY, objectives=("sharpe", "turnover"), study_name="macd")
    study = create_study(MACDStrategy, space, n_trials=2, **kw)
    study.enqueue_trial({"short": 30, "long": 20})
    study.enqueue_trial({"short": 8, "long": 24})
    res = tune(MACDStrategy, space, n_trials=2, refit=False, progress=False, **kw)
    rejected = [t for t in res.study.trials if t.params == {"short": 30, "long": 20}]
    assert len(rejected) == 1 and rejected[0].state.name == "PRUNED"
    assert "short must be < long" in rejected[0].user_attrs["rejected"]
    assert (res.trials.state == "COMPLETE").sum() == 2  # the run goes on


def test_a_non_finite_objective_fails_the_trial_with_its_reason(data_dir, monkeypatch):
    from workbench.tuning import _objective, optimize_until

    real = _objective.validation_metrics

    def inf_sharpe(*args, **kwargs):
        return {**real(*args, **kwargs), "sharpe": float("inf")}

    monkeypatch.setattr(_objective, "validation_metrics", inf_sharpe)
    res_ds = synthetic_dataset(T=500, N=2)
    from workbench.tuning import WalkForwardObjective, parse_space, tuning_folds

    obj = WalkForwardObjective(CraftedModel, parse_space({"quality": (-1.0, 1.0)}), res_ds,
                               tuning_folds(res_ds.index, n_folds=2), fixed={"epochs": 2})
    study = optuna.create_study(direction="maximize")
    with pytest.raises(RuntimeError, match=r"trial 1: non-finite objective sharpe=inf on "
                                           r"\d+ validation days"):
        optimize_until(study, obj, 3, max_consecutive_failures=2)
    # before: COMPLETE with +inf, Optuna's best trial, yet dropped from the Pareto table
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]


def test_the_studys_costs_and_vol_target_reach_a_model_that_takes_them(data_dir):
    # the zoo stops early on its own validation Sharpe: with the study's cost_bps it sees
    # the net Sharpe the trial is ranked by (its default, 0 bps, would pick epochs by the
    # gross one), unless the caller fixes or searches the argument
    ds = synthetic_dataset(T=500, N=2)
    kw = dict(data=ds, n_trials=1, n_folds=2, progress=False, cost_bps=7.0, target_vol=0.1)
    res = tune(LinearModel, {"lr": (1e-3, 1e-2)}, fixed={"epochs": 1}, **kw)
    assert res.model.cost_bps == 7.0 and res.model.target_vol == 0.1
    fixed = res.study.user_attrs["workbench_task"]["fixed"]
    assert fixed["cost_bps"] == 7.0 and fixed["target_vol"] == 0.1
    res = tune(LinearModel, {"lr": (1e-3, 1e-2)}, fixed={"epochs": 1, "cost_bps": 2.0},
               study_name="own-cost", **kw)
    assert res.model.cost_bps == 2.0 and res.model.target_vol == 0.1
    res = tune(LinearModel, {"cost_bps": (0.0, 3.0)}, fixed={"epochs": 1},
               study_name="searched-cost", refit=False, **kw)
    assert "cost_bps" not in res.study.user_attrs["workbench_task"]["fixed"]
    # a model without the arguments (a baseline strategy) is given none
    res = tune(TSMOMStrategy, {"lookback": (21, 252)}, study_name="tsmom", refit=False, **kw)
    assert "cost_bps" not in (res.study.user_attrs["workbench_task"]["fixed"] or {})
