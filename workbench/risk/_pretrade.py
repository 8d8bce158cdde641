"""Pre-trade checks for the live engine: limits, verdicts with reasons (DESIGN section 6).

Every order proposed by the sizing step goes through :func:`check_orders` before it reaches the
paper broker. A check never raises for a bad *order* (the live loop must keep running): the order is
rejected and the :class:`Verdict` says why, in sentences that carry the numbers. Bad *arguments*
(non-finite equity, a position that is NaN, limits of the wrong type) raise, because they are bugs
in the caller rather than market conditions.

Units
-----
Quantities are signed shares, prices and notionals are in the instruments' currency, exposures and
drawdowns are fractions of equity (0.25 = 25 %), ages are seconds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from workbench._checks import is_real
from workbench.risk._orders import Order

__all__ = ["RiskLimits", "Verdict", "check_orders"]


def _money(x: float, digits: int = 0) -> str:
    """``120000.4 -> '120,000'`` (currency amounts in reasons)."""
    return f"{x:,.{digits}f}"


def _pct(x: float, digits: int = 1) -> str:
    """``0.2314 -> '23.1%'`` (fractions of equity in reasons)."""
    return f"{100.0 * x:.{digits}f}%"


def _secs(x: float, digits: int = 1) -> str:
    """``7.5 -> '7.5'`` (ages in seconds in reasons)."""
    return f"{x:,.{digits}f}"


def _breach(fmt, value: float, limit: float, digits: int) -> tuple[str, str]:
    """``value`` and ``limit`` as ``fmt`` writes them, with the digits that tell them apart.

    A reason says ``value > max limit``; ``100,000.4`` and ``100,000`` both round to
    ``'100,000'``, which would read as a breach of a limit by an equal amount. Up to ten extra
    digits are added until the two strings differ.
    """
    for d in range(digits, digits + 11):
        a, b = fmt(value, d), fmt(limit, d)
        if a != b:
            break
    return a, b


@dataclass(frozen=True)
class RiskLimits:
    """Pre-trade limits checked by :func:`check_orders`.

    Parameters
    ----------
    max_position_notional : float, default 250_000.0
        Largest absolute position value per symbol after the order, ``|position * price|``, in
        currency.
    max_order_notional : float, default 100_000.0
        Largest single-order value ``|qty * price|`` in currency (a fat-finger limit; it applies to
        reducing orders too, so a large liquidation must be split).
    max_gross_exposure : float, default 1.5
        Largest ``sum_i |position_i * price_i| / equity`` after the order (fraction of equity).
    max_net_exposure : float, default 1.0
        Largest ``|sum_i position_i * price_i| / equity`` after the order (fraction of equity).
    max_drawdown : float, default 0.2
        Kill switch: once ``1 - equity / peak_equity >= max_drawdown`` only orders that reduce the
        absolute position of their symbol are allowed. Fraction in (0, 1].
    stale_after_s : float, default 5.0
        An order is rejected when its symbol's last bar is more than this many seconds old (wall
        clock or feed clock, whichever the caller measures ``bar_age_s`` with).

    Raises
    ------
    ValueError
        If a limit is not a finite number > 0 (or ``max_drawdown`` > 1); the message names the field
        and the bad value.
    """

    max_position_notional: float = 250_000.0
    max_order_notional: float = 100_000.0
    max_gross_exposure: float = 1.5
    max_net_exposure: float = 1.0
    max_drawdown: float = 0.2
    stale_after_s: float = 5.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not is_real(value):
                raise ValueError(
                    f"RiskLimits.{f.name} must be a positive finite number, got {value!r}"
                )
            v = float(value)
            if not (math.isfinite(v) and v > 0.0):
                raise ValueError(
                    f"RiskLimits.{f.name} must be a positive finite number, got {value!r}"
                )
            object.__setattr__(self, f.name, v)
        if self.max_drawdown > 1.0:
            raise ValueError(
                f"RiskLimits.max_drawdown is a fraction of peak equity in (0, 1], "
                f"got {self.max_drawdown!r}"
            )

    def replace(self, **changes: float) -> RiskLimits:
        """Return a validated copy with some limits changed.

        Parameters
        ----------
        **changes : float
            New values by field name, e.g. ``limits.replace(max_drawdown=0.1)``.

        Returns
        -------
        RiskLimits

        Raises
        ------
        ValueError
            If a name is not a field of :class:`RiskLimits` or a value is invalid.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"RiskLimits has no field(s) {unknown}; fields are {sorted(names)}")
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Verdict:
    """Outcome of the pre-trade checks for one order.

    Attributes
    ----------
    order : workbench.risk.Order
        The order checked (unchanged).
    approved : bool
        True when every check passed.
    reasons : tuple of str
        Empty when approved; otherwise one human sentence per failed check, with the numbers,
        e.g. ``"order notional 120,000 > max 100,000"``.

    Raises
    ------
    ValueError
        If ``approved`` disagrees with ``reasons`` (approved with reasons, or rejected without).
    """

    order: Order
    approved: bool
    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasons", tuple(self.reasons))
        if self.approved and self.reasons:
            raise ValueError(f"an approved Verdict must have no reasons, got {self.reasons!r}")
        if not self.approved and not self.reasons:
            raise ValueError("a rejected Verdict needs at least one reason")


