"""Market-data records handed out by feeds: a bar, or a message that is not one."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Bar", "Malformed"]


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
