import numpy as np
import optuna
import pandas as pd
import pytest

from tests.models.conftest import synthetic_dataset
from tests.tuning.fakes import CraftedModel
from workbench.backtest import performance_metrics, portfolio_weights, strategy_returns, turnover
from workbench.tuning import WalkForwardObjective, parse_space, tuning_folds, validation_metrics
from workbench.tuning._objective import check_objectives


def test_validation_metrics_match_the_backtest_definitions():
    ds = synthetic_dataset(T=400, N=3)
    rng = np.random.default_rng(3)
    pos = np.clip(rng.normal(size=(400, 3)), -1, 1)
    blocks = [slice(100, 200), slice(250, 400)]
    m = validation_metrics(pos, ds, blocks, cost_bps=5.0)
    parts = [strategy_returns(pos[b], ds.sigma[b], ds.next_returns[b], cost_bps=5.0).portfolio
             for b in blocks]
    r = np.concatenate(parts)
    ref = performance_metrics(r[np.isfinite(r)])
    assert m["sharpe"] == pytest.approx(ref["Sharpe"], rel=1e-12)
    assert m["max_drawdown"] == pytest.approx(-ref["max drawdown"], rel=1e-12)
    assert m["max_drawdown"] > 0
    t = [turnover(portfolio_weights(pos[b], ds.sigma[b])) for b in blocks]
    assert m["turnover"] == pytest.approx((t[0] * 100 + t[1] * 150) / 250, rel=1e-12)
    assert m["n_days"] == np.isfinite(r).sum()


def test_check_objectives():
    assert check_objectives("sharpe") == ["sharpe"]
    for bad, match in (([], "at least one"), (["sharp"], "unknown objective 'sharp'"),
                       (["sharpe", "sharpe"], "must not repeat")):
        with pytest.raises(ValueError, match=match):
            check_objectives(bad)


class SpyModel(CraftedModel):
    """Records the rows it is fitted and asked to predict on."""

    seen: list = []

    def fit(self, dataset, train, valid=None, *, callbacks=()):
        SpyModel.seen.append(("fit", train, valid))
        return super().fit(dataset, train, valid, callbacks=callbacks)

    def predict(self, features, rows=None):
        SpyModel.seen.append(("predict", rows))
        return super().predict(features, rows)


def test_objective_never_touches_the_test_period():
    """Scrambling every row from the test start on leaves the objective unchanged."""
    ds = synthetic_dataset(T=600, N=3)
    folds = tuning_folds(ds.index, test_start=ds.index[450], n_folds=3, embargo=2)
    space = parse_space({"quality": (-1.0, 1.0)})
    obj = WalkForwardObjective(SpyModel, space, ds, folds, ("sharpe", "max_drawdown"))
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    SpyModel.seen = []
    study.optimize(obj, n_trials=3)
    for entry in SpyModel.seen:
        rows = entry[1:]
        for r in rows:
            assert r.stop <= 448  # embargo of 2 before the test start
    before = [t.values for t in study.trials]

    scrambled = synthetic_dataset(T=600, N=3)
    rng = np.random.default_rng(9)
    scrambled.features[450:] = rng.normal(size=scrambled.features[450:].shape) * 50
    scrambled.next_returns[450:] = rng.normal(size=(150, 3))
    scrambled.sigma[450:] = 5.0
    obj2 = WalkForwardObjective(SpyModel, space, scrambled, folds, ("sharpe", "max_drawdown"))
    again = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    again.optimize(obj2, n_trials=3)
    assert [t.values for t in again.trials] == before


def test_objective_reports_epochs_and_prunes_through_the_fit_callback():
    ds = synthetic_dataset(T=500, N=2)
    folds = tuning_folds(ds.index, n_folds=2)
    obj = WalkForwardObjective(CraftedModel, parse_space({"quality": (-1.0, 1.0)}), ds, folds,
                               fixed={"epochs": 4})
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.ThresholdPruner(lower=0.0))
    study.enqueue_trial({"quality": 0.5})
    study.enqueue_trial({"quality": -0.5})
    study.optimize(obj, n_trials=2)
    good, bad = study.trials
    assert good.state.name == "COMPLETE"
    assert good.intermediate_values == {0: 0.5, 1: 1.0, 2: 1.5, 3: 2.0, 4: 0.5, 5: 1.0,
                                        6: 1.5, 7: 2.0}
    assert set(good.user_attrs) >= {"worker", "metrics", "fold_sharpe"}
    assert len(good.user_attrs["fold_sharpe"]) == 2
    assert bad.state.name == "PRUNED" and bad.intermediate_values == {0: -0.5}


def test_a_minimised_objective_is_not_pruned_on_the_validation_sharpe():
    """The reported Sharpe is higher-is-better: a minimise study would prune the best ones."""
    ds = synthetic_dataset(T=500, N=2)
    folds = tuning_folds(ds.index, n_folds=2)
    for name in ("max_drawdown", "turnover", "annual_vol"):
        obj = WalkForwardObjective(CraftedModel, parse_space({"quality": (-1.0, 1.0)}), ds,
                                   folds, (name,), fixed={"epochs": 4})
        # prunes any trial that reports a value above 0 (i.e. a positive Sharpe)
        study = optuna.create_study(direction="minimize",
                                    pruner=optuna.pruners.ThresholdPruner(upper=0.0))
        study.enqueue_trial({"quality": 0.5})
        study.optimize(obj, n_trials=1)
        (t,) = study.trials
        assert t.state.name == "COMPLETE", name
        assert t.intermediate_values == {}
    # a maximised objective other than the Sharpe still prunes on it
    obj = WalkForwardObjective(CraftedModel, parse_space({"quality": (-1.0, 1.0)}), ds, folds,
                               ("calmar",), fixed={"epochs": 4})
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.ThresholdPruner(lower=0.0))
    study.enqueue_trial({"quality": -0.5})
    study.optimize(obj, n_trials=1)
    assert study.trials[0].state.name == "PRUNED"


