"""Deep momentum network: an LSTM that outputs positions, trained on a Sharpe loss."""

from __future__ import annotations

import copy
import inspect
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.models._losses import LOSSES, captured_returns

__all__ = ["DeepMomentumLSTM", "LSTMNetwork", "resolve_device", "pairwise_sharpe"]


def resolve_device(device: str = "auto") -> torch.device:
    """Map ``"auto" | "cpu" | "cuda"`` to a :class:`torch.device` (CUDA when present).

    Raises
    ------
    ValueError
        If ``device`` is not one of the accepted names, or "cuda" is asked for and
        no CUDA device is available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' requested but torch.cuda.is_available() is False")
        return torch.device("cuda")
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")


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


def pairwise_sharpe(r: np.ndarray, periods_per_year: int = 252) -> float:
    """Annualised Sharpe ratio over all finite entries of ``r`` (population std).

    Parameters
    ----------
    r : numpy.ndarray
        Captured simple returns of any shape.
    periods_per_year : int, default 252
        Annualisation factor.

    Returns
    -------
    float
        ``sqrt(252) * mean / std``; NaN when fewer than two finite entries or zero std.
    """
    r = np.asarray(r, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size < 2:
        return float("nan")
    sd = r.std()
    return float(math.sqrt(periods_per_year) * r.mean() / sd) if sd > 0 else float("nan")


@dataclass
class _Windows:
    x: torch.Tensor  # (W, burn + L, F)
    mask: torch.Tensor  # (W, burn + L) loss mask (False on burn-in)
    r: torch.Tensor  # (W, burn + L)
    sigma: torch.Tensor  # (W, burn + L)
    t_index: np.ndarray = field(default_factory=lambda: np.empty(0))  # (W, burn + L) rows
    a_index: np.ndarray = field(default_factory=lambda: np.empty(0))  # (W,) asset


def _check(name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")


class DeepMomentumLSTM:
    """Deep momentum network (LSTM) trained end to end on the Sharpe ratio.

    The estimator of Lim, Zohren & Roberts (2019), "Enhancing Time Series Momentum
    Strategies Using Deep Neural Networks": an LSTM reads each asset's feature sequence
    (normalised returns, MACD signals) and emits a position ``X_t`` in [-1, 1] that is
    vol-scaled to ``sigma_tgt / sigma_t``; the loss is the negative annualised Sharpe
    ratio of the captured returns over all (asset, time) pairs of a batch, optionally
    net of a turnover cost (DESIGN.md section 5).

    Sequences: each asset's history is cut into windows of ``seq_len`` steps (stride
    ``seq_len``, aligned to the first row of the panel), each preceded by ``burn_in``
    steps of context whose outputs are not scored. Training and prediction use the same
    windows, so every prediction at t sees ``burn_in`` to ``burn_in + seq_len - 1`` past
    steps and nothing after t (causal).

    Parameters
    ----------
    hidden_size : int, default 32
        LSTM hidden units (literature range 5-160).
    dropout : float, default 0.3
        Dropout rate in [0, 1).
    seq_len : int, default 63
        Scored steps per window (63 trading days, as in Lim et al.).
    burn_in : int, default 63
        Context steps before each window (not scored).
    batch_size : int, default 64
        Windows per gradient step.
    lr : float, default 1e-3
        Adam learning rate.
    max_grad_norm : float, default 1.0
        Gradient clipping norm.
    epochs : int, default 50
        Maximum epochs.
    patience : int, default 10
        Early stopping: epochs without a better validation Sharpe.
    loss : {"sharpe", "mse", "binary"}, default "sharpe"
        Training loss.
    cost_bps : float, default 0.0
        Turnover regulariser in the Sharpe loss (bps); also applied to the validation
        Sharpe used for early stopping.
    target_vol : float, default 0.15
        Annualised vol target.
    seed : int, default 0
        Seed for initialisation, dropout and shuffling (deterministic on CPU).
    device : {"auto", "cpu", "cuda"}, default "auto"
        CUDA when present under "auto".
    progress : bool, default True
        Show a tqdm progress bar over epochs.

    Attributes
    ----------
    network_ : LSTMNetwork
        Fitted network (best validation epoch), on CPU.
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``valid_sharpe``, ``seconds``.
    best_epoch_ : int
        Epoch whose weights were kept.
    best_valid_sharpe_ : float
        Validation Sharpe at ``best_epoch_``.
    n_features_in_ : int
        Number of input features F.
    feature_names_in_ : tuple of str
        Feature names seen in ``fit``.
    """

    def __init__(
        self,
        hidden_size: int = 32,
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
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.seq_len = seq_len
        self.burn_in = burn_in
        self.batch_size = batch_size
        self.lr = lr
        self.max_grad_norm = max_grad_norm
        self.epochs = epochs
        self.patience = patience
        self.loss = loss
        self.cost_bps = cost_bps
        self.target_vol = target_vol
        self.seed = seed
        self.device = device
        self.progress = progress

    # -- sklearn-style helpers -------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as a dict (constructor arguments)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {k: getattr(self, k) for k in names}

    def _validate_params(self) -> None:
        _check("hidden_size", self.hidden_size, isinstance(self.hidden_size, int)
               and self.hidden_size >= 1, "an int >= 1")
        _check("dropout", self.dropout, 0.0 <= float(self.dropout) < 1.0, "in [0, 1)")
        _check("seq_len", self.seq_len, isinstance(self.seq_len, int) and self.seq_len >= 2,
               "an int >= 2")
        _check("burn_in", self.burn_in, isinstance(self.burn_in, int) and self.burn_in >= 0,
               "an int >= 0")
        _check("batch_size", self.batch_size, isinstance(self.batch_size, int)
               and self.batch_size >= 1, "an int >= 1")
        _check("lr", self.lr, float(self.lr) > 0, "> 0")
        _check("max_grad_norm", self.max_grad_norm, float(self.max_grad_norm) > 0, "> 0")
        _check("epochs", self.epochs, isinstance(self.epochs, int) and self.epochs >= 1,
               "an int >= 1")
        _check("patience", self.patience, isinstance(self.patience, int) and self.patience >= 1,
               "an int >= 1")
        _check("loss", self.loss, self.loss in LOSSES, f"one of {sorted(LOSSES)}")
        _check("cost_bps", self.cost_bps, float(self.cost_bps) >= 0, ">= 0")
        _check("target_vol", self.target_vol, float(self.target_vol) > 0, "> 0")

    # -- windows ---------------------------------------------------------------
    def _windows(self, features, returns, sigma, loss_mask, start: int, stop: int) -> _Windows:
        """Cut rows [start, stop) of each asset into scored windows with burn-in context."""
        T, N, F = features.shape
        L, B = self.seq_len, self.burn_in
        first = (start // L) * L  # windows aligned to row 0 of the panel
        starts = np.arange(first, stop, L)
        rows = starts[:, None] + np.arange(-B, L)[None, :]  # (S, B + L)
        inside = (rows >= 0) & (rows < T)
        rows_c = np.clip(rows, 0, T - 1)
        scored = np.zeros_like(inside)
        scored[:, B:] = True
        scored &= inside & (rows >= start) & (rows < stop)
        x = features[rows_c]  # (S, B+L, N, F)
        x = np.where(inside[:, :, None, None], x, np.nan)
        x = np.transpose(x, (0, 2, 1, 3)).reshape(-1, B + L, F)  # (S*N, B+L, F)
        m = loss_mask[rows_c] & scored[:, :, None]  # (S, B+L, N)
        m = np.transpose(m, (0, 2, 1)).reshape(-1, B + L)
        r = np.transpose(returns[rows_c], (0, 2, 1)).reshape(-1, B + L)
        s = np.transpose(sigma[rows_c], (0, 2, 1)).reshape(-1, B + L)
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        r = np.where(m, np.nan_to_num(r), 0.0)
        s = np.where(m, s, 1.0)
        s = np.where(np.isfinite(s) & (s > 0), s, 1.0)
        t_index = np.repeat(rows, N, axis=0).reshape(len(starts), N, B + L).reshape(-1, B + L)
        a_index = np.tile(np.arange(N), len(starts))
        keep = m.any(axis=1) if loss_mask is not None else np.ones(len(m), bool)
        dt = torch.float32
        return _Windows(
            x=torch.as_tensor(x[keep], dtype=dt),
            mask=torch.as_tensor(m[keep]),
            r=torch.as_tensor(r[keep], dtype=dt),
            sigma=torch.as_tensor(s[keep], dtype=dt),
            t_index=t_index[keep],
            a_index=a_index[keep],
        )

    # -- fit / predict -----------------------------------------------------------
    def fit(self, dataset, train: slice, valid: slice | None = None) -> DeepMomentumLSTM:
        """Train on rows ``train`` of ``dataset``, early-stopping on rows ``valid``.

        Parameters
        ----------
        dataset : workbench.models.MomentumDataset
            Features (T, N, F), next returns and ex-ante vol (T, N).
        train : slice
            Training rows ``[start, stop)``. Targets whose next bar falls at or after
            ``train.stop`` are excluded so the training window never sees later returns.
        valid : slice, optional
            Validation rows; when omitted the model trains for ``epochs`` epochs and
            keeps the last weights.

        Returns
        -------
        DeepMomentumLSTM
            ``self``, fitted.

        Raises
        ------
        ValueError
            On an invalid hyperparameter (named in the message) or an empty training set.
        """
        from tqdm.auto import tqdm

        self._validate_params()
        dev = resolve_device(self.device)
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        feats, nxt, sig = dataset.features, dataset.next_returns, dataset.sigma
        ok = dataset.valid_mask()
        tr_ok = ok.copy()
        tr_ok[max(train.stop - 1, 0):] = False  # r_{t+1} of the last row lies past the window
        win = self._windows(feats, nxt, sig, tr_ok, train.start or 0, train.stop)
        if int(win.mask.sum()) < 2:
            raise ValueError(
                f"training window rows {train.start}:{train.stop} hold fewer than 2 valid "
                "(asset, time) pairs; widen the window or check the features' warm-up"
            )
        self.n_features_in_ = feats.shape[-1]
        self.feature_names_in_ = tuple(dataset.feature_names)
        net = LSTMNetwork(self.n_features_in_, self.hidden_size, float(self.dropout)).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=float(self.lr))
        loss_fn = LOSSES[self.loss]
        n = win.x.shape[0]
        self.history_: list[dict[str, float]] = []
        best_state, best_score, best_epoch, bad = None, -np.inf, 0, 0
        bar = tqdm(range(1, self.epochs + 1), desc="epochs", disable=not self.progress,
                   leave=False)
        for epoch in bar:
            t0 = time.perf_counter()
            net.train()
            perm = torch.randperm(n, generator=gen)
            losses = []
            for i in range(0, n, self.batch_size):
                idx = perm[i : i + self.batch_size]
                m = win.mask[idx].to(dev)
                if int(m.sum()) < 2:
                    continue
                out = net(win.x[idx].to(dev))
                loss = loss_fn(out, win.r[idx].to(dev), win.sigma[idx].to(dev), m,
                               target_vol=self.target_vol, cost_bps=self.cost_bps)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), float(self.max_grad_norm))
                opt.step()
                losses.append(float(loss.detach()))
            self.network_ = net
            score = float("nan")
            if valid is not None:
                score = self._score(dataset, valid)
            rec = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else np.nan,
                   "valid_sharpe": score, "seconds": time.perf_counter() - t0}
            self.history_.append(rec)
            bar.set_postfix(loss=f"{rec['train_loss']:.3f}", val_sharpe=f"{score:.3f}")
            if valid is None:
                continue
            if np.isfinite(score) and score > best_score:
                best_score, best_epoch, bad = score, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        else:
            best_epoch = len(self.history_)
            best_score = self.history_[-1]["valid_sharpe"]
        self.network_ = net.cpu().eval()
        self.best_epoch_ = best_epoch
        self.best_valid_sharpe_ = float(best_score)
        return self

    def _score(self, dataset, rows: slice) -> float:
        """Validation Sharpe (pairwise, net of ``cost_bps``) on ``rows``."""
        pos = self.predict(dataset.features, rows=rows)
        X = torch.as_tensor(pos[rows])
        ok = torch.as_tensor(dataset.valid_mask()[rows])
        r = captured_returns(
            X.T, torch.as_tensor(np.nan_to_num(dataset.next_returns[rows])).T,
            torch.as_tensor(np.where(ok, dataset.sigma[rows], 1.0)).T,
            target_vol=self.target_vol, cost_bps=self.cost_bps, mask=ok.T,
        )
        return pairwise_sharpe(r.numpy()[ok.T.numpy()])

    def predict(self, features: np.ndarray, rows: slice | None = None) -> np.ndarray:
        """Positions for every row (or the rows in ``rows``) of a feature block.

        Parameters
        ----------
        features : numpy.ndarray, shape (T, N, F)
            Inputs in the order of ``feature_names_in_`` (row 0 is the window origin).
        rows : slice, optional
            Only these rows are computed (others are 0); context before them is read.

        Returns
        -------
        numpy.ndarray, shape (T, N)
            Positions in [-1, 1]; 0 (flat) where any input feature is not finite.

        Raises
        ------
        ValueError
            If the model is not fitted or ``features`` has the wrong shape.
        """
        if not hasattr(self, "network_"):
            raise ValueError("DeepMomentumLSTM is not fitted; call fit() first")
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 3 or features.shape[-1] != self.n_features_in_:
            raise ValueError(
                f"features must have shape (T, N, {self.n_features_in_}), got {features.shape}"
            )
        T, N, _ = features.shape
        rows = rows or slice(0, T)
        start, stop = rows.start or 0, min(rows.stop if rows.stop is not None else T, T)
        inp = np.isfinite(features).all(axis=-1)
        dummy = np.zeros((T, N))
        win = self._windows(features, dummy, np.ones((T, N)), inp, start, stop)
        out = np.zeros((T, N))
        if win.x.shape[0] == 0:
            return out
        net = self.network_
        was_training = net.training
        net.eval()  # no dropout in predictions, also when scoring validation during fit
        try:
            with torch.inference_mode():
                pos = net(win.x).numpy().astype(np.float64)
        finally:
            net.train(was_training)
        m = win.mask.numpy()
        out[win.t_index[m], np.broadcast_to(win.a_index[:, None], m.shape)[m]] = pos[m]
        return out
