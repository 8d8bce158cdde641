"""Inference benchmark (DESIGN.md section 10): the serving engine against plain eager.

The ensemble the goal names, built from untrained members (weights from construction,
``torch.manual_seed(0)`` before each; fitted state faked minimally: ``network_`` from
``_build_network(10)``, ``n_features_in_``, ``feature_names_in_``; equal weights):
DeepMomentumLSTM(hidden_size=40), MomentumTransformer(d_model=32, n_layers=2), CNNModel()
and MLPModel(), served over the last 63 steps of 10 features (``context_length=63``).
Latency does not depend on the weights' values, so training them would only cost time.

Configurations, measured in the same process, interleaved in blocks of calls so that a
change of machine load hits all of them alike (the machine is a shared 2-core VM):

- ``plain_eager``: each member's full ``network(x)`` forward in ``inference_mode``, then
  ``[:, -1]``, then the weighted combination (torch's default intra-op threads).
- ``plain_eager_1thread``: the same with one intra-op thread (reported as detail).
- ``engine``: :class:`InferenceEngine` defaults (eager, forward_last paths, static
  buffers, torch's default threads).
- ``engine_auto``: ``threads="auto"`` (one intra-op thread or the default count per
  member and batch size, tuned at construction).
- ``engine_compiled_auto``: ``compile=True, threads="auto"`` (when torch.compile works).
- ``engine_fused_auto`` and ``engine_compiled_fused_auto``: the same with
  ``fused_attention=True`` (the transformer served on its fused lane-major last-step
  path, :mod:`workbench.models._fused`, equal to float32 rounding; not compiled).
- ``engine_compiled_fused_rows2``: ``compile=True, fused_attention=True,
  parallel_rows=2`` (each half of the rows on its own thread, compiled graphs with C++
  wrappers that release the GIL).
- full run only: ``engine_1thread`` (``threads=1``), ``engine_lanes``
  (``parallel_members=2``), ``engine_fused_lanes`` (``fused_attention=True,
  parallel_members=2``), ``engine_fused_rows2`` (``fused_attention=True,
  parallel_rows=2``), ``engine_compiled`` (``compile=True``) and
  ``engine_compiled_fused`` (``compile=True, fused_attention=True``).

Results:
- ``cpu_ensemble_b64_p99_ms``: p99 of one call at batch 64 of the engine configuration
  with the lowest p99 there (goal <= 5; the configuration is named in the detail, with
  each member's p50 at batch 64).
- ``cpu_engine_vs_eager_b64``: p50 of ``plain_eager`` over the lowest p50 among the
  engine configurations at batch 64 (goal >= 3; that configuration is named in the
  detail, with the ratio of the lowest-p99 configuration beside it).
- ``cpu_latency_b<B>_<config>_ms`` rows (p50, detail p99) for B in 1, 64, 512.
- ``train_sequences_per_s_cpu``: training sequences per second of the DeepMomentumLSTM
  trainer (hidden 40, windows of 63 + 63 burn-in, batch 64, one epoch) on a synthetic
  dataset, the faster of torch's default thread count and one thread (both in detail).
- GPU (when CUDA is available): ``gpu_graph_b128_p99_ms`` (goal <= 0.3),
  ``gpu_graph_vs_eager_b1`` (p50 of plain eager on the GPU over the CUDA graph, goal >= 3),
  ``gpu_predictions_per_s`` (best of the graph batch sizes, goal >= 1e6) and
  ``train_sequences_per_s_gpu``.

Usage: ``python benchmarks/bench_inference.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import result, write  # noqa: E402

F, L = 10, 63


def build_ensemble():
    """The goal's four members, untrained (seed 0), fitted state faked; equal weights."""
    import torch

    from workbench.models import (
        CNNModel,
        DeepMomentumLSTM,
        Ensemble,
        MLPModel,
        MomentumTransformer,
    )

    members = {"lstm": DeepMomentumLSTM(hidden_size=40),
               "transformer": MomentumTransformer(d_model=32, n_layers=2),
               "cnn": CNNModel(), "mlp": MLPModel()}
    for m in members.values():
        torch.manual_seed(0)
        m.network_ = m._build_network(F).eval()
        m.n_features_in_ = F
        m.feature_names_in_ = tuple(f"f{k}" for k in range(F))
        m.best_epoch_, m.best_valid_sharpe_, m.history_ = 0, float("nan"), []
    ens = Ensemble(members)
    ens.weights_ = {n: 1.0 / len(members) for n in members}
    ens.confidences_ = {n: float("nan") for n in members}
    return ens


