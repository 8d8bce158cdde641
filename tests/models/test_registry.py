import hashlib
import importlib
import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from workbench.models import (
    BoostedTreesModel,
    DeepMomentumLSTM,
    _registry,
    load_model,
    read_card,
    save_model,
)

from .conftest import synthetic_dataset

TRAIN, VALID = slice(0, 400), slice(400, 500)
SEQ = dict(seq_len=21, burn_in=21, epochs=2, patience=2, batch_size=32, lr=5e-3, seed=3,
           device="cpu", progress=False)
MEMBER_KWARGS = {
    "DeepMomentumLSTM": dict(hidden_size=8, **SEQ),
    "LinearModel": dict(**SEQ),
    "MLPModel": dict(hidden_size=8, **SEQ),
    "CNNModel": dict(channels=8, kernel_size=3, num_layers=2, **SEQ),
    "MomentumTransformer": dict(d_model=8, n_heads=2, n_layers=1, **SEQ),
    "BoostedTreesModel": dict(n_estimators=60, num_leaves=15, min_child_samples=20, seed=3,
                              progress=False),
}
ALLOWED_SUFFIXES = {".json", ".safetensors", ".txt"}


@pytest.fixture(scope="module")
def ds():
    return synthetic_dataset()


def _fit(name, ds, valid=VALID):
    cls = getattr(importlib.import_module("workbench.models"), name)
    return cls(**MEMBER_KWARGS[name]).fit(ds, TRAIN, valid)


@pytest.fixture(scope="module")
def lstm(ds):
    return _fit("DeepMomentumLSTM", ds)


@pytest.fixture(scope="module")
def saved_lstm(lstm, ds, tmp_path_factory):
    path = tmp_path_factory.mktemp("reg") / "lstm"
    return save_model(lstm, path, dataset=ds, extra={"trial": 17})


def _all_files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def _assert_same_predictions(a, b, ds):
    np.testing.assert_array_equal(a.predict(ds.features), b.predict(ds.features))
    x = np.nan_to_num(ds.features[-63:].transpose(1, 0, 2))  # (N, L, F) last 63 bars
    np.testing.assert_array_equal(a.predict_sequences(x), b.predict_sequences(x))


# -- round trips -----------------------------------------------------------------------
def test_lstm_round_trip_identical_predictions(lstm, saved_lstm, ds):
    loaded = load_model(saved_lstm, feature_names=ds.feature_names)
    assert type(loaded) is DeepMomentumLSTM
    assert loaded.get_params() == lstm.get_params()
    _assert_same_predictions(lstm, loaded, ds)
    assert loaded.feature_names_in_ == lstm.feature_names_in_
    assert loaded.best_epoch_ == lstm.best_epoch_
    assert loaded.best_valid_sharpe_ == lstm.best_valid_sharpe_
    assert loaded.history_ == lstm.history_
    assert loaded.training_window_ == lstm.training_window_
    assert loaded.training_dates_ == lstm.training_dates_ != ()
    # the folder holds exactly the card and the weights: no pickle anywhere
    assert [p.name for p in _all_files(saved_lstm)] == ["card.json", "weights.safetensors"]


def test_loaded_model_is_causal(saved_lstm, ds):
    m = load_model(saved_lstm)
    base = m.predict(ds.features)
    t = 250
    pert = ds.features.copy()
    pert[t + 1:] = np.random.default_rng(0).normal(size=pert[t + 1:].shape) * 10
    out = m.predict(pert)
    np.testing.assert_array_equal(out[: t + 1], base[: t + 1])
    assert not np.array_equal(out[t + 1:], base[t + 1:])


@pytest.mark.parametrize("name", ["LinearModel", "MLPModel", "CNNModel", "MomentumTransformer",
                                  "BoostedTreesModel"])
