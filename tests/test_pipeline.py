"""End-to-end research pipeline on real bundled data: determinism and causality."""

import numpy as np
import pandas as pd
import pytest

from workbench import backtest as bt
from workbench import data
from workbench import features as ft
from workbench.models import DeepMomentumLSTM, MomentumDataset, walk_forward


@pytest.fixture(scope="module")
def bars():
    return data.load_universe("daily", start="2004-01-01", end="2010-12-31")


def _run(bars, seed):
    ds = MomentumDataset.from_bars(bars)
    splits = bt.walk_forward_splits(bars.index, test_years=2, min_train_years=3,
                                    valid_fraction=0.15, embargo=1)
    wf = walk_forward(lambda k: DeepMomentumLSTM(hidden_size=6, epochs=2, patience=2,
                                                 seed=seed + k, device="cpu", progress=False),
                      ds, splits, progress=False)
    close = bars["close"]
    positions = {"TSMOM": bt.tsmom(close), "MACD": bt.macd_baseline(ft.macd_signals(close)),
                 "LSTM": np.nan_to_num(wf.positions)}
    return wf, bt.compare_strategies(positions, bars.to_wide("close"), ds.sigma,
                                     rows=wf.test_rows, cost_levels_bps=(0.0, 10.0))


@pytest.mark.slow
def test_seeded_runs_give_identical_metrics(bars):
    wf1, c1 = _run(bars, seed=3)
    wf2, c2 = _run(bars, seed=3)
    pd.testing.assert_frame_equal(c1.table, c2.table, check_exact=True)
    np.testing.assert_array_equal(wf1.positions, wf2.positions)
    _, c3 = _run(bars, seed=4)
    assert not c1.table.loc[(0.0, "LSTM")].equals(c3.table.loc[(0.0, "LSTM")])


def test_model_positions_are_causal_in_prices(bars):
    """Perturbing prices after t never changes features or model positions at or before t."""
    ds = MomentumDataset.from_bars(bars)
    T = bars.T
    model = DeepMomentumLSTM(hidden_size=6, epochs=1, seed=0, device="cpu", progress=False)
    model.fit(ds, slice(0, T // 2), slice(T // 2 + 1, T // 2 + 200))
    base = model.predict(ds.features)
    for t in (T // 3, T // 2, T - 100):
        frames = bars.to_frames()
        for f in ("open", "high", "low", "close"):
            frames[f].iloc[t + 1:] *= 1.3
        bumped = data.Bars.from_wide(frames)
        ds2 = MomentumDataset.from_bars(bumped)
        np.testing.assert_array_equal(ds2.features[: t + 1], ds.features[: t + 1])
        np.testing.assert_array_equal(ds2.sigma[: t + 1], ds.sigma[: t + 1])
        out = model.predict(ds2.features)
        np.testing.assert_array_equal(out[: t + 1], base[: t + 1])
        assert not np.array_equal(out[t + 1:], base[t + 1:])
