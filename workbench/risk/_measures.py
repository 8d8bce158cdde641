"""Value at Risk, expected shortfall, drawdowns and time under water (DESIGN section 6).

Sign convention: VaR and CVaR are reported as *losses*, i.e. positive numbers mean a loss of that
fraction of equity over one period (a 95 % VaR of 0.02 = "on 5 % of days we lose at least 2 %").
They are computed from per-period simple returns ``r`` (NaN periods are dropped) at confidence
``level`` (e.g. 0.95); ``alpha = 1 - level`` is the tail probability.

Sources
-------
Jorion, P. (2007), "Value at Risk", 3rd ed., ch. 5 (historical and parametric VaR).
Acerbi, C. and Tasche, D. (2002), "On the coherence of expected shortfall", J. Banking & Finance 26.
Favre, L. and Galeano, J.-A. (2002), "Mean-modified value-at-risk optimization with hedge funds",
J. Alternative Investments 5(2) (Cornish-Fisher VaR).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import integrate, stats

__all__ = [
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

_METHODS = ("gaussian", "cornish_fisher")


def _float_1d(returns: np.ndarray | pd.Series, name: str = "returns") -> np.ndarray:
    """``returns`` as a float64 (T,) array; ValueError if not numeric, not 1-D or infinite."""
    try:
        r = np.asarray(returns, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric (simple returns), got "
                         f"{getattr(returns, 'dtype', type(returns).__name__)}: {exc}") from None
    if r.ndim != 1:
        raise ValueError(f"{name} must have shape (T,), got shape {r.shape}")
    if np.isinf(r).any():
        raise ValueError(f"{name} must not contain infinite values")
    return r


def _returns(returns: np.ndarray | pd.Series, name: str = "returns") -> np.ndarray:
    r = _float_1d(returns, name)
    r = r[~np.isnan(r)]
    if r.size == 0:
        raise ValueError(f"{name} is empty or all-NaN")
    return r


def _check_level(level: float) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.number)):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if not (0.0 < float(level) < 1.0):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return float(level)


def _moments(r: np.ndarray) -> tuple[float, float]:
    if r.size < 2:
        raise ValueError(f"returns needs at least 2 non-NaN values, got {r.size}")
    return float(r.mean()), float(r.std(ddof=1))


def _shape(r: np.ndarray) -> tuple[float, float]:
    """Sample skewness and excess kurtosis (``bias=True``); ``(0, 0)`` for a constant sample.

    scipy returns NaN (with a RuntimeWarning) when the values are equal up to rounding; such a
    sample has no shape to correct for, and its standard deviation is 0 up to rounding, so the
    Cornish-Fisher term ``sigma * (z_cf - z)`` vanishes either way.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        skew, kurt = float(stats.skew(r)), float(stats.kurtosis(r))
    if not (math.isfinite(skew) and math.isfinite(kurt)):
        return 0.0, 0.0
    return skew, kurt


def _loss(x: float) -> float:
    """``-x`` as a float, with ``-0.0`` written as ``0.0`` (a flat sample has no loss)."""
    return float(-x) + 0.0


def _cf_quantile(z: np.ndarray | float, skew: float, kurt: float) -> np.ndarray | float:
    """Cornish-Fisher adjusted standard quantile (``kurt`` is excess kurtosis)."""
    return (
        z
        + (z**2 - 1.0) * skew / 6.0
        + (z**3 - 3.0 * z) * kurt / 24.0
        - (2.0 * z**3 - 5.0 * z) * skew**2 / 36.0
    )


def _empirical_quantile(r: np.ndarray, alpha: float) -> float:
    """k-th smallest return, ``k = ceil(n * alpha)`` (``inverted_cdf``), robust to ``1 - 0.95``."""
    k = max(1, math.ceil(r.size * alpha - 1e-9))
    return float(np.partition(r, k - 1)[k - 1])


