"""Ensembles of fitted members and walk-forward ensembles.

An :class:`Ensemble` combines the positions of fitted members (any estimator with the
member contract of :class:`~workbench.models.SequenceModel`: ``predict``,
``predict_sequences``, ``context_length``, ``n_features_in_``, ``feature_names_in_``)
with convex weights learned on validation rows only: equal weights, weights
proportional to each member's validation Sharpe ("confidence"), or a Sharpe-maximising
meta-learner ("stacking", DESIGN.md section 4). :func:`walk_forward_ensemble` refits
the members and the ensembles per expanding-window fold and stitches their test blocks.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.models._losses import captured_returns
from workbench.models._sequence import (
    _is_int,
    _is_num,
    check_param,
    row_bounds,
    score_positions,
)
from workbench.models._walkforward import fit_tagged, fold_dates, fold_slices

__all__ = ["Ensemble", "EnsembleWalkForward", "walk_forward_ensemble", "METHODS"]

#: Combination methods accepted by :class:`Ensemble`.
METHODS = ("equal", "confidence", "stacking")

#: Adam steps per start of the stacking meta-learner (fixed, so fits are reproducible).
_STACK_STEPS = 250
#: Adam learning rate of the stacking meta-learner (on the softmax logits).
_STACK_LR = 0.05
#: Random starts besides the equal-weight start (drawn from the seeded generator).
_STACK_RESTARTS = 2


def _name_members(members: Any) -> dict[str, Any]:
    """Normalise ``members`` to an ordered ``{name: member}`` dict (see :class:`Ensemble`)."""
    if isinstance(members, Mapping):
        out = {}
        for k, v in members.items():
            check_param("members", k, isinstance(k, str) and k != "",
                        "a mapping with non-empty str names")
            out[k] = v
    elif isinstance(members, Iterable) and not isinstance(members, (str, bytes)):
        out = {}
        for m in members:
            base = type(m).__name__
            name, i = base, 1
            while name in out:
                i += 1
                name = f"{base}_{i}"
            out[name] = m
    else:
        raise ValueError(f"members must be a mapping name -> member or a list of members, "
                         f"got {type(members).__name__}")
    if not out:
        raise ValueError("members must hold at least one member, got an empty collection")
    return out


def _is_fitted(member: Any) -> bool:
    return hasattr(member, "n_features_in_") and hasattr(member, "feature_names_in_")


def _utc_naive(ts: pd.Timestamp) -> pd.Timestamp:
    """``ts`` as naive UTC (aware stamps converted, naive ones read as UTC)."""
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _combined_sharpe_loss(pos: np.ndarray, dataset, valid: slice, *, target_vol: float,
                          cost_bps: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Sharpe loss of convex combinations of member positions, as a function of the weights.

    Returns ``f(w)`` (``w`` a float64 tensor (M,)) equal to
    ``sharpe_loss(sum_m w_m X^m, r, sigma, mask, target_vol=..., cost_bps=...)`` over the
    valid (asset, time) pairs of rows ``valid`` (the same captured returns as
    :func:`~workbench.models.score_positions`), computed from per-member captured
    returns precomputed once: the gross return is linear in ``w`` and the turnover term
    is ``|w . D|`` with ``D`` the members' vol-scaled position changes, so a step costs
    O(M K) for K valid pairs.

    Raises
    ------
    ValueError
        If the rows hold fewer than two valid pairs.
    """
    ok = dataset.valid_mask(before=valid.stop)[valid]
    if int(ok.sum()) < 2:
        raise ValueError(f"valid rows {valid.start}:{valid.stop} hold fewer than 2 valid "
                         "(asset, time) pairs; the stacking meta-learner cannot be fitted")
    dt = torch.float64
    P = torch.as_tensor(np.transpose(pos[:, valid], (0, 2, 1)), dtype=dt)  # (M, N, Tv)
    mask = torch.as_tensor(ok.T)  # (N, Tv), time on the last axis as captured_returns wants
    r = torch.as_tensor(np.nan_to_num(dataset.next_returns[valid]).T, dtype=dt)
    sig = torch.as_tensor(np.where(ok, dataset.sigma[valid], 1.0).T, dtype=dt)
    gross = captured_returns(P, r, sig, target_vol=target_vol, mask=mask)[:, mask]  # (M, K)
    turn = None
    if cost_bps:
        x_over_sigma = torch.where(mask, P / sig, torch.zeros_like(P))
        prev = torch.nn.functional.pad(x_over_sigma[..., :-1], (1, 0))
        turn = (x_over_sigma - prev)[:, mask]  # (M, K)
    c = float(cost_bps) * 1e-4
    scale = math.sqrt(252)

    def loss(w: torch.Tensor) -> torch.Tensor:
        R = w @ gross
        if turn is not None:
            R = R - c * target_vol * (w @ turn).abs()
        mean = R.mean()
        return -scale * mean / torch.sqrt(((R - mean) ** 2).mean() + 1e-18)

    return loss


