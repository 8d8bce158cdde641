"""GPU (CuPy) backend: kernel compilation, logic parity, dispatch, device parity.

Three layers, so that most of it runs on a machine without a GPU:

* ``test_kernels_compile_*``: the CUDA source compiles to PTX with ``nvcc`` (needs
  nvcc, no GPU).
* ``test_host_parity_*``: the same CUDA source built as plain C++ (``-DWB_HOST``,
  one host loop per kernel instead of a grid) is substituted for the device in
  :mod:`workbench.features._gpu`; every entry point, with its Python glue, must
  then match the CPU backend bit for bit (the kernels do the numba kernels'
  floating-point operations in the same order). Checks the kernels' logic, not CUDA.
* module contract (no GPU): the GPU module defines every entry point the public
  wrappers call on a kernel module (read from their source), with the CPU's
  signature, and each has a parity case here, so no feature silently falls back.
* ``@pytest.mark.gpu`` tests: the real CuPy backend on a CUDA device, parity at 1e-9
  (CUDA's log/exp may differ from libm's by an ulp; skipped without cupy or a device).
"""

from __future__ import annotations

import ast
import ctypes
import importlib
import inspect
import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import workbench.features as F
from tests.features.features_helpers import assert_close, nan_panel, random_walk, real_panel
from workbench.features import _api, _gpu

SOURCE = _gpu.KERNEL_SOURCE
KERNEL_NAMES = re.findall(r"WB_GLOBAL void (\w+)\(", SOURCE.read_text())


# --------------------------------------------------------------------------- #
# data
# --------------------------------------------------------------------------- #


def _ohlcv_from_close(c: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    o = c * np.exp(rng.normal(0.0, 0.004, c.shape))
    h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0.0, 0.006, c.shape)))
    lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0.0, 0.006, c.shape)))
    v = rng.integers(0, 5000, c.shape).astype(float) * 100.0
    v[rng.random(c.shape) < 0.02] = 0.0  # some zero-volume bars
    nan = np.isnan(c)
    for a in (o, h, lo, v):
        a[nan] = np.nan
    return {"o": o, "h": h, "l": lo, "c": c, "v": v}


def _real_ohlcv() -> dict[str, np.ndarray]:
    from workbench.data import load_universe

    b = load_universe("daily")
    return {k: np.asarray(b[f], dtype=float) for k, f in
            zip("ohlcv", ("open", "high", "low", "close", "volume"))}  # fmt: skip


DATASETS = {
    "real": _real_ohlcv,
    "random_holes": lambda: _ohlcv_from_close(nan_panel(900, 6, seed=3), seed=4),
}


# --------------------------------------------------------------------------- #
# entry-point cases: (cpu module, call on a backend module m and data d)
# --------------------------------------------------------------------------- #

