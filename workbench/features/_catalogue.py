"""The feature catalogue: one registry entry per feature (batch kernel + streaming class).

Feature modules register a :class:`FeatureDef` at import time; :class:`FeatureSet` and
:class:`FeatureStream` read the registry. An entry names the input fields it needs, its
parameters with defaults, its outputs, the batch function and (when the feature allows
O(1) updates) the streaming class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FeatureDef", "CATALOGUE", "register", "get", "GROUPS", "INPUT_FIELDS"]

#: Catalogue groups (DESIGN.md section 3).
GROUPS = ("trend", "bands", "volume", "volatility", "microstructure", "cross-asset",
          "deep-momentum", "order-book")

#: Input fields a feature may ask for: OHLCV panels (T, N) or L2 books (T, N, k).
INPUT_FIELDS = ("open", "high", "low", "close", "volume", "bid_px", "ask_px", "bid_sz", "ask_sz")


@dataclass(frozen=True)
class FeatureDef:
    """Registry entry of one catalogue feature.

    Attributes
    ----------
    name : str
        Catalogue key, e.g. ``"rsi"``.
    group : str
        One of :data:`GROUPS`.
    inputs : tuple of str
        Input fields from :data:`INPUT_FIELDS`, in the order ``batch`` takes them.
    params : dict
        Parameter names and defaults, e.g. ``{"period": 14}``.
    outputs : tuple of str
        Output names; ``("",)`` for a single output. A multi-output feature returns a
        tuple of (T, N) arrays in this order.
    batch : callable
        ``batch(*inputs, **params, dtype=..., backend=...)`` -> (T, N) array or tuple.
    stream : type or None
        Streaming class ``cls(n_symbols, **params)`` with ``update(x, out)`` (see
        :class:`workbench.features.StreamFeature`), or None when no O(1) update exists.
    description : str
        One line: formula and source.
    extra : dict
        Free-form metadata.
    positive : tuple of str
        The inputs that must be positive prices (the feature takes their ratios or
        logs): the batch function raises a ValueError on a finite value <= 0 there,
        and :class:`~workbench.features.FeatureSet` / ``FeatureStream`` check these
        fields once for all features, naming the symbol.
    nonnegative : tuple of str
        The inputs that must be >= 0 (volumes used as weights or denominators): a
        finite negative value raises a ValueError, in the batch function,
        ``FeatureSet`` and ``FeatureStream`` alike.
    """

    name: str
    group: str
    inputs: tuple[str, ...]
    params: dict[str, Any]
    outputs: tuple[str, ...]
    batch: Callable[..., Any]
    stream: type | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    positive: tuple[str, ...] = ()
    nonnegative: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"FeatureDef {self.name!r}: group must be one of {GROUPS}, "
                             f"got {self.group!r}")
        bad = [f for f in self.inputs if f not in INPUT_FIELDS]
        if bad:
            raise ValueError(f"FeatureDef {self.name!r}: unknown input fields {bad}")
        bad = [f for f in self.positive if f not in self.inputs]
        if bad:
            raise ValueError(f"FeatureDef {self.name!r}: positive fields {bad} are not "
                             f"among its inputs {self.inputs}")
        bad = [f for f in self.nonnegative if f not in self.inputs]
        if bad:
            raise ValueError(f"FeatureDef {self.name!r}: nonnegative fields {bad} are not "
                             f"among its inputs {self.inputs}")


CATALOGUE: dict[str, FeatureDef] = {}


def register(defn: FeatureDef) -> FeatureDef:
    """Add ``defn`` to :data:`CATALOGUE` (a re-registration replaces the entry)."""
    CATALOGUE[defn.name] = defn
    return defn


def get(name: str) -> FeatureDef:
    """The catalogue entry called ``name``.

    Raises
    ------
    KeyError
        If no feature has that name; the message lists the catalogue.
    """
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(f"unknown feature {name!r}; the catalogue has {sorted(CATALOGUE)}") from None