def var_historical(returns: np.ndarray | pd.Series, level: float = 0.95) -> float:
    """Historical (empirical) Value at Risk.

    ``VaR = -q`` where ``q`` is the empirical ``alpha``-quantile of the returns: the smallest return
    ``x`` with ``#(r <= x) / n >= alpha``, i.e. the ``k``-th smallest return with
    ``k = ceil(n * alpha)`` (no interpolation; ``np.quantile(r, alpha, method="inverted_cdf")``,
    except that ``n * alpha`` is rounded within 1e-9 first so ``1 - 0.95`` does not bump ``k``).
    Example: 20 returns at level 0.95 give the worst return, at 0.9 the second worst.

    Parameters
    ----------
    returns : array_like or pandas.Series, shape (T,)
        Per-period simple returns; NaN periods are dropped.
    level : float, default 0.95
        Confidence level in (0, 1).

    Returns
    -------
    float
        VaR as a positive loss fraction (negative if even the tail quantile is a gain).

    Raises
    ------
    ValueError
        If ``level`` is not in (0, 1), or ``returns`` is empty/all-NaN, not 1-D or infinite.
    """
    level = _check_level(level)
    r = _returns(returns)
    return _loss(_empirical_quantile(r, 1.0 - level))


def cvar_historical(returns: np.ndarray | pd.Series, level: float = 0.95) -> float:
    """Historical Conditional VaR (expected shortfall).

    The mean of the worst ``alpha = 1 - level`` fraction of the returns, as a loss: with the
    returns sorted ascending ``r_(1) <= ... <= r_(n)`` and ``m = n * alpha``::

        CVaR = -(sum_{i <= floor(m)} r_(i) + (m - floor(m)) * r_(floor(m) + 1)) / m

    (Acerbi & Tasche 2002, "On the coherence of expected shortfall", the sample estimator of
    expected shortfall; ``m`` is rounded within 1e-9 as in :func:`var_historical`). When ``m``
    is a whole number it is the mean of the ``m`` worst returns; the fractional weight keeps it
    right when returns tie at the quantile (e.g. many flat days), where ``-mean(r[r <= VaR])``
    would average in every tied return. Always ``>= var_historical(returns, level)``; equal to
    the worst loss when ``m <= 1``.

    Parameters
    ----------
    returns : array_like or pandas.Series, shape (T,)
        Per-period simple returns; NaN periods are dropped.
    level : float, default 0.95
        Confidence level in (0, 1).

    Returns
    -------
    float
        CVaR as a positive loss fraction.

    Raises
    ------
    ValueError
        If ``level`` is not in (0, 1), or ``returns`` is empty/all-NaN, not 1-D or infinite.
    """
    level = _check_level(level)
    r = _returns(returns)
    m = r.size * (1.0 - level)
    if m <= 1.0 + 1e-9:  # at most one observation in the tail: the worst return
        return _loss(r.min())
    whole = math.floor(m + 1e-9)
    frac = m - whole if m - whole > 1e-9 else 0.0
    k = whole + (frac > 0.0)  # the k worst returns carry weight (k <= n since level > 0)
    worst = np.sort(np.partition(r, k - 1)[:k])
    total = float(worst[:whole].sum()) + (frac * float(worst[whole]) if frac else 0.0)
    return _loss(total / m)


