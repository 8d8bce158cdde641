"""Paper broker: market orders fill at the next bar's open, with slippage and fees in bps."""

from __future__ import annotations

import math
import operator
from collections import OrderedDict
from collections.abc import Sequence

from workbench.live._types import Bar, Fill, Order

__all__ = ["PaperBroker"]

#: How many filled order ids the broker remembers to ignore re-submissions (the oldest are
#: forgotten first, so memory stays bounded in a long session; the ledger's fill ids are the
#: durable guard against applying a fill twice).
REMEMBER_FILLED = 100_000


def _check_bps(name: str, value: object) -> float:
    """``value`` as a float that is finite and >= 0, else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"PaperBroker: {name} must be a finite number >= 0 (basis points), "
                         f"got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"PaperBroker: {name} must be a finite number >= 0 (basis points), "
                         f"got {value!r}")
    return value


def _check_order(order: object) -> Order:
    """``order`` itself when it is a well-formed :class:`Order`, else ValueError/TypeError."""
    if not isinstance(order, Order):
        raise TypeError(f"PaperBroker: expected an Order, got {type(order).__name__}: {order!r}")
    if not isinstance(order.order_id, str) or not order.order_id:
        raise ValueError(f"PaperBroker: order_id must be a non-empty str, got {order!r}")
    if not isinstance(order.symbol, str) or not order.symbol:
        raise ValueError(f"PaperBroker: order {order.order_id!r}: symbol must be a non-empty "
                         f"str, got {order.symbol!r}")
    try:
        operator.index(order.ts)
    except TypeError:
        raise ValueError(f"PaperBroker: order {order.order_id!r}: ts must be an int "
                         f"(ns since the epoch), got {order.ts!r}") from None
    for field in ("qty", "ref_price"):
        value = getattr(order, field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ValueError(f"PaperBroker: order {order.order_id!r}: {field} must be a finite "
                             f"number, got {value!r}")
    return order


class PaperBroker:
    """Simulated execution of market orders at the next price after the decision.

    An order decided at bar ``order.ts`` fills at the OPEN of the first later bar of its
    symbol (``bar.ts > order.ts``), the first price that could really be traded after the
    decision. Slippage moves the price against the order and a proportional fee is charged:

    - buy (``qty > 0``): ``price = open * (1 + slippage_bps * 1e-4)``
    - sell (``qty < 0``): ``price = open * (1 - slippage_bps * 1e-4)``
    - ``fee = |qty| * price * cost_bps * 1e-4`` (currency, >= 0)

    Orders stay pending until such a bar arrives. Submitting an order id that is already
    pending or was already filled is a no-op, so replaying decisions after a restart cannot
    trade twice. The broker keeps no durable state: after a restart, :meth:`restore` it from
    the ledger's open orders (``Ledger.open_orders()``).

    Parameters
    ----------
    cost_bps : float, default 1.0
        Commission in basis points of the filled notional (finite, >= 0).
    slippage_bps : float, default 2.0
        Adverse price move in basis points of the open (finite, >= 0).

    Raises
    ------
    ValueError
        When ``cost_bps`` or ``slippage_bps`` is not a finite number >= 0 (the message names
        the parameter and the value).

    Notes
    -----
    Not thread-safe: one producer (the live engine) owns it. The fill model is the usual
    "next-open" paper-trading convention (no partial fills, no volume limit, no market
    impact beyond the fixed slippage).

    Examples
    --------
    >>> from workbench.live._types import Bar, Order
    >>> broker = PaperBroker(cost_bps=1.0, slippage_bps=2.0)
    >>> broker.submit([Order("1-SPY", 1, "SPY", 10.0, 100.0)])
    >>> [f.price for f in broker.on_bars([Bar("SPY", 2, 100.0, 101.0, 99.0, 100.5, 1e6)])]
    [100.02]
    """

    def __init__(self, cost_bps: float = 1.0, slippage_bps: float = 2.0) -> None:
        self.cost_bps = _check_bps("cost_bps", cost_bps)
        self.slippage_bps = _check_bps("slippage_bps", slippage_bps)
        self._pending: dict[str, Order] = {}
        self._filled: OrderedDict[str, None] = OrderedDict()

    def __repr__(self) -> str:
        return (f"PaperBroker(cost_bps={self.cost_bps!r}, slippage_bps={self.slippage_bps!r}, "
                f"pending={len(self._pending)})")

    def submit(self, orders: Sequence[Order]) -> None:
        """Queue market orders; ids already pending or already filled are ignored.

        Parameters
        ----------
        orders : sequence of Order
            Orders to queue, in decision order.

        Raises
        ------
        TypeError, ValueError
            When an element is not an :class:`Order` or has an empty id/symbol, a non-int
            ``ts`` or a non-finite ``qty``/``ref_price``; nothing is queued then.
        """
        checked = [_check_order(order) for order in orders]
        for order in checked:
            if order.order_id in self._pending or order.order_id in self._filled:
                continue
            self._pending[order.order_id] = order

    def on_bars(self, bars: Sequence[Bar]) -> list[Fill]:
        """Fill the pending orders that have a later bar of their symbol in ``bars``.

        Each such order fills at the open of the earliest bar of its symbol in ``bars``
        whose ``ts`` is after the order's ``ts``; the fill's ``ts`` is that bar's, its id
        ``f"{order.order_id}/fill"``. Other orders stay pending.

        Parameters
        ----------
        bars : sequence of Bar
            The bars that just arrived (any symbols, any order).

        Returns
        -------
        list of Fill
            One fill per filled order, in the order the orders were submitted.

        Raises
        ------
        ValueError
            When a bar that would fill an order has an open that is not a finite number
            > 0 (message names the symbol, ts and order); nothing is filled then.
        """
        if not self._pending:
            return []
        by_symbol: dict[str, list[Bar]] = {}
        for item in bars:
            by_symbol.setdefault(item.symbol, []).append(item)
        if not by_symbol:
            return []
        buy = 1.0 + self.slippage_bps * 1e-4
        sell = 1.0 - self.slippage_bps * 1e-4
        cost = self.cost_bps * 1e-4
        fills: list[Fill] = []
        for order in self._pending.values():
            candidates = by_symbol.get(order.symbol)
            if not candidates:
                continue
            bar: Bar | None = None
            for candidate in candidates:
                if candidate.ts > order.ts and (bar is None or candidate.ts < bar.ts):
                    bar = candidate
            if bar is None:
                continue
            open_ = bar.open
            if isinstance(open_, bool) or not isinstance(open_, (int, float)) \
                    or not math.isfinite(open_) or open_ <= 0:
                raise ValueError(f"PaperBroker.on_bars: bar {bar.symbol!r} at ts={bar.ts} has "
                                 f"open={open_!r}; cannot fill order {order.order_id!r} "
                                 "(validate the feed before the broker)")
            price = open_ * (buy if order.qty > 0 else sell)
            fee = abs(order.qty) * price * cost
            fills.append(Fill(fill_id=f"{order.order_id}/fill", order_id=order.order_id,
                              ts=bar.ts, symbol=order.symbol, qty=order.qty, price=price,
                              fee=fee))
        for fill in fills:
            del self._pending[fill.order_id]
            self._filled[fill.order_id] = None
        while len(self._filled) > REMEMBER_FILLED:
            self._filled.popitem(last=False)
        return fills

    def pending(self) -> list[Order]:
        """The orders waiting for a later bar, in submission order.

        Returns
        -------
        list of Order
        """
        return list(self._pending.values())

    def restore(self, pending: Sequence[Order]) -> None:
        """Replace the pending queue with ``pending`` (e.g. the ledger's open orders).

        Used after a restart: the broker holds no durable state, the ledger does. Orders
        are queued in the given order; duplicate ids are queued once.

        Parameters
        ----------
        pending : sequence of Order

        Raises
        ------
        TypeError, ValueError
            As :meth:`submit`; the queue is left unchanged then.
        """
        checked = [_check_order(order) for order in pending]
        self._pending = {}
        for order in checked:
            self._pending.setdefault(order.order_id, order)

    def cancel_all(self) -> list[Order]:
        """Drop every pending order.

        Returns
        -------
        list of Order
            The orders that were cancelled (so the caller can mark them in the ledger).
        """
        cancelled = list(self._pending.values())
        self._pending = {}
        return cancelled
