# %% [markdown]
# # 03 · Model ensembles: the deep-momentum zoo, a meta-learner and the inference engine
#
# Train every member of the zoo (Linear, MLP, deep momentum LSTM, Momentum Transformer,
# 1-D CNN, LightGBM boosted trees) on the same walk-forward splits with the Sharpe loss,
# combine them three ways (equal weights, confidence weights from validation Sharpe, a
# stacking meta-learner fitted on validation-period positions), compare everything with
# the baselines out of sample, save an ensemble to the registry and serve it through the
# inference engine. `WORKBENCH_SMALL=1` picks small settings (CI does).

# %%
import os
import tempfile
import time

import holoviews as hv
import hvplot.pandas  # noqa: F401
import numpy as np
import pandas as pd
import panel as pn

from widgets import TrainingMonitor
from workbench import backtest as bt
from workbench import data
from workbench import features as ft
from workbench.models import (
    BoostedTreesModel,
    CNNModel,
    DeepMomentumLSTM,
    InferenceEngine,
    LinearModel,
    MLPModel,
    MomentumDataset,
    MomentumTransformer,
    load_model,
    read_card,
    save_model,
    walk_forward_ensemble,
)

hv.extension("bokeh")
pn.extension("tabulator")
SMALL = os.environ.get("WORKBENCH_SMALL", "0") == "1"
EPOCHS = 2 if SMALL else 30
START, END = ("2006-01-01", "2012-12-31") if SMALL else (None, None)
COSTS = [0.0, 5.0, 10.0]

# %%
bars = data.load_universe("daily", start=START, end=END)
ds = MomentumDataset.from_bars(bars)
splits = bt.walk_forward_splits(bars.index, test_years=2, min_train_years=3 if SMALL else 5,
                                valid_fraction=0.15, embargo=1)
print(bars)
print(f"{len(splits)} folds; features: {ds.feature_names}")

# %% [markdown]
# ## Members
# Every torch member shares one trainer (Adam, gradient clipping, early stopping on the
# validation Sharpe, seeded); the boosted trees pick their number of trees on the same
# validation Sharpe. Hyperparameters follow the deep-momentum literature's ranges.

# %%
common = dict(epochs=EPOCHS, patience=8, seq_len=63, burn_in=63, device="cpu",
              progress=False)
small = 8 if SMALL else 32
factories = {
    "linear": lambda k: LinearModel(dropout=0.1, seed=k, **common),
    "mlp": lambda k: MLPModel(hidden_size=small, seed=k, **common),
    "lstm": lambda k: DeepMomentumLSTM(hidden_size=small, seed=k, **common),
    "transformer": lambda k: MomentumTransformer(d_model=8 if SMALL else 16, n_heads=2,
                                                 n_layers=1 if SMALL else 2, seed=k, **common),
    "cnn": lambda k: CNNModel(channels=8 if SMALL else 16, seed=k, **common),
    "trees": lambda k: BoostedTreesModel(n_estimators=40 if SMALL else 300, seed=k,
                                         progress=False),
}

# %% [markdown]
# ## Training, watched live
# The monitor draws every member's loss and validation Sharpe per epoch while the
# walk-forward runs (one curve per fold and member).

# %%
monitor = TrainingMonitor(title="Walk-forward training of the zoo")
monitor.panel()

# %%
t0 = time.perf_counter()
wf = walk_forward_ensemble(factories, ds, splits, callbacks=[monitor], progress=not SMALL)
print(f"{len(splits)} folds x {len(factories)} members trained in "
      f"{time.perf_counter() - t0:.1f} s")
wf.folds.filter(regex="fold|test$|valid_sharpe_(lstm|ensemble)")

# %% [markdown]
# ## Out-of-sample comparison
# Baselines, every member and every ensemble traded over the test blocks only, vol-targeted
# to 15% per asset, executed with vectorbt at three cost levels; the published reference
# (Lim, Zohren & Roberts 2019) is shown beside the table for orientation.

