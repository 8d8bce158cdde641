"""Risk measures: historical, parametric and Monte Carlo VaR/CVaR, drawdowns, time under water.

VaR and CVaR are positive numbers meaning a loss (fraction of equity per period) of simple returns.
"""

from ._measures import (
    cvar_historical,
    cvar_monte_carlo,
    cvar_parametric,
    drawdown_series,
    max_drawdown,
    max_time_under_water,
    risk_table,
    time_under_water,
    var_historical,
    var_monte_carlo,
    var_parametric,
)
from ._orders import Fill, Order
from ._pretrade import RiskLimits, Verdict, check_orders
from ._state import LatencyTracker, RiskMonitor, RiskState

__all__ = [
    "Fill",
    "LatencyTracker",
    "Order",
    "RiskLimits",
    "RiskMonitor",
    "RiskState",
    "Verdict",
    "check_orders",
    "cvar_historical",
    "cvar_monte_carlo",
    "cvar_parametric",
    "drawdown_series",
    "max_drawdown",
    "max_time_under_water",
    "risk_table",
    "time_under_water",
    "var_historical",
    "var_monte_carlo",
    "var_parametric",
]
