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
