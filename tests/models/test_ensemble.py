import copy
import re

import numpy as np
import pytest
import torch

from workbench.models import (
    DeepMomentumLSTM,
    Ensemble,
    EnsembleWalkForward,
    score_positions,
    sharpe_loss,
    walk_forward_ensemble,
)
from workbench.models._ensemble import _combined_sharpe_loss

from .conftest import synthetic_dataset


class SignalMember:
    """A tiny causal member: position = tanh(scale * feature[t]); 'fit' records its rows."""

    def __init__(self, feature=0, scale=1.0, context_length=5):
        self.feature = feature
        self.scale = scale
        self.context_length = context_length

    def fit(self, dataset, train, valid=None, *, callbacks=()):
        self.fit_rows_ = (train, valid)
        self.n_features_in_ = dataset.features.shape[-1]
        self.feature_names_in_ = tuple(dataset.feature_names)
        self.history_ = []
        for epoch in (1, 2):
            rec = {"epoch": epoch, "train_loss": -float(epoch), "valid_sharpe": np.nan,
                   "seconds": 0.0}
            self.history_.append(rec)
            for cb in callbacks:
                cb(self, rec)
        self.best_valid_sharpe_ = (score_positions(self.predict(dataset.features, valid),
                                                   dataset, valid)
                                   if valid is not None else np.nan)
        return self

    def predict(self, features, rows=None):
        T = features.shape[0]
        rows = rows or slice(0, T)
        out = np.zeros(features.shape[:2])
        out[rows] = np.nan_to_num(np.tanh(self.scale * features[rows, :, self.feature]))
        return out

    def predict_sequences(self, x):
        return np.nan_to_num(np.tanh(self.scale * np.asarray(x)[:, -1, self.feature]))


def _lstm(**kw):
    base = dict(hidden_size=8, seq_len=21, burn_in=21, epochs=2, patience=2, batch_size=16,
                lr=5e-3, seed=7, device="cpu", progress=False)
    base.update(kw)
    return DeepMomentumLSTM(**base)


@pytest.fixture(scope="module")
def fitted_lstm():
    return _lstm(epochs=1).fit(synthetic_dataset(), slice(0, 400), slice(400, 500))


def _members(ds, train=slice(0, 400), valid=slice(400, 500)):
    # f0 drives next returns in the synthetic data: +f0 is good, -f0 is bad, f2 is noise.
    return {
        "good": SignalMember(0, 1.0).fit(ds, train, valid),
        "weak": SignalMember(0, 0.05).fit(ds, train, valid),
        "noise": SignalMember(2, 1.0).fit(ds, train, valid),
        "bad": SignalMember(0, -1.0).fit(ds, train, valid),
    }


def _replace(ds, **kw):
    return type(ds)(**{**ds.__dict__, **kw})


@pytest.mark.parametrize("method", ["equal", "confidence", "stacking"])
def test_weights_sum_to_one(dataset, method):
    ens = Ensemble(_members(dataset), method).fit(dataset, slice(400, 500))
    w = np.array(list(ens.weights_.values()))
    assert list(ens.weights_) == ["good", "weak", "noise", "bad"] == list(ens.names)
    assert np.all(w >= 0)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert ens.valid_rows_ == (400, 500)
    assert set(ens.confidences_) == set(ens.names)
    pos = ens.predict(dataset.features)
    assert pos.shape == (600, 3) and np.all(np.abs(pos) <= 1.0)


def test_confidence_weights_follow_validation_sharpe(dataset):
    ens = Ensemble(_members(dataset), "confidence").fit(dataset, slice(400, 500))
    c, w = ens.confidences_, ens.weights_
    assert c["good"] > 0 and c["bad"] < 0
    assert c["bad"] == pytest.approx(-c["good"])  # the mirrored member
    positive = sorted((n for n in c if c[n] > 0), key=c.get)
    assert [w[n] for n in positive] == sorted(w[n] for n in positive)
    for n in c:
        if c[n] > 0:
            assert w[n] == pytest.approx(c[n] / sum(max(v, 0) for v in c.values()))
        else:
            assert w[n] == 0.0
    # Confidences are each member's own validation Sharpe.
    m = ens.members["noise"]
    assert c["noise"] == pytest.approx(score_positions(m.predict(dataset.features), dataset,
                                                       slice(400, 500), within=True))


