"""Shared helpers of the live tests: bundled bars as engine batches, a list-backed feed."""

from __future__ import annotations

import math

import numpy as np

from workbench.data import load_universe
from workbench.live import Bar


def bar_batches(start: str = "2004-01-01", end: str = "2008-12-31"):
    """``(symbols, batches)``: one list of ``Bar`` per timestamp of the daily universe."""
    bars = load_universe("daily", start=start, end=end)
    o, h, lo, c, v = (np.asarray(bars[f], dtype=float) for f in
                      ("open", "high", "low", "close", "volume"))
    out = []
    for t, ts in enumerate(bars.index.asi8):
        out.append([Bar(s, int(ts), o[t, j], h[t, j], lo[t, j], c[t, j], v[t, j])
                    for j, s in enumerate(bars.symbols) if math.isfinite(c[t, j])])
    return bars.symbols, out


class ListFeed:
    """A feed over a fixed list of batches (the engine is stepped by hand)."""

    def __init__(self, symbols, batches):
        self.symbols = tuple(symbols)
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)