def var_parametric(
    returns: np.ndarray | pd.Series, level: float = 0.95, method: str = "gaussian"
) -> float:
    """Parametric Value at Risk (Gaussian or Cornish-Fisher).

    ``VaR = -(mu + sigma * z)`` with ``mu`` the sample mean, ``sigma`` the sample standard deviation
    (``ddof=1``) and ``z = Phi^{-1}(alpha)`` (Gaussian), or the Cornish-Fisher adjusted quantile
    ``z_cf = z + (z^2 - 1) S / 6 + (z^3 - 3 z) K / 24 - (2 z^3 - 5 z) S^2 / 36`` with ``S`` the
    sample skewness and ``K`` the sample excess kurtosis (moment estimators, ``scipy.stats.skew`` /
    ``kurtosis`` with ``bias=True``). A constant sample (scipy: no defined skewness) takes
    ``S = K = 0``, so its VaR is ``-mu`` by either method.

    Parameters
    ----------
    returns : array_like or pandas.Series, shape (T,)
        Per-period simple returns; NaN periods are dropped; at least 2 values.
    level : float, default 0.95
        Confidence level in (0, 1).
    method : {"gaussian", "cornish_fisher"}, default "gaussian"
        Distribution model.

    Returns
    -------
    float
        VaR as a positive loss fraction.

    Raises
    ------
    ValueError
        If ``level`` is not in (0, 1), ``method`` is unknown, or ``returns`` has fewer than 2
        non-NaN values.

    Notes
    -----
    Source: Jorion (2007); Favre and Galeano (2002) for Cornish-Fisher.
    """
    level = _check_level(level)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    r = _returns(returns)
    mu, sd = _moments(r)
    z = float(stats.norm.ppf(1.0 - level))
    if method == "cornish_fisher":
        z = float(_cf_quantile(z, *_shape(r)))
    return _loss(mu + sd * z)


def cvar_parametric(
    returns: np.ndarray | pd.Series, level: float = 0.95, method: str = "gaussian"
) -> float:
    """Parametric Conditional VaR (expected shortfall), Gaussian or Cornish-Fisher.

    Gaussian closed form: ``CVaR = -(mu - sigma * phi(z) / alpha)`` with ``z = Phi^{-1}(alpha)``.
    Cornish-Fisher: ``CVaR = -(mu + sigma * (1 / alpha) * int_0^alpha z_cf(Phi^{-1}(u)) du)``, the
    average of the CF-adjusted quantile function over the tail levels ``u in (0, alpha)``, evaluated
    numerically (``scipy.integrate.quad``) after the substitution ``u = Phi(x)``:
    ``int_{-inf}^{z} z_cf(x) phi(x) dx``. With zero skewness and excess kurtosis it equals the
    Gaussian value.

    Parameters
    ----------
    returns : array_like or pandas.Series, shape (T,)
        Per-period simple returns; NaN periods are dropped; at least 2 values.
    level : float, default 0.95
        Confidence level in (0, 1).
    method : {"gaussian", "cornish_fisher"}, default "gaussian"
        Distribution model (moments as in :func:`var_parametric`).

    Returns
    -------
    float
        CVaR as a positive loss fraction.

    Raises
    ------
    ValueError
        If ``level`` is not in (0, 1), ``method`` is unknown, or ``returns`` has fewer than 2
        non-NaN values.
    """
    level = _check_level(level)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    r = _returns(returns)
    mu, sd = _moments(r)
    alpha = 1.0 - level
    z = float(stats.norm.ppf(alpha))
    if method == "gaussian":
        return _loss(mu - sd * stats.norm.pdf(z) / alpha)
    skew, kurt = _shape(r)
    val, _ = integrate.quad(
        lambda x: _cf_quantile(x, skew, kurt) * stats.norm.pdf(x), -np.inf, z, epsabs=1e-13,
        epsrel=1e-11, limit=200,
    )
    return _loss(mu + sd * val / alpha)


def _simulate(
    r: np.ndarray, n_sims: int, method: str, seed: int | None
) -> np.ndarray:
    if isinstance(n_sims, bool) or not isinstance(n_sims, (int, np.integer)) or n_sims < 100:
        raise ValueError(f"n_sims must be an integer >= 100, got {n_sims!r}")
    rng = np.random.default_rng(seed)
    if method == "gaussian":
        mu, sd = _moments(r)
        return rng.normal(mu, sd, size=n_sims)
    if method == "bootstrap":
        return rng.choice(r, size=n_sims, replace=True)
    raise ValueError(f"method must be 'gaussian' or 'bootstrap', got {method!r}")


