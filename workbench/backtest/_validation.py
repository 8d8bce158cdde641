"""Shared input validation for :mod:`workbench.backtest` (private)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workbench._checks import is_finite_real


def as_2d(x: Any, name: str) -> tuple[np.ndarray, pd.DataFrame | None]:
    """Return ``x`` as a float64 ``(T, N)`` array and the DataFrame it came from, if any.

    Parameters
    ----------
    x : array_like or pandas.DataFrame, shape (T, N)
        Input panel. A 1-D input of shape ``(T,)`` is treated as one asset, ``(T, 1)``.
    name : str
        Parameter name used in error messages.

    Returns
    -------
    values : numpy.ndarray, shape (T, N)
        Float64 copy-free view where possible.
    frame : pandas.DataFrame or None
        ``x`` itself when it was a DataFrame (used to re-wrap outputs), else None.

    Raises
    ------
    ValueError
        If ``x`` is not 1-D or 2-D, or is not numeric.
    """
    frame = x if isinstance(x, pd.DataFrame) else None
    if isinstance(x, pd.Series):
        frame = x.to_frame()
    try:
        src = frame.to_numpy(dtype=np.float64) if frame is not None else x
        arr = np.asarray(src, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        kind = getattr(x, "dtype", type(x).__name__)
        raise ValueError(f"{name} must be numeric, got {kind}") from exc
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (T, N), got shape {arr.shape}")
    return arr, frame


def close_frame(close: Any, name: str = "close") -> pd.DataFrame:
    """Close prices as a ``(T, N)`` DataFrame, from a DataFrame or a :class:`~workbench.data.Bars`.

    Parameters
    ----------
    close : pandas.DataFrame or workbench.data.Bars
        Close prices (index = timestamps, columns = symbols), or a bar panel whose
        ``close`` field is taken (:meth:`Bars.to_wide`).
    name : str, default "close"
        Parameter name used in error messages.

    Returns
    -------
    pandas.DataFrame, shape (T, N)
        ``close`` itself when it is a DataFrame.

    Raises
    ------
    ValueError
        If ``close`` is neither.
    """
    if isinstance(close, pd.DataFrame):
        return close
    from workbench.data import Bars  # (the data package is light; no cycle at call time)

    if isinstance(close, Bars):
        return close.to_wide("close")
    raise ValueError(f"{name} must be a pandas.DataFrame of close prices or a Bars panel, "
                     f"got {type(close).__name__}")


def check_same_shape(**arrays: np.ndarray) -> None:
    """Raise ValueError unless all named arrays have the same shape."""
    items = list(arrays.items())
    first_name, first = items[0]
    for name, arr in items[1:]:
        if arr.shape != first.shape:
            raise ValueError(
                f"{name} has shape {arr.shape} but {first_name} has shape {first.shape}; "
                "they must match"
            )


def check_same_labels(**frames: pd.DataFrame | None) -> None:
    """Raise ValueError unless the named DataFrames (None: not a DataFrame) share their labels.

    Panels are combined cell by cell in their row and column order, so two DataFrames with
    the same shape but reordered or different symbols or timestamps would silently mix assets
    or dates. Arrays carry no labels and are not checked.
    """
    items = [(name, f) for name, f in frames.items() if f is not None]
    if not items:
        return
    first_name, first = items[0]
    for name, f in items[1:]:
        for axis, a, b in (("columns", first.columns, f.columns), ("index", first.index, f.index)):
            if not a.equals(b):
                diff = [str(v) for v in b if v not in a][:3] or [str(v) for v in b[:3]]
                raise ValueError(
                    f"{name} and {first_name} have different {axis} (e.g. {name} has "
                    f"{', '.join(diff)}; the order matters too): align them first, e.g. "
                    f"{name}.reindex_like({first_name})"
                )


def check_positive(value: float | None, name: str, allow_none: bool = False) -> None:
    """Raise ValueError unless ``value`` is a finite number > 0 (or None when allowed)."""
    if value is None and allow_none:
        return
    if not is_finite_real(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_nonnegative(value: float, name: str) -> None:
    """Raise ValueError unless ``value`` is a finite number >= 0."""
    if not is_finite_real(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def wrap(values: np.ndarray, like: pd.DataFrame | None) -> np.ndarray | pd.DataFrame:
    """Wrap ``values`` in a DataFrame with ``like``'s index/columns when ``like`` is given."""
    if like is None:
        return values
    return pd.DataFrame(values, index=like.index, columns=like.columns)


def valid_sigma(sigma: np.ndarray) -> np.ndarray:
    """Boolean mask of cells whose volatility is finite and strictly positive."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(sigma) & (sigma > 0)
