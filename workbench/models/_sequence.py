"""Torch sequence members: one estimator base and one walk-forward trainer for all of them.

:class:`SequenceModel` carries everything the torch members of the zoo share (DESIGN.md
section 4): hyperparameter storage and validation, cutting each asset's history into
scored windows with burn-in context, the training loop (Adam, gradient clipping, early
stopping on validation Sharpe, seeded and deterministic on CPU, tqdm progress, per-epoch
history and callbacks) and prediction. A member only supplies its network through
:meth:`SequenceModel._build_network`: a module mapping ``(B, L, F)`` inputs to ``(B, L)``
positions in [-1, 1] whose output at step t depends on steps <= t only, with an optional
``forward_last`` that computes the last step's position alone (used by the inference
engine).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench._checks import is_finite_real
from workbench.models._losses import LOSSES, captured_returns
from workbench.models._params import (
    EstimatorParams,
    record_training_window,
    restore_training_window,
    training_window_meta,
)

__all__ = ["SequenceModel", "resolve_device", "pairwise_sharpe", "last_step", "check_param",
           "score_positions", "valid_rows"]

#: ``callback(model, record) -> bool | None``; a truthy return stops training.
EpochCallback = Callable[[Any, dict], Any]


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


def last_step(network: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Position of the last step of each sequence, shape (B,), from ``x`` (B, L, F).

    Uses the network's ``forward_last`` when it has one (work on earlier steps' outputs
    cut), else ``network(x)[:, -1]``.
    """
    fl = getattr(network, "forward_last", None)
    return fl(x) if fl is not None else network(x)[:, -1]


@dataclass
class _Windows:
    x: torch.Tensor  # (W, burn + L, F)
    mask: torch.Tensor  # (W, burn + L) loss mask (False on burn-in)
    r: torch.Tensor  # (W, burn + L)
    sigma: torch.Tensor  # (W, burn + L)
    t_index: np.ndarray = field(default_factory=lambda: np.empty(0))  # (W, burn + L) rows
    a_index: np.ndarray = field(default_factory=lambda: np.empty(0))  # (W,) asset