CASES = {
    "simple_returns": ("_cpu", lambda m, d: m.simple_returns(d["c"])),
    "log_returns": ("_cpu", lambda m, d: m.log_returns(d["c"])),
    "sma": ("_cpu", lambda m, d: m.sma(d["c"], 10)),
    "sma_w40": ("_cpu", lambda m, d: m.sma(d["c"], 40)),
    "ema": ("_cpu", lambda m, d: m.ema(d["c"], 12)),
    "rolling_std_0": ("_cpu", lambda m, d: m.rolling_std(d["c"], 20, 0)),
    "rolling_std_1": ("_cpu", lambda m, d: m.rolling_std(d["c"], 7, 1)),
    "rsi": ("_cpu", lambda m, d: m.rsi(d["c"], 14)),
    "macd": ("_cpu", lambda m, d: m.macd(d["c"], 12, 26, 9)),
    "bollinger": ("_cpu", lambda m, d: m.bollinger(d["c"], 20, 2.0)),
    "rolling_volatility": ("_cpu", lambda m, d: m.rolling_volatility(d["c"], 20, 252.0)),
    "ewm_volatility": (
        "_cpu", lambda m, d: m.ewm_volatility(F.simple_returns(d["c"]), 20.0, 15.0, 20)),
    "ex_ante_volatility": ("_cpu", lambda m, d: m.ex_ante_volatility(d["c"], 60, 252.0)),
    "normalised_returns": (
        "_cpu", lambda m, d: m.normalised_returns(d["c"], (1, 5, 21, 63), 20)),
    "macd_signals": ("_cpu", lambda m, d: m.macd_signals(d["c"], ((2, 6), (8, 24)), 20, 40)),
    "deep_momentum_features": (
        "_cpu", lambda m, d: m.deep_momentum_features(
            d["c"], (1, 21, 63), ((8, 24), (16, 48)), 60, 63, 252)),
    "roc": ("_cpu_ta", lambda m, d: m.roc(d["c"], 10)),
    "momentum": ("_cpu_ta", lambda m, d: m.momentum(d["c"], 10)),
    "atr": ("_cpu_ta", lambda m, d: m.atr(d["h"], d["l"], d["c"], 14)),
    "obv": ("_cpu_ta", lambda m, d: m.obv(d["c"], d["v"])),
    "price_position": ("_cpu_ta", lambda m, d: m.price_position(d["h"], d["l"], d["c"], 14)),
    "rolling_vwap": ("_cpu_ta", lambda m, d: m.rolling_vwap(d["h"], d["l"], d["c"], d["v"], 20)),
    "volume_zscore": ("_cpu_ta", lambda m, d: m.volume_zscore(d["v"], 20)),
    "vol_of_vol": ("_cpu_ta", lambda m, d: m.vol_of_vol(d["c"], 20, 60, 252.0)),
    "rolling_skewness": ("_cpu_ta", lambda m, d: m.rolling_skewness(d["c"], 60)),
    "rolling_kurtosis": ("_cpu_ta", lambda m, d: m.rolling_kurtosis(d["c"], 60)),
    "parkinson_volatility": (
        "_cpu_ta", lambda m, d: m.parkinson_volatility(d["h"], d["l"], 20, 252.0)),
    "garman_klass_volatility": (
        "_cpu_ta", lambda m, d: m.garman_klass_volatility(
            d["o"], d["h"], d["l"], d["c"], 20, 252.0)),
    "bollinger_pct_b_bandwidth": (
        "_cpu_ta", lambda m, d: m.bollinger_pct_b_bandwidth(d["c"], 20, 2.0)),
    "bollinger_pct_b_bandwidth_w7": (
        "_cpu_ta", lambda m, d: m.bollinger_pct_b_bandwidth(d["c"], 7, 1.5)),
    "corwin_schultz_spread": (
        "_cpu_micro", lambda m, d: m.corwin_schultz_spread(d["h"], d["l"], 20)),
    "roll_spread": ("_cpu_micro", lambda m, d: m.roll_spread(d["c"], 20)),
    "amihud_illiquidity": (
        "_cpu_micro", lambda m, d: m.amihud_illiquidity(d["c"], d["v"], 20, 1e6)),
    "rolling_correlation": (
        "_cpu_micro", lambda m, d: m.rolling_correlation(d["c"], 0, 60, 60)),
    "rolling_correlation_minp": (
        "_cpu_micro", lambda m, d: m.rolling_correlation(d["c"], 1, 60, 20)),
    "rolling_beta": ("_cpu_micro", lambda m, d: m.rolling_beta(d["c"], 0, 60, 30)),
    "mean_pairwise_correlation": (
        "_cpu_micro", lambda m, d: m.mean_pairwise_correlation(d["c"], 60, 60)),
    "mean_pairwise_correlation_minp": (
        "_cpu_micro", lambda m, d: m.mean_pairwise_correlation(d["c"], 21, 5)),
}  # fmt: skip



def _wrapper_entry_points() -> dict[str, frozenset[str]]:
    """CPU module -> names the public wrappers call on the kernel module they dispatch to.

    Read from the source of ``workbench/features/*.py`` (no import, no GPU): in every
    function, a local assigned from ``_kernels(backend, <family>)`` or ``_backend(backend)``
    (the ``_cpu`` family) and every ``<local>.<name>`` read from it. The family argument may
    be a string literal or a module-level string constant (``_CPU = "_cpu_ta"``).
    """
    found: dict[str, set[str]] = {}
    for path in sorted(SOURCE.parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        consts = {
            t.id: n.value.value
            for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
            for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value.value, str)
        }  # fmt: skip
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef):
                continue
            fams: dict[str, str] = {}
            for node in ast.walk(fn):
                if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
                    continue
                f = node.value.func
                callee = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
                if callee == "_backend":
                    fam = "_cpu"
                elif callee == "_kernels" and len(node.value.args) == 2:
                    a = node.value.args[1]
                    name = getattr(a, "id", "")
                    fam = a.value if isinstance(a, ast.Constant) else consts.get(name)
                else:
                    continue
                for t in node.targets:
                    if isinstance(t, ast.Name) and fam:
                        fams[t.id] = fam
            for node in ast.walk(fn):
                if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                        and node.value.id in fams and not node.attr.startswith("__")):
                    found.setdefault(fams[node.value.id], set()).add(node.attr)
    return {k: frozenset(v) for k, v in found.items()}