def test_confidence_falls_back_to_equal_when_no_member_is_positive(dataset):
    members = {"bad": SignalMember(0, -1.0).fit(dataset, slice(0, 400), slice(400, 500)),
               "bad2": SignalMember(0, -0.5).fit(dataset, slice(0, 400), slice(400, 500))}
    ens = Ensemble(members, "confidence").fit(dataset, slice(400, 500))
    assert all(v < 0 for v in ens.confidences_.values())
    assert ens.weights_ == {"bad": 0.5, "bad2": 0.5}


def test_stacking_uses_only_validation_rows(dataset):
    members = _members(dataset)
    valid = slice(400, 500)
    base = Ensemble(members, "stacking").fit(dataset, valid).weights_
    outside = dataset.next_returns.copy()
    rng = np.random.default_rng(1)
    outside[:400] = rng.normal(scale=0.05, size=outside[:400].shape)
    outside[500:-1] = rng.normal(scale=0.05, size=outside[500:-1].shape)
    w_out = Ensemble(members, "stacking").fit(_replace(dataset, next_returns=outside),
                                              valid).weights_
    assert w_out == base
    inside = dataset.next_returns.copy()
    inside[400:500] = -inside[400:500] + rng.normal(scale=0.01, size=inside[400:500].shape)
    w_in = Ensemble(members, "stacking").fit(_replace(dataset, next_returns=inside),
                                             valid).weights_
    assert not np.allclose(list(w_in.values()), list(base.values()), atol=1e-6)


def test_stacking_beats_equal_on_good_plus_noise():
    ds = synthetic_dataset(T=800, N=4, seed=5)
    tr, va = slice(0, 500), slice(500, 800)
    members = {"good": SignalMember(0, 2.0).fit(ds, tr, va),
               "noise": SignalMember(3, 2.0).fit(ds, tr, va)}
    eq = Ensemble(members, "equal").fit(ds, va)
    st = Ensemble(members, "stacking", shrinkage=0.1).fit(ds, va)
    assert st.best_valid_sharpe_ >= eq.best_valid_sharpe_ - 1e-9
    assert st.best_valid_sharpe_ > eq.best_valid_sharpe_ + 0.1
    assert st.weights_["good"] > 0.7
    # best_valid_sharpe_ is the Sharpe of the combined positions on the valid rows.
    assert st.best_valid_sharpe_ == pytest.approx(
        score_positions(st.predict(ds.features), ds, va, within=True))
    # Heavy shrinkage keeps the weights near equal; the objective never loses to equal.
    shrunk = Ensemble(members, "stacking", shrinkage=1e4).fit(ds, va)
    assert abs(shrunk.weights_["good"] - 0.5) < 0.01
    assert shrunk.best_valid_sharpe_ >= eq.best_valid_sharpe_ - 1e-9
    # Deterministic given the seed.
    again = Ensemble(members, "stacking", shrinkage=0.1).fit(ds, va)
    assert again.weights_ == st.weights_


@pytest.mark.parametrize("cost_bps", [0.0, 10.0])
def test_stacking_objective_is_the_sharpe_loss_of_the_combination(dataset, cost_bps):
    members = _members(dataset)
    valid = slice(400, 500)
    pos = np.stack([m.predict(dataset.features) for m in members.values()])
    pos[1, 450:] = 0.3  # a member with turnover unlike the others
    f = _combined_sharpe_loss(pos, dataset, valid, target_vol=0.15, cost_bps=cost_bps)
    ok = dataset.valid_mask(before=valid.stop)[valid]
    rng = np.random.default_rng(2)
    for _ in range(3):
        w = rng.dirichlet(np.ones(4))
        x = np.tensordot(w, pos, axes=1)[valid]
        ref = sharpe_loss(torch.as_tensor(x.T), torch.as_tensor(np.nan_to_num(
            dataset.next_returns[valid]).T), torch.as_tensor(np.where(ok, dataset.sigma[valid],
                                                                    1.0).T),
            torch.as_tensor(ok.T), target_vol=0.15, cost_bps=cost_bps)
        assert float(f(torch.as_tensor(w))) == pytest.approx(float(ref), rel=1e-10)
        assert float(ref) == pytest.approx(-score_positions(
            np.tensordot(w, pos, axes=1), dataset, valid, cost_bps=cost_bps, within=True),
            rel=1e-8)


