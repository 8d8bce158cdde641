"""Protocol of streaming feature classes (per-symbol state, O(1) update per bar)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

__all__ = ["StreamFeature"]


class StreamFeature(ABC):
    """Base class of a streaming feature: O(window) state per symbol, O(1) work per bar.

    A subclass computes exactly what its batch kernel computes on the same history: at
    every step, its output for a symbol equals the batch output's row for that bar
    (to 1e-9 relative in float64).

    Parameters
    ----------
    n_symbols : int
        Number of symbols N (fixed for the stream's life).
    **params
        The feature's parameters (same names and defaults as the batch function).

    Notes
    -----
    Missing bars: where an input is NaN for a symbol (no bar at this step), the symbol's
    state is left unchanged and its outputs are NaN, matching the batch kernels, which
    compute on each asset's sequence of valid bars.
    """

    #: Input fields, in the order of the batch function (e.g. ``("high", "low", "close")``).
    inputs: ClassVar[tuple[str, ...]] = ("close",)
    #: Number of outputs per symbol.
    n_outputs: ClassVar[int] = 1

    def __init__(self, n_symbols: int, **params):
        if int(n_symbols) < 1:
            raise ValueError(f"n_symbols must be >= 1, got {n_symbols!r}")
        self.n_symbols = int(n_symbols)
        self.params = params

    @abstractmethod
    def update(self, x: dict[str, np.ndarray], out: np.ndarray) -> None:
        """Advance one bar.

        Parameters
        ----------
        x : dict of str to numpy.ndarray
            For each name in :attr:`inputs`, the new bar's values, float64 of shape (N,)
            (or (N, k) for order-book fields); NaN where a symbol has no bar.
        out : numpy.ndarray, shape (N, n_outputs)
            Filled in place with this step's outputs.
        """