def plain_eager(ens, device: str = "cpu", threads: int | None = None) -> Callable:
    """Full forward of every member, last step taken afterwards, weighted combination."""
    import copy

    import torch

    nets = [copy.deepcopy(m.network_).to(device) for m in ens.members.values()]
    w = torch.tensor([ens.weights_[n] for n in ens.names], device=device)

    def run(x: np.ndarray) -> np.ndarray:
        prev = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            xt = torch.from_numpy(np.nan_to_num(x[:, -L:].astype(np.float32),
                                                nan=0.0, posinf=0.0, neginf=0.0)).to(device)
            with torch.inference_mode():
                pos = torch.stack([net(xt)[:, -1] for net in nets])
                return (w @ pos).double().cpu().numpy()
        finally:
            if threads is not None:
                torch.set_num_threads(prev)

    return run


def measure(fns: dict[str, Callable[[], object]], n: int, block: int = 25,
            warmup: int = 5, sync: Callable[[], object] | None = None) -> dict[str, np.ndarray]:
    """Per-call seconds of each function, ``n`` calls each, interleaved in blocks."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out: dict[str, list[float]] = {k: [] for k in fns}
    while min(len(v) for v in out.values()) < n:
        for k, fn in fns.items():
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                if sync is not None:
                    sync()
                out[k].append(time.perf_counter() - t0)
    return {k: np.array(v[:n]) for k, v in out.items()}


def pct(t: np.ndarray) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(t, 50) * 1e3), "p99_ms": float(np.percentile(t, 99)
                                                                          * 1e3)}


def member_breakdown(ens, B: int, n: int) -> dict[str, dict[str, float]]:
    """p50 ms of each member at batch B: full forward and last-step path, 1 and 2 threads.

    Members with a fused path (the transformer) also report the last-step path with it
    (``last_fused``).
    """
    import copy

    import torch

    from workbench.models import last_step

    x = torch.randn(B, L, F, generator=torch.Generator().manual_seed(1))
    prev = torch.get_num_threads()
    out: dict[str, dict[str, float]] = {}
    try:
        with torch.inference_mode():
            for name, m in ens.members.items():
                net = m.network_
                for nt in sorted({1, prev}):
                    torch.set_num_threads(nt)
                    fns = {"full": lambda net=net: net(x)[:, -1],
                           "last": lambda net=net: last_step(net, x)}
                    if hasattr(net, "set_fused_attention"):
                        fused = copy.deepcopy(net).set_fused_attention(True)
                        fns["last_fused"] = lambda net=fused: last_step(net, x)
                    t = measure(fns, n, block=5, warmup=2)
                    out.setdefault(name, {}).update(
                        {f"{k}_{nt}thr_p50_ms": pct(v)["p50_ms"] for k, v in t.items()})
    finally:
        torch.set_num_threads(prev)
    return out


def bench_cpu(n_calls: int, batches: tuple[int, ...], try_compile: bool,
              quick: bool) -> list[dict]:
    import torch

    from workbench.models import InferenceEngine

    ens = build_ensemble()
    configs: dict[str, dict] = {"engine": {}, "engine_auto": {"threads": "auto"},
                                "engine_fused_auto": {"threads": "auto",
                                                      "fused_attention": True}}
    if not quick:
        configs.update({"engine_1thread": {"threads": 1},
                        "engine_lanes": {"parallel_members": 2},
                        "engine_fused_lanes": {"fused_attention": True,
                                               "parallel_members": 2},
                        "engine_fused_rows2": {"fused_attention": True, "parallel_rows": 2}})
    if try_compile:
        configs["engine_compiled_auto"] = {"compile": True, "threads": "auto"}
        configs["engine_compiled_fused_auto"] = {"compile": True, "threads": "auto",
                                                 "fused_attention": True}
        configs["engine_compiled_fused_rows2"] = {"compile": True, "fused_attention": True,
                                                  "parallel_rows": 2}
        if not quick:
            configs["engine_compiled"] = {"compile": True}
            configs["engine_compiled_fused"] = {"compile": True, "fused_attention": True}
    engines, build_s = {}, {}
    for name, kw in configs.items():
        t0 = time.perf_counter()
        eng = InferenceEngine(ens, batch_sizes=batches, device="cpu", context_length=L, **kw)
        build_s[name] = time.perf_counter() - t0
        if kw.get("compile") and not eng.compiled_:
            print("torch.compile unavailable: compiled configuration skipped")
            continue
        engines[name] = eng
        print(f"built {name} in {build_s[name]:.1f} s"
              + (f"; threads per member {eng.thread_choice_}" if eng.thread_choice_ else ""))
    rng = np.random.default_rng(0)
    rows: list[dict] = []
    lat: dict[int, dict[str, dict[str, float]]] = {}
    eager, eager1 = plain_eager(ens), plain_eager(ens, threads=1)
    for B in batches:
        x = rng.normal(size=(B, L, F)).astype(np.float32)
        ref = eager(x)
        for name, eng in engines.items():  # all configurations serve the same positions
            err = float(np.abs(eng(x) - ref).max())
            assert err < 1e-5, (name, B, err)
        fns: dict[str, Callable[[], object]] = {"plain_eager": lambda x=x: eager(x),
                                                "plain_eager_1thread": lambda x=x: eager1(x)}
        fns.update({k: (lambda e=e, x=x: e(x)) for k, e in engines.items()})
        n = n_calls if B <= 64 else max(20, n_calls // 10)
        if B == 1:
            n *= 2
        times = measure(fns, n)
        lat[B] = {k: pct(v) for k, v in times.items()}
        for k, v in lat[B].items():
            rows.append(result(f"cpu_latency_b{B}_{k}_ms", v["p50_ms"], "ms", None, False,
                               p99_ms=v["p99_ms"], calls=n, batch=B,
                               predictions_per_s=B / (v["p50_ms"] / 1e3)))
        print(f"B={B}: " + ", ".join(f"{k} {v['p50_ms']:.2f}/{v['p99_ms']:.2f}"
                                     for k, v in lat[B].items()) + " ms (p50/p99)")
    b = 64 if 64 in lat else batches[-1]
    best = min(engines, key=lambda k: lat[b][k]["p99_ms"])
    fastest = min(engines, key=lambda k: lat[b][k]["p50_ms"])
    detail = dict(configuration=best, configurations={k: configs[k] for k in engines},
                  build_s=build_s, batch=b, L=L, F=F, torch_threads=torch.get_num_threads(),
                  threads_per_member={k: e.thread_choice_ for k, e in engines.items()
                                      if e.thread_choice_},
                  member_p50_ms_b64=member_breakdown(ens, 64, 10 if quick else 50),
                  members="DeepMomentumLSTM(40) MomentumTransformer(32, 2 layers) CNN MLP")
    rows.insert(0, result("cpu_ensemble_b64_p99_ms", lat[b][best]["p99_ms"], "ms", 5.0, False,
                          p50_ms=lat[b][best]["p50_ms"], **detail))
    eager_p50 = lat[b]["plain_eager"]["p50_ms"]
    rows.insert(1, result(
        "cpu_engine_vs_eager_b64", eager_p50 / lat[b][fastest]["p50_ms"],
        "ratio", 3.0, True, eager_p50_ms=eager_p50, engine_p50_ms=lat[b][fastest]["p50_ms"],
        engine_p99_ms=lat[b][fastest]["p99_ms"],
        vs_plain_eager_1thread=lat[b]["plain_eager_1thread"]["p50_ms"]
        / lat[b][fastest]["p50_ms"],
        default_engine_vs_eager=eager_p50 / lat[b]["engine"]["p50_ms"],
        lowest_p99_configuration_vs_eager=eager_p50 / lat[b][best]["p50_ms"],
        **{**detail, "configuration": fastest}))
    for eng in engines.values():
        eng.close()
    return rows


def bench_train(device: str, T: int, N: int, epochs: int,
                threads: int | None = None) -> tuple[float, dict]:
    """Training sequences per second of the DeepMomentumLSTM trainer (windows x epochs / s)."""
    import pandas as pd
    import torch

    from workbench.models import DeepMomentumLSTM, MomentumDataset

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(T, N, F))
    r = 0.01 * rng.normal(size=(T, N))
    ds = MomentumDataset(index=pd.date_range("2000-01-03", periods=T, freq="B", tz="UTC"),
                         symbols=tuple(f"A{j}" for j in range(N)), features=feats,
                         feature_names=tuple(f"f{k}" for k in range(F)),
                         returns=np.vstack([np.full((1, N), np.nan), r[:-1]]),
                         next_returns=r, sigma=np.full((T, N), 0.15),
                         close=100 * np.cumprod(1 + r, axis=0), data_hash="bench")
    m = DeepMomentumLSTM(hidden_size=40, epochs=epochs, device=device, progress=False)
    ok = ds.valid_mask().copy()
    ok[T - 1:] = False
    windows = int(m._windows(ds.features, ds.next_returns, ds.sigma, ok, 0, T).x.shape[0])
    prev = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        m.fit(ds, slice(0, T))
        secs = time.perf_counter() - t0
    finally:
        torch.set_num_threads(prev)
    return windows * epochs / secs, dict(windows_per_epoch=windows, epochs=epochs, seconds=secs,
                                         T=T, N=N, F=F, hidden_size=40, seq_len=63,
                                         burn_in=63, batch_size=64, device=device,
                                         torch_threads=threads or prev)


def bench_gpu(n_calls: int, quick: bool) -> list[dict]:
    import torch

    from workbench.models import InferenceEngine

    ens = build_ensemble()
    batches = (1, 64, 128, 512) if quick else (1, 64, 128, 512, 4096)
    rng = np.random.default_rng(0)
    rows = []
    out: dict[str, dict] = {}
    for precision in ("float32", "bfloat16"):
        t0 = time.perf_counter()
        eng = InferenceEngine(ens, batch_sizes=batches, device="cuda", context_length=L,
                              precision=precision)
        build = time.perf_counter() - t0
        eager = plain_eager(ens, device="cuda")
        for B in batches:
            x = rng.normal(size=(B, L, F)).astype(np.float32)
            fns: dict[str, Callable[[], object]] = {"graph": lambda x=x, e=eng: e(x)}
            if precision == "float32":
                fns["eager"] = lambda x=x, e=eager: e(x)
            times = measure(fns, n_calls if B <= 512 else max(50, n_calls // 10),
                            sync=torch.cuda.synchronize)
            for k, v in times.items():
                p = pct(v)
                out.setdefault(precision, {}).setdefault(B, {})[k] = p
                rows.append(result(f"gpu_latency_b{B}_{k}_{precision}_ms", p["p50_ms"], "ms",
                                   None, False, p99_ms=p["p99_ms"], batch=B,
                                   predictions_per_s=B / (p["p50_ms"] / 1e3)))
        out[precision]["build_s"] = build
        out[precision]["check"] = eng.precision_check_
    f32 = out["float32"]
    best_pps = max(B / (f32[B]["graph"]["p50_ms"] / 1e3) for B in batches)
    head = [
        result("gpu_graph_b128_p99_ms", f32[128]["graph"]["p99_ms"], "ms", 0.3, False,
               p50_ms=f32[128]["graph"]["p50_ms"], precision="float32",
               bf16_p99_ms=out["bfloat16"][128]["graph"]["p99_ms"]),
        result("gpu_graph_vs_eager_b1", f32[1]["eager"]["p50_ms"] / f32[1]["graph"]["p50_ms"],
               "ratio", 3.0, True, eager_p50_ms=f32[1]["eager"]["p50_ms"],
               graph_p50_ms=f32[1]["graph"]["p50_ms"]),
        result("gpu_predictions_per_s", best_pps, "predictions/s", 1e6, True,
               batches=list(batches), precision="float32",
               bf16_predictions_per_s=max(B / (out["bfloat16"][B]["graph"]["p50_ms"] / 1e3)
                                          for B in batches),
               precision_check_bf16=out["bfloat16"]["check"],
               build_s={k: out[k]["build_s"] for k in out}),
    ]
    sps, detail = bench_train("cuda", 1000 if quick else 3000, 20 if quick else 50,
                              1 if quick else 3)
    head.append(result("train_sequences_per_s_gpu", sps, "sequences/s", None, True, **detail))
    return head + rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; ``--quick`` finishes in under a minute on 2 cores."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-compile", action="store_true",
                    help="skip the torch.compile configuration (compiling takes ~20-40 s)")
    args = ap.parse_args(argv)
    import torch

    t_start = time.perf_counter()
    results = bench_cpu(n_calls=50 if args.quick else 1000,
                        batches=(1, 64) if args.quick else (1, 64, 512),
                        try_compile=not args.no_compile, quick=args.quick)
    # the trainer at torch's default thread count and at one thread (2-thread oneDNN LSTM
    # steps stall when another process holds a core); the faster is the result
    T_train = 1000 if args.quick else 2000
    runs = [bench_train("cpu", T_train, 20, 1), bench_train("cpu", T_train, 20, 1, threads=1)]
    sps, detail = max(runs, key=lambda r: r[0])
    detail["sequences_per_s_by_threads"] = {r[1]["torch_threads"]: r[0] for r in runs}
    results.insert(2, result("train_sequences_per_s_cpu", sps, "sequences/s", None, True,
                             **detail))
    print(f"(CPU part {time.perf_counter() - t_start:.0f} s)")
    write("inference", results, args.quick)
    if torch.cuda.is_available():
        path = write("inference", bench_gpu(200 if args.quick else 2000, args.quick),
                     args.quick, gpu=True)
        doc = json.loads(path.read_text())
        if doc["machine"]["gpu"] is None:  # _common.machine() asks CuPy only
            doc["machine"]["gpu"] = torch.cuda.get_device_name(0)
            path.write_text(json.dumps(doc, indent=2))
    else:
        print("no CUDA GPU available: GPU results not produced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
