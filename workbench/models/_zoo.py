"""Feed-forward and convolutional torch members: linear, MLP and causal CNN (TCN).

Each member is a :class:`~workbench.models.SequenceModel` (one trainer, windows,
predictions) with its own network mapping ``(B, L, F)`` feature sequences to ``(B, L)``
positions in [-1, 1]. Every network also has ``forward_last`` ``(B, L, F) -> (B,)``, which
computes only what the last step needs (the inference engine's hot path).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from torch.nn import functional as fn

from workbench.models._sequence import SequenceModel, _is_int, check_param

__all__ = ["LinearModel", "LinearNetwork", "MLPModel", "MLPNetwork", "CNNModel", "CNNNetwork"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"elu": nn.ELU, "tanh": nn.Tanh}


class LinearNetwork(nn.Module):
    """Per-step linear map of the step's features followed by tanh (no sequence context).

    Parameters
    ----------
    n_features : int
        Input features F.
    dropout : float
        Dropout on the inputs (0 <= dropout < 1).

    Notes
    -----
    Input ``(B, L, F)`` -> positions ``(B, L)`` in [-1, 1]; the output at step t reads the
    features of step t only (trivially causal).
    """

    def __init__(self, n_features: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(n_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return torch.tanh(self.head(self.dropout(x))).squeeze(-1)

    def forward_last(self, x: torch.Tensor) -> torch.Tensor:
        """Last step's position only, ``(B, L, F) -> (B,)``: reads ``x[:, -1]`` alone."""
        return torch.tanh(self.head(self.dropout(x[:, -1]))).squeeze(-1)


