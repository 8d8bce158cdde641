"""Differentiable losses for position-output models (torch).

All losses take model positions ``X`` in [-1, 1] and return a scalar to minimise.
Shapes: ``(B, L)`` for B sequences of L time steps (each sequence is one asset), or
any shape as long as all inputs broadcast; ``mask`` marks the (sequence, time) pairs
that count.
"""

from __future__ import annotations

import math

import torch

__all__ = ["sharpe_loss", "mse_loss", "binary_loss", "LOSSES", "captured_returns"]


def captured_returns(
    positions: torch.Tensor,
    next_returns: torch.Tensor,
    sigma: torch.Tensor,
    *,
    target_vol: float = 0.15,
    cost_bps: float = 0.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Vol-scaled strategy returns with an optional turnover cost.

    ``R_t = X_t * (sigma_tgt / sigma_t) * r_{t+1}`` and, when ``cost_bps > 0``,
    ``R_t -= c * sigma_tgt * |X_t / sigma_t - X_{t-1} / sigma_{t-1}|`` with
    ``c = cost_bps * 1e-4`` (DESIGN.md section 5; Lim, Zohren & Roberts 2019, eq. 13).

    Parameters
    ----------
    positions : torch.Tensor, shape (B, L)
        Positions ``X_t`` in [-1, 1]; the time axis is the last axis.
    next_returns : torch.Tensor, shape (B, L)
        Next-period simple returns ``r_{t+1}`` (not annualised).
    sigma : torch.Tensor, shape (B, L)
        Ex-ante annualised volatility ``sigma_t`` (e.g. 0.2 for 20%).
    target_vol : float, default 0.15
        Annualised volatility target ``sigma_tgt``.
    cost_bps : float, default 0.0
        Cost per unit of vol-scaled turnover, in basis points.
    mask : torch.Tensor of bool, shape (B, L), optional
        Valid pairs. An invalid pair holds no new position: its own captured return is
        0 and, in the turnover term, ``X_{t-1} / sigma_{t-1}`` is the value at the latest
        valid pair before t (0 before the first), so a gap in an asset's history (no
        bar, no trade) costs the change across it, as
        :func:`workbench.backtest.strategy_returns` charges it. Returns and vol of
        invalid pairs are never read, so they may be NaN or inf (values and gradients
        stay finite).

    Returns
    -------
    torch.Tensor, shape (B, L)
        Captured returns (simple, per period).
    """
    if mask is not None:
        # Masked-out pairs may hold NaN/inf returns or vol (no bar, warm-up): replace them
        # before any arithmetic, or 0 * NaN would poison the gradient of the positions.
        sigma = torch.where(mask, sigma, torch.ones_like(sigma))
        next_returns = torch.where(mask, next_returns, torch.zeros_like(next_returns))
    scaled = positions * (target_vol / sigma)
    if mask is not None:
        scaled = torch.where(mask, scaled, torch.zeros_like(scaled))
    r = scaled * next_returns
    if cost_bps:
        c = cost_bps * 1e-4
        x_over_sigma = scaled / target_vol
        held = x_over_sigma
        if mask is not None:  # the book through invalid pairs: the latest valid value
            steps = torch.arange(mask.shape[-1], device=mask.device).expand_as(mask)
            last = torch.where(mask, steps, torch.full_like(steps, -1)).cummax(dim=-1).values
            held = torch.where(last >= 0, x_over_sigma.gather(-1, last.clamp(min=0)),
                               torch.zeros_like(x_over_sigma))
        prev = torch.nn.functional.pad(held[..., :-1], (1, 0))
        r = r - c * target_vol * (x_over_sigma - prev).abs()
    return r


def sharpe_loss(
    positions: torch.Tensor,
    next_returns: torch.Tensor,
    sigma: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    target_vol: float = 0.15,
    cost_bps: float = 0.0,
    periods_per_year: int = 252,
    eps: float = 1e-9,
) -> torch.Tensor:
    """Negative annualised Sharpe ratio over all (asset, time) pairs of a batch.

    ``L = -sqrt(252) * mean(R) / std(R)`` with ``R`` from :func:`captured_returns`
    (Lim, Zohren & Roberts 2019, "Enhancing Time Series Momentum Strategies Using Deep
    Neural Networks", eq. 12). ``std`` is the population standard deviation over the
    valid pairs.

    Parameters
    ----------
    positions, next_returns, sigma : torch.Tensor, shape (B, L)
        See :func:`captured_returns`.
    mask : torch.Tensor of bool, shape (B, L), optional
        Pairs that enter the mean and std. All pairs when omitted.
    target_vol : float, default 0.15
        Annualised vol target.
    cost_bps : float, default 0.0
        Turnover regulariser in basis points (0 disables it).
    periods_per_year : int, default 252
        Annualisation factor.
    eps : float, default 1e-9
        Added to the std to avoid division by zero.

    Returns
    -------
    torch.Tensor, shape ()
        The loss (lower is better).

    Raises
    ------
    ValueError
        If the mask selects fewer than two pairs.
    """
    r = captured_returns(
        positions, next_returns, sigma, target_vol=target_vol, cost_bps=cost_bps, mask=mask
    )
    if mask is not None:
        r = r[mask]
    r = r.reshape(-1)
    if r.numel() < 2:
        raise ValueError(f"sharpe_loss needs at least 2 valid pairs, got {r.numel()}")
    mean = r.mean()
    std = torch.sqrt(((r - mean) ** 2).mean() + eps**2)
    return -math.sqrt(periods_per_year) * mean / std


def mse_loss(
    positions: torch.Tensor,
    next_returns: torch.Tensor,
    sigma: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    target_vol: float = 0.15,
    cost_bps: float = 0.0,
    periods_per_year: int = 252,
) -> torch.Tensor:
    """Mean squared error between positions and vol-scaled next returns.

    The regression target is ``r_{t+1} / sigma_t_daily`` (next return in units of the
    daily ex-ante vol), the MSE baseline of Lim et al. (2019). ``cost_bps`` is ignored.

    Parameters
    ----------
    positions, next_returns, sigma : torch.Tensor, shape (B, L)
        Positions, next simple returns and annualised ex-ante vol.
    mask : torch.Tensor of bool, shape (B, L), optional
        Pairs that count; the others' returns and vol may be NaN or inf.
    target_vol, cost_bps : float
        Accepted for a uniform signature; unused.
    periods_per_year : int, default 252
        Used to de-annualise ``sigma``.

    Returns
    -------
    torch.Tensor, shape ()
        The loss.
    """
    if mask is not None:  # masked-out pairs may hold NaN/inf; keep them out of the graph
        sigma = torch.where(mask, sigma, torch.ones_like(sigma))
        next_returns = torch.where(mask, next_returns, torch.zeros_like(next_returns))
    target = next_returns / (sigma / math.sqrt(periods_per_year))
    err = (positions - target) ** 2
    return err[mask].mean() if mask is not None else err.mean()


def binary_loss(
    positions: torch.Tensor,
    next_returns: torch.Tensor,
    sigma: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    target_vol: float = 0.15,
    cost_bps: float = 0.0,
    periods_per_year: int = 252,
) -> torch.Tensor:
    """Binary cross-entropy on the direction of the next return.

    The position ``X`` in [-1, 1] is read as ``P(up) = (X + 1) / 2``; the label is
    ``1[r_{t+1} > 0]`` (the classification baseline of Lim et al. 2019).

    Parameters
    ----------
    positions, next_returns, sigma : torch.Tensor, shape (B, L)
        Positions, next simple returns and annualised ex-ante vol (unused).
    mask : torch.Tensor of bool, shape (B, L), optional
        Pairs that count.
    target_vol, cost_bps : float
        Accepted for a uniform signature; unused.
    periods_per_year : int
        Unused.

    Returns
    -------
    torch.Tensor, shape ()
        The loss.
    """
    p = ((positions + 1.0) / 2.0).clamp(1e-6, 1 - 1e-6)
    y = (next_returns > 0).to(p.dtype)
    bce = torch.nn.functional.binary_cross_entropy(p, y, reduction="none")
    return bce[mask].mean() if mask is not None else bce.mean()


LOSSES = {"sharpe": sharpe_loss, "mse": mse_loss, "binary": binary_loss}
