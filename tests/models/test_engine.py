import logging

import numpy as np
import pytest
import torch

from workbench.models import (
    BoostedTreesModel,
    CNNModel,
    DeepMomentumLSTM,
    Ensemble,
    InferenceEngine,
    MLPModel,
    MomentumTransformer,
)

from .conftest import synthetic_dataset

LOGGER = "workbench.models.engine"
SMALL = dict(seq_len=21, burn_in=21, epochs=1, batch_size=16, seed=3, device="cpu",
             progress=False)
WEIGHTS = {"lstm": 0.4, "transformer": 0.25, "cnn": 0.2, "mlp": 0.1, "trees": 0.05}
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: 2-thread oneDNN RNN steps stall on a shared, loaded 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ensemble():
    ds = synthetic_dataset(T=300, N=3, F=4, seed=1)
    members = {
        "lstm": DeepMomentumLSTM(hidden_size=8, **SMALL),
        "transformer": MomentumTransformer(d_model=8, n_heads=2, n_layers=2, **SMALL),
        "cnn": CNNModel(channels=4, **SMALL),
        "mlp": MLPModel(hidden_size=8, **SMALL),
        "trees": BoostedTreesModel(n_estimators=20, min_child_samples=5, n_jobs=1,
                                   progress=False),
    }
    for m in members.values():
        m.fit(ds, slice(0, 200), slice(200, 250))
    ens = Ensemble(members).fit(ds, slice(200, 250))
    ens.weights_ = dict(WEIGHTS)  # unequal weights make renormalisation visible
    return ens


def _x(B, L=50, F=4, seed=0, holes=True):
    x = np.random.default_rng(seed).normal(size=(B, L, F))
    if holes:
        x[0, -1, 1] = np.nan
        x[-1, -3, 0] = np.inf
    return x


def _members_eager(ens, x):
    """Each member's eager last-step positions, (M, B) float64, member order."""
    L = x.shape[1]
    return np.stack([np.asarray(m.predict_sequences(x[:, L - m.context_length:]), float)
                     for m in ens.members.values()])


@pytest.mark.parametrize("B", [1, 5, 64, 700])
def test_matches_eager_bit_for_bit(ensemble, B):
    eng = InferenceEngine(ensemble, device="cpu")
    x = _x(B)
    out = eng(x)
    assert out.shape == (B,) and out.dtype == np.float64
    if B <= 512:  # one chunk: exactly Ensemble.predict_sequences
        np.testing.assert_array_equal(out, ensemble.predict_sequences(x))
        np.testing.assert_array_equal(eng.member_outputs_["lstm"], _members_eager(ensemble, x)[0])
    else:  # chunks of 512 and 188: eager on the same chunks, bit for bit ...
        per_chunk = np.concatenate([_members_eager(ensemble, x[:512]),
                                    _members_eager(ensemble, x[512:])], axis=1)
        np.testing.assert_array_equal(out, ensemble.combine(per_chunk))
        # ... and the one-batch eager output up to the kernels' batch-size dependence
        np.testing.assert_allclose(out, ensemble.predict_sequences(x), rtol=0, atol=1e-6)
    assert set(eng.member_outputs_) == set(WEIGHTS)
    assert np.all(np.abs(out) <= 1)


def test_input_types_and_longer_history(ensemble):
    eng = InferenceEngine(ensemble, device="cpu", batch_sizes=(8,))
    x = _x(6, L=80)
    ref = ensemble.predict_sequences(x)
    np.testing.assert_array_equal(eng(x), ref)
    np.testing.assert_array_equal(eng(torch.from_numpy(x)), ref)
    x32 = x.astype(np.float32)
    np.testing.assert_array_equal(eng(x32), ensemble.predict_sequences(x32))
    # only the last context_length steps are read
    x2 = x.copy()
    x2[:, : 80 - ensemble.context_length] = 123.0
    np.testing.assert_array_equal(eng(x2), ref)


