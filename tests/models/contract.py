"""Reusable contract checks for zoo members (torch and LightGBM alike).

Each ``check_*`` takes ``make(**overrides) -> unfitted model`` (small, fast settings) or a
fitted model, and asserts one part of the estimator contract of DESIGN.md section 4.
"""

import json

import numpy as np
import torch

from workbench.models import score_positions

from .conftest import synthetic_dataset

TRAIN, VALID = slice(0, 400), slice(400, 500)


def check_fit_attributes(model, dataset, max_records):
    assert model.n_features_in_ == 4
    assert model.feature_names_in_ == ("f0", "f1", "f2", "f3")
    assert model.training_window_ == (0, 400, 400, 500)
    # the first and last training row's timestamps, for Ensemble's out-of-sample check
    assert model.training_dates_ == (dataset.index[0].isoformat(),
                                     dataset.index[399].isoformat())
    assert 1 <= len(model.history_) <= max_records
    assert {"epoch", "train_loss", "valid_sharpe", "seconds"} <= set(model.history_[0])
    assert model.best_epoch_ in [h["epoch"] for h in model.history_]
    best = max(model.history_, key=lambda h: h["valid_sharpe"])
    assert model.best_valid_sharpe_ == best["valid_sharpe"]
    assert model.best_epoch_ == best["epoch"]
    pos = model.predict(dataset.features)
    assert pos.shape == (600, 3)
    assert np.isfinite(pos).all()
    assert np.all(np.abs(pos) <= 1.0)
    # No prediction where inputs are missing (asset 1 warm-up): flat; elsewhere not flat.
    assert np.all(pos[:20, 1] == 0.0)
    assert np.all(pos[20:, 1] != 0.0)
    # The validation Sharpe kept is the one of the model's own predictions.
    np.testing.assert_allclose(score_positions(pos, dataset, VALID, within=True),
                               model.best_valid_sharpe_,
                               rtol=1e-6)
    # rows= computes only those rows, identically.
    part = model.predict(dataset.features, rows=slice(450, 520))
    np.testing.assert_array_equal(part[450:520], pos[450:520])
    assert np.all(part[:450] == 0.0) and np.all(part[520:] == 0.0)


def check_causal(model, dataset):
    base = model.predict(dataset.features)
    for t in (30, 200, 421, 598):
        pert = dataset.features.copy()
        pert[t + 1 :] = np.random.default_rng(t).normal(size=pert[t + 1 :].shape) * 10
        out = model.predict(pert)
        np.testing.assert_array_equal(out[: t + 1], base[: t + 1])
        if t < 590:
            assert not np.array_equal(out[t + 1 :], base[t + 1 :])


def check_deterministic(make, dataset):
    a = make().fit(dataset, TRAIN, VALID)
    b = make().fit(dataset, TRAIN, VALID)
    assert [h["train_loss"] for h in a.history_] == [h["train_loss"] for h in b.history_]
    np.testing.assert_array_equal(a.predict(dataset.features), b.predict(dataset.features))
    c = make(seed=a.seed + 1).fit(dataset, TRAIN, VALID)
    assert not np.array_equal(a.predict(dataset.features), c.predict(dataset.features))


def check_no_target_after_train_window(make, dataset):
    m1 = make().fit(dataset, slice(0, 300))
    changed = dataset.next_returns.copy()
    changed[299:] = 0.5  # the target of row 299 is the return realised at row 300
    ds2 = type(dataset)(**{**dataset.__dict__, "next_returns": changed})
    m2 = make().fit(ds2, slice(0, 300))
    np.testing.assert_array_equal(m1.predict(dataset.features), m2.predict(dataset.features))
    # ... while the targets inside the window do matter.
    changed[:299] = -changed[:299]
    ds3 = type(dataset)(**{**dataset.__dict__, "next_returns": changed})
    m3 = make().fit(ds3, slice(0, 300))
    assert not np.array_equal(m1.predict(dataset.features), m3.predict(dataset.features))


def check_learns(make):
    ds = synthetic_dataset(T=1500, N=4, seed=3)
    m = make().fit(ds, slice(0, 1000), slice(1000, 1200))
    assert m.best_valid_sharpe_ > 1.0
    assert m.history_[0]["train_loss"] > min(h["train_loss"] for h in m.history_)
    return m


def check_registry_round_trip(model, dataset):
    """Hooks through the registry's formats: safetensors bytes and strict-ish JSON."""
    from safetensors.torch import load, save

    tensors, meta = model._registry_state()
    tensors2 = load(save(tensors)) if tensors else {}
    meta2 = json.loads(json.dumps(meta))
    restored = type(model)._registry_restore(model.get_params(), tensors2, meta2)
    assert type(restored) is type(model)
    np.testing.assert_array_equal(restored.predict(dataset.features),
                                  model.predict(dataset.features))
    x = np.nan_to_num(dataset.features[100:121].transpose(1, 0, 2))
    np.testing.assert_array_equal(restored.predict_sequences(x), model.predict_sequences(x))
    for attr in ("n_features_in_", "feature_names_in_", "best_epoch_", "best_valid_sharpe_",
                 "training_window_", "training_dates_"):
        assert getattr(restored, attr) == getattr(model, attr), attr
    assert restored.history_ == model.history_
    assert restored.get_params() == model.get_params()


