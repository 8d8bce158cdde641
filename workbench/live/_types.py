"""Plain records that flow through the live engine: bars, rejects, orders, fills.

They are defined where the lower layers need them (DESIGN section 1: nothing imports
upward): :class:`Bar` and :class:`Malformed` in :mod:`workbench.data` (feeds hand them
out), :class:`Order` and :class:`Fill` in :mod:`workbench.risk` (pre-trade checks take
orders); this module gathers them for the engine.
"""

from __future__ import annotations

from workbench.data._records import Bar, Malformed
from workbench.risk._orders import Fill, Order

__all__ = ["Bar", "Malformed", "Order", "Fill"]
