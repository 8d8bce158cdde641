"""Deep momentum network: an LSTM that outputs positions, trained on a Sharpe loss."""

from __future__ import annotations

import torch
from torch import nn

from workbench.models._sequence import (
    SequenceModel,
    _is_int,
    check_param,
    pairwise_sharpe,
    resolve_device,
)

__all__ = ["DeepMomentumLSTM", "LSTMNetwork", "resolve_device", "pairwise_sharpe"]


class LSTMNetwork(nn.Module):
    """LSTM -> dropout -> linear -> tanh, one position per time step.

    Parameters
    ----------
    n_features : int
        Input features F.
    hidden_size : int
        LSTM hidden units.
    dropout : float
        Dropout on the LSTM outputs (0 <= dropout < 1).
    num_layers : int, default 1
        Stacked LSTM layers.

    Notes
    -----
    Input ``(B, L, F)`` -> output positions ``(B, L)`` in [-1, 1]. The output at step
    t depends only on inputs at steps <= t (unidirectional recurrence).
    """

    def __init__(self, n_features: int, hidden_size: int, dropout: float, num_layers: int = 1):
        super().__init__()
        self.lstm = nn.LSTM(
            n_features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h, _ = self.lstm(x)
        return torch.tanh(self.head(self.dropout(h))).squeeze(-1)

    def forward_last(self, x: torch.Tensor) -> torch.Tensor:
        """Last step's position only, (B, L, F) -> (B,): the head runs once, not L times."""
        _, (h, _) = self.lstm(x)
        return torch.tanh(self.head(self.dropout(h[-1]))).squeeze(-1)


class DeepMomentumLSTM(SequenceModel):
    """Deep momentum network (LSTM) trained end to end on the Sharpe ratio.

    The estimator of Lim, Zohren & Roberts (2019), "Enhancing Time Series Momentum
    Strategies Using Deep Neural Networks": an LSTM reads each asset's feature sequence
    (normalised returns, MACD signals) and emits a position ``X_t`` in [-1, 1] that is
    vol-scaled to ``sigma_tgt / sigma_t``; the loss is the negative annualised Sharpe
    ratio of the captured returns over all (asset, time) pairs of a batch, optionally
    net of a turnover cost (DESIGN.md section 5). Windows, training and prediction are
    those of :class:`~workbench.models.SequenceModel`.

    Parameters
    ----------
    hidden_size : int, default 32
        LSTM hidden units (literature range 5-160).
    num_layers : int, default 1
        Stacked LSTM layers.
    dropout, seq_len, burn_in, batch_size, lr, max_grad_norm, epochs, patience, loss, \
cost_bps, target_vol, seed, device, progress
        See :class:`~workbench.models.SequenceModel`.

    Attributes
    ----------
    network_ : LSTMNetwork
        Fitted network (best validation epoch), on CPU.
    history_, best_epoch_, best_valid_sharpe_, n_features_in_, feature_names_in_, \
training_window_, training_dates_
        See :class:`~workbench.models.SequenceModel`.
    """

    def __init__(
        self,
        hidden_size: int = 32,
        num_layers: int = 1,
        dropout: float = 0.3,
        seq_len: int = 63,
        burn_in: int = 63,
        batch_size: int = 64,
        lr: float = 1e-3,
        max_grad_norm: float = 1.0,
        epochs: int = 50,
        patience: int = 10,
        loss: str = "sharpe",
        cost_bps: float = 0.0,
        target_vol: float = 0.15,
        seed: int = 0,
        device: str = "auto",
        progress: bool = True,
    ):
        super().__init__(dropout=dropout, seq_len=seq_len, burn_in=burn_in,
                         batch_size=batch_size, lr=lr, max_grad_norm=max_grad_norm,
                         epochs=epochs, patience=patience, loss=loss, cost_bps=cost_bps,
                         target_vol=target_vol, seed=seed, device=device, progress=progress)
        self.hidden_size = hidden_size
        self.num_layers = num_layers

    def _validate_extra(self) -> None:
        check_param("hidden_size", self.hidden_size, _is_int(self.hidden_size, 1),
                    "an int >= 1")
        check_param("num_layers", self.num_layers, _is_int(self.num_layers, 1), "an int >= 1")

    def _build_network(self, n_features: int) -> LSTMNetwork:
        return LSTMNetwork(n_features, int(self.hidden_size), float(self.dropout),
                           int(self.num_layers))
