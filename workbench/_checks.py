"""Predicates for argument checks shared by the packages (standard library only)."""

from __future__ import annotations

import math
import numbers
from typing import Any, TypeGuard

__all__ = ["is_finite_real", "is_real"]


def is_real(value: Any) -> TypeGuard[float]:
    """Whether ``value`` is a real number and not a bool.

    Python and NumPy integers and floats count (NaN and inf included); ``True``/``False``,
    ``numpy.bool_``, strings, ``None`` and complex numbers do not. (Typed as a guard for
    ``float``, which every such value converts to.)
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_finite_real(value: Any) -> TypeGuard[float]:
    """Whether ``value`` is a finite real number and not a bool (see :func:`is_real`)."""
    return is_real(value) and math.isfinite(value)