def test_causal_over_a_rolling_window(ensemble):
    """The position at t reads steps <= t only; steps inside the window matter."""
    eng = InferenceEngine(ensemble, device="cpu")
    C = ensemble.context_length
    series = np.random.default_rng(5).normal(size=(3, 120, 4))
    base = np.array([eng(series[:, t + 1 - C: t + 1]) for t in range(C - 1, 120)])
    changed = series.copy()
    changed[:, 90:] = 50.0  # the future after t = 89
    again = np.array([eng(changed[:, t + 1 - C: t + 1]) for t in range(C - 1, 120)])
    k = 90 - (C - 1)  # rows of t <= 89
    np.testing.assert_array_equal(again[:k], base[:k])
    assert not np.array_equal(again[k:], base[k:])


def test_context_length_override(ensemble):
    eng = InferenceEngine(ensemble, device="cpu", context_length=30)
    assert eng.context_length_ == 30
    x = _x(7, L=30)
    # members read min(own context, 30) steps: the torch members 30, the trees 1
    ref = ensemble.combine(np.stack([
        np.asarray(m.predict_sequences(x[:, 30 - min(m.context_length, 30):]), float)
        for m in ensemble.members.values()]))
    np.testing.assert_array_equal(eng(x), ref)


def test_parallel_members_match_single_thread_eager(ensemble):
    eng = InferenceEngine(ensemble, device="cpu", parallel_members=2, batch_sizes=(1, 16))
    try:
        lanes = eng.lane_assignment_[16]
        assert sorted(n for lane in lanes for n in lane) == sorted(WEIGHTS)
        assert len(lanes) == 2
        assert len(eng._lanes) == 1  # the calling thread serves the first group
        x = _x(16, seed=2)
        before = torch.get_num_threads()
        out = eng(x)
        assert torch.get_num_threads() == before  # the caller's setting is untouched
        ref = ensemble.predict_sequences(x)  # one intra-op thread (module fixture)
        np.testing.assert_array_equal(out, ref)
    finally:
        eng.close()
    np.testing.assert_allclose(eng(x), ref, atol=1e-6)  # serial after close()


class _Abort(BaseException):
    """Not an Exception: passes the per-member handler, as KeyboardInterrupt would."""


@pytest.mark.parametrize(("kw", "group"), [(dict(parallel_members=2), 0),
                                           (dict(parallel_members=2), 1),
                                           (dict(parallel_rows=2), None)])
def test_an_aborted_lane_leaves_no_stale_result_for_the_next_call(ensemble, monkeypatch, kw,
                                                                   group):
    eng = InferenceEngine(ensemble, device="cpu", batch_sizes=(16,), **kw)
    try:
        x, x2 = _x(16, seed=8), _x(16, seed=9)
        want = eng(x2)
        name = "lstm"  # parallel_members: a torch member of the calling thread's group (0)
        if group is not None:  # or of the worker's (1)
            name = next(n for n in eng.lane_assignment_[16][group]
                        if getattr(ensemble.members[n], "network_", None) is not None)
        net = next(m.network for m in eng._members if m.name == name)

        def abort(_x):
            raise _Abort()

        monkeypatch.setattr(net, "forward_last", abort, raising=False)
        with pytest.raises(_Abort):
            eng(x)
        monkeypatch.undo()
        for _ in range(3):  # every lane's queue was drained: results belong to their call
            np.testing.assert_array_equal(eng(x2), want)
    finally:
        eng.close()