def test_stacking_with_cost_runs_and_is_convex(dataset):
    ens = Ensemble(_members(dataset), "stacking", cost_bps=5.0).fit(dataset, slice(400, 500))
    assert sum(ens.weights_.values()) == pytest.approx(1.0)
    assert ens.weights_["good"] > ens.weights_["bad"]


def test_combine_renormalises_over_active_members(dataset):
    ens = Ensemble(_members(dataset), "confidence").fit(dataset, slice(400, 500))
    w = np.array([ens.weights_[n] for n in ens.names])
    rng = np.random.default_rng(0)
    pos = rng.uniform(-1, 1, size=(4, 7))
    np.testing.assert_allclose(ens.combine(pos), w @ pos)
    active = np.array([True, False, True, True])
    expected = (w * active) @ pos / (w * active).sum()
    pos_nan = pos.copy()
    pos_nan[1] = np.nan  # a failed member's output is never read
    np.testing.assert_allclose(ens.combine(pos_nan, active), expected)
    t = torch.as_tensor(pos_nan, dtype=torch.float32)
    out = ens.combine(t, torch.as_tensor(active))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (7,)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)
    none = np.zeros(4, dtype=bool)
    np.testing.assert_array_equal(ens.combine(pos_nan, none), np.zeros(7))
    np.testing.assert_array_equal(ens.combine(t, torch.as_tensor(none)).numpy(), np.zeros(7))
    with pytest.raises(ValueError, match=r"positions must have shape \(4, B\)"):
        ens.combine(pos[:3])
    with pytest.raises(ValueError, match=r"active must have shape \(4,\)"):
        ens.combine(pos, active[:2])


def test_ensemble_predictions_are_causal(dataset, fitted_lstm):
    members = {"lstm": fitted_lstm,
               "sig": SignalMember(0, 1.0).fit(dataset, slice(0, 400), slice(400, 500))}
    for method in ("equal", "stacking"):
        ens = Ensemble(members, method).fit(dataset, slice(400, 500))
        base = ens.predict(dataset.features)
        for t in (30, 421, 560):
            pert = dataset.features.copy()
            pert[t + 1 :] = np.random.default_rng(t).normal(size=pert[t + 1 :].shape) * 10
            out = ens.predict(pert)
            np.testing.assert_array_equal(out[: t + 1], base[: t + 1])
            assert not np.array_equal(out[t + 1 :], base[t + 1 :])


def test_validation_rows_before_a_members_last_training_date_are_refused(dataset,
                                                                          fitted_lstm):
    # fitted_lstm trained on rows 0:400, so it read returns realised up to row 399's date:
    # a decision at row 398 is scored on row 399's return, which it was trained on
    members = {"lstm": fitted_lstm,
               "sig": SignalMember(0, 1.0).fit(dataset, slice(0, 400), slice(400, 500))}
    last = re.escape(dataset.index[399].isoformat())
    with pytest.raises(ValueError, match=rf"member 'lstm'.*{last}.*in sample"):
        Ensemble(members).fit(dataset, slice(398, 500))
    with pytest.raises(ValueError, match="member 'lstm'"):
        Ensemble(members, "stacking").fit(dataset, slice(0, 500))
    Ensemble(members).fit(dataset, slice(399, 500))  # first return read: row 400's
    # by date, not by row: the same rows of a dataset that starts 100 bars later are
    # after the member's training window
    later = _replace(dataset, index=dataset.index + 100 * dataset.index.freq)
    Ensemble(members).fit(later, slice(300, 500))
    # a member without recorded dates (a folder saved before they were kept) is not checked
    old = copy.copy(fitted_lstm)
    old.training_dates_ = ()
    Ensemble({"lstm": old}).fit(dataset, slice(300, 500))