# entry points the GPU module must expose, per CPU module (as the wrappers use them)
ENTRY_POINTS = _wrapper_entry_points()


def _cpu_module(name: str, entry: str):
    try:
        mod = importlib.import_module(f"workbench.features.{name}")
    except ImportError as exc:
        pytest.skip(f"CPU module workbench.features.{name} not importable yet: {exc}")
    if not hasattr(mod, entry):
        pytest.skip(f"workbench.features.{name} has no entry point {entry!r} yet")
    return mod


def _entry(case: str) -> str:
    return re.sub(r"_(w\d+|minp|\d)$", "", case)


def _as_tuple(r):
    return r if isinstance(r, tuple) else (r,)


def _check_parity(gpu_res, cpu_res, exact=False):
    """GPU vs CPU results: 1e-9 relative, or bitwise (NaN where NaN) with ``exact``."""
    gpu_res, cpu_res = _as_tuple(gpu_res), _as_tuple(cpu_res)
    assert len(gpu_res) == len(cpu_res)
    for g, c in zip(gpu_res, cpu_res):
        assert g.dtype == np.float64
        assert np.isfinite(c).any()  # the comparison is not vacuous
        if exact:
            assert g.shape == c.shape
            np.testing.assert_array_equal(g, c)
        else:
            assert_close(g, c, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- #
# (b) compilation (nvcc, no GPU needed)
# --------------------------------------------------------------------------- #


def test_kernel_names_are_the_launched_ones():
    launched = set(re.findall(r'"(wb_\w+)"', inspect.getsource(_gpu)))
    assert launched and launched <= set(KERNEL_NAMES), launched - set(KERNEL_NAMES)
    assert len(KERNEL_NAMES) == len(set(KERNEL_NAMES))


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
def test_kernels_compile_with_nvcc(tmp_path):
    ptx = tmp_path / "kernels.ptx"
    res = subprocess.run(
        ["nvcc", "--ptx", "-arch=sm_80", "--fmad=false", "-x", "cu", str(SOURCE), "-o", str(ptx)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert "warning" not in res.stderr.lower(), res.stderr
    text = ptx.read_text()
    for name in KERNEL_NAMES:
        assert f".entry {name}(" in text, name
    assert ".f64" in text  # double precision


# --------------------------------------------------------------------------- #
# host emulation of the kernels (C++ build of the same source)
# --------------------------------------------------------------------------- #


class _HostDevice:
    """Stands in for ``_gpu._CupyDevice``: numpy arrays, kernels run as host loops."""

    xp = np

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.calls: list[str] = []

    def is_device(self, a) -> bool:
        return isinstance(a, np.ndarray)

    def to_device(self, a) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.float64)

    def to_host(self, a) -> np.ndarray:
        return a

    def launch(self, name, nthreads, *args) -> None:
        conv = []
        for a in args:
            if isinstance(a, np.ndarray):
                assert a.flags.c_contiguous and a.dtype in (np.float64, np.int64)
                conv.append(ctypes.c_void_p(a.ctypes.data))
            elif isinstance(a, (bool, int, np.integer)):
                conv.append(ctypes.c_longlong(int(a)))
            else:
                assert isinstance(a, (float, np.floating)), (name, a)
                conv.append(ctypes.c_double(float(a)))
        self.calls.append(name)
        getattr(self.lib, name)(*conv)


@pytest.fixture(scope="module")
def host_lib(tmp_path_factory):
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler to build the host emulation of the kernels")
    so = tmp_path_factory.mktemp("gpu_host") / "wb_kernels.so"
    cmd = [cxx, "-x", "c++", "-DWB_HOST", "-O2", "-ffp-contract=off", "-shared", "-fPIC",
           "-Wall", "-Werror", str(SOURCE), "-o", str(so)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return ctypes.CDLL(str(so))


@pytest.fixture
def emulated(host_lib, monkeypatch):
    dev = _HostDevice(host_lib)
    monkeypatch.setattr(_gpu, "_DEVICE", dev)
    return dev


@pytest.fixture(scope="module")
def datasets():
    return {k: f() for k, f in DATASETS.items()}


@pytest.mark.parametrize("data", sorted(DATASETS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_host_parity_with_cpu_backend(emulated, datasets, case, data):
    # bitwise: the kernels do the CPU kernels' floating-point operations in the same order
    # (reciprocal multiplies included), and the host build, like numba, contracts no
    # multiply-add and calls the same libm for log/exp
    mod_name, call = CASES[case]
    cpu = _cpu_module(mod_name, _entry(case))
    d = datasets[data]
    _check_parity(call(_gpu, d), call(cpu, d), exact=True)
    assert emulated.calls  # the kernels ran, not a CPU fallback


def test_host_parity_random_dense_and_one_column(emulated):
    from workbench.features import _cpu

    rng = np.random.default_rng(11)
    x = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (3000, 37)), axis=0))
    for f in (lambda m, a: m.rsi(a, 14), lambda m, a: m.bollinger(a, 30, 2.5),
              lambda m, a: m.macd(a, 5, 35, 5), lambda m, a: m.sma(a, 17)):  # fmt: skip
        _check_parity(f(_gpu, x), f(_cpu, x), exact=True)
        _check_parity(f(_gpu, x[:, :1]), f(_cpu, x[:, :1]), exact=True)


def _exact(gpu_res, cpu_res):
    """Bitwise equality (NaN where NaN): the host build does the CPU's operations in order."""
    gpu_res, cpu_res = _as_tuple(gpu_res), _as_tuple(cpu_res)
    assert len(gpu_res) == len(cpu_res)
    for g, c in zip(gpu_res, cpu_res):
        assert g.shape == c.shape and g.dtype == np.float64
        np.testing.assert_array_equal(g, c)


def test_host_beta_of_a_stale_asset_is_zero_like_the_cpu(emulated):
    from workbench.features import _cpu_micro

    x = random_walk(300, 4, seed=5)
    x[100:200, 2] = x[99, 2]  # the asset stands still: beta 0, correlation NaN
    x[150:170, 3] = np.nan
    x[120:140, 3] = x[119, 3]
    for f in (_gpu.rolling_beta, _cpu_micro.rolling_beta):
        assert (f(x, 0, 20, 20)[119:200, 2] == 0.0).all()
    _exact(_gpu.rolling_beta(x, 0, 20, 15), _cpu_micro.rolling_beta(x, 0, 20, 15))
    _exact(_gpu.rolling_correlation(x, 0, 20, 15), _cpu_micro.rolling_correlation(x, 0, 20, 15))


def test_host_bollinger_pct_b_bandwidth_edge_cases(emulated):
    from workbench.features import _cpu_ta

    x = random_walk(400, 5, seed=2)
    x[100:140, 0] = 42.0  # constant windows: %b NaN, bandwidth 0
    x[200:240, 1] = 0.0  # constant zero closes: mid == 0, bandwidth NaN
    x[::7, 2] = np.nan  # holes
    x[:, 3] = np.nan  # no data
    for w, k in ((20, 2.0), (5, 1.0), (40, 3.0)):
        ref = _cpu_ta.bollinger_pct_b_bandwidth(x, w, k)
        _exact(_gpu.bollinger_pct_b_bandwidth(x, w, k), ref)
        assert np.isfinite(ref[0]).any() and (ref[1][:, 0] == 0.0).any()
        assert np.isnan(ref[1][239, 1]) and np.isnan(ref[0][239, 1])
    assert emulated.calls.count("wb_bollinger_pb") == 3


def _mpc_panel(T: int, N: int, seed: int) -> np.ndarray:
    """Random walks with staggered listings, holes and a flat stretch (clean + dirty pairs)."""
    x = random_walk(T, N, seed=seed)
    rng = np.random.default_rng(seed + 1)
    x[rng.random(x.shape) < 0.03] = np.nan
    x[: T // 3, 1] = np.nan
    x[T // 2 :, N - 1] = np.nan
    x[T // 4 : T // 4 + 30, 2] = x[T // 4, 2]  # constant prices: zero returns
    return x


@pytest.mark.parametrize(("T", "N", "w", "minp"), [(300, 7, 20, 20), (260, 12, 30, 5),
                                                   (120, 3, 10, 2), (90, 5, 200, 3)])
def test_host_mean_pairwise_correlation_matches_cpu_bitwise(emulated, monkeypatch, T, N, w, minp):
    from workbench.features import _cpu_micro

    x = _mpc_panel(T, N, seed=N)
    ref = _cpu_micro.mean_pairwise_correlation(x, w, minp)
    assert ref.shape == (T,) and np.isfinite(ref).sum() > T // 3
    _exact(_gpu.mean_pairwise_correlation(x, w, minp), ref)
    # several chunks of rows (state carried across launches) give the same result
    monkeypatch.setattr(_gpu, "_MPC_CHUNK", 7 * (N * (N - 1) // 2))
    _exact(_gpu.mean_pairwise_correlation(x, w, minp), ref)
    assert emulated.calls.count("wb_mpc_pairs") == 1 + -(-T // 7)


def test_host_mean_pairwise_correlation_dense_and_degenerate(emulated):
    from workbench.features import _cpu_micro

    x = random_walk(500, 23, seed=9)  # all pairs share one calendar
    ref = _cpu_micro.mean_pairwise_correlation(x, 60, 60)
    _exact(_gpu.mean_pairwise_correlation(x, 60, 60), ref)
    ref2 = _cpu_micro.mean_pairwise_correlation(x[:, 3:5], 21, 10)  # a single pair
    _exact(_gpu.mean_pairwise_correlation(x[:, 3:5], 21, 10), ref2)
    one = _gpu.mean_pairwise_correlation(x[:, :1], 60, 60)
    assert one.shape == (500,) and np.isnan(one).all()
    flat = np.ones((80, 3))  # constant series: every correlation undefined
    assert np.isnan(_gpu.mean_pairwise_correlation(flat, 10, 5)).all()


def test_pair_blocks_match_cpu():
    from workbench.features import _cpu_micro

    assert _gpu._PAIR_BLOCKS == _cpu_micro._PAIR_BLOCKS and _gpu._MPC_NEVER == _cpu_micro._NEVER
    for P in (1, 2, 15, 16, 17, 100, 124750):
        np.testing.assert_array_equal(_gpu._pair_bounds(P), _cpu_micro.pair_bounds(P))


def test_host_parity_through_public_api(emulated, monkeypatch):
    # backend="cupy" through the public wrappers (a stand-in cupy module makes the import pass)
    monkeypatch.setitem(sys.modules, "cupy", types.ModuleType("cupy"))
    x = real_panel()
    for name in ("rsi", "ema", "bollinger", "deep_momentum_features", "normalised_returns",
                 "bollinger_percent_b", "bollinger_bandwidth", "mean_pairwise_correlation"):
        f = getattr(F, name)
        args = (x, 10) if name == "ema" else (x,)
        got, ref = f(*args, backend="cupy"), f(*args, backend="cpu")
        if name == "deep_momentum_features":
            assert got[1] == ref[1]
            got, ref = got[0], ref[0]
        for g, r in zip(_as_tuple(got), _as_tuple(ref)):
            assert_close(g, r)
    r32 = F.rsi(x[:, 0], backend="cupy", dtype=np.float32)
    assert r32.dtype == np.float32 and r32.ndim == 1
    assert {"wb_rsi", "wb_bollinger_pb", "wb_mpc_pairs"} <= set(emulated.calls)


def test_host_emulation_detects_a_wrong_kernel(emulated, monkeypatch):
    # the parity harness can fail: a kernel launched with a wrong parameter differs
    from workbench.features import _cpu

    x = real_panel()
    monkeypatch.setattr(_gpu, "ema", lambda a, span: _gpu._unary("wb_ema", a, span + 1))
    with pytest.raises(AssertionError):
        _check_parity(_gpu.ema(x, 10), _cpu.ema(x, 10))


# --------------------------------------------------------------------------- #
# (c) dispatch and module contract (no GPU needed)
# --------------------------------------------------------------------------- #


def _missing_gpu_entry_points() -> list[str]:
    return sorted(f"{fam}.{name}" for fam, names in ENTRY_POINTS.items() for name in names
                  if not callable(getattr(_gpu, name, None)))  # fmt: skip


def test_wrapper_scan_finds_every_family():
    # the source scan is not vacuous: every family and known entry points are seen
    assert set(ENTRY_POINTS) == {"_cpu", "_cpu_ta", "_cpu_micro"}, sorted(ENTRY_POINTS)
    names = set().union(*ENTRY_POINTS.values())
    assert {"sma", "rsi", "deep_momentum_features", "roc", "bollinger_pct_b_bandwidth",
            "rolling_beta", "mean_pairwise_correlation"} <= names  # fmt: skip
    assert len(names) >= 30
    for fam, entries in ENTRY_POINTS.items():  # and each name is a real CPU entry point
        mod = importlib.import_module(f"workbench.features.{fam}")
        assert all(callable(getattr(mod, e, None)) for e in entries), fam


def test_gpu_module_defines_every_entry_point_the_wrappers_use():
    # no feature silently falls back to the CPU under backend="auto" with a GPU
    assert _missing_gpu_entry_points() == []


def test_missing_gpu_entry_point_is_detected(monkeypatch):
    monkeypatch.delattr(_gpu, "bollinger_pct_b_bandwidth")
    assert _missing_gpu_entry_points() == ["_cpu_ta.bollinger_pct_b_bandwidth"]


def test_every_entry_point_has_a_parity_case():
    covered = {_entry(c) for c in CASES}
    for fam, names in ENTRY_POINTS.items():
        assert names <= covered, (fam, sorted(names - covered))
        assert all(CASES[c][0] == fam for c in CASES if _entry(c) in names), fam


@pytest.mark.parametrize("cpu_name", sorted(ENTRY_POINTS))
def test_gpu_entry_points_match_cpu_signatures(cpu_name):
    for entry in sorted(ENTRY_POINTS[cpu_name]):
        g = inspect.signature(getattr(_gpu, entry))
        cpu = _cpu_module(cpu_name, entry)
        c = inspect.signature(getattr(cpu, entry))
        assert list(g.parameters) == list(c.parameters), (entry, g, c)


def test_cupy_backend_without_cupy_raises(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    with pytest.raises(RuntimeError, match="backend='cupy' requested but cupy is not importable"):
        F.sma(np.ones(30), 5, backend="cupy")
    with pytest.raises(RuntimeError, match="cupy is not importable"):
        _api._kernels("cupy", "_cpu_ta")


def test_cupy_backend_dispatches_to_gpu_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", types.ModuleType("cupy"))
    assert _api._backend("cupy") is _gpu
    fam = _api._kernels("cupy", "_cpu_ta")
    assert fam.roc is _gpu.roc  # served by the GPU module
    micro = _api._kernels("cupy", "_cpu_micro")
    assert micro.rolling_beta is _gpu.rolling_beta
    assert micro.mean_pairwise_correlation is _gpu.mean_pairwise_correlation
    assert fam.bollinger_pct_b_bandwidth is _gpu.bollinger_pct_b_bandwidth
    # explicit cupy: a kernel without a GPU version is a clear error (simulated)
    name = "mean_pairwise_correlation"
    monkeypatch.delattr(_gpu, name)
    with pytest.raises(RuntimeError, match=f"no GPU kernel for '{name}'"):
        getattr(micro, name)


def test_auto_falls_back_to_cpu_for_kernels_without_gpu_version(monkeypatch):
    from workbench.features import _cpu_micro

    monkeypatch.setitem(sys.modules, "cupy", types.ModuleType("cupy"))
    monkeypatch.setattr(_api, "gpu_available", lambda: True)
    micro = _api._kernels("auto", "_cpu_micro")
    assert micro.rolling_beta is _gpu.rolling_beta
    assert micro.mean_pairwise_correlation is _gpu.mean_pairwise_correlation
    monkeypatch.delattr(_gpu, "mean_pairwise_correlation")  # simulate a missing GPU kernel
    assert micro.mean_pairwise_correlation is _cpu_micro.mean_pairwise_correlation


def test_auto_backend_is_cpu_without_gpu():
    from workbench.features import _cpu

    assert _api._backend("auto") is _cpu
    x = nan_panel(300, 4)
    got = F.macd(x, backend="auto")
    for g, r in zip(got, F.macd(x, backend="cpu")):
        assert type(g) is np.ndarray
        np.testing.assert_array_equal(g, r)


def test_gpu_module_imports_without_cupy():
    code = (
        "import sys; import workbench.features._gpu as g; "
        "assert 'cupy' not in sys.modules; assert g._DEVICE is None"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- #
# (a) real device parity (CUDA + cupy)
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def cupy_device():
    cupy = pytest.importorskip("cupy", reason="cupy is not installed: GPU parity not run")
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver / no device
        pytest.skip(f"no CUDA device available ({type(exc).__name__}: {exc})")
    if n < 1:
        pytest.skip("no CUDA device available")
    return cupy


@pytest.fixture
def real_gpu(cupy_device, monkeypatch):
    monkeypatch.setattr(_gpu, "_DEVICE", None)
    return cupy_device


@pytest.mark.gpu
@pytest.mark.parametrize("data", sorted(DATASETS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_gpu_parity_with_cpu_backend(real_gpu, datasets, case, data):
    cp = real_gpu
    mod_name, call = CASES[case]
    cpu = _cpu_module(mod_name, _entry(case))
    d = datasets[data]
    ref = call(cpu, d)
    # device inputs -> device outputs
    got = call(_gpu, {k: cp.asarray(v) for k, v in d.items()})
    assert all(isinstance(g, cp.ndarray) for g in _as_tuple(got))
    _check_parity(tuple(cp.asnumpy(g) for g in _as_tuple(got)), ref)
    # host inputs -> host outputs
    _check_parity(call(_gpu, d), ref)


@pytest.mark.gpu
def test_gpu_public_api_keeps_cupy_arrays(real_gpu):
    cp = real_gpu
    x = real_panel()
    xd = cp.asarray(x)
    got = F.rsi(xd, backend="cupy")
    assert isinstance(got, cp.ndarray) and got.dtype == cp.float64
    assert_close(cp.asnumpy(got), F.rsi(x, backend="cpu"))
    g32 = F.bollinger(xd[:, 0], backend="cupy", dtype=np.float32)
    assert all(isinstance(g, cp.ndarray) and g.dtype == cp.float32 and g.ndim == 1 for g in g32)
    with pytest.raises(ValueError, match="contains"):
        F.ema(cp.asarray([1.0, np.inf, 2.0]), 2, backend="cupy")
    # host input with backend="cupy" returns numpy
    assert type(F.sma(x, 5, backend="cupy")) is np.ndarray


@pytest.mark.gpu
def test_gpu_random_large_panel(real_gpu):
    from workbench.features import _cpu

    cp = real_gpu
    rng = np.random.default_rng(5)
    x = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (4000, 1031)), axis=0))
    x[rng.random(x.shape) < 0.01] = np.nan
    xd = cp.asarray(x)
    for f in (lambda m, a: m.ema(a, 30), lambda m, a: m.rolling_std(a, 63, 1),
              lambda m, a: m.ex_ante_volatility(a, 60, 252.0)):  # fmt: skip
        _check_parity(cp.asnumpy(f(_gpu, xd)), f(_cpu, x))
    # no transcendental functions in these kernels: bitwise equal on the device too
    for f in (lambda m, a: m.rsi(a, 14), lambda m, a: m.bollinger(a, 20, 2.0),
              lambda m, a: m.sma(a, 40)):  # fmt: skip
        _check_parity(cp.asnumpy(f(_gpu, xd)), f(_cpu, x), exact=True)


@pytest.mark.gpu
def test_gpu_bollinger_pct_b_and_mean_pairwise_correlation(real_gpu, monkeypatch):
    from workbench.features import _cpu_micro, _cpu_ta

    cp = real_gpu
    x = _mpc_panel(1500, 90, seed=4)
    xd = cp.asarray(x)
    ref = _cpu_ta.bollinger_pct_b_bandwidth(x, 20, 2.0)
    got = _gpu.bollinger_pct_b_bandwidth(xd, 20, 2.0)
    _check_parity(tuple(cp.asnumpy(g) for g in got), ref, exact=True)  # no log/exp
    ref = _cpu_micro.mean_pairwise_correlation(x, 60, 30)
    got = _gpu.mean_pairwise_correlation(xd, 60, 30)
    assert isinstance(got, cp.ndarray) and got.shape == (1500,)
    _check_parity(cp.asnumpy(got), ref)
    monkeypatch.setattr(_gpu, "_MPC_CHUNK", 37 * 4005)  # 37-row chunks of the 4005 pairs
    _check_parity(cp.asnumpy(_gpu.mean_pairwise_correlation(xd, 60, 30)), ref)
