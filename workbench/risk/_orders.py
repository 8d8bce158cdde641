"""Trading records: an order (checked before trade by :mod:`workbench.risk`) and its fill."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Order", "Fill"]


@dataclass(frozen=True, slots=True)
class Order:
    """A market order decided at bar ``ts``; it fills at the next bar of its symbol.

    Attributes
    ----------
    order_id : str
        Idempotency key, deterministic from the decision (``"<ts>-<symbol>"``): the same
        decision replayed after a restart has the same id and is never applied twice.
    ts : int
        Decision time, ns since the epoch (UTC).
    symbol : str
    qty : float
        Signed quantity (shares): positive buys, negative sells.
    ref_price : float
        Price at decision time (the bar's close), used for notional checks.
    """

    order_id: str
    ts: int
    symbol: str
    qty: float
    ref_price: float


@dataclass(frozen=True, slots=True)
class Fill:
    """Execution of an :class:`Order`.

    Attributes
    ----------
    fill_id : str
        Unique id (``"<order_id>/fill"``); applying a fill id twice is a no-op.
    order_id : str
    ts : int
        Fill time (the bar it filled at), ns since the epoch (UTC).
    symbol : str
    qty : float
        Signed filled quantity.
    price : float
        Execution price including slippage.
    fee : float
        Commission in currency (>= 0), charged to cash.
    """

    fill_id: str
    order_id: str
    ts: int
    symbol: str
    qty: float
    price: float
    fee: float