def test_predict_sequences_combines_member_contexts(dataset, fitted_lstm):
    lstm = fitted_lstm
    sig = SignalMember(0, 1.0, context_length=3).fit(dataset, slice(0, 400), slice(400, 500))
    ens = Ensemble([lstm, sig, SignalMember(1, 1.0).fit(dataset, slice(0, 400))],
                   "confidence").fit(dataset, slice(400, 500))
    assert ens.names == ("DeepMomentumLSTM", "SignalMember", "SignalMember_2")
    assert ens.context_length == 42
    x = np.random.default_rng(0).normal(size=(5, 50, 4))
    got = ens.predict_sequences(x)
    w = ens.weights_
    expected = (w["DeepMomentumLSTM"] * lstm.predict_sequences(x[:, -42:])
                + w["SignalMember"] * sig.predict_sequences(x[:, -3:])
                + w["SignalMember_2"] * ens.members["SignalMember_2"].predict_sequences(x))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="context_length=42"):
        ens.predict_sequences(x[:, :41])
    with pytest.raises(ValueError, match=r"shape \(B, L, 4\)"):
        ens.predict_sequences(x[:, :, :3])


def test_member_positions_and_predict_agree(dataset):
    ens = Ensemble(_members(dataset), "stacking").fit(dataset, slice(400, 500))
    mp = ens.member_positions(dataset.features, rows=slice(500, 600))
    assert list(mp) == list(ens.names)
    assert all(p.shape == (600, 3) for p in mp.values())
    comb = sum(ens.weights_[n] * mp[n] for n in ens.names)
    np.testing.assert_allclose(ens.predict(dataset.features, rows=slice(500, 600)), comb)


def test_members_disagreeing_on_feature_names(dataset):
    other = _replace(dataset, feature_names=("g0", "g1", "g2", "g3"))
    members = {"a": SignalMember().fit(dataset, slice(0, 400)),
               "b": SignalMember().fit(other, slice(0, 400))}
    ens = Ensemble(members)
    with pytest.raises(ValueError, match="members disagree on feature_names_in_: 'a' has"):
        ens.fit(dataset, slice(400, 500))
    with pytest.raises(ValueError, match="feature_names_in_"):
        _ = ens.feature_names_in_
    same = Ensemble({"a": members["a"]})
    with pytest.raises(ValueError, match="dataset feature_names"):
        same.fit(other, slice(400, 500))


def test_unfitted_member_and_unfitted_ensemble(dataset):
    ens = Ensemble({"ok": SignalMember().fit(dataset, slice(0, 400)), "raw": _lstm()})
    with pytest.raises(ValueError, match="member 'raw' \\(DeepMomentumLSTM\\) is not fitted"):
        ens.fit(dataset, slice(400, 500))
    fitted = Ensemble({"ok": SignalMember().fit(dataset, slice(0, 400))})
    with pytest.raises(ValueError, match="Ensemble is not fitted"):
        fitted.predict(dataset.features)
    with pytest.raises(ValueError, match="Ensemble is not fitted"):
        fitted.combine(np.zeros((1, 3)))


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"method": "median"}, "method must be one of"),
     ({"shrinkage": -1.0}, "shrinkage must be a finite number >= 0, got -1.0"),
     ({"target_vol": 0}, "target_vol must be a finite number > 0, got 0"),
     ({"cost_bps": -2}, "cost_bps must be a finite number >= 0, got -2"),
     ({"seed": -1}, "seed must be an int >= 0, got -1")],
)
def test_bad_parameters_name_parameter(dataset, kw, match):
    with pytest.raises(ValueError, match=match):
        Ensemble({"a": SignalMember().fit(dataset, slice(0, 400))}, **kw).fit(
            dataset, slice(400, 500))


def test_bad_members_and_valid(dataset):
    with pytest.raises(ValueError, match="at least one member"):
        Ensemble({})
    with pytest.raises(ValueError, match="members must be a mapping"):
        Ensemble(3)
    ens = Ensemble({"a": SignalMember().fit(dataset, slice(0, 400))})
    with pytest.raises(ValueError, match="valid must select rows"):
        ens.fit(dataset, slice(500, 400))
    with pytest.raises(ValueError, match="valid must be a slice"):
        ens.fit(dataset, [400, 401])