def test_every_member_round_trips(name, ds, tmp_path):
    trees = name == "BoostedTreesModel"
    # trees without validation keep all 60 trees: a LightGBM model text over 64 kB
    model = _fit(name, ds, valid=None if trees else VALID)
    path = save_model(model, tmp_path / name, dataset=ds)
    loaded = load_model(path, feature_names=list(ds.feature_names))
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    _assert_same_predictions(model, loaded, ds)
    assert {p.suffix for p in _all_files(path)} <= ALLOWED_SUFFIXES
    card = read_card(path)
    assert card["class"] == f"{type(model).__module__}.{type(model).__name__}"
    assert ("lightgbm" in card["versions"]) == trees
    if trees:  # the model text lives in its own file, referenced and checksummed by the card
        assert "booster" not in card["state"]
        assert (path / card["state_files"]["booster"]["file"]).stat().st_size > 64 * 1024


@pytest.mark.parametrize(("method", "second"), [("equal", "LinearModel"),
                                                 ("stacking", "LinearModel"),
                                                 ("confidence", "BoostedTreesModel")])
def test_ensemble_round_trip(method, second, lstm, ds, tmp_path):
    from workbench.models import Ensemble

    other = _fit(second, ds)
    ens = Ensemble({"lstm": lstm, "other": other}, method=method).fit(ds, VALID)
    path = save_model(ens, tmp_path / "ens", dataset=ds)
    assert (path / "members" / "lstm" / "card.json").is_file()
    assert (path / "members" / "other" / "weights.safetensors").is_file()
    card = read_card(path)
    assert card["class"] == "workbench.models._ensemble.Ensemble"
    assert card["members"] == ["lstm", "other"]
    assert card["params"]["method"] == method
    assert card["training_window"]["valid_rows"] == [VALID.start, VALID.stop]
    assert ("lightgbm" in card["versions"]) == (second == "BoostedTreesModel")
    member_card = read_card(path / "members" / "other")
    assert member_card["class"].endswith(second)
    assert member_card["training_window"]["data_hash"] == ds.data_hash
    assert {p.suffix for p in _all_files(path)} <= ALLOWED_SUFFIXES
    loaded = load_model(path, feature_names=ds.feature_names)
    assert type(loaded) is Ensemble
    assert loaded.names == ens.names
    assert loaded.weights_ == ens.weights_
    assert loaded.confidences_ == ens.confidences_
    _assert_same_predictions(ens, loaded, ds)
    for name in ens.names:
        _assert_same_predictions(ens.members[name], loaded.members[name], ds)
    with pytest.raises(ValueError, match=r"reordered"):
        load_model(path, feature_names=ds.feature_names[::-1])
    (path / "members" / "other" / "weights.safetensors").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"other/weights\.safetensors is corrupt"):
        load_model(path)


# -- the card --------------------------------------------------------------------------
def test_card_holds_provenance(saved_lstm, lstm, ds):
    card = read_card(saved_lstm)
    assert card["format"] == "workbench-model/2"
    assert card["class"] == "workbench.models._lstm.DeepMomentumLSTM"
    assert card["params"] == lstm.get_params()
    assert card["feature_names"] == list(ds.feature_names)
    assert card["n_features"] == ds.features.shape[-1]
    tw = card["training_window"]
    assert tw["train_rows"] == [TRAIN.start, TRAIN.stop]
    assert tw["valid_rows"] == [VALID.start, VALID.stop]
    assert tw["train_dates"] == [ds.index[0].isoformat(), ds.index[399].isoformat()]
    assert tw["valid_dates"] == [ds.index[400].isoformat(), ds.index[499].isoformat()]
    assert tw["data_hash"] == "synthetic"
    assert tw["symbols"] == list(ds.symbols)
    assert card["metrics"]["best_valid_sharpe"] == lstm.best_valid_sharpe_
    assert set(card["versions"]) == {"python", "workbench", "torch", "numpy", "safetensors"}
    assert card["versions"]["torch"] == torch.__version__
    assert card["created"].endswith("+00:00")
    assert card["trial"] == 17
    digest = hashlib.sha256((saved_lstm / "weights.safetensors").read_bytes()).hexdigest()
    assert card["weights_sha256"] == digest


