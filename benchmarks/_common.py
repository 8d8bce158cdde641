"""Shared helpers for benchmark scripts: machine facts, timing, JSON results (DESIGN.md s.10)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """CPU model, core count and GPU name (None without one)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = None
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception:  # noqa: BLE001 - no cupy or no device
        gpu = None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu}


def best_of(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Best wall time in seconds over ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def result(name: str, value: float, unit: str, goal: float | None, higher_is_better: bool,
           **detail) -> dict:
    """One entry of the results list."""
    return {"name": name, "value": value, "unit": unit, "goal": goal,
            "higher_is_better": higher_is_better, "detail": detail}


def write(benchmark: str, results: list[dict], quick: bool, gpu: bool = False) -> Path:
    """Write ``benchmarks/results/<benchmark>[-quick][-gpu].json`` and print a table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = benchmark + ("-quick" if quick else "") + ("-gpu" if gpu else "")
    out = RESULTS / f"{name}.json"
    doc = {"benchmark": benchmark,
           "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "quick": quick, "machine": machine(), "results": results}
    out.write_text(json.dumps(doc, indent=2))
    print(f"\n{'name':34s} {'value':>12s} {'unit':>8s} {'goal':>8s}  ok")
    for r in results:
        g = r["goal"]
        ok = "" if g is None else ("yes" if (r["value"] >= g if r["higher_is_better"]
                                             else r["value"] <= g) else "NO")
        print(f"{r['name']:34s} {r['value']:12.4g} {r['unit']:>8s} "
              f"{'' if g is None else f'{g:g}':>8s}  {ok}")
    print(f"-> {out}")
    return out
