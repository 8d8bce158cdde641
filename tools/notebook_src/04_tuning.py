# %% [markdown]
# # 04 · Hyperparameter tuning with Optuna
#
# Tune a member of the zoo (or a baseline's parameters) with one call, watch the search
# live, pick a point of the Pareto front, and scale the same study out to many workers over
# PostgreSQL. Objectives are computed on purged walk-forward validation folds that end
# before the out-of-sample test period, which no trial ever sees. `WORKBENCH_SMALL=1` picks
# small settings (CI does).

# %%
import os
import subprocess
import sys
import time
from pathlib import Path

import hvplot.pandas  # noqa: F401
import panel as pn

from widgets import TuningDashboard
from workbench.models import DeepMomentumLSTM, LinearModel, read_card
from workbench.tuning import (
    LocalPostgres,
    TSMOMStrategy,
    create_study,
    deep_momentum_space,
    default_storage_url,
    load_study,
    refit_trial,
    trials_table,
    tune,
)

pn.extension("plotly", "tabulator")
SMALL = os.environ.get("WORKBENCH_SMALL", "0") == "1"
DATA = ({"universe": "daily", "start": "2004-01-01", "end": "2012-12-31"} if SMALL
        else {"universe": "daily"})
N_TRIALS = 4 if SMALL else 40
EPOCHS = 2 if SMALL else 25
TAG = "small" if SMALL else "full"
print("studies are stored in", default_storage_url())

# %% [markdown]
# ## Single objective: validation Sharpe, TPE and median pruning
# The deep-momentum search space of Lim, Zohren & Roberts (2019): dropout 0.1-0.5,
# hidden size 5-160, batch 64/128/256, learning rate 1e-4 to 1e-1 and max gradient
# norm 1e-2 to 1e2. Every epoch's validation Sharpe is reported to Optuna, and the median
# pruner stops trials that fall behind. The study lives in SQLite in the project's data
# directory: re-running this cell after a kernel restart resumes it (`n_trials` is the
# number of completed trials the study should end with).

# %%
deep_momentum_space()

# %%
t0 = time.perf_counter()
lstm = tune(DeepMomentumLSTM, data=DATA, n_trials=N_TRIALS, study_name=f"lstm-sharpe-{TAG}",
            fixed={"epochs": EPOCHS, "patience": 5}, n_folds=2 if SMALL else 3,
            progress=not SMALL)
print(f"{len(lstm.trials)} trials in {time.perf_counter() - t0:.0f} s; best trial "
      f"{lstm.best_trial}: validation Sharpe {lstm.best_values['sharpe']:.2f}")
print("test period (never scored) starts", lstm.test_start.date())
lstm.trials

# %% [markdown]
# The best trial was re-fitted on the last fold's training rows (every pre-test row before
# the last validation block, which early-stops it) and saved to the model registry; its
# card carries the study and trial number.

# %%
card = read_card(lstm.model_path)
{"path": str(lstm.model_path), **card["tuning"], "training_window": card["training_window"]}

# %% [markdown]
# ## The dashboard
# Optimisation history, parameter importances, parallel coordinates and the trials table,
# refreshed every few seconds while trials run (here or in workers elsewhere). As an app:
# `python -m widgets.serve tuning_dashboard --args --storage URL --study NAME`.

# %%
TuningDashboard(lstm.study).panel()

# %% [markdown]
# ## Three objectives: Sharpe, max drawdown and turnover with NSGA-II
# No single best trial any more: the Pareto front lists the non-dominated ones. Pick one
# and re-fit it.

# %%
multi = tune(LinearModel, data=DATA, objectives=("sharpe", "max_drawdown", "turnover"),
             n_trials=6 if SMALL else 40, study_name=f"linear-pareto-{TAG}",
             fixed={"epochs": EPOCHS, "patience": 5}, n_folds=2, refit=False,
             progress=not SMALL)
multi.pareto[["number", "sharpe", "max_drawdown", "turnover", "params_lr",
              "params_dropout"]]

# %%
TuningDashboard(multi.study).panel()

# %%
lowest_turnover = int(multi.pareto.sort_values("turnover").iloc[0]["number"])
model, path = refit_trial(multi.study, lowest_turnover)
print(f"re-fitted Pareto trial {lowest_turnover} -> {path}")

# %% [markdown]
# ## A baseline's parameters
# The TSMOM lookback, tuned on the same folds (21 to 252 trading days).

# %%
tsmom = tune(TSMOMStrategy, data=DATA, n_trials=8 if SMALL else 30,
             study_name=f"tsmom-{TAG}", progress=False)
(tsmom.trials.sort_values("params_lookback")
 .hvplot.scatter(x="params_lookback", y="sharpe", height=280, responsive=True,
                 title="TSMOM: validation Sharpe by lookback"))

# %% [markdown]
# ## Many workers over PostgreSQL
# The same study scales out without code changes: create it once in a PostgreSQL database,
# then start `workbench tune worker --study NAME --storage URL --n-trials N` on any number
# of machines. Here a throwaway PostgreSQL cluster on loopback stands in for a shared
# server, and two worker processes run the TSMOM study side by side. Heartbeats let a
# killed worker's trial be failed and retried (see `tests/tuning/test_workers.py`).

# %%
with LocalPostgres() as pg:
    create_study(TSMOMStrategy, data=DATA, storage=pg.url, study_name="tsmom-workers",
                 n_trials=6)
    cmd = [sys.executable, "-m", "workbench.cli", "tune", "worker", "--study",
           "tsmom-workers", "--storage", pg.url]
    workers = [subprocess.Popen(cmd, cwd=Path.cwd().parent, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    shared = trials_table(load_study("tsmom-workers", pg.url, heartbeat_interval=None))
print("\n".join(line for out in outputs for line in out.splitlines() if "worker" in line))
shared.groupby("worker").number.count().rename("trials per worker")
