"""Performance sanity (not a test): ema+rsi+macd+bollinger, numba kernels vs TA-Lib per column.

Run: ``.venv/bin/python benchmarks/perf_features.py [T] [N]``. A quick look only; the
reference benchmark with JSON results (DESIGN.md section 10) is ``bench_features.py``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import talib

import workbench.features as F


def main(T: int = 20_000, N: int = 500, repeat: int = 5) -> None:
    x = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, (T, N)), axis=0))

    def ours():
        F.ema(x, 20)
        F.rsi(x, 14)
        F.macd(x)
        F.bollinger(x)

    def ta():
        for j in range(N):
            c = np.ascontiguousarray(x[:, j])
            talib.EMA(c, 20)
            talib.RSI(c, 14)
            talib.MACD(c)
            talib.BBANDS(c, 20, 2.0, 2.0, 0)

    ours()  # compile / load cache
    res = {}
    for name, fn in [("workbench", ours), ("talib", ta)]:
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        res[name] = min(ts)
        print(f"{name:22s} best of {repeat}: {1e3 * min(ts):8.1f} ms")
    print(f"speed-up vs talib: {res['talib'] / res['workbench']:.2f}x")
    import numba

    print(f"T={T} N={N} numba threads={numba.get_num_threads()}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
