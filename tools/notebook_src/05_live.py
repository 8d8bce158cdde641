# %% [markdown]
# # 05 · Live paper trading
#
# One producer per process turns a bar feed into orders, fills and risk state:
# feed → bad-input validator → streaming features → model → vol-targeted sizing →
# pre-trade checks → paper broker → ledger (SQLite or PostgreSQL) → risk monitor.
# Here the feed replays the bundled daily history, the first cells step the engine
# synchronously (so they run under nbval), and the last cells attach the live app and
# start the producer thread. `WORKBENCH_SMALL=1` trades the MACD baseline instead of
# the trained demo ensemble (CI does).

# %%
import itertools
import os

import pandas as pd
import panel as pn

from widgets.live_app import WARMUP_BARS, LiveApp
from workbench.data import load_universe
from workbench.data.feeds import ReplayFeed
from workbench.live import STAGES, Bar, Ledger, LiveEngine, Malformed, demo_ensemble
from workbench.risk import RiskLimits

pn.extension("tabulator")
SMALL = os.environ.get("WORKBENCH_SMALL", "0") == "1"
# the demo ensemble is trained up to 2008-12-31 (once, ~10 s; then loaded from the registry)
model = None if SMALL else demo_ensemble()
N_BARS = 600 if SMALL else 800
print("model:", "MACD baseline" if model is None else type(model).__name__)

# %% [markdown]
# ## An engine on a replay feed
# The replay starts `WARMUP_BARS` bars before 2009 so the features (up to a year of
# history for the MACD signal normalisation) and the ensemble's 63-bar context are ready
# when the out-of-sample period begins; it ends on 2013-03-01, the last day all six
# series have data. `speed=0` hands batches out as fast as they are
# asked for. The ledger is a separate `notebook` account in the project's SQLite ledger,
# reset to fresh paper capital; limits are scaled to that capital.

# %%
bars = load_universe("daily", end="2013-03-01")
start = bars.index[bars.index.searchsorted(pd.Timestamp("2009-01-01", tz="UTC")) - WARMUP_BARS]
feed = ReplayFeed(bars, start=start, rate=10, speed=0, loop=True)
ledger = Ledger(account="notebook", initial_cash=1_000_000)
ledger.reset()
limits = RiskLimits(max_order_notional=250_000, max_position_notional=500_000,
                    max_gross_exposure=1.5, max_net_exposure=1.0, max_drawdown=0.2,
                    stale_after_s=30)
engine = LiveEngine(feed, model, ledger=ledger, limits=limits)
for batch in itertools.islice(feed, N_BARS):
    engine.step(batch)
print(f"{engine.n_batches} batches up to {pd.Timestamp(engine.state.ts, unit='ns').date()}, "
      f"{engine.rejected_orders} orders rejected by the pre-trade checks")

# %% [markdown]
# ## Risk state
# The snapshot every app session shows: equity, PnL, one-bar historical VaR and CVaR at
# 95 % (loss fractions over the last 250 bars), gross and net exposure (fractions of
# equity) and drawdown.

# %%
st = engine.state
pd.Series({"equity": st.equity, "pnl": st.pnl, "var_95": st.var_95, "cvar_95": st.cvar_95,
           "gross_exposure": st.gross_exposure, "net_exposure": st.net_exposure,
           "drawdown": st.drawdown, "max_drawdown": st.max_drawdown,
           "rejected_orders": st.rejected_orders}).to_frame("value")

# %%
pd.DataFrame({"shares": st.positions, "price": {s: st.prices[s] for s in st.positions}}).assign(
    value=lambda d: d.shares * d.price, weight=lambda d: d.value / st.equity).round(3)

# %% [markdown]
# ## Latency per stage
# Milliseconds per bar batch, p50/p95/p99 over the last batches. The ledger commit (one
# durable SQLite transaction per batch that trades) dominates; `end_to_end` spans the
# whole batch.

# %%
lat = engine.latency_percentiles()
pd.DataFrame(lat).T.loc[[s for s in STAGES if s in lat]].round(3)

# %% [markdown]
# ## The ledger
# Orders, fills, positions and cash are stored transactionally; a restarted engine
# resumes from them. The newest fills:

# %%
engine.ledger.fills(limit=8)

# %% [markdown]
# ## Bad input is rejected, counted and never traded on
# A NaN price, a negative price, a bar older than the last one accepted, an unknown
# symbol, a high below the low, and a message that could not be parsed at all.

# %%
ts = engine.state.ts
bad = [
    Bar("SP500", ts + 1, float("nan"), 1.0, 1.0, 1.0, 1.0),
    Bar("NASDAQ", ts + 2, -5.0, 1.0, -5.0, 1.0, 1.0),
    Bar("SP500", ts - 86_400 * 10**9, 1.0, 1.0, 1.0, 1.0, 1.0),
    Bar("TSLA", ts + 3, 1.0, 1.0, 1.0, 1.0, 1.0),
    Bar("SP500", ts + 4, 10.0, 9.0, 11.0, 10.0, 1.0),
    Malformed('{"T": "b", "S": "AAPL", "o": 1}', "missing field 'c'"),
]
assert engine.step(bad) is None  # nothing accepted, nothing traded
pd.DataFrame(engine.validator.recent)[["reason", "symbol", "detail"]]

# %%
dict(engine.validator.counts)

# %% [markdown]
# ## Pre-trade checks
# Tighten the order-size limit and the next orders are rejected, each verdict with its
# reasons (kept in the ledger too).

# %%
engine.set_limits(engine.limits.replace(max_order_notional=1_000))
for batch in itertools.islice(feed, 20):
    engine.step(batch)
orders = engine.ledger.orders(limit=200)
orders[orders.status == "rejected"][["time", "symbol", "qty", "ref_price", "reasons"]].head()

# %%
engine.set_limits(limits)  # back to the limits scaled to the capital

# %% [markdown]
# ## The live app
# Prices and positions per symbol, equity and drawdown, positions, fills, verdicts,
# rejected inputs, model health and latency, pushed to the browser at 15 Hz in one
# batched update however fast the feed runs. The controls pause the feed, change its
# speed, pick the symbols shown and edit the risk limits. As a served app
# (`make app`, i.e. `python -m widgets.serve live_app --address 127.0.0.1`) every
# browser session shares one producer.

# %%
# NBVAL_SKIP
app = LiveApp(engine)
app.panel()

# %%
# NBVAL_SKIP
feed.speed = 1.0  # 10 bars a second
engine.start()  # the producer thread; the app above updates while it runs

# %%
# NBVAL_SKIP
engine.stop()
app.close()