def test_tune_with_a_minimised_objective_keeps_the_high_sharpe_trials(tmp_path, monkeypatch):
    from workbench.tuning import tune

    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path))
    res = tune(CraftedModel, {"quality": (-1.0, 1.0)}, data=synthetic_dataset(T=500, N=2),
               objectives="max_drawdown", n_trials=12, fixed={"epochs": 5}, n_folds=2,
               refit=False, progress=False)
    # before: the median pruner stopped every trial whose validation Sharpe was above
    # the median (all positive-quality trials), as if a lower Sharpe were better
    assert set(res.trials.state) == {"COMPLETE"}


def test_fold_k_starts_at_the_same_step_in_every_trial_when_epochs_are_searched():
    """The pruner compares step s across trials: it must be the same validation block."""
    ds = synthetic_dataset(T=500, N=2)
    folds = tuning_folds(ds.index, n_folds=2)
    obj = WalkForwardObjective(CraftedModel, parse_space({"quality": (-1.0, 1.0),
                                                          "epochs": (1, 4)}), ds, folds)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"quality": 0.5, "epochs": 2})
    study.enqueue_trial({"quality": 0.5, "epochs": 4})
    study.optimize(obj, n_trials=2)
    short, long_ = (t.intermediate_values for t in study.trials)
    # fold 1 starts at step 4 (the most epochs in the space) for both; before, the
    # 2-epoch trial reported fold 1 at steps 2-3, beside the 4-epoch trial's fold 0
    assert short == {0: 0.5, 1: 1.0, 4: 0.5, 5: 1.0}
    assert long_ == {0: 0.5, 1: 1.0, 2: 1.5, 3: 2.0, 4: 0.5, 5: 1.0, 6: 1.5, 7: 2.0}


def _reference_sharpe(close, sigma, nxt, blocks, lookback, cost_bps, target_vol=0.15):
    """From scratch: TSMOM sign(p_t / p_{t-k} - 1) on each asset's own bars, vol-targeted
    returns net of c * target_vol * |X_t/sigma_t - X_{t-1}/sigma_{t-1}| (each block starts
    flat; the book is held over an asset's missing bars), averaged over the assets with a
    bar, concatenated over the blocks; Sharpe = mean / std(ddof=1) * sqrt(252)."""
    T, N = close.shape
    X = np.full((T, N), np.nan)
    for j in range(N):
        rows = np.flatnonzero(np.isfinite(close[:, j]))
        c = close[rows, j]
        X[rows[lookback:], j] = np.sign(c[lookback:] / c[:-lookback] - 1.0)
    out = []
    for b in blocks:
        prev = np.zeros(N)
        for t in range(b.start, b.stop):
            present = np.isfinite(sigma[t]) & (sigma[t] > 0)
            total, any_ret = 0.0, False
            for j in np.flatnonzero(present):
                x = X[t, j] if np.isfinite(X[t, j]) else 0.0
                s = x / sigma[t, j]
                cost = cost_bps * 1e-4 * target_vol * abs(s - prev[j])
                prev[j] = s
                if np.isfinite(nxt[t, j]):
                    total += target_vol * s * nxt[t, j] - cost
                    any_ret = True
            if any_ret:
                out.append(total / present.sum())
    r = np.asarray(out)
    return r.mean() / r.std(ddof=1) * np.sqrt(252.0), len(r)


def test_tsmom_objective_matches_a_from_scratch_walk_forward_on_bundled_data():
    from workbench.data import load_universe
    from workbench.models import MomentumDataset
    from workbench.tuning import TSMOMStrategy

    bars = load_universe("daily", start="2004-01-01", end="2010-12-31")
    ds = MomentumDataset.from_bars(bars)
    folds = tuning_folds(ds.index, test_start="2009-06-01", n_folds=3, embargo=1)
    idx = ds.index
    # the real calendar: blocks tile, one embargo bar before each block and the test start
    test_row = int(idx.searchsorted(pd.Timestamp("2009-06-01", tz="UTC")))
    assert folds[-1].valid.stop + 1 == test_row and idx[test_row] == pd.Timestamp(
        "2009-06-01", tz="UTC")
    for k, f in enumerate(folds):
        assert f.train.stop == f.valid.start - 1
        assert idx[f.train.stop - 1] < f.valid_start and f.valid_end < idx[test_row]
        if k:
            assert f.valid.start == folds[k - 1].valid.stop
    obj = WalkForwardObjective(TSMOMStrategy, parse_space({"lookback": (21, 252)}), ds, folds,
                               cost_bps=7.0)
    close = np.asarray(bars["close"], dtype=float)
    for lookback in (63, 252):
        study = optuna.create_study(direction="maximize")
        study.enqueue_trial({"lookback": lookback})
        study.optimize(obj, n_trials=1)
        (trial,) = study.trials
        ref, n_days = _reference_sharpe(close, ds.sigma, ds.next_returns,
                                        [f.valid for f in folds], lookback, 7.0)
        assert trial.value == pytest.approx(ref, rel=1e-10, abs=1e-12)
        assert trial.user_attrs["metrics"]["n_days"] == n_days
        for f, got in zip(folds, trial.user_attrs["fold_sharpe"]):
            want, _ = _reference_sharpe(close, ds.sigma, ds.next_returns, [f.valid], lookback,
                                        7.0)
            assert got == pytest.approx(want, rel=1e-10, abs=1e-12)