def test_registry_state_round_trip(dataset):
    members = _members(dataset)
    ens = Ensemble(members, "stacking", shrinkage=0.5).fit(dataset, slice(400, 500))
    tensors, meta = ens._registry_state()
    assert tensors["weights"].dtype == torch.float64 and tensors["weights"].shape == (4,)
    assert meta["names"] == ["good", "weak", "noise", "bad"] and meta["method"] == "stacking"
    assert meta["params"] == ens.get_params()
    assert ens.get_params() == {"method": "stacking", "target_vol": 0.15, "cost_bps": 0.0,
                                "shrinkage": 0.5, "seed": 0}
    back = Ensemble._registry_restore(meta["params"], tensors, meta,
                                      dict(reversed(members.items())))
    assert back.names == ens.names and back.weights_ == ens.weights_
    assert back.confidences_ == ens.confidences_ and back.valid_rows_ == (400, 500)
    np.testing.assert_array_equal(back.predict(dataset.features), ens.predict(dataset.features))
    with pytest.raises(ValueError, match="saved members"):
        Ensemble._registry_restore(meta["params"], tensors, meta, {"good": members["good"]})


class _S:
    def __init__(self, tr, va, te):
        self.train, self.valid, self.test = tr, va, te


SPLITS = [_S(slice(0, 300), slice(300, 350), slice(350, 450)),
          _S(slice(0, 400), slice(400, 450), slice(450, 600))]


def test_walk_forward_ensemble_stitches_test_blocks(dataset):
    records = []
    factories = {"lstm": lambda k: _lstm(epochs=1, seed=k),
                 "sig": lambda k: SignalMember(0, 1.0),
                 "noise": lambda k: SignalMember(2, 1.0)}
    res = walk_forward_ensemble(factories, dataset, SPLITS, progress=False,
                                callbacks=[lambda m, rec: records.append(rec)])
    assert isinstance(res, EnsembleWalkForward)
    names = ["lstm", "sig", "noise", "ensemble_equal", "ensemble_confidence",
             "ensemble_stacking"]
    assert list(res.positions) == names
    for n in names:
        p = res.positions[n]
        assert p.shape == (600, 3)
        assert np.isnan(p[:350]).all() and np.isfinite(p[350:]).all()
        assert np.all(np.abs(p[350:]) <= 1.0)
    assert res.test_rows.sum() == 250
    # Each test block holds the fold's own predictions.
    for k, sp in enumerate(SPLITS):
        np.testing.assert_array_equal(
            res.positions["ensemble_stacking"][sp.test],
            res.ensembles[k]["stacking"].predict(dataset.features, rows=sp.test)[sp.test])
        assert res.models[k]["lstm"].training_window_ == (0, sp.train.stop, sp.valid.start,
                                                          sp.valid.stop)
        assert res.models[k]["sig"].fit_rows_ == (sp.train, sp.valid)
        assert res.ensembles[k]["confidence"].valid_rows_ == (sp.valid.start, sp.valid.stop)
    assert len(res.weights) == 2 * 3 * 3
    assert list(res.weights.columns) == ["fold", "method", "member", "weight", "confidence"]
    np.testing.assert_allclose(res.weights.groupby(["fold", "method"])["weight"].sum(), 1.0)
    assert {"fold", "member", "epoch", "train_loss", "valid_sharpe"} <= set(res.history.columns)
    assert set(res.history["member"]) == {"lstm", "sig", "noise"}
    assert list(res.folds["fold"]) == [0, 1]
    assert "test_sharpe_ensemble_stacking" in res.folds and "valid_sharpe_lstm" in res.folds
    assert {(r["fold"], r["member"]) for r in records} == {(k, n) for k in (0, 1)
                                                         for n in ("lstm", "sig", "noise")}
    sh = res.sharpe(dataset)
    assert list(sh.index) == names and np.isfinite(sh).all()


def test_walk_forward_ensemble_never_fits_on_test_rows(dataset):
    factories = {"lstm": lambda k: _lstm(epochs=1, seed=k), "sig": lambda k: SignalMember(0, 1.0),
                 "noise": lambda k: SignalMember(2, 1.0)}
    one = SPLITS[:1]
    res = walk_forward_ensemble(factories, dataset, one, progress=False)
    changed = dataset.next_returns.copy()
    changed[350:-1] = np.random.default_rng(3).normal(scale=0.05, size=changed[350:-1].shape)
    res2 = walk_forward_ensemble(factories, _replace(dataset, next_returns=changed), one,
                                 progress=False)
    for n, p in res.positions.items():
        np.testing.assert_array_equal(res2.positions[n], p)
    for method in ("equal", "confidence", "stacking"):
        assert res2.ensembles[0][method].weights_ == res.ensembles[0][method].weights_