def var_monte_carlo(
    returns: np.ndarray | pd.Series,
    level: float = 0.95,
    n_sims: int = 100_000,
    method: str = "gaussian",
    seed: int | None = 0,
) -> float:
    """Monte Carlo Value at Risk from simulated one-period returns.

    Draws ``n_sims`` returns from a Gaussian fitted to the sample (``method="gaussian"``) or by
    resampling the sample with replacement (``"bootstrap"``), then applies :func:`var_historical`.

    Parameters
    ----------
    returns : array_like or pandas.Series, shape (T,)
        Per-period simple returns; NaN periods are dropped.
    level : float, default 0.95
        Confidence level in (0, 1).
    n_sims : int, default 100_000
        Number of simulated periods, >= 100.
    method : {"gaussian", "bootstrap"}, default "gaussian"
        Simulation model.
    seed : int or None, default 0
        Seed of ``numpy.random.default_rng`` (deterministic by default).

    Returns
    -------
    float
        VaR as a positive loss fraction.

    Raises
    ------
    ValueError
        If ``level``, ``n_sims`` or ``method`` is invalid, or ``returns`` is empty/all-NaN.
    """
    level = _check_level(level)
    sims = _simulate(_returns(returns), n_sims, method, seed)
    return var_historical(sims, level)


def cvar_monte_carlo(
    returns: np.ndarray | pd.Series,
    level: float = 0.95,
    n_sims: int = 100_000,
    method: str = "gaussian",
    seed: int | None = 0,
) -> float:
    """Monte Carlo Conditional VaR: :func:`cvar_historical` of simulated returns.

    Parameters
    ----------
    returns : array_like or pandas.Series, shape (T,)
        Per-period simple returns; NaN periods are dropped.
    level : float, default 0.95
        Confidence level in (0, 1).
    n_sims : int, default 100_000
        Number of simulated periods, >= 100.
    method : {"gaussian", "bootstrap"}, default "gaussian"
        Simulation model (see :func:`var_monte_carlo`).
    seed : int or None, default 0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    float
        CVaR as a positive loss fraction.

    Raises
    ------
    ValueError
        If ``level``, ``n_sims`` or ``method`` is invalid, or ``returns`` is empty/all-NaN.
    """
    level = _check_level(level)
    sims = _simulate(_returns(returns), n_sims, method, seed)
    return cvar_historical(sims, level)


def _equity(returns: np.ndarray | pd.Series) -> np.ndarray:
    r = _float_1d(returns)
    if r.size == 0 or np.isnan(r).all():
        raise ValueError("returns is empty or all-NaN")
    return np.cumprod(np.where(np.isnan(r), 1.0, 1.0 + r))


def drawdown_series(returns: np.ndarray | pd.Series) -> np.ndarray:
    """Drawdown of compounded equity from its running peak.

    ``E_t = prod_{s<=t} (1 + r_s)`` (NaN returns count as 0), ``P_t = max(1, max_{s<=t} E_s)``
    (the starting equity 1 is a peak, so a loss in the first period is a drawdown) and
    ``DD_t = E_t / P_t - 1``.

    Parameters
    ----------
    returns : array_like or pandas.Series, shape (T,)
        Per-period simple returns.

    Returns
    -------
    numpy.ndarray, shape (T,)
        Drawdown as a fraction, ``<= 0`` (``-0.2`` = 20 % below the peak).

    Raises
    ------
    ValueError
        If ``returns`` is not 1-D, empty, all-NaN or contains ``inf``.

    Notes
    -----
    Unlike vectorbt's ``max_drawdown``, the initial equity counts as a peak here (as in
    :func:`workbench.backtest.performance_metrics`); the two differ when the curve starts with a
    loss.
    """
    eq = _equity(returns)
    peak = np.maximum(np.maximum.accumulate(eq), 1.0)
    return eq / peak - 1.0


def max_drawdown(returns: np.ndarray | pd.Series) -> float:
    """Maximum drawdown, ``min_t DD_t`` of :func:`drawdown_series` (a fraction ``<= 0``).

    Parameters
    ----------
    returns : array_like or pandas.Series, shape (T,)
        Per-period simple returns.

    Returns
    -------
    float
        Most negative drawdown, e.g. ``-0.35``.

    Raises
    ------
    ValueError
        If ``returns`` is not 1-D, empty, all-NaN or contains ``inf``.
    """
    return float(drawdown_series(returns).min())


