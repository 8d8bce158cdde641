# %% [markdown]
# # 01 · Data and features
#
# Load the bundled real market data, check it, bring in your own files, and explore the
# first feature set: returns, ex-ante volatility, RSI, MACD, Bollinger bands and the
# deep-momentum inputs. Set `WORKBENCH_SMALL=1` for a quick run (CI does).

# %%
import os

import holoviews as hv
import hvplot.pandas  # noqa: F401
import numpy as np
import pandas as pd

from workbench import data
from workbench import features as ft

hv.extension("bokeh")
SMALL = os.environ.get("WORKBENCH_SMALL", "0") == "1"

# %% [markdown]
# ## Bundled universes
# Every series comes from an installed package (`arch`, `bokeh-sampledata`, `backtesting`):
# nothing is downloaded. The `daily` universe puts six daily series on one union calendar;
# an asset has NaN where it has no bar (nothing is forward-filled).

# %%
print(data.list_universes())
bars = data.load_universe("daily", start="2008-01-01" if SMALL else None)
bars

# %%
bars.summary()

# %%
bars.gaps().head()

# %%
close = bars.to_wide("close")
(close / close.bfill().iloc[0]).hvplot.line(logy=True, title="Close rebased to 1 (log scale)",
                                            height=350, responsive=True,
                                            value_label="close (rebased)", group_label="symbol")

# %% [markdown]
# ## Your own data
# Long (`timestamp, symbol, open, high, low, close, volume`) or wide (`timestamp`,
# `close/AAPL`, ...) CSV or Parquet. Problems raise one `DataValidationError` naming the file,
# column, timestamp and rule.

# %%
import tempfile
from pathlib import Path

tmp = Path(tempfile.mkdtemp())
data.write_csv(bars.select(["AAPL", "MSFT"]).loc("2010-01-01", "2010-03-31"), tmp / "mine.csv")
mine = data.read_csv(tmp / "mine.csv")
print(mine, "hash", mine.data_hash()[:12])

bad = pd.read_csv(tmp / "mine.csv")
bad.loc[5, "high"] = bad.loc[5, "low"] * 0.9  # a corrupt row
bad.to_csv(tmp / "bad.csv", index=False)
try:
    data.read_csv(tmp / "bad.csv")
except data.DataValidationError as err:
    print("rejected:", err)

# %% [markdown]
# ## Indicators
# Compiled (numba) kernels over `(T, N)` arrays, matching TA-Lib to 1e-9 (see the tests).

# %%
px = bars["close"]
sym = "SP500"
j = bars.symbols.index(sym)
up, mid, lo = ft.bollinger(px, 20, 2.0)
line, signal, hist = ft.macd(px)
ind = pd.DataFrame({
    "close": px[:, j], "bb_upper": up[:, j], "bb_middle": mid[:, j], "bb_lower": lo[:, j],
    "rsi_14": ft.rsi(px, 14)[:, j], "macd": line[:, j], "macd_signal": signal[:, j],
    "macd_hist": hist[:, j],
}, index=bars.index).iloc[-500:]
# each chart its own value dimension: charts of a layout that share one share its axis
# (price in the thousands would flatten the MACD lines)
price = ind.hvplot.line(y=["close", "bb_upper", "bb_middle", "bb_lower"], height=280,
                        responsive=True, title=f"{sym} with Bollinger (20, 2)",
                        value_label="price", group_label="series")
rsi_plot = ind.hvplot.line(y="rsi_14", height=160, responsive=True, title="RSI 14")
macd_plot = ind.hvplot.line(y=["macd", "macd_signal"], height=180, responsive=True,
                            title="MACD (12, 26, 9)", value_label="MACD",
                            group_label="series")
(price + rsi_plot + macd_plot).cols(1)

# %% [markdown]
# ## Deep-momentum inputs
# Normalised returns over 1-252 days and the Baz et al. MACD signals, plus the ex-ante
# volatility used for vol targeting (EWM std, span 60, annualised).

# %%
feats, names = ft.deep_momentum_features(px)
sigma = ft.ex_ante_volatility(px)
print("feature block (T, N, F):", feats.shape)
block = pd.DataFrame(feats[:, j, :], index=bars.index, columns=names)
block.hvplot.line(y=["macd_8_24", "macd_16_48", "macd_32_96"], height=250, responsive=True,
                  title=f"{sym}: MACD signals Y")

# %%
pd.DataFrame(sigma, index=bars.index, columns=bars.symbols).hvplot.line(
    height=250, responsive=True, title="Ex-ante volatility (EWM std, span 60, annualised)",
    value_label="annualised vol", group_label="symbol")

# %%
corr = block.dropna().corr()
corr.hvplot.heatmap(title=f"{sym}: feature correlation", height=320, width=420,
                    cmap="RdBu_r", clim=(-1, 1), rot=45)

# %% [markdown]
# ## The whole catalogue as one block
# A `FeatureSet` names the features (and windows, dtype, backend) and computes a `(T, N, F)`
# block with named columns, chunked over assets; it converts to pandas or xarray, and can
# stream a large panel's features to Parquet chunk by chunk (`write_parquet`).

# %%
fs = ft.FeatureSet.full()
block = fs.compute(bars)
print(block.shape, "features:", len(block.columns))
block.to_pandas().tail()

# %%
block.to_xarray()

# %% [markdown]
# ## Feature explorer
# Pick symbols, features, the window and dates; the views share their time axis.

# %%
from widgets import FeatureExplorer

explorer = FeatureExplorer(bars=bars, symbols=["SP500", "AAPL"],
                           features=["rsi", "atr", "rolling_volatility", "skewness"])
explorer.panel()

# %% [markdown]
# ## Causality check
# Every feature at t uses data at or before t only: changing prices after t leaves
# everything up to t unchanged.

# %%
t = bars.T // 2
px2 = px.copy()
px2[t + 1:] *= 1.5
feats2, _ = ft.deep_momentum_features(px2)
assert np.array_equal(feats[: t + 1], feats2[: t + 1], equal_nan=True)
print("causal up to", bars.index[t].date())