def test_parallel_rows_match_single_thread_eager_on_each_part(ensemble):
    eng = InferenceEngine(ensemble, device="cpu", parallel_rows=2, batch_sizes=(1, 16))
    try:
        assert len(eng._lanes) == 1  # the calling thread runs part 0
        even, odd = eng.lane_assignment_[16]  # member orders: costliest / cheapest first
        assert sorted(even) == sorted(WEIGHTS) and odd == even[::-1]
        before = torch.get_num_threads()
        x = _x(16, seed=4)
        out = eng(x)
        assert torch.get_num_threads() == before
        ref = np.concatenate([ensemble.predict_sequences(x[:8]),
                              ensemble.predict_sequences(x[8:])])
        np.testing.assert_array_equal(out, ref)  # one intra-op thread (module fixture)
        np.testing.assert_array_equal(eng.member_outputs_["lstm"], np.concatenate(
            [_members_eager(ensemble, x[:8])[0], _members_eager(ensemble, x[8:])[0]]))
        x3 = _x(3, seed=5)  # fewer than 2 rows a part: served serially
        np.testing.assert_array_equal(eng(x3), ensemble.predict_sequences(x3))
        x40 = _x(40, seed=6, holes=False)  # chunks of 16, 16 and 8 rows, each split
        ref40 = np.concatenate([ensemble.predict_sequences(x40[a:b]) for a, b in
                                ((0, 8), (8, 16), (16, 24), (24, 32), (32, 36), (36, 40))])
        np.testing.assert_array_equal(eng(x40), ref40)
    finally:
        eng.close()
    np.testing.assert_allclose(eng(x), ref, atol=1e-6)  # serial after close()


class _Fault:
    """Replaces a network's forward_last; raises or emits NaN while ``on``."""

    def __init__(self, net, mode, only_rows=None):
        self.orig = net.forward_last
        self.mode, self.on, self.calls, self.only_rows = mode, True, 0, only_rows

    def __call__(self, x):
        self.calls += 1
        y = self.orig(x)
        if not self.on or (self.only_rows is not None and x.shape[0] != self.only_rows):
            return y
        if self.mode == "raise":
            raise RuntimeError("injected fault")
        y = y.clone()
        y[-1] = float("nan")  # one row is enough
        return y


def _inject(monkeypatch, ens, name, mode, only_rows=None):
    net = ens.members[name].network_
    fault = _Fault(net, mode, only_rows)
    monkeypatch.setattr(net, "forward_last", fault, raising=False)
    return fault


def test_parallel_rows_failure_in_one_part_excludes_the_member(ensemble, monkeypatch):
    x = _x(15, seed=7)  # parts of 7 (calling thread) and 8 rows (lane)
    clean = _members_eager(ensemble, x)
    eng = InferenceEngine(ensemble, device="cpu", parallel_rows=2, batch_sizes=(16,))
    try:
        fault = _inject(monkeypatch, ensemble, "cnn", "nan", only_rows=8)
        out = eng(x)
        assert fault.calls == 2
        h = eng.health()
        assert h["state"] == "degraded" and not h["cnn"]["active"]
        assert "non-finite output" in h["cnn"]["last_error"]
        np.testing.assert_allclose(out, _renormalised(ensemble, clean, {"cnn"}), rtol=0,
                                   atol=1e-6)
        assert np.isnan(eng.member_outputs_["cnn"]).all()
    finally:
        eng.close()


def _renormalised(ens, pos, drop):
    """Combination of clean member positions pos (M, B) without the members in drop."""
    w = np.array([0.0 if n in drop else WEIGHTS[n] for n in ens.names])
    return w @ pos / w.sum()


def test_failing_members_are_excluded_then_readmitted(ensemble, monkeypatch, caplog):
    eng = InferenceEngine(ensemble, device="cpu", exclude_calls=3)
    x = _x(9, seed=4)
    pos = _members_eager(ensemble, x)
    clean = eng(x)  # call 1
    np.testing.assert_array_equal(clean, ensemble.predict_sequences(x))
    boom = _inject(monkeypatch, ensemble, "lstm", "raise")
    nan = _inject(monkeypatch, ensemble, "transformer", "nan")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = eng(x)  # call 2: both fail, excluded for calls 3-5
    np.testing.assert_allclose(out, _renormalised(ensemble, pos, {"lstm", "transformer"}),
                               rtol=0, atol=1e-12)
    assert not np.allclose(out, clean)
    h = eng.health()
    assert h["state"] == "degraded" and h["calls"] == 2
    assert h["lstm"] == {"active": False, "failures": 1, "excluded_until_call": 5,
                         "last_error": "RuntimeError: injected fault"}
    assert h["transformer"]["failures"] == 1 and "non-finite" in h["transformer"]["last_error"]
    assert h["cnn"] == {"active": True, "failures": 0, "excluded_until_call": None,
                        "last_error": None}
    msgs = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any("'lstm'" in m and "excluded for 3 calls" in m for m in msgs)
    assert any("'transformer'" in m for m in msgs)
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == LOGGER)
    assert np.isnan(eng.member_outputs_["lstm"]).all()
    for _ in range(3):  # calls 3-5: the failed members are not even tried
        np.testing.assert_array_equal(eng(x), out)
    assert boom.calls == 1 and nan.calls == 1
    boom.on = nan.on = False
    assert eng.health()["lstm"]["active"]
    np.testing.assert_array_equal(eng(x), clean)  # call 6: retried, re-admitted
    h = eng.health()
    assert h["state"] == "ok" and boom.calls == 2
    assert h["lstm"]["failures"] == 1  # the count stays