def time_under_water(returns: np.ndarray | pd.Series) -> np.ndarray:
    """Number of bars since the last equity peak.

    ``0`` at bars where equity is at a new (or equal) high, i.e. ``DD_t == 0`` in
    :func:`drawdown_series`; otherwise one more than the previous bar.

    Parameters
    ----------
    returns : array_like or pandas.Series, shape (T,)
        Per-period simple returns.

    Returns
    -------
    numpy.ndarray of int64, shape (T,)
        Bars under water at each ``t``.

    Raises
    ------
    ValueError
        If ``returns`` is not 1-D, empty, all-NaN or contains ``inf``.
    """
    under = drawdown_series(returns) < 0
    out = np.zeros(under.shape[0], dtype=np.int64)
    count = 0
    for t, u in enumerate(under):
        count = count + 1 if u else 0
        out[t] = count
    return out


def max_time_under_water(returns: np.ndarray | pd.Series) -> int:
    """Longest stretch under water in bars (``max`` of :func:`time_under_water`).

    Parameters
    ----------
    returns : array_like or pandas.Series, shape (T,)
        Per-period simple returns.

    Returns
    -------
    int
        Maximum number of consecutive bars below the running peak.

    Raises
    ------
    ValueError
        If ``returns`` is not 1-D, empty, all-NaN or contains ``inf``.
    """
    return int(time_under_water(returns).max())


def _pct(level: float) -> str:
    return f"{level * 100:g}"


def risk_table(
    returns: Mapping[str, np.ndarray | pd.Series] | pd.DataFrame,
    levels: tuple[float, ...] = (0.95, 0.99),
) -> pd.DataFrame:
    """Risk measures of several strategies side by side.

    Parameters
    ----------
    returns : mapping of str to (T,) array_like, or pandas.DataFrame of shape (T, S)
        Per-period simple returns per strategy (DataFrame columns are strategies).
    levels : tuple of float, default (0.95, 0.99)
        Confidence levels in (0, 1).

    Returns
    -------
    pandas.DataFrame
        One row per strategy; for each level ``p`` (formatted like ``95``) the columns
        ``"VaR p% (hist)"``, ``"CVaR p% (hist)"``, ``"VaR p% (gauss)"``, ``"CVaR p% (gauss)"``,
        ``"VaR p% (CF)"`` (positive loss fractions), then ``"max drawdown"`` (fraction <= 0) and
        ``"max time under water (bars)"``.

    Raises
    ------
    ValueError
        If ``returns`` is empty, a level is not in (0, 1), or a series is empty/all-NaN.
    """
    items = (
        [(str(c), returns[c]) for c in returns.columns]
        if isinstance(returns, pd.DataFrame)
        else [(str(k), v) for k, v in returns.items()]
    )
    if not items:
        raise ValueError("returns must contain at least one strategy, got none")
    if len(levels) == 0:
        raise ValueError("levels must contain at least one level, got ()")
    levels = tuple(_check_level(lv) for lv in levels)
    rows = {}
    for name, r in items:
        try:
            row: dict[str, float] = {}
            for lv in levels:
                p = _pct(lv)
                row[f"VaR {p}% (hist)"] = var_historical(r, lv)
                row[f"CVaR {p}% (hist)"] = cvar_historical(r, lv)
                row[f"VaR {p}% (gauss)"] = var_parametric(r, lv, "gaussian")
                row[f"CVaR {p}% (gauss)"] = cvar_parametric(r, lv, "gaussian")
                row[f"VaR {p}% (CF)"] = var_parametric(r, lv, "cornish_fisher")
            row["max drawdown"] = max_drawdown(r)
            row["max time under water (bars)"] = max_time_under_water(r)
        except ValueError as exc:
            raise ValueError(f"strategy {name!r}: {exc}") from exc
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")