def test_walk_forward_ensemble_rejects_bad_setup(dataset):
    fac = {"sig": lambda k: SignalMember()}
    with pytest.raises(ValueError, match="overlap"):
        walk_forward_ensemble(fac, dataset, [_S(slice(0, 300), slice(280, 350),
                                                slice(350, 400))], progress=False)
    with pytest.raises(ValueError, match="splits is empty"):
        walk_forward_ensemble(fac, dataset, [], progress=False)
    with pytest.raises(ValueError, match="methods must be"):
        walk_forward_ensemble(fac, dataset, SPLITS, methods=("mean",), progress=False)
    with pytest.raises(ValueError, match="member_factories"):
        walk_forward_ensemble({}, dataset, SPLITS, progress=False)


def test_walk_forward_with_zoo_members(dataset):
    from workbench.models import BoostedTreesModel, LinearModel

    factories = {
        "linear": lambda k: LinearModel(seq_len=21, burn_in=21, epochs=1, patience=1,
                                        batch_size=16, lr=5e-3, seed=k, device="cpu",
                                        progress=False),
        "trees": lambda k: BoostedTreesModel(n_estimators=8, num_leaves=7, patience=8, n_jobs=1,
                                             seed=k, progress=False),
    }
    res = walk_forward_ensemble(factories, dataset, SPLITS, methods=("confidence", "stacking"),
                                progress=False)
    assert list(res.positions) == ["linear", "trees", "ensemble_confidence",
                                   "ensemble_stacking"]
    for p in res.positions.values():
        assert np.isnan(p[:350]).all() and np.isfinite(p[350:]).all()
    ens = res.ensembles[1]["stacking"]
    assert ens.context_length == 42
    x = np.random.default_rng(0).normal(size=(4, 42, 4))
    got = ens.predict_sequences(x)
    w = ens.weights_
    expected = (w["linear"] * ens.members["linear"].predict_sequences(x)
                + w["trees"] * ens.members["trees"].predict_sequences(x[:, -1:]))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("method", ["equal", "confidence", "stacking"])
@pytest.mark.parametrize("cost_bps", [0.0, 10.0])
def test_weights_ignore_returns_realised_after_the_validation_block(dataset, method, cost_bps):
    """The last validation row's r_{t+1} is the next (test) block's first return."""
    members = _members(dataset)
    valid = slice(400, 500)
    base = Ensemble(members, method, cost_bps=cost_bps).fit(dataset, valid)
    later = dataset.next_returns.copy()
    later[499:] = 0.5 * np.sign(later[499:] + 1e-12)  # realised at rows >= 500
    moved = Ensemble(members, method, cost_bps=cost_bps).fit(
        _replace(dataset, next_returns=later), valid)
    assert moved.weights_ == base.weights_
    assert moved.confidences_ == base.confidences_
    assert moved.best_valid_sharpe_ == base.best_valid_sharpe_


class NaNMember(SignalMember):
    """Emits NaN positions on rows 450..459 (a broken member)."""

    def predict(self, features, rows=None):
        out = super().predict(features, rows)
        out[450:460] = np.nan
        return out


@pytest.mark.parametrize("method", ["equal", "confidence", "stacking"])
def test_member_with_nan_positions_on_validation_rows_is_named(dataset, method):
    """Not scored on a silent subset (confidence) nor a silent fall-back to equal (stacking)."""
    members = _members(dataset)
    members["broken"] = NaNMember(0, 1.0).fit(dataset, slice(0, 400), slice(400, 500))
    with pytest.raises(ValueError, match=r"member 'broken' returned 30 non-finite positions "
                                         r"on the validation rows 400:500 \(first at row 450"):
        Ensemble(members, method).fit(dataset, slice(400, 500))
    # outside the validation rows NaN is not read
    Ensemble(members, method).fit(dataset, slice(300, 450))