class Ensemble:
    """Convex combination of fitted members' positions, weights learned on validation rows.

    The combined position is ``X_t = sum_m w_m X_t^m`` with ``w_m >= 0`` and
    ``sum_m w_m = 1``, so it stays in [-1, 1]. Weights come from the validation rows
    passed to :meth:`fit` only (the members must have been fitted on earlier rows), so
    test rows never inform them.

    Parameters
    ----------
    members : mapping of str to member, or list of members
        Fitted members. A list is named by class name, duplicates suffixed ``_2``,
        ``_3``, ... in list order (e.g. ``["DeepMomentumLSTM", "DeepMomentumLSTM_2"]``).
    method : {"equal", "confidence", "stacking"}, default "equal"
        Weighting method.
    target_vol : float, default 0.15
        Annualised vol target of the captured returns used to score members.
    cost_bps : float, default 0.0
        Turnover cost (bps of vol-scaled turnover) netted from validation returns.
    shrinkage : float, default 1.0
        L2 penalty towards equal weights for "stacking" (>= 0; 0 = pure Sharpe
        maximisation; units: annualised Sharpe per squared weight deviation).
    seed : int, default 0
        Seed of the stacking meta-learner's random starts (fits are deterministic).

    Attributes
    ----------
    weights_ : dict of str to float
        Member weights (sum 1), in the order of :attr:`names`.
    confidences_ : dict of str to float
        Each member's annualised validation Sharpe (NaN when not computable).
    valid_rows_ : tuple of int
        ``(start, stop)`` of the validation rows used by :meth:`fit`.
    best_valid_sharpe_ : float
        Validation Sharpe of the combined positions (in-sample for the weights).

    Raises
    ------
    ValueError
        If ``members`` is empty, not a mapping/list, or a name is not a non-empty str.

    Notes
    -----
    Weighting methods:

    "equal"
        ``w_m = 1 / M``.
    "confidence"
        ``w_m`` proportional to ``max(S_m, 0)``, ``S_m`` member m's annualised Sharpe
        ratio on the validation rows (:func:`~workbench.models.score_positions` of its
        positions with ``within=True``, vol-scaled to ``target_vol`` and net of
        ``cost_bps``; NaN counts as
        0). When every ``S_m <= 0`` (or NaN) the weights fall back to equal weights.
    "stacking"
        A meta-learner (stacked generalisation, Wolpert 1992, "Stacked
        Generalization", Neural Networks 5(2)) fitted on the members' validation-row
        positions: ``w = softmax(theta)`` maximising the Sharpe ratio of the combined
        vol-scaled positions on the validation rows (the Sharpe loss of Lim, Zohren &
        Roberts 2019; DESIGN.md sections 4-5) minus an L2 penalty
        ``shrinkage * ||w - 1/M||^2`` towards equal weights. Solved in float64 torch by
        Adam with a fixed number of steps from the equal-weight start and two seeded
        random starts; the best iterate is kept, so the objective is never worse than
        at equal weights (the stacked validation Sharpe is >= the equal-weight one).
    """

    def __init__(
        self,
        members: Mapping[str, Any] | Sequence[Any],
        method: str = "equal",
        *,
        target_vol: float = 0.15,
        cost_bps: float = 0.0,
        shrinkage: float = 1.0,
        seed: int = 0,
    ):
        self.members = _name_members(members)
        self.method = method
        self.target_vol = target_vol
        self.cost_bps = cost_bps
        self.shrinkage = shrinkage
        self.seed = seed
        self._w_cache: dict[tuple[Any, Any], torch.Tensor] = {}

    # -- sklearn-style helpers -------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as a dict (constructor arguments except ``members``)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters
                 if p not in ("self", "members")]
        return {k: getattr(self, k) for k in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}(members={list(self.names)}, {args})"

    def _validate_params(self) -> None:
        check_param("method", self.method, self.method in METHODS, f"one of {list(METHODS)}")
        check_param("target_vol", self.target_vol, _is_num(self.target_vol)
                    and float(self.target_vol) > 0, "a finite number > 0")
        check_param("cost_bps", self.cost_bps, _is_num(self.cost_bps)
                    and float(self.cost_bps) >= 0, "a finite number >= 0")
        check_param("shrinkage", self.shrinkage, _is_num(self.shrinkage)
                    and float(self.shrinkage) >= 0, "a finite number >= 0")
        check_param("seed", self.seed, _is_int(self.seed, 0), "an int >= 0")

    # -- member properties -----------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Member names, in member order (the row order of :meth:`combine`'s input)."""
        return tuple(self.members)

    @property
    def context_length(self) -> int:
        """Steps of history one live prediction reads: the longest member context."""
        return max(int(m.context_length) for m in self.members.values())

    def _check_members_fitted(self) -> None:
        for name, m in self.members.items():
            if not _is_fitted(m):
                raise ValueError(f"member {name!r} ({type(m).__name__}) is not fitted; "
                                 "fit every member before the ensemble")

    @property
    def n_features_in_(self) -> int:
        """Number of input features F (shared by all members).

        Raises
        ------
        ValueError
            If a member is not fitted or the members disagree.
        """
        self._check_members_fitted()
        counts = {name: int(m.n_features_in_) for name, m in self.members.items()}
        if len(set(counts.values())) > 1:
            raise ValueError(f"members disagree on n_features_in_: {counts}")
        return next(iter(counts.values()))

    @property
    def feature_names_in_(self) -> tuple[str, ...]:
        """Feature names (shared by all members, same order).

        Raises
        ------
        ValueError
            If a member is not fitted or the members disagree on names or order.
        """
        self._check_members_fitted()
        names = {name: tuple(m.feature_names_in_) for name, m in self.members.items()}
        first_name, first = next(iter(names.items()))
        for name, fn in names.items():
            if fn != first:
                raise ValueError(f"members disagree on feature_names_in_: {first_name!r} has "
                                 f"{list(first)}, {name!r} has {list(fn)}")
        return first

    # -- fit ---------------------------------------------------------------------
    def fit(self, dataset, valid: slice) -> Ensemble:
        """Learn the member weights on the validation rows ``valid`` of ``dataset``.

        Parameters
        ----------
        dataset : MomentumDataset
            Features (T, N, F) in the members' feature order, next returns and
            ex-ante vol (T, N).
        valid : slice
            Validation rows ``[start, stop)``; only these rows' positions and the next
            returns realised inside the block are read (not the last row's, realised at
            the next block's first bar; members read earlier rows as context).

        Returns
        -------
        Ensemble
            ``self``, fitted.

        Raises
        ------
        ValueError
            On a bad hyperparameter, an unfitted member (named), members disagreeing on
            features, a dataset whose feature names differ from the members', an empty
            or out-of-range ``valid``, a member returning non-finite positions on the
            validation rows (named), (stacking) fewer than two valid pairs, or ``valid``
            starting before a member's last training date (``training_dates_``; the
            member is named), which would learn the weights in sample.
        """
        self._validate_params()
        valid = self._check_dataset(dataset, valid)
        positions = {name: np.asarray(m.predict(dataset.features, rows=valid), dtype=np.float64)
                     for name, m in self.members.items()}
        return self._fit_positions(positions, dataset, valid)

    def _check_dataset(self, dataset, valid: Any) -> slice:
        names = self.feature_names_in_  # also checks fitted and agreement
        if tuple(dataset.feature_names) != names:
            raise ValueError(f"dataset feature_names {list(dataset.feature_names)} differ from "
                             f"the members' feature_names_in_ {list(names)}")
        T = dataset.features.shape[0]
        start, stop = row_bounds(valid, T, "valid")  # as the members' fit reads it
        if start == stop:
            raise ValueError(f"valid must select rows within [0, {T}) with start < stop, "
                             f"got {valid!r}")
        self._check_out_of_sample(dataset.index, start)
        return slice(start, stop)

    def _check_out_of_sample(self, index: pd.DatetimeIndex, start: int) -> None:
        """Refuse validation rows whose returns some member was trained on.

        A member trained on rows up to timestamp ``d`` read the returns realised up to
        ``d``; the decision at a validation row before ``d`` is scored on a return
        realised at or before ``d``, so its weight would be learned in sample. Checked by
        date (``training_dates_``) since a loaded member's rows may index another
        dataset; members without recorded dates (folders saved before they were kept)
        are not checked.
        """
        first = _utc_naive(index[start])
        for name, m in self.members.items():
            dates: tuple[str, ...] = tuple(getattr(m, "training_dates_", ()))
            if len(dates) != 2:
                continue
            if first < _utc_naive(pd.Timestamp(dates[1])):
                raise ValueError(
                    f"validation rows start at {index[start]} (row {start}), before the end of "
                    f"member {name!r}'s training window ({dates[0]} .. {dates[1]}): the "
                    "ensemble weights would be learned in sample, on returns that member was "
                    "trained on; fit the ensemble on rows from the members' last training date on "
                    "(e.g. the members' validation block)"
                )

    def _fit_positions(self, positions: Mapping[str, np.ndarray], dataset,
                       valid: slice) -> Ensemble:
        """Set the fitted attributes from member positions (T, N) scored on ``valid``."""
        names = self.names
        M = len(names)
        for n in names:
            bad = ~np.isfinite(positions[n][valid])
            if bad.any():
                t, j = (int(i) for i in np.argwhere(bad)[0])
                raise ValueError(
                    f"member {n!r} returned {int(bad.sum())} non-finite positions on the "
                    f"validation rows {valid.start}:{valid.stop} (first at row "
                    f"{valid.start + t}, asset {j}); members must emit finite positions "
                    "(flat 0 where they cannot predict)")
        tv, cost = float(self.target_vol), float(self.cost_bps)
        # within=True: only returns realised inside the validation block are read (the
        # last row's r_{t+1} is the next block's, with no embargo the test block's)
        conf = {n: float(score_positions(positions[n], dataset, valid, target_vol=tv,
                                         cost_bps=cost, within=True)) for n in names}
        if self.method == "equal":
            w = np.full(M, 1.0 / M)
        elif self.method == "confidence":
            s = np.array([conf[n] for n in names])
            s = np.where(np.isfinite(s), np.maximum(s, 0.0), 0.0)
            w = s / s.sum() if s.sum() > 0 else np.full(M, 1.0 / M)
        else:
            w = self._stack(np.stack([positions[n] for n in names]), dataset, valid)
        self.weights_ = {n: float(x) for n, x in zip(names, w)}
        self.confidences_ = conf
        self.valid_rows_ = (int(valid.start), int(valid.stop))
        self._w_cache = {}
        combined = np.tensordot(w, np.stack([positions[n] for n in names]), axes=1)
        self.best_valid_sharpe_ = float(score_positions(combined, dataset, valid,
                                                        target_vol=tv, cost_bps=cost,
                                                        within=True))
        return self

    def _stack(self, pos: np.ndarray, dataset, valid: slice) -> np.ndarray:
        """Stacking weights from member positions ``pos`` (M, T, N) on rows ``valid``."""
        M = pos.shape[0]
        if M == 1:
            return np.ones(1)
        neg_sharpe = _combined_sharpe_loss(pos, dataset, valid, target_vol=float(self.target_vol),
                                           cost_bps=float(self.cost_bps))
        lam = float(self.shrinkage)

        def objective(theta: torch.Tensor) -> torch.Tensor:
            w = torch.softmax(theta, dim=0)
            return neg_sharpe(w) + lam * ((w - 1.0 / M) ** 2).sum()

        gen = torch.Generator().manual_seed(int(self.seed))
        starts = [torch.zeros(M, dtype=torch.float64)]
        starts += [torch.randn(M, generator=gen, dtype=torch.float64)
                   for _ in range(_STACK_RESTARTS)]
        best_theta, best_val = starts[0].clone(), math.inf
        for init in starts:
            theta = init.clone().requires_grad_(True)
            opt = torch.optim.Adam([theta], lr=_STACK_LR)
            for step in range(_STACK_STEPS + 1):
                val = objective(theta)
                v = float(val.detach())
                if math.isfinite(v) and v < best_val:
                    best_val, best_theta = v, theta.detach().clone()
                if step == _STACK_STEPS:
                    break
                opt.zero_grad()
                val.backward()
                opt.step()
        return torch.softmax(best_theta, dim=0).numpy()

    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise ValueError("Ensemble is not fitted; call fit(dataset, valid) first")

    # -- predict -------------------------------------------------------------------
    def member_positions(self, features: np.ndarray,
                         rows: slice | None = None) -> dict[str, np.ndarray]:
        """Each member's positions on a feature block.

        Parameters
        ----------
        features : numpy.ndarray, shape (T, N, F)
            Inputs in the order of :attr:`feature_names_in_`.
        rows : slice, optional
            Only these rows are computed (others are 0); earlier rows are read as context.

        Returns
        -------
        dict of str to numpy.ndarray, shape (T, N)
            Positions in [-1, 1] per member name, in member order.

        Raises
        ------
        ValueError
            If a member is not fitted or rejects ``features`` (wrong shape).
        """
        self._check_members_fitted()
        return {name: np.asarray(m.predict(features, rows=rows), dtype=np.float64)
                for name, m in self.members.items()}

    def predict(self, features: np.ndarray, rows: slice | None = None) -> np.ndarray:
        """Combined positions ``sum_m w_m X^m`` on a feature block.

        Parameters
        ----------
        features : numpy.ndarray, shape (T, N, F)
            Inputs in the order of :attr:`feature_names_in_`.
        rows : slice, optional
            Only these rows are computed (others are 0).

        Returns
        -------
        numpy.ndarray, shape (T, N)
            Positions in [-1, 1]. Causal when every member is causal.

        Raises
        ------
        ValueError
            If the ensemble or a member is not fitted, or ``features`` has the wrong shape.
        """
        self._check_fitted()
        pos = self.member_positions(features, rows)
        w = np.array([self.weights_[n] for n in self.names])
        return np.tensordot(w, np.stack([pos[n] for n in self.names]), axes=1)

    def predict_sequences(self, x: np.ndarray) -> np.ndarray:
        """Combined last-step positions of sequences: ``(B, L, F)`` -> ``(B,)``.

        Member m reads the last ``member.context_length`` steps of ``x``.

        Parameters
        ----------
        x : numpy.ndarray, shape (B, L, F)
            The last ``L >= context_length`` bars of B symbols.

        Returns
        -------
        numpy.ndarray, shape (B,)
            Positions in [-1, 1].

        Raises
        ------
        ValueError
            If not fitted, ``x`` is not 3-D with ``n_features_in_`` features, or
            ``L`` is shorter than :attr:`context_length`.
        """
        self._check_fitted()
        x = np.asarray(x)
        F = self.n_features_in_
        if x.ndim != 3 or x.shape[-1] != F:
            raise ValueError(f"x must have shape (B, L, {F}), got {x.shape}")
        if x.shape[1] < self.context_length:
            raise ValueError(f"x must hold at least context_length={self.context_length} "
                             f"steps (the longest member context), got L={x.shape[1]}")
        pos = np.stack([np.asarray(m.predict_sequences(x[:, x.shape[1] - int(m.context_length):]),
                                   dtype=np.float64)
                        for m in self.members.values()])
        return self.combine(pos)

    def _weights_tensor(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        key = (dtype, device)
        w = self._w_cache.get(key)
        if w is None:
            w = torch.tensor([self.weights_[n] for n in self.names], dtype=dtype, device=device)
            self._w_cache[key] = w
        return w

    def combine(self, positions: Any, active: Any = None) -> Any:
        """Weighted mean of member positions over the active members.

        ``out_b = sum_{m active} w_m X_{m,b} / sum_{m active} w_m``; zeros (flat) when no
        member is active or the active members' weights sum to 0. Inactive members'
        positions are never read (they may be NaN). The inference engine calls this
        after excluding a failed member.

        Parameters
        ----------
        positions : torch.Tensor or numpy.ndarray, shape (M, B)
            Member positions, rows in the order of :attr:`names`.
        active : torch.Tensor or numpy.ndarray of bool, shape (M,), optional
            Active members; all when omitted.

        Returns
        -------
        torch.Tensor or numpy.ndarray, shape (B,)
            Same type (and, for tensors, dtype and device) as ``positions``.

        Raises
        ------
        ValueError
            If not fitted or the shapes do not match the number of members.
        """
        self._check_fitted()
        M = len(self.names)
        if isinstance(positions, torch.Tensor):
            if positions.ndim != 2 or positions.shape[0] != M:
                raise ValueError(f"positions must have shape ({M}, B), got "
                                 f"{tuple(positions.shape)}")
            w = self._weights_tensor(positions.dtype, positions.device)
            if active is None:
                return w @ positions  # weights sum to 1
            act = torch.as_tensor(active, device=positions.device).to(torch.bool)
            if act.shape != (M,):
                raise ValueError(f"active must have shape ({M},), got {tuple(act.shape)}")
            wa = torch.where(act, w, torch.zeros_like(w))
            x = torch.where(act[:, None], positions, torch.zeros_like(positions))
            den = wa.sum()
            return (wa @ x) / torch.where(den > 0, den, torch.ones_like(den))
        pos = np.asarray(positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[0] != M:
            raise ValueError(f"positions must have shape ({M}, B), got {pos.shape}")
        wn = np.array([self.weights_[n] for n in self.names])
        if active is None:
            return wn @ pos
        actn = np.asarray(active, dtype=bool)
        if actn.shape != (M,):
            raise ValueError(f"active must have shape ({M},), got {actn.shape}")
        wa_n = np.where(actn, wn, 0.0)
        den_n = wa_n.sum()
        if not den_n > 0:
            return np.zeros(pos.shape[1])
        return wa_n @ np.where(actn[:, None], pos, 0.0) / den_n

    # -- registry state ------------------------------------------------------------
    def _registry_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Fitted state for the registry: (tensors for safetensors, JSON-able dict).

        Tensors: ``{"weights": float64 (M,)}`` in the order of :attr:`names`. The dict
        holds ``method``, ``names``, ``confidences_`` (NaN stored as None),
        ``valid_rows_``, ``best_valid_sharpe_`` and ``params`` (:meth:`get_params`).
        Members are saved by the registry separately. Raises ``ValueError`` when not
        fitted.
        """
        if not hasattr(self, "weights_"):
            raise ValueError("Ensemble is not fitted; nothing to save")
        tensors = {"weights": torch.tensor([self.weights_[n] for n in self.names],
                                           dtype=torch.float64)}

        def _json(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        meta = {
            "method": self.method,
            "names": list(self.names),
            "confidences_": {n: _json(self.confidences_[n]) for n in self.names},
            "valid_rows_": list(self.valid_rows_),
            "best_valid_sharpe_": _json(self.best_valid_sharpe_),
            "params": self.get_params(),
        }
        return tensors, meta

    @classmethod
    def _registry_restore(cls, params: dict[str, Any], tensors: Mapping[str, torch.Tensor],
                          meta: Mapping[str, Any], members: Mapping[str, Any]) -> Ensemble:
        """Rebuild a fitted ensemble from :meth:`_registry_state` output and loaded members.

        Raises
        ------
        ValueError
            If ``members`` does not hold exactly the saved names, or the weights do not
            match them.
        """
        names = list(meta["names"])
        if set(members) != set(names):
            raise ValueError(f"members must be the saved members {names}, got {list(members)}")
        w = torch.as_tensor(tensors["weights"], dtype=torch.float64).reshape(-1)
        if w.numel() != len(names):
            raise ValueError(f"saved weights have {w.numel()} entries for {len(names)} members")
        ens = cls({n: members[n] for n in names}, **params)
        ens._validate_params()

        def _float(v: Any) -> float:
            return float("nan") if v is None else float(v)

        ens.weights_ = {n: float(x) for n, x in zip(names, w.tolist())}
        ens.confidences_ = {n: _float(meta["confidences_"][n]) for n in names}
        ens.valid_rows_ = (int(meta["valid_rows_"][0]), int(meta["valid_rows_"][1]))
        ens.best_valid_sharpe_ = _float(meta.get("best_valid_sharpe_"))
        return ens


@dataclass
class EnsembleWalkForward:
    """Out-of-sample results of :func:`walk_forward_ensemble`.

    Attributes
    ----------
    positions : dict of str to numpy.ndarray, shape (T, N)
        Test-block positions in [-1, 1] per member name and per ensemble
        (``"ensemble_<method>"``); NaN on rows in no test block.
    weights : pandas.DataFrame
        One row per fold, method and member: ``fold, method, member, weight,
        confidence`` (confidence: the member's validation Sharpe, annualised).
    history : pandas.DataFrame
        Members' training history: ``fold, member, epoch, train_loss, valid_sharpe,
        seconds`` (whatever keys each member's ``history_`` holds).
    folds : pandas.DataFrame
        Per fold: ``fold, train, valid, test`` date ranges, then for each name of
        ``positions`` the columns ``valid_sharpe_<name>`` (members: best validation
        Sharpe; ensembles: validation Sharpe of the combination) and
        ``test_sharpe_<name>`` (annualised Sharpe of the fold's test block).
    models : list of dict
        Per fold: member name -> fitted member.
    ensembles : list of dict
        Per fold: method -> fitted :class:`Ensemble`.
    """

    positions: dict[str, np.ndarray]
    weights: pd.DataFrame
    history: pd.DataFrame
    folds: pd.DataFrame
    models: list[dict[str, Any]]
    ensembles: list[dict[str, Ensemble]]

    @property
    def test_rows(self) -> np.ndarray:
        """Rows covered by some test block, shape (T,) bool."""
        first = next(iter(self.positions.values()))
        return np.isfinite(first).any(axis=1)

    def sharpe(self, dataset, *, target_vol: float = 0.15, cost_bps: float = 0.0) -> pd.Series:
        """Annualised out-of-sample Sharpe of every name over all test rows.

        Parameters
        ----------
        dataset : MomentumDataset
            The dataset the walk-forward ran on.
        target_vol, cost_bps : float
            As in :func:`~workbench.models.score_positions`.

        Returns
        -------
        pandas.Series
            Indexed by the names of :attr:`positions` (NaN positions count as flat).
        """
        rows = self.test_rows
        if not rows.any():
            return pd.Series({n: float("nan") for n in self.positions}, name="sharpe")
        idx = np.flatnonzero(rows)
        sl = slice(int(idx[0]), int(idx[-1]) + 1)
        return pd.Series({n: score_positions(np.nan_to_num(p), dataset, sl,
                                             target_vol=target_vol, cost_bps=cost_bps)
                          for n, p in self.positions.items()}, name="sharpe")


def walk_forward_ensemble(
    member_factories: Mapping[str, Callable[[int], Any]],
    dataset,
    splits: Sequence,
    *,
    methods: Sequence[str] = METHODS,
    target_vol: float = 0.15,
    cost_bps: float = 0.0,
    shrinkage: float = 1.0,
    seed: int = 0,
    callbacks: Sequence[Callable[[Any, dict], Any]] = (),
    progress: bool = True,
) -> EnsembleWalkForward:
    """Fit members and ensembles per walk-forward fold; stitch the test blocks.

    For each split: every member is built by its factory and fitted on
    ``(split.train, split.valid)``; one :class:`Ensemble` per method learns its weights
    on ``split.valid``; members and ensembles predict ``split.test``. Nothing is fitted
    on test rows (expanding-window protocol of Lim, Zohren & Roberts 2019).

    Parameters
    ----------
    member_factories : mapping of str to callable
        ``name -> factory(fold) -> unfitted member`` (e.g.
        ``{"lstm": lambda k: DeepMomentumLSTM(seed=k)}``).
    dataset : MomentumDataset
        Features (T, N, F) and targets.
    splits : sequence of split objects
        Each has ``train``, ``valid`` and ``test`` slices of rows (see
        :func:`workbench.backtest.walk_forward_splits`); ``valid`` must be non-empty.
    methods : sequence of str, default ("equal", "confidence", "stacking")
        Ensemble methods fitted per fold.
    target_vol, cost_bps, shrinkage, seed
        Passed to every :class:`Ensemble` (``target_vol`` and ``cost_bps`` also score
        the per-fold test Sharpe).
    callbacks : sequence of callable, optional
        Passed to each member's ``fit`` as ``callback(model, record)``, ``record`` the
        member's epoch record extended by ``"fold"`` and ``"member"``; a truthy return
        stops that member's training.
    progress : bool, default True
        tqdm bar over folds.

    Returns
    -------
    EnsembleWalkForward

    Raises
    ------
    ValueError
        If ``member_factories`` or ``splits`` is empty, a method is unknown, a split's
        blocks overlap or its validation block is empty.
    """
    from tqdm.auto import tqdm

    if len(member_factories) == 0:
        raise ValueError("member_factories must hold at least one factory, got none")
    methods = tuple(methods)
    for m in methods:
        check_param("methods", methods, m in METHODS, f"a sequence of {list(METHODS)}")
    if len(methods) != len(set(methods)):
        raise ValueError(f"methods must not repeat a method, got {list(methods)}")
    if len(splits) == 0:
        raise ValueError("splits is empty: the data is too short for the walk-forward setup")
    T, N, _ = dataset.features.shape
    names = list(member_factories)
    ens_names = [f"ensemble_{m}" for m in methods]
    positions = {n: np.full((T, N), np.nan) for n in names + ens_names}
    weights, hist, folds = [], [], []
    models: list[dict[str, Any]] = []
    ensembles: list[dict[str, Ensemble]] = []
    idx = dataset.index
    tv, cost = float(target_vol), float(cost_bps)
    for k, sp in enumerate(tqdm(splits, desc="walk-forward ensemble folds",
                                disable=not progress)):
        tr, va, te = fold_slices(k, sp)
        if va.stop <= va.start:
            raise ValueError(f"split {k}: the validation block {va} is empty; ensembles "
                             "learn their weights on it")
        fitted: dict[str, Any] = {}
        pos_valid, pos_test = {}, {}
        for name in names:
            model = member_factories[name](k)
            t0 = time.perf_counter()
            fit_tagged(model, dataset, tr, va, callbacks, fold=k, member=name)
            seconds = time.perf_counter() - t0
            fitted[name] = model
            pos_valid[name] = np.asarray(model.predict(dataset.features, rows=va), dtype=float)
            pos_test[name] = np.asarray(model.predict(dataset.features, rows=te), dtype=float)
            positions[name][te] = pos_test[name][te]
            member_hist = list(getattr(model, "history_", []))
            for rec in member_hist:
                hist.append({"fold": k, "member": name, **rec})
            if not member_hist:
                hist.append({"fold": k, "member": name, "seconds": seconds})
        row: dict[str, Any] = fold_dates(k, idx, tr, va, te)
        for name in names:
            row[f"valid_sharpe_{name}"] = getattr(fitted[name], "best_valid_sharpe_", np.nan)
            row[f"test_sharpe_{name}"] = score_positions(pos_test[name], dataset, te,
                                                         target_vol=tv, cost_bps=cost)
        fold_ens: dict[str, Ensemble] = {}
        for method in methods:
            ens = Ensemble(fitted, method, target_vol=target_vol, cost_bps=cost_bps,
                           shrinkage=shrinkage, seed=seed)
            ens._validate_params()
            ens._check_dataset(dataset, va)
            ens._fit_positions(pos_valid, dataset, va)
            fold_ens[method] = ens
            w = np.array([ens.weights_[n] for n in names])
            comb = np.tensordot(w, np.stack([pos_test[n] for n in names]), axes=1)
            positions[f"ensemble_{method}"][te] = comb[te]
            row[f"valid_sharpe_ensemble_{method}"] = ens.best_valid_sharpe_
            row[f"test_sharpe_ensemble_{method}"] = score_positions(
                comb, dataset, te, target_vol=tv, cost_bps=cost)
            for n in names:
                weights.append({"fold": k, "method": method, "member": n,
                                "weight": ens.weights_[n], "confidence": ens.confidences_[n]})
        models.append(fitted)
        ensembles.append(fold_ens)
        folds.append(row)
    return EnsembleWalkForward(
        positions=positions,
        weights=pd.DataFrame(weights, columns=["fold", "method", "member", "weight",
                                               "confidence"]),
        history=pd.DataFrame(hist),
        folds=pd.DataFrame(folds),
        models=models,
        ensembles=ensembles,
    )