def test_a_member_failing_on_a_later_chunk_sits_out_the_whole_call(ensemble, monkeypatch):
    eng = InferenceEngine(ensemble, device="cpu", batch_sizes=(1, 64))
    x = _x(70, seed=6)
    pos = np.concatenate([_members_eager(ensemble, x[:64]), _members_eager(ensemble, x[64:])],
                         axis=1)
    _inject(monkeypatch, ensemble, "cnn", "raise", only_rows=6)  # chunk 2 of 70 rows
    out = eng(x)
    assert np.isnan(eng.member_outputs_["cnn"]).all()
    ref = _renormalised(ensemble, pos, {"cnn"})
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)


def test_all_members_failing_gives_flat_positions_then_recovers(ensemble, monkeypatch, caplog):
    eng = InferenceEngine(ensemble, device="cpu", exclude_calls=2)
    faults = [_inject(monkeypatch, ensemble, n, "raise")
              for n in ("lstm", "transformer", "cnn", "mlp")]

    def trees_fail(x):
        raise ValueError("trees down")

    monkeypatch.setattr(ensemble.members["trees"], "predict_sequences", trees_fail)
    x = _x(4)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = eng(x)
    np.testing.assert_array_equal(out, np.zeros(4))
    h = eng.health()
    assert h["state"] == "error"
    assert all(h[n]["failures"] == 1 and not h[n]["active"] for n in WEIGHTS)
    assert h["trees"]["last_error"] == "ValueError: trees down"
    assert any(r.levelno == logging.ERROR for r in caplog.records if r.name == LOGGER)
    np.testing.assert_array_equal(eng(x), np.zeros(4))  # calls 2-3: all excluded
    np.testing.assert_array_equal(eng(x), np.zeros(4))
    assert eng.health()["state"] == "error"
    for f in faults:
        f.on = False
    monkeypatch.undo()
    out = eng(x)  # call 4: everyone retried
    np.testing.assert_array_equal(out, ensemble.predict_sequences(x))
    assert eng.health()["state"] == "ok"


def test_latency_percentiles(ensemble):
    eng = InferenceEngine(ensemble, device="cpu", latency_window=5)
    lat = eng.latency()
    assert lat["n"] == 0 and np.isnan(lat["p50_ms"])
    x = _x(3)
    for k in range(8):
        eng(x)
        assert eng.latency()["n"] == min(k + 1, 5)
    lat = eng.latency()
    assert set(lat) == {"p50_ms", "p95_ms", "p99_ms", "n"}
    assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(precision="bfloat16"), "precision='bfloat16' needs a CUDA device"),
     (dict(precision="float64"), "precision must be one of"),
     (dict(batch_sizes=()), "batch_sizes must be a non-empty sequence of ints >= 1, got \\(\\)"),
     (dict(batch_sizes=(0, 4)), "batch_sizes must be"),
     (dict(exclude_calls=-1), "exclude_calls must be an int >= 0, got -1"),
     (dict(latency_window=0), "latency_window must be an int >= 1, got 0"),
     (dict(context_length=0), "context_length must be None or an int >= 1, got 0"),
     (dict(parallel_members=0), "parallel_members must be an int >= 1, got 0"),
     (dict(threads=0), "threads must be None, 'auto' or an int >= 1, got 0"),
     (dict(fused_attention=1), "fused_attention must be a bool, got 1"),
     (dict(parallel_rows=0), "parallel_rows must be an int >= 1, got 0"),
     (dict(parallel_rows=2, parallel_members=2),
      "parallel_members and parallel_rows cannot both be > 1"),
     (dict(device="tpu"), "device must be 'auto', 'cpu' or 'cuda', got 'tpu'")],
)
def test_bad_arguments(ensemble, kwargs, match):
    with pytest.raises(ValueError, match=match):
        InferenceEngine(ensemble, **{"device": "cpu", **kwargs})


