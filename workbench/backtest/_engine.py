"""vectorbt adapter: run a target-weight panel through ``vbt.Portfolio.from_orders``.

vectorbt is imported lazily inside :func:`run_backtest` so that ``import workbench.backtest`` stays
light.

Leverage (checked empirically on vectorbt 1.2.0 with ``direction="both"``, ``cash_sharing=True``,
``call_seq="auto"``): vectorbt never lets cash go negative, so *long* notional is limited to the
cash available = equity + proceeds of short sales. Consequently a row fills exactly as long as its
*net* weight ``sum_j w_{t,j} <= 1`` (shorts are unlimited): ``(1.5, -1.5)`` or ``(-3, 0)`` fill
exactly, while ``(1.5, 0)`` is silently cut to ``(1.0, 0)`` and ``(1.2, -0.1)`` to ``(1.1, -0.1)``.
:func:`run_backtest` therefore rejects any row with net weight above 1 instead of returning a
silently different portfolio (and warns where a position held through a gap in its asset's history,
which no order can touch, takes the book above 1), and optionally also caps gross leverage
(``max_gross``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._returns import turnover as _turnover
from ._validation import check_nonnegative, check_positive, close_frame

if TYPE_CHECKING:
    from workbench.data import Bars

__all__ = ["BacktestResult", "run_backtest"]

_NET_TOL = 1e-9


@dataclass
class BacktestResult:
    """Result of :func:`run_backtest`.

    Attributes
    ----------
    portfolio : vectorbt.Portfolio
        The grouped (one cash pool) vectorbt portfolio, for its own plots and stats.
    returns : pandas.Series, shape (T,)
        Daily simple returns of the portfolio value; the entry at ``t`` is the return realised over
        ``t-1 -> t`` (the first entry is the return of day 0, i.e. minus the fees paid at the first
        rebalance).
    equity : pandas.Series, shape (T,)
        Portfolio value in currency units (starts from ``init_cash``).
    weights : pandas.DataFrame, shape (T, N)
        Target weights actually sent (NaN where the asset had no bar, 0 for NaN input where it had
        one, 0 at an asset's last bar when its history ends before the panel's last row).
    turnover : float
        Annualised turnover of ``weights`` (see :func:`workbench.backtest.turnover`;
        ``periods_per_year`` of :func:`run_backtest`), fraction of equity per year; a cell without
        a bar holds the asset's previous weight (no order is sent there), so a gap in an asset's
        history is not counted as trading. It measures the *target* weights: the rebalancing
        that brings drifted holdings back to an unchanged target is not in it (on the bundled
        daily data the notional vectorbt actually trades is about 1-6 % higher; the fees are on
        the actual trades).
    fees_paid : float
        Total fees in currency units (fees only; slippage is in the fill prices).
    """

    portfolio: Any
    returns: pd.Series
    equity: pd.Series
    weights: pd.DataFrame
    turnover: float
    fees_paid: float


def run_backtest(
    close: pd.DataFrame | Bars,
    weights: pd.DataFrame | np.ndarray,
    fees_bps: float = 0.0,
    slippage_bps: float = 0.0,
    init_cash: float = 1_000_000,
    freq: str = "1D",
    max_gross: float | None = None,
    periods_per_year: int = 252,
) -> BacktestResult:
    """Backtest a panel of target weights with vectorbt.

    Orders are placed at the close of ``t`` to bring each asset to ``w_t`` of portfolio value
    (``size_type="targetpercent"``, ``direction="both"``, one shared cash pool, sells before buys
    via ``call_seq="auto"``) and held over ``t -> t+1``. The weights must be decided with
    information up to ``t``; the return realised at ``t+1`` is then ``sum_j w_{t,j} r_{t+1,j}``
    (with zero fees) — the same ``R_t = w_t r_{t+1}`` timing as
    :func:`workbench.backtest.strategy_returns`, shifted by one row because vectorbt stores a return
    at the bar where it is realised. There is no intraday drift since orders execute at the same
    close that values the book.

    An asset whose history ends before the panel's last row (a delisting, or data that stops) is
    sold at its last close, whatever its weight there: no later price exists to exit or value it.
    Through a gap inside an asset's history no order can be sent, so the position is held and its
    return over the gap is realised at the next bar. The net-weight check below covers the
    weights sent; a position held through a gap is not among them, so a row whose held gap
    positions take the book's net weight above 1 cannot be filled as asked either: it gives a
    ``RuntimeWarning`` (not an error) naming the row and the assets in their gap, and vectorbt
    fills the other assets' buys below their targets there. :func:`portfolio_weights` spreads the
    risk budget over the assets *with a bar* (``n_t``), so on a union calendar where one market
    is closed (a holiday, a weekend for 24/7 assets) the open assets get the whole budget while
    the closed one is still held.

    Parameters
    ----------
    close : pandas.DataFrame or Bars, shape (T, N)
        Close prices with a (UTC) DatetimeIndex; NaN means no bar (e.g. before listing). A
        :class:`~workbench.data.Bars` panel gives its ``close`` field (``bars.to_wide("close")``).
    weights : pandas.DataFrame or numpy.ndarray, shape (T, N)
        Target fractions of equity decided at close ``t``: a DataFrame with the same index and
        columns as ``close``, or an array in ``close``'s row and column order.
        Where ``close`` is NaN the weight must be NaN or 0 (no order is sent); NaN where a bar
        exists means flat (0), matching :func:`workbench.backtest.strategy_returns`.
    fees_bps : float, default 0.0
        Proportional fee in basis points of traded notional, >= 0.
    slippage_bps : float, default 0.0
        Proportional slippage in basis points applied to fill prices, >= 0.
    init_cash : float, default 1_000_000
        Starting cash, > 0.
    freq : str, default "1D"
        Bar frequency passed to vectorbt (used for its own annualised stats only).
    max_gross : float, optional
        If given, reject any row with ``sum_j |w_{t,j}| > max_gross``.
    periods_per_year : int, default 252
        Bars per year used to annualise :attr:`BacktestResult.turnover` (252 for daily bars;
        e.g. ``252 * 24`` for round-the-clock hourly bars on trading days), > 0.

    Returns
    -------
    BacktestResult

    Raises
    ------
    ValueError
        If ``close`` is neither a DataFrame nor a Bars, ``weights`` is not a DataFrame aligned
        with ``close`` or an array of its shape, a weight is non-zero where ``close`` is NaN, a
        weight is infinite, a row's net weight ``sum_j w_{t,j}`` exceeds 1 (vectorbt cannot
        borrow cash for longs; cap with ``portfolio_weights(..., max_gross=1.0)``), a row's
        gross weight exceeds
        ``max_gross``, or a cost/cash parameter is out of range.

    Notes
    -----
    With fees, a 100 % long row is filled slightly below 100 % (vectorbt keeps cash for the fee).
    Source: vectorbt 1.2 ``Portfolio.from_orders``.
    """
    close = close_frame(close)
    if isinstance(weights, np.ndarray):
        if weights.shape != close.shape:
            raise ValueError(f"weights has shape {weights.shape} but close has shape "
                             f"{close.shape}")
        weights = pd.DataFrame(weights, index=close.index, columns=close.columns)
    if not isinstance(weights, pd.DataFrame):
        raise ValueError("weights must be a pandas.DataFrame or a numpy array, got "
                         f"{type(weights).__name__}")
    if weights.shape != close.shape:
        raise ValueError(f"weights has shape {weights.shape} but close has shape {close.shape}")
    if not weights.index.equals(close.index) or not weights.columns.equals(close.columns):
        raise ValueError("weights must have the same index and columns as close")
    check_nonnegative(fees_bps, "fees_bps")
    check_nonnegative(slippage_bps, "slippage_bps")
    check_positive(init_cash, "init_cash")
    check_positive(max_gross, "max_gross", allow_none=True)
    check_positive(periods_per_year, "periods_per_year")

    c = close.to_numpy(dtype=np.float64)
    w = weights.to_numpy(dtype=np.float64, copy=True)
    if np.isinf(w).any():
        t, j = np.argwhere(np.isinf(w))[0]
        raise ValueError(f"weights must be finite; got {w[t, j]!r} at {weights.index[t]}, "
                         f"column {weights.columns[j]!r}")
    no_bar = ~np.isfinite(c)
    bad = no_bar & np.isfinite(w) & (w != 0)
    if bad.any():
        t, j = np.argwhere(bad)[0]
        raise ValueError(
            f"weights must be 0 or NaN where close is NaN; got {w[t, j]!r} at {weights.index[t]}, "
            f"column {weights.columns[j]!r}"
        )
    w[~no_bar & np.isnan(w)] = 0.0
    w[no_bar] = np.nan
    # An asset whose history ends before the panel's last row (delisted, data ends) is sold at
    # its last close: no later price exists to exit or value it, and vectorbt would otherwise
    # hold it at its stale last price and keep its cash from the other assets.
    T = w.shape[0]
    has_bar = ~no_bar
    last = T - 1 - np.argmax(has_bar[::-1], axis=0)  # last row with a bar, per column
    ended = np.flatnonzero(has_bar.any(axis=0) & (last < T - 1))
    w[last[ended], ended] = 0.0
    w0 = np.where(np.isnan(w), 0.0, w)
    net = w0.sum(axis=1)
    if (net > 1.0 + _NET_TOL).any():
        t = int(np.argmax(net > 1.0 + _NET_TOL))
        raise ValueError(
            f"weights row {weights.index[t]} has net weight {net[t]:.6g} > 1: vectorbt cannot "
            "borrow cash for long positions, so the order would be silently cut. Cap leverage "
            "first, e.g. portfolio_weights(..., max_gross=1.0)"
        )
    # Through a gap no order is sent: the book keeps the position (about its last weight, which
    # then drifts) beside the weights sent to the other assets. vectorbt cannot fund a net long
    # book above 1, so it would fill the other assets' buys short of their targets.
    book_net = np.nan_to_num(pd.DataFrame(w).ffill().to_numpy(), nan=0.0).sum(axis=1)
    if (book_net > 1.0 + _NET_TOL).any():
        t = int(np.argmax(book_net > 1.0 + _NET_TOL))
        gap = [str(weights.columns[j]) for j in np.flatnonzero(no_bar[t] & (w0[t] == 0.0))
               if has_bar[:t, j].any() and t < last[j]]
        warnings.warn(
            f"weights row {weights.index[t]}: with the position held through the gap in "
            f"{', '.join(gap)} (no bar, no order) the book's net weight is about "
            f"{book_net[t]:.6g} > 1; vectorbt cannot borrow cash for longs, so the other "
            "assets' buys on such rows are filled below their targets",
            RuntimeWarning,
            stacklevel=2,
        )
    if max_gross is not None:
        gross = np.abs(w0).sum(axis=1)
        if (gross > max_gross + _NET_TOL).any():
            t = int(np.argmax(gross > max_gross + _NET_TOL))
            raise ValueError(
                f"weights row {weights.index[t]} has gross weight {gross[t]:.6g} > "
                f"max_gross={max_gross!r}; cap it with "
                f"portfolio_weights(..., max_gross={max_gross!r})"
            )

    import vectorbt as vbt  # lazy: heavy import

    sent = pd.DataFrame(w, index=weights.index, columns=weights.columns)
    pf = vbt.Portfolio.from_orders(
        close,
        size=sent,
        size_type="targetpercent",
        direction="both",
        fees=fees_bps * 1e-4,
        slippage=slippage_bps * 1e-4,
        init_cash=init_cash,
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        freq=freq,
    )
    returns = pd.Series(np.asarray(pf.returns(), dtype=np.float64), index=close.index,
                        name="returns")
    equity = pd.Series(np.asarray(pf.value(), dtype=np.float64), index=close.index, name="equity")
    fees_paid = float(np.nansum(np.asarray(pf.orders.fees.values, dtype=np.float64)))
    return BacktestResult(
        portfolio=pf,
        returns=returns,
        equity=equity,
        weights=sent,
        # where an asset has no bar no order is sent: the book holds its last weight
        turnover=_turnover(sent.ffill(), periods_per_year=periods_per_year),
        fees_paid=fees_paid,
    )