# %%
close = bars["close"]
oos = wf.test_rows
positions = {
    "long-only": bt.long_only(close),
    "TSMOM": bt.tsmom(close),
    "MACD": bt.macd_baseline(ft.macd_signals(close)),
    **{name: np.nan_to_num(p) for name, p in wf.positions.items()},
}
cmp = bt.compare_strategies(positions, bars.to_wide("close"), ds.sigma, rows=oos,
                            cost_levels_bps=COSTS, target_vol=0.15, max_gross=1.0)
reference = {"long-only": 0.76, "TSMOM": 1.39, "MACD": 1.11, "linear": 1.50, "mlp": 2.02,
             "lstm": 2.91}
table = cmp.table.copy()
# the published figures are before costs: shown on the 0 bps rows only
table["Sharpe, published (Lim et al. 2019)"] = [
    reference.get(s, np.nan) if c == 0 else np.nan for c, s in table.index]
table

# %% [markdown]
# ## Ensemble weights and member positions

# %%
wf.weights.hvplot.bar(x="member", y="weight", by="method", groupby="fold", height=300,
                      responsive=True, title="Ensemble weights per fold")

# %%
j = 0
rows = np.flatnonzero(oos)
frame = pd.DataFrame({n: wf.positions[n][rows, j] for n in wf.positions},
                     index=bars.index[rows])
frame.hvplot.line(height=320, responsive=True, alpha=0.8,
                  title=f"{bars.symbols[j]}: out-of-sample positions per member and ensemble")

# %%
last_fold = wf.models[-1]
tr = last_fold["transformer"]
x = ds.features[-tr.context_length:, :, :].transpose(1, 0, 2)  # (N, L, F) last window
w = tr.variable_weights(np.nan_to_num(x))  # (N, L, F)
pd.DataFrame(w.mean(axis=(0, 1)), index=list(ds.feature_names), columns=["weight"]).hvplot.barh(
    height=280, title="Momentum Transformer: mean variable-selection weight")

# %% [markdown]
# ## Registry
# Save the last fold's stacking ensemble (safetensors weights + JSON card per member), load
# it back and check the predictions are identical; a feature list that differs from the
# card is refused.

# %%
ens = wf.ensembles[-1]["stacking"]
folder = save_model(ens, os.path.join(tempfile.mkdtemp(), "stacking"), dataset=ds,
                    metrics={"valid_sharpe": float(wf.folds.iloc[-1]["valid_sharpe_ensemble_stacking"])})
loaded = load_model(folder, feature_names=ds.feature_names)
test = splits[-1].test
same = np.array_equal(loaded.predict(ds.features, rows=test), ens.predict(ds.features, rows=test))
card = read_card(folder)
print("identical predictions after reload:", same)
print({k: card[k] for k in ("class", "feature_names", "training_window", "versions")})
try:
    load_model(folder, feature_names=list(reversed(ds.feature_names)))
except ValueError as exc:
    print("refused:", str(exc)[:160])

# %% [markdown]
# ## Inference engine
# Static buffers and last-step paths on CPU (CUDA graphs on a GPU); a member that raises or
# emits NaN is excluded and the weights renormalise. Below: one call per bar for every
# symbol over the last test block, then the latency percentiles and the health report.

# %%
engine = InferenceEngine(ens, batch_sizes=(1, 8, 64))
L = ens.context_length
feats = np.nan_to_num(ds.features)
live = []
for t in range(max(L, test.start), test.stop):
    live.append(engine.predict(feats[t - L + 1:t + 1].transpose(1, 0, 2)))
live = np.array(live)
health = engine.health()
print(f"{live.shape[0]} calls x {live.shape[1]} symbols; state {health.pop('state')!r} after "
      f"{health.pop('calls')} calls; latency (ms): "
      + ", ".join(f"{k} {v:.3f}" for k, v in engine.latency().items() if k != "n"))
pd.DataFrame(health).T