class MLPNetwork(nn.Module):
    """Per-step multilayer perceptron: ``num_layers`` x (linear, activation, dropout), tanh head.

    Parameters
    ----------
    n_features : int
        Input features F.
    hidden_size : int
        Units per hidden layer.
    num_layers : int
        Hidden layers (>= 1).
    dropout : float
        Dropout after each hidden activation.
    activation : {"elu", "tanh"}
        Hidden activation.

    Notes
    -----
    Input ``(B, L, F)`` -> positions ``(B, L)`` in [-1, 1]; the output at step t reads the
    features of step t only.
    """

    def __init__(self, n_features: int, hidden_size: int, num_layers: int, dropout: float,
                 activation: str = "elu"):
        super().__init__()
        layers: list[nn.Module] = []
        d = n_features
        for _ in range(num_layers):
            layers += [nn.Linear(d, hidden_size), _ACTIVATIONS[activation](), nn.Dropout(dropout)]
            d = hidden_size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(d, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return torch.tanh(self.head(self.body(x))).squeeze(-1)

    def forward_last(self, x: torch.Tensor) -> torch.Tensor:
        """Last step's position only, ``(B, L, F) -> (B,)``: the MLP runs on ``x[:, -1]``."""
        return torch.tanh(self.head(self.body(x[:, -1]))).squeeze(-1)


class CNNNetwork(nn.Module):
    """Small temporal convolutional network (TCN) with causal dilated convolutions.

    A per-step linear projection of the F inputs to ``channels``, then ``num_layers``
    residual blocks ``h + dropout(relu(conv_i(h)))`` where ``conv_i`` is a 1-D convolution
    of width ``kernel_size`` and dilation ``2**i`` padded on the left only, then a per-step
    linear head and tanh (Bai, Kolter & Koltun 2018, "An Empirical Evaluation of Generic
    Convolutional and Recurrent Networks for Sequence Modeling", simplified to one
    convolution per block).

    Parameters
    ----------
    n_features : int
        Input features F.
    channels : int
        Channels of every convolution.
    kernel_size : int
        Convolution width (>= 1).
    num_layers : int
        Residual blocks; block i has dilation ``2**i``.
    dropout : float
        Dropout after each block's activation.

    Notes
    -----
    Input ``(B, L, F)`` -> positions ``(B, L)`` in [-1, 1]. The output at step t depends on
    steps ``t - receptive_field + 1 .. t`` only (zero padding before the first step).
    """

    def __init__(self, n_features: int, channels: int, kernel_size: int, num_layers: int,
                 dropout: float):
        super().__init__()
        self.kernel_size = kernel_size
        self.dilations = [2**i for i in range(num_layers)]
        self.proj = nn.Linear(n_features, channels)
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d) for d in self.dilations
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, 1)
        # spans[i]: steps of block i's input that the last output depends on
        spans = [1]
        for d in reversed(self.dilations):
            spans.insert(0, spans[0] + (kernel_size - 1) * d)
        self._spans = spans

    @property
    def receptive_field(self) -> int:
        """Input steps the output at one step depends on: ``1 + (k - 1) * (2**n - 1)``."""
        return self._spans[0]

    def _block(self, i: int, h: torch.Tensor, keep: int, taps: bool = False) -> torch.Tensor:
        """Block i on ``h`` (B, C, l) -> its last ``keep`` steps (B, C, keep).

        ``h`` holds the last ``l`` steps of the block input; when ``l`` falls short of
        ``keep + (k - 1) * d`` it is the whole sequence, so zero padding is exact. With
        ``taps`` the convolution is a gather of the k taps of each kept step and one
        matrix product (cheaper than ``conv1d``'s fixed cost for the few steps
        :meth:`forward_last` keeps).
        """
        conv = cast(nn.Conv1d, self.convs[i])
        d = self.dilations[i]
        reach = (self.kernel_size - 1) * d
        pad = keep + reach - h.shape[-1]
        hp = fn.pad(h, (pad, 0)) if pad > 0 else h
        if taps:
            win = hp[..., hp.shape[-1] - keep - reach :].unfold(-1, reach + 1, 1)[..., ::d]
            bias = cast(torch.Tensor, conv.bias)
            out = torch.einsum("bclk,ock->bol", win, conv.weight) + bias[:, None]
        else:
            out = conv(hp)
        return h[..., -keep:] + self.dropout(torch.relu(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h = self.proj(x).transpose(1, 2)  # (B, C, L)
        L = h.shape[-1]
        for i in range(len(self.convs)):
            h = self._block(i, h, L)
        return torch.tanh(self.head(h.transpose(1, 2))).squeeze(-1)

    def forward_last(self, x: torch.Tensor) -> torch.Tensor:
        """Last step's position only, ``(B, L, F) -> (B,)``.

        Reads the last ``receptive_field`` steps and, block by block, convolves only the
        steps later blocks still need (the last block computes one step).
        """
        h = self.proj(x[:, -self._spans[0]:]).transpose(1, 2)
        for i in range(len(self.convs)):
            h = self._block(i, h, min(h.shape[-1], self._spans[i + 1]), taps=True)
        return torch.tanh(self.head(h[..., -1])).squeeze(-1)


class LinearModel(SequenceModel):
    """Linear benchmark: a per-step linear map of the features to a tanh position.

    The "Linear" member of Lim, Zohren & Roberts (2019), "Enhancing Time Series Momentum
    Strategies Using Deep Neural Networks": ``X_t = tanh(w' u_t + b)`` of the features
    ``u_t`` at t alone, trained end to end on the Sharpe loss (or MSE/binary) through
    :class:`~workbench.models.SequenceModel`.

    Parameters
    ----------
    dropout, seq_len, burn_in, batch_size, lr, max_grad_norm, epochs, patience, loss, \
cost_bps, target_vol, seed, device, progress
        See :class:`~workbench.models.SequenceModel`; ``dropout`` applies to the inputs.

    Attributes
    ----------
    network_ : LinearNetwork
        Fitted network (best validation epoch), on CPU.
    history_, best_epoch_, best_valid_sharpe_, n_features_in_, feature_names_in_, \
training_window_, training_dates_
        See :class:`~workbench.models.SequenceModel`.
    """

    def __init__(
        self,
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

    def _build_network(self, n_features: int) -> LinearNetwork:
        return LinearNetwork(n_features, float(self.dropout))


class MLPModel(SequenceModel):
    """Multilayer-perceptron benchmark: a per-step MLP of the features to a tanh position.

    The "MLP" member of Lim, Zohren & Roberts (2019): hidden layers over the features at t
    alone (no sequence context), dropout, tanh output, trained on the Sharpe loss through
    :class:`~workbench.models.SequenceModel`.

    Parameters
    ----------
    hidden_size : int, default 32
        Units per hidden layer.
    num_layers : int, default 1
        Hidden layers.
    activation : {"elu", "tanh"}, default "elu"
        Hidden activation.
    dropout, seq_len, burn_in, batch_size, lr, max_grad_norm, epochs, patience, loss, \
cost_bps, target_vol, seed, device, progress
        See :class:`~workbench.models.SequenceModel`.

    Attributes
    ----------
    network_ : MLPNetwork
        Fitted network (best validation epoch), on CPU.
    history_, best_epoch_, best_valid_sharpe_, n_features_in_, feature_names_in_, \
training_window_, training_dates_
        See :class:`~workbench.models.SequenceModel`.

    Raises
    ------
    ValueError
        From ``fit`` when ``hidden_size`` or ``num_layers`` is not an int >= 1 or
        ``activation`` is unknown (the message names the parameter).
    """

    def __init__(
        self,
        hidden_size: int = 32,
        num_layers: int = 1,
        activation: str = "elu",
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
        self.activation = activation

    def _validate_extra(self) -> None:
        check_param("hidden_size", self.hidden_size, _is_int(self.hidden_size, 1),
                    "an int >= 1")
        check_param("num_layers", self.num_layers, _is_int(self.num_layers, 1), "an int >= 1")
        check_param("activation", self.activation, self.activation in _ACTIVATIONS,
                    f"one of {sorted(_ACTIVATIONS)}")

    def _build_network(self, n_features: int) -> MLPNetwork:
        return MLPNetwork(n_features, int(self.hidden_size), int(self.num_layers),
                          float(self.dropout), str(self.activation))


class CNNModel(SequenceModel):
    """Causal 1-D convolutional member: a small TCN over each asset's feature sequence.

    Dilated causal convolutions (dilations 1, 2, 4, ...; left padding only) with residual
    connections read the last ``1 + (kernel_size - 1) * (2**num_layers - 1)`` steps and
    emit a tanh position per step (Bai, Kolter & Koltun 2018, "An Empirical Evaluation of
    Generic Convolutional and Recurrent Networks for Sequence Modeling"; see
    :class:`CNNNetwork`). Trained on the Sharpe loss through
    :class:`~workbench.models.SequenceModel`.

    Parameters
    ----------
    channels : int, default 16
        Channels of every convolution.
    kernel_size : int, default 3
        Convolution width.
    num_layers : int, default 3
        Residual blocks (receptive field 15 steps with the defaults).
    dropout, seq_len, burn_in, batch_size, lr, max_grad_norm, epochs, patience, loss, \
cost_bps, target_vol, seed, device, progress
        See :class:`~workbench.models.SequenceModel`.

    Attributes
    ----------
    network_ : CNNNetwork
        Fitted network (best validation epoch), on CPU.
    history_, best_epoch_, best_valid_sharpe_, n_features_in_, feature_names_in_, \
training_window_, training_dates_
        See :class:`~workbench.models.SequenceModel`.

    Raises
    ------
    ValueError
        From ``fit`` when ``channels``, ``kernel_size`` or ``num_layers`` is not an
        int >= 1 (the message names the parameter).
    """

    def __init__(
        self,
        channels: int = 16,
        kernel_size: int = 3,
        num_layers: int = 3,
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
        self.channels = channels
        self.kernel_size = kernel_size
        self.num_layers = num_layers

    def _validate_extra(self) -> None:
        check_param("channels", self.channels, _is_int(self.channels, 1), "an int >= 1")
        check_param("kernel_size", self.kernel_size, _is_int(self.kernel_size, 1),
                    "an int >= 1")
        check_param("num_layers", self.num_layers, _is_int(self.num_layers, 1), "an int >= 1")

    def _build_network(self, n_features: int) -> CNNNetwork:
        return CNNNetwork(n_features, int(self.channels), int(self.kernel_size),
                          int(self.num_layers), float(self.dropout))