def check_param(name: str, value: Any, ok: bool, expected: str) -> None:
    """Raise ``ValueError("<name> must be <expected>, got <value>")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def _is_int(v: Any, lo: int) -> bool:
    return bool(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= lo)


#: A finite real number (not a bool): ``inf`` and NaN hyperparameters are rejected.
_is_num = is_finite_real


def row_bounds(rows: Any, T: int, name: str = "rows") -> tuple[int, int]:
    """``(start, stop)`` of a row slice over ``T`` rows, as Python slicing reads it.

    Negative and open bounds count as in ``x[rows]`` (``slice(-100, None)``: the last 100
    rows), so every member reads a slice the same way.

    Raises
    ------
    ValueError
        If ``rows`` is not a slice or has a step other than 1.
    """
    if not isinstance(rows, slice) or rows.step not in (None, 1):
        raise ValueError(f"{name} must be a slice of rows with step 1, got {rows!r}")
    start, stop, _ = rows.indices(T)
    return start, max(start, stop)


def valid_rows(valid: Any, T: int) -> slice | None:
    """The validation rows of a ``fit`` call as a slice, or None for no validation.

    An empty slice as written (``slice(s, s)``, what
    :func:`workbench.backtest.walk_forward_splits` gives for ``valid_fraction=0``) means
    no validation, as ``valid=None`` does. A non-empty slice that selects no row of the
    ``T`` rows is a mistake and raises.

    Raises
    ------
    ValueError
        If ``valid`` is not a slice with step 1, or selects no row although non-empty.
    """
    if valid is None:
        return None
    start, stop = row_bounds(valid, T, "valid")
    if start < stop:
        return slice(start, stop)
    a, b = valid.start, valid.stop
    if a is not None and b is not None and (a < 0) == (b < 0) and b <= a:
        return None  # empty as written
    raise ValueError(f"valid={valid!r} selects no row of the dataset's {T} rows; pass "
                     "valid=None (or an empty slice) to train without validation")


class SequenceModel(EstimatorParams):
    """Base estimator of the torch members: windows, one trainer, predictions.

    Sequences: each asset's history is cut into windows of ``seq_len`` steps (stride
    ``seq_len``, aligned to the first row of the panel), each preceded by ``burn_in``
    steps of context whose outputs are not scored. Training and prediction use the same
    windows, so every prediction at t sees ``burn_in`` to ``burn_in + seq_len - 1`` past
    steps and nothing after t (causal).

    Training (Lim, Zohren & Roberts 2019; DESIGN.md sections 4-5): Adam on the chosen
    loss of the vol-scaled captured returns ``X_t * sigma_tgt / sigma_t * r_{t+1}`` over
    all (asset, time) pairs of a batch, gradient-norm clipping, one validation Sharpe
    per epoch (net of ``cost_bps``), early stopping after ``patience`` epochs without
    improvement, the best epoch's weights kept. Seeded: on CPU two fits with the same
    seed give identical weights. CUDA is used when present under ``device="auto"``.

    Subclasses define ``__init__`` (listing every hyperparameter, sklearn style),
    :meth:`_build_network` and, for their own hyperparameters,
    :meth:`_validate_extra`.

    Parameters
    ----------
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
        Turnover regulariser in the Sharpe loss (bps of vol-scaled turnover); also
        applied to the validation Sharpe used for early stopping.
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
    network_ : torch.nn.Module
        Fitted network (best validation epoch), on CPU, in eval mode.
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``valid_sharpe``, ``seconds``.
    best_epoch_ : int
        Epoch whose weights were kept.
    best_valid_sharpe_ : float
        Validation Sharpe at ``best_epoch_`` (annualised, net of ``cost_bps``).
    n_features_in_ : int
        Number of input features F.
    feature_names_in_ : tuple of str
        Feature names seen in ``fit``.
    training_window_ : tuple of int
        Rows ``(train_start, train_stop, valid_start, valid_stop)`` used by ``fit``.
    training_dates_ : tuple of str
        ISO 8601 timestamps of the first and last training row.
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

    def _validate_params(self) -> None:
        check_param("dropout", self.dropout, _is_num(self.dropout)
                    and 0.0 <= float(self.dropout) < 1.0, "in [0, 1)")
        check_param("seq_len", self.seq_len, _is_int(self.seq_len, 2), "an int >= 2")
        check_param("burn_in", self.burn_in, _is_int(self.burn_in, 0), "an int >= 0")
        check_param("batch_size", self.batch_size, _is_int(self.batch_size, 1), "an int >= 1")
        check_param("lr", self.lr, _is_num(self.lr) and float(self.lr) > 0,
                    "a finite number > 0")
        check_param("max_grad_norm", self.max_grad_norm, _is_num(self.max_grad_norm)
                    and float(self.max_grad_norm) > 0, "a finite number > 0")
        check_param("epochs", self.epochs, _is_int(self.epochs, 1), "an int >= 1")
        check_param("patience", self.patience, _is_int(self.patience, 1), "an int >= 1")
        check_param("loss", self.loss, self.loss in LOSSES, f"one of {sorted(LOSSES)}")
        check_param("cost_bps", self.cost_bps, _is_num(self.cost_bps)
                    and float(self.cost_bps) >= 0, "a finite number >= 0")
        check_param("target_vol", self.target_vol, _is_num(self.target_vol)
                    and float(self.target_vol) > 0, "a finite number > 0")
        check_param("seed", self.seed, _is_int(self.seed, 0), "an int >= 0")
        check_param("device", self.device, self.device in ("auto", "cpu", "cuda"),
                    "'auto', 'cpu' or 'cuda'")
        self._validate_extra()

    def _validate_extra(self) -> None:
        """Validate subclass hyperparameters (raise ``ValueError`` naming the parameter)."""

    def _build_network(self, n_features: int) -> nn.Module:
        """Return a fresh network ``(B, L, F) -> (B, L)`` positions in [-1, 1]."""
        raise NotImplementedError

    @property
    def context_length(self) -> int:
        """Steps of history one live prediction reads: ``burn_in + seq_len``."""
        return int(self.burn_in) + int(self.seq_len)

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
        keep = m.any(axis=1)
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
    def fit(self, dataset, train: slice, valid: slice | None = None, *,
            callbacks: Sequence[EpochCallback] = ()) -> SequenceModel:
        """Train on rows ``train`` of ``dataset``, early-stopping on rows ``valid``.

        Parameters
        ----------
        dataset : workbench.models.MomentumDataset
            Features (T, N, F), next returns and ex-ante vol (T, N).
        train : slice
            Training rows ``[start, stop)`` (read as ``x[train]``: open and negative
            bounds allowed). Targets whose next bar falls at or after
            ``train.stop`` are excluded so the training window never sees later returns.
        valid : slice, optional
            Validation rows, scored on the targets realised inside the block (not the
            last row's, realised at the next block's first bar); when omitted or empty
            (``slice(s, s)``) the model trains for ``epochs`` epochs and keeps the last
            weights.
        callbacks : sequence of callable, optional
            ``callback(model, record)`` after every epoch, ``record`` the history entry
            (``epoch``, ``train_loss``, ``valid_sharpe``, ``seconds``); a truthy return
            stops training (the best weights so far are kept). Exceptions propagate
            (e.g. ``optuna.TrialPruned``). Used by :class:`widgets.TrainingMonitor`.

        Returns
        -------
        SequenceModel
            ``self``, fitted.

        Raises
        ------
        ValueError
            On an invalid hyperparameter (named in the message), an empty training set,
            ``train``/``valid`` not a slice with step 1, a non-empty ``valid`` that
            selects no row of the dataset, or training that diverges
            (non-finite loss or weights) before any epoch scored a finite validation Sharpe.

        Warns
        -----
        RuntimeWarning
            When training diverges later: training stops and the best epoch is kept.
        """
        from tqdm.auto import tqdm

        self._validate_params()
        dev = resolve_device(self.device)
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        feats, nxt, sig = dataset.features, dataset.next_returns, dataset.sigma
        T = feats.shape[0]
        train = slice(*row_bounds(train, T, "train"))
        valid = valid_rows(valid, T)
        # targets realised at or after train.stop (the last bar's r_{t+1}) lie past the window
        tr_ok = dataset.valid_mask(before=train.stop)
        win = self._windows(feats, nxt, sig, tr_ok, train.start, train.stop)
        if int(win.mask.sum()) < 2:
            raise ValueError(
                f"training window rows {train.start}:{train.stop} hold fewer than 2 valid "
                "(asset, time) pairs; widen the window or check the features' warm-up"
            )
        self.n_features_in_ = feats.shape[-1]
        self.feature_names_in_ = tuple(dataset.feature_names)
        record_training_window(self, dataset.index, train, valid)
        net = self._build_network(self.n_features_in_).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=float(self.lr))
        loss_fn = LOSSES[self.loss]
        n = win.x.shape[0]
        self.history_: list[dict[str, float]] = []
        best_state, best_score, best_epoch, bad = None, -np.inf, 0, 0
        bar = tqdm(range(1, self.epochs + 1), desc=f"{type(self).__name__} epochs",
                   disable=not self.progress, leave=False)
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
                if not math.isfinite(losses[-1]):
                    break
            # non-finite weights give a non-finite loss at the next batch; the last step's
            # are checked once per epoch
            if losses and (not math.isfinite(losses[-1])
                           or not all(bool(torch.isfinite(p).all()) for p in net.parameters())):
                if best_state is None:
                    raise ValueError(
                        f"{type(self).__name__} training diverged at epoch {epoch} (non-finite "
                        f"loss or weights) before any epoch scored a finite validation Sharpe; "
                        f"lower lr (got {self.lr!r}) or check the inputs")
                warnings.warn(
                    f"{type(self).__name__} training diverged at epoch {epoch} (non-finite "
                    f"loss or weights); keeping the best epoch so far ({best_epoch})",
                    RuntimeWarning, stacklevel=2)
                break
            self.network_ = net
            score = float("nan")
            if valid is not None:
                score = self._score(dataset, valid)
            rec = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else np.nan,
                   "valid_sharpe": score, "seconds": time.perf_counter() - t0}
            self.history_.append(rec)
            bar.set_postfix(loss=f"{rec['train_loss']:.3f}", val_sharpe=f"{score:.3f}")
            stop = False
            if valid is not None:
                if np.isfinite(score) and score > best_score:
                    best_score, best_epoch, bad = score, epoch, 0
                    best_state = copy.deepcopy(net.state_dict())
                else:
                    bad += 1
                    stop = bad >= self.patience
            for cb in callbacks:
                stop = bool(cb(self, rec)) or stop
            if stop:
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
        """Validation Sharpe (pairwise, net of ``cost_bps``) on ``rows``.

        Only targets realised inside ``rows`` count (``within=True``): the return after
        the block (the first test bar's) never informs early stopping.
        """
        return score_positions(self.predict(dataset.features, rows=rows), dataset, rows,
                               target_vol=self.target_vol, cost_bps=self.cost_bps,
                               within=True)

    def _check_fitted(self, features: Any) -> np.ndarray:
        if not hasattr(self, "network_"):
            raise ValueError(f"{type(self).__name__} is not fitted; call fit() first")
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 3 or features.shape[-1] != self.n_features_in_:
            raise ValueError(
                f"features must have shape (T, N, {self.n_features_in_}), got {features.shape}"
            )
        return features

    def predict(self, features: np.ndarray, rows: slice | None = None) -> np.ndarray:
        """Positions for every row (or the rows in ``rows``) of a feature block.

        Parameters
        ----------
        features : numpy.ndarray, shape (T, N, F)
            Inputs in the order of ``feature_names_in_`` (row 0 is the window origin).
        rows : slice, optional
            Only these rows are computed (others are 0), read as ``features[rows]``
            (``slice(-100, None)``: the last 100); context before them is read.

        Returns
        -------
        numpy.ndarray, shape (T, N)
            Positions in [-1, 1]; 0 (flat) where any input feature is not finite.

        Raises
        ------
        ValueError
            If the model is not fitted, ``features`` has the wrong shape or ``rows`` is not
            a slice with step 1.
        """
        features = self._check_fitted(features)
        T, N, _ = features.shape
        start, stop = row_bounds(slice(None) if rows is None else rows, T)
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

    # -- registry state (workbench.models.save_model / load_model) ---------------
    def _registry_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Fitted state for the registry: (tensors for safetensors, JSON-able dict).

        Tensors are the network's ``state_dict``; the dict holds the fitted scalar
        attributes. Raises ``ValueError`` when not fitted.
        """
        if not hasattr(self, "network_"):
            raise ValueError(f"{type(self).__name__} is not fitted; nothing to save")
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.network_.state_dict().items()}
        meta = {
            "n_features_in_": int(self.n_features_in_),
            "feature_names_in_": list(self.feature_names_in_),
            "best_epoch_": int(self.best_epoch_),
            "best_valid_sharpe_": float(self.best_valid_sharpe_),
            "history_": [dict(h) for h in self.history_],
            **training_window_meta(self),
        }
        return tensors, meta

    @classmethod
    def _registry_restore(cls, params: dict[str, Any], tensors: dict[str, torch.Tensor],
                          meta: dict[str, Any]) -> SequenceModel:
        """Rebuild a fitted model from :meth:`_registry_state` output (no unpickling).

        Raises ``ValueError`` if the tensors do not match the network the
        hyperparameters describe.
        """
        model = cls(**params)
        model._validate_params()
        net = model._build_network(int(meta["n_features_in_"]))
        try:
            net.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"saved weights do not fit {cls.__name__}({params}): {exc}") from exc
        model.network_ = net.eval()
        model.n_features_in_ = int(meta["n_features_in_"])
        model.feature_names_in_ = tuple(meta["feature_names_in_"])
        model.best_epoch_ = int(meta["best_epoch_"])
        model.best_valid_sharpe_ = float(meta["best_valid_sharpe_"])
        model.history_ = [dict(h) for h in meta.get("history_", [])]
        restore_training_window(model, meta)
        return model

    def predict_sequences(self, x: np.ndarray) -> np.ndarray:
        """Position at the last step of each sequence: ``(B, L, F)`` -> ``(B,)``.

        The live/inference entry point: ``x`` holds the last ``L`` bars of B symbols
        (non-finite values are read as 0, as in training windows).

        Raises
        ------
        ValueError
            If the model is not fitted or ``x`` is not (B, L, n_features_in_).
        """
        if not hasattr(self, "network_"):
            raise ValueError(f"{type(self).__name__} is not fitted; call fit() first")
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3 or x.shape[-1] != self.n_features_in_:
            raise ValueError(f"x must have shape (B, L, {self.n_features_in_}), got {x.shape}")
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        net = self.network_.eval()
        with torch.inference_mode():
            return last_step(net, torch.from_numpy(x)).numpy().astype(np.float64)


def score_positions(pos: np.ndarray, dataset, rows: slice, *, target_vol: float = 0.15,
                    cost_bps: float = 0.0, within: bool = False) -> float:
    """Annualised pairwise Sharpe of vol-scaled positions over ``rows`` of ``dataset``.

    Parameters
    ----------
    pos : numpy.ndarray, shape (T, N)
        Positions in [-1, 1] (only ``rows`` are read).
    dataset : MomentumDataset
        Supplies next returns, ex-ante vol and the valid mask.
    rows : slice
        Rows scored.
    target_vol, cost_bps : float
        As in :func:`workbench.models.captured_returns`.
    within : bool, default False
        Count only pairs whose next return is realised inside ``rows`` (the asset's next
        bar before ``rows.stop``; see ``MomentumDataset.valid_mask(before=...)``). Use it
        for validation scores (early stopping, ensemble weights): the return realised
        after the block belongs to the next block (with no embargo, the test block). The
        default also scores the last row's position against the next bar's return, as a
        backtest of the block does.

    Returns
    -------
    float
        ``sqrt(252) * mean / std`` of the captured returns of all valid (asset, time)
        pairs; NaN when fewer than two.
    """
    X = torch.as_tensor(np.asarray(pos, dtype=np.float64)[rows])
    T = np.asarray(pos).shape[0]
    before = row_bounds(rows, T)[1] if within else None
    ok = torch.as_tensor(dataset.valid_mask(before=before)[rows])
    r = captured_returns(
        X.T, torch.as_tensor(np.nan_to_num(dataset.next_returns[rows])).T,
        torch.as_tensor(np.where(ok, dataset.sigma[rows], 1.0)).T,
        target_vol=target_vol, cost_bps=cost_bps, mask=ok.T,
    )
    return pairwise_sharpe(r.numpy()[ok.T.numpy()])
