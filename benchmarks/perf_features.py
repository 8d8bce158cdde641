"""Performance sanity (not a test): ema+rsi+macd+bollinger, numba kernels vs TA-Lib per column.

Run: ``.venv/bin/python benchmarks/perf_features.py [T] [N]``. A quick look only; the
reference benchmark with JSON results (DESIGN.md section 10) is ``bench_features.py``.
Both sides run in this process, best of ``repeat``; the per-indicator lines break the
total down (TA-Lib's column copy is counted in each of its lines).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import talib

import workbench.features as F


def _best(fn, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def main(T: int = 20_000, N: int = 500, repeat: int = 5) -> None:
    x = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, (T, N)), axis=0))
    cols = [np.ascontiguousarray(x[:, j]) for j in range(N)]

    ours_each = {
        "ema": lambda: F.ema(x, 20),
        "rsi": lambda: F.rsi(x, 14),
        "macd": lambda: F.macd(x),
        "bollinger": lambda: F.bollinger(x),
    }
    ta_each = {
        "ema": lambda c: talib.EMA(c, 20),
        "rsi": lambda c: talib.RSI(c, 14),
        "macd": lambda c: talib.MACD(c),
        "bollinger": lambda c: talib.BBANDS(c, 20, 2.0, 2.0, 0),
    }

    def ours():
        for f in ours_each.values():
            f()

    def ta():
        for j in range(N):
            c = np.ascontiguousarray(x[:, j])
            for f in ta_each.values():
                f(c)

    ours()  # compile / load cache
    res = {}
    for name, fn in [("workbench", ours), ("talib", ta)]:
        res[name] = _best(fn, repeat)
        print(f"{name:22s} best of {repeat}: {1e3 * res[name]:8.1f} ms")
    print(f"speed-up vs talib: {res['talib'] / res['workbench']:.2f}x")
    for k in ours_each:
        a = _best(ours_each[k], repeat)
        b = _best(lambda k=k: [ta_each[k](c) for c in cols], repeat)
        print(
            f"  {k:10s} workbench {1e3 * a:7.1f} ms  talib (columns pre-copied) {1e3 * b:7.1f} ms"
        )
    import numba

    print(f"T={T} N={N} numba threads={numba.get_num_threads()}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
