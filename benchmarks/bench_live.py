"""Live engine benchmark (DESIGN.md section 10): tick-to-RiskState latency and throughput.

Set-up: 50 symbols of synthetic random-walk OHLCV bars (geometric, 1 % daily vol), the
whole engine of :class:`workbench.live.LiveEngine`: bad-input validation, the full OHLCV
feature catalogue streamed by ``FeatureStream`` (less the O(N^2) mean pairwise
correlation) plus the model inputs, the demo ensemble (4 members,
:func:`workbench.live.demo_ensemble`) served by ``InferenceEngine`` (one thread) on the
last ``CONTEXT = 64`` steps per symbol (burn-in + 1), vol-targeted sizing,
pre-trade checks, the paper broker, the SQLite ledger in a temporary folder (the default:
WAL, ``synchronous=NORMAL``, so a commit survives a kill of the process, which is what the
restart guarantee needs), and the risk monitor. The feature state is warmed up first (300 bars,
not timed), so every timed batch runs inference and trades.

- Paced run: one batch of 50 bars every 100 ms (10 bars/s per symbol) for 300 s (30 s
  with ``--quick``) in one thread, as the producer does. ``e2e_p99_ms_cpu`` is the p99 of
  the engine's end-to-end latency (batch in -> RiskState out, goal <= 5 ms); per-stage
  p50/p99 are in the detail. Backlog: each batch's start is compared with its scheduled
  time; ``backlog_growth_ms_per_min`` is the slope of that lateness over the run (a
  growing backlog shows as a positive slope) and the largest lateness is reported.
- ``max_bars_per_s_cpu``: the same engine stepped as fast as it goes (no pacing) over
  2,000 batches (500 with ``--quick``), times 50 symbols: the highest sustained rate.

- ``idle_slowdown_inference``: what idling costs on this machine. The engine's inference
  call on a fixed window, timed back to back (hot) and as the first call after 100 ms idle
  (as every paced batch is), interleaved in one run; the value is the ratio of the p50s.
  The detail has the same for a reference op outside this project's code (a 64 x 64
  ``torch.mm``), so a slowdown that comes from the host rather than the engine shows.

The browser rows (``browser_updates_per_s``, ``browser_lag_p99_ms``) and the 5-minute
soak (``soak_rss_growth_mb``) need the served app and headless Chromium; they are
measured by ``--browser`` (see :func:`browser_rows`).

Usage: ``python benchmarks/bench_live.py [--quick] [--browser]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import result, write  # noqa: E402

N_SYMBOLS = 50
RATE_HZ = 10.0
#: Steps served per symbol: the members' burn-in (63) + 1, the shortest context that
#: training scored (the ensemble's full context is 126).
CONTEXT = 64


def synthetic_batches(n_batches: int, n_symbols: int = N_SYMBOLS, seed: int = 0):
    """List of batches (one timestamp each) of random-walk OHLCV bars."""
    from workbench.live import Bar

    rng = np.random.default_rng(seed)
    r = rng.normal(0.0002, 0.01, size=(n_batches, n_symbols))
    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    open_ = np.vstack([close[:1], close[:-1]]) * np.exp(rng.normal(0, 0.002, close.shape))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, close.shape)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, close.shape)))
    vol = rng.integers(1_000, 100_000, close.shape).astype(float)
    syms = [f"S{j:02d}" for j in range(n_symbols)]
    t0 = 1_600_000_000 * 10**9
    day = 86_400 * 10**9
    return syms, [[Bar(syms[j], t0 + t * day, open_[t, j], high[t, j], low[t, j], close[t, j],
                       vol[t, j]) for j in range(n_symbols)] for t in range(n_batches)]


class _ListFeed:
    def __init__(self, symbols):
        self.symbols = tuple(symbols)

    def __iter__(self):
        return iter(())


def build_engine(symbols, folder: str, model):
    from workbench.live import LiveEngine
    from workbench.live._broker import PaperBroker
    from workbench.live._ledger import Ledger
    from workbench.risk import RiskLimits

    ledger = Ledger(f"sqlite:///{folder}/ledger.db", initial_cash=10_000_000.0)
    limits = RiskLimits(max_order_notional=5e6, max_position_notional=5e6,
                        max_gross_exposure=2.0, max_net_exposure=2.0, max_drawdown=0.5,
                        stale_after_s=30.0)
    return LiveEngine(_ListFeed(symbols), model, ledger=ledger,
                      broker=PaperBroker(cost_bps=1.0, slippage_bps=2.0), limits=limits,
                      context_length=CONTEXT)


def _fresh_latency(engine) -> None:
    from workbench.risk import LatencyTracker

    engine.latency = LatencyTracker()


def paced(engine, batches, seconds: float) -> dict:
    """Step one batch every 1/RATE_HZ seconds; returns latency and backlog figures."""
    n = int(seconds * RATE_HZ)
    late = np.empty(n)
    t0 = time.perf_counter() + 0.05
    for k in range(n):
        target = t0 + k / RATE_HZ
        while (now := time.perf_counter()) < target:
            time.sleep(min(0.005, target - now))
        late[k] = time.perf_counter() - target
        engine.step(batches[k])
    minutes = np.arange(n) / RATE_HZ / 60.0
    slope = float(np.polyfit(minutes, late * 1e3, 1)[0]) if n > 2 else float("nan")
    return {"batches": n, "lateness_max_ms": float(late.max() * 1e3),
            "lateness_p99_ms": float(np.percentile(late, 99) * 1e3),
            "backlog_growth_ms_per_min": slope}


def idle_slowdown(call, rounds: int = 40, gap: float = 0.1, hot: int = 10) -> dict:
    """p50/p99 (ms) of ``call()`` hot (back to back) and first after ``gap`` s idle.

    Rounds of: idle ``gap`` seconds, one timed call (after idle), then ``hot`` more timed
    calls (hot; the first of these is dropped).
    """
    cold_t, hot_t = [], []
    for _ in range(rounds):
        time.sleep(gap)
        for k in range(hot + 1):
            t = time.perf_counter()
            call()
            dt = time.perf_counter() - t
            if k == 0:
                cold_t.append(dt)
            elif k > 1:
                hot_t.append(dt)
    c, h = np.array(cold_t) * 1e3, np.array(hot_t) * 1e3
    return {"hot_p50_ms": float(np.percentile(h, 50)), "hot_p99_ms": float(np.percentile(h, 99)),
            "idle_p50_ms": float(np.percentile(c, 50)),
            "idle_p99_ms": float(np.percentile(c, 99)),
            "ratio_p50": float(np.percentile(c, 50) / np.percentile(h, 50))}


def unpaced(engine, batches) -> float:
    t = time.perf_counter()
    for b in batches:
        engine.step(b)
    return len(batches) * N_SYMBOLS / (time.perf_counter() - t)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--browser", action="store_true",
                        help="also measure the served app in headless Chromium")
    args = parser.parse_args(argv)
    import torch

    from workbench.live import demo_ensemble

    torch.set_num_threads(1)  # small batches: one thread is faster, and robust to a busy box
    seconds = 20.0 if args.quick else 300.0
    n_fast = 500 if args.quick else 2000
    warm = 450  # the slowest input (MACD 32/96, 252-bar signal window) starts at bar ~350
    n_paced = int(seconds * RATE_HZ)
    symbols, batches = synthetic_batches(warm + n_paced + n_fast)
    model = demo_ensemble()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        engine = build_engine(symbols, tmp, model)
        for b in batches[:warm]:
            engine.step(b)
        _fresh_latency(engine)
        pace = paced(engine, batches[warm:warm + n_paced], seconds)
        lat = engine.latency_percentiles()
        fills = len(engine.ledger.fills(limit=None))
        e2e = lat["end_to_end"]
        print(f"paced: e2e p50 {e2e['p50']:.2f} ms p99 {e2e['p99']:.2f} ms; backlog slope "
              f"{pace['backlog_growth_ms_per_min']:.3f} ms/min; fills {fills}")
        results.append(result("e2e_p99_ms_cpu", e2e["p99"], "ms", 5.0, False,
                              p50_ms=e2e["p50"], p95_ms=e2e["p95"], symbols=N_SYMBOLS,
                              bars_per_s_per_symbol=RATE_HZ, seconds=seconds,
                              stages={k: v for k, v in lat.items()},
                              fills=fills, model=f"demo_ensemble (4 members), context {CONTEXT}",
                              **pace))
        results.append(result("backlog_growth_ms_per_min", pace["backlog_growth_ms_per_min"],
                              "ms/min", None, False, lateness_max_ms=pace["lateness_max_ms"]))
        _fresh_latency(engine)
        rate = unpaced(engine, batches[warm + n_paced:])
        lat2 = engine.latency_percentiles()["end_to_end"]
        print(f"unpaced: {rate:,.0f} bars/s (e2e p50 {lat2['p50']:.2f} ms)")
        results.append(result("max_bars_per_s_cpu", rate, "bars/s", None, True,
                              batches=n_fast, symbols=N_SYMBOLS, e2e_p50_ms=lat2["p50"],
                              e2e_p99_ms=lat2["p99"]))
        engine.ledger.close()
        import torch

        inf = engine.model  # the InferenceEngine
        x = np.random.default_rng(1).normal(
            0.0, 0.5, (N_SYMBOLS, inf.context_length_, inf.n_features_in_))
        a = torch.randn(64, 64)
        rounds = 20 if args.quick else 40
        idle = idle_slowdown(lambda: inf.predict(x), rounds)
        ref = idle_slowdown(lambda: torch.mm(a, a), rounds)
        print(f"idle: inference {idle['hot_p50_ms']:.2f} ms hot, {idle['idle_p50_ms']:.2f} ms "
              f"after 100 ms idle; reference mm {ref['hot_p50_ms'] * 1e3:.0f} vs "
              f"{ref['idle_p50_ms'] * 1e3:.0f} us")
        results.append(result("idle_slowdown_inference", idle["ratio_p50"], "x", None, False,
                              gap_s=0.1, rounds=rounds, inference=idle,
                              reference_mm_64=ref))
    if args.browser:
        results += browser_rows(quick=args.quick)
    write("live", results, args.quick)
    return 0


def browser_rows(quick: bool) -> list[dict]:
    """Rendered updates per second, server-to-browser lag and soak RSS (served app)."""
    from live_browser import measure  # benchmarks/live_browser.py

    out = measure(seconds=60 if quick else 300)
    return [
        result("browser_updates_per_s", out["updates_per_s"], "1/s", None, True,
               **out["detail"]),
        result("browser_lag_p99_ms", out["lag_p99_ms"], "ms", None, False,
               lag_p50_ms=out["lag_p50_ms"]),
        result("soak_rss_growth_mb", out["rss_growth_mb"], "MB", 50.0, False,
               seconds=out["seconds"], rss_mb=out["rss_mb"]),
    ]


if __name__ == "__main__":
    sys.exit(main())