def test_threads_are_set_for_the_call_and_restored(ensemble, monkeypatch):
    seen = []
    net = ensemble.members["mlp"].network_
    orig = net.forward_last

    def spy(x):
        seen.append(torch.get_num_threads())
        return orig(x)

    monkeypatch.setattr(net, "forward_last", spy, raising=False)
    eng = InferenceEngine(ensemble, device="cpu", threads=2)
    x = _x(4)
    out = eng(x)
    assert seen == [2] and torch.get_num_threads() == 1
    torch.set_num_threads(2)
    try:
        ref = ensemble.predict_sequences(x)
    finally:
        torch.set_num_threads(1)
    np.testing.assert_array_equal(out, ref)


def test_auto_threads_pick_a_count_per_member(ensemble):
    torch.set_num_threads(2)
    try:
        eng = InferenceEngine(ensemble, device="cpu", threads="auto", batch_sizes=(4,))
        choice = eng.thread_choice_[4]
        assert set(choice) == {"lstm", "transformer", "cnn", "mlp"}  # torch members only
        assert set(choice.values()) <= {1, 2}
        x = _x(4, seed=8)
        out = eng(x)
        assert torch.get_num_threads() == 2
        pos = []
        for name, m in ensemble.members.items():  # eager, each at the chosen count
            torch.set_num_threads(choice.get(name, 2))
            pos.append(np.asarray(m.predict_sequences(x[:, 50 - m.context_length:]), float))
    finally:
        torch.set_num_threads(1)
    np.testing.assert_array_equal(out, ensemble.combine(np.stack(pos)))


def test_bad_inputs(ensemble):
    eng = InferenceEngine(ensemble, device="cpu")
    C = ensemble.context_length
    with pytest.raises(ValueError, match=f"at least context_length={C} steps, got L=10"):
        eng(_x(2, L=10))
    with pytest.raises(ValueError, match="x must be a real array of shape \\(B, L, 4\\), got "
                                         "shape \\(2, 50, 3\\)"):
        eng(_x(2, F=3))
    with pytest.raises(ValueError, match="shape \\(B, L, 4\\)"):
        eng(np.zeros((50, 4)))
    with pytest.raises(ValueError, match="B=0"):
        eng(np.zeros((0, 50, 4)))
    assert eng.health()["calls"] == 0  # rejected inputs are not calls


def test_unfitted_ensemble_and_reserved_names(ensemble):
    with pytest.raises(ValueError, match="ensemble is not fitted"):
        InferenceEngine(Ensemble(dict(ensemble.members)), device="cpu")
    ens = Ensemble({"state": ensemble.members["mlp"]})
    ens.weights_ = {"state": 1.0}
    with pytest.raises(ValueError, match="member name 'state' is reserved"):
        InferenceEngine(ens, device="cpu")


def test_compile_falls_back_to_eager_with_a_warning(ensemble, monkeypatch, caplog):
    def broken(*a, **k):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        eng = InferenceEngine(ensemble, device="cpu", compile=True)
    assert not eng.compiled_
    assert any("torch.compile unavailable" in r.getMessage() for r in caplog.records)
    x = _x(5)
    np.testing.assert_array_equal(eng(x), ensemble.predict_sequences(x))


@pytest.mark.slow
def test_compiled_parallel_rows_match_eager(ensemble):
    eng = InferenceEngine(ensemble, device="cpu", compile=True, parallel_rows=2,
                          fused_attention=True, batch_sizes=(16,))
    try:
        if not eng.compiled_:
            pytest.skip("torch.compile is unavailable on this machine")
        for B in (3, 16, 21):
            x = _x(B, seed=B)
            np.testing.assert_allclose(eng(x), ensemble.predict_sequences(x), rtol=0,
                                       atol=1e-5)
    finally:
        eng.close()