def test_card_is_strict_json_and_keeps_nan(ds, tmp_path):
    m = DeepMomentumLSTM(**{**MEMBER_KWARGS["DeepMomentumLSTM"], "epochs": 1}).fit(ds, TRAIN)
    assert np.isnan(m.best_valid_sharpe_)  # no validation rows: NaN Sharpe

    def reject(token):
        raise AssertionError(f"card is not strict JSON: {token}")

    path = save_model(m, tmp_path / "m", metrics={"note": "no valid", "sharpe": float("nan")})
    json.loads((path / "card.json").read_text(), parse_constant=reject)
    assert np.isnan(read_card(path)["metrics"]["sharpe"])
    loaded = load_model(path)
    assert np.isnan(loaded.best_valid_sharpe_)
    assert loaded.training_window_ == m.training_window_
    assert read_card(path)["training_window"]["valid_rows"] is None


def test_bad_metrics_extra_and_dataset(lstm, ds, tmp_path):
    with pytest.raises(ValueError, match=r"metrics\['arr'\] is not JSON-serialisable"):
        save_model(lstm, tmp_path / "a", metrics={"arr": np.zeros(3)})
    with pytest.raises(ValueError, match="extra key 'class' is reserved"):
        save_model(lstm, tmp_path / "b", extra={"class": "x"})
    other = synthetic_dataset(F=5)
    with pytest.raises(ValueError, match="dataset.feature_names"):
        save_model(lstm, tmp_path / "c", dataset=other)
    with pytest.raises(ValueError, match="outside the dataset's 300 rows"):
        save_model(lstm, tmp_path / "d", dataset=synthetic_dataset(T=300))
    with pytest.raises(ValueError, match="not fitted"):
        save_model(DeepMomentumLSTM(), tmp_path / "e")
    with pytest.raises(ValueError, match="not in the registry allow-list"):
        save_model(object(), tmp_path / "f")
    assert list(tmp_path.iterdir()) == []  # failed saves leave nothing behind


# -- feature check ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("names", "match"),
    [(["f0", "f1", "f2"], r"missing \['f3'\]"),
     (["f0", "f1", "f2", "f3", "f9"], r"extra \['f9'\]"),
     (["f0", "f1", "f2", "g"], r"missing \['f3'\]; extra \['g'\]"),
     (["f1", "f0", "f2", "f3"], r"reordered \['f1', 'f0'\]"),
     ("f0", "sequence of str")],
)
def test_feature_mismatch_is_an_error(saved_lstm, names, match):
    with pytest.raises(ValueError, match=match):
        load_model(saved_lstm, feature_names=names)


