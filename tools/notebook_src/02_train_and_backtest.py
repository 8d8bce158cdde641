# %% [markdown]
# # 02 · Train a deep momentum network and backtest it
#
# Walk-forward training of the LSTM on the Sharpe ratio (Lim, Zohren & Roberts 2019),
# then an out-of-sample vectorbt backtest against long-only, TSMOM and MACD at several cost
# levels, and a risk table. `WORKBENCH_SMALL=1` picks small settings (CI does).

# %%
import os

import holoviews as hv
import hvplot.pandas  # noqa: F401
import numpy as np
import pandas as pd

from workbench import backtest as bt
from workbench import data, risk
from workbench import features as ft
from workbench.models import DeepMomentumLSTM, MomentumDataset, walk_forward

hv.extension("bokeh")
SMALL = os.environ.get("WORKBENCH_SMALL", "0") == "1"
EPOCHS = 2 if SMALL else 25
START, END = ("2006-01-01", "2012-12-31") if SMALL else (None, None)

# %%
bars = data.load_universe("daily", start=START, end=END)
ds = MomentumDataset.from_bars(bars)
print(bars)
print("features:", ds.feature_names)

# %% [markdown]
# ## Walk-forward splits
# Expanding training window, a validation tail for early stopping, an embargo bar, and
# two-year test blocks.

# %%
splits = bt.walk_forward_splits(bars.index, test_years=2, min_train_years=3 if SMALL else 5,
                                valid_fraction=0.15, embargo=1)
pd.DataFrame([{"train": f"{bars.index[s.train.start].date()}..{bars.index[s.train.stop - 1].date()}",
               "valid": f"{bars.index[s.valid.start].date()}..{bars.index[s.valid.stop - 1].date()}",
               "test": f"{bars.index[s.test.start].date()}..{bars.index[s.test.stop - 1].date()}"}
              for s in splits])

# %%
wf = walk_forward(
    lambda k: DeepMomentumLSTM(hidden_size=8 if SMALL else 32, epochs=EPOCHS, patience=8,
                               seed=k, progress=not SMALL),
    ds, splits, progress=not SMALL,
)
wf.folds

# %%
wf.history.hvplot.line(x="epoch", y="valid_sharpe", by="fold", height=280, responsive=True,
                       title="Validation Sharpe per epoch")

# %% [markdown]
# ## Out-of-sample comparison
# Daily returns annualised over 252 days: annual return (geometric), annual vol and max
# drawdown are fractions (0.10 = 10 %), `% positive` is in percent, turnover is traded
# notional per year in multiples of equity, `mean gross` the average gross exposure.

# %%
close = bars["close"]
positions = {
    "long-only": bt.long_only(close),
    "TSMOM": bt.tsmom(close),
    "MACD": bt.macd_baseline(ft.macd_signals(close)),
    "LSTM (sharpe)": np.nan_to_num(wf.positions),
}
cmp = bt.compare_strategies(positions, bars.to_wide("close"), ds.sigma, rows=wf.test_rows,
                            cost_levels_bps=(0.0, 5.0, 10.0))
cmp.table

# %%
r0 = cmp.returns_at(0.0).fillna(0.0)
equity = (1 + r0).cumprod()
dd = pd.DataFrame({c: risk.drawdown_series(r0[c].to_numpy()) for c in r0}, index=r0.index)
# own value dimensions: one shared "value" axis would put equity (~1) and drawdown (<= 0)
# on the same scale
(equity.hvplot.line(height=300, responsive=True, title="Equity (growth of 1), 0 bps",
                    value_label="equity", group_label="strategy")
 + dd.hvplot.line(height=220, responsive=True, title="Drawdown from peak, 0 bps",
                  value_label="drawdown", group_label="strategy")).cols(1)

# %% [markdown]
# ## Risk

# %%
risk.risk_table(r0)

# %% [markdown]
# The vectorbt portfolio of any strategy is available for its own analytics:

# %%
pf = cmp.results[(0.0, "LSTM (sharpe)")].portfolio
pf.stats()
