"""Plain records that flow through the live engine: bars, rejects, orders, fills."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Bar", "Malformed", "Order", "Fill"]


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar of one symbol.

    Attributes
    ----------
    symbol : str
    ts : int
        Bar timestamp, nanoseconds since the Unix epoch, UTC.
    open, high, low, close : float
        Prices in the instrument's currency.
    volume : float
        Traded quantity over the bar (shares or contracts).
    """

    symbol: str
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class Malformed:
    """A feed message that could not be parsed into a :class:`Bar`.

    Attributes
    ----------
    raw : str
        The message (truncated to 500 characters; never holds credentials).
    reason : str
        Why it was rejected (e.g. ``"missing field 'c'"``).
    """

    raw: str
    reason: str


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