# -- tampering and corruption ----------------------------------------------------------
def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _card_sha256(card):
    """The card's own digest: SHA-256 of its canonical JSON without ``card_sha256``."""
    body = {k: v for k, v in card.items() if k != "card_sha256"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                           allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _edit_card(path, *, rehash=True, **changes):
    """Edit ``card.json``; ``rehash`` recomputes its digest, as a deliberate editor could."""
    card = json.loads((path / "card.json").read_text())
    card.update(changes)
    if rehash:
        card["card_sha256"] = _card_sha256(card)
    (path / "card.json").write_text(json.dumps(card))


def _forbid_unpickling(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the registry must never unpickle")

    monkeypatch.setattr(torch, "load", boom)
    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)


@pytest.mark.parametrize("cls", ["os.system", "builtins.eval",
                                 "workbench.models._sequence.SequenceModel"])
def test_unknown_class_is_refused_and_nothing_unpickled(saved_lstm, tmp_path, monkeypatch, cls):
    path = _copy(saved_lstm, tmp_path / "m")
    _edit_card(path, **{"class": cls})
    _forbid_unpickling(monkeypatch)
    with pytest.raises(ValueError, match=f"class '{cls}' is not in the registry allow-list"):
        load_model(path)
    assert {p.suffix for p in _all_files(path)} <= ALLOWED_SUFFIXES


def test_loading_never_unpickles(saved_lstm, lstm, ds, monkeypatch):
    _forbid_unpickling(monkeypatch)
    _assert_same_predictions(lstm, load_model(saved_lstm), ds)


def test_tampered_weights_fail_the_checksum(saved_lstm, tmp_path):
    path = _copy(saved_lstm, tmp_path / "m")
    raw = bytearray((path / "weights.safetensors").read_bytes())
    raw[-1] ^= 0xFF  # flip the bits of the last byte of one tensor
    (path / "weights.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"weights\.safetensors is corrupt or was modified "
                                         r"after saving: its sha256 is [0-9a-f]{12}\.\.\., "
                                         r"weights_sha256 in the card records"):
        load_model(path)


def test_corrupt_and_missing_files_are_named(saved_lstm, tmp_path):
    # garbage weights whose digest was also put in the card: the parser names the file
    path = _copy(saved_lstm, tmp_path / "garbage")
    (path / "weights.safetensors").write_bytes(b"not a safetensors file")
    _edit_card(path, weights_sha256=hashlib.sha256(b"not a safetensors file").hexdigest())
    with pytest.raises(ValueError, match=r"weights\.safetensors is corrupt"):
        load_model(path)
    path = _copy(saved_lstm, tmp_path / "noweights")
    (path / "weights.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"weights\.safetensors is missing"):
        load_model(path)
    path = _copy(saved_lstm, tmp_path / "badcard")
    (path / "card.json").write_text('{"format": "workbench-model/1", "class": ')
    with pytest.raises(ValueError, match=r"card\.json is corrupt"):
        load_model(path)
    path = _copy(saved_lstm, tmp_path / "format")
    _edit_card(path, format="workbench-model/99")
    with pytest.raises(ValueError, match="format 'workbench-model/99'"):
        read_card(path)
    with pytest.raises(FileNotFoundError, match=r"card\.json does not exist"):
        read_card(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_model(tmp_path / "nothing")
    path = _copy(saved_lstm, tmp_path / "params")
    _edit_card(path, params={**read_card(saved_lstm)["params"], "hidden_size": 9})
    with pytest.raises(ValueError, match="cannot restore .*DeepMomentumLSTM"):
        load_model(path)


# -- integrity: the card, every file and every member are hashed -----------------------
def _tiny(name, ds, **kw):
    cls = getattr(importlib.import_module("workbench.models"), name)
    return cls(**{**MEMBER_KWARGS[name], **kw}).fit(ds, TRAIN, VALID)


def test_card_records_the_digest_of_its_own_content(saved_lstm):
    card = json.loads((saved_lstm / "card.json").read_text())
    assert card["format"] == "workbench-model/2"
    assert card["card_sha256"] == _card_sha256(card)
    assert read_card(saved_lstm)["card_sha256"] == card["card_sha256"]


def test_edited_card_params_are_refused(ds, tmp_path):
    from workbench.models import MomentumTransformer

    model = _tiny("MomentumTransformer", ds, epochs=1)
    path = save_model(model, tmp_path / "tf")
    loaded = load_model(path)  # untouched: identical predictions
    assert type(loaded) is MomentumTransformer
    _assert_same_predictions(model, loaded, ds)
    card = json.loads((path / "card.json").read_text())
    card["params"]["burn_in"] = 5  # a valid value that changes the predictions
    (path / "card.json").write_text(json.dumps(card))
    msg = r"tf/card\.json was modified after saving: its card_sha256 records [0-9a-f]{12}"
    with pytest.raises(ValueError, match=msg):
        load_model(path)
    with pytest.raises(ValueError, match=msg):
        read_card(path)


@pytest.fixture(scope="module")
def small_trees(ds):
    # 20 trees: the LightGBM model text (about 40 kB) is stored inline in the card
    return BoostedTreesModel(n_estimators=20, num_leaves=15, min_child_samples=20, seed=3,
                             progress=False).fit(ds, TRAIN, VALID)


@pytest.mark.parametrize("edit", ["same_length", "malformed"])
def test_edited_inline_booster_is_refused_before_lightgbm_parses_it(
        edit, small_trees, ds, tmp_path, monkeypatch):
    import lightgbm

    path = save_model(small_trees, tmp_path / "trees")
    _assert_same_predictions(small_trees, load_model(path), ds)
    card = json.loads((path / "card.json").read_text())
    assert card["state_files"] == {} and "booster" in card["state"]
    text = card["state"]["booster"]
    i = text.index("leaf_value=") + len("leaf_value=")
    if edit == "same_length":  # one digit of the first leaf value changed
        j = next(k for k in range(i, len(text)) if text[k].isdigit())
        text = text[:j] + str((int(text[j]) + 1) % 10) + text[j + 1:]
        assert len(text) == len(card["state"]["booster"])
    else:  # LightGBM aborts the whole process (SIGABRT) when it parses this
        text = text.replace("leaf_value=", "leaf_value=5", 1)
    card["state"]["booster"] = text
    (path / "card.json").write_text(json.dumps(card))

    def no_lightgbm(*a, **k):
        raise AssertionError("a tampered booster text must not reach LightGBM")

    monkeypatch.setattr(lightgbm, "Booster", no_lightgbm)
    with pytest.raises(ValueError, match=r"trees/card\.json was modified after saving"):
        load_model(path)


def test_swapped_or_edited_ensemble_member_is_refused(lstm, ds, tmp_path, monkeypatch):
    from workbench.models import Ensemble

    ens = Ensemble({"lstm": lstm, "lin": _tiny("LinearModel", ds, epochs=1)},
                   method="equal").fit(ds, VALID)
    path = save_model(ens, tmp_path / "ens")
    card = read_card(path)
    assert card["members_sha256"] == {
        n: read_card(path / "members" / n)["card_sha256"] for n in ("lstm", "lin")}
    # the member folder replaced by another, self-consistent save of the same class
    swapped = _copy(path, tmp_path / "swapped")
    shutil.rmtree(swapped / "members" / "lstm")
    save_model(_tiny("DeepMomentumLSTM", ds, epochs=1, seed=4), swapped / "members" / "lstm")

    def no_build(*a, **k):
        raise AssertionError("no member may be built before the whole save is verified")

    with monkeypatch.context() as mp:
        mp.setattr(DeepMomentumLSTM, "_registry_restore", classmethod(no_build))
        with pytest.raises(ValueError, match=r"swapped/members/lstm/card\.json was modified "
                                             r"after saving: .*members_sha256"):
            load_model(swapped)
        # a corrupt later member is found before the first member is built
        bad = _copy(path, tmp_path / "bad")
        (bad / "members" / "lin" / "weights.safetensors").write_bytes(b"x")
        with pytest.raises(ValueError, match=r"lin/weights\.safetensors is corrupt or was "
                                             "modified after saving"):
            load_model(bad)
    # an edited member card fails its own digest
    edited = _copy(path, tmp_path / "edited")
    member_card = json.loads((edited / "members" / "lin" / "card.json").read_text())
    member_card["params"]["burn_in"] = 5
    (edited / "members" / "lin" / "card.json").write_text(json.dumps(member_card))
    with pytest.raises(ValueError, match=r"edited/members/lin/card\.json was modified"):
        load_model(edited)
    # re-saving over the folder gives a consistent save again
    save_model(ens, swapped, overwrite=True)
    _assert_same_predictions(ens, load_model(swapped, feature_names=ds.feature_names), ds)


def test_hash_field_cannot_just_be_removed(saved_lstm, tmp_path):
    path = _copy(saved_lstm, tmp_path / "m")
    card = json.loads((path / "card.json").read_text())
    del card["card_sha256"]
    (path / "card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match=r"card\.json has no card_sha256"):
        load_model(path)


def test_legacy_card_without_digest_loads_with_a_warning(lstm, ds, tmp_path, caplog):
    from workbench.models import Ensemble

    ens = Ensemble({"lstm": lstm}, method="equal").fit(ds, VALID)
    path = save_model(ens, tmp_path / "old")
    for card_file in (path / "card.json", path / "members" / "lstm" / "card.json"):
        card = json.loads(card_file.read_text())  # as saved before cards were hashed
        del card["card_sha256"]
        card.pop("members_sha256", None)
        card["format"] = "workbench-model/1"
        card_file.write_text(json.dumps(card))
    with caplog.at_level("WARNING", logger="workbench.models.registry"):
        loaded = load_model(path)
    _assert_same_predictions(ens, loaded, ds)
    warned = [r.getMessage() for r in caplog.records]
    assert any("old/card.json" in m and "workbench-model/1" in m for m in warned), warned
    assert any("members/lstm/card.json" in m for m in warned), warned
    assert read_card(path)["format"] == "workbench-model/1"
    # the files a legacy card records are still checked
    (path / "members" / "lstm" / "weights.safetensors").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"lstm/weights\.safetensors is corrupt"):
        load_model(path)


# -- large text state goes to its own file -----------------------------------------------
class BigStateModel:
    """A stand-in member with a large text state (like a LightGBM model string)."""

    feature_names_in_ = ("f0",)
    n_features_in_ = 1

    def __init__(self, scale=1.0):
        self.scale = scale

    def get_params(self):
        return {"scale": self.scale}

    def _registry_state(self):
        return {}, {"blob": self.blob_, "tiny": "x"}

    @classmethod
    def _registry_restore(cls, params, tensors, meta):
        m = cls(**params)
        m.blob_ = meta["blob"]
        m.tensors_ = tensors
        return m


def test_large_text_state_is_a_separate_checked_file(tmp_path, monkeypatch):
    dotted = f"{BigStateModel.__module__}.{BigStateModel.__qualname__}"
    monkeypatch.setitem(_registry.ALLOWED_CLASSES, "BigStateModel", dotted)
    m = BigStateModel(2.0)
    m.blob_ = "tree\r\n" * 20_000  # 120 kB, with CRLF that must survive byte for byte
    path = save_model(m, tmp_path / "big")
    card = read_card(path)
    assert "blob" not in card["state"] and card["state"]["tiny"] == "x"
    assert card["state_files"]["blob"]["file"] == "state.blob.txt"
    assert len(json.dumps(card)) < 10_000
    loaded = load_model(path)
    assert loaded.blob_ == m.blob_ and loaded.scale == 2.0 and loaded.tensors_ == {}
    (path / "state.blob.txt").write_text("tree\n")
    with pytest.raises(ValueError, match=r"state\.blob\.txt is corrupt"):
        load_model(path)
    _edit_card(path, state_files={"blob": {"file": "../../etc/passwd", "sha256": "0"}})
    with pytest.raises(ValueError, match="invalid state file"):
        load_model(path)


# -- atomic writes and overwrite -------------------------------------------------------
def test_existing_folder_is_an_error_without_overwrite(lstm, saved_lstm):
    before = {p.name: p.read_bytes() for p in _all_files(saved_lstm)}
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_model(lstm, saved_lstm)
    assert {p.name: p.read_bytes() for p in _all_files(saved_lstm)} == before


def test_overwrite_replaces_and_keeps_old_on_failure(lstm, ds, tmp_path, monkeypatch):
    path = save_model(lstm, tmp_path / "m", metrics={"v": 1})
    save_model(lstm, path, metrics={"v": 2}, overwrite=True)
    assert read_card(path)["metrics"] == {"v": 2}
    before = {p.name: p.read_bytes() for p in _all_files(path)}

    def failing_save(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_model(lstm, path, metrics={"v": 3}, overwrite=True)
    assert {p.name: p.read_bytes() for p in _all_files(path)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folder left
    monkeypatch.undo()
    _assert_same_predictions(lstm, load_model(path), ds)


def test_overwrite_never_replaces_a_foreign_folder(lstm, tmp_path):
    foreign = tmp_path / "data"
    foreign.mkdir()
    (foreign / "keep.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match="without card.json"):
        save_model(lstm, foreign, overwrite=True)
    assert (foreign / "keep.csv").read_text() == "1,2\n"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        save_model(lstm, tmp_path / "file", overwrite=True)
    with pytest.raises(FileNotFoundError, match="parent folder"):
        save_model(lstm, tmp_path / "no" / "such" / "dir")