def check_params_api(make, own_first):
    m = make()
    params = m.get_params()
    assert list(params)[: len(own_first)] == list(own_first)
    assert {"seed", "target_vol", "cost_bps", "patience", "progress"} <= set(params)
    assert m.set_params(seed=11) is m and m.seed == 11
    assert repr(m).startswith(type(m).__name__ + "(") and "seed=11" in repr(m)
    try:
        m.set_params(no_such_param=1)
    except ValueError as exc:
        assert "no_such_param" in str(exc)
    else:
        raise AssertionError("set_params accepted an unknown name")
    # scikit-learn's clone: same hyperparameters, a new unfitted object
    from sklearn.base import clone

    assert m.get_params(deep=False) == m.get_params()
    c = clone(m)
    assert type(c) is type(m) and c is not m and c.get_params() == m.get_params()
    assert not [k for k in vars(c) if k.endswith("_") and not k.startswith("_")]


def check_forward_last(network, n_features, lengths=(1, 2, 5, 21, 64)):
    network.eval()
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for L in lengths:
            x = torch.randn(5, L, n_features, generator=g)
            full = network(x)
            assert full.shape == (5, L)
            last = network.forward_last(x)
            assert last.shape == (5,)
            torch.testing.assert_close(last, full[:, -1], atol=1e-6, rtol=0)


def check_predict_sequences_is_last_step(model, dataset):
    x = dataset.features[300:342].transpose(1, 0, 2).copy()  # (N, 42, F)
    x[1, 5] = np.nan  # read as 0, like the training windows
    got = model.predict_sequences(x)
    assert got.shape == (3,)
    with torch.inference_mode():
        want = model.network_.eval()(torch.as_tensor(np.nan_to_num(x), dtype=torch.float32))
    np.testing.assert_allclose(got, want[:, -1].numpy(), atol=1e-6, rtol=0)


def check_validation_ignores_returns_after_block(make, dataset):
    """Early stopping never reads a return realised at or after ``VALID.stop``.

    The last validation row's target ``r_{t+1}`` is the first return of the next block
    (the test block when the splits have no embargo): changing every return realised
    from that bar on must leave the validation scores, and so the fit, unchanged.
    """
    m1 = make().fit(dataset, TRAIN, VALID)
    later = dataset.next_returns.copy()
    later[VALID.stop - 1 :] = 0.5 * np.sign(later[VALID.stop - 1 :] + 1e-12)
    ds2 = type(dataset)(**{**dataset.__dict__, "next_returns": later})
    m2 = make().fit(ds2, TRAIN, VALID)
    assert [h["valid_sharpe"] for h in m2.history_] == [h["valid_sharpe"] for h in m1.history_]
    assert m2.best_epoch_ == m1.best_epoch_
    np.testing.assert_array_equal(m1.predict(dataset.features), m2.predict(dataset.features))


def gapped_dataset():
    """``synthetic_dataset`` with asset 0 missing bars 297..305 (a trading halt)."""
    ds = synthetic_dataset()
    close, feats, nxt = ds.close.copy(), ds.features.copy(), ds.next_returns.copy()
    close[297:306, 0] = np.nan
    feats[297:306, 0] = np.nan
    nxt[297:306, 0] = np.nan
    nxt[296, 0] = close[306, 0] / close[296, 0] - 1.0  # realised at the next bar, row 306
    return type(ds)(**{**ds.__dict__, "close": close, "features": feats, "next_returns": nxt})


def check_no_target_after_train_window_with_gap(make):
    """A target realised after the window across a gap (next bar past ``stop``) is unused."""
    ds = gapped_dataset()
    m1 = make().fit(ds, slice(0, 300))
    changed = ds.next_returns.copy()
    changed[296, 0] = 0.5  # realised at row 306, after the training window [0, 300)
    ds2 = type(ds)(**{**ds.__dict__, "next_returns": changed})
    m2 = make().fit(ds2, slice(0, 300))
    np.testing.assert_array_equal(m1.predict(ds.features), m2.predict(ds.features))


def check_empty_valid_means_no_validation(make, dataset):
    """``slice(s, s)`` (``walk_forward_splits(valid_fraction=0)``) trains like ``None``."""
    import pytest

    a = make().fit(dataset, TRAIN)
    b = make().fit(dataset, TRAIN, slice(400, 400))
    assert len(b.history_) == len(a.history_) and b.best_epoch_ == a.best_epoch_
    np.testing.assert_array_equal(a.predict(dataset.features), b.predict(dataset.features))
    with pytest.raises(ValueError, match=r"valid=slice\(700, 800, None\) selects no row"):
        make().fit(dataset, TRAIN, slice(700, 800))