def test_compiled_members_match_eager():
    ds = synthetic_dataset(T=200, N=2, F=4, seed=2)
    members = {"mlp": MLPModel(hidden_size=8, **SMALL), "cnn": CNNModel(channels=4, **SMALL)}
    for m in members.values():
        m.fit(ds, slice(0, 150))
    ens = Ensemble(members).fit(ds, slice(150, 200))
    eng = InferenceEngine(ens, device="cpu", compile=True, batch_sizes=(1, 8))
    if not eng.compiled_:
        pytest.skip("torch.compile is unavailable on this machine")
    for B in (1, 3, 8, 11):
        x = _x(B, L=42, seed=B)
        np.testing.assert_allclose(eng(x), ens.predict_sequences(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("compile", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_fused_attention_serves_copies_within_float_rounding(ensemble, compile):
    tr = ensemble.members["transformer"].network_
    eng = InferenceEngine(ensemble, device="cpu", fused_attention=True, compile=compile,
                          batch_sizes=(1, 8))
    if compile and not eng.compiled_:
        pytest.skip("torch.compile is unavailable on this machine")
    member = next(m for m in eng._members if m.name == "transformer")
    served = member.network
    assert served is not tr and served.fused and all(layer.attn.fused for layer in served.layers)
    assert not tr.fused and not any(layer.attn.fused for layer in tr.layers)  # untouched
    assert member.fn is member.eager_fn  # the fused path is served, not compiled
    for B in (1, 5, 8, 20):
        x = _x(B, seed=B)
        np.testing.assert_allclose(eng(x), ensemble.predict_sequences(x), rtol=0, atol=1e-6)
        np.testing.assert_allclose(eng.member_outputs_["transformer"],
                                   _members_eager(ensemble, x)[1], rtol=0, atol=1e-6)


# -- CUDA ------------------------------------------------------------------------------
@pytest.mark.gpu
@cuda
def test_gpu_graph_matches_eager(ensemble, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # true fp32 convolutions
    eng = InferenceEngine(ensemble, device="cuda", batch_sizes=(1, 64))
    assert eng.graphs_
    assert eng.precision_check_["max_abs_diff"] <= 1e-5
    for B in (1, 5, 64, 100):
        x = _x(B, seed=B)
        np.testing.assert_allclose(eng(x), ensemble.predict_sequences(x), rtol=0, atol=1e-5)


@pytest.mark.gpu
@cuda
def test_gpu_bfloat16_within_tolerance(ensemble):
    eng = InferenceEngine(ensemble, device="cuda", batch_sizes=(64,), precision="bfloat16")
    assert eng.precision_check_["precision"] == "bfloat16"
    assert 0 < eng.precision_check_["max_abs_diff"] <= 0.05
    x = _x(64, seed=9)
    np.testing.assert_allclose(eng(x), ensemble.predict_sequences(x), rtol=0, atol=0.05)


@pytest.mark.gpu
@cuda
def test_gpu_nan_inside_the_graph_excludes_the_member(ensemble):
    eng = InferenceEngine(ensemble, device="cuda", batch_sizes=(8,), exclude_calls=1)
    x = _x(8, seed=3)
    pos = _members_eager(ensemble, x)
    clean = eng(x)
    net = next(m.network for m in eng._members if m.name == "mlp")
    with torch.no_grad():
        saved = net.head.bias.clone()
        net.head.bias.fill_(float("nan"))  # the graph reads the parameter's memory
    out = eng(x)
    assert eng.health()["mlp"]["failures"] == 1
    np.testing.assert_allclose(out, _renormalised(ensemble, pos, {"mlp"}), atol=1e-5)
    with torch.no_grad():
        net.head.bias.copy_(saved)
    eng(x)  # call 3: still excluded
    np.testing.assert_allclose(eng(x), clean, atol=1e-6)  # call 4: re-admitted
    assert eng.health()["state"] == "ok"