def _finite_map(name: str, m: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(m, Mapping):
        raise TypeError(f"{name} must be a mapping symbol -> float, got {type(m).__name__}")
    out: dict[str, float] = {}
    for k, v in m.items():
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{k!r}] must be a number, got {v!r}") from None
        out[k] = fv
    return out


# relative slack on limit comparisons, so a value that equals a limit up to float rounding
# (1 - 80_000 / 100_000 = 0.19999999999999996) counts as equal
_RTOL = 1e-12


def _over(value: float, limit: float) -> bool:
    """``value > limit`` beyond float rounding."""
    return value > limit * (1.0 + _RTOL)


def _valid_price(p: float | None) -> bool:
    return p is not None and math.isfinite(p) and p > 0.0


def check_orders(
    orders: Iterable[Order],
    *,
    positions: Mapping[str, float],
    prices: Mapping[str, float],
    equity: float,
    peak_equity: float,
    bar_age_s: Mapping[str, float],
    limits: RiskLimits,
) -> list[Verdict]:
    """Run the pre-trade checks on a batch of orders, in order.

    The orders are evaluated sequentially against a hypothetical book: each *approved* order is
    added to the positions before the next order is checked, so two orders that each fit but not
    together give one approval and one rejection. Rejected orders leave the book unchanged. Every
    failed check adds a reason (all are collected). Pure function: no I/O, inputs are not mutated.

    Checks, for an order of ``qty`` shares of ``symbol`` valued at ``price = prices[symbol]``:

    - price: ``prices[symbol]`` must exist, be finite and > 0; quantity must be finite.
    - stale data: ``0 <= bar_age_s[symbol] <= stale_after_s`` (a missing, NaN or negative age
      is rejected: a bar stamped after the clock means the clocks disagree).
    - order notional: ``|qty| * price <= max_order_notional`` (for every order, reducing or not).
    - position notional: ``|(position + qty) * price| <= max_position_notional``.
    - gross exposure: ``sum_i |position_i * price_i| / equity <= max_gross_exposure`` after the
      order.
    - net exposure: ``|sum_i position_i * price_i| / equity <= max_net_exposure`` after the order.
    - drawdown kill switch: when ``1 - equity / peak_equity >= max_drawdown``, orders that increase
      ``|position|`` of their symbol (including flips to a larger opposite position) are rejected;
      orders that only reduce it pass this check.

    The position and exposure checks only reject an order that breaches the limit *and* makes the
    measure worse than before the order, so an order that reduces risk is never blocked because the
    book already sits over a limit (e.g. after a price move). Equity is taken as unchanged by the
    orders (a trade at the mark moves value between cash and positions). Orders are valued at
    ``prices`` (the latest marks), not at ``Order.ref_price``, so that the order and the book use
    the same mark. Zero-quantity orders are approved when their price and bar age are valid.
    Comparisons allow a relative slack of 1e-12, so a value equal to its limit up to float rounding
    passes and a drawdown equal to ``max_drawdown`` up to rounding trips the kill switch. A
    reason prints a breaching value with as many digits as it takes to differ from its limit
    (``"order notional AAA 100,000.5 > max 100,000.0"``, not ``"100,000 > max 100,000"``).

    Parameters
    ----------
    orders : iterable of workbench.risk.Order
        Orders to check, in the sequence the broker would receive them.
    positions : Mapping[str, float]
        Current positions, signed shares per symbol (missing symbols are flat).
    prices : Mapping[str, float]
        Latest mark price per symbol, currency per share. Every symbol held or traded needs one;
        a held symbol without a valid price makes the exposure checks fail closed (orders that
        increase ``|position|`` are rejected).
    equity : float
        Current account equity (cash + position value), currency. Must be finite; when it is
        <= 0 every order that increases gross or net exposure is rejected.
    peak_equity : float
        Highest equity seen so far, currency, > 0 (``max(peak_equity, equity)`` is used).
    bar_age_s : Mapping[str, float]
        Seconds since the last bar of each symbol.
    limits : RiskLimits
        Limits to apply.

    Returns
    -------
    list of Verdict
        One verdict per order, same order as the input.

    Raises
    ------
    TypeError
        If ``limits`` is not a :class:`RiskLimits`, an order is not an ``Order`` or a mapping
        argument is not a mapping.
    ValueError
        If ``equity`` or ``peak_equity`` is not finite, ``peak_equity <= 0``, or a position is not a
        finite number.
    """
    if not isinstance(limits, RiskLimits):
        raise TypeError(f"limits must be a RiskLimits, got {type(limits).__name__}")
    equity = float(equity)
    peak_equity = float(peak_equity)
    if not math.isfinite(equity):
        raise ValueError(f"equity must be finite, got {equity!r}")
    if not (math.isfinite(peak_equity) and peak_equity > 0.0):
        raise ValueError(f"peak_equity must be finite and > 0, got {peak_equity!r}")
    book = _finite_map("positions", positions)
    for sym, q in book.items():
        if not math.isfinite(q):
            raise ValueError(f"positions[{sym!r}] must be finite, got {q!r}")
    marks = _finite_map("prices", prices)
    ages = _finite_map("bar_age_s", bar_age_s)

    peak = max(peak_equity, equity)
    drawdown = 1.0 - equity / peak
    killed = drawdown >= limits.max_drawdown * (1.0 - _RTOL)

    # running gross / net notional of the hypothetical book (O(N) once, O(1) per order)
    unpriced = sorted(s for s, q in book.items() if q != 0.0 and not _valid_price(marks.get(s)))
    gross = sum(abs(q * marks[s]) for s, q in book.items() if q != 0.0 and s not in unpriced)
    net = sum(q * marks[s] for s, q in book.items() if q != 0.0 and s not in unpriced)

    verdicts: list[Verdict] = []
    for i, order in enumerate(orders):
        if not isinstance(order, Order):
            raise TypeError(f"orders[{i}] must be an Order, got {type(order).__name__}")
        sym = order.symbol
        reasons: list[str] = []
        qty = float(order.qty)
        pos = book.get(sym, 0.0)
        price = marks.get(sym)

        if not math.isfinite(qty):
            reasons.append(f"order quantity for {sym} is not finite ({qty!r})")
        if price is None:
            reasons.append(f"no price for {sym}")
        elif not _valid_price(price):
            reasons.append(f"price for {sym} is invalid ({price!r}); it must be finite and > 0")

        age = ages.get(sym)
        if age is None or math.isnan(age):
            reasons.append(f"no bar age for {sym}: data freshness unknown")
        elif age < 0.0:
            reasons.append(f"bar age for {sym} is negative ({age:,.1f} s): the bar is stamped "
                           "after the clock that measures its age; data freshness unknown")
        elif _over(age, limits.stale_after_s):
            a, b = _breach(_secs, age, limits.stale_after_s, 1)
            reasons.append(f"stale data for {sym}: last bar {a} s old > max {b} s")

        new_pos = pos + qty if math.isfinite(qty) else pos
        increases = abs(new_pos) > abs(pos)
        if killed and increases:
            reasons.append(
                f"drawdown kill switch: {_pct(drawdown)} >= {_pct(limits.max_drawdown)}"
            )

        if price is not None and math.isfinite(qty) and _valid_price(price):
            order_notional = abs(qty) * price
            if _over(order_notional, limits.max_order_notional):
                a, b = _breach(_money, order_notional, limits.max_order_notional, 0)
                reasons.append(f"order notional {sym} {a} > max {b}")
            old_notional = pos * price
            new_notional = new_pos * price
            if (
                _over(abs(new_notional), limits.max_position_notional)
                and abs(new_notional) > abs(old_notional)
            ):
                a, b = _breach(_money, abs(new_notional), limits.max_position_notional, 0)
                reasons.append(f"position notional {sym} {a} > max {b}")
            if unpriced and increases:
                reasons.append(f"cannot value the book: no valid price for {', '.join(unpriced)}")
            new_gross = gross - abs(old_notional) + abs(new_notional)
            new_net = net - old_notional + new_notional
            gross_worse = new_gross > gross
            net_worse = abs(new_net) > abs(net)
            if equity <= 0.0:
                if gross_worse or net_worse:
                    reasons.append(
                        f"equity {_money(equity)} <= 0: exposure undefined, only reducing orders "
                        "are allowed"
                    )
            else:
                g, n = new_gross / equity, abs(new_net) / equity
                if _over(g, limits.max_gross_exposure) and gross_worse:
                    a, b = _breach(_pct, g, limits.max_gross_exposure, 1)
                    reasons.append(f"gross exposure {a} of equity > max {b}")
                if _over(n, limits.max_net_exposure) and net_worse:
                    a, b = _breach(_pct, n, limits.max_net_exposure, 1)
                    reasons.append(f"net exposure {a} of equity > max {b}")

        if reasons:
            verdicts.append(Verdict(order, False, tuple(reasons)))
            continue
        # approved implies a valid price and quantity, so the new book values are defined
        verdicts.append(Verdict(order, True, ()))
        gross, net = new_gross, new_net
        book[sym] = new_pos
    return verdicts
